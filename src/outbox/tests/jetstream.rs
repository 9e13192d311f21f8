//! The cluster's outbox on a real, throwaway `nats-server -js` (skipped when it is not installed,
//! failing under `CI=true`), delivering over real mTLS to the project's Receive Response
//! Service: delivery, de-duplication of a re-published message, isolation between Users, dead
//! letters listed and replayed from another instance, and the server stopped and restarted.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{METER, NETWORK, SUPPLIER};
use crate::cluster::servers::Nats;
use crate::domain::{RequestId, ResponseCode, UserId};
use crate::outbox::jetstream::JetstreamSettings;
use crate::outbox::{
    no_hook, HttpsTransport, Outbound, OutboundKind, Outbox, OutboxConfig, OutboxError,
    OutboxMetrics, TransportConfig,
};
use crate::pki::{self, DevPki};
use crate::receiver::{Received, Receiver, ReceiverConfig};

/// A bound on waiting for deliveries; generous, so it only ends a test that is broken.
const PATIENCE: Duration = Duration::from_secs(60);

/// Where each User's messages go; a test may change it while the outbox runs.
type Urls = Arc<Mutex<HashMap<UserId, String>>>;

struct Rig {
    _dir: tempfile::TempDir,
    nats: Nats,
    pki: DevPki,
    urls: Urls,
    received: mpsc::Receiver<Received>,
    receiver_url: String,
    _receiver: Receiver,
}

/// A nats-server and a receiver, or `None` when nats-server is not installed (outside CI).
async fn rig() -> Option<Rig> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("dccgw=warn")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let nats = crate::testing::servers::nats(dir.path())?;
    let pki = pki::init(&dir.path().join("pki"), time::OffsetDateTime::now_utc()).unwrap();
    let (tx, received) = mpsc::channel(4096);
    let config = ReceiverConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        pki.server.cert.clone(),
        pki.server.key.clone(),
        vec![pki.ca.cert.clone()],
    );
    let receiver = Receiver::start(config, Some(tx)).await.unwrap();
    let receiver_url = format!("https://localhost:{}/rrs", receiver.local_addr().port());
    Some(Rig {
        _dir: dir,
        nats,
        pki,
        urls: Arc::new(Mutex::new(HashMap::new())),
        received,
        receiver_url,
        _receiver: receiver,
    })
}

/// Fast-scale retries: tenths of a second instead of minutes.
fn quick() -> OutboxConfig {
    OutboxConfig {
        first_retry_ms: 200,
        max_backoff_ms: 1_000,
        per_user_concurrency: 2,
        ..OutboxConfig::default()
    }
}

impl Rig {
    fn point(&self, user: UserId, url: &str) {
        self.urls.lock().unwrap().insert(user, url.to_owned());
    }

    async fn outbox(&self, config: &OutboxConfig) -> Outbox {
        let urls = Arc::clone(&self.urls);
        let endpoints = move |user: &UserId| urls.lock().unwrap().get(user).cloned();
        let mut transport = TransportConfig::new(
            self.pki.dcc_acb.cert.clone(),
            self.pki.dcc_acb.key.clone(),
            vec![self.pki.ca.cert.clone()],
        );
        transport.request_timeout_ms = 5_000;
        let mut settings = JetstreamSettings::new(&self.nats.url());
        settings.timeout = Duration::from_secs(2);
        settings.ack_wait = Duration::from_secs(10);
        Outbox::open_jetstream(
            &settings,
            config,
            Arc::new(endpoints),
            Arc::new(HttpsTransport::new(&transport).unwrap()),
            OutboxMetrics::new(),
            no_hook(),
        )
        .await
        .unwrap()
    }

