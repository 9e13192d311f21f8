//! One connection: TLS handshake within its time bound, the client's identity read once, then
//! HTTP served until the peer leaves, the connection idles out, or the gateway shuts down.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

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
    limits: Arc<Limits>,
    mut shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let Some((tls_stream, peer)) = handshake(stream, remote, &acceptor, &gateway, &limits).await
    else {
        return;
    };
    let _open = gateway.metrics.connection_opened();

    let span =
        tracing::info_span!("connection", %remote, client = %peer.user_id, role = %peer.role);
    let activity = Activity::new();
    let io = TokioIo::new(Tracked {
        inner: tls_stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        let limits = limits.clone();
        service_fn(move |req| {
            let busy = activity.begin();
            let gateway = gateway.clone();
            let limits = limits.clone();
            async move {
                let response = http::handle(&gateway, &limits, &peer, req).await;
                drop(busy);
                Ok::<_, std::convert::Infallible>(response)
            }
            .in_current_span()
        })
    };

    let builder = http_builder(&limits);
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

/// When bytes last moved on a connection and how many requests are in flight on it.
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

/// The TLS stream, noting activity on every read or write that moves bytes.
struct Tracked<T> {
    inner: T,
    activity: Activity,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
