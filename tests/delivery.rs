//! Delivery end to end over real mTLS: the outbox with the HTTPS transport posting to real
//! Receive Response Services (the `receiver`), one per User; an endpoint that is down and comes
//! back; one that never answers; and the gateway process killed with SIGKILL under load.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use dccgw::domain::{Eui64, RequestId, UserId};
use dccgw::outbox::{
    no_hook, HttpsTransport, Outbound, OutboundKind, Outbox, OutboxConfig, OutboxMetrics,
    TransportConfig,
};
use dccgw::pki::{self, DevPki};
use dccgw::receiver::{Received, Receiver, ReceiverConfig};
use tokio::sync::mpsc;

const SUPPLIER: Eui64 = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, 0]);
const NETWORK: Eui64 = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x02, 0, 0]);
const METER: Eui64 = Eui64::from_bytes([0, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0]);
/// A bound on waiting for deliveries; generous, so it only ends a test that is broken.
const PATIENCE: Duration = Duration::from_secs(120);

fn fresh_pki(dir: &Path) -> DevPki {
    pki::init(&dir.join("pki"), time::OffsetDateTime::now_utc()).unwrap()
}

fn transport_config(pki: &DevPki) -> TransportConfig {
    TransportConfig::new(
        pki.dcc_acb.cert.clone(),
        pki.dcc_acb.key.clone(),
        vec![pki.ca.cert.clone()],
    )
}

async fn receiver(
    pki: &DevPki,
    addr: SocketAddr,
    dir: Option<PathBuf>,
) -> (Receiver, mpsc::Receiver<Received>) {
    let (tx, rx) = mpsc::channel(1024);
    let config = ReceiverConfig {
        dir,
        ..ReceiverConfig::new(
            addr,
            pki.server.cert.clone(),
            pki.server.key.clone(),
            vec![pki.ca.cert.clone()],
        )
    };
    (Receiver::start(config, Some(tx)).await.unwrap(), rx)
}

fn url(addr: SocketAddr) -> String {
    format!("https://localhost:{}/rrs", addr.port())
}

/// A fast-scale configuration: retries in tenths of a second instead of minutes.
fn quick() -> OutboxConfig {
    OutboxConfig {
        first_retry_ms: 100,
        max_backoff_ms: 500,
        open_after_failures: 2,
        ..OutboxConfig::default()
    }
}

async fn open(
    dir: &Path,
    config: &OutboxConfig,
    pki: &DevPki,
    urls: Vec<(UserId, String)>,
) -> Outbox {
    let endpoints = move |user: &UserId| {
        urls.iter()
            .find(|(u, _)| u == user)
            .map(|(_, url)| url.clone())
    };
    let transport = HttpsTransport::new(&transport_config(pki)).unwrap();
    Outbox::open(
        dir,
        config,
        Arc::new(endpoints),
        Arc::new(transport),
        OutboxMetrics::new(),
        no_hook(),
    )
    .await
    .unwrap()
}

fn response_xml(request_id: &RequestId, code: &str) -> Vec<u8> {
    format!(
        "<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.1\">\
         <sr:Header><sr:RequestID>{request_id}</sr:RequestID><sr:ResponseCode>{code}</sr:ResponseCode>\
         <sr:ResponseDateTime>2024-01-01T00:00:00Z</sr:ResponseDateTime></sr:Header><sr:Body/></sr:Response>"
    )
    .into_bytes()
}

fn response(outbox: &Outbox, user: UserId, counter: u64) -> Outbound {
    let request_id = RequestId {
        originator: user,
        target: METER,
        counter,
    };
    Outbound {
        id: outbox.next_id(),
        user,
        kind: OutboundKind::Response {
            request_id,
            code: dccgw::domain::ResponseCode::I0,
        },
        body: response_xml(&request_id, "I0"),
        raised_at: 0,
    }
}

