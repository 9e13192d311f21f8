//! Issue 5 end to end: a permitted device request goes, signed, to the simulated comms-hub
//! network; the device's answer comes back to the User's Receive Response Service (a real mTLS
//! server here) as a signed Service Response; alerts reach exactly the Users entitled to them.

use std::path::Path;
use std::time::Duration;

use dccgw::config::Config;
use dccgw::demo::{self, DEMO_ESME, DEMO_USERS};
use dccgw::receiver::{Received, Receiver, ReceiverConfig};
use dccgw::server;
use tokio::sync::mpsc;

use super::support::{self, TestGateway};

pub const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
const NETWORK_OPERATOR: &str = "90-B3-D5-1F-30-02-00-00";

/// The demo User 0 (the supplier) is the one `support` signs as.
fn supplier_name() -> &'static str {
    DEMO_USERS[0].0
}

/// A receiver for every demo User on one port, delivering to a channel.
pub async fn receiver(certs: &Path) -> (Receiver, mpsc::Receiver<Received>) {
    let (tx, rx) = mpsc::channel(256);
    let config = ReceiverConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        certs.join("server.pem"),
        certs.join("server.key.pem"),
        vec![certs.join("ca.pem")],
    );
    (Receiver::start(config, Some(tx)).await.unwrap(), rx)
}

/// A gateway with routing and delivery on, the simulator configured by `hub` (TOML) and
/// dispatch by `dispatch`; every User's response URL on `port`. It uses the PKI in `pki` (the
/// receiver's), so each side trusts the other.
async fn gateway(pki: &Path, port: u16, hub: &str, dispatch: &str) -> TestGateway {
    let (dir, path) = routed_dir(pki, port, hub, dispatch);
    let config = Config::load(&path, Vec::new()).unwrap();
    let running = server::start(&config).await.unwrap();
    TestGateway { running, dir }
}

/// The directory and configuration [`gateway`] starts from.
pub fn routed_dir(
    pki: &Path,
    port: u16,
    hub: &str,
    dispatch: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    routed_dir_with(pki, port, hub, dispatch, "")
}

