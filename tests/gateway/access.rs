//! Access control end to end over mTLS: the registered supplier reads its meter, another
//! supplier gets E4; an admin change of supplier takes effect at once, durably, and survives a
//! restart; and the change API refuses callers without the token.

use dccgw::demo::{DEMO_ESME, DEMO_MPAN};
use time::OffsetDateTime;

use crate::support::{self, element, post, TestGateway};

const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
const SUPPLIER2: &str = "90-B3-D5-1F-30-03-00-00";
const OTHER_USER: &str = "00-DB-12-34-56-78-00-04";
const TOKEN: &str = "test-admin-token-3f9a";

/// 4.1.1 on `device` from `user` (a demo User name) as `originator`, with a fresh counter.
async fn read(gw: &TestGateway, user: &str, originator: &str, device: &str) -> String {
    let counter = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 / 1000;
    let xml = dccgw::demo::example_request_xml(originator, device, counter);
    let body = gw.signed(user, xml.as_bytes());
    let url = format!("{}/api/v1/serviceS", gw.base());
    let (_, answer) = post(&gw.client(user), &url, body).await;
    element(&answer, "ResponseCode")
        .unwrap_or("none")
        .to_owned()
}

/// A Command Variant 1 request of `srv` (body element `body`, empty) on `device`, sent to
/// serviceS; the answer's code.
async fn send(gw: &TestGateway, user: &str, originator: &str, device: &str, srv: &str) -> String {
    let entry = dccgw::catalogue::Catalogue::builtin()
        .get(&srv.parse().unwrap())
        .unwrap();
    let counter = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 / 1000;
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{originator}:{device}:{counter}</sr:RequestID><sr:CommandVariant>1</sr:CommandVariant><sr:ServiceReference>{}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:{}/></sr:Body></sr:Request>"#,
        entry.service_reference, entry.body_element
    );
    let body = gw.signed(user, xml.as_bytes());
    let url = format!("{}/api/v1/serviceS", gw.base());
    let (_, answer) = post(&gw.client(user), &url, body).await;
    element(&answer, "ResponseCode")
        .unwrap_or("none")
        .to_owned()
}

/// E11 over mTLS: a service sent to a device type it cannot target, even by the registered
/// supplier; and before E4, so an unregistered supplier learns the same.
#[tokio::test]
async fn wrong_device_types_get_e11() {
    let gw = support::start("").await;
    let (gsme, chf, hcalcs) = (
        "00-DB-12-34-56-78-90-A1",
        "00-DB-12-34-56-78-90-A2",
        "00-DB-12-34-56-78-90-A5",
    );
    // 4.1.3 is an electricity-only read (IS, ED; ESME).
    assert_eq!(
        send(&gw, "supplier", SUPPLIER, DEMO_ESME, "4.1.3").await,
        "I99"
    );
    assert_eq!(send(&gw, "supplier", SUPPLIER, gsme, "4.1.3").await, "E11");
    assert_eq!(
        send(&gw, "supplier2", SUPPLIER2, gsme, "4.1.3").await,
        "E11"
    );
    // Meter reads are not for the comms hub or an HCALCS; comms-hub services not for a meter.
    assert_eq!(read(&gw, "supplier", SUPPLIER, chf).await, "E11");
    assert_eq!(read(&gw, "supplier", SUPPLIER, hcalcs).await, "E11");
    assert_eq!(send(&gw, "supplier", SUPPLIER, chf, "6.30").await, "I99");
    assert_eq!(
        send(&gw, "supplier", SUPPLIER, DEMO_ESME, "6.30").await,
        "E11"
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"reason="device_type""#),
        "no device_type refusals counted"
    );
    gw.running.shutdown().await;
}

