//! The receiver and the HTTPS transport against each other over real mTLS on loopback.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Receiver, ReceiverConfig};
use crate::domain::{Eui64, RequestId, DCC_ID};
use crate::outbox::{
    HttpsTransport, Message, MessageId, OutboundKind, Transport, TransportConfig, TransportError,
};
use crate::pki::{self, DevPki};

const SUPPLIER: Eui64 = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, 0]);
const METER: Eui64 = Eui64::from_bytes([0, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0]);

fn fresh_pki() -> (tempfile::TempDir, DevPki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::init(&dir.path().join("pki"), time::OffsetDateTime::now_utc()).unwrap();
    (dir, pki)
}

fn receiver_config(pki: &DevPki) -> ReceiverConfig {
    ReceiverConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        pki.server.cert.clone(),
        pki.server.key.clone(),
        vec![pki.ca.cert.clone()],
    )
}

/// The gateway's transport: the DCC's access-control broker certificate, trusting the dev CA.
fn dcc_transport(pki: &DevPki) -> HttpsTransport {
    HttpsTransport::new(&TransportConfig::new(
        pki.dcc_acb.cert.clone(),
        pki.dcc_acb.key.clone(),
        vec![pki.ca.cert.clone()],
    ))
    .unwrap()
}

fn response(counter: u64) -> Message {
    let request_id = RequestId {
        originator: SUPPLIER,
        target: METER,
        counter,
    };
    let body = format!(
        "<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.1\">\
         <sr:Header><sr:RequestID>{request_id}</sr:RequestID><sr:ResponseCode>I0</sr:ResponseCode>\
         </sr:Header><sr:Body/></sr:Response>"
    );
    Message {
        id: MessageId::new(0xABC0 + counter),
        user: SUPPLIER,
        kind: OutboundKind::Response {
            request_id,
            code: crate::domain::ResponseCode::I0,
        },
        body: body.into(),
        raised_at: 0,
        held_since: 0,
    }
}

fn url(r: &Receiver) -> String {
    format!("https://localhost:{}/rrs", r.local_addr().port())
}

#[tokio::test]
async fn a_delivered_message_is_written_whole_and_handed_on() {
    let (tmp, pki) = fresh_pki();
    let out = tmp.path().join("received");
    let (tx, mut rx) = mpsc::channel(4);
    let config = ReceiverConfig {
        dir: Some(out.clone()),
        ..receiver_config(&pki)
    };
    let receiver = Receiver::start(config, Some(tx)).await.unwrap();
    let transport = dcc_transport(&pki);
    let m = response(17);
    transport.post(&url(&receiver), &m).await.unwrap();
    // A duplicate lands on the same file.
    transport.post(&url(&receiver), &m).await.unwrap();

    let got = rx.recv().await.unwrap();
    assert_eq!(got.peer, DCC_ID);
    assert_eq!(got.message_id.as_deref(), Some("000000000000ABD1"));
    assert_eq!(got.body, m.body);
    let stem = "90-B3-D5-1F-30-01-00-00_00-DB-12-34-56-78-90-A0_17.I0";
    assert_eq!(got.stem, stem);
    let file = out.join(format!("{stem}.xml"));
    assert_eq!(got.file.as_deref(), Some(file.as_path()));
    assert_eq!(std::fs::read(&file).unwrap(), m.body.as_ref());
    let names: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(names.len(), 1, "no temp files left, one file per message");
    receiver.stop().await;
}

#[tokio::test]
async fn only_the_dcc_role_may_deliver() {
    let (_tmp, pki) = fresh_pki();
    let (tx, mut rx) = mpsc::channel(4);
    let receiver = Receiver::start(receiver_config(&pki), Some(tx))
        .await
        .unwrap();
    let supplier = pki.user("supplier").unwrap();
    let impostor = HttpsTransport::new(&TransportConfig::new(
        supplier.tls.cert.clone(),
        supplier.tls.key.clone(),
        vec![pki.ca.cert.clone()],
    ))
    .unwrap();
    let result = impostor.post(&url(&receiver), &response(1)).await;
    assert!(result.is_err(), "{result:?}");
    receiver.stop().await;
    assert!(rx.recv().await.is_none(), "nothing was handed on");
}

#[tokio::test]
async fn an_endpoint_outside_the_trust_anchors_is_refused() {
    let (_tmp, pki) = fresh_pki();
    let (_other_tmp, other) = fresh_pki();
    let receiver = Receiver::start(receiver_config(&pki), None).await.unwrap();
    // The gateway trusts another CA than the one that issued the endpoint's certificate.
    let transport = HttpsTransport::new(&TransportConfig::new(
        pki.dcc_acb.cert.clone(),
        pki.dcc_acb.key.clone(),
        vec![other.ca.cert.clone()],
    ))
    .unwrap();
    let result = transport.post(&url(&receiver), &response(1)).await;
    assert!(
        matches!(result, Err(TransportError::Connect(_))),
        "{result:?}"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn bad_urls_bad_bodies_and_stopped_endpoints_fail_the_attempt() {
    let (_tmp, pki) = fresh_pki();
    let receiver = Receiver::start(receiver_config(&pki), None).await.unwrap();
    let transport = Arc::new(dcc_transport(&pki));
    for bad in ["http://localhost/rrs", "not a url", "https:///x"] {
        let r = transport.post(bad, &response(1)).await;
        assert!(
            matches!(r, Err(TransportError::BadEndpoint { .. })),
            "{bad}: {r:?}"
        );
    }
    let junk = Message {
        body: bytes::Bytes::from_static(b"<!DOCTYPE x><x/>"),
        ..response(2)
    };
    let r = transport.post(&url(&receiver), &junk).await;
    assert!(matches!(r, Err(TransportError::Status(400))), "{r:?}");
    let u = url(&receiver);
    transport.post(&u, &response(3)).await.unwrap();
    receiver.stop().await;
    let r = transport.post(&u, &response(4)).await;
    assert!(r.is_err(), "a stopped receiver accepted a message");
}
