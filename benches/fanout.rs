//! Sustained alert fan-out, end to end with durability on: the simulated comms-hub network (the
//! `dccgw commshub` server, `serve_on`, on loopback) raises device alerts over a synthetic fleet;
//! the gateway's side takes them as it does in production — `RemoteHub` (NDJSON stream, receipts
//! acknowledged back to the hub), the `Dispatcher`, the real `replies::run` task (routing by code
//! family against the registry snapshot, throttling, ECDSA P-256 XML signature), the durable
//! outbox (group commit, fsync) and per-User workers delivering over HTTPS with the DCC's client
//! certificate to a real mTLS Receive Response Service. All in this one process.
//!
//! Three runs, one table: a fixed open-loop rate (the simulator's Poisson spontaneous alerts),
//! a max-rate run (offered as fast as the hub may: it holds at most `DCCGW_BENCH_RETAIN`
//! unacknowledged events, so the gateway's acknowledgements pace it), and a power-outage storm
//! (every device behind N hubs raises 8F35 within a second or two; the default throttle, with
//! a short window, turns it into bursts and summaries).
//!
//! Measured: alerts/s in (reaching the gateway), deliveries/s out (distinct messages kept by the
//! receiver; each alert fans to 1–2 Users by its code family and the device's meter points),
//! delivery latency (alert reaches the gateway → the User's service has kept its message),
//! receipt latency (alert reaches the gateway → the hub confirms its acknowledgement, which the
//! gateway gives only once every copy is in the outbox on disk).
//!
//! `cargo bench --bench fanout`. Knobs: `DCCGW_BENCH_SECS` (each steady run, default 10),
//! `DCCGW_BENCH_RATE` (open-loop alerts/s, default 200), `DCCGW_BENCH_DEVICES` (fleet, default
//! 50 000), `DCCGW_BENCH_RETAIN` (max-rate run's hub bound, default 5 000),
//! `DCCGW_BENCH_STORM_HUBS` (default 1 000, five devices each), `DCCGW_BENCH_WINDOW` (storm
//! throttle window, seconds, default 5), `DCCGW_BENCH_RUNS` (which: `rate,max,storm`).

mod common;
#[path = "fanout/tally.rs"]
mod tally;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dccgw::alerts::{route, AlertsConfig, DeviceAlert, Fanout, RoutingTable, ThrottleConfig};
use dccgw::commshub::{serve_on, HubConfig, Simulator, SpontaneousAlerts, Storm, WeightedCode};
use dccgw::dispatch::{
    DispatchConfig, Dispatcher, HubEvent, HubNetwork, Inbound, Opened, RemoteHub,
};
use dccgw::domain::{DeviceType, SmkiRole};
use dccgw::metrics::Metrics;
use dccgw::outbox::OutboxConfig;
use dccgw::registry::Snapshot;
use dccgw::replies::{self, Context, Sources};
use dccgw::signer::Signer;
use dccgw::state::generate::{generate, Synthetic};
use dccgw::state::StateLog;
use dccgw::store::{ChangeLog, UserChangeLog};
use dccgw::xmldsig::c14n::C14nLimits;
use tokio::sync::{mpsc, watch};

use common::{env, latency_line, Rig};
use tally::{Counts, Tally};

/// How long the drain after a run may take before the bench reports what is missing.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// The parts of the gateway the replies task uses.
struct Parts {
    registry: Arc<Snapshot>,
    signer: Signer,
    c14n: C14nLimits,
    metrics: Metrics,
    changes: StateLog,
}

