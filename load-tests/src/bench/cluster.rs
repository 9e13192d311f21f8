//! `dccgw-load bench --cluster`: the same constant load against the gateway in embedded mode
//! and in cluster mode in one run, alternated (embedded, cluster, embedded, cluster), so that
//! both meet the same machine. The bench starts its own throwaway PostgreSQL (`fsync` on) and
//! `nats-server -js` with dccgw's own `cluster::servers`, loads the registers with
//! `cluster init`, and before each run a fresh `dccgw commshub` and a `dccgw serve` with a
//! fresh state directory. CPU per accepted request is the gateway process's (utime + stime);
//! PostgreSQL's (the postmaster and its backends) and nats-server's are reported beside it,
//! not in it. The ratio is cluster ÷ embedded within each round (the goal: at most 1.5).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use dccgw::cluster::servers::{Durability, Nats, Postgres};

use super::{dccgw_args, io, start, start_hub, BenchArgs, BenchError, Server};
use crate::procs;
use crate::receiver::Receiver;
use crate::report::{Cpu, Machine, Report};
use crate::runner::Prepared;
use crate::scenario::Scenario;
use crate::setup;
use crate::stats::RunSummary;
use crate::tlsconf;

/// Rounds of (embedded, cluster).
const ROUNDS: u32 = 2;
/// The goal for cluster ÷ embedded CPU per request.
pub const GOAL: f64 = 1.5;

/// One run of the comparison.
#[derive(Clone, Debug, Serialize)]
pub struct ModeRun {
    /// `embedded` or `cluster`.
    pub mode: String,
    pub round: u32,
    pub summary: RunSummary,
    /// The gateway process's CPU.
    pub gateway: Cpu,
    /// PostgreSQL's CPU over the run (postmaster and backends), cluster runs only.
    pub postgres_cpu_s: Option<f64>,
    /// nats-server's CPU over the run, cluster runs only.
    pub nats_cpu_s: Option<f64>,
}

/// The comparison's runs and ratios.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterComparison {
    pub rate_rps: f64,
    pub duration_s: f64,
    /// Whether nats-server synced every write (`sync_interval: always`; 2.10 and later).
    pub nats_sync_always: bool,
    pub runs: Vec<ModeRun>,
    /// Cluster ÷ embedded gateway CPU per request, one per round.
    pub cpu_ratios: Vec<f64>,
}

/// The throwaway servers and the configurations of both modes.
struct Cluster {
    postgres: Postgres,
    nats: Nats,
    dir: PathBuf,
    embedded: String,
    cluster: String,
}