    /// Waits for `n` deliveries; their message IDs.
    async fn take(&mut self, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            while got.len() < n {
                let r = self.received.recv().await.unwrap();
                got.push(r.message_id.unwrap_or_default());
            }
        })
        .await
        .unwrap_or_else(|_| panic!("only {} of {n} deliveries arrived", got.len()));
        got
    }

    /// Waits until every ID in `wanted` has arrived (the ones in `maybe` may arrive too, and
    /// nothing else); the IDs that arrived.
    async fn until(
        &mut self,
        wanted: &mut HashSet<String>,
        maybe: &HashSet<String>,
    ) -> HashSet<String> {
        let mut got = HashSet::new();
        tokio::time::timeout(PATIENCE, async {
            while !wanted.is_empty() {
                let id = self
                    .received
                    .recv()
                    .await
                    .unwrap()
                    .message_id
                    .unwrap_or_default();
                assert!(
                    wanted.remove(&id) || maybe.contains(&id) || got.contains(&id),
                    "{id}"
                );
                got.insert(id);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} deliveries never arrived", wanted.len()));
        got
    }

    /// Nothing more arrives for a while.
    async fn quiet(&mut self) {
        let more = tokio::time::timeout(Duration::from_millis(1500), self.received.recv()).await;
        assert!(more.is_err(), "an unexpected delivery: {more:?}");
    }
}

fn response(outbox: &Outbox, user: UserId, counter: u64) -> Outbound {
    let request_id = RequestId {
        originator: user,
        target: METER,
        counter,
    };
    let body = format!(
        "<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.1\">\
         <sr:Header><sr:RequestID>{request_id}</sr:RequestID><sr:ResponseCode>I0</sr:ResponseCode>\
         <sr:ResponseDateTime>2024-01-01T00:00:00Z</sr:ResponseDateTime></sr:Header><sr:Body/></sr:Response>"
    );
    Outbound {
        id: outbox.next_id(),
        user,
        kind: OutboundKind::Response {
            request_id,
            code: ResponseCode::I0,
        },
        body: body.into_bytes(),
        raised_at: 0,
    }
}

fn batch(outbox: &Outbox, user: UserId, n: u64) -> Vec<Outbound> {
    (1..=n).map(|c| response(outbox, user, c)).collect()
}

fn ids(batch: &[Outbound]) -> HashSet<String> {
    batch.iter().map(|m| m.id.to_string()).collect()
}

/// A TCP endpoint that accepts and never answers, counting its connections.
async fn black_hole() -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&count);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            *counted.lock().unwrap() += 1;
            held.push(socket);
        }
    });
    (format!("https://localhost:{port}/rrs"), count)
}

