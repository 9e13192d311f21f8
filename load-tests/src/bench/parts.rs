//! The bench's steps: the saturation ramp, the references, oha, and writing the report.

use std::path::Path;
use std::time::Duration;

use time::macros::format_description;
use time::OffsetDateTime;

use super::{io, start, BenchArgs, BenchError, Server};
use crate::nginx::{self, NginxSite};
use crate::oha::{self, OhaRun, OhaSummary};
use crate::procs;
use crate::report::{markdown, Report, TargetRun};
use crate::runner::{Prepared, Signed};
use crate::scenario::{BenchSpec, Load};
use crate::stats::StepSummary;

/// The ramp used when the scenario names none: 100 requests/s more every 5 s, up to 20 000.
fn default_ramp() -> Load {
    Load::Ramp {
        start: 100.0,
        step: 100.0,
        step_s: 5.0,
        max: 20_000.0,
    }
}

/// Ramps the offered rate, one constant-rate run per step (fresh counters each), until a step
/// saturates: fewer than 97 % of its offer answered I99/I0 per second, or a sync p99 above the
/// scenario's bound. A step that fails on p99 alone is run once more before it counts (one
/// stall — a compaction, a slow fsync — is not saturation). Then two bisection steps between the
/// last good rate and the saturated one narrow it down. The saturation rate is the highest
/// rate that did not saturate.
pub(super) async fn find_saturation(
    prepared: &Prepared,
    gateway: &Server,
    spec: &BenchSpec,
) -> Result<(f64, Vec<StepSummary>), BenchError> {
    let ramp = spec.saturation_ramp.clone().unwrap_or_else(default_ramp);
    let mut steps = Vec::new();
    let mut last_good = None;
    let mut first_bad = None;
    for step in ramp.steps() {
        if saturates(
            prepared,
            gateway,
            spec,
            step.rate,
            step.duration_s,
            &mut steps,
        )
        .await?
        {
            first_bad = Some(step.rate);
            break;
        }
        last_good = Some(step.rate);
    }
    if let (Some(mut good), Some(mut bad)) = (last_good, first_bad) {
        let step_s = ramp.steps().first().map_or(5.0, |s| s.duration_s);
        for _ in 0..2 {
            let mid = (good + bad) / 2.0;
            if saturates(prepared, gateway, spec, mid, step_s, &mut steps).await? {
                bad = mid;
            } else {
                good = mid;
            }
        }
        last_good = Some(good);
    }
    // Saturated from the first step: take what it sustained.
    let rate = last_good.unwrap_or_else(|| steps.first().map_or(1.0, |s| s.throughput_rps));
    Ok((rate.max(1.0), steps))
}