async fn take(rx: &mut mpsc::Receiver<Received>, n: usize) -> Vec<Received> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while got.len() < n {
            got.push(rx.recv().await.unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} deliveries arrived", got.len()));
    got
}

/// Waits until the outbox holds `n` pending messages (a receiver hands a message on before
/// its 200 reaches the outbox).
async fn until_pending(outbox: &Outbox, n: usize) {
    tokio::time::timeout(PATIENCE, async {
        while outbox.pending() != n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} pending, not {n}", outbox.pending()));
}

fn ids(got: &[Received]) -> HashSet<String> {
    got.iter().filter_map(|r| r.message_id.clone()).collect()
}

#[tokio::test]
async fn responses_and_alerts_reach_each_users_own_endpoint_as_files() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = fresh_pki(tmp.path());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (sup, mut sup_rx) = receiver(&pki, any, Some(tmp.path().join("supplier"))).await;
    let (net, mut net_rx) = receiver(&pki, any, Some(tmp.path().join("network"))).await;
    let urls = vec![
        (SUPPLIER, url(sup.local_addr())),
        (NETWORK, url(net.local_addr())),
    ];
    let outbox = open(
        &tmp.path().join("outbox"),
        &OutboxConfig::default(),
        &pki,
        urls,
    )
    .await;

    let mut batch: Vec<_> = (1..=10).map(|n| response(&outbox, SUPPLIER, n)).collect();
    let alert = Outbound {
        id: outbox.next_id(),
        user: NETWORK,
        kind: OutboundKind::DeviceAlert {
            code: 0x8F35,
            device: METER,
            request_id: None,
        },
        body: b"<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\">\
            <sr:Header><sr:ResponseCode>I0</sr:ResponseCode></sr:Header><sr:Body>\
            <sr:DeviceAlertMessage><sr:AlertCode>8F35</sr:AlertCode></sr:DeviceAlertMessage>\
            </sr:Body></sr:Response>"
            .to_vec(),
        raised_at: 0,
    };
    let alert_id = alert.id.to_string();
    batch.push(alert);
    outbox.enqueue(batch).await.unwrap();

    let got = take(&mut sup_rx, 10).await;
    let mut files: Vec<_> = std::fs::read_dir(tmp.path().join("supplier"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 10);
    assert!(files.contains(&"90-B3-D5-1F-30-01-00-00_00-DB-12-34-56-78-90-A0_7.I0.xml".to_owned()));
    assert!(got.iter().all(|r| r.description.alert_code.is_none()));
    let alert = take(&mut net_rx, 1).await;
    assert_eq!(alert[0].stem, format!("alert-8F35-{alert_id}"));
    assert!(tmp
        .path()
        .join("network")
        .join(format!("alert-8F35-{alert_id}.xml"))
        .is_file());
    until_pending(&outbox, 0).await;
    outbox.shutdown().await;
    sup.stop().await;
    net.stop().await;
}

#[tokio::test]
async fn an_endpoint_that_is_down_then_back_receives_everything_and_delays_no_one() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = fresh_pki(tmp.path());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (up, mut up_rx) = receiver(&pki, any, None).await;
    // A port with nothing listening yet: the network operator's endpoint is down.
    let down_addr = std::net::TcpListener::bind(any)
        .unwrap()
        .local_addr()
        .unwrap();
    let urls = [(SUPPLIER, url(up.local_addr())), (NETWORK, url(down_addr))];
    let gateway_metrics = dccgw::metrics::Metrics::new();
    let metrics = OutboxMetrics::from(gateway_metrics.delivery.clone());
    let transport = HttpsTransport::new(&transport_config(&pki)).unwrap();
    let endpoints = move |user: &UserId| {
        urls.iter()
            .find(|(u, _)| u == user)
            .map(|(_, url)| url.clone())
    };
    let outbox = Outbox::open(
        &tmp.path().join("outbox"),
        &quick(),
        Arc::new(endpoints),
        Arc::new(transport),
        metrics,
        no_hook(),
    )
    .await
    .unwrap();

    let to_down: Vec<_> = (1..=30).map(|n| response(&outbox, NETWORK, n)).collect();
    let want: HashSet<_> = to_down.iter().map(|o| o.id.to_string()).collect();
    outbox.enqueue(to_down).await.unwrap();
    let to_up: Vec<_> = (1..=30).map(|n| response(&outbox, SUPPLIER, n)).collect();
    outbox.enqueue(to_up).await.unwrap();
    // The working endpoint gets everything while the other is down.
    take(&mut up_rx, 30).await;
    // Down for a while (the short-scale stand-in for ten minutes): attempts fail and back off.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(outbox.pending(), 30);
    let failures = gateway_metrics.render();
    assert!(
        failures.contains("dccgw_delivery_failed_attempts_total{reason=\"connect\"}"),
        "{failures}"
    );
    assert!(
        failures.contains("dccgw_delivery_attempts_total{kind=\"response\",outcome=\"failed\"}"),
        "{failures}"
    );
    assert!(
        failures.contains("dccgw_delivery_queue_messages 30"),
        "{failures}"
    );

    let (back, mut back_rx) = receiver(&pki, down_addr, None).await;
    let got = take(&mut back_rx, 30).await;
    assert_eq!(ids(&got), want);
    outbox.shutdown().await;
    up.stop().await;
    back.stop().await;
}

