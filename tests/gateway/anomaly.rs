//! Threshold anomaly detection end to end. With a User threshold of N on a variant, request N+1
//! is answered `I99` and quarantined: its `AD1` (XSD-valid, DCC-signed: xmllint and xmlsec1)
//! reaches the User and nothing reaches the device; the quarantine survives SIGKILL; a release
//! sends the request to its device and its Service Response arrives, a delete ends it with an
//! `E67` Service Response, and both survive a SIGKILL right after the operator's answer; the
//! counts survive SIGKILL too (a restart does not launder a threshold). An
//! attribute limit quarantines one value and not another. The admin API refuses bad threshold
//! sets with documented statuses.

use std::path::Path;
use std::time::{Duration, Instant};

use dccgw::demo::{self, DEMO_ESME};
use dccgw::duis::testing::DuisXsd;
use dccgw::receiver::Received;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::crash::{spawn_with, wait_ready};
use super::critical::{code, counter, send, signed_back, SEND, TRANSFORM};
use super::round_trip::{next, pki_and_receiver, routed_dir_with, SUPPLIER};
use super::support::{self, element, TestGateway};

pub(super) const TOKEN: &str = "anomaly-admin-token";

/// The directory and configuration of a routed gateway with the admin API on; devices answer in
/// `latency_ms`.
pub(super) fn anomaly_dir(
    pki: &Path,
    rx_port: u16,
    latency_ms: u64,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let hub = format!("[default]\nlatency = {{ kind = \"fixed\", ms = {latency_ms} }}\n");
    let (dir, config) = routed_dir_with(
        pki,
        rx_port,
        &hub,
        "",
        "[admin]\ntoken_file = \"admin.token\"\n",
    );
    std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
    (dir, config)
}

