//! Resources a peer controls: silent TCP connections cannot keep Users out (handshake slots and
//! a per-source bound apart from the connection slots); HTTP/2 PINGs do not keep an idle
//! connection open; request bodies in flight share one memory budget; silent connections to the
//! admin listener do not block its health endpoints; a namespace-heavy document is refused by
//! the parser before canonicalisation pays for it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use crate::support::{element, TestGateway};
use crate::{counter, read_with, start};

/// `n` TCP connections to `to` from the loopback address `from`, which never say a word.
async fn silent(from: &str, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(from.parse().unwrap(), 0))
            .unwrap();
        if let Ok(stream) = socket.connect(to).await {
            out.push(stream);
        }
    }
    out
}

async fn metric_value(gw: &TestGateway, prefix: &str) -> f64 {
    gw.metrics()
        .await
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

#[tokio::test]
async fn silent_connections_cannot_keep_users_out() {
    // Handshakes may take a minute: nothing times the silent ones out during the test.
    let gw = start("[limits]\nhandshake_timeout_ms = 60000\n", |_| {}).await;
    let held = silent("127.0.0.2", gw.running.addr, 1100).await;
    assert!(held.len() >= 1000, "only {} connections opened", held.len());
    // A User, from its own address, gets in and is answered while they are all still open.
    let user = gw.client("supplier");
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        read_with(&gw, &user, "supplier", counter()),
    )
    .await;
    assert_eq!(answered.map(|a| a.1).ok().as_deref(), Some("I99"));
    // One address held its bound; the rest were closed at once, and counted.
    let shed = metric_value(&gw, r#"dccgw_connections_shed_total{reason="per_source"}"#).await;
    assert!(shed >= 1000.0, "{shed}");
    drop(held);
    gw.running.shutdown().await;
}

#[tokio::test]
async fn http2_pings_do_not_keep_an_idle_connection_open() {
    let gw = start("[limits]\nidle_timeout_ms = 300\n", |_| {}).await;
    let pem = std::fs::read(gw.certs().join("users/supplier/client.pem")).unwrap();
    let ca = std::fs::read(gw.certs().join("ca.pem")).unwrap();
    let pinging = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .http2_prior_knowledge()
        .http2_keep_alive_interval(Duration::from_millis(50))
        .http2_keep_alive_while_idle(true)
        .build()
        .unwrap();
    assert_eq!(
        read_with(&gw, &pinging, "supplier", counter()).await.1,
        "I99"
    );
    assert_eq!(metric_value(&gw, "dccgw_connections_open").await, 1.0);
    let mut closed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if metric_value(&gw, "dccgw_connections_open").await == 0.0 {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a connection kept alive by PINGs alone is still open"
    );
    gw.running.shutdown().await;
}

#[tokio::test]
async fn request_bodies_in_flight_share_one_budget() {
    let gw = start(
        "[limits]\nmax_body_bytes = 1048576\nmax_body_bytes_in_flight = 2097152\n",
        |_| {},
    )
    .await;
    let url = format!("{}/api/v1/serviceS", gw.base());
    // Two bodies of 900 KB each arrive but never finish: 1.8 MB held.
    let mut senders = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..2 {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        tx.send(Ok(vec![b' '; 900 * 1024])).await.unwrap();
        let body =
            reqwest::Body::wrap_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let client = gw.client("supplier");
        let url = url.clone();
        pending.push(tokio::spawn(async move {
            client
                .post(url)
                .header("content-type", "application/xml")
                .body(body)
                .send()
                .await
        }));
        senders.push(tx);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A third, on its own connection, would pass the budget: refused, not read.
    let third = gw.client("supplier");
    let r = third
        .post(&url)
        .header("content-type", "application/xml")
        .body(vec![b' '; 900 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        element(&r.text().await.unwrap(), "ResponseCode"),
        Some("E60")
    );
    drop(senders);
    for p in pending {
        let _ = p.await;
    }
    // Once they are gone, the budget is free again.
    assert_eq!(read_with(&gw, &third, "supplier", counter()).await.1, "I99");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn silent_connections_do_not_block_the_health_endpoints() {
    let gw = start("", |_| {}).await;
    let held = silent("127.0.0.1", gw.running.admin_addr, 100).await;
    assert_eq!(held.len(), 100);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for path in ["/livez", "/readyz", "/metrics"] {
        let r = client
            .get(format!("{}{path}", gw.admin()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    drop(held);
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_namespace_heavy_document_is_refused_before_its_signature_is_canonicalised() {
    let gw = start("", |_| {}).await;
    // Thirty declarations on each of forty elements: every one in scope below it.
    let mut body = String::new();
    for i in 0..40 {
        let decls: String = (0..30)
            .map(|j| format!(" xmlns:n{i}x{j}=\"urn:n{j}\""))
            .collect();
        body.push_str(&format!("<sr:ReadInstantaneousImportRegisters{decls}>"));
    }
    body.push_str(&"</sr:ReadInstantaneousImportRegisters>".repeat(40));
    let xml = dccgw::demo::example_request_xml(crate::SUPPLIER, dccgw::demo::DEMO_ESME, counter())
        .replace("<sr:ReadInstantaneousImportRegisters/>", &body);
    let signed = gw.signed("supplier", xml.as_bytes());
    let url = format!("{}/api/v1/serviceS", gw.base());
    let (status, answer) = crate::support::post(&gw.client("supplier"), &url, signed).await;
    assert_eq!(
        (status, element(&answer, "ResponseCode")),
        (400, Some("E42"))
    );
    let refused = r#"dccgw_request_refusals_total{reason="xml_too_many_namespaces"} 1"#;
    assert!(gw.metrics().await.lines().any(|l| l == refused));
    gw.running.shutdown().await;
}