pub async fn compare(scenario: Scenario, args: &BenchArgs) -> Result<Report, BenchError> {
    let now = OffsetDateTime::now_utc();
    let started_at = now.replace_nanosecond(0).unwrap_or(now);
    if let Some(cpus) = &args.generator_cpus {
        procs::pin_self(cpus)?;
    }
    let prepared = tokio::task::block_in_place(|| Prepared::new(scenario, &args.workdir))?;
    let wd = &prepared.workdir;
    let tls = tlsconf::server(&wd.pki("receiver"), &wd.pki_key("receiver"), &wd.pki("ca"))?;
    let receiver = Receiver::start(([127, 0, 0, 1], 0).into(), tls)
        .await
        .map_err(io("starting the Receive Response endpoint"))?;
    setup::write_users(wd, &prepared.pop, &receiver.url())?;
    let free = || procs::free_port().map_err(io("finding a port"));
    let (port, admin, hub_port) = (free()?, free()?, free()?);
    let hub_addr = ([127, 0, 0, 1], hub_port).into();
    let routing = &prepared.scenario.routing;
    let hub_config = setup::write_hub_config(wd, &prepared.pop, hub_addr, routing)?;
    let extra = format!(
        "{}\n{}",
        setup::routing_config(wd, hub_addr, routing)?,
        prepared.scenario.bench.gateway_config_extra
    );
    let config = setup::write_gateway_config(
        wd,
        &prepared.pop,
        ([127, 0, 0, 1], port).into(),
        ([127, 0, 0, 1], admin).into(),
        &extra,
    )?;
    let cluster = servers(&wd.dir.join("cluster"), &config).await?;
    let ticks = procs::clock_ticks() as f64;
    let grace = Duration::from_secs_f64(prepared.scenario.bench.async_grace_s.max(0.0));
    let mut runs = Vec::new();
    for round in 1..=ROUNDS {
        for mode in ["embedded", "cluster"] {
            let config = cluster.config(mode, round)?;
            let _hub = start_hub(args, &hub_config, hub_port).await?;
            let gateway = start(
                &format!("gateway-{mode}-{round}"),
                &args.dccgw,
                dccgw_args("serve", &config),
                args,
                port,
                args.startup_s,
            )
            .await?;
            let signed = tokio::task::block_in_place(|| prepared.sign(&prepared.scenario.load))?;
            let before = Usage::now(&gateway, &cluster);
            let summary = prepared
                .run(&signed, gateway.addr, Some(&receiver), grace)
                .await;
            let after = Usage::now(&gateway, &cluster);
            runs.push(before.run(&after, mode, round, summary, ticks));
        }
    }
    let load = prepared.scenario.load.steps();
    let comparison = ClusterComparison {
        rate_rps: load.first().map_or(0.0, |s| s.rate),
        duration_s: load.iter().map(|s| s.duration_s).sum(),
        nats_sync_always: cluster.nats.syncs_always(),
        cpu_ratios: ratios(&runs),
        runs,
    };
    let report = Report {
        scenario: format!("{}-cluster", prepared.scenario.name),
        description: prepared.scenario.description.clone(),
        started_at: started_at.format(&Rfc3339).unwrap_or_default(),
        machine: Machine::this(args.server_cpus.clone(), args.generator_cpus.clone()),
        saturation: None,
        floor: None,
        runs: Vec::new(),
        ratios: Vec::new(),
        oha: None,
        sla: Vec::new(),
        pass: comparison.cpu_ratios.iter().all(|r| *r <= GOAL),
        notes: Vec::new(),
        overload: None,
        soak: None,
        cluster: Some(comparison),
    };
    super::parts::write_report(&report, &args.results, started_at)?;
    Ok(report)
}

/// Starts PostgreSQL and nats-server under `dir` (made anew), writes the cluster mode's
/// configuration beside `config` and loads the registers into PostgreSQL with `cluster init`.
async fn servers(dir: &Path, config: &Path) -> Result<Cluster, BenchError> {
    let _ = std::fs::remove_dir_all(dir);
    let failed =
        |what: &str, e: &dyn std::fmt::Display| BenchError::Cluster(format!("{what}: {e}"));
    let (postgres, nats) = tokio::task::block_in_place(|| {
        let pg = Postgres::start(dir, Durability::Durable)
            .map_err(|e| failed("starting PostgreSQL", &e))?;
        let nats = Nats::start(dir).map_err(|e| failed("starting nats-server", &e))?;
        Ok::<_, BenchError>((pg, nats))
    })?;
    let embedded =
        std::fs::read_to_string(config).map_err(io(format!("reading {}", config.display())))?;
    let cluster = format!(
        "{embedded}\n[cluster]\npostgres_url = \"{}\"\nnats_url = \"{}\"\ninstance = \"load-1\"\n",
        postgres.url(),
        nats.url()
    );
    let servers = Cluster {
        postgres,
        nats,
        dir: dir.to_owned(),
        embedded,
        cluster,
    };
    let path = servers.config("cluster", 0)?;
    let loaded = dccgw::config::Config::load(&path, Vec::new())
        .map_err(|e| failed("loading the cluster configuration", &e))?;
    dccgw::tools::cluster_init::run(&loaded)
        .await
        .map_err(|e| failed("dccgw cluster init", &e))?;
    Ok(servers)
}

