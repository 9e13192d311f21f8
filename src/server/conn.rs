//! One connection: TLS handshake within its time bound, the client's identity read once, then
//! HTTP served until the peer leaves, the connection idles out, or the gateway shuts down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use super::admission::{Admitted, Bounds};
use super::http;
use crate::config::Limits;
use crate::metrics::HandshakeFinished;
use crate::pipeline::Gateway;
use crate::tls::{self, HandshakeFailure};

/// Largest HTTP header block accepted (HTTP/1 buffer and HTTP/2 header list); larger ones end
/// the connection (HTTP/1) or the stream (HTTP/2).
const MAX_HEADER_BYTES: usize = 16 * 1024;

pub(super) async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    gateway: Arc<Gateway>,
    bounds: Arc<Bounds>,
    mut shutdown: watch::Receiver<bool>,
    mut admitted: Admitted,
) {
    let limits = &bounds.limits;
    let handshaken = handshake(stream, remote, &acceptor, &gateway, limits).await;
    // The handshake slot is given back, either way; the connection's slots stay with it.
    admitted.handshake = None;
    let Some((tls_stream, peer)) = handshaken else {
        return;
    };
    let _open = gateway.metrics.connection_opened();

    let span =
        tracing::info_span!("connection", %remote, client = %peer.user_id, role = %peer.role);
    let activity = Activity::new();
    let io = TokioIo::new(tls_stream);
    let service = {
        let activity = activity.clone();
        let bounds = bounds.clone();
        service_fn(move |req| {
            let busy = activity.begin();
            let gateway = gateway.clone();
            let bounds = bounds.clone();
            async move {
                let response = http::handle(&gateway, &bounds, &peer, req).await;
                drop(busy);
                Ok::<_, std::convert::Infallible>(response)
            }
            .in_current_span()
        })
    };

    let builder = http_builder(limits);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);

    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let mut closing = false;
    async move {
        loop {
            let wake = activity.idle_deadline(idle);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "Connection ended with an error.");
                    }
                    break;
                }
                _ = shutdown.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = tokio::time::sleep_until(wake.into()), if !closing => {
                    if activity.is_idle(idle) {
                        tracing::debug!("Connection idle; closing it.");
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
    .instrument(span)
    .await;
}

/// The TLS handshake within its time bound, and the client's identity read once; `None` (the
/// failure counted and logged) when either fails.
async fn handshake(
    stream: TcpStream,
    remote: SocketAddr,
    acceptor: &TlsAcceptor,
    gateway: &Gateway,
    limits: &Limits,
) -> Option<(
    tokio_rustls::server::TlsStream<TcpStream>,
    tls::PeerIdentity,
)> {
    let started = Instant::now();
    let timeout = Duration::from_millis(limits.handshake_timeout_ms);
    let failed = |failure| handshake_failed(gateway, remote, started, failure);
    let tls_stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return failed(HandshakeFailure::classify(&e)),
        Err(_) => return failed(HandshakeFailure::Timeout),
    };
    let Some(peer) = tls::peer_identity(tls_stream.get_ref().1) else {
        // The verifier refuses certificates without an identity; reaching here is a bug.
        return failed(HandshakeFailure::NoSmkiIdentity);
    };
    HandshakeFinished {
        peer: Some(&peer),
        failure: None,
        remote,
        elapsed: started.elapsed(),
    }
    .emit(&gateway.metrics);
    Some((tls_stream, peer))
}

/// HTTP/1.1 and HTTP/2 with the connection's bounds.
fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_buf_size(MAX_HEADER_BYTES.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}

/// Counts and logs a failed handshake; `None`, for the caller to return.
fn handshake_failed<T>(
    gateway: &Gateway,
    remote: SocketAddr,
    started: Instant,
    failure: HandshakeFailure,
) -> Option<T> {
    HandshakeFinished {
        peer: None,
        failure: Some(failure),
        remote,
        elapsed: started.elapsed(),
    }
    .emit(&gateway.metrics);
    None
}

/// When a request last began or ended on a connection, and how many are in flight on it. Only
/// requests count: bytes that carry none (HTTP/2 PINGs, SETTINGS, WINDOW_UPDATEs) do not keep a
/// connection from idling out.
#[derive(Clone)]
struct Activity {
    epoch: Instant,
    last_ms: Arc<AtomicU64>,
    in_flight: Arc<AtomicUsize>,
}

/// Marks a request in flight until dropped.
struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn begin(&self) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy(self.clone())
    }

    fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.last() + idle
    }

    fn is_idle(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && self.last().elapsed() >= idle
    }
}