/// A URL where nothing listens: attempts fail at once.
fn nowhere() -> String {
    let port = crate::cluster::servers::free_port().unwrap();
    format!("https://localhost:{port}/rrs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_https_once_even_when_published_twice() {
    let Some(mut rig) = rig().await else { return };
    rig.point(SUPPLIER, &rig.receiver_url.clone());
    let outbox = rig.outbox(&quick()).await;
    let sent = batch(&outbox, SUPPLIER, 20);
    outbox.enqueue(sent.clone()).await.unwrap();
    // The same messages again, as a caller retrying after a lost acknowledgement does.
    outbox.enqueue(sent.clone()).await.unwrap();
    let got = rig.take(20).await;
    assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), ids(&sent));
    rig.quiet().await;
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_hanging_endpoint_delays_nobody_else() {
    let Some(mut rig) = rig().await else { return };
    let (hole, connections) = black_hole().await;
    rig.point(NETWORK, &hole);
    rig.point(SUPPLIER, &rig.receiver_url.clone());
    let config = quick();
    let outbox = rig.outbox(&config).await;
    outbox.enqueue(batch(&outbox, NETWORK, 30)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let sent = batch(&outbox, SUPPLIER, 10);
    outbox.enqueue(sent.clone()).await.unwrap();
    let got = rig.take(10).await;
    // The hanging endpoint holds its attempts for the 5 s request timeout.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "the other User waited {:?}",
        start.elapsed()
    );
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), ids(&sent));
    let held = *connections.lock().unwrap();
    assert!(
        (1..=config.per_user_concurrency).contains(&held),
        "{held} attempts in flight to the hanging endpoint"
    );
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_replayed_by_another_instance() {
    let Some(mut rig) = rig().await else { return };
    rig.point(SUPPLIER, &nowhere());
    let config = OutboxConfig {
        hold_secs: 2,
        ..quick()
    };
    let a = rig.outbox(&config).await;
    let sent = batch(&a, SUPPLIER, 3);
    a.enqueue(sent.clone()).await.unwrap();
    let b = rig.outbox(&config).await;
    let dead = tokio::time::timeout(PATIENCE, async {
        loop {
            let dead = b.dead_letters().await.unwrap();
            if dead.len() == 3 {
                return dead;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("three dead letters");
    let listed: HashSet<String> = dead.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(listed, ids(&sent));
    assert!(dead.iter().all(|d| d.user == SUPPLIER && d.dead_at > 0));
    rig.point(SUPPLIER, &rig.receiver_url.clone());
    a.shutdown().await;
    assert_eq!(b.replay_dead(&[dead[0].id, dead[1].id]).await.unwrap(), 2);
    assert_eq!(b.discard_dead(&[dead[2].id]).await.unwrap(), 1);
    let got: HashSet<String> = rig.take(2).await.into_iter().collect();
    assert_eq!(got, [dead[0].id, dead[1].id].map(|i| i.to_string()).into());
    assert!(b.dead_letters().await.unwrap().is_empty());
    rig.quiet().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_nats_stops_and_enqueues_fail_meanwhile() {
    let Some(mut rig) = rig().await else { return };
    rig.point(SUPPLIER, &nowhere());
    let outbox = rig.outbox(&quick()).await;
    let before = batch(&outbox, SUPPLIER, 50);
    outbox.enqueue(before.clone()).await.unwrap();
    rig.nats.stop();
    let start = Instant::now();
    let refused_batch = batch(&outbox, SUPPLIER, 1);
    let refused = outbox.enqueue(refused_batch.clone()).await;
    let waited = start.elapsed();
    assert!(
        matches!(
            refused,
            Err(OutboxError::Unavailable { .. } | OutboxError::Fabric { .. })
        ),
        "{refused:?}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "the refusal took {waited:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    rig.nats.restart().unwrap();
    rig.point(SUPPLIER, &rig.receiver_url.clone());
    // Every acknowledged message arrives. The refused one may too (a publish the client had
    // sent before it saw the server go): at least once, never lost.
    let after = batch(&outbox, SUPPLIER, 1);
    let earlier: HashSet<String> = ids(&before).union(&ids(&refused_batch)).cloned().collect();
    let mut wanted = ids(&before);
    let got = rig.until(&mut wanted, &ids(&refused_batch)).await;
    assert!(got.is_subset(&earlier));
    // Enqueues work again once the client has reconnected.
    tokio::time::timeout(PATIENCE, async {
        while outbox.enqueue(after.clone()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("enqueues work again");
    let mut wanted = ids(&after);
    rig.until(&mut wanted, &earlier).await;
    outbox.shutdown().await;
}

/// The publish-and-acknowledge rate and latency of `enqueue` on a throwaway server, with
/// `sync_interval: always` and with the server's default, for docs/cluster.md's sizing: 32
/// callers each enqueueing one 1 KiB message at a time. Set `DCCGW_NATS_SERVER` to measure
/// another nats-server release (Debian's 2.9.10 has no `sync_interval`).
/// `cargo test --lib outbox::tests::jetstream::measure -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure() {
    use crate::cluster::servers::NatsSync;
    const CALLERS: usize = 32;
    const EACH: usize = 150;
    for sync in [NatsSync::Always, NatsSync::Default] {
        let dir = tempfile::tempdir().unwrap();
        let Some(nats) = crate::testing::servers::nats_with(dir.path(), sync) else {
            return;
        };
        let settings = JetstreamSettings::new(&nats.url());
        let outbox = Outbox::open_jetstream(
            &settings,
            &OutboxConfig::default(),
            Arc::new(|_: &UserId| None),
            Arc::new(crate::outbox::ChannelTransport::new(1).0),
            OutboxMetrics::new(),
            no_hook(),
        )
        .await
        .unwrap();
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for caller in 0..CALLERS {
            let outbox = outbox.clone();
            tasks.spawn(async move {
                let mut took = Vec::with_capacity(EACH);
                for n in 0..EACH {
                    let mut m = response(&outbox, SUPPLIER, (caller * EACH + n) as u64);
                    m.body.resize(1024, b' ');
                    let t = Instant::now();
                    outbox.enqueue(vec![m]).await.unwrap();
                    took.push(t.elapsed());
                }
                took
            });
        }
        let mut took: Vec<Duration> = Vec::new();
        while let Some(t) = tasks.join_next().await {
            took.extend(t.unwrap());
        }
        let elapsed = start.elapsed();
        took.sort();
        let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
        println!(
            "sync {:?} (sync_interval always in force: {}): {} enqueues in {:.2?}: {:.0}/s, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            sync,
            nats.syncs_always(),
            took.len(),
            elapsed,
            took.len() as f64 / elapsed.as_secs_f64(),
            at(0.50),
            at(0.99),
            took[took.len() - 1],
        );
        outbox.shutdown().await;
    }
}