#[tokio::test]
async fn an_endpoint_that_never_answers_delays_no_other_user() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = fresh_pki(tmp.path());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (up, mut up_rx) = receiver(&pki, any, None).await;
    // Accepts connections and never says a word.
    let hole = tokio::net::TcpListener::bind(any).await.unwrap();
    let hole_addr = hole.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    let urls = vec![(SUPPLIER, url(hole_addr)), (NETWORK, url(up.local_addr()))];
    let outbox = open(
        &tmp.path().join("outbox"),
        &OutboxConfig::default(),
        &pki,
        urls,
    )
    .await;
    let stuck: Vec<_> = (1..=20).map(|n| response(&outbox, SUPPLIER, n)).collect();
    outbox.enqueue(stuck).await.unwrap();
    let flowing: Vec<_> = (1..=20).map(|n| response(&outbox, NETWORK, n)).collect();
    let want: HashSet<_> = flowing.iter().map(|o| o.id.to_string()).collect();
    outbox.enqueue(flowing).await.unwrap();
    assert_eq!(ids(&take(&mut up_rx, 20).await), want);
    // The silent endpoint's messages wait.
    until_pending(&outbox, 20).await;
    outbox.shutdown().await;
    up.stop().await;
}

/// Environment for [`crash_child`]: where its outbox is, where to deliver, the PKI.
const CHILD_DIR: &str = "DCCGW_DELIVERY_CHILD_OUTBOX";
const CHILD_URL: &str = "DCCGW_DELIVERY_CHILD_URL";
const CHILD_PKI: &str = "DCCGW_DELIVERY_CHILD_PKI";
const CHILD_DRAIN: &str = "DCCGW_DELIVERY_CHILD_DRAIN";

