//! Issue 5 end to end: after a change of supplier applied live through the admin API, the
//! meter's supplier-family alerts go to the new supplier and not the old one, and the change's
//! own DCC Alert (`N3`) reaches the outgoing and the incoming supplier, and no one else.

use std::collections::BTreeSet;
use std::time::Duration;

use dccgw::config::Config;
use dccgw::demo::{self, DEMO_ESME, DEMO_MPAN};
use dccgw::receiver::Received;
use dccgw::server;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::round_trip::{next, pki_and_receiver, routed_dir_with, SUPPLIER};
use super::support::{self, set, TestGateway};

const SUPPLIER2: &str = "90-B3-D5-1F-30-03-00-00";
const TOKEN: &str = "change-of-supplier-token";

/// Every read makes the meter raise a supplier-family alert (8F1C) just after its answer.
const HUB: &str = "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n\
                   alerts_after = [{ code = 0x8F1C, delay_ms = 10 }]\n";

/// Sends the example read of the demo electricity meter as the demo User `name` (`user`);
/// returns the synchronous answer's code.
async fn read(gw: &TestGateway, name: &str, user: &str, counter: u64) -> String {
    let xml = demo::example_request_xml(user, DEMO_ESME, counter);
    let body = gw.signed(name, xml.as_bytes());
    let url = format!("{}/api/v1/serviceS", gw.base());
    let (_, answer) = support::post(&gw.client(name), &url, body).await;
    support::element(&answer, "ResponseCode")
        .unwrap_or_default()
        .to_owned()
}

/// Whom a delivered message is for, and its code: the alert code for an alert (the User from
/// its `ResponseID`, originator`:`User`:`counter), the response code for a Service Response
/// (the User from its RequestID).
fn addressed(m: &Received) -> (String, String) {
    let d = &m.description;
    let part = |id: &Option<String>, n: usize| {
        id.as_deref()
            .and_then(|id| id.split(':').nth(n))
            .unwrap_or_default()
            .to_owned()
    };
    match &d.alert_code {
        Some(code) => (part(&d.response_id, 1), code.clone()),
        None => (
            part(&d.request_id, 0),
            d.response_code.clone().unwrap_or_default(),
        ),
    }
}

/// The next `n` messages delivered, as (User, code), and their bodies.
async fn messages(
    rx: &mut mpsc::Receiver<Received>,
    n: usize,
) -> (BTreeSet<(String, String)>, Vec<String>) {
    let (mut got, mut bodies) = (BTreeSet::new(), Vec::new());
    for _ in 0..n {
        let m = next(rx).await;
        assert!(got.insert(addressed(&m)), "a second copy of {m:?}");
        bodies.push(String::from_utf8_lossy(&m.body).into_owned());
    }
    (got, bodies)
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_change_of_supplier_alerts_follow_the_new_supplier() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let (dir, path) = routed_dir_with(
        pki.path(),
        rx_server.local_addr().port(),
        HUB,
        "",
        "[admin]\ntoken_file = \"admin.token\"\n",
    );
    std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
    let config = Config::load(&path, Vec::new()).unwrap();
    let running = server::start(&config).await.unwrap();
    let gw = TestGateway { running, dir };

    // Before: the meter's alert goes to its supplier, with the read's answer.
    assert_eq!(read(&gw, "supplier", SUPPLIER, 1).await, "I99");
    let (got, _) = messages(&mut rx, 2).await;
    assert_eq!(got, set(&[(SUPPLIER, "I0"), (SUPPLIER, "8F1C")]));

    // The change of supplier, effective now, applied live.
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let change = format!(
        r#"[{{"change":"end_registration","mpxn":"{DEMO_MPAN}","role":"IS","user":"{SUPPLIER}","at":{now}}},
            {{"change":"add_registration","mpxn":"{DEMO_MPAN}","registration":{{"role":"IS","user":"{SUPPLIER2}","from":{now},"to":null}}}}]"#
    );
    let r = reqwest::Client::new()
        .post(format!("{}/admin/v1/registry/changes", gw.admin()))
        .bearer_auth(TOKEN)
        .body(change)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());

    // Its DCC Alert reaches the outgoing and the incoming supplier, naming the meter and its
    // meter point.
    let (got, bodies) = messages(&mut rx, 2).await;
    assert_eq!(got, set(&[(SUPPLIER, "N3"), (SUPPLIER2, "N3")]));
    for body in &bodies {
        assert!(body.contains(DEMO_ESME), "{body}");
        assert!(body.contains(DEMO_MPAN), "{body}");
    }

    // After: the new supplier reads the meter; the alert that follows goes to it.
    assert_eq!(read(&gw, "supplier", SUPPLIER, 2).await, "E4");
    assert_eq!(read(&gw, "supplier2", SUPPLIER2, 1).await, "I99");
    let (got, _) = messages(&mut rx, 2).await;
    assert_eq!(got, set(&[(SUPPLIER2, "I0"), (SUPPLIER2, "8F1C")]));

    // And nothing more: no copy for the old supplier, nor for anyone else.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        panic!("an unexpected message: {:?}", addressed(&extra));
    }
    gw.running.shutdown().await;
    rx_server.stop().await;
}
