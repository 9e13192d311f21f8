//! The fault test: three `dccgw serve` instances in cluster mode (one throwaway PostgreSQL and
//! nats-server) behind HAProxy running `deploy/haproxy/dccgw.cfg`, all linked to one
//! `dccgw commshub` process (one comms network); a User sends a routed mix through HAProxy for ~45 s while the hub
//! simulator raises alerts, and meanwhile one instance is killed with SIGKILL and started
//! again, nats-server is stopped for 5 s, then PostgreSQL for 5 s. Afterwards, within a bounded
//! wait: every request answered `I99` got its Service Response at the User's endpoint, every
//! alert the hub raised (its raised-events log) reached every entitled User, no counter was
//! accepted twice (from every answer, replays sent through another connection included), every
//! instance's audit chain verifies (`dccgw audit verify`), and every answer was a documented
//! code, none hung.
//!
//! The load is this test's own signed-request client, not `dccgw-load`: the load crate depends
//! on `dccgw`, so a test of `dccgw` cannot link it, and a test of the load crate cannot name
//! the `dccgw` binary (Cargo gives a test the path of its own package's binaries only); and
//! the checks want each request's identity and answer, where `dccgw-load` keeps counts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dccgw::cluster::haproxy::Backend;
use dccgw::cluster::servers::{Nats, Postgres};
use dccgw::config::Config;
use dccgw::demo::{self, DEMO_ESME};

use super::alert_crash::{copy_of, owed_by, start_hub_with, AlertCopy, Killed};
use super::round_trip::{pki_and_receiver, routed_dir_with, SUPPLIER};
use super::support;

const BIN: &str = env!("CARGO_BIN_EXE_dccgw");
/// How long the User sends; the faults fall within it.
const RUN: Duration = Duration::from_secs(46);
/// The client gives up on an answer after this: far above every bound the gateway keeps
/// (5 s for PostgreSQL, 5 s for JetStream), so a request that reaches it hung.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// The User's pace: at most one request per this.
const PACE: Duration = Duration::from_millis(40);
const NAMES: [&str; 3] = ["a", "b", "c"];
/// The response codes the gateway documents (the table of `docs/response-codes.md`).
const RESPONSE_CODES: &str = include_str!("../../docs/response-codes.md");

/// The alerting hub's simulator: reads answered in 50–500 ms, each followed by a supplier alert
/// and, half the time, a network-operator one; spontaneous alerts at 20 a second; power outages
/// behind one hub at 10 s and 30 s.
const ALERTING_HUB: &str = r#"
[hub]
seed = 17
[hub.default]
latency = { kind = "uniform", min_ms = 50, max_ms = 500 }
alerts_after = [{ code = 0x8F1C, delay_ms = 50 }, { code = 0x8002, delay_ms = 150, probability = 0.5 }]
[hub.alerts]
rate_per_sec = 20.0
codes = [{ code = 0x8F35, weight = 2 }, { code = 0x8F1C, weight = 1 }, { code = 0x8002, weight = 1 }]
[[hub.storms]]
after_secs = 10
hubs = 1
spread_ms = 300
[[hub.storms]]
after_secs = 30
hubs = 1
spread_ms = 300
"#;

/// The simulated network every instance's link goes to: one `dccgw commshub` process for all
/// three (it hands each event to one instance's stream at a time and offers the events a killed
/// instance held to the others), recording what it raised in one log.
struct Hub {
    _process: Killed,
    port: u16,
    raised_log: PathBuf,
}

async fn hub(dir: &Path) -> Hub {
    let raised_log = dir.join("raised.ndjson");
    let (process, port) = start_hub_with(dir, "commshub", &raised_log, ALERTING_HUB).await;
    Hub {
        _process: process,
        port,
        raised_log,
    }
}

/// One gateway instance: its name, ports and hub, and the process while it runs.
struct Instance {
    name: &'static str,
    port: u16,
    admin: u16,
    hub_port: u16,
    process: Option<Killed>,
}