/// Runs `rate` for `duration_s` (twice when the first run fails on p99 alone) and says whether
/// it saturated; every run is kept in `steps` for the report.
async fn saturates(
    prepared: &Prepared,
    gateway: &Server,
    spec: &BenchSpec,
    rate: f64,
    duration_s: f64,
    steps: &mut Vec<StepSummary>,
) -> Result<bool, BenchError> {
    for attempt in 0..2 {
        let load = Load::constant(rate, duration_s);
        let signed = tokio::task::block_in_place(|| prepared.sign(&load))?;
        let run = prepared
            .run(&signed, gateway.addr, None, Duration::ZERO)
            .await;
        let mut summary = run.steps.first().cloned().ok_or(BenchError::EmptyStep)?;
        // A saturated step drains its backlog after its end: completion rate over the whole
        // run, not over the step, is what it sustained.
        summary.throughput_rps = run.throughput_rps;
        let short = run.throughput_rps < 0.97 * rate;
        let slow = run.sync.p99_us as f64 > spec.saturation_p99_ms * 1000.0;
        eprintln!(
            "ramp: offered {rate:.0}/s, accepted {:.0}/s, sync p99 {:.2} ms{}",
            run.throughput_rps,
            run.sync.p99_us as f64 / 1000.0,
            match (short, slow) {
                (false, false) => "",
                (true, _) => " (saturated)",
                (false, true) if attempt == 0 => " (p99 over the bound: once more)",
                (false, true) => " (saturated)",
            }
        );
        steps.push(summary);
        if short {
            return Ok(true);
        }
        if !slow {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Checks that every reference server the bench will start can be found on `path` (a `PATH`
/// value): `hyper` is this program; `nginx` must be installed.
pub(super) fn check_references(
    refs: &[String],
    path: Option<&std::ffi::OsStr>,
) -> Result<(), BenchError> {
    for name in refs {
        let needs = match name.as_str() {
            "hyper" => None,
            "nginx" => Some(("nginx", "nginx-light")),
            other => return Err(BenchError::UnknownRef(other.to_owned())),
        };
        if let Some((program, package)) = needs {
            let found = path
                .map(std::env::split_paths)
                .into_iter()
                .flatten()
                .any(|dir| dir.join(program).is_file());
            if !found {
                return Err(BenchError::MissingProgram {
                    reference: name.clone(),
                    program,
                    package,
                });
            }
        }
    }
    Ok(())
}

/// Starts reference `name` (`hyper` or `nginx`) on a free port, answering `answer`.
pub(super) async fn start_ref(
    name: &str,
    prepared: &Prepared,
    args: &BenchArgs,
    body_file: &Path,
    answer: &str,
) -> Result<Server, BenchError> {
    let wd = &prepared.workdir;
    let port = procs::free_port().map_err(io("finding a port"))?;
    match name {
        "hyper" => {
            let me = std::env::current_exe().map_err(io("finding this program"))?;
            let a = vec![
                "ref-server".into(),
                "--workdir".into(),
                wd.dir.display().to_string(),
                "--port".into(),
                port.to_string(),
                "--body".into(),
                body_file.display().to_string(),
            ];
            start("hyper", &me, a, args, port, 30).await
        }
        "nginx" => {
            let site = NginxSite {
                addr: ([127, 0, 0, 1], port).into(),
                cert: &wd.pki("server"),
                key: &wd.pki_key("server"),
                client_ca: &wd.pki("ca"),
                body: answer,
            };
            let a = nginx::prepare(&site, &wd.dir.join("nginx"))?;
            start("nginx", Path::new("nginx"), a, args, port, 30).await
        }
        other => Err(BenchError::UnknownRef(other.to_owned())),
    }
}

/// oha at the same rate and connection count against the hyper reference. `Err` is a note for
/// the report (oha missing, no hyper reference, oha failed).
pub(super) async fn run_oha(
    prepared: &Prepared,
    args: &BenchArgs,
    refs: &[Server],
    signed: &Signed,
    runs: &[TargetRun],
    load: &Load,
    body_file: &Path,
) -> Result<Option<OhaSummary>, String> {
    let program = oha::find()
        .ok_or("oha is not installed (cargo install oha --locked); its check was skipped")?;
    let server = refs
        .iter()
        .find(|s| s.name == "hyper")
        .ok_or("oha runs against the hyper reference, which this bench did not start")?;
    let rate = load.requests() / load.duration_s();
    let connections = prepared.lanes(&signed.plan);
    let user = &prepared.pop.users[0];
    let url = format!("https://localhost:{}/", server.addr.port());
    let run = OhaRun {
        url: &url,
        rate,
        duration_s: load.duration_s(),
        connections,
        ca: &prepared.workdir.pki("ca"),
        cert: &prepared.workdir.user(user, "tls.pem"),
        key: &prepared.workdir.user(user, "tls.key.pem"),
        body: body_file,
        reuse: prepared.scenario.connection.reuse,
    };
    let mut cmd = match &args.generator_cpus {
        Some(cpus) => {
            let mut c = std::process::Command::new("taskset");
            c.arg("-c").arg(cpus).arg(&program);
            c
        }
        None => std::process::Command::new(&program),
    };
    cmd.args(oha::args(&run));
    let out = tokio::task::block_in_place(|| cmd.output())
        .map_err(|e| format!("oha did not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "oha failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut summary = oha::parse(&text, "hyper", rate, connections)
        .map_err(|e| format!("oha's output was not readable: {e}"))?;
    summary.ours = runs.iter().rev().find(|r| r.target == "hyper").map(|r| {
        format!(
            "{:.0} answered/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
            r.summary.throughput_rps,
            r.summary.sync.p50_us as f64 / 1000.0,
            r.summary.sync.p99_us as f64 / 1000.0,
            r.summary.sync.p999_us as f64 / 1000.0
        )
    });
    Ok(Some(summary))
}

/// Writes `<scenario>-<time>.json` and `.md` under `dir`.
pub(super) fn write_report(
    report: &Report,
    dir: &Path,
    at: OffsetDateTime,
) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let stamp = at
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let stem = dir.join(format!("{}-{stamp}", report.scenario));
    let json = serde_json::to_string_pretty(report).unwrap_or_default();
    let json_path = stem.with_extension("json");
    std::fs::write(&json_path, json).map_err(io(format!("writing {}", json_path.display())))?;
    let md_path = stem.with_extension("md");
    std::fs::write(&md_path, markdown(report))
        .map_err(io(format!("writing {}", md_path.display())))?;
    eprintln!(
        "Report written to {} and {}",
        json_path.display(),
        md_path.display()
    );
    Ok(())
}
