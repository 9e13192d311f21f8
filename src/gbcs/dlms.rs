//! DLMS COSEM content, the encoding most electricity use cases carry: the `Data` values
//! (A-XDR), the access request (`D9`) a command holds, the access response (`DA`) a device
//! answers with and the data notification (`0F`) an alert holds. Encode and decode; decoding is
//! bounded like the frames (depth, counts checked against what is left).

use super::frame::DlmsDateTime;
use super::length::{put_counted, put_length, Reader};
use super::FrameError;

/// The deepest nesting of arrays and structures read; deeper input is refused.
pub const MAX_DEPTH: usize = 16;

const ACCESS_REQUEST: u8 = 0xD9;
const ACCESS_RESPONSE: u8 = 0xDA;
const DATA_NOTIFICATION: u8 = 0x0F;

/// A DLMS `Data` value, the kinds GBCS content uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    Null,
    Array(Vec<Data>),
    Structure(Vec<Data>),
    /// Written `0xFF` for true, as the samples have it; any non-zero octet reads as true.
    Boolean(bool),
    DoubleLong(i32),
    DoubleLongUnsigned(u32),
    OctetString(Vec<u8>),
    VisibleString(Vec<u8>),
    Integer(i8),
    Long(i16),
    Unsigned(u8),
    LongUnsigned(u16),
    Enum(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DlmsError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("DLMS data tag {tag} is not one this module reads")]
    Tag { tag: u8 },
    #[error("arrays and structures nested over {MAX_DEPTH} deep")]
    Depth,
    #[error("a boolean other than 0x00 or 0xFF")]
    Boolean,
    #[error("the content is not a DLMS {expected}")]
    Apdu { expected: &'static str },
}

impl Data {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Data::Null => out.push(0),
            Data::Array(items) | Data::Structure(items) => {
                out.push(if matches!(self, Data::Array(_)) { 1 } else { 2 });
                put_length(out, items.len());
                for item in items {
                    item.encode(out);
                }
            }
            Data::Boolean(b) => out.extend_from_slice(&[3, if *b { 0xFF } else { 0 }]),
            Data::DoubleLong(v) => tagged(out, 5, &v.to_be_bytes()),
            Data::DoubleLongUnsigned(v) => tagged(out, 6, &v.to_be_bytes()),
            Data::OctetString(v) => {
                out.push(9);
                put_counted(out, v);
            }
            Data::VisibleString(v) => {
                out.push(10);
                put_counted(out, v);
            }
            Data::Integer(v) => tagged(out, 15, &v.to_be_bytes()),
            Data::Long(v) => tagged(out, 16, &v.to_be_bytes()),
            Data::Unsigned(v) => tagged(out, 17, &[*v]),
            Data::LongUnsigned(v) => tagged(out, 18, &v.to_be_bytes()),
            Data::Enum(v) => tagged(out, 22, &[*v]),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes one value that is the whole of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DlmsError> {
        let mut r = Reader::new(bytes);
        let data = Self::read(&mut r, 0)?;
        finish(&r)?;
        Ok(data)
    }

    pub(crate) fn read(r: &mut Reader<'_>, depth: usize) -> Result<Self, DlmsError> {
        Ok(match r.byte()? {
            0 => Data::Null,
            tag @ (1 | 2) => {
                if depth == MAX_DEPTH {
                    return Err(DlmsError::Depth);
                }
                let count = r.length()?;
                // Each item takes at least one byte: a count over what is left is refused
                // before anything is allocated for it.
                if count > r.remaining() {
                    return Err(FrameError::Truncated { at: r.position() }.into());
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(Self::read(r, depth + 1)?);
                }
                if tag == 1 {
                    Data::Array(items)
                } else {
                    Data::Structure(items)
                }
            }
            3 => match r.byte()? {
                0 => Data::Boolean(false),
                0xFF => Data::Boolean(true),
                _ => return Err(DlmsError::Boolean),
            },
            5 => Data::DoubleLong(i32::from_be_bytes(r.array()?)),
            6 => Data::DoubleLongUnsigned(u32::from_be_bytes(r.array()?)),
            9 => Data::OctetString(r.counted()?.to_vec()),
            10 => Data::VisibleString(r.counted()?.to_vec()),
            15 => Data::Integer(i8::from_be_bytes(r.array()?)),
            16 => Data::Long(i16::from_be_bytes(r.array()?)),
            17 => Data::Unsigned(r.byte()?),
            18 => Data::LongUnsigned(u16::from_be_bytes(r.array()?)),
            22 => Data::Enum(r.byte()?),
            tag => return Err(DlmsError::Tag { tag }),
        })
    }
}

