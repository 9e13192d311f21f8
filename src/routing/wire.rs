//! The signed command's wire form: the hub link's transport wrapper. Its payload is the GBCS
//! command for the device (`gbcs::command`: the command behind the DCC's MAC header; for a
//! critical request the User-signed pre-command inside it); the envelope adds the routing fields
//! the hub network needs and the access-control broker's signature over all of it. All integers
//! big-endian; every length is checked against its bound before anything is allocated, and
//! decoding reads the buffer once, front to back.
//!
//! ```text
//! magic "DCMD" | version 1 (u8)
//! originator (8) | target = device (8) | counter (u64)
//! srv length (u8, 3..=11) | srv as text ("4.1.1")
//! command variant (u8)
//! execute_at flag (u8: 0 none, 1 some) | execute_at (i64, 0 when none)
//! payload length (u32, <= MAX_PAYLOAD_BYTES) | payload
//! issuer length (u16, 1..=MAX_ISSUER_BYTES) | signer certificate's issuer DN (UTF-8)
//! serial length (u8, 1..=20) | signer certificate's serial (big-endian magnitude)
//! signature (64: ECDSA P-256 r||s over every byte before it)
//! ```

use crate::domain::{CommandVariant, DeviceId, Eui64, RequestId, Srv};

use super::{Command, RoutingError};

/// The largest command payload carried (a GBCS frame is at most 60 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The largest signed command accepted (payload plus every other field at its bound).
pub const MAX_COMMAND_BYTES: usize = MAX_PAYLOAD_BYTES + 2048;
const MAX_ISSUER_BYTES: usize = 1024;
/// RFC 5280: serial numbers are at most 20 octets.
const MAX_SERIAL_BYTES: usize = 20;
const MAGIC: &[u8; 4] = b"DCMD";
const VERSION: u8 = 1;
pub(super) const SIGNATURE_BYTES: usize = 64;

/// A command with its signature, as bytes: what goes to the hub network and into the pending
/// journal. Holding one proves nothing until a [`CommandVerifier`](super::CommandVerifier) has
/// checked it.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedCommand {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for SignedCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedCommand")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl SignedCommand {
    /// Wraps bytes received from elsewhere (the network, a journal); nothing is checked yet.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Reads the routing fields without checking the signature: for the gateway's own
    /// bookkeeping of commands it signed itself (the pending journal), never for trust.
    pub fn header(&self) -> Result<CommandHeader, RoutingError> {
        decode(&self.bytes).map(|d| d.header)
    }
}

/// The routing fields of a signed command, read without verifying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandHeader {
    pub request_id: RequestId,
    pub srv: Srv,
    pub variant: CommandVariant,
    pub device: DeviceId,
    pub execute_at: Option<i64>,
}

/// A decoded signed command: its fields and where the signed part ends.
pub(super) struct Decoded<'a> {
    pub header: CommandHeader,
    pub payload: &'a [u8],
    pub issuer: &'a str,
    pub serial: &'a [u8],
    pub signed: &'a [u8],
    pub signature: &'a [u8],
}

impl Decoded<'_> {
    pub fn into_command(self) -> Result<Command, RoutingError> {
        let h = self.header;
        Command::checked(
            h.request_id,
            h.srv,
            h.variant,
            h.device,
            h.execute_at,
            self.payload.to_vec(),
        )
    }
}

