//! GBCS, the GB Companion Specification's messages between the DCC and devices: the frames,
//! the signature a User puts on a critical command, the content of each use case's command,
//! response and alert, and which use case and message code serve each Service Reference Variant.
//! Layer 0: pure. Keys, MACs and the time come in as arguments or through a trait.
//!
//! - [`frame`]: the General Signing APDU (`DF`) and the MAC header (`DD`), encoded and
//!   decoded byte for byte, bounded by [`MAX_FRAME_LEN`].
//! - [`signature`]: the User's (or a device's) ECDSA P-256 signature over a frame: sign through
//!   [`SignDigitally`], verify with a public key.
//! - [`dlms`], [`der`]: the two content encodings the named use cases use (DLMS COSEM data and
//!   ASN.1).
//! - [`usecase`]: the content of commands, responses and alerts: the real encoding for ECS01a,
//!   CS02b, ECS42, ECS52 and ECS17b, and a documented encoding of the DUIS body for the rest.
//! - [`table`]: SRV → GBCS use cases and message codes.
//! - [`command`]: the command for a DUIS request (its use case's content from the body), and
//!   the MAC header the DCC puts around it.
//!
//! `schemas/gbcs.md` describes the layouts, the bounds and which use cases get which encoding.

pub mod command;
pub mod der;
pub mod dlms;
pub mod frame;
mod length;
pub mod signature;
pub mod table;
pub mod usecase;

#[cfg(test)]
mod tests;

pub use frame::{
    Apdu, ComputeMac, Cra, DlmsDateTime, GeneralSigning, MacProtected, MessageCode,
    OtherInformation, RemotePartyCertificate, SignatureField, Supplement, TransactionId,
};
pub use signature::{
    sign, sign_precommand, signed_bytes, verify, verify_apdu, verify_signed_precommand,
    SignDigitally, SignatureError,
};
pub use table::{lookup, Table, Target, UseCase};

/// The largest frame this module reads or writes, in bytes: 60 KiB, under GBCS's two-octet
/// length. The largest public sample (an ECS01a tariff or a CS02b credentials update) is under
/// 2 KiB; a command carrying a DUIS body in the body encoding is larger (the biggest public
/// request template's, an ECS46d scheduler, is about 17 KiB). A longer input is refused before
/// it is read; a longer frame cannot be built.
pub const MAX_FRAME_LEN: usize = 60 * 1024;

/// Why bytes are not a GBCS frame this module reads, or a frame cannot be written. Positions are
/// byte offsets into the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("{len} bytes is over the {MAX_FRAME_LEN}-byte bound on a GBCS frame")]
    TooLong { len: usize },
    #[error("the frame ends early at byte {at}")]
    Truncated { at: usize },
    #[error("the length at byte {at} is not in its shortest form or over two octets")]
    Length { at: usize },
    #[error("the bytes at {at} are not the fixed values GBCS puts there")]
    Unexpected { at: usize },
    #[error(
        "tag {tag:#04X} is not a frame this module reads (General Signing DF or MAC header DD)"
    )]
    Tag { tag: u8 },
    #[error("CRA flag {value} is not 1, 2 or 3")]
    Cra { value: u8 },
    #[error("a date-time of {len} octets (GBCS has none or 12)")]
    DateTimeLength { len: usize },
    #[error("other information of {len} octets (GBCS has 2, 10, 18, 26 or more)")]
    OtherInformationLength { len: usize },
    #[error("a signature of {len} octets (GBCS has none or 64)")]
    SignatureLength { len: usize },
    #[error("security control {value:#04X} is not 0x11 (authenticated, not encrypted)")]
    SecurityControl { value: u8 },
    #[error("bytes after the end of the frame, from byte {at}")]
    Trailing { at: usize },
}

impl FrameError {
    /// The same error with its position moved by `by` (for a frame read inside another).
    fn offset(self, by: usize) -> Self {
        match self {
            Self::Truncated { at } => Self::Truncated { at: at + by },
            Self::Length { at } => Self::Length { at: at + by },
            Self::Unexpected { at } => Self::Unexpected { at: at + by },
            Self::Trailing { at } => Self::Trailing { at: at + by },
            other => other,
        }
    }
}
