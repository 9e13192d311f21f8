//! The overload bench (`[bench.overload]`): with the saturation rate found (or given), a
//! baseline run at a fraction of it (the unloaded figures), then one plan that offers `factor`
//! times the saturation rate for `run_s` and drops back to the baseline rate for `recovery_s`.
//! From every request's result: the goodput during the overload against the saturation rate,
//! the shed answers' latency, each admission class's requests, acceptances and sheds (the
//! gateway's own class table decides which mix entries are critical, standard or bulk), the
//! critical requests' latency against the baseline's, the gateway's resident set before and
//! after, and how long after the overload every second is back to normal.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use dccgw::admission::{Class, ClassTable};
use dccgw::catalogue::Catalogue;

use super::{BenchError, Server};
use crate::client::SyncResult;
use crate::plan::Plan;
use crate::receiver::Receiver;
use crate::runner::Prepared;
use crate::scenario::{Load, MixEntry, OverloadSpec, Step};
use crate::stats::{histogram, percentiles, record_ns, Percentiles, RunSummary};

/// Normal seconds in a row that say the gateway is back to normal after the overload.
pub const SETTLED_S: usize = 5;

/// One admission class's requests in one phase.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ClassFigures {
    pub requests: u64,
    pub accepted: u64,
    /// Answered `E60` or `E61`.
    pub shed: u64,
    /// Due → answer, accepted requests only (a critical pair: to its second answer).
    pub accepted_sync: Percentiles,
}

