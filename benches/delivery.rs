//! Sustained alert fan-out through the durable outbox to a local Receive Response Service over
//! mTLS: messages/s in (acknowledged by `enqueue`, i.e. fsynced), messages/s out (accepted by
//! the receiver), and delivery latency p50/p99 (from the `enqueue` call to the receiver
//! holding the message). Durability is on: every batch is fsynced before `enqueue` returns.
//!
//! `cargo bench --bench delivery`; `DCCGW_BENCH_SECS` (default 10), `DCCGW_BENCH_USERS`
//! (default 8), `DCCGW_BENCH_PRODUCERS` (default 8), `DCCGW_BENCH_BATCH` (default 50),
//! `DCCGW_BENCH_BACKLOG` (default 5000: producers pause while more than this is pending, so
//! the run measures the sustained rate, not how fast the outbox fills).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dccgw::domain::Eui64;
use dccgw::outbox::{Outbound, OutboundKind, OutboxConfig};

use common::{env, latency_line, percentile, Rig};

/// A device alert of the size a signed `DeviceAlertMessage` has (about 2 KB).
fn alert_body(n: u64) -> Vec<u8> {
    let mut body = format!(
        "<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.1\">\
         <sr:Header><sr:ResponseID>00-DB-12-34-56-78-90-A0:90-B3-D5-1F-30-01-00-00:{n}</sr:ResponseID>\
         <sr:ResponseCode>I0</sr:ResponseCode><sr:ResponseDateTime>2024-01-01T00:00:00Z</sr:ResponseDateTime>\
         </sr:Header><sr:Body><sr:DeviceAlertMessage><sr:AlertCode>8F35</sr:AlertCode>\
         <sr:GBCSPayload>"
    );
    body.push_str(&"A".repeat(1200));
    body.push_str(
        "</sr:GBCSPayload></sr:DeviceAlertMessage></sr:Body><ds:Signature/></sr:Response>",
    );
    body.push_str(&" ".repeat(2048usize.saturating_sub(body.len())));
    body.into_bytes()
}

fn main() {
    let secs = env("DCCGW_BENCH_SECS", 10);
    let users = env("DCCGW_BENCH_USERS", 8);
    let producers = env("DCCGW_BENCH_PRODUCERS", 8);
    let batch = env("DCCGW_BENCH_BATCH", 50);
    let backlog = env("DCCGW_BENCH_BACKLOG", 5000) as usize;
    common::runtime().block_on(run(secs, users, producers, batch, backlog));
}

async fn run(secs: u64, users: u64, producers: u64, batch: u64, backlog: usize) {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let config = OutboxConfig {
        per_user_concurrency: 32,
        ..OutboxConfig::default()
    };
    let Rig {
        receiver,
        received: mut rx,
        outbox,
        ..
    } = Rig::start(tmp.path(), &config).await;

    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let consumer = {
        let (sent, latencies) = (sent.clone(), latencies.clone());
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                let now = Instant::now();
                let Some(id) = r.message_id else { continue };
                if let Some(t) = sent.lock().expect("not poisoned").remove(&id) {
                    let us = now.duration_since(t).as_micros() as u64;
                    latencies.lock().expect("not poisoned").push(us);
                }
            }
        })
    };

    let start = Instant::now();
    let stop = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (outbox, sent) = (outbox.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut commits = Vec::new();
            while Instant::now() < stop {
                while outbox.pending() > backlog {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let t = Instant::now();
                let msgs: Vec<_> = (0..batch)
                    .map(|i| {
                        n += 1;
                        let user = Eui64::from_bytes((((p * batch + i) % users) + 1).to_be_bytes());
                        Outbound {
                            id: outbox.next_id(),
                            user,
                            kind: OutboundKind::DeviceAlert {
                                code: 0x8F35,
                                device: user,
                                request_id: None,
                            },
                            body: alert_body(n),
                            raised_at: 0,
                        }
                    })
                    .collect();
                {
                    let mut s = sent.lock().expect("not poisoned");
                    for m in &msgs {
                        s.insert(m.id.to_string(), t);
                    }
                }
                outbox.enqueue(msgs).await.expect("enqueue");
                commits.push(t.elapsed().as_micros() as u64);
            }
            commits
        }));
    }
    let mut commits = Vec::new();
    for t in tasks {
        commits.extend(t.await.expect("a producer"));
    }
    let produced_for = start.elapsed();
    let acked = commits.len() as u64 * batch;
    while outbox.pending() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained_for = start.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    common::stop(&outbox, receiver).await;
    let _ = consumer.await;

    let mut lat = latencies.lock().expect("not poisoned").clone();
    commits.sort_unstable();
    println!(
        "delivery: {users} Users, {producers} producers x {batch}-message batches of 2 KB alerts, backlog <= {backlog}, {secs} s, durability on"
    );
    println!(
        "  in:  {acked} acknowledged, {:.0} msg/s; enqueue (fsync) p50 {:.2} ms p99 {:.2} ms",
        acked as f64 / produced_for.as_secs_f64(),
        percentile(&commits, 0.5),
        percentile(&commits, 0.99),
    );
    println!(
        "  out: {} delivered, {:.0} msg/s until drained ({:.1} s)",
        lat.len(),
        lat.len() as f64 / drained_for.as_secs_f64(),
        drained_for.as_secs_f64(),
    );
    println!("  latency enqueue -> receiver: {}", latency_line(&mut lat));
}
