//! What the outbox carries: one signed message for one User, and the identifiers that name it.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

use crate::domain::{DccAlertCode, DeviceId, RequestId, ResponseCode, UserId};

/// An outbound message's identifier, unique within one outbox; shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct MessageId(u64);

impl MessageId {
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("a message ID is 1 to 16 hex digits")]
    MessageId,
}

impl FromStr for MessageId {
    type Err = MessageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MessageError::MessageId);
        }
        u64::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| MessageError::MessageId)
    }
}

/// What a message is, for the operator's listing, the log and the metric label.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OutboundKind {
    /// A Service Response to a request, with its code (`I0` with the device's data, or
    /// `E20`/`E21`).
    Response {
        request_id: RequestId,
        code: ResponseCode,
    },
    /// A Device Alert (`DeviceAlertMessage`), or a future-dated execution alert (`8F66`,
    /// `8F67`), which names the request it answers.
    DeviceAlert {
        code: u16,
        device: DeviceId,
        request_id: Option<RequestId>,
    },
    /// A DCC Alert the gateway raised itself (`DCCAlertMessage`).
    DccAlert { code: DccAlertCode },
}

impl OutboundKind {
    /// The closed set of metric labels.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Response { .. } => "response",
            Self::DeviceAlert { .. } => "device_alert",
            Self::DccAlert { .. } => "dcc_alert",
        }
    }
}

impl fmt::Display for OutboundKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Response { request_id, .. } => write!(f, "response to {request_id}"),
            Self::DeviceAlert {
                code,
                device,
                request_id: None,
            } => write!(f, "device alert {code:04X} from {device}"),
            Self::DeviceAlert {
                code,
                device,
                request_id: Some(r),
            } => write!(f, "device alert {code:04X} from {device} for {r}"),
            Self::DccAlert { code } => write!(f, "DCC alert {code}"),
        }
    }
}

/// A message handed to [`super::Outbox::enqueue`]: already signed, addressed to one User.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    pub id: MessageId,
    pub user: UserId,
    pub kind: OutboundKind,
    /// The signed DUIS XML, POSTed as it is.
    pub body: Vec<u8>,
    /// When the response or alert arose, Unix milliseconds.
    pub raised_at: i64,
}

/// A message as the outbox holds it (pending or dead-lettered) and hands it to a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub user: UserId,
    pub kind: OutboundKind,
    pub body: Bytes,
    /// When the response or alert arose, Unix milliseconds.
    pub raised_at: i64,
    /// When the hold time started, Unix milliseconds: the enqueue, or the operator's replay of
    /// a dead letter.
    pub held_since: i64,
}

impl Message {
    pub(super) fn from_outbound(o: Outbound, held_since: i64) -> Self {
        Self {
            id: o.id,
            user: o.user,
            kind: o.kind,
            body: Bytes::from(o.body),
            raised_at: o.raised_at,
            held_since,
        }
    }
}

/// A dead letter as the operator lists it (the body stays in the outbox).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: MessageId,
    pub user: UserId,
    pub kind: OutboundKind,
    pub raised_at: i64,
    pub held_since: i64,
    /// When it was moved to the dead-letter store, Unix milliseconds.
    pub dead_at: i64,
    pub body_bytes: usize,
}