fn tagged(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(value);
}

fn finish(r: &Reader<'_>) -> Result<(), DlmsError> {
    if !r.is_empty() {
        return Err(FrameError::Trailing { at: r.position() }.into());
    }
    Ok(())
}

/// The long-invoke-id-and-priority GBCS puts on DLMS content: bit 29 set and the originator
/// counter's low 24 bits, as every public sample has it (`0x200003E8` for counter 1000).
pub fn invoke_id(counter: u64) -> u32 {
    0x2000_0000 | (counter & 0x00FF_FFFF) as u32
}

/// A COSEM attribute or method: interface class, logical name (OBIS code), attribute or method
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CosemRef {
    pub class_id: u16,
    pub obis: [u8; 6],
    pub id: u8,
}

impl CosemRef {
    pub const fn new(class_id: u16, obis: [u8; 6], id: u8) -> Self {
        Self { class_id, obis, id }
    }

    /// The attribute descriptor's nine octets (class, logical name, attribute), as an alert
    /// names the attribute it reports on.
    pub fn descriptor(&self) -> [u8; 9] {
        let c = self.class_id.to_be_bytes();
        let o = self.obis;
        [c[0], c[1], o[0], o[1], o[2], o[3], o[4], o[5], self.id]
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, FrameError> {
        let class_id = u16::from_be_bytes(r.array()?);
        let obis = r.array()?;
        Ok(Self::new(class_id, obis, r.byte()?))
    }
}

/// One access-request specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestSpec {
    Get(CosemRef),
    Set(CosemRef),
    Action(CosemRef),
}

/// A DLMS access request with no date-time: what a DLMS command's content is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRequest {
    pub invoke_id: u32,
    pub specs: Vec<RequestSpec>,
    /// One value per specification: what to set, the action's parameter, or null for a get.
    pub data: Vec<Data>,
}

impl AccessRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ACCESS_REQUEST];
        out.extend_from_slice(&self.invoke_id.to_be_bytes());
        out.push(0); // no date-time
        put_length(&mut out, self.specs.len());
        for spec in &self.specs {
            let (choice, at) = match spec {
                RequestSpec::Get(at) => (1, at),
                RequestSpec::Set(at) => (2, at),
                RequestSpec::Action(at) => (3, at),
            };
            out.push(choice);
            out.extend_from_slice(&at.descriptor());
        }
        put_length(&mut out, self.data.len());
        for d in &self.data {
            d.encode(&mut out);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DlmsError> {
        let mut r = Reader::new(bytes);
        expect_apdu(&mut r, ACCESS_REQUEST, "access request")?;
        let invoke_id = u32::from_be_bytes(r.array()?);
        r.expect(&[0])?;
        let count = bounded_count(&mut r, 10)?;
        let mut specs = Vec::with_capacity(count);
        for _ in 0..count {
            specs.push(match r.byte()? {
                1 => RequestSpec::Get(CosemRef::read(&mut r)?),
                2 => RequestSpec::Set(CosemRef::read(&mut r)?),
                3 => RequestSpec::Action(CosemRef::read(&mut r)?),
                _ => {
                    return Err(DlmsError::Apdu {
                        expected: "access request specification",
                    })
                }
            });
        }
        let data = read_list(&mut r)?;
        finish(&r)?;
        Ok(Self {
            invoke_id,
            specs,
            data,
        })
    }
}

/// The result of one specification in an access response: get and set carry a
/// data-access-result, action an action-result (0 is success in both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseSpec {
    Get(u8),
    Set(u8),
    Action(u8),
}

/// A DLMS access response with no date-time and no repeated request specification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessResponse {
    pub invoke_id: u32,
    pub data: Vec<Data>,
    pub results: Vec<ResponseSpec>,
}

impl AccessResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ACCESS_RESPONSE];
        out.extend_from_slice(&self.invoke_id.to_be_bytes());
        out.extend_from_slice(&[0, 0]); // no date-time, no access-request-specification
        put_length(&mut out, self.data.len());
        for d in &self.data {
            d.encode(&mut out);
        }
        put_length(&mut out, self.results.len());
        for result in &self.results {
            out.extend_from_slice(&match result {
                ResponseSpec::Get(v) => [1, *v],
                ResponseSpec::Set(v) => [2, *v],
                ResponseSpec::Action(v) => [3, *v],
            });
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DlmsError> {
        let mut r = Reader::new(bytes);
        expect_apdu(&mut r, ACCESS_RESPONSE, "access response")?;
        let invoke_id = u32::from_be_bytes(r.array()?);
        r.expect(&[0, 0])?;
        let data = read_list(&mut r)?;
        let count = bounded_count(&mut r, 2)?;
        let mut results = Vec::with_capacity(count);
        for _ in 0..count {
            let [choice, value] = r.array()?;
            results.push(match choice {
                1 => ResponseSpec::Get(value),
                2 => ResponseSpec::Set(value),
                3 => ResponseSpec::Action(value),
                _ => {
                    return Err(DlmsError::Apdu {
                        expected: "access response specification",
                    })
                }
            });
        }
        finish(&r)?;
        Ok(Self {
            invoke_id,
            data,
            results,
        })
    }
}

