//! The content of GBCS commands, responses and alerts, and the frames around them.
//!
//! The named use cases get their real content, built from the fields a DUIS body gives and
//! checked field by field against the public samples: ECS01a (SRV 1.1.1, [`tariff`]), CS02b
//! (6.15.1, [`credentials`]), ECS42 (7.1, [`supply`]), ECS52 (11.2) and ECS17b (4.1.1)
//! ([`reads`]). Every other use case carries the DUIS body in a documented deterministic
//! encoding ([`body`]) under its real message code. Alerts: [`alert`].

pub mod alert;
pub mod body;
pub mod credentials;
pub mod reads;
pub mod supply;
pub mod tariff;

use time::OffsetDateTime;

use super::frame::{
    Cra, DlmsDateTime, GeneralSigning, MessageCode, OtherInformation, SignatureField, Supplement,
    TransactionId,
};
use super::FrameError;
use crate::domain::Eui64;

/// Why content cannot be built from the inputs given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("{field} is {value}, outside what GBCS can carry")]
    OutOfRange { field: &'static str, value: i64 },
    #[error("SRV {srv} has no GBCS use case with a public message code for this device")]
    NoMessageCode { srv: crate::domain::Srv },
    #[error("{field} has {count} entries, over the {max} GBCS allows")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
}

/// When a command takes effect, from the DUIS `ExecutionDateTime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Execution {
    /// No `ExecutionDateTime`: at once.
    Now,
    /// At that instant (the device holds the command until then).
    At(OffsetDateTime),
    /// Cancel the future-dated command the device holds.
    Cancel,
}

/// The `ExecutionDateTime` with which the DCC's public request templates cancel a future-dated
/// command: 3000-12-31T00:00:00Z.
pub const CANCELLATION: OffsetDateTime = time::macros::datetime!(3000-12-31 00:00:00 UTC);

impl Execution {
    pub fn from_duis(at: Option<OffsetDateTime>) -> Self {
        match at {
            None => Self::Now,
            Some(at) if at == CANCELLATION => Self::Cancel,
            Some(at) => Self::At(at),
        }
    }

    /// The DLMS activation date-time: now, the instant, or never.
    pub fn activation(&self) -> DlmsDateTime {
        match self {
            Self::Now => DlmsDateTime::NOW,
            Self::At(at) => DlmsDateTime::from_utc(*at),
            Self::Cancel => DlmsDateTime::NEVER,
        }
    }
}

/// Who a command is between: the User (the DUIS originator), the device (the target) and the
/// originator counter of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parties {
    pub user: Eui64,
    pub device: Eui64,
    pub counter: u64,
}

/// A command's frame as the DCC builds it: for a critical command the pre-command the User signs
/// (no signature field), for any other an unsigned command.
pub fn command_frame(
    parties: &Parties,
    code: MessageCode,
    content: Vec<u8>,
    critical: bool,
) -> GeneralSigning {
    GeneralSigning {
        transaction: TransactionId {
            cra: Cra::Command,
            counter: parties.counter,
        },
        originator: parties.user,
        recipient: parties.device,
        date_time: None,
        other: plain(code),
        content,
        signature: if critical {
            SignatureField::Absent
        } else {
            SignatureField::Empty
        },
    }
}

/// A device's response frame to the command between `parties`, unsigned (a device signs its
/// response to a critical command with [`super::sign`]).
pub fn response_frame(
    parties: &Parties,
    code: MessageCode,
    date_time: Option<DlmsDateTime>,
    content: Vec<u8>,
) -> GeneralSigning {
    GeneralSigning {
        transaction: TransactionId {
            cra: Cra::Response,
            counter: parties.counter,
        },
        originator: parties.device,
        recipient: parties.user,
        date_time,
        other: plain(code),
        content,
        signature: SignatureField::Empty,
    }
}

/// The response frame to `command`: the same counter and message code, originator and recipient
/// swapped, unsigned.
pub fn response_to(
    command: &GeneralSigning,
    date_time: Option<DlmsDateTime>,
    content: Vec<u8>,
) -> GeneralSigning {
    let parties = Parties {
        user: command.originator,
        device: command.recipient,
        counter: command.transaction.counter,
    };
    response_frame(&parties, command.other.message_code, date_time, content)
}

/// A device's alert frame to `user`, under the device's own alert counter, unsigned.
pub fn alert_frame(
    device: Eui64,
    user: Eui64,
    alert_counter: u64,
    code: MessageCode,
    content: Vec<u8>,
) -> GeneralSigning {
    GeneralSigning {
        transaction: TransactionId {
            cra: Cra::Alert,
            counter: alert_counter,
        },
        originator: device,
        recipient: user,
        date_time: None,
        other: plain(code),
        content,
        signature: SignatureField::Empty,
    }
}

fn plain(message_code: MessageCode) -> OtherInformation {
    OtherInformation {
        message_code,
        supplement: Supplement::None,
    }
}

fn check_range(
    field: &'static str,
    value: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<(), ContentError> {
    if !range.contains(&value) {
        return Err(ContentError::OutOfRange { field, value });
    }
    Ok(())
}

fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), ContentError> {
    if count > max {
        return Err(ContentError::TooMany { field, count, max });
    }
    Ok(())
}
