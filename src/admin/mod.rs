//! The operators' listener, kept off the mTLS port: `/metrics`, `/livez`, `/readyz` (open), and
//! the change APIs (bearer token): `POST /admin/v1/registry/changes` applies a batch of
//! registration changes — a change of supplier, a device status — and
//! `POST /admin/v1/users/changes` a batch of User changes — a suspension, a withdrawal, a new
//! XML-signing certificate — each atomically and durably. The dead letters of the outbox (same
//! token): `GET /admin/v1/dead-letters` lists them, `POST /admin/v1/dead-letters/replay` and
//! `POST /admin/v1/dead-letters/discard` take a JSON array of message IDs. An originator's
//! anti-replay mark (same token): `POST /admin/v1/replay/reset` with `{"user": .., "counter": ..}`
//! sets it, lower or higher, durably. `POST /admin/v1/reload` (same token) reloads the
//! certificates, trust anchors and CRLs. Anomaly detection (same token, `anomaly.rs`): the
//! threshold set, the quarantined requests, their release and deletion. Bind it to a private
//! interface.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::metrics::Metrics;
use crate::outbox::{MessageId, Outbox};
use crate::register::UserChange;
use crate::registry::Change;
use crate::state::{ApplyError, Rules, State};
use crate::store::ReplayGuard;

/// A change batch is at most 1 MiB of JSON.
const MAX_CHANGE_BYTES: usize = 1024 * 1024;
const CHANGES_PATH: &str = "/admin/v1/registry/changes";
const USER_CHANGES_PATH: &str = "/admin/v1/users/changes";
const DEAD_LETTERS_PATH: &str = "/admin/v1/dead-letters";
const REPLAY_PATH: &str = "/admin/v1/dead-letters/replay";
const DISCARD_PATH: &str = "/admin/v1/dead-letters/discard";
const RULES_PATH: &str = "/admin/v1/rules";
const REPLAY_RESET_PATH: &str = "/admin/v1/replay/reset";
const RELOAD_PATH: &str = "/admin/v1/reload";
const THRESHOLDS_PATH: &str = "/admin/v1/anomaly/thresholds";
const QUARANTINE_PATH: &str = "/admin/v1/quarantine";
const RELEASE_PATH: &str = "/admin/v1/quarantine/release";
const DELETE_PATH: &str = "/admin/v1/quarantine/delete";

/// What the admin listener serves.
#[derive(Clone)]
pub struct Admin {
    pub metrics: Metrics,
    pub state: Arc<State>,
    /// The bearer token for changes; `None` turns the change API off.
    pub token: Option<String>,
    /// The outbox, for the dead-letter API.
    pub outbox: Arc<Outbox>,
    /// The dated rule sets, for the rules API.
    pub rules: Arc<Rules>,
    /// The anti-replay marks, for an operator's reset.
    pub replay: Arc<ReplayGuard>,
    /// Certificate reloads.
    pub reloader: Arc<crate::reload::Reloader>,
    /// What `/readyz` checks besides draining: the audit trail, the journals, the hub link.
    pub health: Health,
    /// The gateway, for anomaly detection's thresholds and quarantine.
    pub gateway: Arc<crate::pipeline::Gateway>,
}

/// The resources a request needs, as `/readyz` sees them.
#[derive(Clone)]
pub struct Health {
    pub audit: crate::audit::Audit,
    /// The pending-command journal and the hub link.
    pub dispatcher: Arc<crate::dispatch::Dispatcher>,
    /// The journals of held requests and DSP schedules.
    pub holds: Arc<crate::store::Holds>,
    pub schedules: Arc<crate::store::Schedules>,
}

impl Admin {
    /// Why the gateway cannot take requests now, if it cannot.
    fn not_ready(&self) -> Option<&'static str> {
        if self.health.audit.is_failing() {
            return Some("the audit trail cannot be written");
        }
        if self.replay.is_failing() {
            return Some("the anti-replay journal cannot be written");
        }
        if self.state.journals_failing() {
            return Some("a change log cannot be written");
        }
        if self.health.holds.is_failing() || self.health.schedules.is_failing() {
            return Some("the held-request or DSP schedule journal cannot be written");
        }
        let anomaly = &self.gateway.anomaly;
        if anomaly.quarantine.is_failing() || anomaly.log.is_failing() {
            return Some("the quarantine or anomaly threshold journal cannot be written");
        }
        if self.health.dispatcher.is_failing() {
            return Some("the pending-command journal cannot be written");
        }
        if !self.health.dispatcher.hub_linked() {
            return Some("the link to the hub network is down");
        }
        None
    }
}