impl Context for Parts {
    fn registry(&self) -> Arc<Snapshot> {
        Arc::clone(&self.registry)
    }
    fn signer(&self) -> &Signer {
        &self.signer
    }
    fn c14n_limits(&self) -> &C14nLimits {
        &self.c14n
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    fn change_log(&self) -> &StateLog {
        &self.changes
    }
}

/// One run's set-up.
struct Scenario {
    name: &'static str,
    /// Spontaneous alerts offered per second (Poisson), 0 for none.
    rate: f64,
    storm: Option<Storm>,
    /// How long alerts are offered; a storm run then waits until every receipt is acknowledged.
    secs: u64,
    /// Unacknowledged events the hub keeps before its devices wait.
    retain: usize,
    throttle: ThrottleConfig,
}

/// One run's results.
struct Report {
    name: &'static str,
    offered: String,
    window: Duration,
    /// Within the offering window: alerts that reached the gateway, alerts whose receipts the
    /// hub confirmed (every copy durably in the outbox), messages the Users kept.
    alerts_in_window: u64,
    acked_in_window: u64,
    messages_in_window: u64,
    pending_at_end: usize,
    drained_after: Duration,
    counts: Counts,
}

fn main() {
    let secs = env("DCCGW_BENCH_SECS", 10);
    let rate = env("DCCGW_BENCH_RATE", 200) as f64;
    let devices = env("DCCGW_BENCH_DEVICES", 50_000);
    let retain = env("DCCGW_BENCH_RETAIN", 5_000) as usize;
    let storm_hubs = env("DCCGW_BENCH_STORM_HUBS", 1_000) as usize;
    let window = env("DCCGW_BENCH_WINDOW", 5) as u32;
    let runs = std::env::var("DCCGW_BENCH_RUNS").unwrap_or_else(|_| "rate,max,storm".into());

    let fleet_dir = tempfile::tempdir().expect("a temp dir");
    let spec = Synthetic {
        devices,
        registrations: devices,
        seed: 5,
    };
    let files = generate(fleet_dir.path(), &spec).expect("a synthetic fleet");
    let fleet =
        Arc::new(dccgw::state::load::registry(&files.devices, &files.registrations).expect("load"));
    println!(
        "fanout: {} devices ({} premises, 92 suppliers and network operators), {} registrations",
        fleet.device_count(),
        spec.premises(),
        fleet.registration_count()
    );

    // Steady runs measure fan-out, not the throttle: a burst no (User, code) reaches.
    let open = ThrottleConfig {
        burst: u32::MAX,
        ..ThrottleConfig::default()
    };
    let mut reports = Vec::new();
    for run in runs.split(',') {
        let scenario = match run.trim() {
            "rate" => Scenario {
                name: "open-loop rate",
                rate,
                storm: None,
                secs,
                retain: 1_000_000,
                throttle: open,
            },
            "max" => Scenario {
                name: "max rate",
                rate: 1_000_000.0,
                storm: None,
                secs,
                retain,
                throttle: open,
            },
            "storm" => Scenario {
                name: "outage storm",
                rate: 0.0,
                storm: Some(Storm {
                    after_secs: 1,
                    hubs: storm_hubs,
                    code: 0x8F35,
                    spread_ms: 1_000,
                }),
                secs: 3,
                retain: 1_000_000,
                throttle: ThrottleConfig {
                    window_secs: window,
                    ..ThrottleConfig::default()
                },
            },
            other => {
                eprintln!("fanout: unknown run {other:?} (rate, max, storm)");
                continue;
            }
        };
        let report = common::runtime().block_on(run_one(&scenario, &fleet));
        print_report(&report);
        reports.push(report);
    }
    print_table(&reports);
}

/// The codes of spontaneous alerts: the supplier family (8F1C, critical, to the supplier) and
/// the network operator's (8002 voltage, 8F35 outage restored): 1 User for a meter, 2 for a
/// comms hub (its premises' electricity and gas meter points).
fn spontaneous(rate: f64) -> SpontaneousAlerts {
    SpontaneousAlerts {
        rate_per_sec: rate,
        device_types: vec![DeviceType::Esme, DeviceType::Gsme, DeviceType::Chf],
        codes: vec![
            WeightedCode {
                code: 0x8F1C,
                weight: 2,
            },
            WeightedCode {
                code: 0x8002,
                weight: 1,
            },
            WeightedCode {
                code: 0x8F35,
                weight: 1,
            },
        ],
    }
}

async fn run_one(s: &Scenario, fleet: &Arc<Snapshot>) -> Report {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let rig = Rig::start(tmp.path(), &OutboxConfig::default()).await;
    let Rig {
        pki,
        receiver,
        received,
        outbox,
    } = rig;
    let tally = Arc::new(Tally::default());
    let consumer = tokio::spawn(consume(received, tally.clone()));

    // The hub network, as `dccgw commshub` serves it.
    let verifier =
        dccgw::signer::command_verifier(&[&pki.dcc_acb.cert]).expect("the broker certificate");
    let hub_config = HubConfig {
        seed: 11,
        alerts: spontaneous(s.rate),
        storms: s.storm.into_iter().collect(),
        ..HubConfig::default()
    };
    let sim = Simulator::new(hub_config, (**fleet).clone(), verifier).expect("a simulator");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr: SocketAddr = listener.local_addr().expect("an address");
    let (stop_hub, stopped) = watch::channel(false);
    tokio::spawn(serve_on(listener, sim, s.retain, None, stopped));

    // The gateway's side: hub client → (the bench's stopwatch) → dispatcher → replies → outbox.
    let dispatch = DispatchConfig::default();
    let (hub_tx, hub_rx) = mpsc::channel(dispatch.queue);
    let (front_tx, front_rx) = mpsc::channel(dispatch.queue);
    let hub = Arc::new(RemoteHub::start(addr, hub_tx));
    tokio::spawn(front_edge(hub_rx, front_tx, fleet.clone(), tally.clone()));
    let Opened {
        dispatcher,
        outcomes,
        events,
        ..
    } = Dispatcher::open(
        &tmp.path().join("pending"),
        dispatch,
        hub.clone() as Arc<dyn HubNetwork>,
        front_rx,
    )
    .await
    .expect("a dispatcher");
    let parts = Parts {
        registry: fleet.clone(),
        signer: Signer::load(
            &pki.dcc_xml_sign.key,
            &pki.dcc_xml_sign.cert,
            Some(SmkiRole::DccXmlSigning),
        )
        .expect("the DCC signing key"),
        c14n: C14nLimits::default(),
        metrics: Metrics::new(),
        changes: StateLog::Embedded {
            changes: ChangeLog::open(&tmp.path().join("changes.journal"))
                .expect("a change log")
                .0,
            user_changes: UserChangeLog::open_and_replay(
                &tmp.path().join("user-changes.journal"),
                Default::default(),
                dccgw::certstore::CertStore::new(Arc::new(dccgw::smki::Trust::new(Vec::new()))),
                Default::default(),
            )
            .expect("a User change log")
            .log,
        },
    };
    let fanout = Fanout::new(
        &AlertsConfig {
            throttle: s.throttle,
            routes: Vec::new(),
        },
        1,
    )
    .expect("a fan-out");
    let (_raised_tx, raised) = mpsc::channel(1);
    let replies = tokio::spawn(replies::run(
        Arc::new(parts),
        Arc::new(outbox.clone()),
        dispatcher,
        fanout,
        Sources {
            outcomes,
            events,
            raised,
        },
    ));

    // Offer, sampling the hub's confirmed acknowledgements.
    let start = Instant::now();
    let until = start + Duration::from_secs(s.secs);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tally.acked(hub.acknowledged(), Instant::now());
    }
    let window = start.elapsed();
    let (alerts_in_window, _, _, messages_in_window, acked_in_window) = tally.progress();
    let pending_at_end = outbox.pending();
    // A storm is finite: keep the hub until every receipt is acknowledged (throttled ones wait
    // for their summary). Steady runs stop offering now.
    let drain_until = Instant::now() + DRAIN_LIMIT;
    if s.storm.is_some() {
        let mut last = (0, Instant::now());
        loop {
            let now = Instant::now();
            tally.acked(hub.acknowledged(), now);
            let (alerts, _, _, _, acked) = tally.progress();
            if alerts != last.0 {
                last = (alerts, now);
            }
            let quiet = now.duration_since(last.1) >= Duration::from_secs(1);
            if (alerts > 0 && acked >= alerts && quiet) || now > drain_until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let _ = stop_hub.send(true);
    loop {
        let (_, owed, copies, _, _) = tally.progress();
        if (copies >= owed && outbox.pending() == 0) || Instant::now() > drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained_after = start.elapsed();
    replies.abort();
    drop(hub);
    common::stop(&outbox, receiver).await;
    let _ = consumer.await;
    Report {
        name: s.name,
        offered: match (s.storm, s.rate) {
            (Some(st), _) => format!("{} hubs", st.hubs),
            (None, r) if r >= 1_000_000.0 => format!("max (hub holds {})", s.retain),
            (None, r) => format!("{r:.0}/s Poisson"),
        },
        window,
        alerts_in_window,
        acked_in_window,
        messages_in_window,
        pending_at_end,
        drained_after,
        counts: tally.take(),
    }
}

/// The gateway's front edge: notes each alert as it arrives from the hub and the Users its
/// code family owes a copy, then passes it on unchanged (receipt and all).
async fn front_edge(
    mut from_hub: mpsc::Receiver<Inbound>,
    to_gateway: mpsc::Sender<Inbound>,
    fleet: Arc<Snapshot>,
    tally: Arc<Tally>,
) {
    let table = RoutingTable::builtin();
    while let Some(inbound) = from_hub.recv().await {
        let now = Instant::now();
        if let HubEvent::Alert {
            device,
            code,
            payload,
            at,
        } = &inbound.event
        {
            let alert = DeviceAlert {
                id: 0,
                device: *device,
                code: *code,
                payload: Vec::new(),
                at: *at,
            };
            let copies = route(&table, &alert, &fleet).map_or(0, |r| r.len());
            let lag = time::OffsetDateTime::now_utc().unix_timestamp() - at;
            tally.arrived(payload.clone(), copies, lag, now);
        }
        if to_gateway.send(inbound).await.is_err() {
            return;
        }
    }
}

/// Each message the User's service kept.
async fn consume(mut received: mpsc::Receiver<dccgw::receiver::Received>, tally: Arc<Tally>) {
    while let Some(r) = received.recv().await {
        tally.delivered(&r.body, Instant::now());
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn print_report(r: &Report) {
    let c = &r.counts;
    println!("\n{} — offered {}", r.name, r.offered);
    println!(
        "  in:  {} alerts reached the gateway ({:.0}/s over {:.1} s; {:.0}/s durably taken, receipts confirmed), owing {} copies ({:.2} Users an alert); upstream lag <= {} s",
        c.alerts,
        per_sec(r.alerts_in_window, r.window),
        r.window.as_secs_f64(),
        per_sec(r.acked_in_window, r.window),
        c.owed,
        c.owed as f64 / c.alerts.max(1) as f64,
        c.upstream_lag_secs,
    );
    println!(
        "  out: {} messages ({:.0}/s in the window; {} summaries standing for {} copies), {} copies in all, {} duplicates, {} unmatched; outbox pending at window end {}, drained at {:.1} s",
        c.messages,
        per_sec(r.messages_in_window, r.window),
        c.summaries,
        c.copies.saturating_sub(c.messages - c.summaries),
        c.copies,
        c.duplicates,
        c.unmatched,
        r.pending_at_end,
        r.drained_after.as_secs_f64(),
    );
    let mut lat = c.latency.clone();
    println!(
        "  delivery latency (gateway → User kept it): {}",
        latency_line(&mut lat)
    );
    if !c.summary_latency.is_empty() {
        let mut lat = c.summary_latency.clone();
        println!(
            "  summary latency (held alert → summary kept): {}",
            latency_line(&mut lat)
        );
    }
    let mut acks = c.ack_latency.clone();
    println!(
        "  receipts: {} of {} confirmed by the hub; gateway → hub confirmed: {}",
        c.acked,
        c.alerts,
        latency_line(&mut acks)
    );
}

fn print_table(reports: &[Report]) {
    println!("\n| run | offered | alerts arrived/s | alerts acked/s | deliveries out/s | alerts in | copies owed → delivered | msgs out | latency p50 / p99 / max ms | receipts p50 / p99 ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in reports {
        let c = &r.counts;
        let mut lat = c.latency.clone();
        lat.sort_unstable();
        let mut acks = c.ack_latency.clone();
        acks.sort_unstable();
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {} → {} | {} | {:.1} / {:.1} / {:.1} | {:.0} / {:.0} |",
            r.name,
            r.offered,
            per_sec(r.alerts_in_window, r.window),
            per_sec(r.acked_in_window, r.window),
            per_sec(r.messages_in_window, r.window),
            c.alerts,
            c.owed,
            c.copies,
            c.messages,
            common::percentile(&lat, 0.5),
            common::percentile(&lat, 0.99),
            common::percentile(&lat, 1.0),
            common::percentile(&acks, 0.5),
            common::percentile(&acks, 0.99),
        );
    }
}
