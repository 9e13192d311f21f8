//! Dead letters for operators, over real HTTP: a response to a User whose endpoint is down
//! outlives a short hold time, is listed on the admin listener, replayed once the endpoint is
//! up, and delivered; the delivery metrics and the audit trail saw each step.

use std::net::SocketAddr;

use dccgw::audit::{read_trail, AuditEvent, DeliveryOutcome};
use dccgw::config::Config;
use dccgw::receiver::{Receiver, ReceiverConfig};
use dccgw::server;
use serde_json::Value;
use tokio::sync::mpsc;

use super::round_trip::{delivered_record, next, routed_dir_with, send_read};
use super::support::{self, TestGateway};

const TOKEN: &str = "dead-letter-test-token";

async fn list(gw: &TestGateway, token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("{}/admin/v1/dead-letters", gw.admin()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn act(gw: &TestGateway, action: &str, ids: &Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/admin/v1/dead-letters/{action}", gw.admin()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(ids.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The dead letters once there is at least one (polled within a bound: the hold time is 1 s).
async fn dead_letters(gw: &TestGateway) -> Vec<Value> {
    for _ in 0..300 {
        let (status, body) = list(gw, TOKEN).await;
        assert_eq!(status, 200, "{body}");
        let letters: Vec<Value> = serde_json::from_str(&body).unwrap();
        if !letters.is_empty() {
            return letters;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no dead letter within 30 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_is_listed_replayed_and_delivered() {
    let certs_dir = tempfile::tempdir().unwrap();
    dccgw::pki::init(certs_dir.path(), time::OffsetDateTime::now_utc()).unwrap();
    // The User's endpoint: nothing listens there yet.
    let port = support::free_port();
    let (dir, path) = routed_dir_with(
        certs_dir.path(),
        port,
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n",
        "",
        "hold_secs = 1\n[admin]\ntoken_file = \"admin.token\"\n",
    );
    std::fs::write(dir.path().join("admin.token"), TOKEN).unwrap();
    let config = Config::load(&path, Vec::new()).unwrap();
    let gw = TestGateway {
        running: server::start(&config).await.unwrap(),
        dir,
    };
    let request_id = send_read(&gw, 1).await;

    let letters = dead_letters(&gw).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["kind"], "response");
    assert_eq!(letter["about"], request_id.as_str());
    assert_eq!(letter["user"], super::round_trip::SUPPLIER);
    let id = letter["id"].as_str().unwrap().to_owned();
    // The letter is listed as soon as the outbox holds it; the counter and the gauges follow
    // a moment later (the gauges from the outbox's marker task), so they are polled.
    let wanted = [
        "dccgw_delivery_dead_letters_total 1",
        "dccgw_delivery_dead_letter_messages 1",
        "dccgw_delivery_queue_messages 0",
    ];
    let mut metrics = gw.metrics().await;
    for _ in 0..100 {
        if wanted.iter().all(|w| metrics.lines().any(|l| l == *w)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        metrics = gw.metrics().await;
    }
    for line in wanted {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    assert!(
        metrics.contains("dccgw_delivery_failed_attempts_total{reason=\"connect\"}"),
        "{metrics}"
    );

    // Refused without the token; malformed IDs refused; unknown IDs skipped.
    assert_eq!(list(&gw, "wrong").await.0, 401);
    let (status, body) = act(&gw, "replay", &serde_json::json!(["not hex"])).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = act(&gw, "discard", &serde_json::json!(["1"])).await;
    assert_eq!((status, body.as_str()), (200, "{\"discarded\":0}"));

    // The endpoint comes up; the replayed letter reaches it.
    let (tx, mut rx) = mpsc::channel(16);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let certs = certs_dir.path();
    let receiver = Receiver::start(
        ReceiverConfig::new(
            addr,
            certs.join("server.pem"),
            certs.join("server.key.pem"),
            vec![certs.join("ca.pem")],
        ),
        Some(tx),
    )
    .await
    .unwrap();
    let (status, body) = act(&gw, "replay", &serde_json::json!([id])).await;
    assert_eq!((status, body.as_str()), (200, "{\"replayed\":1}"));
    let got = next(&mut rx).await;
    assert_eq!(got.description.request_id.as_deref(), Some(&request_id[..]));
    let delivered = delivered_record(&gw, &request_id).await;
    assert!(delivered.attempt >= 1);

    let (status, body) = list(&gw, TOKEN).await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    // The trail holds the failures and the dead-lettering before the delivery.
    let mut outcomes = Vec::new();
    read_trail(gw.running.gateway.audit.dir(), |_, e| {
        if let AuditEvent::Delivery(d) = e {
            outcomes.push(d.outcome);
        }
    })
    .unwrap();
    let dead = outcomes
        .iter()
        .position(|o| *o == DeliveryOutcome::DeadLettered);
    assert!(
        matches!(outcomes.first(), Some(DeliveryOutcome::Failed)) && dead.is_some(),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.last(),
        Some(&DeliveryOutcome::Delivered),
        "{outcomes:?}"
    );
    receiver.stop().await;
}