/// As [`routed_dir`], with `tail` appended inside `[delivery.outbox]` (more outbox keys, then
/// any further tables).
pub fn routed_dir_with(
    pki: &Path,
    port: u16,
    hub: &str,
    dispatch: &str,
    tail: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let extra = format!(
        "[routing]\nacb_key = \"certs/dcc-acb.key.pem\"\nacb_cert = \"certs/dcc-acb.pem\"\n\
         hub = \"in_process\"\nhub_config = \"hub.toml\"\n\
         [routing.dispatch]\n{dispatch}\n\
         [delivery.transport]\nclient_cert = \"certs/dcc-acb.pem\"\nclient_key = \"certs/dcc-acb.key.pem\"\n\
         trust_anchors = [\"certs/ca.pem\"]\n\
         [delivery.outbox]\nfirst_retry_ms = 200\nmax_backoff_ms = 1000\n{tail}"
    );
    let hub = hub.to_owned();
    let pki = pki.to_owned();
    let (dir, path) = support::prepare_dir(&extra, move |dir| {
        copy_dir(&pki, &dir.join("certs"));
        for (name, ..) in DEMO_USERS {
            let from = pki.join("users").join(name).join("xml-sign.pem");
            std::fs::copy(from, dir.join("user-certs").join(format!("{name}.pem"))).unwrap();
        }
        let url = format!("https://localhost:{port}/duis");
        demo::write_registers(dir, Some(&url)).unwrap();
        std::fs::write(dir.join("hub.toml"), hub).unwrap();
    });
    (dir, path)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Sends the example 4.1.1 read (Command Variant 1) to the demo electricity meter; returns its
/// RequestID once the gateway acknowledged it with I99.
pub async fn send_read(gw: &TestGateway, counter: u64) -> String {
    let xml = demo::example_request_xml(SUPPLIER, DEMO_ESME, counter);
    let body = gw.signed(supplier_name(), xml.as_bytes());
    let url = format!("{}/api/v1/serviceS", gw.base());
    let (status, answer) = support::post(&gw.client(supplier_name()), &url, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        support::element(&answer, "ResponseCode"),
        Some("I99"),
        "{answer}"
    );
    format!("{SUPPLIER}:{DEMO_ESME}:{counter}")
}

/// The next message delivered, within a generous bound (the test fails, not hangs).
pub async fn next(rx: &mut mpsc::Receiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a message within 60 s")
        .expect("the receiver is running")
}

/// A fresh PKI and a receiver that trusts it (the gateways of a test share both).
pub async fn pki_and_receiver() -> (tempfile::TempDir, Receiver, mpsc::Receiver<Received>) {
    let certs_dir = tempfile::tempdir().unwrap();
    dccgw::pki::init(certs_dir.path(), time::OffsetDateTime::now_utc()).unwrap();
    let (rx_server, rx) = receiver(certs_dir.path()).await;
    (certs_dir, rx_server, rx)
}

/// Sends read number `counter` and waits for its Service Response, which must carry `code`.
async fn read_answered(
    gw: &TestGateway,
    rx: &mut mpsc::Receiver<Received>,
    counter: u64,
    code: &str,
) -> (String, Received) {
    let request_id = send_read(gw, counter).await;
    let got = next(rx).await;
    assert_eq!(got.description.request_id.as_deref(), Some(&request_id[..]));
    assert_eq!(got.description.response_code.as_deref(), Some(code));
    (request_id, got)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_reaches_the_device_and_its_signed_response_reaches_the_user() {
    let (certs_dir, rx_server, mut rx) = pki_and_receiver().await;
    let gw = gateway(
        certs_dir.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 50 }\n",
        "",
    )
    .await;
    let (request_id, got) = read_answered(&gw, &mut rx, 1, "I0").await;
    let xml = std::str::from_utf8(&got.body).unwrap();
    assert!(support::element(xml, "GBCSPayload").is_some(), "{xml}");
    // Independent oracle: xmlsec1 verifies the gateway's signature with the DCC's certificate.
    support::xmlsec1_verifies(&gw, &got.body);
    // The audit trail holds the delivery (what `dccgw report performance` counts).
    let delivered = delivered_record(&gw, &request_id).await;
    assert_eq!(delivered.attempt, 1);
    assert_eq!(delivered.user.to_string(), SUPPLIER);
    assert!(delivered.at_ms >= delivered.raised_at_ms, "{delivered:?}");
    assert_eq!(
        delivered.message,
        dccgw::audit::Message::Response {
            request_id: request_id.parse().unwrap(),
            code: "I0".into()
        }
    );
    rx_server.stop().await;
}

/// The Delivered audit record for the response to `request_id`, once the writer has it on disk
/// (it is queued after the 200 the receiver sent, so the test polls, within a bound).
pub async fn delivered_record(gw: &TestGateway, request_id: &str) -> dccgw::audit::DeliveryRecord {
    use dccgw::audit::{read_trail, AuditEvent, DeliveryOutcome, Message};
    let dir = gw.running.gateway.audit.dir().to_owned();
    for _ in 0..600 {
        let mut found = None;
        read_trail(&dir, |_, e| match e {
            AuditEvent::Delivery(d)
                if d.outcome == DeliveryOutcome::Delivered
                    && matches!(&d.message, Message::Response { request_id: r, .. } if r.to_string() == request_id) =>
            {
                found = Some(d)
            }
            _ => {}
        })
        .unwrap();
        if let Some(d) = found {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no Delivered audit record for {request_id} within 60 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_device_gives_e20_and_a_silent_one_e21() {
    let (certs_dir, rx_server, mut rx) = pki_and_receiver().await;
    // One gateway per case: first every device is unreachable, then every device is silent
    // and the dispatch timeout short.
    let gw = gateway(
        certs_dir.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\nunreachable = 1.0\n",
        "",
    )
    .await;
    read_answered(&gw, &mut rx, 1, "E20").await;
    gw.running.shutdown().await;

    let gw = gateway(
        certs_dir.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\nno_answer = 1.0\n",
        "timeout_ms = 300",
    )
    .await;
    read_answered(&gw, &mut rx, 2, "E21").await;
    rx_server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn supplier_alerts_reach_only_the_supplier_and_network_alerts_only_the_network_operator() {
    let (certs_dir, rx_server, mut rx) = pki_and_receiver().await;
    // The read makes the meter raise a supplier-family alert (8F1C) and a network-operator
    // one (8002) after its answer.
    let gw = gateway(
        certs_dir.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n\
         alerts_after = [{ code = 0x8F1C, delay_ms = 10 }, { code = 0x8002, delay_ms = 20 }]\n",
        "",
    )
    .await;
    send_read(&gw, 1).await;
    // Two alerts and the read's own Service Response, in whatever order the outbox delivers them.
    let (mut alerts, mut responses) = (Vec::new(), 0);
    while alerts.len() < 2 || responses < 1 {
        let got = next(&mut rx).await;
        match got.description.alert_code.clone() {
            Some(code) => alerts.push((
                code,
                got.description.response_id.clone().unwrap_or_default(),
            )),
            None => responses += 1,
        }
    }
    assert_eq!(responses, 1, "one Service Response for the read");
    alerts.sort();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let (first, second) = (&alerts[0], &alerts[1]);
    assert_eq!(first.0, "8002");
    assert!(first.1.contains(NETWORK_OPERATOR), "{alerts:?}");
    assert_eq!(second.0, "8F1C");
    assert!(second.1.contains(SUPPLIER), "{alerts:?}");
    // And no third copy of an alert (nor a second response) arrives for anyone.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .is_err(),
        "only one copy of each alert"
    );
    rx_server.stop().await;
}

#[tokio::test]
async fn start_refuses_a_routing_configuration_it_cannot_use_and_says_which_part() {
    use dccgw::server::StartError;
    let start = |path: std::path::PathBuf| async move {
        let config = Config::load(&path, Vec::new()).unwrap();
        server::start(&config).await.err()
    };
    // Routing without delivery: responses would have nowhere to go; the configuration says so.
    let (_dir, path) = support::prepare_dir(
        "[routing]\nacb_key = \"certs/dcc-acb.key.pem\"\nacb_cert = \"certs/dcc-acb.pem\"\n",
        |_| {},
    );
    // The file's error names the line and column and says what is missing.
    let e = Config::load(&path, Vec::new()).unwrap_err();
    let cause = std::error::Error::source(&e).map(ToString::to_string);
    assert!(
        e.to_string().contains("missing field `delivery`")
            || cause.as_deref().is_some_and(|c| c.contains("delivery")),
        "{e}: {cause:?}"
    );
    // A hub configuration file that is not there: named, with the I/O error as the cause.
    let pki = tempfile::tempdir().unwrap();
    dccgw::pki::init(pki.path(), time::OffsetDateTime::now_utc()).unwrap();
    let (dir, path) = routed_dir(pki.path(), 1, "", "");
    std::fs::remove_file(dir.path().join("hub.toml")).unwrap();
    match start(path).await {
        Some(StartError::HubConfigRead { path, source }) => {
            assert!(path.ends_with("hub.toml"), "{}", path.display());
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        e => panic!("{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dcc_alert_that_concerns_nobody_is_counted_and_its_batch_is_still_marked_done() {
    use dccgw::domain::{DeviceStatus, UserRole};
    use dccgw::registry::Change;
    let (certs_dir, rx_server, _rx) = pki_and_receiver().await;
    let gw = gateway(certs_dir.path(), rx_server.local_addr().port(), "", "").await;
    // Nobody is registered for the meter point any more when its meter is suspended.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mpxn = demo::DEMO_MPAN.parse().unwrap();
    let end = |role, user: &str| Change::EndRegistration {
        mpxn,
        role,
        user: user.parse().unwrap(),
        at: now,
    };
    let batch = [
        end(UserRole::ImportSupplier, SUPPLIER),
        end(UserRole::ElectricityDistributor, NETWORK_OPERATOR),
        Change::SetDeviceStatus {
            device: DEMO_ESME.parse().unwrap(),
            status: DeviceStatus::Suspended,
        },
    ];
    gw.running
        .gateway
        .state
        .apply_changes(&batch)
        .await
        .unwrap();
    let want = [
        r#"dccgw_alerts_unrouted_total{kind="dcc"} 1"#,
        "dccgw_alerts_owed_change_batches 0",
    ];
    for _ in 0..600 {
        let text = gw.metrics().await;
        if want.iter().all(|w| text.lines().any(|l| l == *w)) {
            rx_server.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{want:?} not reported within 60 s:\n{}", gw.metrics().await);
}
