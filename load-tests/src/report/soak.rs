//! The soak row: the saturation rate's share held for minutes against the gateway, its figures
//! over the whole soak and window by window, and its verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{Cpu, SlaCheck};
use crate::stats::Percentiles;

#[derive(Clone, Debug, Serialize)]
pub struct SoakRow {
    /// Share of the saturation rate held …
    pub fraction: f64,
    /// … as a rate.
    pub rate_rps: f64,
    /// Seconds the plan held it.
    pub held_s: f64,
    pub requests: u64,
    pub accepted: u64,
    /// Accepted answers per second, to the last answer.
    pub throughput_rps: f64,
    pub sync: Percentiles,
    /// Whether device requests went to the simulated hub (the async figures mean something).
    pub routed: bool,
    pub async_expected: u64,
    pub async_received: u64,
    pub async_p99_us: Option<u64>,
    pub cpu: Cpu,
    /// The gateway's resident memory before and after the soak.
    pub rss_start_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    /// Answers other than I0/I99, by code (`E…`, `http-…`, `timeout`, …).
    pub errors: BTreeMap<String, u64>,
    pub error_ratio: f64,
    /// Length of each window below (60 s: the p99 of each minute).
    pub window_s: f64,
    pub windows: Vec<SoakWindow>,
    /// The scenario's SLA over the whole soak.
    pub sla: Vec<SlaCheck>,
    pub pass: bool,
}

/// One window of the soak: the requests due in it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SoakWindow {
    /// Seconds from the soak's start.
    pub start_s: f64,
    pub duration_s: f64,
    pub requests: u64,
    pub accepted: u64,
    pub sync_p99_us: u64,
    pub sync_max_us: u64,
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// The soak's section of the markdown page.
pub fn section(s: &mut String, r: &SoakRow) {
    let _ = writeln!(
        s,
        "\nSoak: {:.0} % of saturation held against the gateway alone:\n\n\
         | rate/s | held s | accepted/s | sync p50 ms | p99 | p99.9 | max | async p99 ms | CPU µs/req | RSS MiB start → end | not accepted | SLA |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        r.fraction * 100.0
    );
    let async_p99 = match (r.routed, r.async_p99_us) {
        (false, _) => "not routed".to_owned(),
        (true, None) => "none received".to_owned(),
        (true, Some(us)) => ms(us),
    };
    let _ = writeln!(
        s,
        "| {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {:.0} | {} → {} | {:.2} % | **{}** |",
        r.rate_rps,
        r.held_s,
        r.throughput_rps,
        ms(r.sync.p50_us),
        ms(r.sync.p99_us),
        ms(r.sync.p999_us),
        ms(r.sync.max_us),
        async_p99,
        r.cpu.per_request_us,
        mib(r.rss_start_kib),
        mib(r.rss_end_kib),
        r.error_ratio * 100.0,
        if r.pass { "PASS" } else { "FAIL" },
    );
    let errors: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        s,
        "\nNot accepted, by code: {}.",
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join(", ")
        }
    );
    if r.routed {
        let _ = writeln!(
            s,
            "Asynchronous: {} of {} expected Service Responses received.",
            r.async_received, r.async_expected
        );
    }
    let _ = writeln!(
        s,
        "\nSync p99 of each {:.0} s window (requests due in it):\n\n\
         | from s | requests | accepted | p99 ms | max ms |\n|---:|---:|---:|---:|---:|",
        r.window_s
    );
    for w in &r.windows {
        let _ = writeln!(
            s,
            "| {:.0} | {} | {} | {} | {} |",
            w.start_s,
            w.requests,
            w.accepted,
            ms(w.sync_p99_us),
            ms(w.sync_max_us)
        );
    }
}
