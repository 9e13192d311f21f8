//! The gateway's HTTP client of a hub network in its own process, over the link `wire.rs`
//! describes: commands are posted one a request on pooled connections; events arrive on one
//! long-lived stream and are acknowledged to the hub once their receipts are acknowledged (the
//! sequence numbers, in batches). The hub may serve other gateways too: this stream carries the
//! events handed to this gateway. After a broken stream the client reconnects; events it
//! already holds (passed on, not yet acknowledged, or acknowledged but not yet confirmed by the
//! hub) are not passed on twice. A receipt dropped unacknowledged lets its event be passed on
//! again when the hub offers it again.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;

use crate::routing::SignedCommand;

use super::link::{HubError, HubFuture, HubNetwork, Inbound, Receipt};
use super::wire::{decode, encode_acks, COMMANDS, EVENTS, EVENTS_ACK, MAX_EVENT_LINE};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The hub sends a heartbeat every few seconds; silence this long means a dead stream.
const STREAM_IDLE: Duration = Duration::from_secs(30);
/// Idle connections kept for commands.
const POOL: usize = 32;
/// Sequence numbers one acknowledgement carries at most (its body stays far below the hub's
/// bound even when none are consecutive).
const ACKS_PER_POST: usize = 2_048;

pub struct RemoteHub {
    addr: SocketAddr,
    pool: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    /// Events whose acknowledgement the hub confirmed.
    confirmed: Arc<AtomicU64>,
    /// Set while the event stream is open, cleared when it breaks.
    linked: Arc<AtomicBool>,
    background: Vec<AbortHandle>,
}

impl RemoteHub {
    /// A client of the hub process at `addr`; its events go to `events`. Must be called inside
    /// a tokio runtime.
    pub fn start(addr: SocketAddr, events: mpsc::Sender<Inbound>) -> Self {
        let tracker = Arc::new(AckTracker::default());
        let confirmed = Arc::new(AtomicU64::new(0));
        let linked = Arc::new(AtomicBool::new(false));
        let background = vec![
            tokio::spawn(stream_events(addr, tracker.clone(), events, linked.clone()))
                .abort_handle(),
            tokio::spawn(send_acks(addr, tracker, confirmed.clone())).abort_handle(),
        ];
        Self {
            addr,
            pool: Mutex::new(Vec::new()),
            confirmed,
            linked,
            background,
        }
    }

    /// How many events the hub has confirmed this gateway's acknowledgements of: events it will
    /// not offer again.
    pub fn acknowledged(&self) -> u64 {
        self.confirmed.load(Ordering::Relaxed)
    }

    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, HubError> {
        loop {
            let idle = self
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match idle {
                Some(s) if !s.is_closed() => return Ok(s),
                Some(_) => continue,
                None => return connect(self.addr).await,
            }
        }
    }
}

impl Drop for RemoteHub {
    fn drop(&mut self) {
        for t in &self.background {
            t.abort();
        }
    }
}

impl HubNetwork for RemoteHub {
    fn is_linked(&self) -> bool {
        self.linked.load(Ordering::Relaxed)
    }

    fn send(&self, cmd: SignedCommand) -> HubFuture<'_> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let req = Request::post(COMMANDS)
                .header(hyper::header::HOST, self.addr.to_string())
                .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
                .body(Full::new(Bytes::from(cmd.into_bytes())))
                .map_err(|e| HubError::Unreachable(std::io::Error::other(e)))?;
            let status = tokio::time::timeout(REQUEST_TIMEOUT, async {
                conn.ready().await?;
                let resp = conn.send_request(req).await?;
                let status = resp.status();
                resp.into_body().collect().await?;
                Ok::<_, hyper::Error>(status)
            })
            .await
            .map_err(|_| HubError::Unreachable(std::io::ErrorKind::TimedOut.into()))?
            .map_err(|e| HubError::Unreachable(std::io::Error::other(e)))?;
            {
                let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
                if pool.len() < POOL {
                    pool.push(conn);
                }
            }
            match status {
                StatusCode::ACCEPTED => Ok(()),
                StatusCode::SERVICE_UNAVAILABLE => Err(HubError::Overloaded),
                other => Err(HubError::Status(other.as_u16())),
            }
        })
    }
}

