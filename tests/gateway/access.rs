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
