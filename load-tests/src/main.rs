//! The `dccgw-load` command. `anyhow` lives only here.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, Subcommand};

use dccgw_load::bench::{self, BenchArgs};
use dccgw_load::receiver::Receiver;
use dccgw_load::report::{self, markdown, Machine, Report, TargetRun};
use dccgw_load::runner::Prepared;
use dccgw_load::scenario::{Load, Scenario};
use dccgw_load::setup::{self, Workdir};
use dccgw_load::{floor, refserver, tlsconf};

#[derive(Parser)]
#[command(
    name = "dccgw-load",
    version,
    about = "Open-loop load generator for dccgw"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// The scenario (load-tests/scenarios/*.toml).
    #[arg(long)]
    scenario: PathBuf,
    /// Where the PKI, registry, registers and configuration live (kept between runs).
    #[arg(long, default_value = "target/dccgw-load")]
    workdir: PathBuf,
    /// SLA threshold overrides, e.g. `--sla sync_p99_ms=50 --sla max_error_ratio=0.001`.
    #[arg(long)]
    sla: Vec<String>,
    /// Keep only the mix entries of this class (`critical`, `meter-read`, …): one class's own
    /// latency and CPU per request.
    #[arg(long)]
    only: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one command: start the gateway and the references, find saturation (if the
    /// scenario asks), run the load against each, write and print the report.
    Bench {
        #[command(flatten)]
        common: Common,
        /// The gateway binary (build it with `cargo build --release -p dccgw`).
        #[arg(long, default_value = "target/release/dccgw")]
        dccgw: PathBuf,
        #[arg(long, default_value = "load-tests/results")]
        results: PathBuf,
        /// CPUs for the servers under test (taskset list); default 0 on a machine with 2+ cores.
        #[arg(long)]
        server_cpus: Option<String>,
        /// A share of one CPU for each server under test (a cgroup's CFS quota of 1 ms a period;
        /// needs root), e.g. 0.5: for an overload the generator's cores could not offer against
        /// a whole server core.
        #[arg(long)]
        server_cpu_share: Option<f64>,
        /// CPUs for the generator; default 1 on a machine with 2+ cores.
        #[arg(long)]
        generator_cpus: Option<String>,
        /// Take this as the saturation rate instead of ramping to find it.
        #[arg(long)]
        saturation: Option<f64>,
        /// Seconds per measured run (overrides the scenario's bench.run_s).
        #[arg(long)]
        run_s: Option<f64>,
        /// Seconds the soak holds a share of the saturation rate against the gateway
        /// (overrides the scenario's bench.soak_s); 0 skips the soak.
        #[arg(long)]
        soak_s: Option<f64>,
        /// The share of the saturation rate the soak holds (overrides bench.soak_fraction).
        #[arg(long)]
        soak_fraction: Option<f64>,
        /// References to run (overrides the scenario's), comma-separated: hyper,nginx.
        #[arg(long, value_delimiter = ',')]
        refs: Option<Vec<String>>,
        /// Replace the scenario's own load (when it does not look for saturation) with this
        /// constant rate, for `--duration-s` seconds: for short smoke runs.
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, default_value_t = 30.0)]
        duration_s: f64,
        /// Skip the oha cross-check.
        #[arg(long)]
        no_oha: bool,
        /// Seconds the gateway may take to load its registry and listen.
        #[arg(long, default_value_t = 900)]
        startup_s: u64,
        /// Run `--rate` for `--duration-s` against embedded mode and cluster mode in turn (twice
        /// each, on a throwaway PostgreSQL and nats-server): CPU per request and latency of both.
        #[arg(long)]
        cluster: bool,
    },
    /// Make the work directory and a gateway configuration for `dccgw serve`, for `run`.
    Prepare {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 8443)]
        port: u16,
        #[arg(long, default_value_t = 9090)]
        admin_port: u16,
        /// The port `run` will take asynchronous responses on (written into users.csv).
        #[arg(long, default_value_t = 9444)]
        receiver_port: u16,
        /// The port of the `dccgw commshub` process.
        #[arg(long, default_value_t = 9445)]
        hub_port: u16,
    },
    /// Run the scenario's load against a gateway that is already listening.
    Run {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value = "127.0.0.1:8443")]
        target: std::net::SocketAddr,
        #[arg(long, default_value_t = 9444)]
        receiver_port: u16,
        /// Replace the scenario's load with this constant rate …
        #[arg(long)]
        rate: Option<f64>,
        /// … for this many seconds.
        #[arg(long, default_value_t = 30.0)]
        duration_s: f64,
        #[arg(long, default_value = "load-tests/results")]
        results: PathBuf,
    },
    /// Reference (a): a bare hyper + rustls mTLS server answering a fixed body.
    RefServer {
        #[arg(long)]
        workdir: PathBuf,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        body: PathBuf,
    },
    /// Compare running ECDSA signatures inline on the async workers, through
    /// `dccgw::offload` (`block_in_place`) and through `spawn_blocking`: CPU and wall time per
    /// job, and how late a 1 ms heartbeat fires.
    Offload {
        /// Concurrent tasks.
        #[arg(long, default_value_t = 64)]
        tasks: usize,
        /// Jobs (one signature each) per task.
        #[arg(long, default_value_t = 200)]
        jobs: usize,
    },
    /// Print the crypto floor: V ECDSA P-256 verifications plus N signatures (means, may be fractional), with ring.
    Floor {
        #[arg(long, default_value_t = 1.0)]
        signs: f64,
        #[arg(long, default_value_t = 1.0)]
        verifies: f64,
    },
}