async fn connect<B>(addr: SocketAddr) -> Result<SendRequest<B>, HubError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| HubError::Unreachable(std::io::ErrorKind::TimedOut.into()))?
        .map_err(HubError::Unreachable)?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HubError::Unreachable(std::io::Error::other(e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Which events the gateway holds and which it has acknowledged, for one hub epoch.
#[derive(Debug, Default)]
pub(super) struct AckTracker {
    state: Mutex<AckState>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct AckState {
    epoch: u64,
    /// Passed on, receipt not yet acknowledged.
    outstanding: BTreeSet<u64>,
    /// Acknowledged, not yet confirmed by the hub.
    acked: BTreeSet<u64>,
}

impl AckTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, AckState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the event `(epoch, seq)` is new and should be passed on. A new epoch (the hub
    /// restarted) forgets the old one's state.
    fn receive(&self, epoch: u64, seq: u64) -> bool {
        let mut s = self.lock();
        if s.epoch != epoch {
            *s = AckState {
                epoch,
                ..AckState::default()
            };
        }
        if s.acked.contains(&seq) {
            return false;
        }
        s.outstanding.insert(seq)
    }

    pub(super) fn ack(&self, epoch: u64, seq: u64) {
        let mut s = self.lock();
        if s.epoch != epoch || !s.outstanding.remove(&seq) {
            return;
        }
        s.acked.insert(seq);
        drop(s);
        self.changed.notify_one();
    }

    /// Forgets that event `seq` was passed on, unacknowledged: passed on again if offered again.
    pub(super) fn release(&self, epoch: u64, seq: u64) {
        let mut s = self.lock();
        if s.epoch == epoch {
            s.outstanding.remove(&seq);
        }
    }

    /// The acknowledgements to send: the epoch and up to [`ACKS_PER_POST`] sequence numbers.
    fn unsent(&self) -> (u64, Vec<u64>) {
        let s = self.lock();
        (
            s.epoch,
            s.acked.iter().take(ACKS_PER_POST).copied().collect(),
        )
    }

    /// The hub confirmed `seqs` of `epoch`: it will not offer them again.
    fn confirmed(&self, epoch: u64, seqs: &[u64]) {
        let mut s = self.lock();
        if s.epoch == epoch {
            for seq in seqs {
                s.acked.remove(seq);
            }
        }
    }
}

async fn stream_events(
    addr: SocketAddr,
    tracker: Arc<AckTracker>,
    events: mpsc::Sender<Inbound>,
    linked: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let ended = stream_once(addr, &tracker, &events, &linked).await;
        linked.store(false, Ordering::Relaxed);
        match ended {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(StreamEnd::GatewayGone) => return,
            Err(StreamEnd::Broken(e)) => {
                tracing::warn!(%addr, error = %e, "The hub event stream broke; reconnecting.");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

enum StreamEnd {
    GatewayGone,
    Broken(String),
}

async fn stream_once(
    addr: SocketAddr,
    tracker: &Arc<AckTracker>,
    events: &mpsc::Sender<Inbound>,
    linked: &AtomicBool,
) -> Result<(), StreamEnd> {
    let broken = |e: &dyn std::fmt::Display| StreamEnd::Broken(e.to_string());
    let mut conn = connect::<Empty<Bytes>>(addr)
        .await
        .map_err(|e| broken(&e))?;
    let req = Request::builder()
        .method(Method::GET)
        .uri(EVENTS)
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::new())
        .map_err(|e| broken(&e))?;
    let resp = conn.send_request(req).await.map_err(|e| broken(&e))?;
    if resp.status() != StatusCode::OK {
        return Err(StreamEnd::Broken(format!("HTTP {}", resp.status())));
    }
    linked.store(true, Ordering::Relaxed);
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let frame = tokio::time::timeout(STREAM_IDLE, body.frame())
            .await
            .map_err(|_| StreamEnd::Broken("the stream went silent".into()))?;
        let Some(frame) = frame else {
            return Ok(());
        };
        let frame = frame.map_err(|e| broken(&e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = &line[..line.len() - 1];
            if line.is_empty() {
                continue; // heartbeat
            }
            let (epoch, seq, event) = decode(line).map_err(|e| broken(&e))?;
            if !tracker.receive(epoch, seq) {
                continue;
            }
            let receipt = Receipt::tracked(tracker.clone(), epoch, seq);
            if events.send(Inbound { event, receipt }).await.is_err() {
                return Err(StreamEnd::GatewayGone);
            }
        }
        if buf.len() > MAX_EVENT_LINE {
            return Err(StreamEnd::Broken("an event line is too long".into()));
        }
    }
}

/// Tells the hub which events the gateway has acknowledged, whenever there are some (at most
/// every 100 ms, and every 5 s regardless).
async fn send_acks(addr: SocketAddr, tracker: Arc<AckTracker>, confirmed: Arc<AtomicU64>) {
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(5), tracker.changed.notified()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        loop {
            let (epoch, seqs) = tracker.unsent();
            if seqs.is_empty() {
                break;
            }
            let c = match conn.take() {
                Some(c) if !c.is_closed() => c,
                _ => match connect(addr).await {
                    Ok(c) => c,
                    Err(_) => break,
                },
            };
            let mut c = c;
            let req = Request::post(format!("{EVENTS_ACK}?epoch={epoch}"))
                .header(hyper::header::HOST, addr.to_string())
                .header(hyper::header::CONTENT_TYPE, "text/plain")
                .body(Full::new(Bytes::from(encode_acks(seqs.iter().copied()))));
            let Ok(req) = req else { break };
            let ok = tokio::time::timeout(REQUEST_TIMEOUT, async {
                c.ready().await.ok()?;
                let resp = c.send_request(req).await.ok()?;
                let status = resp.status();
                resp.into_body().collect().await.ok()?;
                Some(status)
            })
            .await
            .ok()
            .flatten();
            if ok != Some(StatusCode::NO_CONTENT) {
                // Kept: sent again at the next turn.
                break;
            }
            tracker.confirmed(epoch, &seqs);
            confirmed.fetch_add(seqs.len() as u64, Ordering::Relaxed);
            conn = Some(c);
        }
    }
}
