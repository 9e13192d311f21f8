//! Dated rule sets, live: a version added through the admin API ahead of its date is checked and
//! journalled, decides the requests executing from its instant on (a future-dated request) and
//! not those before, is named in every decision's audit record, and survives a restart.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::support;

const TOKEN: &str = "rules-token";

fn read_at(originator: &str, counter: u64, at: Option<OffsetDateTime>) -> String {
    let when = at
        .map(|t| {
            format!(
                "<sr:ExecutionDateTime>{}</sr:ExecutionDateTime>",
                t.format(&Rfc3339).unwrap()
            )
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{originator}:{esme}:{counter}</sr:RequestID><sr:CommandVariant>1</sr:CommandVariant><sr:ServiceReference>4.1</sr:ServiceReference><sr:ServiceReferenceVariant>4.1.1</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:ReadInstantaneousImportRegisters>{when}</sr:ReadInstantaneousImportRegisters></sr:Body></sr:Request>"#,
        esme = dccgw::demo::DEMO_ESME,
    )
}

async fn send(gw: &support::TestGateway, xml: &str) -> String {
    let signed = gw.signed("supplier", xml.as_bytes());
    let url = format!("{}/api/v1/serviceS", gw.base());
    let (_, answer) = support::post(&gw.client("supplier"), &url, signed).await;
    support::element(&answer, "ResponseCode")
        .unwrap_or("none")
        .to_owned()
}

async fn post_rules(gw: &support::TestGateway, body: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/admin/v1/rules", gw.admin()))
        .bearer_auth(TOKEN)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn audit_text(gw: &support::TestGateway) -> String {
    // Every answered request's record is copied into the trail: written once this returns.
    gw.running.gateway.audit.sync().durable().await.unwrap();
    let dir = gw.dir.path().join("state/audit");
    let mut text = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    text
}

#[tokio::test]
async fn a_version_added_ahead_of_its_date_decides_requests_executing_from_then_on() {
    let gw = support::start_with("[admin]\ntoken_file = \"admin.token\"\n", |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
    })
    .await;
    let supplier = dccgw::demo::DEMO_USERS[0].1;
    let now = OffsetDateTime::now_utc();
    let release = now + time::Duration::hours(1);
    let version = format!(
        r#"{{"version": "test-release", "effective_from": "{}",
             "srvs": {{"4.1.1": {{"roles": ["ED", "GT"]}}}}}}"#,
        release.format(&Rfc3339).unwrap()
    );
    let (status, added) = post_rules(&gw, &version).await;
    assert_eq!(status, 200, "{added}");
    assert!(
        added.contains("4.1.1 roles: [IS, GS, ED, GT] -> [ED, GT]"),
        "{added}"
    );

    // Now, and just before the release: the base rules; after it, the supplier is not eligible.
    assert_eq!(send(&gw, &read_at(supplier, 1, None)).await, "I99");
    let before = release - time::Duration::minutes(1);
    assert_eq!(send(&gw, &read_at(supplier, 2, Some(before))).await, "I99");
    let after = release + time::Duration::minutes(1);
    assert_eq!(send(&gw, &read_at(supplier, 3, Some(after))).await, "E2");

    // The same version again, or one not ahead of now, is refused; nothing changes.
    assert_eq!(post_rules(&gw, &version).await.0, 409);
    let past = version
        .replace("test-release", "late")
        .replace(&release.format(&Rfc3339).unwrap(), "2020-01-01T00:00:00Z");
    assert_eq!(post_rules(&gw, &past).await.0, 409);
    assert_eq!(post_rules(&gw, "{\"version\": 1}").await.0, 400);

    // Every decision names the version it used.
    let trail = audit_text(&gw).await;
    assert_eq!(trail.matches("\"rules\":\"base\"").count(), 2, "{trail}");
    assert_eq!(
        trail.matches("\"rules\":\"test-release\"").count(),
        1,
        "{trail}"
    );

    // The journalled version is back after a restart, and still decides.
    let gw = gw.restart().await;
    let listed = reqwest::Client::new()
        .get(format!("{}/admin/v1/rules", gw.admin()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listed.contains("\"in_force\":\"base\""), "{listed}");
    assert!(listed.contains("test-release"), "{listed}");
    assert_eq!(send(&gw, &read_at(supplier, 4, Some(after))).await, "E2");
    gw.running.shutdown().await;
}

