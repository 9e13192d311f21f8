//! `dccgw commshub`: the simulated comms-hub network as its own process, for realistic runs and
//! load tests. Plain HTTP/1.1, bound to loopback unless told otherwise: every command is signed
//! by the access-control broker and verified here, so the link needs no transport security for
//! integrity, and the simulator's events carry no secrets; keeping it plain keeps the load tool's
//! numbers about the gateway, not about a second TLS stack. Put it behind TLS (or a private
//! network) before it leaves the host.
//!
//! The link is the one the gateway's `RemoteHub` speaks (`dispatch/wire.rs`):
//!
//! - `POST /v1/commands` (a signed command, at most `MAX_COMMAND_BYTES`): 202 taken, 403 refused
//!   (unsigned, forged, malformed), 413 too large, 503 at the in-flight bound.
//! - `GET /v1/events`: a stream of events for one gateway, NDJSON, with an empty heartbeat line
//!   every 5 s. Every unacknowledged event is held by at most one stream at a time: a stream
//!   takes the events no other stream holds (oldest first), then new ones as they happen. Any
//!   number of gateways may read at once; each event goes to one of them.
//! - `POST /v1/events/ack?epoch=E` with a body of sequence numbers and inclusive ranges
//!   (`1-40,42,45-47`, at most `MAX_ACK_BYTES`; `dispatch/wire.rs`): a gateway holds those
//!   events durably; they are forgotten, whichever stream held them. `204`; `400` for a body
//!   that does not read. An acknowledgement for another epoch (an earlier hub process) is ignored.
//! - `GET /livez`.
//!
//! An event held by a stream that ends (the gateway stopped, was killed, or its connection
//! broke) is offered again to the other streams at once; one held unacknowledged for
//! [`events::LEASE`] (a gateway gone silent on a connection that did not break) is offered
//! again too. So nothing is lost while any gateway reads, and an event may reach two gateways
//! (both saw it; the gateways' Service Responses and alerts allow duplicates). Unacknowledged
//! events are kept up to `retain_events`; at the bound the simulated devices wait (no event is
//! dropped) and new commands meet the in-flight bound.
//!
//! With `raised_log` set, every event the hub raises is appended to that file (NDJSON, one line
//! an event: epoch, sequence number, kind, device, alert code, RequestID, frame counter, time;
//! `raised.rs`) before it is offered to the gateway: a record of what the simulated network did
//! in a run, which a test or an operator can check deliveries against. The configuration
//! (paths as given, relative to the working directory):
//!
//! ```toml
//! listen = "127.0.0.1:7700"
//! devices = "devices.csv"
//! registrations = "registrations.csv"
//! acb_certs = ["certs/dcc-acb.pem"]
//! raised_log = "raised.ndjson"     # optional
//! [hub]                            # the simulator (`config.rs`)
//! seed = 7
//! digital_signing_certs = "certs/users"   # Users' keys the devices trust (critical commands)
//! [hub.alerts]
//! rate_per_sec = 2.0
//! ```

mod events;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::dispatch::wire::{decode_acks, COMMANDS, EVENTS, EVENTS_ACK, MAX_ACK_BYTES};
use crate::dispatch::{HubError, HubNetwork};
use crate::registry::RegistryError;
use crate::routing::{SignedCommand, MAX_COMMAND_BYTES};

use super::config::{ConfigError, HubConfig};
use super::inprocess::InProcessHub;
use super::raised::{RaisedError, RaisedLog};
use super::sim::Simulator;
use events::{retain, EventLog, LineStream, LEASE};

/// Connections served at once; at the bound, further ones are closed at once.
const MAX_CONNECTIONS: usize = 256;

/// The hub process's configuration (the `[commshub]` table, or its own file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// The fleet: the registry's devices and registrations files (`schemas/devices.md`).
    pub devices: PathBuf,
    pub registrations: PathBuf,
    /// Access-control broker certificates (`OU=04`, PEM) whose commands are accepted.
    pub acb_certs: Vec<PathBuf>,
    #[serde(default)]
    pub hub: HubConfig,
    /// Unacknowledged events kept for the gateway.
    #[serde(default = "default_retain")]
    pub retain_events: usize,
    /// Allow binding a non-loopback address (the link is plain HTTP).
    #[serde(default)]
    pub allow_non_loopback: bool,
    /// Where to record every event raised (appended; see the module documentation).
    #[serde(default)]
    pub raised_log: Option<PathBuf>,
}

fn default_retain() -> usize {
    1_000_000
}

