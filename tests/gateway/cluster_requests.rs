//! The request log in PostgreSQL, through `dccgw serve` processes in cluster mode on one
//! throwaway PostgreSQL (each with its own state directory and ports): the same signed request
//! sent to three instances at once is accepted once; the pending commands of an instance killed
//! with SIGKILL are claimed by another and their Service Responses arrive; PostgreSQL away is
//! answered with `E100` (and `/readyz` not ready), never a hang, and then the gateways recover.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dccgw::config::Config;
use dccgw::demo::{self, DEMO_ESME};
use dccgw::receiver::{Received, Receiver};
use tokio::sync::mpsc;

use super::crash::wait_ready;
use super::round_trip::{pki_and_receiver, routed_dir_with, SUPPLIER};
use super::support;

const BIN: &str = env!("CARGO_BIN_EXE_dccgw");
/// The admin API's bearer token in the cluster's configuration: the one the anomaly tests'
/// admin helpers send.
pub(super) const ADMIN_TOKEN: &str = super::anomaly::TOKEN;

/// A gateway process: its ports, and the child killed when dropped.
pub(super) struct Instance {
    pub(super) port: u16,
    pub(super) admin: u16,
    pub(super) child: Child,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dccgw serve` as instance `name` (state in `state-<name>`), once ready.
pub(super) async fn instance(config: &Path, name: &str) -> Instance {
    instance_with(config, name, &[]).await
}

/// As [`instance`], with more environment overrides of the configuration.
pub(super) async fn instance_with(config: &Path, name: &str, env: &[(&str, String)]) -> Instance {
    let (port, admin) = (support::free_port(), support::free_port());
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("DCCGW_LISTEN__ADDR", format!("127.0.0.1:{port}"))
        .env("DCCGW_LISTEN__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("DCCGW_CLUSTER__INSTANCE", name)
        .env("DCCGW_STATE__DIR", format!("state-{name}"))
        .env("DCCGW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(admin).await;
    Instance { port, admin, child }
}

/// A cluster of one throwaway PostgreSQL and nats-server (the outbox is JetStream's in cluster
/// mode), the PKI and the Users' Receive Response endpoint, and a routed configuration on them
/// (the hub simulator answering after `latency_ms`), the registers loaded by `cluster init`.
pub(super) struct Fixture {
    pub(super) pg: dccgw::cluster::servers::Postgres,
    pub(super) config: PathBuf,
    pub(super) certs: PathBuf,
    pub(super) client: reqwest::Client,
    pub(super) rx: mpsc::Receiver<Received>,
    // Dropped last: the servers' and the configuration's directories, the receiver.
    _nats: dccgw::cluster::servers::Nats,
    _kept: (
        tempfile::TempDir,
        tempfile::TempDir,
        tempfile::TempDir,
        Receiver,
    ),
}

impl Fixture {
    /// `None` (the test skipped) outside CI when a server's binary is missing.
    pub(super) async fn start(latency_ms: u64) -> Option<Self> {
        Self::start_with(latency_ms, "").await
    }

    /// As [`Self::start`], with `tail` added to the configuration.
    pub(super) async fn start_with(latency_ms: u64, tail: &str) -> Option<Self> {
        let servers = tempfile::tempdir().unwrap();
        let pg = dccgw::testing::servers::postgres(servers.path())?;
        let nats = dccgw::testing::servers::nats(servers.path())?;
        let (pki, receiver, rx) = pki_and_receiver().await;
        let port = receiver.local_addr().port();
        let (dir, config) =
            cluster_config(pki.path(), port, latency_ms, &pg, &nats.url(), tail).await;
        let certs = dir.path().join("certs");
        let client = supplier_client(&certs);
        Some(Self {
            pg,
            config,
            certs,
            client,
            rx,
            _nats: nats,
            _kept: (servers, pki, dir, receiver),
        })
    }

    /// The directory of the configuration (the registers, the certificates).
    pub(super) fn dir(&self) -> &Path {
        self._kept.2.path()
    }

    /// Waits up to `secs` for a Service Response to each of `acknowledged`'s RequestIDs.
    pub async fn answered(&mut self, acknowledged: &BTreeSet<String>, secs: u64) {
        let mut got = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !acknowledged.is_subset(&got) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some(m)) = tokio::time::timeout(left, self.rx.recv()).await else {
                panic!("answered: {got:?} of {acknowledged:?}");
            };
            got.extend(m.description.request_id);
        }
    }
}

/// A routed configuration in cluster mode on `pg` (the hub simulator answering after
/// `latency_ms`), with the registers loaded by `cluster init`; its directory and path.
async fn cluster_config(
    pki: &Path,
    receiver: u16,
    latency_ms: u64,
    pg: &dccgw::cluster::servers::Postgres,
    nats: &str,
    tail: &str,
) -> (tempfile::TempDir, PathBuf) {
    let hub = format!("[default]\nlatency = {{ kind = \"fixed\", ms = {latency_ms} }}\n");
    let cluster = format!(
        "{tail}\n[cluster]\npostgres_url = \"{}\"\nnats_url = \"{nats}\"\n\
         [admin]\ntoken_file = \"admin.token\"\n",
        pg.url()
    );
    let (dir, path) = routed_dir_with(pki, receiver, &hub, "", &cluster);
    std::fs::write(dir.path().join("admin.token"), format!("{ADMIN_TOKEN}\n")).unwrap();
    let config = Config::load(&path, Vec::new()).unwrap();
    dccgw::tools::cluster_init::run(&config).await.unwrap();
    (dir, path)
}

/// The example read (Command Variant 1) with `counter`, signed by the supplier.
pub(super) fn read(certs: &Path, counter: u64) -> Vec<u8> {
    let xml = demo::example_request_xml(SUPPLIER, DEMO_ESME, counter);
    let user = certs.join("users/supplier");
    dccgw::tools::sign(
        xml.as_bytes(),
        &user.join("xml-sign.key.pem"),
        &user.join("xml-sign.pem"),
        None,
    )
    .unwrap()
    .into_bytes()
}

/// Posts `body` to `instance`; the response code.
pub(super) async fn post(client: &reqwest::Client, instance: &Instance, body: Vec<u8>) -> String {
    let url = format!("https://localhost:{}/api/v1/serviceS", instance.port);
    let (_, answer) = support::post(client, &url, body).await;
    support::element(&answer, "ResponseCode")
        .unwrap_or("none")
        .to_owned()
}

fn supplier_client(certs: &Path) -> reqwest::Client {
    let pem = std::fs::read(certs.join("users/supplier/client.pem")).unwrap();
    support::client_with(certs, Some(reqwest::Identity::from_pem(&pem).unwrap()))
}

pub(super) fn counter_now() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_request_sent_to_three_instances_at_once_is_accepted_once() {
    let Some(c) = Fixture::start(60_000).await else {
        return;
    };
    let instances = [
        instance(&c.config, "a").await,
        instance(&c.config, "b").await,
        instance(&c.config, "c").await,
    ];
    for round in 0..10 {
        let body = read(&c.certs, counter_now());
        let answers = futures_util::future::join_all(
            instances.iter().map(|i| post(&c.client, i, body.clone())),
        )
        .await;
        let accepted = answers.iter().filter(|c| *c == "I99").count();
        let replays = answers.iter().filter(|c| *c == "E57").count();
        assert_eq!((accepted, replays), (1, 2), "round {round}: {answers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pending_commands_of_an_instance_killed_are_answered_by_another() {
    // The hub answers after 5 s: A is killed long before.
    let Some(mut c) = Fixture::start(5_000).await else {
        return;
    };
    let _b = instance(&c.config, "b").await;
    let mut a = instance(&c.config, "a").await;
    let mut acknowledged = BTreeSet::new();
    for _ in 0..5 {
        let counter = counter_now();
        assert_eq!(post(&c.client, &a, read(&c.certs, counter)).await, "I99");
        acknowledged.insert(format!("{SUPPLIER}:{DEMO_ESME}:{counter}"));
    }
    a.child.kill().unwrap(); // SIGKILL, its commands pending
    a.child.wait().unwrap();
    // B claims them once A's lease is over and sends them again; their answers arrive.
    c.answered(&acknowledged, 90).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_restarted_sends_its_pending_commands_again_from_postgres() {
    let Some(mut c) = Fixture::start(3_000).await else {
        return;
    };
    let mut a = instance(&c.config, "a").await;
    let mut acknowledged = BTreeSet::new();
    for _ in 0..3 {
        let counter = counter_now();
        assert_eq!(post(&c.client, &a, read(&c.certs, counter)).await, "I99");
        acknowledged.insert(format!("{SUPPLIER}:{DEMO_ESME}:{counter}"));
    }
    a.child.kill().unwrap(); // SIGKILL, its commands pending (only in PostgreSQL)
    a.child.wait().unwrap();
    let _a = instance(&c.config, "a").await;
    c.answered(&acknowledged, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_is_refused_with_e100_then_the_instances_recover() {
    let Some(c) = Fixture::start(60_000).await else {
        return;
    };
    let a = instance(&c.config, "a").await;
    assert_eq!(
        post(&c.client, &a, read(&c.certs, counter_now())).await,
        "I99"
    );
    c.pg.stop().unwrap();
    let away = Instant::now();
    let mut refused = 0;
    while away.elapsed() < Duration::from_secs(5) {
        // Each answer comes within the log's bound (the timeout only stops a hung test).
        let code = tokio::time::timeout(
            Duration::from_secs(20),
            post(&c.client, &a, read(&c.certs, counter_now())),
        )
        .await
        .expect("an answer, not a hang");
        assert_eq!(code, "E100");
        refused += 1;
    }
    assert!(refused > 0);
    let ready = reqwest::get(format!("http://127.0.0.1:{}/readyz", a.admin))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    c.pg.restart().unwrap();
    wait_ready(a.admin).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let code = post(&c.client, &a, read(&c.certs, counter_now())).await;
        if code == "I99" {
            break;
        }
        assert_eq!(code, "E100");
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