/// The bytes to sign for `cmd` by the certificate (`issuer`, `serial`).
pub(super) fn encode_unsigned(
    cmd: &Command,
    issuer: &str,
    serial: &[u8],
) -> Result<Vec<u8>, RoutingError> {
    if issuer.is_empty() || issuer.len() > MAX_ISSUER_BYTES {
        return Err(RoutingError::Field("issuer"));
    }
    if serial.is_empty() || serial.len() > MAX_SERIAL_BYTES {
        return Err(RoutingError::Field("serial"));
    }
    let srv = cmd.srv.to_string();
    let mut out = Vec::with_capacity(64 + srv.len() + cmd.payload.len() + issuer.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(cmd.request_id.originator.as_bytes());
    out.extend_from_slice(cmd.device.as_bytes());
    out.extend_from_slice(&cmd.request_id.counter.to_be_bytes());
    // An Srv prints as at most "255.255.255": 11 bytes.
    out.push(srv.len() as u8);
    out.extend_from_slice(srv.as_bytes());
    out.push(cmd.variant.get());
    out.push(u8::from(cmd.execute_at.is_some()));
    out.extend_from_slice(&cmd.execute_at.unwrap_or(0).to_be_bytes());
    // `Command` keeps its payload within MAX_PAYLOAD_BYTES, which fits a u32.
    out.extend_from_slice(&(cmd.payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&cmd.payload);
    // Both checked above to fit.
    out.extend_from_slice(&(issuer.len() as u16).to_be_bytes());
    out.extend_from_slice(issuer.as_bytes());
    out.push(serial.len() as u8);
    out.extend_from_slice(serial);
    Ok(out)
}

/// Reads a signed command; every field is checked, nothing is trusted.
pub(super) fn decode(bytes: &[u8]) -> Result<Decoded<'_>, RoutingError> {
    if bytes.len() > MAX_COMMAND_BYTES {
        return Err(RoutingError::TooLarge(bytes.len()));
    }
    let mut r = Reader { rest: bytes };
    if r.take(4)? != MAGIC {
        return Err(RoutingError::Magic);
    }
    match r.u8()? {
        VERSION => {}
        v => return Err(RoutingError::Version(v)),
    }
    let originator = r.eui()?;
    let device = r.eui()?;
    let counter = r.u64()?;
    let srv_len = usize::from(r.u8()?);
    let srv = std::str::from_utf8(r.take(srv_len)?)
        .ok()
        .and_then(|s| s.parse::<Srv>().ok())
        .ok_or(RoutingError::Field("srv"))?;
    let variant =
        CommandVariant::try_from(r.u8()?).map_err(|_| RoutingError::Field("command variant"))?;
    let flag = r.u8()?;
    let at = r.u64()? as i64;
    let execute_at = match flag {
        0 if at == 0 => None,
        1 => Some(at),
        _ => return Err(RoutingError::Field("execute_at")),
    };
    let payload_len = r.u32()? as usize;
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(RoutingError::PayloadTooLarge(payload_len));
    }
    let payload = r.take(payload_len)?;
    let issuer_len = usize::from(r.u16()?);
    if issuer_len == 0 || issuer_len > MAX_ISSUER_BYTES {
        return Err(RoutingError::Field("issuer"));
    }
    let issuer =
        std::str::from_utf8(r.take(issuer_len)?).map_err(|_| RoutingError::Field("issuer"))?;
    let serial_len = usize::from(r.u8()?);
    if serial_len == 0 || serial_len > MAX_SERIAL_BYTES {
        return Err(RoutingError::Field("serial"));
    }
    let serial = r.take(serial_len)?;
    let signed_len = bytes.len() - r.rest.len();
    let signature = r.take(SIGNATURE_BYTES)?;
    if !r.rest.is_empty() {
        return Err(RoutingError::TrailingBytes(r.rest.len()));
    }
    Ok(Decoded {
        header: CommandHeader {
            request_id: RequestId {
                originator,
                target: device,
                counter,
            },
            srv,
            variant,
            device,
            execute_at,
        },
        payload,
        issuer,
        serial,
        signed: &bytes[..signed_len],
        signature,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RoutingError> {
        if self.rest.len() < n {
            return Err(RoutingError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RoutingError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, RoutingError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, RoutingError> {
        self.array().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, RoutingError> {
        self.array().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, RoutingError> {
        self.array().map(u64::from_be_bytes)
    }
    fn eui(&mut self) -> Result<Eui64, RoutingError> {
        self.array().map(Eui64::from_bytes)
    }
}
