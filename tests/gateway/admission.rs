//! Admission control over mTLS: at a fixed limit of N requests in flight the next bulk read is
//! shed at once with a signed, schema-valid `E60` (503, `Retry-After`) while a critical request
//! is still admitted; a User over its own bounds gets `E61` (429) and other Users do not notice.
//! Requests "in flight" are held by taking the gateway's own admission tickets, as a request
//! being processed holds one. A shed answer leaves while the main runtime is held busy (the
//! DUIS port's front lane).

use dccgw::demo::{example_request_xml, example_transform_xml, DEMO_ESME};
use dccgw::domain::{Srv, UserId};
use dccgw::duis::testing::DuisXsd;

use super::critical::{code, counter, SEND, TRANSFORM};
use super::support::{self, xmlsec1_verifies, TestGateway};

const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
const NETWORK_OPERATOR: &str = "90-B3-D5-1F-30-02-00-00";

/// Sends `xml`, signed by `user`, to `path`: status, `Retry-After`, answer.
async fn send(
    gw: &TestGateway,
    user: &str,
    path: &str,
    xml: &str,
) -> (u16, Option<String>, String) {
    let body = gw.signed(user, xml.as_bytes());
    let r = gw
        .client(user)
        .post(format!("{}{path}", gw.base()))
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.text().await.unwrap())
}

fn read(originator: &str) -> String {
    example_request_xml(originator, DEMO_ESME, counter())
}

fn id(s: &str) -> UserId {
    s.parse().unwrap()
}

fn srv(s: &str) -> Srv {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_limit_a_bulk_read_is_shed_at_once_and_a_critical_request_admitted() {
    let n = 3;
    let gw = support::start(&format!(
        "[admission]\nadaptive = false\ninitial_limit = {n}\nbulk_share = 1.0\n"
    ))
    .await;
    let gate = &gw.running.gateway.admission;
    // N bulk reads in flight, from another User than the one whose request is shed.
    let held: Vec<_> = (0..n)
        .map(|_| gate.admit(id(NETWORK_OPERATOR), &srv("4.1.1")).unwrap())
        .collect();
    assert_eq!(gate.load(), (n, n));

    let (status, retry, answer) = send(&gw, "supplier", SEND, &read(SUPPLIER)).await;
    assert_eq!((status, code(&answer)), (503, "E60"), "{answer}");
    assert_eq!(retry.as_deref(), Some("1"));
    xmlsec1_verifies(&gw, answer.as_bytes());
    if let Some(xsd) = DuisXsd::prepare() {
        xsd.validate(&answer).unwrap();
    }

    // A critical command (7.1 Enable Supply's Transform) is admitted past the limit.
    let transform = example_transform_xml(SUPPLIER, DEMO_ESME, counter());
    let (status, retry, answer) = send(&gw, "supplier", TRANSFORM, &transform).await;
    assert_eq!((status, code(&answer)), (200, "I0"), "{answer}");
    assert_eq!(retry, None);

    // The shed request took nothing: once one in flight is answered, the next read goes on.
    drop(held);
    let (status, _, answer) = send(&gw, "supplier", SEND, &read(SUPPLIER)).await;
    assert_eq!((status, code(&answer)), (200, "I99"), "{answer}");

    let metrics = gw.metrics().await;
    for line in [
        "dccgw_admission_decisions_total{class=\"bulk\",decision=\"overload\"} 1",
        "dccgw_admission_decisions_total{class=\"critical\",decision=\"admitted\"} 1",
        "dccgw_request_refusals_total{reason=\"shed_overload\"} 1",
        "dccgw_admission_limit 3",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_own_bounds_refuse_that_user_only() {
    let gw = support::start(
        "[admission]\nper_user_concurrency = 2\nper_user_rate = 0.001\nper_user_burst = 4\n",
    )
    .await;
    let gate = &gw.running.gateway.admission;
    // The supplier has two requests in flight (and has spent two of its four tokens).
    let held: Vec<_> = (0..2)
        .map(|_| gate.admit(id(SUPPLIER), &srv("4.1.1")).unwrap())
        .collect();
    let (status, retry, answer) = send(&gw, "supplier", SEND, &read(SUPPLIER)).await;
    assert_eq!((status, code(&answer)), (429, "E61"), "{answer}");
    assert_eq!(retry.as_deref(), Some("1"));
    xmlsec1_verifies(&gw, answer.as_bytes());
    let (status, _, answer) = send(&gw, "network-operator", SEND, &read(NETWORK_OPERATOR)).await;
    assert_eq!(
        (status, code(&answer)),
        (200, "I99"),
        "another User: {answer}"
    );

    // Its slots back, the supplier has two tokens left, then none (one per 1 000 s).
    drop(held);
    for _ in 0..2 {
        let (status, _, answer) = send(&gw, "supplier", SEND, &read(SUPPLIER)).await;
        assert_eq!((status, code(&answer)), (200, "I99"), "{answer}");
    }
    let (status, _, answer) = send(&gw, "supplier", SEND, &read(SUPPLIER)).await;
    assert_eq!((status, code(&answer)), (429, "E61"), "{answer}");
    let (status, _, answer) = send(&gw, "network-operator", SEND, &read(NETWORK_OPERATOR)).await;
    assert_eq!(
        (status, code(&answer)),
        (200, "I99"),
        "another User: {answer}"
    );

    let metrics = gw.metrics().await;
    for line in [
        "dccgw_admission_decisions_total{class=\"bulk\",decision=\"user_concurrency\"} 1",
        "dccgw_admission_decisions_total{class=\"bulk\",decision=\"user_rate\"} 1",
        "dccgw_request_refusals_total{reason=\"shed_user_rate\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

/// A request to shed is answered on the DUIS port's front lane: its `E60` leaves while every
/// worker of the main runtime, where admitted requests run, is held busy. (With
/// `front_threads = 0` the same request waits for the main runtime, and this test fails on its
/// bound.)
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_shed_answer_leaves_while_the_main_runtime_is_busy() {
    let gw = support::start("[admission]\nadaptive = false\ninitial_limit = 1\nbulk_share = 1.0\n")
        .await;
    let held = gw
        .running
        .gateway
        .admission
        .admit(id(NETWORK_OPERATOR), &srv("4.1.1"))
        .unwrap();
    let (url, client) = (format!("{}{SEND}", gw.base()), gw.client("supplier"));
    let body = gw.signed("supplier", read(SUPPLIER).as_bytes());

    // The main runtime's one worker, blocked until the answer is in.
    let (busy_tx, busy_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    tokio::spawn(async move {
        busy_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    busy_rx.recv().unwrap();

    // The client on a runtime of its own, since the main one is busy.
    let (answer_tx, answer_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = rt.block_on(async move {
            let r = client
                .post(url)
                .header("content-type", "application/xml")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
        let _ = answer_tx.send(answer);
    });
    let got = answer_rx.recv_timeout(std::time::Duration::from_secs(60));
    release_tx.send(()).unwrap();
    let (status, answer) = got.expect("no answer while the main runtime was busy");
    assert_eq!((status, code(&answer)), (503, "E60"), "{answer}");
    drop(held);
}