/// One second of the overload plan, by due time.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Second {
    /// Seconds since the overload began.
    pub t_s: u64,
    pub requests: u64,
    pub accepted: u64,
    pub shed: u64,
    pub sync_p99_us: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OverloadSummary {
    pub spec: OverloadSpecOut,
    pub saturation_rps: f64,
    pub offered_rps: f64,
    /// The baseline run (`baseline_fraction` of the saturation rate): the unloaded figures.
    pub baseline: RunSummary,
    pub baseline_classes: BTreeMap<String, ClassFigures>,
    /// Accepted answers to requests due during the overload, per second of it.
    pub goodput_rps: f64,
    /// `goodput_rps` over the saturation rate.
    pub goodput_ratio: f64,
    pub overload_classes: BTreeMap<String, ClassFigures>,
    /// Every shed answer (`E60`, `E61`) of the overload plan: due → answer …
    pub shed_sync: Percentiles,
    /// … and sent → answer (the gateway's own time, without the generator's lag).
    pub shed_service: Percentiles,
    /// The overload plan's answers by code.
    pub codes: BTreeMap<String, u64>,
    /// How late requests left the generator during the overload.
    pub send_lag: Percentiles,
    /// Seconds from the end of the overload to the first of `SETTLED_S` normal seconds in a
    /// row; `None` when the recovery phase never settled.
    pub back_to_normal_s: Option<u64>,
    pub seconds: Vec<Second>,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub rss_peak_kib: u64,
    pub cpu_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OverloadSpecOut {
    pub factor: f64,
    pub run_s: f64,
    pub baseline_fraction: f64,
    pub baseline_s: f64,
    pub recovery_s: f64,
    pub normal_p99_factor: f64,
}

/// Runs the baseline, then the overload plan, against the gateway.
pub(super) async fn run(
    prepared: &Prepared,
    gateway: &Server,
    receiver: &Receiver,
    spec: &OverloadSpec,
    saturation: f64,
    grace: Duration,
) -> Result<OverloadSummary, BenchError> {
    let base_rate = (saturation * spec.baseline_fraction).max(1.0);
    let pid = gateway.child.id();
    let load = Load::constant(base_rate, spec.baseline_s);
    let signed = tokio::task::block_in_place(|| prepared.sign(&load))?;
    let (baseline, base_results) = prepared
        .run_with_results(&signed, gateway.addr, Some(receiver), grace)
        .await;
    // "Before" is the gateway warmed by the baseline, at the baseline rate.
    let rss_before_kib = rss_kib(pid, "VmRSS");
    let mix = &prepared.scenario.mix;
    let baseline_classes = classes(&signed.plan, mix, &base_results, |_| true);
    eprintln!(
        "overload: baseline {base_rate:.0}/s, sync p99 {:.2} ms",
        baseline.sync.p99_us as f64 / 1000.0
    );
    let load = Load::Steps {
        steps: vec![
            Step {
                rate: saturation * spec.factor,
                duration_s: spec.run_s,
            },
            Step {
                rate: base_rate,
                duration_s: spec.recovery_s,
            },
        ],
    };
    let signed = tokio::task::block_in_place(|| prepared.sign(&load))?;
    let ticks_before = gateway.cpu_ticks();
    let (summary, results) = prepared
        .run_with_results(&signed, gateway.addr, Some(receiver), grace)
        .await;
    let cpu_s = gateway.cpu_ticks().saturating_sub(ticks_before) as f64
        / crate::procs::clock_ticks() as f64;
    let figures = analyse(&signed.plan, mix, &results, &baseline, spec, saturation);
    drop(baseline);
    Ok(OverloadSummary {
        baseline_classes,
        codes: summary.codes,
        rss_before_kib,
        rss_after_kib: rss_kib(pid, "VmRSS"),
        rss_peak_kib: rss_kib(pid, "VmHWM"),
        cpu_s,
        ..figures
    })
}

/// The figures a plan's results give, without the process's (RSS, CPU: zero here).
pub fn analyse(
    plan: &Plan,
    mix: &[MixEntry],
    results: &[SyncResult],
    baseline: &RunSummary,
    spec: &OverloadSpec,
    saturation: f64,
) -> OverloadSummary {
    let overload_end = plan.steps.first().map_or(0, |s| s.end_ns);
    let in_overload = |r: &SyncResult| {
        plan.items
            .get(r.idx as usize)
            .is_some_and(|i| i.at_ns < overload_end)
    };
    let overload_classes = classes(plan, mix, results, in_overload);
    let accepted: u64 = overload_classes.values().map(|c| c.accepted).sum();
    let goodput_rps = accepted as f64 / spec.run_s.max(1e-9);
    let (mut shed_sync, mut shed_service, mut lag) = (histogram(), histogram(), histogram());
    for r in results.iter().filter(|r| is_shed(r)) {
        record_ns(&mut shed_sync, r.latency_ns);
        record_ns(&mut shed_service, r.service_ns);
    }
    for r in results.iter().filter(|r| in_overload(r)) {
        record_ns(&mut lag, r.lag_ns);
    }
    let seconds = seconds(plan, results);
    let normal_p99 = (baseline.sync.p99_us as f64 * spec.normal_p99_factor)
        .max(baseline.sync.p99_us as f64 + 5_000.0);
    let overload_s = (overload_end / 1_000_000_000) as usize;
    let after = seconds.get(overload_s..).unwrap_or(&[]);
    let normal = |s: &Second| s.shed == 0 && (s.sync_p99_us as f64) <= normal_p99;
    // The first second that begins `SETTLED_S` normal seconds in a row (or runs normal to the
    // end): one noisy second later on is the machine's, not a recovery still under way.
    let settled = (0..after.len()).find(|&i| {
        after[i..(i + SETTLED_S).min(after.len())]
            .iter()
            .all(normal)
    });
    OverloadSummary {
        spec: OverloadSpecOut {
            factor: spec.factor,
            run_s: spec.run_s,
            baseline_fraction: spec.baseline_fraction,
            baseline_s: spec.baseline_s,
            recovery_s: spec.recovery_s,
            normal_p99_factor: spec.normal_p99_factor,
        },
        saturation_rps: saturation,
        offered_rps: saturation * spec.factor,
        baseline: baseline.clone(),
        baseline_classes: BTreeMap::new(),
        goodput_rps,
        goodput_ratio: goodput_rps / saturation.max(1e-9),
        overload_classes,
        shed_sync: percentiles(&shed_sync),
        shed_service: percentiles(&shed_service),
        codes: BTreeMap::new(),
        send_lag: percentiles(&lag),
        back_to_normal_s: settled.map(|s| s as u64),
        seconds,
        rss_before_kib: 0,
        rss_after_kib: 0,
        rss_peak_kib: 0,
        cpu_s: 0.0,
    }
}

fn is_shed(r: &SyncResult) -> bool {
    matches!(r.outcome.label().as_str(), "E60" | "E61")
}

/// The gateway's admission class of a mix entry.
fn class_of(table: &ClassTable, entry: &MixEntry) -> Class {
    table.get(&entry.srv)
}

/// Each admission class's figures over the results `keep` takes.
fn classes(
    plan: &Plan,
    mix: &[MixEntry],
    results: &[SyncResult],
    keep: impl Fn(&SyncResult) -> bool,
) -> BTreeMap<String, ClassFigures> {
    let table = ClassTable::new(Catalogue::builtin());
    let mut out: BTreeMap<String, (ClassFigures, hdrhistogram::Histogram<u64>)> = BTreeMap::new();
    for r in results.iter().filter(|r| keep(r)) {
        let Some(item) = plan.items.get(r.idx as usize) else {
            continue;
        };
        let class = class_of(&table, &mix[usize::from(item.class)]);
        let (f, h) = out
            .entry(class.label().to_owned())
            .or_insert_with(|| (ClassFigures::default(), histogram()));
        f.requests += 1;
        if r.outcome.accepted() {
            f.accepted += 1;
            record_ns(h, r.latency_ns);
        }
        f.shed += u64::from(is_shed(r));
    }
    out.into_iter()
        .map(|(k, (mut f, h))| {
            f.accepted_sync = percentiles(&h);
            (k, f)
        })
        .collect()
}

/// The plan's results by the second they were due in.
fn seconds(plan: &Plan, results: &[SyncResult]) -> Vec<Second> {
    let n = (plan.duration_ns() / 1_000_000_000 + 1) as usize;
    let mut buckets: Vec<(Second, hdrhistogram::Histogram<u64>)> = (0..n)
        .map(|t| {
            let s = Second {
                t_s: t as u64,
                requests: 0,
                accepted: 0,
                shed: 0,
                sync_p99_us: 0,
            };
            (s, histogram())
        })
        .collect();
    for r in results {
        let Some(item) = plan.items.get(r.idx as usize) else {
            continue;
        };
        let Some((s, h)) = buckets.get_mut((item.at_ns / 1_000_000_000) as usize) else {
            continue;
        };
        s.requests += 1;
        s.accepted += u64::from(r.outcome.accepted());
        s.shed += u64::from(is_shed(r));
        record_ns(h, r.latency_ns);
    }
    buckets
        .into_iter()
        .filter(|(s, _)| s.requests > 0)
        .map(|(mut s, h)| {
            s.sync_p99_us = percentiles(&h).p99_us;
            s
        })
        .collect()
}

#[cfg(test)]
mod tests;

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`); 0 when unreadable.
fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