/// Whether `path` is one of the health endpoints, which the listener answers even when its
/// other slots are full.
fn is_health(path: &str) -> bool {
    matches!(path, "/livez" | "/readyz" | "/metrics")
}

async fn route(req: Request<Incoming>, admin: &Admin, draining: bool) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/livez") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, "/readyz") if draining => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n".into())
        }
        (&Method::GET, "/readyz") => match admin.not_ready() {
            Some(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
            None => text(StatusCode::OK, "ready\n".into()),
        },
        (&Method::GET, "/metrics") => {
            let mut r = Response::new(Full::new(Bytes::from(admin.metrics.render())));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (&Method::POST, CHANGES_PATH) => changes(req, admin).await,
        (&Method::POST, USER_CHANGES_PATH) => user_changes(req, admin).await,
        (&Method::GET, DEAD_LETTERS_PATH) => dead_letters::list(&req, admin).await,
        (&Method::POST, REPLAY_PATH) => {
            dead_letters::act(req, admin, dead_letters::Act::Replay).await
        }
        (&Method::POST, DISCARD_PATH) => {
            dead_letters::act(req, admin, dead_letters::Act::Discard).await
        }
        (&Method::GET, RULES_PATH) => rules::list(&req, admin),
        (&Method::POST, RULES_PATH) => rules::add(req, admin).await,
        (&Method::POST, REPLAY_RESET_PATH) => replay_reset(req, admin).await,
        (&Method::POST, RELOAD_PATH) => reload(&req, admin).await,
        (&Method::GET, THRESHOLDS_PATH) => anomaly::thresholds(&req, admin),
        (&Method::POST, THRESHOLDS_PATH) => anomaly::set_thresholds(req, admin).await,
        (&Method::GET, QUARANTINE_PATH) => anomaly::list(&req, admin).await,
        (&Method::POST, RELEASE_PATH) => anomaly::act(req, admin, anomaly::Act::Release).await,
        (&Method::POST, DELETE_PATH) => anomaly::act(req, admin, anomaly::Act::Delete).await,
        (
            _,
            "/livez" | "/readyz" | "/metrics" | CHANGES_PATH | USER_CHANGES_PATH
            | DEAD_LETTERS_PATH | REPLAY_PATH | DISCARD_PATH | REPLAY_RESET_PATH | RELOAD_PATH
            | RULES_PATH | THRESHOLDS_PATH | QUARANTINE_PATH | RELEASE_PATH | DELETE_PATH,
        ) => text(StatusCode::METHOD_NOT_ALLOWED, "wrong method\n".into()),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// `POST /admin/v1/registry/changes` with a JSON array of changes (`schemas/changes.md`):
/// applied all together or not at all, journalled before the answer.
async fn changes(req: Request<Incoming>, admin: &Admin) -> Response<Full<Bytes>> {
    let batch: Vec<Change> = match authorized_batch(req, admin).await {
        Ok(batch) => batch,
        Err(refused) => return refused,
    };
    applied(
        admin.state.apply_changes(&batch).await,
        batch.len(),
        "Registration",
    )
}

/// `POST /admin/v1/users/changes` with a JSON array of User changes (`schemas/changes.md`):
/// applied all together or not at all, journalled before the answer.
async fn user_changes(req: Request<Incoming>, admin: &Admin) -> Response<Full<Bytes>> {
    let batch: Vec<UserChange> = match authorized_batch(req, admin).await {
        Ok(batch) => batch,
        Err(refused) => return refused,
    };
    applied(
        admin.state.apply_user_changes(&batch).await,
        batch.len(),
        "User",
    )
}

/// `POST /admin/v1/reload`: reads the certificates, trust anchors and CRLs again and puts them
/// in force if all of them load; 200 with what is in force, or 500 with why nothing changed.
async fn reload(req: &Request<Incoming>, admin: &Admin) -> Response<Full<Bytes>> {
    if let Some(refused) = refusal(req, admin) {
        return refused;
    }
    match admin.reloader.reload("admin").await {
        Ok(r) => json(
            StatusCode::OK,
            &serde_json::json!({
                "user_certs": r.user_certs,
                "digital_signing_certs": r.digital_signing_certs,
                "tls_anchors": r.tls_anchors,
                "tls_revoked": r.tls_revoked,
                "signing_revoked": r.signing_revoked,
            }),
        ),
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("not reloaded: {e}{cause}\n"),
            )
        }
    }
}

