//! `dccgw-load bench`: one command from nothing to a report. It prepares the work directory,
//! measures the crypto floor, starts its Receive Response endpoint, the gateway (`dccgw serve`
//! on a generated configuration) and the references, each server pinned to the server CPUs and
//! the generator to its own; finds the saturation rate with a ramp (when the scenario asks),
//! runs the same load against each target at each fraction of it, then holds a share of it
//! against the gateway alone for the soak (`soak_s`), and writes the report.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::floor;
use crate::nginx;
use crate::procs::{self, ProcError};
use crate::quota::{CpuShare, QuotaError};
use crate::receiver::Receiver;
use crate::report::{self, Cpu, Machine, Report, Saturation, TargetRun};
use crate::runner::{Prepared, RunnerError, Signed};
use crate::scenario::{Load, Scenario};
use crate::setup;
use crate::stats::RunSummary;
use crate::tlsconf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
    #[error(transparent)]
    Tls(#[from] tlsconf::TlsConfError),
    #[error(transparent)]
    Nginx(#[from] nginx::NginxError),
    #[error(transparent)]
    Floor(#[from] floor::FloorError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown reference {0:?} (hyper, nginx)")]
    UnknownRef(String),
    #[error(
        "the {reference} reference needs `{program}` on PATH, which is not there: install it \
         (Debian package {package}) or take {reference} out of the scenario's [bench] refs"
    )]
    MissingProgram {
        reference: String,
        program: &'static str,
        package: &'static str,
    },
    #[error("cluster mode: {0}")]
    Cluster(String),
    #[error("a ramp step planned no requests")]
    EmptyStep,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// The bench's knobs beyond the scenario.
pub struct BenchArgs {
    pub workdir: PathBuf,
    /// The `dccgw` binary (a release build).
    pub dccgw: PathBuf,
    pub results: PathBuf,
    pub server_cpus: Option<String>,
    /// A share of one CPU for each server under test (`quota.rs`), when its whole core is more
    /// than the generator can overload.
    pub server_cpu_share: Option<f64>,
    pub generator_cpus: Option<String>,
    /// Skip the ramp and take this as the saturation rate.
    pub saturation: Option<f64>,
    /// Seconds the gateway may take to load its registry and listen.
    pub startup_s: u64,
}

/// A server under test.
struct Server {
    name: String,
    child: Child,
    addr: std::net::SocketAddr,
    /// Dropped after `child` has been stopped (a cgroup is removed once empty).
    _share: Option<CpuShare>,
}

impl Drop for Server {
    fn drop(&mut self) {
        procs::stop(&mut self.child);
    }
}

impl Server {
    fn cpu_ticks(&self) -> u64 {
        procs::tree_cpu_ticks(self.child.id())
    }
}

/// `dccgw <command> --config <config>`'s arguments.
fn dccgw_args(command: &str, config: &Path) -> Vec<String> {
    vec![
        command.into(),
        "--config".into(),
        config.display().to_string(),
    ]
}

/// Starts a server under test on the server CPUs.
async fn start(
    name: &str,
    program: &Path,
    args: Vec<String>,
    bench: &BenchArgs,
    port: u16,
    wait_s: u64,
) -> Result<Server, BenchError> {
    let cpus = bench.server_cpus.as_deref();
    let mut server = start_on(name, cpus, program, args, bench, port, wait_s).await?;
    if let Some(share) = bench.server_cpu_share {
        server._share = Some(CpuShare::apply(server.child.id(), share)?);
    }
    Ok(server)
}

/// Starts the simulated comms-hub network (`dccgw commshub` with `config`) on the generator's
/// CPUs, so that the gateway's CPU figures are the gateway's alone.
async fn start_hub(bench: &BenchArgs, config: &Path, port: u16) -> Result<Server, BenchError> {
    let cpus = bench.generator_cpus.as_deref();
    let args = dccgw_args("commshub", config);
    start_on(
        "commshub",
        cpus,
        &bench.dccgw,
        args,
        bench,
        port,
        bench.startup_s,
    )
    .await
}

/// Starts `program` pinned to `cpus` and waits until it listens on `port`.
async fn start_on(
    name: &str,
    cpus: Option<&str>,
    program: &Path,
    args: Vec<String>,
    bench: &BenchArgs,
    port: u16,
    wait_s: u64,
) -> Result<Server, BenchError> {
    let log = bench.workdir.join(format!("{name}.log"));
    let mut child = procs::spawn(cpus, program, &args, &log)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    if let Err(e) = procs::wait_listening(name, &mut child, addr, wait_s).await {
        procs::stop(&mut child);
        return Err(e.into());
    }
    Ok(Server {
        name: name.to_owned(),
        child,
        addr,
        _share: None,
    })
}

pub async fn bench(scenario: Scenario, args: &BenchArgs) -> Result<Report, BenchError> {
    let now = OffsetDateTime::now_utc();
    let started_at = now.replace_nanosecond(0).unwrap_or(now);
    if let Some(cpus) = &args.generator_cpus {
        procs::pin_self(cpus)?;
    }
    let spec = scenario.bench.clone();
    // A missing reference server is said before anything is prepared or started.
    parts::check_references(&spec.refs, std::env::var_os("PATH").as_deref())?;
    let sla = scenario.sla.clone();
    let prepared = tokio::task::block_in_place(|| Prepared::new(scenario, &args.workdir))?;
    let wd = &prepared.workdir;
    let floor = floor::measure(
        2_000,
        prepared.scenario.verifies_per_request(),
        prepared.scenario.signs_per_request(),
    )?;
    let mut notes = Vec::new();

    let receiver_tls =
        tlsconf::server(&wd.pki("receiver"), &wd.pki_key("receiver"), &wd.pki("ca"))?;
    let receiver = Receiver::start(([127, 0, 0, 1], 0).into(), receiver_tls)
        .await
        .map_err(io("starting the Receive Response endpoint"))?;
    setup::write_users(wd, &prepared.pop, &receiver.url())?;
    let port = procs::free_port().map_err(io("finding a port"))?;
    let admin = procs::free_port().map_err(io("finding a port"))?;
    // The simulated comms-hub network runs as its own process (`start_hub`).
    let routing = &prepared.scenario.routing;
    let hub_port = procs::free_port().map_err(io("finding a port"))?;
    let hub_addr = ([127, 0, 0, 1], hub_port).into();
    let hub_config = setup::write_hub_config(wd, &prepared.pop, hub_addr, routing)?;
    let _hub = start_hub(args, &hub_config, hub_port).await?;
    let extra = format!(
        "{}\n{}",
        setup::routing_config(wd, hub_addr, routing)?,
        spec.gateway_config_extra
    );
    let config = setup::write_gateway_config(
        wd,
        &prepared.pop,
        ([127, 0, 0, 1], port).into(),
        ([127, 0, 0, 1], admin).into(),
        &extra,
    )?;
    let gateway = start(
        "gateway",
        &args.dccgw,
        dccgw_args("serve", &config),
        args,
        port,
        args.startup_s,
    )
    .await?;

    let answer = prepared.fixed_answer()?;
    let body_file = wd.dir.join("fixed-answer.xml");
    std::fs::write(&body_file, &answer).map_err(io("writing the fixed answer"))?;
    let mut refs = Vec::new();
    for name in &spec.refs {
        refs.push(start_ref(name, &prepared, args, &body_file, &answer).await?);
    }

    let grace = Duration::from_secs_f64(spec.async_grace_s.max(0.0));
    let (saturation, loads) = if spec.find_saturation {
        let (rate, steps) = match args.saturation {
            Some(rate) => (rate, Vec::new()),
            None => {
                let found = find_saturation(&prepared, &gateway, &spec).await?;
                // The ramp's Service Responses still on their way would land in the first
                // measured run as unmatched: let them arrive first.
                tokio::time::sleep(grace).await;
                found
            }
        };
        let loads: Vec<(f64, Load)> = spec
            .fractions
            .iter()
            .map(|f| (*f, Load::constant((rate * f).max(1.0), spec.run_s)))
            .collect();
        (
            Some(Saturation {
                rate_rps: rate,
                steps,
            }),
            loads,
        )
    } else {
        (None, vec![(1.0, prepared.scenario.load.clone())])
    };

    // An overload scenario runs its baseline and its overload in place of the fractions.
    let overload = match (&spec.overload, &saturation) {
        (Some(o), Some(sat)) => {
            let rate = sat.rate_rps;
            Some(overload::run(&prepared, &gateway, &receiver, o, rate, grace).await?)
        }
        _ => None,
    };
    let loads = if overload.is_some() {
        Vec::new()
    } else {
        loads
    };
    let ticks = procs::clock_ticks() as f64;
    let mut runs = Vec::new();
    let mut ratios = Vec::new();
    let mut sla_checks = Vec::new();
    let mut oha_summary = None;
    for (fraction, load) in &loads {
        let signed = tokio::task::block_in_place(|| prepared.sign(load))?;
        let rx = Some(&receiver);
        let g = measured(&prepared, &signed, &gateway, rx, grace, ticks).await;
        let gateway_run = TargetRun {
            target: "gateway".into(),
            fraction: *fraction,
            summary: g.0,
            cpu: Some(g.1),
        };
        let label = format!("gateway {:.0} %", fraction * 100.0);
        sla_checks.extend(report::check_sla(&sla, &label, &gateway_run.summary));
        runs.push(gateway_run.clone());
        for server in &refs {
            let (summary, cpu) =
                measured(&prepared, &signed, server, None, Duration::ZERO, ticks).await;
            let run = TargetRun {
                target: server.name.clone(),
                fraction: *fraction,
                summary,
                cpu: Some(cpu),
            };
            ratios.push(report::ratios(&gateway_run, &run));
            runs.push(run);
        }
        let last = loads.last().map(|(f, _)| *f) == Some(*fraction);
        if spec.oha && last {
            oha_summary = run_oha(&prepared, args, &refs, &signed, &runs, load, &body_file)
                .await
                .unwrap_or_else(|note| {
                    notes.push(note);
                    None
                });
        }
    }
    runs.sort_by(|a, b| a.fraction.total_cmp(&b.fraction));
    drop(refs);
    // The soak, against the gateway alone (the references are stopped: their CPU is not the
    // gateway's to share).
    let soak = match (&saturation, &overload) {
        (Some(sat), None) if spec.soak_s > 0.0 => {
            let run = SoakRun {
                addr: gateway.addr,
                pid: gateway.child.id(),
                receiver: Some(&receiver),
                grace,
                saturation_rps: sat.rate_rps,
                fraction: spec.soak_fraction,
                duration_s: spec.soak_s,
                window_s: soak::MINUTE_S,
            };
            let row = soak::run(&prepared, &run, &sla).await?;
            sla_checks.extend(row.sla.iter().cloned());
            Some(row)
        }
        _ => None,
    };
    drop(gateway);
    if runs
        .iter()
        .any(|r| r.target == "gateway" && r.summary.async_.received == 0)
    {
        notes.push(
            "No asynchronous Service Responses reached the Receive Response endpoint: the async \
             figures are empty, not zero latency."
                .into(),
        );
    }
    let pass = sla_checks.iter().all(|c| c.pass);
    let report = Report {
        scenario: prepared.scenario.name.clone(),
        description: prepared.scenario.description.clone(),
        started_at: started_at.format(&Rfc3339).unwrap_or_default(),
        machine: Machine {
            server_cpu_share: args.server_cpu_share,
            ..Machine::this(args.server_cpus.clone(), args.generator_cpus.clone())
        },
        saturation,
        floor: Some(floor),
        runs,
        ratios,
        oha: oha_summary,
        sla: sla_checks,
        pass,
        notes,
        overload,
        soak,
        cluster: None,
    };
    write_report(&report, &args.results, started_at)?;
    Ok(report)
}

/// One run against `server`, with its CPU time over the run (and the grace period after it).
async fn measured(
    prepared: &Prepared,
    signed: &Signed,
    server: &Server,
    receiver: Option<&Receiver>,
    grace: Duration,
    ticks: f64,
) -> (RunSummary, Cpu) {
    let before = server.cpu_ticks();
    let summary = prepared.run(signed, server.addr, receiver, grace).await;
    let cpu_s = server.cpu_ticks().saturating_sub(before) as f64 / ticks;
    let per_request_us = cpu_s * 1e6 / (summary.accepted.max(1)) as f64;
    (
        summary,
        Cpu {
            cpu_s,
            per_request_us,
        },
    )
}

pub mod cluster;
pub mod overload;
mod parts;
pub mod soak;
use parts::{find_saturation, run_oha, start_ref, write_report};
use soak::SoakRun;

#[cfg(test)]
mod tests;
