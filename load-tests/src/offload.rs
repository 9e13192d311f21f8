//! `dccgw-load offload`: what moving ECDSA off the async workers costs and buys, three ways, on
//! this machine in one run. Many tasks each alternate a short async step with one CPU job (an
//! ECDSA P-256 signature with ring, as the gateway makes for every answer), on a multi-thread
//! runtime with one worker per core, while a heartbeat task measures how late a 1 ms timer
//! fires (how long the workers were kept from it):
//!
//! - `inline`: the job on the async worker (the gateway before);
//! - `in_place`: `dccgw::offload::Offload` — a permit, then `block_in_place` (what the gateway
//!   does);
//! - `blocking`: a permit, then `spawn_blocking` and an await of its result (the alternative).
//!
//! Per job: wall time and the process's CPU time (utime + stime), and the heartbeat's lateness
//! p50/p99/max. Run it pinned (`taskset -c 0`) to see one core's case.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Serialize;
use tokio::sync::Semaphore;

use dccgw::offload::Offload;

/// One strategy's figures.
#[derive(Debug, Serialize)]
pub struct Figures {
    pub strategy: &'static str,
    pub jobs: u64,
    pub wall_us_per_job: f64,
    pub cpu_us_per_job: f64,
    pub heartbeat_late_p50_us: u64,
    pub heartbeat_late_p99_us: u64,
    pub heartbeat_late_max_us: u64,
}

#[derive(Clone, Copy)]
enum Strategy {
    Inline,
    InPlace,
    Blocking,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::InPlace => "in_place",
            Self::Blocking => "blocking",
        }
    }
}

/// The three strategies, `tasks` tasks of `jobs` jobs each, the pool as large as the cores.
pub fn measure(tasks: usize, jobs: usize) -> anyhow::Result<Vec<Figures>> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("ring could not make a P-256 key"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow::anyhow!("ring could not read its P-256 key"))?;
    let key = Arc::new(key);
    let cores = dccgw::offload::cores().get();
    [Strategy::Inline, Strategy::InPlace, Strategy::Blocking]
        .into_iter()
        .map(|s| one(s, &key, cores, tasks, jobs))
        .collect()
}

fn one(
    strategy: Strategy,
    key: &Arc<EcdsaKeyPair>,
    cores: usize,
    tasks: usize,
    jobs: usize,
) -> anyhow::Result<Figures> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let ticks = crate::procs::clock_ticks() as f64;
    let cpu_seconds = || {
        std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|t| crate::procs::parse_stat(&t))
            .map_or(0.0, |(_, t)| t as f64 / ticks)
    };
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let late = rt.block_on(async {
        let stop = Arc::new(tokio::sync::Notify::new());
        let heartbeat = tokio::spawn(heartbeat(Arc::clone(&stop)));
        let offload = Offload::new(cores);
        let permits = Arc::new(Semaphore::new(cores));
        let workers: Vec<_> = (0..tasks)
            .map(|_| {
                let (key, offload, permits) = (Arc::clone(key), offload.clone(), permits.clone());
                tokio::spawn(async move {
                    for _ in 0..jobs {
                        tokio::task::yield_now().await;
                        match strategy {
                            Strategy::Inline => sign(&key),
                            Strategy::InPlace => offload.run(|| sign(&key)).await,
                            Strategy::Blocking => {
                                let _permit = permits.acquire().await.ok();
                                let key = Arc::clone(&key);
                                tokio::task::spawn_blocking(move || sign(&key))
                                    .await
                                    .unwrap_or_default();
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.await;
        }
        stop.notify_one();
        heartbeat.await.unwrap_or_default()
    });
    let wall = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let n = (tasks * jobs) as f64;
    Ok(Figures {
        strategy: strategy.name(),
        jobs: (tasks * jobs) as u64,
        wall_us_per_job: wall.as_secs_f64() * 1e6 / n,
        cpu_us_per_job: cpu * 1e6 / n,
        heartbeat_late_p50_us: percentile(&late, 0.50),
        heartbeat_late_p99_us: percentile(&late, 0.99),
        heartbeat_late_max_us: late.last().copied().unwrap_or(0),
    })
}

fn sign(key: &EcdsaKeyPair) {
    let rng = SystemRandom::new();
    let _ = key.sign(&rng, &[0x5A; 32]);
}

/// How late each 1 ms tick fired, in µs, sorted.
async fn heartbeat(stop: Arc<tokio::sync::Notify>) -> Vec<u64> {
    let mut late = Vec::new();
    loop {
        let due = Instant::now() + Duration::from_millis(1);
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => {
                let us = Instant::now().saturating_duration_since(due).as_micros();
                late.push(u64::try_from(us).unwrap_or(u64::MAX));
            }
            () = stop.notified() => break,
        }
    }
    late.sort_unstable();
    late
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
