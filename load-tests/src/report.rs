//! The report: JSON for machines, a short markdown page for people, and the pass/fail verdict
//! against SLA thresholds (the scenario's, overridden by `--sla name=value` on the command line).

use std::fmt::Write as _;

use serde::Serialize;

use crate::floor::CryptoFloor;
use crate::oha::OhaSummary;
use crate::scenario::SlaSpec;
use crate::stats::{RunSummary, StepSummary};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SlaError {
    #[error("{0:?} is not name=value")]
    Shape(String),
    #[error("{0:?} is not an SLA threshold (sync_p50_ms sync_p99_ms sync_p999_ms async_p99_ms max_error_ratio min_throughput_ratio)")]
    Name(String),
    #[error("{0:?} is not a non-negative number")]
    Value(String),
}

/// Applies one `name=value` override to `sla`.
pub fn apply_sla(sla: &mut SlaSpec, arg: &str) -> Result<(), SlaError> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| SlaError::Shape(arg.to_owned()))?;
    let value: f64 = value
        .trim()
        .trim_end_matches("ms")
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| SlaError::Value(value.to_owned()))?;
    let slot = match name.trim() {
        "sync_p50_ms" => &mut sla.sync_p50_ms,
        "sync_p99_ms" => &mut sla.sync_p99_ms,
        "sync_p999_ms" => &mut sla.sync_p999_ms,
        "async_p99_ms" => &mut sla.async_p99_ms,
        "max_error_ratio" => &mut sla.max_error_ratio,
        "min_throughput_ratio" => &mut sla.min_throughput_ratio,
        other => return Err(SlaError::Name(other.to_owned())),
    };
    *slot = Some(value);
    Ok(())
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SlaCheck {
    /// Which run: `gateway 90 %`, say.
    pub run: String,
    pub name: &'static str,
    pub limit: f64,
    pub actual: f64,
    pub pass: bool,
}

/// Checks `run` against every threshold `sla` sets. An async threshold with no responses
/// received fails: no figure is not a pass.
pub fn check_sla(sla: &SlaSpec, label: &str, run: &RunSummary) -> Vec<SlaCheck> {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut out = Vec::new();
    let mut at_most = |name, limit: Option<f64>, actual: f64| {
        if let Some(limit) = limit {
            out.push(SlaCheck {
                run: label.to_owned(),
                name,
                limit,
                actual,
                pass: actual <= limit,
            });
        }
    };
    at_most("sync_p50_ms", sla.sync_p50_ms, ms(run.sync.p50_us));
    at_most("sync_p99_ms", sla.sync_p99_ms, ms(run.sync.p99_us));
    at_most("sync_p999_ms", sla.sync_p999_ms, ms(run.sync.p999_us));
    let async_p99 = if run.async_.received == 0 {
        f64::INFINITY
    } else {
        ms(run.async_.latency.p99_us)
    };
    at_most("async_p99_ms", sla.async_p99_ms, async_p99);
    at_most("max_error_ratio", sla.max_error_ratio, run.error_ratio);
    if let Some(limit) = sla.min_throughput_ratio {
        let actual = run.throughput_rps / run.offered_rps.max(1e-9);
        out.push(SlaCheck {
            run: label.to_owned(),
            name: "min_throughput_ratio",
            limit,
            actual,
            pass: actual >= limit,
        });
    }
    out
}

/// CPU time a server process spent during a run.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Cpu {
    pub cpu_s: f64,
    /// CPU microseconds per accepted request.
    pub per_request_us: f64,
}

/// One load run against one target.
#[derive(Clone, Debug, Serialize)]
pub struct TargetRun {
    /// `gateway`, `hyper` or `nginx`.
    pub target: String,
    /// Share of the saturation rate (1.0 when none was measured).
    pub fraction: f64,
    pub summary: RunSummary,
    pub cpu: Option<Cpu>,
}

/// The gateway's figures over a reference's, at one rate.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Ratios {
    pub reference: String,
    pub fraction: f64,
    pub throughput: f64,
    pub p99: f64,
    pub cpu_per_request: Option<f64>,
}

pub fn ratios(gateway: &TargetRun, reference: &TargetRun) -> Ratios {
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    Ratios {
        reference: reference.target.clone(),
        fraction: gateway.fraction,
        throughput: div(
            gateway.summary.throughput_rps,
            reference.summary.throughput_rps,
        ),
        p99: div(
            gateway.summary.sync.p99_us as f64,
            reference.summary.sync.p99_us as f64,
        ),
        cpu_per_request: gateway
            .cpu
            .zip(reference.cpu)
            .map(|(g, r)| div(g.per_request_us, r.per_request_us)),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub server_cpus: Option<String>,
    /// The share of one CPU each server under test was limited to (`--server-cpu-share`).
    pub server_cpu_share: Option<f64>,
    pub generator_cpus: Option<String>,
}

impl Machine {
    pub fn this(server_cpus: Option<String>, generator_cpus: Option<String>) -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_default();
        // The machine's cores, not this process's: the generator may be pinned to one.
        let cores = std::fs::read_to_string("/proc/cpuinfo")
            .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Self {
            cores,
            cpu_model,
            server_cpus,
            server_cpu_share: None,
            generator_cpus,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: String,
    pub started_at: String,
    pub machine: Machine,
    /// The ramp's steps and the rate it found, when the bench looked for saturation.
    pub saturation: Option<Saturation>,
    pub floor: Option<CryptoFloor>,
    pub runs: Vec<TargetRun>,
    pub ratios: Vec<Ratios>,
    pub oha: Option<OhaSummary>,
    pub sla: Vec<SlaCheck>,
    pub pass: bool,
    pub notes: Vec<String>,
    /// The overload bench's figures (`[bench.overload]`).
    pub overload: Option<crate::bench::overload::OverloadSummary>,
    /// The soak at a share of the saturation rate (`[bench] soak_s`, `soak_fraction`).
    pub soak: Option<SoakRow>,
    /// Cluster mode next to embedded mode (`bench --cluster`).
    pub cluster: Option<crate::bench::cluster::ClusterComparison>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Saturation {
    pub rate_rps: f64,
    /// One constant-rate run per ramp step, up to the first that saturated.
    pub steps: Vec<StepSummary>,
}

#[cfg(test)]
mod tests;

mod markdown;
mod overload;
mod soak;
pub use markdown::markdown;
pub use soak::{SoakRow, SoakWindow};