impl Cluster {
    /// The configuration of `mode` for `round`, with a state directory of its own.
    fn config(&self, mode: &str, round: u32) -> Result<PathBuf, BenchError> {
        let text = if mode == "cluster" {
            &self.cluster
        } else {
            &self.embedded
        };
        let state = self.dir.join(format!("state-{mode}-{round}"));
        let mut out = String::new();
        let mut in_state = false;
        for line in text.lines() {
            if line.starts_with('[') {
                in_state = line.trim() == "[state]";
            }
            if in_state && line.starts_with("dir = ") {
                out.push_str(&format!("dir = \"{}\"\n", state.display()));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        let path = self.dir.join(format!("dccgw-{mode}-{round}.toml"));
        std::fs::write(&path, out).map_err(io(format!("writing {}", path.display())))?;
        Ok(path)
    }

    /// The postmaster's process ID, from its `postmaster.pid`.
    fn postmaster(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.postgres.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

/// CPU ticks of the gateway, PostgreSQL and nats-server at one moment.
struct Usage {
    gateway: u64,
    postgres: u64,
    nats: u64,
}

impl Usage {
    fn now(gateway: &Server, cluster: &Cluster) -> Self {
        Self {
            gateway: gateway.cpu_ticks(),
            postgres: cluster.postmaster().map_or(0, procs::tree_cpu_ticks),
            nats: procs::tree_cpu_ticks(cluster.nats.pid()),
        }
    }

    /// The run between `self` and `after`.
    fn run(
        &self,
        after: &Self,
        mode: &str,
        round: u32,
        summary: RunSummary,
        ticks: f64,
    ) -> ModeRun {
        let secs = |a: u64, b: u64| a.saturating_sub(b) as f64 / ticks;
        let cpu_s = secs(after.gateway, self.gateway);
        let in_cluster = mode == "cluster";
        ModeRun {
            mode: mode.to_owned(),
            round,
            gateway: Cpu {
                cpu_s,
                per_request_us: cpu_s * 1e6 / summary.accepted.max(1) as f64,
            },
            postgres_cpu_s: in_cluster.then(|| secs(after.postgres, self.postgres)),
            nats_cpu_s: in_cluster.then(|| secs(after.nats, self.nats)),
            summary,
        }
    }
}

/// Cluster ÷ embedded CPU per request in each round.
pub fn ratios(runs: &[ModeRun]) -> Vec<f64> {
    let per = |mode: &str, round: u32| {
        runs.iter()
            .find(|r| r.mode == mode && r.round == round)
            .map(|r| r.gateway.per_request_us)
    };
    (1..=ROUNDS)
        .filter_map(|round| {
            let (e, c) = (per("embedded", round)?, per("cluster", round)?);
            (e > 0.0).then_some(c / e)
        })
        .collect()
}

/// The comparison as a markdown section.
pub fn markdown(c: &ClusterComparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Cluster mode next to embedded mode\n\n{:.0} requests/s for {:.0} s per run, alternated; \
         one throwaway PostgreSQL (`fsync` on) and nats-server (sync every write: {}). CPU per \
         accepted request is the gateway's alone; PostgreSQL's and nats-server's are beside it.\n",
        c.rate_rps, c.duration_s, c.nats_sync_always
    );
    s.push_str(
        "| run | accepted | gateway CPU/request | PostgreSQL CPU | nats-server CPU | sync p50 | sync p99 | async p99 |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let ms = |us: u64| us as f64 / 1000.0;
    let secs = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2} s"));
    for r in &c.runs {
        let _ = writeln!(
            s,
            "| {} {} | {} | {:.0} µs | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            r.mode,
            r.round,
            r.summary.accepted,
            r.gateway.per_request_us,
            secs(r.postgres_cpu_s),
            secs(r.nats_cpu_s),
            ms(r.summary.sync.p50_us),
            ms(r.summary.sync.p99_us),
            ms(r.summary.async_.latency.p99_us),
        );
    }
    s.push_str("\nAnswers by code:\n\n");
    for r in &c.runs {
        let codes: Vec<String> = r
            .summary
            .codes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(s, "- {} {}: {}", r.mode, r.round, codes.join(", "));
    }
    let ratios: Vec<String> = c.cpu_ratios.iter().map(|r| format!("{r:.2}×")).collect();
    let _ = writeln!(
        s,
        "\nGateway CPU per request, cluster ÷ embedded, per round: **{}** (goal ≤ {GOAL}×).\n",
        ratios.join(", ")
    );
    s
}
