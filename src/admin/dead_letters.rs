//! The dead-letter API: list the outbox's dead letters, replay some (back to their Users'
//! queues with a fresh hold time), or discard some for good. Bearer token as the change APIs;
//! each change is durable before the answer.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::{authorized_batch, json, refusal, text, Admin, MessageId};
use crate::outbox::{DeadLetter, OutboundKind};

/// What to do with the named dead letters.
#[derive(Clone, Copy, Debug)]
pub(super) enum Act {
    Replay,
    Discard,
}

/// `GET /admin/v1/dead-letters`: a JSON array, oldest ID first.
pub(super) async fn list<B>(req: &Request<B>, admin: &Admin) -> Response<Full<Bytes>> {
    if let Some(refused) = refusal(req, admin) {
        return refused;
    }
    match admin.outbox.dead_letters().await {
        Ok(letters) => {
            let letters: Vec<_> = letters.iter().map(listed).collect();
            json(StatusCode::OK, &serde_json::Value::Array(letters))
        }
        Err(e) => {
            tracing::error!(error = %e, "Dead letters could not be listed.");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not listed: the outbox is unavailable\n".into(),
            )
        }
    }
}

/// `POST /admin/v1/dead-letters/{replay,discard}` with a JSON array of message IDs (16 hex
/// digits as listed). IDs that are not dead letters are skipped; the answer counts the rest.
pub(super) async fn act(req: Request<Incoming>, admin: &Admin, act: Act) -> Response<Full<Bytes>> {
    let ids: Vec<String> = match authorized_batch(req, admin).await {
        Ok(ids) => ids,
        Err(refused) => return refused,
    };
    let outbox = &admin.outbox;
    let mut parsed = Vec::with_capacity(ids.len());
    for id in &ids {
        match id.parse::<MessageId>() {
            Ok(id) => parsed.push(id),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("{id:?}: {e}\n")),
        }
    }
    let (result, key) = match act {
        Act::Replay => (outbox.replay_dead(&parsed).await, "replayed"),
        Act::Discard => (outbox.discard_dead(&parsed).await, "discarded"),
    };
    match result {
        Ok(n) => {
            tracing::info!(
                asked = parsed.len(),
                done = n,
                action = key,
                "Dead letters handled."
            );
            json(StatusCode::OK, &json!({ key: n }))
        }
        Err(e) => {
            tracing::error!(error = %e, action = key, "Dead letters could not be handled.");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not done: the outbox is unavailable\n".into(),
            )
        }
    }
}

/// One dead letter as the API lists it (times in unix milliseconds).
fn listed(d: &DeadLetter) -> serde_json::Value {
    let (kind, about) = match d.kind {
        OutboundKind::Response { request_id, .. } => ("response", request_id.to_string()),
        OutboundKind::DeviceAlert { code, device, .. } => {
            ("device_alert", format!("{code:04X} from {device}"))
        }
        OutboundKind::DccAlert { code } => ("dcc_alert", code.to_string()),
    };
    json!({
        "id": d.id.to_string(),
        "user": d.user.to_string(),
        "kind": kind,
        "about": about,
        "raised_at_ms": d.raised_at,
        "held_since_ms": d.held_since,
        "dead_at_ms": d.dead_at,
        "body_bytes": d.body_bytes,
    })
}
