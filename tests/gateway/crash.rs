//! Crash safety: a gateway process killed with SIGKILL several times while requests
//! flow loses nothing it acknowledged. Every request answered `I99` gets its Service Response
//! delivered to the User's Receive Response Service (a real mTLS server in this test), matched
//! by RequestID, once the gateway has been started again. And a DCC Alert raised by a
//! registration change survives a SIGKILL after the change was acknowledged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dccgw::demo::{self, DEMO_ESME, DEMO_MPAN};

use super::round_trip::{pki_and_receiver, routed_dir, routed_dir_with, SUPPLIER};
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
    let (pki, rx_server, rx) = pki_and_receiver().await;
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
    let (received, collector) = support::request_ids(rx);

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

/// `dccgw_alerts_owed_change_batches` as the gateway's admin listener reports it now.
async fn owed_change_batches(admin: u16) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("dccgw_alerts_owed_change_batches "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the gauge is exported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_supplier_alert_survives_sigkill_after_the_change_was_acknowledged() {
    const TOKEN: &str = "crash-test-admin-token";
    // What is raised while the outbox is full cannot get out.
    let outbox_full = outbox_full();
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let (_dir, config) = admin_routed_dir(pki.path(), rx_server.local_addr().port(), TOKEN);

    // First run, the outbox full: a change of supplier is acknowledged, its DCC Alerts are
    // owed, and the gateway is killed.
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &outbox_full);
    wait_ready(admin).await;
    change_of_supplier(admin, TOKEN).await;
    assert_eq!(owed_change_batches(admin).await, 1);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Second run, with room in the outbox: the change of supplier reaches both suppliers.
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn(&config, port, admin);
    wait_ready(admin).await;
    let mut to = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while to.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(got)) = tokio::time::timeout(left, rx.recv()).await else {
            break;
        };
        if got.description.alert_code.as_deref() == Some("N3") {
            let response_id = got.description.response_id.unwrap_or_default();
            // The ResponseID is `DCC:recipient:counter`.
            to.insert(response_id.split(':').nth(1).unwrap_or_default().to_owned());
        }
    }
    let want: BTreeSet<String> = [SUPPLIER, SUPPLIER2].map(String::from).into();
    assert_eq!(
        to, want,
        "the change-of-supplier alert went to both suppliers"
    );
    // Once the change log marks them as sent, nothing is owed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while owed_change_batches(admin).await != 0 {
        assert!(
            Instant::now() < deadline,
            "the alerts were never marked as sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Third run, the outbox full again: nothing is owed any more, so nothing is raised again
    // (had it been, it would be stuck and counted here).
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &outbox_full);
    wait_ready(admin).await;
    assert_eq!(owed_change_batches(admin).await, 0);
    child.kill().unwrap();
    child.wait().unwrap();
    rx_server.stop().await;
}

/// The supplier the demo meter point changes to in the change-of-supplier tests.
pub(super) const SUPPLIER2: &str = "90-B3-D5-1F-30-03-00-00";

/// The environment of a gateway whose outbox holds at most one byte, so refuses every message (a
/// full outbox, as after a long outage of Users' endpoints).
pub(super) fn outbox_full() -> [(&'static str, String); 1] {
    [("DCCGW_DELIVERY__OUTBOX__MAX_HELD_BYTES", "1".to_owned())]
}

/// A routed gateway's directory (devices answering in 10 ms, delivering to the receiver on
/// `rx_port`) whose admin API takes `token`, and its configuration's path.
pub(super) fn admin_routed_dir(
    pki: &Path,
    rx_port: u16,
    token: &str,
) -> (tempfile::TempDir, PathBuf) {
    let (dir, config) = routed_dir_with(
        pki,
        rx_port,
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n",
        "",
        "[admin]\ntoken_file = \"admin.token\"\n",
    );
    std::fs::write(dir.path().join("admin.token"), format!("{token}\n")).unwrap();
    (dir, config)
}

/// The demo meter point's import supplier changes from `SUPPLIER` to `SUPPLIER2` now, through the
/// admin API of the gateway on `admin`.
pub(super) async fn change_of_supplier(admin: u16, token: &str) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let cos = format!(
        r#"[{{"change":"end_registration","mpxn":"{DEMO_MPAN}","role":"IS","user":"{SUPPLIER}","at":{now}}},
            {{"change":"add_registration","mpxn":"{DEMO_MPAN}","registration":{{"role":"IS","user":"{SUPPLIER2}","from":{now},"to":null}}}}]"#
    );
    let r = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{admin}/admin/v1/registry/changes"
        ))
        .bearer_auth(token)
        .body(cos)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}