async fn change(gw: &TestGateway, token: Option<&str>, json: String) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/admin/v1/registry/changes", gw.admin()))
        .body(json);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn change_of_supplier_moves_access_at_once_and_for_good() {
    let gw = support::start_with("[admin]\ntoken_file = \"admin.token\"\n", |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
    })
    .await;
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "I99");
    assert_eq!(read(&gw, "supplier2", SUPPLIER2, DEMO_ESME).await, "E4");
    assert_eq!(read(&gw, "other-user", OTHER_USER, DEMO_ESME).await, "E2");
    assert_eq!(
        read(&gw, "supplier", SUPPLIER, "00-DB-12-34-56-78-90-FF").await,
        "E19"
    );

    let now = OffsetDateTime::now_utc().unix_timestamp();
    let cos = format!(
        r#"[{{"change":"end_registration","mpxn":"{DEMO_MPAN}","role":"IS","user":"{SUPPLIER}","at":{now}}},
            {{"change":"add_registration","mpxn":"{DEMO_MPAN}","registration":{{"role":"IS","user":"{SUPPLIER2}","from":{now},"to":null}}}}]"#
    );
    assert_eq!(change(&gw, None, cos.clone()).await.0, 401);
    assert_eq!(change(&gw, Some("wrong"), cos.clone()).await.0, 401);
    assert_eq!(change(&gw, Some(TOKEN), "not json".into()).await.0, 400);
    // A batch whose second change cannot apply changes nothing.
    let half_bad = format!(
        r#"[{{"change":"set_device_status","device":"{DEMO_ESME}","status":"Suspended"}},
            {{"change":"set_device_status","device":"00-DB-12-34-56-78-90-FF","status":"Suspended"}}]"#
    );
    assert_eq!(change(&gw, Some(TOKEN), half_bad).await.0, 409);
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "I99");

    let (status, text) = change(&gw, Some(TOKEN), cos).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(read(&gw, "supplier2", SUPPLIER2, DEMO_ESME).await, "I99");
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "E4");
    // The supplier keeps its gas meter: the change was to the electricity meter point only.
    assert_eq!(
        read(&gw, "supplier", SUPPLIER, "00-DB-12-34-56-78-90-A1").await,
        "I99"
    );

    let gw = gw.restart().await;
    assert_eq!(read(&gw, "supplier2", SUPPLIER2, DEMO_ESME).await, "I99");
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "E4");

    // A device status change: a suspended meter takes no reads (E5).
    let suspend = format!(
        r#"[{{"change":"set_device_status","device":"{DEMO_ESME}","status":"Suspended"}}]"#
    );
    assert_eq!(change(&gw, Some(TOKEN), suspend).await.0, 200);
    assert_eq!(read(&gw, "supplier2", SUPPLIER2, DEMO_ESME).await, "E5");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn the_change_api_is_off_without_a_token() {
    let gw = support::start("").await;
    let (status, _) = change(&gw, Some(TOKEN), "[]".into()).await;
    assert_eq!(status, 403);
    gw.running.shutdown().await;
}

/// A User suspended in the party register gets E3; one suspended only for another class of
/// service is still served.
#[tokio::test]
async fn suspended_users_get_e3() {
    let gw = support::start_with("", |dir| {
        let users = std::fs::read_to_string(dir.join("users.csv")).unwrap();
        let users = users
            .replace("IS|GS,active", "IS|GS,suspended")
            .replace("ED|GT,active", "ED|GT,suspended:A|C");
        std::fs::write(dir.join("users.csv"), users).unwrap();
    })
    .await;
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "E3");
    // The network operator is suspended for Type A and C services only; 4.1.1 is Type B for it.
    let operator = "90-B3-D5-1F-30-02-00-00";
    assert_eq!(
        read(&gw, "network-operator", operator, DEMO_ESME).await,
        "I99"
    );
    gw.running.shutdown().await;
}

/// 8.2 Read Inventory (Command Variant 8 on serviceD) by `search` (the body's child element);
/// the HTTP status and the answer.
async fn inventory(gw: &TestGateway, user: &str, originator: &str, search: &str) -> (u16, String) {
    let counter = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 / 1000;
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{originator}:90-B3-D5-1F-30-00-00-02:{counter}</sr:RequestID><sr:CommandVariant>8</sr:CommandVariant><sr:ServiceReference>8.2</sr:ServiceReference><sr:ServiceReferenceVariant>8.2</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:ReadInventory>{search}</sr:ReadInventory></sr:Body></sr:Request>"#
    );
    let body = gw.signed(user, xml.as_bytes());
    let url = format!("{}/api/v1/serviceD", gw.base());
    post(&gw.client(user), &url, body).await
}

