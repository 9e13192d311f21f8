//! The GBCS frames the public samples hold: the General Signing APDU (`DF 09`) a command,
//! response or alert travels in, and the MAC header (General Ciphering, `DD`, with no ciphering
//! parameters) the DCC or a device wraps around one. Encode and decode, byte for byte: every
//! field has one encoding, and anything else is refused, so `encode(decode(b)) == b`.
//!
//! ```text
//! DF                         general-signing tag
//!   09 cra counter(8)        transaction id: CRA flag (1 command, 2 response, 3 alert), counter
//!   08 eui(8)                originator system title
//!   08 eui(8)                recipient system title
//!   00 | 0C datetime(12)     date-time, absent or a DLMS date-time
//!   len code(2) [supp]       other information: the message code, then optional supplements
//!   len content              the use case's content
//!   [00 | 40 r‖s(64)]        signature: none at all (a pre-command), empty, or ECDSA P-256
//!
//! DD 00 00 00 00 00 00       general-ciphering tag; empty transaction id, system titles,
//!                            date-time and other information; no key info
//!   len                      length of what follows
//!   11 ic(4)                 security header: authenticated only, invocation counter
//!   DF 09 …                  a General Signing APDU
//!   mac(12)                  the GBCS MAC over it
//! ```

use super::length::{put_counted, put_length, Reader};
use super::{FrameError, MAX_FRAME_LEN};
use crate::domain::Eui64;

/// The general-signing tag and the transaction id's length, which is always 9.
const GENERAL_SIGNING: [u8; 2] = [0xDF, 0x09];
const GENERAL_CIPHERING: u8 = 0xDD;
/// The MAC header's empty fields: transaction id, two system titles, date-time, other
/// information, each of length 0, and key info absent.
const EMPTY_CIPHERING_FIELDS: [u8; 6] = [0; 6];
/// Security control: authentication only, security suite 1.
pub const SECURITY_CONTROL_MAC: u8 = 0x11;
const MAC_LEN: usize = 12;
const SECURITY_HEADER_LEN: usize = 5;
const DATE_TIME_LEN: usize = 12;
const SIGNATURE_LEN: usize = 64;

/// The CRA flag: what the frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cra {
    Command = 1,
    Response = 2,
    Alert = 3,
}

/// The transaction id: the CRA flag and the originator counter. A response carries its
/// command's counter; an alert the device's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransactionId {
    pub cra: Cra,
    pub counter: u64,
}

/// A GBCS message code: which use case the content belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageCode(pub u16);

impl std::fmt::Debug for MessageCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageCode({:#06X})", self.0)
    }
}

/// A DLMS COSEM date-time: year (2 octets), month, day of month, day of week, hour, minute,
/// second, hundredths, deviation (2 octets), clock status. Carried as the octets it came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DlmsDateTime(pub [u8; DATE_TIME_LEN]);

/// What may follow the message code in other information, told apart by its length (10, 18,
/// 26 or more octets in all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Supplement {
    None,
    RemoteParty {
        id: Eui64,
    },
    RemotePartyCounter {
        id: Eui64,
        counter: u64,
    },
    OriginatorCounter {
        id: Eui64,
        counter: u64,
        originator_counter: u64,
    },
    Certificate {
        id: Eui64,
        counter: u64,
        certificate: RemotePartyCertificate,
    },
}

/// The remote party's key-agreement certificate in other information, as DER bytes; longer than
/// eight octets, so that it cannot be read back as an originator counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemotePartyCertificate(Vec<u8>);

impl RemotePartyCertificate {
    pub fn new(der: Vec<u8>) -> Result<Self, FrameError> {
        if der.len() <= 8 || der.len() > MAX_FRAME_LEN {
            return Err(FrameError::OtherInformationLength {
                len: der.len() + 18,
            });
        }
        Ok(Self(der))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Other information: the message code and any supplement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherInformation {
    pub message_code: MessageCode,
    pub supplement: Supplement,
}

/// The signature field after the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureField {
    /// No field at all: the frame ends with its content. A pre-command from the DCC has this form;
    /// the User appends the signature.
    Absent,
    /// A zero length: an unsigned command, response or alert.
    Empty,
    /// `0x40` and the raw `r‖s` of an ECDSA P-256 / SHA-256 signature.
    Ecdsa([u8; SIGNATURE_LEN]),
}

/// The General Signing APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneralSigning {
    pub transaction: TransactionId,
    pub originator: Eui64,
    pub recipient: Eui64,
    pub date_time: Option<DlmsDateTime>,
    pub other: OtherInformation,
    pub content: Vec<u8>,
    pub signature: SignatureField,
}

/// A General Signing APDU behind the MAC header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacProtected {
    pub invocation_counter: u32,
    pub inner: GeneralSigning,
    pub mac: [u8; MAC_LEN],
}

