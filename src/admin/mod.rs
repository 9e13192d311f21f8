//! The operators' listener, kept off the mTLS port: `/metrics`, `/livez`, `/readyz` (open), and
//! the change APIs (bearer token): `POST /admin/v1/registry/changes` applies a batch of
//! registration changes — a change of supplier, a device status — and
//! `POST /admin/v1/users/changes` a batch of User changes — a suspension, a withdrawal, a new
//! XML-signing certificate — each atomically and durably. The dead letters of the outbox (same
//! token): `GET /admin/v1/dead-letters` lists them, `POST /admin/v1/dead-letters/replay` and
//! `POST /admin/v1/dead-letters/discard` take a JSON array of message IDs. Bind it to a private
//! interface.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::outbox::{MessageId, Outbox};
use crate::register::UserChange;
use crate::registry::Change;
use crate::state::{ApplyError, Rules, State};

/// Bounds for the admin port: a few short requests at a time; at the connection bound extra
/// connections are turned away at once; a change batch is at most 1 MiB of JSON.
const MAX_ADMIN_CONNECTIONS: usize = 64;
const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CHANGE_BYTES: usize = 1024 * 1024;
const CHANGES_PATH: &str = "/admin/v1/registry/changes";
const USER_CHANGES_PATH: &str = "/admin/v1/users/changes";
const DEAD_LETTERS_PATH: &str = "/admin/v1/dead-letters";
const REPLAY_PATH: &str = "/admin/v1/dead-letters/replay";
const DISCARD_PATH: &str = "/admin/v1/dead-letters/discard";
const RULES_PATH: &str = "/admin/v1/rules";

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
}

/// Serves until `stopped`. Registers and keys are loaded before this starts, so the gateway is
/// ready while it serves; once shutdown begins (`draining`) `/readyz` answers 503 so that load
/// balancers stop sending while connections drain.
pub async fn serve(
    listener: TcpListener,
    admin: Admin,
    draining: watch::Receiver<bool>,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => break,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let admin = admin.clone();
        let draining = draining.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let admin = admin.clone();
                let draining = *draining.borrow();
                async move { Ok::<_, Infallible>(route(req, &admin, draining).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(ADMIN_HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

async fn route(req: Request<Incoming>, admin: &Admin, draining: bool) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/livez") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, "/readyz") if draining => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n".into())
        }
        (&Method::GET, "/readyz") => text(StatusCode::OK, "ready\n".into()),
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
        (&Method::GET, DEAD_LETTERS_PATH) => dead_letters::list(&req, admin),
        (&Method::POST, REPLAY_PATH) => {
            dead_letters::act(req, admin, dead_letters::Act::Replay).await
        }
        (&Method::POST, DISCARD_PATH) => {
            dead_letters::act(req, admin, dead_letters::Act::Discard).await
        }
        (&Method::GET, RULES_PATH) => rules::list(&req, admin),
        (&Method::POST, RULES_PATH) => rules::add(req, admin).await,
        (
            _,
            "/livez" | "/readyz" | "/metrics" | CHANGES_PATH | USER_CHANGES_PATH
            | DEAD_LETTERS_PATH | REPLAY_PATH | DISCARD_PATH | RULES_PATH,
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

/// The answer to an applied (or refused) batch of `len` changes of `kind`.
fn applied(result: Result<(), ApplyError>, len: usize, kind: &str) -> Response<Full<Bytes>> {
    match result {
        Ok(()) => {
            tracing::info!(changes = len, kind, "Changes applied.");
            text(StatusCode::OK, format!("applied {len} changes\n"))
        }
        Err(ApplyError::Invalid(e)) => text(StatusCode::CONFLICT, format!("not applied: {e}\n")),
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

/// The bearer token checked and the body read (at most 1 MiB) as JSON of type `T`.
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
            format!("not a JSON array of changes: {e}\n"),
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

mod dead_letters;
mod rules;

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