fn load_scenario(common: &Common) -> anyhow::Result<Scenario> {
    let mut scenario = Scenario::load(&common.scenario)?;
    if let Some(class) = &common.only {
        scenario.only(class)?;
    }
    for arg in &common.sla {
        report::apply_sla(&mut scenario.sla, arg)?;
    }
    Ok(scenario)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    match cli.command {
        Command::Bench {
            common,
            dccgw,
            results,
            server_cpus,
            server_cpu_share,
            generator_cpus,
            saturation,
            run_s,
            soak_s,
            soak_fraction,
            refs,
            rate,
            duration_s,
            no_oha,
            startup_s,
            cluster,
        } => {
            anyhow::ensure!(
                !cluster || rate.is_some(),
                "--cluster runs a constant load: give --rate (and --duration-s)"
            );
            let mut scenario = load_scenario(&common)?;
            if let Some(rate) = rate {
                scenario.load = Load::constant(rate, duration_s);
                scenario.check()?;
            }
            if let Some(s) = run_s {
                scenario.bench.run_s = s;
            }
            if let Some(s) = soak_s {
                scenario.bench.soak_s = s;
            }
            if let Some(f) = soak_fraction {
                scenario.bench.soak_fraction = f;
            }
            scenario.bench.check_soak()?;
            if let Some(r) = refs {
                scenario.bench.refs = r.into_iter().filter(|r| !r.is_empty()).collect();
            }
            scenario.bench.oha &= !no_oha;
            anyhow::ensure!(
                dccgw.is_file(),
                "{} is not there: build it with `cargo build --release -p dccgw`",
                dccgw.display()
            );
            let args = BenchArgs {
                workdir: common.workdir,
                dccgw,
                results,
                server_cpus: server_cpus.or_else(|| two_cores.then(|| "0".into())),
                server_cpu_share,
                generator_cpus: generator_cpus.or_else(|| two_cores.then(|| "1".into())),
                saturation,
                startup_s,
            };
            let report = if cluster {
                runtime.block_on(bench::cluster::compare(scenario, &args))?
            } else {
                runtime.block_on(bench::bench(scenario, &args))?
            };
            print!("{}", markdown(&report));
            std::process::exit(if report.pass { 0 } else { 1 });
        }
        Command::Prepare {
            common,
            port,
            admin_port,
            receiver_port,
            hub_port,
        } => {
            let scenario = load_scenario(&common)?;
            let mut extra = scenario.bench.gateway_config_extra.clone();
            let routing = scenario.routing.clone();
            let prepared = Prepared::new(scenario, &common.workdir)?;
            let wd = Workdir::new(&common.workdir);
            setup::write_users(
                &wd,
                &prepared.pop,
                &format!("https://localhost:{receiver_port}/"),
            )?;
            let addr = ([127, 0, 0, 1], hub_port).into();
            extra = format!("{}\n{extra}", setup::routing_config(&wd, addr, &routing)?);
            let hub = setup::write_hub_config(&wd, &prepared.pop, addr, &routing)?;
            let config = setup::write_gateway_config(
                &wd,
                &prepared.pop,
                ([127, 0, 0, 1], port).into(),
                ([127, 0, 0, 1], admin_port).into(),
                &extra,
            )?;
            println!("Prepared {}.", wd.dir.display());
            println!(
                "Start the simulated comms-hub network with:\n  dccgw commshub --config {}",
                hub.display()
            );
            println!(
                "Start the gateway with:\n  dccgw serve --config {}",
                config.display()
            );
            Ok(())
        }
        Command::Run {
            common,
            target,
            receiver_port,
            rate,
            duration_s,
            results,
        } => {
            let scenario = load_scenario(&common)?;
            let report = runtime.block_on(run(
                scenario,
                &common,
                target,
                receiver_port,
                rate,
                duration_s,
                &results,
            ))?;
            print!("{}", markdown(&report));
            std::process::exit(if report.pass { 0 } else { 1 });
        }
        Command::RefServer {
            workdir,
            port,
            body,
        } => {
            let wd = Workdir::new(&workdir);
            let tls = tlsconf::server(&wd.pki("server"), &wd.pki_key("server"), &wd.pki("ca"))?;
            let body = Bytes::from(
                std::fs::read(&body).with_context(|| format!("reading {}", body.display()))?,
            );
            runtime.block_on(async {
                let (addr, serve) =
                    refserver::bind(([127, 0, 0, 1], port).into(), tls, body).await?;
                println!("ref-server listening on {addr}");
                tokio::select! {
                    _ = serve => {}
                    _ = tokio::signal::ctrl_c() => {}
                    _ = sigterm() => {}
                }
                anyhow::Ok(())
            })
        }
        Command::Offload { tasks, jobs } => {
            let figures = dccgw_load::offload::measure(tasks, jobs)?;
            println!("{}", serde_json::to_string_pretty(&figures)?);
            Ok(())
        }
        Command::Floor { signs, verifies } => {
            let f = floor::measure(5_000, verifies, signs)?;
            println!("{}", serde_json::to_string_pretty(&f)?);
            Ok(())
        }
    }
}

