//! The run: one lane per User, each with its own mTLS connection and client certificate,
//! sending that User's pre-signed requests when they are due. Open loop: a request's latency
//! runs from when it was due (or from when it was sent, if the lane woke early), so a slow
//! answer that delays the next send shows up in the next request's latency instead of being
//! omitted. A User's requests go one at a time on its connection because the gateway requires
//! each originator's counters to arrive in increasing order.
//!
//! A critical request is a pair on its lane: the Transform (Command Variant 4, pre-signed like
//! the rest) and, when its answer brings the pre-command, the signed pre-command under the same
//! RequestID, made on the lane (`critical.rs`) and sent at once, before the lane's next request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use dccgw::domain::{CommandVariant, RequestId, UserId};

use crate::critical::{self, UserKeys};
use crate::outcome::{classify, Outcome};
use crate::plan::Plan;
use crate::scenario::ConnectionSpec;

/// Largest answer read; a longer one is a protocol failure.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Where the load goes.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// The name the server's certificate must carry (`localhost`).
    pub server_name: ServerName<'static>,
}

/// What one request came to. For a critical pair, the figures are the pair's (from the
/// Transform's due time to the signed pre-command's answer, and that answer's outcome) and
/// `pair` has its parts.
#[derive(Clone, Copy, Debug)]
pub struct SyncResult {
    pub idx: u32,
    /// From due (or sent, if earlier) to the answer's last byte.
    pub latency_ns: u64,
    /// From sent to the answer's last byte.
    pub service_ns: u64,
    /// How late the request was sent after it was due (0 when on time or early).
    pub lag_ns: u64,
    pub outcome: Outcome,
    /// A critical pair whose signed pre-command was sent.
    pub pair: Option<PairTimes>,
}

/// The parts of a critical pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairTimes {
    /// The Transform: due (or sent, if earlier) to its answer.
    pub transform_ns: u64,
    /// The User's work: from the Transform's answer to the signed pre-command sent.
    pub signing_ns: u64,
    /// The signed pre-command: sent to its answer (it has no due time: it goes when ready).
    pub signed_ns: u64,
}

/// A critical class's second request: its Command Variant and URL path.
#[derive(Clone, Copy, Debug)]
pub struct SecondRequest {
    pub cv: CommandVariant,
    pub path: &'static str,
}

/// Everything the lanes share.
pub struct RunInput {
    pub plan: Arc<Plan>,
    /// Signed request bodies, in plan order.
    pub bodies: Arc<Vec<Bytes>>,
    /// The URL path of each mix class.
    pub paths: Vec<&'static str>,
    /// Each mix class's second request, for a critical pair.
    pub second: Vec<Option<SecondRequest>>,
    /// Each User's ID and keys (population order), for the pre-commands signed during the run.
    pub originators: Arc<Vec<UserId>>,
    pub keys: Arc<UserKeys>,
    /// Each User's TLS client configuration.
    pub clients: Vec<Arc<ClientConfig>>,
    pub connection: ConnectionSpec,
    pub target: Target,
}

/// The run's outcome: every request's result and the instant the plan's time zero fell on.
pub struct RunOutput {
    pub results: Vec<SyncResult>,
    pub start: Instant,
    pub elapsed: Duration,
}

type Sender = SendRequest<Full<Bytes>>;

/// Runs the plan against the target. `start_hook` is given the run's time zero before the first
/// request is due (the Receive Response endpoint measures from it).
pub async fn run(input: RunInput, start_hook: impl FnOnce(Instant)) -> RunOutput {
    let input = Arc::new(input);
    let lanes = input.plan.lanes(input.clients.len());
    // Kept-alive connections are opened before time zero: a User's first request should not
    // carry a handshake that its later ones do not.
    let mut connecting = JoinSet::new();
    for (user, items) in lanes.into_iter().enumerate() {
        if items.is_empty() {
            continue;
        }
        let input = input.clone();
        connecting.spawn(async move {
            let conn = if input.connection.reuse {
                connect(&input, user).await.ok()
            } else {
                None
            };
            (user, items, conn)
        });
    }
    let mut ready = Vec::new();
    while let Some(joined) = connecting.join_next().await {
        if let Ok(lane) = joined {
            ready.push(lane);
        }
    }
    let start = Instant::now() + Duration::from_millis(50);
    start_hook(start);
    let mut running = JoinSet::new();
    for (user, items, conn) in ready {
        running.spawn(lane(input.clone(), start, user, items, conn));
    }
    let mut results = Vec::with_capacity(input.plan.items.len());
    while let Some(joined) = running.join_next().await {
        if let Ok(lane_results) = joined {
            results.extend(lane_results);
        }
    }
    RunOutput {
        results,
        start,
        elapsed: start.elapsed(),
    }
}

