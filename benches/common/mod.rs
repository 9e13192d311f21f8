//! Set-up shared by the benchmarks that deliver over mTLS (`delivery`, `fanout`): a dev PKI in a
//! temp dir, a Receive Response Service on loopback that hands each message it keeps to a
//! channel, and the durable outbox (fsync on) delivering to it by HTTPS with the DCC's client
//! certificate — every User's `response_url` is that receiver.

// Each bench is its own crate and uses a different part of this (the delivery bench has no use
// for the PKI's signing keys).
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use dccgw::domain::UserId;
use dccgw::outbox::{
    no_hook, HttpsTransport, Outbox, OutboxConfig, OutboxMetrics, TransportConfig,
};
use dccgw::pki::DevPki;
use dccgw::receiver::{Received, Receiver, ReceiverConfig};
use tokio::sync::mpsc;

/// Messages the receiver may hold for the bench before its answers wait.
const RECEIVED_QUEUE: usize = 65_536;

/// An environment knob (`DCCGW_BENCH_…`), `_` allowed as a digit separator.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0 to 1) of microsecond samples sorted ascending, in milliseconds.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// p50, p99 and max of microsecond samples (sorted here), as "p50 … ms, p99 … ms, max … ms".
pub fn latency_line(samples: &mut [u64]) -> String {
    samples.sort_unstable();
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(samples, 0.5),
        percentile(samples, 0.99),
        percentile(samples, 1.0),
    )
}

/// A multi-threaded runtime for the bench's `main` (the gateway's own kind).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The PKI, the receiver and the outbox delivering to it.
pub struct Rig {
    pub pki: DevPki,
    pub receiver: Receiver,
    /// Every message the receiver kept, as it kept it.
    pub received: mpsc::Receiver<Received>,
    pub outbox: Outbox,
}

impl Rig {
    /// Everything under `dir` (`pki/`, `outbox/`).
    pub async fn start(dir: &Path, config: &OutboxConfig) -> Self {
        let pki =
            dccgw::pki::init(&dir.join("pki"), time::OffsetDateTime::now_utc()).expect("a dev PKI");
        let (tx, received) = mpsc::channel(RECEIVED_QUEUE);
        let receiver = Receiver::start(
            ReceiverConfig::new(
                "127.0.0.1:0".parse().expect("an address"),
                pki.server.cert.clone(),
                pki.server.key.clone(),
                vec![pki.ca.cert.clone()],
            ),
            Some(tx),
        )
        .await
        .expect("a receiver");
        let url = format!("https://localhost:{}/rrs", receiver.local_addr().port());
        let transport = HttpsTransport::new(&TransportConfig::new(
            pki.dcc_acb.cert.clone(),
            pki.dcc_acb.key.clone(),
            vec![pki.ca.cert.clone()],
        ))
        .expect("a transport");
        let outbox = Outbox::open(
            &dir.join("outbox"),
            config,
            Arc::new(move |_: &UserId| Some(url.clone())),
            Arc::new(transport),
            OutboxMetrics::new(),
            no_hook(),
        )
        .await
        .expect("an outbox");
        Self {
            pki,
            receiver,
            received,
            outbox,
        }
    }
}

/// Stops the outbox's workers, then the receiver.
pub async fn stop(outbox: &Outbox, receiver: Receiver) {
    outbox.shutdown().await;
    receiver.stop().await;
}
