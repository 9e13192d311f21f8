//! A check on the generator itself: the same rate against the same reference server with `oha`
//! (crates.io; fixed rate with `--latency-correction`, client certificates), whose figures should
//! agree with ours within reason. oha sends one fixed body, so it runs against the references
//! only: the gateway would refuse every repeat of one RequestID as a replay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum OhaError {
    #[error("oha's JSON output could not be read")]
    Json(#[from] serde_json::Error),
    #[error("oha's output has no {0}")]
    Missing(&'static str),
}

/// How to run oha.
pub struct OhaRun<'a> {
    pub url: &'a str,
    pub rate: f64,
    pub duration_s: f64,
    pub connections: usize,
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
    pub body: &'a Path,
    pub reuse: bool,
}

pub fn args(run: &OhaRun<'_>) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    let mut args = vec![
        "--no-tui".into(),
        "--output-format".into(),
        "json".into(),
        "-z".into(),
        format!("{}s", run.duration_s.round().max(1.0)),
        "-q".into(),
        format!("{}", run.rate.round().max(1.0)),
        "--latency-correction".into(),
        "-c".into(),
        run.connections.max(1).to_string(),
        "-m".into(),
        "POST".into(),
        "-T".into(),
        "application/xml".into(),
        "-D".into(),
        path(run.body),
        "--cacert".into(),
        path(run.ca),
        "--cert".into(),
        path(run.cert),
        "--key".into(),
        path(run.key),
    ];
    if !run.reuse {
        args.push("--disable-keepalive".into());
    }
    args.push(run.url.to_owned());
    args
}

/// oha's summary beside ours.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OhaSummary {
    pub target: String,
    pub rate: f64,
    pub connections: usize,
    pub rps: f64,
    pub success_rate: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub status: BTreeMap<String, u64>,
    /// dccgw-load's figures for the same target and rate, for the page.
    pub ours: Option<String>,
}

#[derive(Deserialize)]
struct Output {
    summary: Summary,
    #[serde(rename = "latencyPercentiles")]
    latency_percentiles: BTreeMap<String, Option<f64>>,
    #[serde(rename = "statusCodeDistribution", default)]
    status: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct Summary {
    #[serde(rename = "successRate")]
    success_rate: f64,
    #[serde(rename = "requestsPerSec")]
    requests_per_sec: f64,
}

/// Reads oha's `--output-format json` (latencies in seconds).
pub fn parse(
    json: &str,
    target: &str,
    rate: f64,
    connections: usize,
) -> Result<OhaSummary, OhaError> {
    let out: Output = serde_json::from_str(json)?;
    let p = |key: &'static str| {
        out.latency_percentiles
            .get(key)
            .copied()
            .flatten()
            .map(|s| (s * 1e6).round() as u64)
            .ok_or(OhaError::Missing(key))
    };
    Ok(OhaSummary {
        target: target.to_owned(),
        rate,
        connections,
        rps: out.summary.requests_per_sec,
        success_rate: out.summary.success_rate,
        p50_us: p("p50")?,
        p90_us: p("p90")?,
        p99_us: p("p99")?,
        p999_us: p("p99.9")?,
        status: out.status,
        ours: None,
    })
}

/// Where oha is: on `PATH`, or in cargo's bin directory.
pub fn find() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")));
    candidates.map(|d| d.join("oha")).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ohas_json() {
        let json = r#"{"summary":{"successRate":1.0,"total":10.0,"slowest":0.01,"fastest":0.0001,
            "average":0.0005,"requestsPerSec":999.5,"totalData":1,"sizePerRequest":1,"sizePerSec":1.0},
            "latencyPercentiles":{"p10":0.0001,"p25":0.0002,"p50":0.0004,"p75":0.0005,"p90":0.0007,
            "p95":0.0009,"p99":0.0021,"p99.9":0.0052,"p99.99":0.009},
            "statusCodeDistribution":{"200":9995},"errorDistribution":{}}"#;
        let s = parse(json, "hyper", 1000.0, 8).unwrap();
        assert_eq!(
            (s.p50_us, s.p90_us, s.p99_us, s.p999_us),
            (400, 700, 2100, 5200)
        );
        assert_eq!(s.status.get("200"), Some(&9995));
        assert!((s.rps - 999.5).abs() < 1e-9);
        assert!(parse("{}", "x", 1.0, 1).is_err());
    }

    #[test]
    fn asks_for_a_fixed_rate_with_latency_correction_and_client_certificates() {
        let p = Path::new("/w/x");
        let run = OhaRun {
            url: "https://localhost:1/",
            rate: 1500.0,
            duration_s: 30.0,
            connections: 96,
            ca: p,
            cert: p,
            key: p,
            body: p,
            reuse: false,
        };
        let a = args(&run).join(" ");
        for want in [
            "-q 1500",
            "--latency-correction",
            "-z 30s",
            "-c 96",
            "--cert /w/x",
            "--key /w/x",
            "--disable-keepalive",
        ] {
            assert!(a.contains(want), "{a} lacks {want}");
        }
        assert!(a.ends_with("https://localhost:1/"));
    }
}
