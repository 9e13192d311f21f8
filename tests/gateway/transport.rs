//! The mTLS front door: who may connect, HTTP/2, idle and handshake bounds, graceful shutdown.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use dccgw::domain::SmkiRole;
use dccgw::pki::{Ca, LeafSpec, Usage, Validity};

use crate::support::{self, client_with, element, TestGateway};

const READ_REQUEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:7</sr:RequestID><sr:CommandVariant>1</sr:CommandVariant><sr:ServiceReference>4.1</sr:ServiceReference><sr:ServiceReferenceVariant>4.1.1</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:ReadInstantaneousImportRegisters/></sr:Body></sr:Request>"#;

fn identity(issued: &dccgw::pki::Issued) -> reqwest::Identity {
    let pem = format!("{}{}", issued.cert_pem, issued.key_pkcs8_pem);
    reqwest::Identity::from_pem(pem.as_bytes()).unwrap()
}

fn tls_client_spec(validity: Validity) -> LeafSpec {
    LeafSpec {
        common_name: Some("test client".into()),
        role: SmkiRole::Supplier,
        user_id: Some("90-B3-D5-1F-30-01-00-00".parse().unwrap()),
        dns_names: vec![],
        ip_addresses: vec![],
        usage: Usage::TlsClient,
        validity,
    }
}

async fn send(
    gw: &TestGateway,
    client: &reqwest::Client,
) -> Result<reqwest::Response, reqwest::Error> {
    client
        .post(format!("{}/api/v1/serviceS", gw.base()))
        .header("content-type", "application/xml")
        .body(gw.signed("supplier", READ_REQUEST.as_bytes()))
        .send()
        .await
}

/// A demo User's certificate gets in, over HTTP/2 by ALPN; no certificate, one from another CA,
/// or an expired one does not, and each is counted with its reason.
#[tokio::test]
async fn only_trusted_current_client_certificates_get_in() {
    let gw = support::start("").await;
    let ok = send(&gw, &gw.client("supplier")).await.unwrap();
    assert_eq!(ok.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        element(&ok.text().await.unwrap(), "ResponseCode"),
        Some("I99")
    );

    let now = OffsetDateTime::now_utc();
    let none = client_with(&gw.certs(), None);
    assert!(send(&gw, &none).await.is_err(), "no client certificate");

    let foreign = Ca::generate("foreign CA", Validity::days_from(now, 30)).unwrap();
    let stranger = foreign
        .issue(&tls_client_spec(Validity::days_from(now, 30)))
        .unwrap();
    let stranger = client_with(&gw.certs(), Some(identity(&stranger)));
    assert!(send(&gw, &stranger).await.is_err(), "another CA");

    let ca = Ca::load(&gw.certs().join("ca.pem"), &gw.certs().join("ca.key.pem")).unwrap();
    let expired = Validity {
        not_before: now - time::Duration::days(30),
        not_after: now - time::Duration::days(1),
    };
    let expired = ca.issue(&tls_client_spec(expired)).unwrap();
    let expired = client_with(&gw.certs(), Some(identity(&expired)));
    assert!(send(&gw, &expired).await.is_err(), "expired");

    let metrics = gw.metrics().await;
    for reason in [
        "no_client_certificate",
        "untrusted_certificate",
        "expired_certificate",
    ] {
        let line = format!(r#"dccgw_tls_handshake_failures_total{{reason="{reason}"}} 1"#);
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
    gw.running.shutdown().await;
}

/// A client that connects and never speaks TLS is dropped at the handshake bound, and one that
/// goes quiet after a request is dropped at the idle bound.
#[tokio::test]
async fn silent_connections_are_closed() {
    let gw = support::start("[limits]\nhandshake_timeout_ms = 200\nidle_timeout_ms = 300\n").await;
    let mut tcp = tokio::net::TcpStream::connect(gw.running.addr)
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "still open: {read:?}"
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"dccgw_tls_handshake_failures_total{reason="timeout"} 1"#),
        "{metrics}"
    );

    let client = gw.client("supplier");
    send(&gw, &client).await.unwrap();
    let gauge = "dccgw_connections_open 1";
    assert!(gw.metrics().await.contains(gauge));
    let mut closed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if gw.metrics().await.contains("dccgw_connections_open 0") {
            closed = true;
            break;
        }
    }
    assert!(closed, "idle connection still open");
    gw.running.shutdown().await;
}

/// On shutdown the gateway stops accepting, but a request already in flight is answered.
#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let gw = support::start("").await;
    let client = gw.client("supplier");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let url = format!("{}/api/v1/serviceS", gw.base());
    let in_flight = tokio::spawn(async move {
        client
            .post(url)
            .header("content-type", "application/xml")
            .body(body)
            .send()
            .await
    });
    let signed = gw.signed("supplier", READ_REQUEST.as_bytes());
    let (head, tail) = signed.split_at(100);
    tx.send(Ok(head.to_vec())).await.unwrap();
    // Let the request reach the server before shutting down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let addr = gw.running.addr;
    let stopping = tokio::spawn(gw.running.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "still accepting during shutdown");
    tx.send(Ok(tail.to_vec())).await.unwrap();
    drop(tx);
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(
        element(&answer.text().await.unwrap(), "ResponseCode"),
        Some("I99")
    );
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
}

fn tokio_stream<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// An HTTP/1.1 client works too (ALPN falls back), with a raw TLS writer to prove it.
#[tokio::test]
async fn http1_clients_are_served() {
    let gw = support::start("").await;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(gw.certs().join("ca.pem")).unwrap())
                .unwrap(),
        )
        .identity(
            reqwest::Identity::from_pem(
                &std::fs::read(gw.certs().join("users/supplier/client.pem")).unwrap(),
            )
            .unwrap(),
        )
        .http1_only()
        .build()
        .unwrap();
    let r = send(&gw, &client).await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        element(&r.text().await.unwrap(), "ResponseCode"),
        Some("I99")
    );
    let _ = tokio::net::TcpStream::connect(gw.running.addr)
        .await
        .unwrap()
        .shutdown()
        .await;
    gw.running.shutdown().await;
}