/// 8.2 answered synchronously from the cache: I0 with a DSPInventory of the premises (the hub
/// first), valid against the DUIS schema; models from the file and from a live change.
#[tokio::test]
async fn read_inventory_answers_from_the_cache() {
    let gw = support::start_with("[admin]\ntoken_file = \"admin.token\"\n", |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
        // The same devices with the optional manufacturer and model columns.
        let devices = std::fs::read_to_string(dir.join("devices.csv")).unwrap();
        let devices: String = devices
            .lines()
            .map(|l| match l {
                l if l.starts_with("device_id") => format!("{l},manufacturer,model\n"),
                l if l.contains(",ESME,") => format!("{l},Acme Meters & Co,E-470\n"),
                l => format!("{l},,\n"),
            })
            .collect();
        std::fs::write(dir.join("devices.csv"), devices).unwrap();
    })
    .await;
    let (status, answer) = inventory(
        &gw,
        "other-user",
        OTHER_USER,
        "<sr:DeviceID>00-DB-12-34-56-78-90-A1</sr:DeviceID>",
    )
    .await;
    assert_eq!(
        (status, element(&answer, "ResponseCode")),
        (200, Some("I0"))
    );
    assert_eq!(answer.matches("<sr:Device>").count(), 7, "{answer}");
    assert_eq!(
        element(&answer, "DeviceID"),
        Some("00-DB-12-34-56-78-90-A2")
    );
    assert!(answer.contains("<sr:DeviceManufacturer>Acme Meters &amp; Co</sr:DeviceManufacturer><sr:DeviceModel>E-470</sr:DeviceModel>"));
    assert!(answer.contains("<sr:ImportMPxN>3453612</sr:ImportMPxN>"));
    if let Some(xsd) = dccgw::duis::testing::DuisXsd::prepare() {
        xsd.validate(&answer).unwrap();
    }

    // A model set at run time, found by meter point.
    let set = r#"[{"change":"set_device_model","device":"00-DB-12-34-56-78-90-A1","manufacturer":"GasCo","model":"G4"}]"#;
    assert_eq!(change(&gw, Some(TOKEN), set.into()).await.0, 200);
    let (_, answer) = inventory(
        &gw,
        "supplier",
        SUPPLIER,
        &format!("<sr:MPxN>{DEMO_MPAN}</sr:MPxN>"),
    )
    .await;
    assert_eq!(element(&answer, "ResponseCode"), Some("I0"));
    assert!(answer.contains(
        "<sr:DeviceManufacturer>GasCo</sr:DeviceManufacturer><sr:DeviceModel>G4</sr:DeviceModel>"
    ));

    // Nothing found: E19; not a search the schema allows: E40; no addresses are held: E19.
    let unknown = "<sr:DeviceID>00-DB-12-34-56-78-90-FF</sr:DeviceID>";
    let (status, answer) = inventory(&gw, "supplier", SUPPLIER, unknown).await;
    assert_eq!(
        (status, element(&answer, "ResponseCode")),
        (404, Some("E19"))
    );
    let (status, answer) =
        inventory(&gw, "supplier", SUPPLIER, "<sr:DeviceID>x</sr:DeviceID>").await;
    assert_eq!(
        (status, element(&answer, "ResponseCode")),
        (400, Some("E40"))
    );
    let (_, answer) = inventory(&gw, "supplier", SUPPLIER, "<sr:UPRN>12345</sr:UPRN>").await;
    assert_eq!(element(&answer, "ResponseCode"), Some("E19"));
    gw.running.shutdown().await;
}

async fn user_change(gw: &TestGateway, json: String) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/admin/v1/users/changes", gw.admin()))
        .bearer_auth(TOKEN)
        .body(json)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Users changed without a restart — a suspension for one class, its lifting, a withdrawal, a