fn version(name: &str, at: &str, srvs: &str) -> String {
    format!(r#"{{"version": "{name}", "effective_from": "{at}", "srvs": {{{srvs}}}}}"#)
}

#[test]
fn rules_check_prints_what_a_version_changes_against_the_configured_ones() {
    // The configuration's [rules] files hold one version already.
    let (dir, config) = support::prepare_dir("[rules]\nfiles = [\"june.json\"]\n", |dir| {
        let june = version(
            "june",
            "2099-06-01T00:00:00Z",
            r#""4.1.1": {"on_demand": false}"#,
        );
        std::fs::write(dir.join("june.json"), june).unwrap();
    });
    let check = |body: &str| {
        let file = dir.path().join("new.json");
        std::fs::write(&file, body).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_dccgw"))
            .args(["rules", "check", file.to_str().unwrap(), "--config"])
            .arg(&config)
            .env_remove("DCCGW_LOG")
            .output()
            .unwrap()
    };
    let out = check(&version(
        "november",
        "2099-11-01T00:00:00Z",
        r#""4.1.1": {"roles": ["IS", "GS"], "on_demand": true}"#,
    ));
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("version november over june"), "{said}");
    assert!(
        said.contains("4.1.1 roles: [IS, GS, ED, GT] -> [IS, GS]"),
        "{said}"
    );
    assert!(said.contains("4.1.1 on_demand: false -> true"), "{said}");

    // Before the configured version, a name it has, an SRV not in the catalogue: refused.
    for (body, why) in [
        (
            version(
                "may",
                "2099-05-01T00:00:00Z",
                r#""4.1.1": {"critical": true}"#,
            ),
            "not after",
        ),
        (
            version(
                "june",
                "2099-12-01T00:00:00Z",
                r#""4.1.1": {"critical": true}"#,
            ),
            "already",
        ),
        (
            version(
                "x",
                "2099-12-01T00:00:00Z",
                r#""99.9.9": {"critical": true}"#,
            ),
            "not in the catalogue",
        ),
    ] {
        let out = check(&body);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(why), "{why}: {err}");
    }
    assert!(
        std::fs::read_dir(dir.path().join("state")).map_or(true, |mut d| d
            .all(|e| e.unwrap().file_name() != "rules.journal"))
    );
}

/// A version from the configuration's files, already in force, routes the device alerts raised
/// from its instant on: 8002 (a network operator's by the built-in table) goes to both Users.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_in_force_routes_the_alerts_raised_under_it() {
    use crate::round_trip;
    let (certs_dir, rx_server, mut rx) = round_trip::pki_and_receiver().await;
    let (dir, path) = round_trip::routed_dir_with(
        certs_dir.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n\
         alerts_after = [{ code = 0x8002, delay_ms = 10 }]\n",
        "",
        "\n[rules]\nfiles = [\"release.json\"]\n",
    );
    std::fs::write(
        dir.path().join("release.json"),
        r#"{"version": "past-release", "effective_from": "2020-01-01T00:00:00Z",
            "alert_routes": [{"codes": "8002", "to": "both"}]}"#,
    )
    .unwrap();
    let config = dccgw::config::Config::load(&path, Vec::new()).unwrap();
    let running = dccgw::server::start(&config).await.unwrap();
    let gw = support::TestGateway { running, dir };
    round_trip::send_read(&gw, 1).await;
    let mut to = Vec::new();
    while to.len() < 2 {
        let got = round_trip::next(&mut rx).await;
        if got.description.alert_code.as_deref() == Some("8002") {
            to.push(got.description.response_id.clone().unwrap_or_default());
        }
    }
    // The supplier as well as the network operator (the only one without the version).
    let network_operator = "90-B3-D5-1F-30-02-00-00";
    assert!(
        to.iter().any(|r| r.contains(round_trip::SUPPLIER)),
        "{to:?}"
    );
    assert!(to.iter().any(|r| r.contains(network_operator)), "{to:?}");
    let trail = audit_text(&gw).await;
    assert!(trail.contains("\"rules\":\"past-release\""), "{trail}");
    // The routing decision is audited too: the alert, the version whose routes decided, and
    // both Users (its record reaches the disk on its own, soon after the copies leave).
    let mut routing = None;
    for _ in 0..100 {
        let mut found = None;
        dccgw::audit::read_trail(gw.running.gateway.audit.dir(), |_, e| {
            if let dccgw::audit::AuditEvent::Routing(r) = e {
                if r.code == "8002" {
                    found = Some(r.clone());
                }
            }
        })
        .unwrap();
        if found.is_some() {
            routing = found;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let routing = routing.unwrap_or_else(|| panic!("no routing record for 8002: {trail}"));
    assert_eq!(routing.rules, "past-release");
    let mut users: Vec<String> = routing.users.iter().map(|u| u.to_string()).collect();
    users.sort();
    assert_eq!(users, [round_trip::SUPPLIER, network_operator]);
    gw.running.shutdown().await;
    rx_server.stop().await;
}
