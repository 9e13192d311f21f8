//! The hub link's wire format, spoken by the gateway's [`RemoteHub`](super::RemoteHub) and by a
//! hub network in its own process (`dccgw commshub`): plain HTTP/1.1.
//!
//! - `POST /v1/commands`: one signed command; `202` taken, `503` at the hub's bound of commands
//!   in flight, any other status refused.
//! - `GET /v1/events`: a stream of the events this gateway is to handle, one a line, with an
//!   empty heartbeat line every few seconds. The hub may serve several gateways (instances of a
//!   cluster) at once: it hands each event to one stream at a time, and offers the events a
//!   stream held unacknowledged to the others once that stream ends (or after a lease of a
//!   minute). So one gateway's stream carries some of the events, not a contiguous run of them,
//!   and an event may come to two gateways (duplicates, never loss).
//! - `POST /v1/events/ack?epoch=E` (`204`), body: the sequence numbers of epoch E the gateway
//!   holds durably, as numbers and inclusive ranges separated by commas (`1-40,42,45-47`,
//!   ascending, at most [`MAX_ACK_BYTES`]); the hub forgets them, whichever stream held them.
//!
//! An event line is one JSON object (NDJSON) with the hub instance's `epoch` and a sequence
//! number the gateway acknowledges. Payloads are base64. A line is at most [`MAX_EVENT_LINE`]
//! bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::domain::{DeviceId, RequestId, Srv};
use crate::routing::MAX_PAYLOAD_BYTES;

use super::link::HubEvent;

/// Where a signed command is posted.
pub(crate) const COMMANDS: &str = "/v1/commands";
/// The event stream.
pub(crate) const EVENTS: &str = "/v1/events";
/// Where the gateway acknowledges events.
pub(crate) const EVENTS_ACK: &str = "/v1/events/ack";

/// The longest acknowledgement body the hub reads (about 4 000 ranges of 16-digit numbers).
pub(crate) const MAX_ACK_BYTES: usize = 64 * 1024;

/// The longest event line accepted (a payload at its bound, base64, plus the fields).
pub(crate) const MAX_EVENT_LINE: usize = MAX_PAYLOAD_BYTES * 4 / 3 + 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    epoch: u64,
    seq: u64,
    kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    device: DeviceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    srv: Option<Srv>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(default)]
    payload: String,
    at: i64,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Response,
    Unreachable,
    Refused,
    Alert,
    FutureDated,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("an event line of {0} bytes is longer than the bound")]
    TooLong(usize),
    #[error("an event line is not an event")]
    Json(#[source] serde_json::Error),
    #[error("an event's {0} field is missing or malformed")]
    Field(&'static str),
    #[error("an acknowledgement's sequence numbers do not read")]
    Acks,
}

/// Sequence numbers, ascending, as an acknowledgement's body: consecutive ones as one range.
pub(crate) fn encode_acks(seqs: impl IntoIterator<Item = u64>) -> String {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for seq in seqs {
        match ranges.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(seq) => *last = seq,
            _ => ranges.push((seq, seq)),
        }
    }
    let parts: Vec<String> = ranges
        .into_iter()
        .map(|(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        })
        .collect();
    parts.join(",")
}

/// Reads an acknowledgement's body: inclusive ranges. Every part must read and each range run
/// forward; an empty body is no ranges.
pub(crate) fn decode_acks(body: &[u8]) -> Result<Vec<(u64, u64)>, WireError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| WireError::Acks)?
        .trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| {
            let (first, last) = part.split_once('-').unwrap_or((part, part));
            let first: u64 = first.trim().parse().map_err(|_| WireError::Acks)?;
            let last: u64 = last.trim().parse().map_err(|_| WireError::Acks)?;
            if first > last {
                return Err(WireError::Acks);
            }
            Ok((first, last))
        })
        .collect()
}

/// One event as a line, newline included.
pub(crate) fn encode(epoch: u64, seq: u64, event: &HubEvent) -> Vec<u8> {
    let srv = match event {
        HubEvent::FutureDated { srv, .. } => Some(*srv),
        _ => None,
    };
    let (kind, request_id, device, code, payload, at) = match event {
        HubEvent::Response {
            request_id,
            device,
            payload,
            at,
        } => (
            Kind::Response,
            Some(request_id),
            device,
            None,
            &payload[..],
            at,
        ),
        HubEvent::Unreachable {
            request_id,
            device,
            at,
        } => (
            Kind::Unreachable,
            Some(request_id),
            device,
            None,
            &[][..],
            at,
        ),
        HubEvent::Refused {
            request_id,
            device,
            at,
        } => (Kind::Refused, Some(request_id), device, None, &[][..], at),
        HubEvent::Alert {
            device,
            code,
            payload,
            at,
        } => (Kind::Alert, None, device, Some(*code), &payload[..], at),
        HubEvent::FutureDated {
            request_id,
            device,
            code,
            payload,
            at,
            ..
        } => (
            Kind::FutureDated,
            Some(request_id),
            device,
            Some(*code),
            &payload[..],
            at,
        ),
    };
    let wire = WireEvent {
        epoch,
        seq,
        kind,
        request_id: request_id.map(ToString::to_string),
        srv,
        device: *device,
        code,
        payload: STANDARD.encode(payload),
        at: *at,
    };
    // Serialising plain strings and numbers cannot fail.
    let mut line = serde_json::to_vec(&wire).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Reads one line (without its newline): `(epoch, seq, event)`.
pub(crate) fn decode(line: &[u8]) -> Result<(u64, u64, HubEvent), WireError> {
    if line.len() > MAX_EVENT_LINE {
        return Err(WireError::TooLong(line.len()));
    }
    let w: WireEvent = serde_json::from_slice(line).map_err(WireError::Json)?;
    let payload = STANDARD
        .decode(w.payload.as_bytes())
        .map_err(|_| WireError::Field("payload"))?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(WireError::Field("payload"));
    }
    let request_id = || -> Result<RequestId, WireError> {
        w.request_id
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or(WireError::Field("request_id"))
    };
    let code = || w.code.ok_or(WireError::Field("code"));
    let event = match w.kind {
        Kind::Response => HubEvent::Response {
            request_id: request_id()?,
            device: w.device,
            payload,
            at: w.at,
        },
        Kind::Unreachable => HubEvent::Unreachable {
            request_id: request_id()?,
            device: w.device,
            at: w.at,
        },
        Kind::Refused => HubEvent::Refused {
            request_id: request_id()?,
            device: w.device,
            at: w.at,
        },
        Kind::Alert => HubEvent::Alert {
            device: w.device,
            code: code()?,
            payload,
            at: w.at,
        },
        Kind::FutureDated => HubEvent::FutureDated {
            request_id: request_id()?,
            srv: w.srv.ok_or(WireError::Field("srv"))?,
            device: w.device,
            code: code()?,
            payload,
            at: w.at,
        },
    };
    Ok((w.epoch, w.seq, event))
}