/// new XML-signing certificate — take effect at once and survive a restart.
#[tokio::test]
async fn user_changes_apply_at_once_and_for_good() {
    let gw = support::start_with("[admin]\ntoken_file = \"admin.token\"\n", |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
        // The second supplier's signing certificate is added at run time instead.
        std::fs::remove_file(dir.join("user-certs/supplier2.pem")).unwrap();
    })
    .await;
    let search = "<sr:DeviceID>00-DB-12-34-56-78-90-A0</sr:DeviceID>";
    let code = |(_, answer): (u16, String)| {
        element(&answer, "ResponseCode")
            .unwrap_or("none")
            .to_owned()
    };
    assert_eq!(
        code(inventory(&gw, "supplier2", SUPPLIER2, search).await),
        "E52"
    );
    let pem = std::fs::read_to_string(gw.certs().join("users/supplier2/xml-sign.pem")).unwrap();
    let add = serde_json::json!([{"change": "add_user_certificate", "pem": pem}]).to_string();
    let (status, text) = user_change(&gw, add.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        code(inventory(&gw, "supplier2", SUPPLIER2, search).await),
        "I0"
    );
    assert_eq!(
        user_change(&gw, add).await.0,
        409,
        "the same certificate twice"
    );

    // Suspended for Type A (its supplier roles' class): the supplier's reads stop.
    let suspend = format!(r#"[{{"change":"suspend_user","user":"{SUPPLIER}","classes":["A"]}}]"#);
    assert_eq!(user_change(&gw, suspend).await.0, 200);
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "E3");
    let reinstate = format!(r#"[{{"change":"reinstate_user","user":"{SUPPLIER}"}}]"#);
    assert_eq!(user_change(&gw, reinstate.clone()).await.0, 200);
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "I99");
    // A batch with a change that cannot apply changes nothing.
    let half_bad = format!(
        r#"[{{"change":"withdraw_user","user":"{SUPPLIER}"}},{{"change":"reinstate_user","user":"90-B3-D5-1F-30-09-00-00"}}]"#
    );
    assert_eq!(user_change(&gw, half_bad).await.0, 409);
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "I99");
    let withdraw = format!(r#"[{{"change":"withdraw_user","user":"{SUPPLIER}"}}]"#);
    assert_eq!(user_change(&gw, withdraw).await.0, 200);
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "E3");
    assert_eq!(
        user_change(&gw, reinstate).await.0,
        409,
        "withdrawal is final"
    );

    let gw = gw.restart().await;
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "E3");
    assert_eq!(
        code(inventory(&gw, "supplier2", SUPPLIER2, search).await),
        "I0"
    );
    gw.running.shutdown().await;
}

/// Past the overlay bound a compaction runs in the background; requests see the same answers
/// before and after it, and changes made meanwhile are kept.
#[tokio::test]
async fn the_registry_compacts_itself_behind_live_changes() {
    let gw = support::start_with("[admin]\ntoken_file = \"admin.token\"\n", |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
    })
    .await;
    let gateway = gw.running.gateway.clone();
    gateway.state.compaction().set_bound(1);
    let mut finished = gateway.state.compaction().subscribe();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let cos = format!(
        r#"[{{"change":"end_registration","mpxn":"{DEMO_MPAN}","role":"IS","user":"{SUPPLIER}","at":{now}}},
            {{"change":"add_registration","mpxn":"{DEMO_MPAN}","registration":{{"role":"IS","user":"{SUPPLIER2}","from":{now},"to":null}}}},
            {{"change":"set_device_status","device":"00-DB-12-34-56-78-90-A1","status":"Suspended"}}]"#
    );
    assert_eq!(change(&gw, Some(TOKEN), cos).await.0, 200);
    // A bound on the wait, not a timing assertion: a compaction of seven devices takes moments.
    tokio::time::timeout(std::time::Duration::from_secs(60), finished.changed())
        .await
        .expect("no compaction finished")
        .unwrap();
    assert_eq!(gateway.state.registry().overlay_len(), 0);
    assert_eq!(read(&gw, "supplier2", SUPPLIER2, DEMO_ESME).await, "I99");
    assert_eq!(read(&gw, "supplier", SUPPLIER, DEMO_ESME).await, "E4");
    assert_eq!(
        read(&gw, "supplier", SUPPLIER, "00-DB-12-34-56-78-90-A1").await,
        "E5"
    );
    gw.running.shutdown().await;
}
