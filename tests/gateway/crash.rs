//! Crash safety (issue 5): a gateway process killed with SIGKILL several times while requests
//! flow loses nothing it acknowledged. Every request answered `I99` gets its Service Response
//! delivered to the User's Receive Response Service (a real mTLS server in this test), matched
//! by RequestID, once the gateway has been started again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dccgw::demo::{self, DEMO_ESME};

use super::round_trip::{pki_and_receiver, routed_dir, SUPPLIER};
use super::support;

const BIN: &str = env!("CARGO_BIN_EXE_dccgw");
const KILLS: usize = 3;

fn spawn(config: &Path, port: u16, admin: u16) -> Child {
    spawn_with(config, port, admin, &[])
}

/// `dccgw serve` on `port` and `admin`, with `env` as further configuration overrides.
pub(super) fn spawn_with(config: &Path, port: u16, admin: u16, env: &[(&str, String)]) -> Child {
    Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env("DCCGW_LISTEN__ADDR", format!("127.0.0.1:{port}"))
        .env("DCCGW_LISTEN__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("DCCGW_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub(super) async fn wait_ready(admin: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(format!("http://127.0.0.1:{admin}/readyz"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_load_loses_no_acknowledged_request() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    // Answers take 100 ms to 1.5 s, so many commands are in flight at each kill.
    let (dir, config) = routed_dir(
        pki.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"uniform\", min_ms = 100, max_ms = 1500 }\n",
        "",
    );
    let certs = dir.path().join("certs");
    let pem = std::fs::read(certs.join("users/supplier/client.pem")).unwrap();
    let client = support::client_with(&certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));

    // What arrives, collected throughout (deliveries of one run may land during the next).
    let received = Arc::new(Mutex::new(BTreeSet::new()));
    let collector = tokio::spawn({
        let received = received.clone();
        async move {
            while let Some(m) = rx.recv().await {
                if let Some(id) = m.description.request_id {
                    received.lock().unwrap().insert(id);
                }
            }
        }
    });

    let counter = Arc::new(AtomicU64::new(1));
    let mut acknowledged = BTreeSet::new();
    for run in 0..=KILLS {
        let (port, admin) = (support::free_port(), support::free_port());
        let mut child = spawn(&config, port, admin);
        wait_ready(admin).await;
        let url = format!("https://localhost:{port}/api/v1/serviceS");
        let until = Instant::now() + Duration::from_millis(if run < KILLS { 1500 } else { 300 });
        let sender = tokio::spawn(send_reads(
            client.clone(),
            url,
            counter.clone(),
            certs.clone(),
            until,
        ));
        let acked = sender.await.unwrap();
        acknowledged.extend(acked);
        if run < KILLS {
            child.kill().unwrap(); // SIGKILL, with commands in flight
            child.wait().unwrap();
        } else {
            // The last run stays up until everything acknowledged has been delivered.
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let missing: Vec<_> = {
                    let got = received.lock().unwrap();
                    acknowledged.difference(&got).cloned().collect()
                };
                if missing.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} of {} acknowledged requests never got a response: {:?}",
                    missing.len(),
                    acknowledged.len(),
                    &missing[..missing.len().min(5)]
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
    assert!(
        acknowledged.len() >= 20,
        "too few requests acknowledged to prove anything: {}",
        acknowledged.len()
    );
    rx_server.stop().await;
    collector.abort();
}

/// Sends the example read as the supplier, one after another (the originator's counter must
/// rise), until `until` or the first failure (the gateway was killed); the RequestIDs answered
/// `I99`.
pub(super) async fn send_reads(
    client: reqwest::Client,
    url: String,
    counter: Arc<AtomicU64>,
    certs: PathBuf,
    until: Instant,
) -> Vec<String> {
    let key = certs.join("users/supplier/xml-sign.key.pem");
    let cert = certs.join("users/supplier/xml-sign.pem");
    let mut acked = Vec::new();
    while Instant::now() < until {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let xml = demo::example_request_xml(SUPPLIER, DEMO_ESME, n);
        let body = dccgw::tools::sign(xml.as_bytes(), &key, &cert, None).unwrap();
        let Ok(r) = client
            .post(&url)
            .header("content-type", "application/xml")
            .body(body)
            .send()
            .await
        else {
            break;
        };
        let Ok(text) = r.text().await else { break };
        if support::element(&text, "ResponseCode") == Some("I99") {
            acked.push(format!("{SUPPLIER}:{DEMO_ESME}:{n}"));
        }
    }
    acked
}
