//! A request's other effects in cluster mode, through `dccgw serve` processes on one throwaway
//! PostgreSQL and nats-server: a request quarantined through instance A is listed, released and
//! its Service Response delivered through instance B; one quarantined through an instance that
//! was then SIGKILLed is deleted through another, its `E67` delivered. A Transform's
//! pre-command issued through A (then SIGKILLed and restarted) is signed back through B
//! (accepted, its device's answer delivered) and then refused through A (used once across the
//! cluster).

use std::time::{Duration, Instant};

use serde_json::json;

use super::anomaly::{act, admin_get, admin_post};
use super::cluster_requests::{counter_now, instance, post, read, Fixture, Instance};
use super::critical::{code, signed_back, SEND, TRANSFORM};
use super::round_trip::SUPPLIER;
use super::support;

use dccgw::demo::DEMO_ESME;

/// The quarantine listed by the instance whose admin port is `admin`: (reference, RequestID).
async fn listed(admin: u16) -> Vec<(u64, String)> {
    let list = admin_get(&format!("http://127.0.0.1:{admin}"), "/admin/v1/quarantine").await;
    list["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let id = q["request_id"].as_str().unwrap().to_owned();
            (q["reference"].as_u64().unwrap(), id)
        })
        .collect()
}

/// Waits up to 90 s (a retry on JetStream may wait for its consumer's redelivery timer) for the
/// Service Response to `id` with `code` (not its `AD1`).
async fn final_message(c: &mut Fixture, id: &str, code: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(m)) = tokio::time::timeout(left, c.rx.recv()).await else {
            panic!("no {code} for {id}");
        };
        let d = &m.description;
        if d.request_id.as_deref() == Some(id)
            && d.alert_code.is_none()
            && d.response_code.as_deref() == Some(code)
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_kept_by_one_instance_is_released_or_deleted_through_another() {
    let Some(mut c) = Fixture::start(200).await else {
        return;
    };
    let a = instance(&c.config, "a").await;
    let b = instance(&c.config, "b").await;
    // A quarantines every read of the supplier after the first (thresholds are each
    // instance's own).
    let t = json!([{"user": SUPPLIER, "role": "IS", "srv": "4.1.1", "window_s": 3600, "quarantine": 1}]);
    let a_admin = format!("http://127.0.0.1:{}", a.admin);
    let (status, body) = admin_post(&a_admin, "/admin/v1/anomaly/thresholds", &t.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let mut counters = Vec::new();
    for _ in 0..3 {
        let n = counter_now();
        assert_eq!(post(&c.client, &a, read(&c.certs, n)).await, "I99");
        counters.push(n);
    }
    let rid = |n: u64| format!("{SUPPLIER}:{DEMO_ESME}:{n}");
    // Read 1 went to its device; reads 2 and 3 are quarantined, listed by B as by A.
    final_message(&mut c, &rid(counters[0]), "I0").await;
    let on_b = listed(b.admin).await;
    assert_eq!(on_b, listed(a.admin).await);
    let ids: Vec<&str> = on_b.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, [rid(counters[1]), rid(counters[2])]);
    // Released through B: its Service Response arrives; A no longer lists it.
    let b_admin = format!("http://127.0.0.1:{}", b.admin);
    assert_eq!(act(&b_admin, "release", on_b[0].0).await, "released");
    assert_eq!(act(&a_admin, "release", on_b[0].0).await, "unknown");
    final_message(&mut c, &rid(counters[1]), "I0").await;
    assert_eq!(listed(a.admin).await, [on_b[1].clone()]);
    // A dies with the other one quarantined; B deletes it, and its E67 arrives.
    drop(a); // SIGKILL
    assert_eq!(act(&b_admin, "delete", on_b[1].0).await, "deleted");
    final_message(&mut c, &rid(counters[2]), "E67").await;
    assert!(listed(b.admin).await.is_empty());
}

/// The supplier's request `xml`, XML-signed, posted to `path` of `instance`: the answer.
async fn signed_post(c: &Fixture, instance: &Instance, path: &str, xml: &str) -> String {
    let user = c.certs.join("users/supplier");
    let body = dccgw::tools::sign(
        xml.as_bytes(),
        &user.join("xml-sign.key.pem"),
        &user.join("xml-sign.pem"),
        None,
    )
    .unwrap();
    let url = format!("https://localhost:{}{path}", instance.port);
    support::post(&c.client, &url, body).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_command_issued_through_one_instance_is_signed_back_through_another() {
    let Some(mut c) = Fixture::start(200).await else {
        return;
    };
    let a = instance(&c.config, "a").await;
    let b = instance(&c.config, "b").await;
    let n = counter_now();
    let transform = dccgw::demo::example_transform_xml(SUPPLIER, DEMO_ESME, n);
    let answer = signed_post(&c, &a, TRANSFORM, &transform).await;
    assert_eq!(code(&answer), "I0", "{answer}");
    // SIGKILL, and a restart: A reads the pre-command back from PostgreSQL.
    drop(a);
    let a = instance(&c.config, "a").await;
    // Signed with the supplier's Digital Signing key and sent through B: accepted, and the
    // device's Service Response arrives.
    let back = signed_back(&c.certs, "supplier", &answer, 5);
    let through_b = signed_post(&c, &b, SEND, &back).await;
    assert_eq!(code(&through_b), "I99", "{through_b}");
    final_message(&mut c, &format!("{SUPPLIER}:{DEMO_ESME}:{n}"), "I0").await;
    // Used once across the cluster: A, which still holds it as issued, is refused the spend.
    let again = signed_post(&c, &a, SEND, &back).await;
    assert_eq!(code(&again), "E57", "{again}");
}
