//! The soak: `soak_fraction` of the saturation rate held for `soak_s` against the gateway
//! alone. It is one plan of constant-rate windows (a minute each in the bench), run by the same
//! runner as the fraction runs, so the runner's per-step figures are each window's own: a p99
//! that drifts upwards over ten minutes shows, where one figure for the whole soak would hide it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::procs;
use crate::receiver::Receiver;
use crate::report::{self, Cpu, SoakRow, SoakWindow};
use crate::runner::{Prepared, RunnerError};
use crate::scenario::{Load, SlaSpec, Step};

/// The bench's window: the p99 of each minute.
pub const MINUTE_S: f64 = 60.0;

/// What to soak and where.
pub struct SoakRun<'a> {
    /// The gateway's address …
    pub addr: SocketAddr,
    /// … and its process, whose CPU time and resident memory are read before and after.
    pub pid: u32,
    pub receiver: Option<&'a Receiver>,
    /// Time after the last answer for asynchronous responses.
    pub grace: Duration,
    /// The saturation rate, and the share of it held.
    pub saturation_rps: f64,
    pub fraction: f64,
    pub duration_s: f64,
    /// Length of each window of the per-window figures ([`MINUTE_S`] in the bench).
    pub window_s: f64,
}

/// `rate` for `duration_s`, as steps of `window_s` (the last one shorter when `window_s` does
/// not divide `duration_s`).
pub fn windows(rate: f64, duration_s: f64, window_s: f64) -> Load {
    let window_s = if window_s > 0.0 { window_s } else { duration_s };
    let mut steps = Vec::new();
    let mut at = 0.0;
    // A remainder under a millisecond is rounding, not a window.
    while duration_s - at > 1e-3 {
        let d = window_s.min(duration_s - at);
        steps.push(Step {
            rate,
            duration_s: d,
        });
        at += d;
    }
    Load::Steps { steps }
}

/// Runs the soak and makes its row, checked against `sla`.
pub async fn run(
    prepared: &Prepared,
    soak: &SoakRun<'_>,
    sla: &SlaSpec,
) -> Result<SoakRow, RunnerError> {
    let rate = (soak.saturation_rps * soak.fraction).max(1.0);
    let load = windows(rate, soak.duration_s, soak.window_s);
    let signed = tokio::task::block_in_place(|| prepared.sign(&load))?;
    eprintln!(
        "soak: {rate:.0}/s ({:.0} % of {:.0}/s) for {:.0} s",
        soak.fraction * 100.0,
        soak.saturation_rps,
        soak.duration_s
    );
    let ticks = procs::clock_ticks() as f64;
    let rss_start_kib = procs::rss_kib(soak.pid);
    let before = procs::tree_cpu_ticks(soak.pid);
    let summary = prepared
        .run(&signed, soak.addr, soak.receiver, soak.grace)
        .await;
    let cpu_s = procs::tree_cpu_ticks(soak.pid).saturating_sub(before) as f64 / ticks;
    let rss_end_kib = procs::rss_kib(soak.pid);
    let mut at = 0.0;
    let windows = summary
        .steps
        .iter()
        .map(|s| {
            let w = SoakWindow {
                start_s: at,
                duration_s: s.duration_s,
                requests: s.requests,
                accepted: s.accepted,
                sync_p99_us: s.sync.p99_us,
                sync_max_us: s.sync.max_us,
            };
            at += s.duration_s;
            w
        })
        .collect();
    let checks = report::check_sla(sla, "gateway soak", &summary);
    let a = &summary.async_;
    Ok(SoakRow {
        fraction: soak.fraction,
        rate_rps: rate,
        held_s: summary.duration_s,
        requests: summary.requests,
        accepted: summary.accepted,
        throughput_rps: summary.throughput_rps,
        sync: summary.sync.clone(),
        routed: a.expected > 0 || a.received > 0,
        async_expected: a.expected,
        async_received: a.received,
        async_p99_us: (a.received > 0).then_some(a.latency.p99_us),
        cpu: Cpu {
            cpu_s,
            per_request_us: cpu_s * 1e6 / summary.accepted.max(1) as f64,
        },
        rss_start_kib,
        rss_end_kib,
        errors: summary
            .codes
            .iter()
            .filter(|(code, _)| !matches!(code.as_str(), "I0" | "I99"))
            .map(|(code, n)| (code.clone(), *n))
            .collect(),
        error_ratio: summary.error_ratio,
        window_s: soak.window_s,
        windows,
        pass: checks.iter().all(|c| c.pass),
        sla: checks,
    })
}