/// The gateway side of the crash test, run in a child process by
/// [`kill_9_under_load_loses_nothing_acknowledged`]: enqueues batches without end, printing
/// `ACK <id>` for each message once `enqueue` has returned; or, with `CHILD_DRAIN`, delivers
/// what is pending and prints `DRAINED`. Without the environment it does nothing.
#[test]
fn crash_child() {
    let (Some(dir), Some(url), Some(pki_dir)) = (
        std::env::var_os(CHILD_DIR),
        std::env::var(CHILD_URL).ok(),
        std::env::var_os(CHILD_PKI),
    ) else {
        return;
    };
    let drain = std::env::var_os(CHILD_DRAIN).is_some();
    let pki_dir = PathBuf::from(pki_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let transport = HttpsTransport::new(&TransportConfig::new(
            pki_dir.join("dcc-acb.pem"),
            pki_dir.join("dcc-acb.key.pem"),
            vec![pki_dir.join("ca.pem")],
        ))
        .unwrap();
        let outbox = Outbox::open(
            Path::new(&dir),
            &quick(),
            Arc::new(move |_: &UserId| Some(url.clone())),
            Arc::new(transport),
            OutboxMetrics::new(),
            no_hook(),
        )
        .await
        .unwrap();
        if drain {
            while outbox.pending() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            outbox.shutdown().await;
            println!("DRAINED");
            return;
        }
        let mut counter = 0u64;
        loop {
            let batch: Vec<_> = (0..25)
                .map(|_| {
                    counter += 1;
                    response(&outbox, SUPPLIER, counter)
                })
                .collect();
            let ids: Vec<_> = batch.iter().map(|o| o.id).collect();
            outbox.enqueue(batch).await.unwrap();
            let lines: String = ids.iter().map(|id| format!("ACK {id}\n")).collect();
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(lines.as_bytes()).unwrap();
            out.flush().unwrap();
        }
    });
}

/// Runs [`crash_child`] and returns the IDs it acknowledged; kills it with SIGKILL after
/// `kill_after` acknowledgements (or lets it finish when draining).
fn run_child(envs: &[(&str, PathBuf)], url: &str, kill_after: Option<usize>) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .envs(envs.iter().map(|(k, v)| (*k, v.as_os_str())))
        .env(CHILD_URL, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    let mut drained = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        // libtest may print its own "test crash_child ... " in front of the first line.
        if let Some((_, id)) = line.split_once("ACK ") {
            acked.push(id.to_owned());
            if kill_after.is_some_and(|n| acked.len() >= n) {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
        drained |= line.ends_with("DRAINED");
    }
    let status = child.wait().unwrap();
    if kill_after.is_none() {
        assert!(
            status.success() && drained,
            "the draining child failed: {status}"
        );
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = fresh_pki(tmp.path());
    let (rrs, mut rx) = receiver(&pki, "127.0.0.1:0".parse().unwrap(), None).await;
    let u = url(rrs.local_addr());
    let outbox_dir = tmp.path().join("outbox");
    let envs = vec![(CHILD_DIR, outbox_dir), (CHILD_PKI, pki.dir.clone())];
    let received = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            if let Some(id) = r.message_id {
                sink.lock().unwrap().insert(id);
            }
        }
    });

    let mut acked = Vec::new();
    for kill_after in [60, 400, 25, 250, 150] {
        let (envs, u) = (envs.clone(), u.clone());
        acked.extend(
            tokio::task::spawn_blocking(move || run_child(&envs, &u, Some(kill_after)))
                .await
                .unwrap(),
        );
    }
    let mut drain_envs = envs.clone();
    drain_envs.push((CHILD_DRAIN, PathBuf::from("1")));
    let u2 = u.clone();
    tokio::task::spawn_blocking(move || run_child(&drain_envs, &u2, None))
        .await
        .unwrap();

    assert!(acked.len() >= 885, "only {} acknowledged", acked.len());
    // The receiver hands a message on before it answers 200, so once the draining child is
    // done every delivery is in the channel; wait for the collector to empty it.
    let lost = tokio::time::timeout(PATIENCE, async {
        loop {
            let lost: Vec<String> = {
                let got = received.lock().unwrap();
                acked
                    .iter()
                    .filter(|id| !got.contains(*id))
                    .cloned()
                    .collect()
            };
            if lost.is_empty() {
                return lost;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        let got = received.lock().unwrap();
        acked
            .iter()
            .filter(|id| !got.contains(*id))
            .cloned()
            .collect()
    });
    assert!(
        lost.is_empty(),
        "{} acknowledged messages were lost: {lost:?}",
        lost.len()
    );
    rrs.stop().await;
}