impl Instance {
    /// `dccgw serve` on its ports, appending its log to `instance-<name>.log` in `dir`.
    fn start(&mut self, config: &Path, dir: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("instance-{}.log", self.name)))
            .unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .envs(instance_env(
                self.name,
                self.port,
                self.admin,
                self.hub_port,
            ))
            .env("DCCGW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.process = Some(Killed(child));
    }

    fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.0.kill().unwrap(); // SIGKILL
            p.0.wait().unwrap();
        }
    }

    /// SIGTERM, and the wait for it to drain and exit.
    fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let pid = p.0.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let _ = p.0.wait();
        }
    }

    fn backend(&self) -> Backend {
        Backend {
            addr: SocketAddr::from(([127, 0, 0, 1], self.port)),
            admin_port: self.admin,
        }
    }
}

/// The configuration overrides that make instance `name`: its ports, cluster name, state
/// directory, hub, and a short delivery timeout (JetStream's redelivery timer follows it).
fn instance_env(name: &str, port: u16, admin: u16, hub: u16) -> Vec<(String, String)> {
    [
        ("DCCGW_LISTEN__ADDR", format!("127.0.0.1:{port}")),
        ("DCCGW_LISTEN__ADMIN_ADDR", format!("127.0.0.1:{admin}")),
        ("DCCGW_CLUSTER__INSTANCE", name.to_owned()),
        ("DCCGW_STATE__DIR", format!("state-{name}")),
        ("DCCGW_ROUTING__HUB", "remote".to_owned()),
        ("DCCGW_ROUTING__HUB_ADDR", format!("127.0.0.1:{hub}")),
        (
            "DCCGW_DELIVERY__TRANSPORT__REQUEST_TIMEOUT_MS",
            "2000".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// What the User saw.
#[derive(Default, Debug)]
struct Tally {
    /// RequestIDs of routed requests answered `I99`: each is owed its Service Response.
    owed: BTreeSet<String>,
    /// Acceptances (`I99`, `I0`) per counter, over every send of it.
    accepted: BTreeMap<u64, u32>,
    codes: BTreeMap<String, u32>,
    /// Answers that carried no documented code.
    undocumented: Vec<String>,
    /// Sends that got no HTTP answer (the balancer or an instance closed the connection), and
    /// when.
    transport: BTreeMap<String, u32>,
    transport_at: Vec<Instant>,
    hung: u32,
    /// Replays of accepted requests sent through another connection.
    probes: u32,
    /// The highest counter sent.
    last_sent: u64,
}

/// One request as sent: its body, RequestID, counter, and whether it goes to a device.
struct Request {
    body: Vec<u8>,
    id: String,
    counter: u64,
    routed: bool,
}

/// The User's `n`th request: four routed reads (Command Variant 1) to one 8.2 Read Inventory
/// (answered at once from the cache).
fn request(certs: &Path, n: u64, counter: u64) -> Request {
    let routed = n % 5 != 4;
    let xml = if routed {
        demo::example_request_xml(SUPPLIER, DEMO_ESME, counter)
    } else {
        inventory_xml(counter)
    };
    let user = certs.join("users/supplier");
    let key = user.join("xml-sign.key.pem");
    let body = dccgw::tools::sign(xml.as_bytes(), &key, &user.join("xml-sign.pem"), None).unwrap();
    let id = support::element(&xml, "RequestID").unwrap().to_owned();
    Request {
        body: body.into_bytes(),
        id,
        counter,
        routed,
    }
}

fn inventory_xml(counter: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{SUPPLIER}:90-B3-D5-1F-30-00-00-02:{counter}</sr:RequestID><sr:CommandVariant>8</sr:CommandVariant><sr:ServiceReference>8.2</sr:ServiceReference><sr:ServiceReferenceVariant>8.2</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:ReadInventory><sr:DeviceID>00-DB-12-34-56-78-90-A0</sr:DeviceID></sr:ReadInventory></sr:Body></sr:Request>"#
    )
}

/// What one send came to.
enum Outcome {
    Code(String),
    Transport(String),
    Hung,
}

/// Sends `r` through `client` to the balancer at `front`, within [`CLIENT_TIMEOUT`].
async fn send(client: &reqwest::Client, front: SocketAddr, r: &Request) -> Outcome {
    let path = if r.routed { "serviceS" } else { "serviceD" };
    let url = format!("https://localhost:{}/api/v1/{path}", front.port());
    let exchange = async {
        let response = client
            .post(&url)
            .header("content-type", "application/xml")
            .body(r.body.clone())
            .send()
            .await?;
        response.text().await
    };
    match tokio::time::timeout(CLIENT_TIMEOUT, exchange).await {
        Err(_) => Outcome::Hung,
        Ok(Err(e)) if e.is_timeout() => Outcome::Hung,
        Ok(Err(e)) => Outcome::Transport(transport_kind(&e)),
        Ok(Ok(text)) => match support::element(&text, "ResponseCode") {
            Some(code) => Outcome::Code(code.to_owned()),
            None => Outcome::Code(format!("none: {}", &text[..text.len().min(200)])),
        },
    }
}

fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connect".into()
    } else if e.is_request() || e.is_body() {
        "closed".into()
    } else {
        format!("other: {e}")
    }
}