async fn lane(
    input: Arc<RunInput>,
    start: Instant,
    user: usize,
    items: Vec<u32>,
    mut conn: Option<Sender>,
) -> Vec<SyncResult> {
    let early = Duration::from_micros(input.connection.wake_early_us);
    let mut out = Vec::with_capacity(items.len());
    for idx in items {
        let item = input.plan.items[idx as usize];
        let class = usize::from(item.class);
        let due = start + Duration::from_nanos(item.at_ns);
        tokio::time::sleep_until(due.checked_sub(early).unwrap_or(due).into()).await;
        let sent = Instant::now();
        let from = sent.min(due);
        let second = input.second.get(class).copied().flatten();
        let path = input.paths.get(class).copied().unwrap_or("/");
        let body = input.bodies.get(idx as usize).cloned().unwrap_or_default();
        let (mut outcome, answer) =
            timed_exchange(&input, user, &mut conn, path, body, second.is_some()).await;
        let mut done = Instant::now();
        let mut pair = None;
        if let (Some(second), Some(answer)) = (second, answer) {
            let transform_ns = nanos(done - from);
            let (o, times) = signed_precommand(&input, user, &mut conn, idx, second, &answer).await;
            outcome = o;
            done = Instant::now();
            pair = times.map(|(signing_ns, signed_ns)| PairTimes {
                transform_ns,
                signing_ns,
                signed_ns,
            });
        }
        if !input.connection.reuse {
            conn = None;
        }
        out.push(SyncResult {
            idx,
            latency_ns: nanos(done - from),
            service_ns: nanos(done - sent),
            lag_ns: nanos(sent.saturating_duration_since(due)),
            outcome,
            pair,
        });
    }
    out
}

/// The second request of a critical pair: the pre-command in the Transform's `answer` signed by
/// the User and sent back under request `idx`'s RequestID. Its outcome, and (when it was sent)
/// the time the User took to sign and the exchange's.
async fn signed_precommand(
    input: &RunInput,
    user: usize,
    conn: &mut Option<Sender>,
    idx: u32,
    second: SecondRequest,
    answer: &[u8],
) -> (Outcome, Option<(u64, u64)>) {
    let begun = Instant::now();
    let item = input.plan.items[idx as usize];
    let Some(originator) = input.originators.get(user) else {
        return (Outcome::BadPreCommand, None);
    };
    let id = RequestId {
        originator: *originator,
        target: item.target,
        counter: input.plan.counter_base + u64::from(idx),
    };
    let body = match critical::signed_precommand_request(answer, &id, second.cv, &input.keys, user)
    {
        Ok(body) => body,
        Err(_) => return (Outcome::BadPreCommand, None),
    };
    let sent = Instant::now();
    let (outcome, _) = timed_exchange(input, user, conn, second.path, body, false).await;
    let done = Instant::now();
    (outcome, Some((nanos(sent - begun), nanos(done - sent))))
}

/// One exchange within the scenario's timeout (a request unanswered by then drops its
/// connection). With `keep`, an `I0` answer's body is returned.
async fn timed_exchange(
    input: &RunInput,
    user: usize,
    conn: &mut Option<Sender>,
    path: &str,
    body: Bytes,
    keep: bool,
) -> (Outcome, Option<Bytes>) {
    let timeout = Duration::from_millis(input.connection.timeout_ms);
    let exchange = exchange(input, user, conn, path, body);
    match tokio::time::timeout(timeout, exchange).await {
        Ok((outcome, answer)) => {
            let i0 = matches!(outcome, Outcome::Duis(c) if c.as_str() == "I0");
            (outcome, answer.filter(|_| keep && i0))
        }
        Err(_) => {
            *conn = None;
            (Outcome::Timeout, None)
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

async fn exchange(
    input: &RunInput,
    user: usize,
    conn: &mut Option<Sender>,
    path: &str,
    body: Bytes,
) -> (Outcome, Option<Bytes>) {
    // A kept connection the server has closed is replaced once, here, within the timeout.
    let usable = match conn.as_mut() {
        Some(sender) => sender.ready().await.is_ok(),
        None => false,
    };
    if !usable {
        match connect(input, user).await {
            Ok(sender) => *conn = Some(sender),
            Err(outcome) => {
                *conn = None;
                return (outcome, None);
            }
        }
    }
    let Some(sender) = conn.as_mut() else {
        return (Outcome::Protocol, None);
    };
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::CONTENT_TYPE, "application/xml")
        .body(Full::new(body));
    let Ok(request) = request else {
        return (Outcome::Protocol, None);
    };
    let response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(_) => {
            *conn = None;
            return (Outcome::Protocol, None);
        }
    };
    let status = response.status().as_u16();
    match Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
    {
        Ok(body) => {
            let body = body.to_bytes();
            (classify(status, &body), Some(body))
        }
        Err(_) => {
            *conn = None;
            (Outcome::Protocol, None)
        }
    }
}

async fn connect(input: &RunInput, user: usize) -> Result<Sender, Outcome> {
    let tcp = TcpStream::connect(input.target.addr)
        .await
        .map_err(|_| Outcome::Connect)?;
    // Requests are small and latency is what is measured.
    let _ = tcp.set_nodelay(true);
    let config = input.clients.get(user).ok_or(Outcome::Tls)?.clone();
    let tls = TlsConnector::from(config)
        .connect(input.target.server_name.clone(), tcp)
        .await
        .map_err(|_| Outcome::Tls)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|_| Outcome::Protocol)?;
    tokio::spawn(async move {
        // The connection ends when the lane drops its sender or the server closes it.
        let _ = connection.await;
    });
    Ok(sender)
}