/// A whole GBCS frame as it travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Apdu {
    Signing(GeneralSigning),
    Mac(MacProtected),
}

impl Apdu {
    /// Decodes a whole frame. Refuses input over [`MAX_FRAME_LEN`] before reading it, and any
    /// bytes after the frame.
    pub fn decode(input: &[u8]) -> Result<Self, FrameError> {
        if input.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len: input.len() });
        }
        let mut r = Reader::new(input);
        let apdu = match input.first() {
            Some(&GENERAL_CIPHERING) => Apdu::Mac(MacProtected::read(&mut r)?),
            Some(0xDF) => Apdu::Signing(GeneralSigning::read(&mut r)?),
            Some(&tag) => return Err(FrameError::Tag { tag }),
            None => return Err(FrameError::Truncated { at: 0 }),
        };
        if !r.is_empty() {
            return Err(FrameError::Trailing { at: r.position() });
        }
        Ok(apdu)
    }

    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        match self {
            Apdu::Signing(s) => s.encode(),
            Apdu::Mac(m) => m.encode(),
        }
    }

    /// The General Signing APDU, behind a MAC header or not.
    pub fn general_signing(&self) -> &GeneralSigning {
        match self {
            Apdu::Signing(s) => s,
            Apdu::Mac(m) => &m.inner,
        }
    }
}