impl Tally {
    /// Records `outcome` of a send of `r`; whether it was accepted.
    fn record(&mut self, r: &Request, outcome: &Outcome) -> bool {
        self.last_sent = self.last_sent.max(r.counter);
        match outcome {
            Outcome::Hung => self.hung += 1,
            Outcome::Transport(kind) => {
                *self.transport.entry(kind.clone()).or_default() += 1;
                self.transport_at.push(Instant::now());
            }
            Outcome::Code(code) => {
                *self.codes.entry(code.clone()).or_default() += 1;
                if !documented(code) {
                    self.undocumented.push(format!("{}: {code}", r.id));
                }
                if code == "I99" || code == "I0" {
                    *self.accepted.entry(r.counter).or_default() += 1;
                    if r.routed && code == "I99" {
                        self.owed.insert(r.id.clone());
                    }
                    return true;
                }
            }
        }
        false
    }
}

/// Whether `code` is in the table of `docs/response-codes.md`.
fn documented(code: &str) -> bool {
    !code.is_empty() && RESPONSE_CODES.contains(&format!("\n| {code} |"))
}

/// The User, until `until`: each request sent once through its own connection; one that got
/// no answer sent again once (as a User who cannot know whether it was taken); every tenth
/// accepted one replayed through a second connection (which the balancer may give to another
/// instance), to be refused.
async fn user(front: SocketAddr, certs: PathBuf, until: Instant, tally: Arc<Mutex<Tally>>) {
    let pem = std::fs::read(certs.join("users/supplier/client.pem")).unwrap();
    let client = || support::client_with(&certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let (lane, prober) = (client(), client());
    let base = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    let mut n = 0;
    while Instant::now() < until {
        let next = tokio::time::Instant::now() + PACE;
        let r = request(&certs, n, base + n);
        n += 1;
        let mut outcome = send(&lane, front, &r).await;
        if let Outcome::Transport(_) = outcome {
            tally.lock().unwrap().record(&r, &outcome);
            tokio::time::sleep(Duration::from_millis(200)).await;
            outcome = send(&lane, front, &r).await;
        }
        let accepted = tally.lock().unwrap().record(&r, &outcome);
        if accepted && n % 10 == 0 {
            let replay = send(&prober, front, &r).await;
            let mut t = tally.lock().unwrap();
            t.probes += 1;
            t.record(&r, &replay);
        }
        tokio::time::sleep_until(next).await;
    }
}

/// What reached the User's endpoint: alert copies (how often each) and the RequestIDs of
/// Service Responses.
#[derive(Default)]
struct Arrived {
    copies: BTreeMap<AlertCopy, u32>,
    responses: BTreeSet<String>,
    unmatched: Vec<String>,
}

fn collect(
    mut rx: tokio::sync::mpsc::Receiver<dccgw::receiver::Received>,
) -> (Arc<Mutex<Arrived>>, tokio::task::JoinHandle<()>) {
    let arrived: Arc<Mutex<Arrived>> = Arc::default();
    let task = tokio::spawn({
        let arrived = arrived.clone();
        async move {
            while let Some(m) = rx.recv().await {
                let mut a = arrived.lock().unwrap();
                match copy_of(&m) {
                    Some(Ok(copy)) => *a.copies.entry(copy).or_default() += 1,
                    Some(Err(e)) => a.unmatched.push(e),
                    None => {}
                }
                if m.description.alert_code.is_none() {
                    a.responses.extend(m.description.request_id);
                }
            }
        }
    });
    (arrived, task)
}

/// The faults, spaced through the run: instance `a` killed at 8 s and started again 3 s later,
/// nats-server away from 20 s to 25 s, PostgreSQL from 33 s to 38 s. Returns when `a` was
/// killed and when PostgreSQL was stopped.
async fn faults(
    instance: &mut Instance,
    config: &Path,
    dir: &Path,
    nats: &mut Nats,
    pg: &Postgres,
) -> [Instant; 2] {
    tokio::time::sleep(Duration::from_secs(8)).await;
    let killed = Instant::now();
    instance.kill();
    eprintln!("fault: instance {} killed", instance.name);
    tokio::time::sleep(Duration::from_secs(3)).await;
    instance.start(config, dir);
    tokio::time::sleep(Duration::from_secs(9)).await;
    tokio::task::block_in_place(|| nats.stop());
    eprintln!("fault: nats-server stopped");
    tokio::time::sleep(Duration::from_secs(5)).await;
    tokio::task::block_in_place(|| nats.restart()).unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let pg_stopped = Instant::now();
    tokio::task::block_in_place(|| pg.stop()).unwrap();
    eprintln!("fault: PostgreSQL stopped");
    tokio::time::sleep(Duration::from_secs(5)).await;
    tokio::task::block_in_place(|| pg.restart()).unwrap();
    eprintln!("fault: PostgreSQL back");
    [killed, pg_stopped]
}

/// The routed configuration in cluster mode (alerts never throttled, so each raised alert is
/// its own message), the registers loaded into PostgreSQL by `cluster init`.
async fn cluster_config(
    pki: &Path,
    receiver: u16,
    pg: &Postgres,
    nats: &Nats,
) -> (tempfile::TempDir, PathBuf) {
    let tail = format!(
        "[alerts.throttle]\nburst = 1000000\n\
         [cluster]\npostgres_url = \"{}\"\nnats_url = \"{}\"\n",
        pg.url(),
        nats.url()
    );
    let (dir, path) = routed_dir_with(pki, receiver, "", "", &tail);
    let config = Config::load(&path, Vec::new()).unwrap();
    dccgw::tools::cluster_init::run(&config).await.unwrap();
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_behind_haproxy_lose_nothing_through_a_kill_and_backend_outages() {
    let servers = tempfile::tempdir().unwrap();
    let Some(pg) = dccgw::testing::servers::postgres(servers.path()) else {
        return;
    };
    let Some(mut nats) = dccgw::testing::servers::nats(servers.path()) else {
        return;
    };
    let (pki, receiver, rx) = pki_and_receiver().await;
    let (dir, config) = cluster_config(pki.path(), receiver.local_addr().port(), &pg, &nats).await;
    let dir = dir.path();
    let hub = hub(dir).await;
    let mut instances: Vec<Instance> = NAMES
        .iter()
        .map(|name| Instance {
            name,
            port: support::free_port(),
            admin: support::free_port(),
            hub_port: hub.port,
            process: None,
        })
        .collect();
    for i in &mut instances {
        i.start(&config, dir);
    }
    for i in &instances {
        super::crash::wait_ready(i.admin).await;
    }
    let backends: Vec<Backend> = instances.iter().map(Instance::backend).collect();
    let front = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
    let Some(haproxy) = dccgw::testing::servers::haproxy(dir, front, &backends) else {
        return;
    };
    let (arrived, collector) = collect(rx);
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let until = Instant::now() + RUN;
    let certs = dir.join("certs");
    let load = tokio::spawn(user(haproxy.addr(), certs, until, tally.clone()));
    let cuts = faults(&mut instances[0], &config, dir, &mut nats, &pg).await;
    load.await.unwrap();
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    eprintln!(
        "the User's answers: {:?}; no answer (sent again once): {:?}; {} I99 owed a Service \
         Response; {} replays through another connection",
        tally.codes,
        tally.transport,
        tally.owed.len(),
        tally.probes
    );
    check_answers(&tally, cuts);
    mark_in_postgres(&pg, &tally).await;
    everything_arrives(&tally, &hub, &arrived).await;
    for i in &mut instances {
        i.stop();
        audit_verifies(&config, i);
    }
    drop(haproxy);
    receiver.stop().await;
    collector.abort();
}

/// No hang, nothing undocumented, no counter accepted twice, the outages answered by the
/// gateways (`E100`), and enough traffic to mean something. A send may go unanswered only when
/// its session was cut, within 6 s of a cut: the instance it was on killed, or every instance
/// marked down by HAProxy (`on-marked-down shutdown-sessions`) once PostgreSQL is away. New
/// sessions then still get an answer: HAProxy's fallbacks take them while no instance is ready.
fn check_answers(tally: &Tally, cuts: [Instant; 2]) {
    let near_a_cut = |t: &Instant| {
        cuts.iter()
            .any(|c| (*c..*c + Duration::from_secs(6)).contains(t))
    };
    let outside: Vec<_> = tally
        .transport_at
        .iter()
        .filter(|t| !near_a_cut(t))
        .map(|t| t.saturating_duration_since(cuts[0]))
        .collect();
    assert!(
        outside.is_empty(),
        "sends got no answer away from a cut (times after the kill: {outside:?}): {:?}",
        tally.transport
    );
    assert!(
        tally.codes.get("E100").is_some_and(|n| *n > 0),
        "{:?}",
        tally.codes
    );
    assert_eq!(tally.hung, 0, "requests hung: {:?}", tally.codes);
    assert!(tally.undocumented.is_empty(), "{:?}", tally.undocumented);
    let twice: Vec<_> = tally.accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "counters accepted more than once: {twice:?}"
    );
    assert!(tally.owed.len() >= 100, "too few I99: {:?}", tally.codes);
    assert!(tally.probes >= 10, "too few replays: {}", tally.probes);
}

/// PostgreSQL's anti-replay mark for the User is at or above every counter an instance
/// accepted (none was accepted without being recorded), and one the User sent.
async fn mark_in_postgres(pg: &Postgres, tally: &Tally) {
    let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT counter FROM replay_marks WHERE originator = $1",
            &[&SUPPLIER],
        )
        .await
        .unwrap();
    let mark = u64::try_from(row.get::<_, i64>(0)).unwrap();
    let accepted = tally.accepted.keys().max().copied().unwrap_or_default();
    assert!(
        accepted <= mark && mark <= tally.last_sent,
        "PostgreSQL's mark {mark}; highest accepted {accepted}; highest sent {}",
        tally.last_sent
    );
    drop(client);
    let _ = connection.await;
}

