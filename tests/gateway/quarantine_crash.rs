//! A quarantined request is kept in its decision's one commit, with its counter. A gateway
//! process quarantining every read of a User (streams of them) is SIGKILLed at varied instants,
//! several rounds; each read in flight at a kill, sent again, is answered `I99` (nothing of it
//! was durable: it is quarantined now) or `E57` (its counter is spent and its quarantine kept).
//! At the end no request is quarantined twice (a quarantine kept without its counter would be
//! kept again by the resend) and every read answered `I99` is listed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dccgw::demo::{self, DEMO_ESME};
use serde_json::json;

use super::anomaly::{admin_get, admin_post, anomaly_dir, rid};
use super::crash::{spawn_with, wait_ready};
use super::round_trip::{pki_and_receiver, SUPPLIER};
use super::support;

const KILLS: usize = 10;
/// Few streams: a read in flight at a kill is then often the User's highest counter, so that
/// its resend would be accepted if its counter were not spent.
const STREAMS: usize = 2;

/// The supplier's read number `n`, signed.
fn signed_read(certs: &Path, n: u64) -> Vec<u8> {
    let xml = demo::example_request_xml(SUPPLIER, DEMO_ESME, n);
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

/// The answer's code, or `None` when no answer came (the gateway died).
async fn post(client: &reqwest::Client, port: u16, body: Vec<u8>) -> Option<String> {
    let r = client
        .post(format!("https://localhost:{port}/api/v1/serviceS"))
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .ok()?;
    let text = r.text().await.ok()?;
    support::element(&text, "ResponseCode").map(str::to_owned)
}

/// Reads one after another until the gateway dies: the number of the one it died on.
async fn stream(
    client: reqwest::Client,
    certs: std::path::PathBuf,
    port: u16,
    counter: Arc<AtomicU64>,
    acknowledged: Arc<Mutex<BTreeSet<u64>>>,
) -> u64 {
    loop {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        match post(&client, port, signed_read(&certs, n)).await.as_deref() {
            Some("I99") => {
                acknowledged.lock().unwrap().insert(n);
            }
            Some(_) => {}
            None => return n,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_in_flight_at_a_kill_is_kept_with_its_counter_or_not_at_all() {
    let (pki, rx_server, _rx) = pki_and_receiver().await;
    let (dir, config) = anomaly_dir(pki.path(), rx_server.local_addr().port(), 10);
    let certs = dir.path().join("certs");
    let pem = std::fs::read(certs.join("users/supplier/client.pem")).unwrap();
    let client = support::client_with(&certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let counter = Arc::new(AtomicU64::new(2));
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut in_flight: Vec<u64> = Vec::new();
    let mut resent = BTreeMap::<String, usize>::new();
    for round in 0..=KILLS {
        let (port, admin) = (support::free_port(), support::free_port());
        let mut child = spawn_with(&config, port, admin, &[]);
        wait_ready(admin).await;
        let admin_url = format!("http://127.0.0.1:{admin}");
        if round == 0 {
            // Every read after the first is quarantined.
            let t = json!([{"user": SUPPLIER, "role": "IS", "srv": "4.1.1", "window_s": 3600, "quarantine": 1}]);
            let (status, body) =
                admin_post(&admin_url, "/admin/v1/anomaly/thresholds", &t.to_string()).await;
            assert_eq!(status, 200, "{body}");
            let first = post(&client, port, signed_read(&certs, 1)).await;
            assert_eq!(first.as_deref(), Some("I99"));
        }
        for n in in_flight.drain(..) {
            let code = post(&client, port, signed_read(&certs, n)).await;
            let code = code.unwrap_or_else(|| "no answer".into());
            assert!(
                matches!(code.as_str(), "I99" | "E57"),
                "read {n} sent again after a kill was answered {code}"
            );
            if code == "I99" {
                acknowledged.lock().unwrap().insert(n);
            }
            *resent.entry(code).or_default() += 1;
        }
        if round == KILLS {
            let list = admin_get(&admin_url, "/admin/v1/quarantine").await;
            let ids: Vec<String> = list["quarantined"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q["request_id"].as_str().unwrap().to_owned())
                .collect();
            let distinct: BTreeSet<&String> = ids.iter().collect();
            assert_eq!(distinct.len(), ids.len(), "a request quarantined twice");
            let acknowledged = acknowledged.lock().unwrap().clone();
            let missing: Vec<u64> = acknowledged
                .iter()
                .filter(|n| !distinct.contains(&rid(**n)))
                .copied()
                .collect();
            assert!(
                missing.is_empty(),
                "answered I99, not quarantined: {missing:?}"
            );
            assert!(acknowledged.len() >= 50, "too few: {}", acknowledged.len());
            eprintln!(
                "{} quarantined; reads sent again after a kill, by answer: {resent:?}",
                ids.len()
            );
            child.kill().unwrap();
            child.wait().unwrap();
            break;
        }
        let streams: Vec<_> = (0..STREAMS)
            .map(|_| {
                let (client, certs) = (client.clone(), certs.clone());
                let (counter, acknowledged) = (Arc::clone(&counter), Arc::clone(&acknowledged));
                tokio::spawn(stream(client, certs, port, counter, acknowledged))
            })
            .collect();
        let run = 150 + (round as u64 * 173) % 700;
        tokio::time::sleep(Duration::from_millis(run)).await;
        child.kill().unwrap(); // SIGKILL, with quarantines in every phase
        child.wait().unwrap();
        for s in streams {
            in_flight.push(s.await.unwrap());
        }
    }
    rx_server.stop().await;
}