/// A DLMS data notification with no date-time: what a DLMS alert's content is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataNotification {
    pub invoke_id: u32,
    pub body: Data,
}

impl DataNotification {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![DATA_NOTIFICATION];
        out.extend_from_slice(&self.invoke_id.to_be_bytes());
        out.push(0);
        self.body.encode(&mut out);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DlmsError> {
        let mut r = Reader::new(bytes);
        expect_apdu(&mut r, DATA_NOTIFICATION, "data notification")?;
        let invoke_id = u32::from_be_bytes(r.array()?);
        r.expect(&[0])?;
        let body = Data::read(&mut r, 0)?;
        finish(&r)?;
        Ok(Self { invoke_id, body })
    }
}

fn expect_apdu(r: &mut Reader<'_>, tag: u8, expected: &'static str) -> Result<(), DlmsError> {
    if r.byte()? != tag {
        return Err(DlmsError::Apdu { expected });
    }
    Ok(())
}

/// A count of items that each take at least `min_size` bytes, refused if more than could fit.
fn bounded_count(r: &mut Reader<'_>, min_size: usize) -> Result<usize, DlmsError> {
    let count = r.length()?;
    if count.saturating_mul(min_size) > r.remaining() {
        return Err(FrameError::Truncated { at: r.position() }.into());
    }
    Ok(count)
}

fn read_list(r: &mut Reader<'_>) -> Result<Vec<Data>, DlmsError> {
    let count = bounded_count(r, 1)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(Data::read(r, 0)?);
    }
    Ok(out)
}

/// The deviation and clock status GBCS content writes: deviation not specified, status not
/// specified.
const NOT_SPECIFIED_TAIL: [u8; 3] = [0x80, 0x00, 0xFF];

impl DlmsDateTime {
    /// "Now": the activation date-time of a command that takes effect at once.
    pub const NOW: Self = Self([0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x00, 0xFF]);
    /// "Never": the activation date-time that cancels a future-dated command.
    pub const NEVER: Self = Self([
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0xFF,
    ]);

    /// A UTC instant: day of week not specified, hundredths from the sub-second part, deviation
    /// and clock status not specified.
    pub fn from_utc(at: time::OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let y = (at.year().clamp(0, 0xFFFE) as u16).to_be_bytes();
        let t = NOT_SPECIFIED_TAIL;
        Self([
            y[0],
            y[1],
            at.month() as u8,
            at.day(),
            0xFF,
            at.hour(),
            at.minute(),
            at.second(),
            (at.millisecond() / 10) as u8,
            t[0],
            t[1],
            t[2],
        ])
    }

    /// A date (year, month, day of month, day of week; `0xFFFF`/`0xFF` where not specified) at
    /// midnight, deviation and clock status not specified: how a season's start is written.
    pub fn midnight_of(date: DlmsDate) -> Self {
        let d = date.0;
        let t = NOT_SPECIFIED_TAIL;
        Self([d[0], d[1], d[2], d[3], d[4], 0, 0, 0, 0, t[0], t[1], t[2]])
    }
}

/// A DLMS date: year (two octets, `0xFFFF` not specified), month, day of month (`0xFE` last,
/// `0xFD` second last, `0xFF` not specified), day of week (1 Monday to 7, `0xFF` not specified).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DlmsDate(pub [u8; 5]);

impl DlmsDate {
    pub const NOT_SPECIFIED: u8 = 0xFF;
    pub const LAST_DAY_OF_MONTH: u8 = 0xFE;
    pub const SECOND_LAST_DAY_OF_MONTH: u8 = 0xFD;

    /// `year` `None` is "any year".
    pub fn new(year: Option<u16>, month: u8, day_of_month: u8, day_of_week: u8) -> Self {
        let y = year.unwrap_or(0xFFFF).to_be_bytes();
        Self([y[0], y[1], month, day_of_month, day_of_week])
    }
}