/// Waits (bounded) until every `I99` has its Service Response and every raised alert has
/// reached each User entitled to it.
async fn everything_arrives(tally: &Tally, hub: &Hub, arrived: &Mutex<Arrived>) {
    let (owed_copies, alerts) = owed_by(&hub.raised_log);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (missing, unanswered) = {
            let a = arrived.lock().unwrap();
            let missing: Vec<_> = owed_copies
                .iter()
                .filter(|c| !a.copies.contains_key(*c))
                .cloned()
                .collect();
            let unanswered: Vec<_> = tally.owed.difference(&a.responses).cloned().collect();
            (missing, unanswered)
        };
        if missing.is_empty() && unanswered.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} raised alert copies never arrived (first: {:?}); {} of {} I99 got no \
             Service Response (first: {:?})",
            missing.len(),
            owed_copies.len(),
            missing.first(),
            unanswered.len(),
            tally.owed.len(),
            unanswered.first(),
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let a = arrived.lock().unwrap();
    assert!(a.unmatched.is_empty(), "{:?}", a.unmatched);
    eprintln!(
        "{alerts} alerts raised ({} copies owed), all delivered; {} I99 answered",
        owed_copies.len(),
        tally.owed.len()
    );
    assert!(alerts >= 100, "too few alerts to prove anything: {alerts}");
}

/// `dccgw audit verify` on the instance's audit directory exits 0.
fn audit_verifies(config: &Path, instance: &Instance) {
    let env = instance_env(
        instance.name,
        instance.port,
        instance.admin,
        instance.hub_port,
    );
    let loaded = Config::load(config, env).unwrap();
    let audit = loaded.audit.dir(&loaded.state);
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "instance {}: {}{}",
        instance.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