pub(super) async fn admin_post(admin: &str, path: &str, body: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{admin}{path}"))
        .bearer_auth(TOKEN)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(super) async fn admin_get(admin: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{admin}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

/// The quarantine references listed, in order.
async fn listed(admin: &str) -> Vec<u64> {
    let list = admin_get(admin, "/admin/v1/quarantine").await;
    list["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["reference"].as_u64().unwrap())
        .collect()
}

/// Release or delete `reference`; the outcome.
pub(super) async fn act(admin: &str, what: &str, reference: u64) -> String {
    let (status, body) = admin_post(
        admin,
        &format!("/admin/v1/quarantine/{what}"),
        &format!("[{reference}]"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["results"][0]["outcome"].as_str().unwrap().to_owned()
}

/// The demo supplier's 4.1.1 read number `n`, signed and posted to the gateway on `port`; the
/// answer's code.
async fn read(certs: &Path, port: u16, n: u64) -> String {
    let xml = demo::example_request_xml(SUPPLIER, DEMO_ESME, n);
    let answer = support::send_as_supplier(certs, port, "serviceS", &xml).await;
    code(&answer).to_owned()
}

/// Independent oracles on a message the gateway wrote: the DUIS 5.4 XSD (xmllint) and the DCC's
/// signature (xmlsec1), each skipped where the tool is missing.
fn checked(certs: &Path, xsd: Option<&DuisXsd>, body: &[u8]) {
    let text = std::str::from_utf8(body).unwrap();
    if let Some(xsd) = xsd {
        xsd.validate(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
    if support::have_tool("xmlsec1") {
        let file = certs.join(format!("verify-{}.xml", counter()));
        std::fs::write(&file, body).unwrap();
        let out = std::process::Command::new("xmlsec1")
            .args(["--verify", "--pubkey-cert-pem"])
            .arg(certs.join("dcc-xml-sign.pem"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "xmlsec1: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Messages arriving until `done` says every one wanted is in; all of them.
async fn until(
    rx: &mut mpsc::Receiver<Received>,
    mut done: impl FnMut(&[Received]) -> bool,
) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while !done(&got) {
        assert!(Instant::now() < deadline, "not everything arrived: {got:?}");
        got.push(next(rx).await);
    }
    got
}

/// The message about request `id` with `code`: a DCC Alert's code (`AD1`), or a Service
/// Response's (`I0`, `E67`).
fn for_request<'a>(got: &'a [Received], id: &str, code: &str) -> Option<&'a Received> {
    got.iter().find(|r| {
        let d = &r.description;
        d.request_id.as_deref() == Some(id)
            && match d.alert_code.as_deref() {
                Some(alert) => alert == code,
                None => d.response_code.as_deref() == Some(code),
            }
    })
}

pub(super) fn rid(n: u64) -> String {
    format!("{SUPPLIER}:{DEMO_ESME}:{n}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_n_plus_1_is_quarantined_and_release_and_delete_survive_sigkill() {
    let xsd = DuisXsd::prepare();
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let (dir, config) = anomaly_dir(pki.path(), rx_server.local_addr().port(), 800);
    let certs = dir.path().join("certs");

    // First run: a threshold of 2 reads an hour (warning at 1); reads 1 and 2 go to the device,
    // 3 and 4 are quarantined, each with its AD1.
    let (port, admin_port) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin_port, &[]);
    wait_ready(admin_port).await;
    let admin = format!("http://127.0.0.1:{admin_port}");
    let threshold = json!([{"user": SUPPLIER, "role": "IS", "srv": "4.1.1", "window_s": 3600, "warning": 1, "quarantine": 2}]);
    let (status, body) = admin_post(
        &admin,
        "/admin/v1/anomaly/thresholds",
        &threshold.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for n in 1..=4 {
        assert_eq!(read(&certs, port, n).await, "I99");
    }
    let got = until(&mut rx, |g| {
        for_request(g, &rid(1), "I0").is_some()
            && for_request(g, &rid(2), "I0").is_some()
            && for_request(g, &rid(3), "AD1").is_some()
            && for_request(g, &rid(4), "AD1").is_some()
    })
    .await;
    let mut references = Vec::new();
    for n in [3, 4] {
        let ad1 = for_request(&got, &rid(n), "AD1").unwrap();
        checked(&certs, xsd.as_ref(), &ad1.body);
        let text = std::str::from_utf8(&ad1.body).unwrap();
        assert!(text.contains("<sr:ADUserThresholdBreach>"), "{text}");
        references.push(
            element(text, "QuarantineEventRef")
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
        // Nothing of a quarantined request reached the device.
        assert!(for_request(&got, &rid(n), "I0").is_none());
    }
    assert_eq!(listed(&admin).await, references);
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("dccgw_anomaly_quarantined_total{breach=\"user_threshold\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dccgw_anomaly_warnings_total{breach=\"user_threshold\"} 1"),
        "{metrics}"
    );
    child.kill().unwrap(); // SIGKILL, two requests in quarantine
    child.wait().unwrap();

    // Second run: both still quarantined; one released, one deleted, then SIGKILL at once.
    let (port, admin_port) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin_port, &[]);
    wait_ready(admin_port).await;
    let admin = format!("http://127.0.0.1:{admin_port}");
    assert_eq!(listed(&admin).await, references);
    assert_eq!(act(&admin, "release", references[0]).await, "released");
    assert_eq!(act(&admin, "delete", references[1]).await, "deleted");
    child.kill().unwrap(); // SIGKILL, the device's answer not yet in (it takes 800 ms)
    child.wait().unwrap();

    // Third run: the released read's Service Response comes from the device, the deleted one's
    // is E67; neither is listed any more, and a second release finds nothing.
    let (port, admin_port) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin_port, &[]);
    wait_ready(admin_port).await;
    let admin = format!("http://127.0.0.1:{admin_port}");
    let got = until(&mut rx, |g| {
        for_request(g, &rid(3), "I0").is_some() && for_request(g, &rid(4), "E67").is_some()
    })
    .await;
    let released = for_request(&got, &rid(3), "I0").unwrap();
    assert!(element(std::str::from_utf8(&released.body).unwrap(), "GBCSPayload").is_some());
    checked(
        &certs,
        xsd.as_ref(),
        &for_request(&got, &rid(4), "E67").unwrap().body,
    );
    assert!(listed(&admin).await.is_empty());
    assert_eq!(act(&admin, "release", references[0]).await, "unknown");
    assert_eq!(act(&admin, "delete", references[1]).await, "unknown");
    // The threshold set and the counts survived the restarts (reads 1 and 2 count in the hour;
    // a released request is not counted again): read 5 is quarantined at once.
    let set = admin_get(&admin, "/admin/v1/anomaly/thresholds").await;
    assert_eq!(set["version"], 1);
    assert!(listed(&admin).await.is_empty());
    assert_eq!(read(&certs, port, 5).await, "I99");
    assert_eq!(listed(&admin).await.len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();

    // The audit trail holds every decision.
    let mut actions = Vec::new();
    dccgw::audit::read_trail(&dir.path().join("state/audit"), |_, e| {
        if let dccgw::audit::AuditEvent::Anomaly(a) = e {
            actions.push(a.action);
        }
    })
    .unwrap();
    for action in [
        "thresholds",
        "warning",
        "quarantined",
        "released",
        "deleted",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }
    rx_server.stop().await;
}

/// A threshold of N = 2: request N-1 is counted, the gateway is killed (SIGKILL) and started
/// again; request N goes to the device, N+1 is quarantined, as without the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_survive_sigkill() {
    let (pki, rx_server, _rx) = pki_and_receiver().await;
    let (dir, config) = anomaly_dir(pki.path(), rx_server.local_addr().port(), 10);
    let certs = dir.path().join("certs");
    let (port, admin_port) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin_port, &[]);
    wait_ready(admin_port).await;
    let admin = format!("http://127.0.0.1:{admin_port}");
    let threshold = json!([{"user": SUPPLIER, "role": "IS", "srv": "4.1.1", "window_s": 3600, "warning": 1, "quarantine": 2}]);
    let (status, body) = admin_post(
        &admin,
        "/admin/v1/anomaly/thresholds",
        &threshold.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(read(&certs, port, 1).await, "I99");
    child.kill().unwrap();
    child.wait().unwrap();

    let (port, admin_port) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin_port, &[]);
    wait_ready(admin_port).await;
    let admin = format!("http://127.0.0.1:{admin_port}");
    assert_eq!(read(&certs, port, 2).await, "I99");
    assert!(
        listed(&admin).await.is_empty(),
        "request N is not quarantined"
    );
    assert_eq!(read(&certs, port, 3).await, "I99");
    assert_eq!(listed(&admin).await.len(), 1, "request N+1 is quarantined");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// An in-process routed gateway with the admin API on.
async fn in_process() -> (
    TestGateway,
    tempfile::TempDir,
    dccgw::receiver::Receiver,
    mpsc::Receiver<Received>,
) {
    let (pki, rx_server, rx) = pki_and_receiver().await;
    let (dir, path) = anomaly_dir(pki.path(), rx_server.local_addr().port(), 10);
    let config = dccgw::config::Config::load(&path, Vec::new()).unwrap();
    let running = dccgw::server::start(&config).await.unwrap();
    (TestGateway { running, dir }, pki, rx_server, rx)
}

/// The public 2.1 Update Prepay Configuration template with its emergency credit limit set to
/// `limit`, through Transform and signed pre-command; the signed pre-command's RequestID and
/// code.
async fn prepay(gw: &TestGateway, template: &str, limit: u64) -> (String, String) {
    let xml = template.replace(
        "<sr:EmergencyCreditLimit>300000</sr:EmergencyCreditLimit>",
        &format!("<sr:EmergencyCreditLimit>{limit}</sr:EmergencyCreditLimit>"),
    );
    let xml = dccgw::tools::stamp_counter(&xml, counter()).unwrap();
    let id = element(&xml, "RequestID").unwrap().to_owned();
    let (status, answer) = send(gw, "supplier", TRANSFORM, xml.as_bytes()).await;
    assert_eq!((status, code(&answer)), (200, "I0"), "{answer}");
    let back = signed_back(&gw.certs(), "supplier", &answer, 5);
    let (_, answer) = send(gw, "supplier", SEND, back.as_bytes()).await;
    (id, code(&answer).to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attribute_limit_quarantines_one_value_and_not_another() {
    let Some(anchors) = support::anchors() else {
        return;
    };
    let template = std::fs::read_to_string(
        anchors.join("duis-samples/templates/ECS08a_2.1_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML"),
    )
    .unwrap();
    let (gw, _pki, rx_server, mut rx) = in_process().await;
    let limit = json!([{"kind": "attribute", "attribute": "EmergencyCreditLimit", "srv": "2.1", "min": 0, "max": 100000}]);
    let (status, body) = admin_post(
        &gw.admin(),
        "/admin/v1/anomaly/thresholds",
        &limit.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (over, over_code) = prepay(&gw, &template, 300_000).await;
    let (under, under_code) = prepay(&gw, &template, 50_000).await;
    assert_eq!((over_code.as_str(), under_code.as_str()), ("I99", "I99"));
    let got = until(&mut rx, |g| {
        for_request(g, &over, "AD1").is_some() && for_request(g, &under, "I0").is_some()
    })
    .await;
    let ad1 = std::str::from_utf8(&for_request(&got, &over, "AD1").unwrap().body).unwrap();
    assert!(ad1.contains("<sr:ADAttributeLimitsBreach>"), "{ad1}");
    assert!(for_request(&got, &over, "I0").is_none());
    assert!(for_request(&got, &under, "AD1").is_none());
    let quarantined = listed(&gw.admin()).await;
    assert_eq!(quarantined.len(), 1);
    // Released, the signed pre-command goes to its device after all.
    assert_eq!(
        act(&gw.admin(), "release", quarantined[0]).await,
        "released"
    );
    until(&mut rx, |g| for_request(g, &over, "I0").is_some()).await;
    rx_server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_threshold_sets_are_refused_with_documented_statuses() {
    let (gw, _pki, rx_server, _rx) = in_process().await;
    let admin = gw.admin();
    let path = "/admin/v1/anomaly/thresholds";
    let cases = [
        ("not json", 400, "not the JSON"),
        (
            r#"[{"user": "not-an-id", "srv": "4.1.1"}]"#,
            400,
            "not the JSON",
        ),
        (r#"[{"colour": "red"}]"#, 400, "not the JSON"),
        (
            r#"[{"user": "90-B3-D5-1F-30-09-09-09", "srv": "4.1.1", "window_s": 3600, "quarantine": 1}]"#,
            409,
            "not in the party register",
        ),
        (
            &format!(
                r#"[{{"user": "{SUPPLIER}", "srv": "4.99", "window_s": 3600, "quarantine": 1}}]"#
            ),
            409,
            "not a Service Reference Variant",
        ),
        (
            &format!(
                r#"[{{"user": "{SUPPLIER}", "srv": "4.1.1", "window_s": 60, "quarantine": 1}}]"#
            ),
            409,
            "window_s",
        ),
    ];
    for (body, status, says) in cases {
        let (got, text) = admin_post(&admin, path, body).await;
        assert_eq!(got, status, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    // Nothing was put in force, and no token is no change.
    assert_eq!(admin_get(&admin, path).await["version"], 0);
    let r = reqwest::Client::new()
        .post(format!("{admin}{path}"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A good set is numbered, listed, and replaced whole by the next.
    let good = format!(
        r#"[{{"user": "{SUPPLIER}", "group": 4, "window_s": 86400, "warning": 5, "quarantine": 10}}]"#
    );
    assert_eq!(admin_post(&admin, path, &good).await.0, 200);
    let now = admin_get(&admin, path).await;
    assert_eq!(
        (
            now["version"].as_u64(),
            now["entries"].as_array().map(Vec::len)
        ),
        (Some(1), Some(1))
    );
    assert_eq!(admin_post(&admin, path, "[]").await.0, 200);
    assert_eq!(admin_get(&admin, path).await["version"], 2);
    // Release and delete take a JSON array of references.
    let (status, _) = admin_post(&admin, "/admin/v1/quarantine/release", r#"{"ref": 1}"#).await;
    assert_eq!(status, 400);
    gw.running.shutdown().await;
    rx_server.stop().await;
}