async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// `run`: the scenario (or a constant rate) against a listening gateway.
async fn run(
    scenario: Scenario,
    common: &Common,
    target: std::net::SocketAddr,
    receiver_port: u16,
    rate: Option<f64>,
    duration_s: f64,
    results: &std::path::Path,
) -> anyhow::Result<Report> {
    let now = time::OffsetDateTime::now_utc();
    let started = now.replace_nanosecond(0).unwrap_or(now);
    let load = match rate {
        Some(r) => Load::constant(r, duration_s),
        None => scenario.load.clone(),
    };
    let sla = scenario.sla.clone();
    let grace = Duration::from_secs_f64(scenario.bench.async_grace_s.max(0.0));
    let prepared = tokio::task::block_in_place(|| Prepared::new(scenario, &common.workdir))?;
    let wd = &prepared.workdir;
    let tls = tlsconf::server(&wd.pki("receiver"), &wd.pki_key("receiver"), &wd.pki("ca"))?;
    let receiver = Receiver::start(([127, 0, 0, 1], receiver_port).into(), tls)
        .await
        .context("starting the Receive Response endpoint")?;
    let signed = tokio::task::block_in_place(|| prepared.sign(&load))?;
    let summary = prepared.run(&signed, target, Some(&receiver), grace).await;
    let sla = report::check_sla(&sla, "gateway", &summary);
    let report = Report {
        scenario: prepared.scenario.name.clone(),
        description: prepared.scenario.description.clone(),
        started_at: started
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        machine: Machine::this(None, None),
        saturation: None,
        floor: None,
        pass: sla.iter().all(|c| c.pass),
        sla,
        runs: vec![TargetRun {
            target: "gateway".into(),
            fraction: 1.0,
            summary,
            cpu: None,
        }],
        ratios: Vec::new(),
        oha: None,
        notes: Vec::new(),
        overload: None,
        soak: None,
        cluster: None,
    };
    std::fs::create_dir_all(results)?;
    let path = results.join(format!("{}-run.json", report.scenario));
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    Ok(report)
}