/// What `POST /admin/v1/replay/reset` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayReset {
    user: crate::domain::UserId,
    counter: u64,
}

/// `POST /admin/v1/replay/reset`: sets an originator's anti-replay mark, journalled before the
/// answer; its next request must carry a counter above `counter`.
async fn replay_reset(req: Request<Incoming>, admin: &Admin) -> Response<Full<Bytes>> {
    let reset: ReplayReset = match authorized_json(req, admin).await {
        Ok(reset) => reset,
        Err(refused) => return refused,
    };
    let was = admin.replay.mark(&reset.user);
    match admin.replay.reset(reset.user, reset.counter).await {
        Ok(()) => {
            tracing::warn!(user = %reset.user, was, counter = reset.counter, "Anti-replay mark reset by an operator.");
            text(StatusCode::OK, format!("mark set to {}\n", reset.counter))
        }
        Err(e) => {
            tracing::error!(error = %e, "An anti-replay reset could not be journalled.");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not applied: the anti-replay journal is unavailable\n".into(),
            )
        }
    }
}

/// The answer to an applied (or refused) batch of `len` changes of `kind`.
fn applied(result: Result<(), ApplyError>, len: usize, kind: &str) -> Response<Full<Bytes>> {
    match result {
        Ok(()) => {
            tracing::info!(changes = len, kind, "Changes applied.");
            text(StatusCode::OK, format!("applied {len} changes\n"))
        }
        Err(ApplyError::Invalid(e)) => text(StatusCode::CONFLICT, format!("not applied: {e}\n")),
        Err(e @ ApplyError::UnregisteredUser(_)) => {
            text(StatusCode::CONFLICT, format!("not applied: {e}\n"))
        }
        Err(ApplyError::InvalidUser(e)) => {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            text(StatusCode::CONFLICT, format!("not applied: {e}{cause}\n"))
        }
        Err(e @ ApplyError::Journal(_)) => {
            tracing::error!(error = %e, kind, "Changes could not be journalled.");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not applied: the change log is unavailable\n".into(),
            )
        }
    }
}

/// The bearer token checked and the body read (at most 1 MiB) as a JSON array of `T`; or the
/// answer that refuses the request.
async fn authorized_batch<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    admin: &Admin,
) -> Result<Vec<T>, Response<Full<Bytes>>> {
    authorized_json(req, admin).await
}

/// The bearer token checked and the body read (at most 1 MiB) as JSON `T`; or the answer that
/// refuses the request.
async fn authorized_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    admin: &Admin,
) -> Result<T, Response<Full<Bytes>>> {
    if let Some(refused) = refusal(&req, admin) {
        return Err(refused);
    }
    let body = match Limited::new(req.into_body(), MAX_CHANGE_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "at most 1 MiB of changes\n".into(),
            ))
        }
    };
    serde_json::from_slice(&body).map_err(|e| {
        text(
            StatusCode::BAD_REQUEST,
            format!("not the JSON this endpoint takes: {e}\n"),
        )
    })
}

/// The answer that refuses the request if it lacks the bearer token; `None` if it has it.
fn refusal<B>(req: &Request<B>, admin: &Admin) -> Option<Response<Full<Bytes>>> {
    let Some(token) = &admin.token else {
        return Some(text(
            StatusCode::FORBIDDEN,
            "the change API is off: no admin token is configured\n".into(),
        ));
    };
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(presented.as_bytes(), token.as_bytes()) {
        tracing::warn!("Admin change refused: wrong or missing token.");
        return Some(text(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required\n".into(),
        ));
    }
    None
}

/// Compares two secrets in time that does not depend on where they differ: both are hashed to
/// a fixed length first, then every byte is compared.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use ring::digest::{digest, SHA256};
    let (a, b) = (digest(&SHA256, a), digest(&SHA256, b));
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

mod anomaly;
mod dead_letters;
mod listener;
mod rules;

pub use listener::serve;

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
