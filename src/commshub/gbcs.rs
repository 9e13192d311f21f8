//! GBCS-shaped bytes for simulated responses and alerts. They follow the GBCS general-signing
//! frame's header as the public RTDS samples show it — `DF 09`, the CRA flag, the originator
//! counter, originator and recipient EUI-64s, an optional DLMS date-time, a two-byte message
//! code — then a length-prefixed body and an empty signature. They are not full GBCS: the body is
//! simulated data and the message code is the SRV's first two parts, not a GBCS use-case code.

use time::OffsetDateTime;

use crate::domain::{DeviceId, Eui64, RequestId, Srv};

const GENERAL_SIGNING: [u8; 2] = [0xDF, 0x09];
/// CRA flags.
pub const CRA_RESPONSE: u8 = 0x02;
pub const CRA_ALERT: u8 = 0x03;

/// The header fields of a simulated frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GbcsFrame {
    pub cra: u8,
    pub counter: u64,
    pub originator: Eui64,
    pub recipient: Eui64,
    /// Unix seconds, if the frame carries a date-time.
    pub at: Option<i64>,
    pub message_code: u16,
    pub body: Vec<u8>,
}

/// A device's response to `request_id`: counter and parties from the request (the device is the
/// originator, the User the recipient).
pub fn response_frame(request_id: &RequestId, srv: Srv, at: i64, data: &[u8]) -> Vec<u8> {
    GbcsFrame {
        cra: CRA_RESPONSE,
        counter: request_id.counter,
        originator: request_id.target,
        recipient: request_id.originator,
        at: Some(at),
        message_code: srv_code(srv),
        body: data.to_vec(),
    }
    .encode()
}

/// An alert `code` from `device`; `counter` is the device's own alert counter, `recipient` the
/// User a future-dated alert answers (the DCC's ID for spontaneous alerts).
pub fn alert_frame(
    device: DeviceId,
    recipient: Eui64,
    counter: u64,
    code: u16,
    at: i64,
) -> Vec<u8> {
    let mut body = vec![0x00, 0x02];
    body.extend_from_slice(&code.to_be_bytes());
    GbcsFrame {
        cra: CRA_ALERT,
        counter,
        originator: device,
        recipient,
        at: Some(at),
        message_code: code,
        body,
    }
    .encode()
}

/// The SRV's first two numbers as two bytes.
fn srv_code(srv: Srv) -> u16 {
    let text = srv.to_string();
    let mut parts = text.split('.').map(|p| p.parse::<u8>().unwrap_or(0));
    u16::from_be_bytes([parts.next().unwrap_or(0), parts.next().unwrap_or(0)])
}

impl GbcsFrame {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.body.len());
        out.extend_from_slice(&GENERAL_SIGNING);
        out.push(self.cra);
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.push(8);
        out.extend_from_slice(self.originator.as_bytes());
        out.push(8);
        out.extend_from_slice(self.recipient.as_bytes());
        match self.at.and_then(dlms_date_time) {
            Some(dt) => {
                out.push(12);
                out.extend_from_slice(&dt);
            }
            None => out.push(0),
        }
        out.push(2);
        out.extend_from_slice(&self.message_code.to_be_bytes());
        push_length(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        out.push(0); // no signature
        out
    }

    /// Reads a frame this module wrote; `None` for anything else. Bounded, never panics.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(2)? != GENERAL_SIGNING {
            return None;
        }
        let cra = r.byte()?;
        let counter = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let originator = r.eui()?;
        let recipient = r.eui()?;
        let at = match r.byte()? {
            0 => None,
            12 => Some(read_dlms(r.take(12)?)?),
            _ => return None,
        };
        if r.byte()? != 2 {
            return None;
        }
        let message_code = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
        let len = match r.byte()? {
            n @ 0..=0x7F => usize::from(n),
            0x81 => usize::from(r.byte()?),
            0x82 => usize::from(u16::from_be_bytes(r.take(2)?.try_into().ok()?)),
            _ => return None,
        };
        let body = r.take(len)?.to_vec();
        if r.byte()? != 0 || !r.0.is_empty() {
            return None;
        }
        Some(Self {
            cra,
            counter,
            originator,
            recipient,
            at,
            message_code,
            body,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn eui(&mut self) -> Option<Eui64> {
        if self.byte()? != 8 {
            return None;
        }
        Some(Eui64::from_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// BER-style length: one byte below 128, else `81 nn` or `82 nnnn` (bodies stay below 64 KiB).
fn push_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        _ => {
            out.push(0x82);
            out.extend_from_slice(&(len.min(0xFFFF) as u16).to_be_bytes());
        }
    }
}

/// The 12-byte DLMS date-time (UTC, deviation 0, weekday and hundredths not specified).
fn dlms_date_time(unix: i64) -> Option<[u8; 12]> {
    let t = OffsetDateTime::from_unix_timestamp(unix).ok()?;
    let year = u16::try_from(t.year()).ok()?.to_be_bytes();
    Some([
        year[0],
        year[1],
        u8::from(t.month()),
        t.day(),
        0xFF,
        t.hour(),
        t.minute(),
        t.second(),
        0xFF,
        0x00,
        0x00,
        0x00,
    ])
}

fn read_dlms(b: &[u8]) -> Option<i64> {
    let year = i32::from(u16::from_be_bytes([b[0], b[1]]));
    let month = time::Month::try_from(b[2]).ok()?;
    let date = time::Date::from_calendar_date(year, month, b[3]).ok()?;
    let t = date.with_hms(b[5], b[6], b[7]).ok()?;
    Some(t.assume_utc().unix_timestamp())
}
