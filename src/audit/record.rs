//! What one audit record says. Plain data, written as one JSON object per line: who asked, under
//! which TLS identity and role, what, about which device, what was decided, how long each phase
//! took and how many bytes moved; or one attempt to deliver an asynchronous message. Never a
//! message body, a signature or a key.
//!
//! Codes, roles and classes are kept as the text DUIS uses, so a trail written by one version
//! reads in the next even when the set of codes grows.

use serde::{Deserialize, Serialize};

use crate::domain::{DeviceId, RequestId, Srv, UserId, UserRole};

/// One auditable event: the gateway's decision on a request, or one delivery attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// A record is made, written and dropped one at a time, never kept in bulk: its size is no cost.
#[allow(clippy::large_enum_variant)]
pub enum AuditEvent {
    Request(RequestRecord),
    Delivery(DeliveryRecord),
    Execution(ExecutionRecord),
    Routing(RoutingRecord),
}

impl AuditEvent {
    /// When the event happened (unix milliseconds); files rotate on this time's UTC day.
    pub fn at_ms(&self) -> i64 {
        match self {
            Self::Request(r) => r.at_ms,
            Self::Delivery(d) => d.at_ms,
            Self::Execution(e) => e.at_ms,
            Self::Routing(r) => r.at_ms,
        }
    }
}

/// The gateway's decision on one request, made when its synchronous answer was written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the request was received (unix milliseconds).
    pub at_ms: i64,
    /// `send`, `transform` or `dcc` (the URL's service).
    pub service: String,
    /// The User ID the TLS client certificate proves.
    pub tls_user: UserId,
    /// The client certificate's SMKI role code (two hex digits).
    pub tls_role: String,
    /// The RequestID, when the request got far enough to read one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::registry::text::option"
    )]
    pub request_id: Option<RequestId>,
    /// The Service Reference Variant, when it is in the catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srv: Option<Srv>,
    /// The role access control chose (only for permitted requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<UserRole>,
    /// The eligibility class of that role: `A`, `B` or `C`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The device the request is about (the RequestID's target; the DCC's ID for non-device
    /// requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    /// Whether the SRV is on-demand (the catalogue's flag at the time): what the monthly
    /// performance report counts.
    #[serde(default)]
    pub on_demand: bool,
    /// The version of the dated rule sets the decision used (`base` before any dated one), when
    /// the request got far enough to be judged against them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
    /// `accepted`, or the closed-set refusal reason (`docs/response-codes.md`).
    pub decision: String,
    /// The DUIS response code of the synchronous answer.
    pub code: String,
    /// Whether an asynchronous Service Response is still to come (a device request
    /// acknowledged with `I99`); otherwise the synchronous answer is the response.
    #[serde(default)]
    pub response_follows: bool,
    pub timings: Timings,
    /// Request body bytes read, and answer body bytes written.
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl RequestRecord {
    /// The User the request is charged to: the RequestID's originator, or the TLS identity
    /// when no RequestID was read.
    pub fn user(&self) -> UserId {
        self.request_id.map_or(self.tls_user, |r| r.originator)
    }

    pub fn accepted(&self) -> bool {
        self.decision == ACCEPTED
    }
}

/// The `decision` of a request that passed every check.
pub const ACCEPTED: &str = "accepted";

/// The DSP's decision on sending, at its time, a request it held or a DSP schedule's execution:
/// access control decided again then, under the rule set in force then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// When it was decided (unix milliseconds).
    pub at_ms: i64,
    /// `held` (a future-dated request the DSP held) or `scheduled` (a schedule's execution).
    pub source: String,
    /// The held request's RequestID, or the execution's (the schedule's owner, device and
    /// execution counter).
    #[serde(with = "crate::registry::text")]
    pub request_id: RequestId,
    pub srv: Srv,
    /// The role access control chose, when it permitted the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<UserRole>,
    /// The version of the dated rule sets the decision used (`base` before any dated one).
    pub rules: String,
    /// `sent`, or `refused` (its final message then carries `code`).
    pub decision: String,
    /// The DUIS code of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The routing of one device alert: the Users it goes to, decided by the alert routes of the
/// rule set in force when the device raised it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutingRecord {
    /// When it was routed (unix milliseconds).
    pub at_ms: i64,
    /// The gateway's identifier of the raised alert (the counter of every message it becomes).
    pub alert_id: u64,
    pub device: DeviceId,
    /// The GBCS alert code, four hex digits.
    pub code: String,
    /// When the device raised it (unix milliseconds).
    pub raised_at_ms: i64,
    /// The version of the dated rule sets whose alert routes decided.
    pub rules: String,
    /// The Users it goes to (a copy the alert-storm throttle holds included), in routing order.
    pub users: Vec<UserId>,
}

/// Microseconds spent in each phase of a request; a phase the request did not reach is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_us: Option<u64>,
    /// From the body being read to the answer being written.
    pub total_us: u64,
}

/// One attempt to deliver an asynchronous message (a Service Response or an alert) to a User's
/// Receive Response Service. The lead's delivery worker records one per attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// When the attempt ended (unix milliseconds).
    pub at_ms: i64,
    /// The outbox's message identifier.
    pub message_id: String,
    /// The User the message is for.
    pub user: UserId,
    pub message: Message,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
    /// The HTTP status the User's endpoint answered, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// When the message was raised (the device answered, the alert arrived), unix milliseconds.
    pub raised_at_ms: i64,
    /// Body bytes sent in this attempt.
    pub bytes: u64,
}

/// What was delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// The asynchronous Service Response to a request, with its DUIS code (`I0`, `E20`, …).
    Response {
        #[serde(with = "crate::registry::text")]
        request_id: RequestId,
        code: String,
    },
    /// A Device Alert (four hex digits) or DCC Alert (`N12`, `AD1`, …).
    Alert { code: String },
}

/// How a delivery attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// Refused, unreachable or timed out; it will be retried.
    Failed,
    /// The hold time passed: moved to the dead-letter store.
    DeadLettered,
}

/// The first line of every audit file: where the chain comes from. Its `prev` is the hash of the
/// last record of the file before, so the chain runs across files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    pub file: String,
    /// The previous record's hash (hex); all zeros at the start of a trail.
    pub prev: String,
    pub at_ms: i64,
}

/// A line's record as stored: an opening or an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub(super) enum Stored {
    Open(Opening),
    Request(RequestRecord),
    Delivery(DeliveryRecord),
    Execution(ExecutionRecord),
    Routing(RoutingRecord),
}

impl Stored {
    pub(super) fn into_event(self) -> Option<AuditEvent> {
        match self {
            Self::Open(_) => None,
            Self::Request(r) => Some(AuditEvent::Request(r)),
            Self::Delivery(d) => Some(AuditEvent::Delivery(d)),
            Self::Execution(e) => Some(AuditEvent::Execution(e)),
            Self::Routing(r) => Some(AuditEvent::Routing(r)),
        }
    }
}