/// Why the hub process could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0} is not a loopback address; the hub link is plain HTTP (set allow_non_loopback)")]
    NotLoopback(SocketAddr),
    #[error("broker certificates")]
    BrokerCerts(#[source] crate::signer::SignerError),
    #[error("loading the fleet")]
    Fleet(#[source] RegistryError),
    #[error("loading the fleet stopped before it finished")]
    FleetTask(#[source] tokio::task::JoinError),
    #[error("[hub] configuration")]
    Hub(#[source] ConfigError),
    #[error("the Users' Digital Signing certificates ([hub] digital_signing_certs)")]
    DigitalSigning(#[source] crate::state::CertStoreError),
    #[error(transparent)]
    Raised(#[from] RaisedError),
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Loads the fleet and keys, binds, and serves until SIGINT or SIGTERM.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    if !config.listen.ip().is_loopback() && !config.allow_non_loopback {
        return Err(ServeError::NotLoopback(config.listen));
    }
    let verifier =
        crate::signer::command_verifier(&config.acb_certs).map_err(ServeError::BrokerCerts)?;
    let (devices, registrations) = (config.devices.clone(), config.registrations.clone());
    let snapshot =
        tokio::task::spawn_blocking(move || crate::state::load::registry(&devices, &registrations))
            .await
            .map_err(ServeError::FleetTask)?
            .map_err(ServeError::Fleet)?;
    tracing::info!(devices = snapshot.device_count(), "Fleet loaded.");
    let trust = match &config.hub.digital_signing_certs {
        Some(dir) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || crate::state::load::digital_signing_anchors(&dir))
                .await
                .map_err(ServeError::FleetTask)?
                .map_err(ServeError::DigitalSigning)?
        }
        None => crate::dscerts::DigitalSigningCerts::default(),
    };
    tracing::info!(
        certificates = trust.len(),
        "Users' Digital Signing certificates trusted."
    );
    let sim = Simulator::new(config.hub, snapshot, verifier)
        .map_err(ServeError::Hub)?
        .trusting(trust);
    let raised = match &config.raised_log {
        Some(path) => Some(RaisedLog::open(path).await?),
        None => None,
    };
    let bind_error = |source| ServeError::Bind {
        addr: config.listen,
        source,
    };
    let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    tracing::info!(%addr, "The comms-hub network listens.");
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    serve_on(listener, sim, config.retain_events, raised, stop).await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Serves the simulator on `listener` until `stop` turns true (tests start it on port 0),
/// recording every event raised in `raised` if given.
pub async fn serve_on(
    listener: TcpListener,
    sim: Simulator,
    retain_events: usize,
    raised: Option<RaisedLog>,
    mut stop: watch::Receiver<bool>,
) {
    let log = Arc::new(EventLog::new(retain_events.max(1), LEASE));
    let (events_tx, events_rx) = mpsc::channel(1024);
    let hub = Arc::new(InProcessHub::start(sim, events_tx));
    let retainer = tokio::spawn(retain(events_rx, log.clone(), raised));
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // At the bound, extra connections are closed at once.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (hub, log, mut stop) = (hub.clone(), log.clone(), stop.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, hub.clone(), log.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {}
            }
            drop(permit);
        });
    }
    retainer.abort();
}

type Body = http_body_util::Either<Full<Bytes>, LineStream>;

fn reply(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(http_body_util::Either::Left(Full::new(Bytes::new())));
    *r.status_mut() = status;
    r
}

async fn handle(
    req: Request<Incoming>,
    hub: Arc<InProcessHub>,
    log: Arc<EventLog>,
) -> Result<Response<Body>, Infallible> {
    let query = |key: &str| -> Option<u64> {
        req.uri().query()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| v.parse().ok()).flatten()
        })
    };
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/livez") => reply(StatusCode::OK),
        (&Method::POST, EVENTS_ACK) => {
            let epoch = query("epoch");
            let body = Limited::new(req.into_body(), MAX_ACK_BYTES).collect().await;
            let Ok(body) = body else {
                return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE));
            };
            match (epoch, decode_acks(&body.to_bytes())) {
                (Some(epoch), Ok(ranges)) => {
                    log.ack(epoch, &ranges);
                    reply(StatusCode::NO_CONTENT)
                }
                _ => reply(StatusCode::BAD_REQUEST),
            }
        }
        (&Method::GET, EVENTS) => {
            let mut r = Response::new(http_body_util::Either::Right(events::follow(log)));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/x-ndjson"),
            );
            r
        }
        (&Method::POST, COMMANDS) => {
            let body = Limited::new(req.into_body(), MAX_COMMAND_BYTES)
                .collect()
                .await;
            let Ok(body) = body else {
                return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE));
            };
            let cmd = SignedCommand::from_bytes(body.to_bytes().to_vec());
            match hub.send(cmd).await {
                Ok(()) => reply(StatusCode::ACCEPTED),
                Err(HubError::Refused(e)) => {
                    tracing::warn!(error = %e, "A command was refused.");
                    reply(StatusCode::FORBIDDEN)
                }
                Err(HubError::Overloaded) => reply(StatusCode::SERVICE_UNAVAILABLE),
                Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
        _ => reply(StatusCode::NOT_FOUND),
    })
}