impl GeneralSigning {
    /// Decodes a General Signing APDU that is the whole of `input` (one behind a MAC header is
    /// refused: use [`Apdu::decode`]).
    pub fn decode(input: &[u8]) -> Result<Self, FrameError> {
        match Apdu::decode(input)? {
            Apdu::Signing(s) => Ok(s),
            Apdu::Mac(_) => Err(FrameError::Tag {
                tag: GENERAL_CIPHERING,
            }),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = self.encode_unsigned()?;
        match &self.signature {
            SignatureField::Absent => {}
            SignatureField::Empty => out.push(0),
            SignatureField::Ecdsa(sig) => {
                out.push(SIGNATURE_LEN as u8);
                out.extend_from_slice(sig);
            }
        }
        check_len(out.len())?;
        Ok(out)
    }

    /// The frame up to the end of its content: the pre-command form, whose bytes after the tag
    /// byte are what a signature signs.
    pub fn encode_unsigned(&self) -> Result<Vec<u8>, FrameError> {
        check_len(self.content.len())?;
        let mut out = Vec::with_capacity(self.content.len() + 64);
        out.extend_from_slice(&GENERAL_SIGNING);
        out.push(self.transaction.cra as u8);
        out.extend_from_slice(&self.transaction.counter.to_be_bytes());
        for title in [self.originator, self.recipient] {
            put_counted(&mut out, title.as_bytes());
        }
        match &self.date_time {
            None => out.push(0),
            Some(dt) => put_counted(&mut out, &dt.0),
        }
        let other = self.other.encode();
        check_len(other.len())?;
        put_counted(&mut out, &other);
        put_length(&mut out, self.content.len());
        out.extend_from_slice(&self.content);
        check_len(out.len())?;
        Ok(out)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, FrameError> {
        r.expect(&GENERAL_SIGNING)?;
        let transaction = TransactionId {
            cra: read_cra(r)?,
            counter: u64::from_be_bytes(r.array()?),
        };
        let originator = read_title(r)?;
        let recipient = read_title(r)?;
        let date_time = match r.counted()? {
            [] => None,
            bytes => {
                Some(DlmsDateTime(bytes.try_into().map_err(|_| {
                    FrameError::DateTimeLength { len: bytes.len() }
                })?))
            }
        };
        let other = OtherInformation::decode(r.counted()?)?;
        let content = r.counted()?.to_vec();
        let signature = if r.is_empty() {
            SignatureField::Absent
        } else {
            match r.counted()? {
                [] => SignatureField::Empty,
                sig => SignatureField::Ecdsa(
                    sig.try_into()
                        .map_err(|_| FrameError::SignatureLength { len: sig.len() })?,
                ),
            }
        };
        Ok(Self {
            transaction,
            originator,
            recipient,
            date_time,
            other,
            content,
            signature,
        })
    }
}

impl OtherInformation {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.message_code.0.to_be_bytes().to_vec();
        let (id, counter, tail) = match &self.supplement {
            Supplement::None => return out,
            Supplement::RemoteParty { id } => (id, None, &[][..]),
            Supplement::RemotePartyCounter { id, counter } => (id, Some(counter), &[][..]),
            Supplement::OriginatorCounter {
                id,
                counter,
                originator_counter,
            } => {
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(&counter.to_be_bytes());
                out.extend_from_slice(&originator_counter.to_be_bytes());
                return out;
            }
            Supplement::Certificate {
                id,
                counter,
                certificate,
            } => (id, Some(counter), certificate.as_bytes()),
        };
        out.extend_from_slice(id.as_bytes());
        if let Some(counter) = counter {
            out.extend_from_slice(&counter.to_be_bytes());
        }
        out.extend_from_slice(tail);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let bad = || FrameError::OtherInformationLength { len: bytes.len() };
        let mut r = Reader::new(bytes);
        let message_code = MessageCode(u16::from_be_bytes(r.array().map_err(|_| bad())?));
        if r.is_empty() {
            return Ok(Self {
                message_code,
                supplement: Supplement::None,
            });
        }
        let id = Eui64::from_bytes(r.array().map_err(|_| bad())?);
        let supplement = match r.remaining() {
            0 => Supplement::RemoteParty { id },
            8.. => {
                let counter = u64::from_be_bytes(r.array()?);
                match r.remaining() {
                    0 => Supplement::RemotePartyCounter { id, counter },
                    8 => Supplement::OriginatorCounter {
                        id,
                        counter,
                        originator_counter: u64::from_be_bytes(r.array()?),
                    },
                    n if n > 8 => Supplement::Certificate {
                        id,
                        counter,
                        certificate: RemotePartyCertificate(r.take(n)?.to_vec()),
                    },
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        };
        Ok(Self {
            message_code,
            supplement,
        })
    }
}

/// The GBCS MAC over a frame, computed by whoever holds the key (the DCC for commands, a device
/// for its responses and alerts).
pub trait ComputeMac {
    /// The 12-octet MAC of `apdu` (a General Signing APDU) under `security_header`.
    fn mac(&self, security_header: &[u8; SECURITY_HEADER_LEN], apdu: &[u8]) -> [u8; MAC_LEN];
}

impl MacProtected {
    /// `inner` behind a MAC header, its MAC computed by `key`.
    pub fn seal(
        inner: GeneralSigning,
        invocation_counter: u32,
        key: &dyn ComputeMac,
    ) -> Result<Self, FrameError> {
        let apdu = inner.encode()?;
        let mut sealed = Self {
            invocation_counter,
            inner,
            mac: [0; MAC_LEN],
        };
        sealed.mac = key.mac(&sealed.security_header(), &apdu);
        Ok(sealed)
    }

    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let inner = self.inner.encode()?;
        let len = SECURITY_HEADER_LEN + inner.len() + MAC_LEN;
        check_len(len)?;
        let mut out = Vec::with_capacity(len + 10);
        out.push(GENERAL_CIPHERING);
        out.extend_from_slice(&EMPTY_CIPHERING_FIELDS);
        put_length(&mut out, len);
        out.extend_from_slice(&self.security_header());
        out.extend_from_slice(&inner);
        out.extend_from_slice(&self.mac);
        check_len(out.len())?;
        Ok(out)
    }

    /// Security control and invocation counter, the five octets before the APDU.
    pub fn security_header(&self) -> [u8; SECURITY_HEADER_LEN] {
        let ic = self.invocation_counter.to_be_bytes();
        [SECURITY_CONTROL_MAC, ic[0], ic[1], ic[2], ic[3]]
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, FrameError> {
        r.expect(&[GENERAL_CIPHERING])?;
        r.expect(&EMPTY_CIPHERING_FIELDS)?;
        let ciphered = r.counted()?;
        let at = r.position() - ciphered.len();
        let Some(apdu_len) = ciphered.len().checked_sub(SECURITY_HEADER_LEN + MAC_LEN) else {
            return Err(FrameError::Truncated { at });
        };
        let mut c = Reader::new(ciphered);
        let [control, ic @ ..] = c.array::<SECURITY_HEADER_LEN>()?;
        if control != SECURITY_CONTROL_MAC {
            return Err(FrameError::SecurityControl { value: control });
        }
        let mut inner_reader = Reader::new(c.take(apdu_len)?);
        let inner = GeneralSigning::read(&mut inner_reader)
            .map_err(|e| e.offset(at + SECURITY_HEADER_LEN))?;
        if !inner_reader.is_empty() {
            return Err(FrameError::Trailing {
                at: at + SECURITY_HEADER_LEN + inner_reader.position(),
            });
        }
        Ok(Self {
            invocation_counter: u32::from_be_bytes(ic),
            inner,
            mac: c.array()?,
        })
    }
}

fn read_cra(r: &mut Reader<'_>) -> Result<Cra, FrameError> {
    match r.byte()? {
        1 => Ok(Cra::Command),
        2 => Ok(Cra::Response),
        3 => Ok(Cra::Alert),
        value => Err(FrameError::Cra { value }),
    }
}

fn read_title(r: &mut Reader<'_>) -> Result<Eui64, FrameError> {
    r.expect(&[8])?;
    Ok(Eui64::from_bytes(r.array()?))
}

fn check_len(len: usize) -> Result<(), FrameError> {
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLong { len });
    }
    Ok(())
}
