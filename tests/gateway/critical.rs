//! The critical flow over mTLS: every critical public template goes Transform (Command Variant 4,
//! answered `I0` with its pre-command) → signed pre-command (Command Variant 5, signed with the
//! User's Digital Signing key by `dccgw sign-precommand`'s library) → `I99` → the device's signed
//! Service Response at the User's Receive Response Service, XSD-valid and DCC-signed (xmlsec1).
//! Each way a signed pre-command can be wrong is refused with its documented code; a device
//! that cannot verify the User's signature refuses the command (E1007); and a pre-command
//! outlives a SIGKILL.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dccgw::domain::CommandVariant;
use dccgw::duis::critical::{read_transform_response, write_signed_precommand_request};
use dccgw::duis::testing::DuisXsd;
use dccgw::gbcs::{self, Apdu, Cra, SignatureField};
use dccgw::signer::Signer;
use dccgw::tools::{self, PreCommandKeys};

use super::crash::{spawn_with, wait_ready};
use super::round_trip::{next, pki_and_receiver, routed_dir, SUPPLIER};
use super::support::{self, element, post, xmlsec1_verifies, TestGateway};

pub const TRANSFORM: &str = "/api/v1/serviceT";
pub const SEND: &str = "/api/v1/serviceS";
pub const DCC: &str = "/api/v1/serviceD";

/// A fresh counter, above every earlier one of this process (epoch microseconds at its first
/// use, then one more each time).
pub fn counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: std::sync::OnceLock<AtomicU64> = std::sync::OnceLock::new();
    NEXT.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
        AtomicU64::new(u64::try_from(now).unwrap())
    })
    .fetch_add(1, Ordering::Relaxed)
}

/// `xml` (any signature replaced) signed by `user` and posted by `user`'s client to `path`.
pub async fn send(gw: &TestGateway, user: &str, path: &str, xml: &[u8]) -> (u16, String) {
    let body = gw.signed(user, xml);
    post(&gw.client(user), &format!("{}{path}", gw.base()), body).await
}

pub fn code(answer: &str) -> &str {
    element(answer, "ResponseCode").unwrap_or("none")
}

/// `user`'s Digital Signing key pair under `certs`.
pub fn ds_keys(certs: &Path, user: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = certs.join("users").join(user);
    (
        dir.join("digital-signing.key.pem"),
        dir.join("digital-signing.pem"),
    )
}

/// The request carrying back the pre-command of `answer` signed by `user`, as Command Variant
/// `cv`: what `dccgw sign-precommand` writes (unsigned XML).
pub fn signed_back(certs: &Path, user: &str, answer: &str, cv: u8) -> String {
    let (key, cert) = ds_keys(certs, user);
    let keys = PreCommandKeys {
        key: &key,
        cert: &cert,
        xml: None,
    };
    let cv = CommandVariant::try_from(cv).unwrap();
    tools::sign_precommand(answer.as_bytes(), &keys, cv).unwrap()
}

/// A template from the public set, given a fresh counter.
fn template(path: &Path, counter: u64) -> (String, String, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let stamped = tools::stamp_counter(&text, counter).unwrap();
    let id = element(&stamped, "RequestID").unwrap().to_owned();
    let originator = id.split(':').next().unwrap().to_owned();
    (stamped, id, originator)
}

fn demo_user(originator: &str) -> Option<&'static str> {
    dccgw::demo::DEMO_USERS
        .iter()
        .find(|(_, id, ..)| id.eq_ignore_ascii_case(originator))
        .map(|(name, ..)| *name)
}

/// A gateway routing to the in-process hub (devices answering in 10 ms), delivering to a
/// receiver; `hub` begins the hub's configuration.
pub async fn routed(
    hub: &str,
) -> (
    TestGateway,
    tempfile::TempDir,
    dccgw::receiver::Receiver,
    tokio::sync::mpsc::Receiver<dccgw::receiver::Received>,
) {
    let (pki, rx_server, rx) = pki_and_receiver().await;
    let hub = format!("{hub}\n[default]\nlatency = {{ kind = \"fixed\", ms = 10 }}\n");
    let (dir, path) = routed_dir(pki.path(), rx_server.local_addr().port(), &hub, "");
    let config = dccgw::config::Config::load(&path, Vec::new()).unwrap();
    let running = dccgw::server::start(&config).await.unwrap();
    (TestGateway { running, dir }, pki, rx_server, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_critical_template_goes_transform_signed_pre_command_and_device_response() {
    let Some(anchors) = support::anchors() else {
        return;
    };
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let (gw, _pki, rx_server, mut rx) = routed("").await;
    let mut files: Vec<_> = std::fs::read_dir(anchors.join("duis-samples/templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            element(&text, "CommandVariant") == Some("4")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 50, "{} critical templates", files.len());
    // RequestID → the pre-command's message code, for each request acknowledged.
    let mut sent: BTreeMap<String, gbcs::MessageCode> = BTreeMap::new();
    let mut answers = Vec::new();
    for file in &files {
        let (xml, id, originator) = template(file, counter());
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let Some(user) = demo_user(&originator) else {
            continue;
        };
        let (status, answer) = send(&gw, user, TRANSFORM, xml.as_bytes()).await;
        if code(&answer) != "I0" {
            // Not the demo User's to send (7.16 is not requestable; the other refusals are
            // `requests.rs`'s): nothing to sign.
            assert_ne!(status, 200, "{name}: {answer}");
            continue;
        }
        let transform = read_transform_response(answer.as_bytes()).unwrap();
        assert_eq!(transform.request_id.to_string(), id, "{name}");
        let pre = gbcs::GeneralSigning::decode(&transform.precommand).unwrap();
        assert_eq!(
            pre.signature,
            SignatureField::Absent,
            "{name}: a pre-command"
        );
        assert_eq!(pre.transaction.counter, transform.request_id.counter);
        let back = signed_back(&gw.certs(), user, &answer, 5);
        let (status, ack) = send(&gw, user, SEND, back.as_bytes()).await;
        assert_eq!((status, code(&ack)), (200, "I99"), "{name}: {ack}");
        assert_eq!(element(&ack, "RequestID"), Some(id.as_str()), "{name}");
        sent.insert(id.to_ascii_uppercase(), pre.other.message_code);
        answers.push(answer);
        answers.push(ack);
    }
    assert!(sent.len() >= 45, "only {} critical round trips", sent.len());
    // Every one's Service Response: the device's signed GBCS response, under the command's
    // counter and message code.
    let mut responses = Vec::new();
    while responses.len() < sent.len() {
        let got = next(&mut rx).await;
        let Some(id) = got.description.request_id.clone() else {
            continue; // an alert (a future-dated command's outcome)
        };
        let body = String::from_utf8(got.body.to_vec()).unwrap();
        if got.description.alert_code.is_some() {
            continue;
        }
        let want = sent
            .get(&id.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("a response for {id}, never sent"));
        assert_eq!(
            got.description.response_code.as_deref(),
            Some("I0"),
            "{body}"
        );
        let payload = element(&body, "GBCSPayload").unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .unwrap();
        let Apdu::Signing(frame) = Apdu::decode(&bytes).unwrap() else {
            panic!("{id}: a response to a critical command travels bare")
        };
        assert_eq!(frame.transaction.cra, Cra::Response);
        assert_eq!(frame.other.message_code, *want, "{id}");
        assert!(matches!(frame.signature, SignatureField::Ecdsa(_)), "{id}");
        responses.push(body);
    }
    for body in responses.iter().step_by(7) {
        xmlsec1_verifies(&gw, body.as_bytes());
    }
    let docs: Vec<&str> = answers
        .iter()
        .chain(&responses)
        .map(String::as_str)
        .collect();
    if let Err(report) = xsd.validate_all(&docs) {
        panic!("schema-invalid messages:\n{report}");
    }
    rx_server.stop().await;
}

/// A 7.1 Enable Supply Transform from the supplier, answered; its text.
pub async fn transform(gw: &TestGateway, counter: u64) -> String {
    let xml = dccgw::demo::example_transform_xml(SUPPLIER, dccgw::demo::DEMO_ESME, counter);
    let (status, answer) = send(gw, "supplier", TRANSFORM, xml.as_bytes()).await;
    assert_eq!((status, code(&answer)), (200, "I0"), "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_signed_pre_commands_are_refused_with_their_codes() {
    let gw = support::start("").await;
    let certs = gw.certs();
    let answer = transform(&gw, counter()).await;
    let transform_response = read_transform_response(answer.as_bytes()).unwrap();
    let load = |user: &str| {
        let (key, cert) = ds_keys(&certs, user);
        Signer::load(&key, &cert, None).unwrap()
    };
    let cv5 = CommandVariant::try_from(5).unwrap();
    let request = |signed: &[u8]| {
        write_signed_precommand_request(
            &transform_response.request_id,
            cv5,
            transform_response.srv,
            signed,
        )
    };
    let signed = gbcs::sign_precommand(&transform_response.precommand, &load("supplier")).unwrap();
    // A changed byte in the pre-command part.
    let mut changed = signed.clone();
    changed[25] ^= 0x01;
    // Another User's Digital Signing key.
    let other = gbcs::sign_precommand(&transform_response.precommand, &load("supplier2")).unwrap();
    for (what, body, expected) in [
        ("a changed byte", request(&changed), "E1004"),
        ("another User's key", request(&other), "E1007"),
        (
            "the bare pre-command",
            request(&transform_response.precommand),
            "E1004",
        ),
    ] {
        let (_, got) = send(&gw, "supplier", SEND, body.as_bytes()).await;
        assert_eq!(code(&got), expected, "{what}: {got}");
    }
    // The right one is taken once; sent again, it is a reused pre-command.
    let (_, got) = send(&gw, "supplier", SEND, request(&signed).as_bytes()).await;
    assert_eq!(code(&got), "I99", "{got}");
    let (_, got) = send(&gw, "supplier", SEND, request(&signed).as_bytes()).await;
    assert_eq!(code(&got), "E1001", "{got}");
    // A signed pre-command with no Transform before it.
    let id = format!("{SUPPLIER}:{}:{}", dccgw::demo::DEMO_ESME, counter());
    let lone =
        write_signed_precommand_request(&id.parse().unwrap(), cv5, transform_response.srv, &signed);
    let (status, got) = send(&gw, "supplier", SEND, lone.as_bytes()).await;
    assert_eq!((status, code(&got)), (409, "E1000"), "{got}");
    // Other requests of the User between a Transform and its signed form do not spoil it.
    let answer = transform(&gw, counter()).await;
    transform(&gw, counter()).await;
    let back = signed_back(&certs, "supplier", &answer, 5);
    let (_, got) = send(&gw, "supplier", SEND, back.as_bytes()).await;
    assert_eq!(code(&got), "I99", "{got}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_pre_command_and_a_user_without_a_digital_signing_key_are_refused() {
    // Pre-commands last one second; the supplier's Digital Signing certificate is not there.
    let gw = support::start_with("[critical]\nprecommand_expiry_secs = 1\n", |dir| {
        let ds = dir.join("certs/users/supplier/digital-signing.pem");
        std::fs::rename(&ds, dir.join("supplier-ds.pem")).unwrap();
    })
    .await;
    let certs = gw.certs();
    std::fs::copy(
        gw.dir.path().join("supplier-ds.pem"),
        certs.join("users/supplier/digital-signing.pem"),
    )
    .unwrap();
    let answer = transform(&gw, counter()).await;
    let back = signed_back(&certs, "supplier", &answer, 5);
    let (status, got) = send(&gw, "supplier", SEND, back.as_bytes()).await;
    assert_eq!((status, code(&got)), (403, "E1006"), "{got}");
    let answer = transform(&gw, counter()).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let back = signed_back(&certs, "supplier", &answer, 5);
    let (status, got) = send(&gw, "supplier", SEND, back.as_bytes()).await;
    assert_eq!((status, code(&got)), (409, "E1003"), "{got}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_that_cannot_verify_the_users_signature_refuses_the_command() {
    // The devices trust no User's Digital Signing key: their directory holds only the Users'
    // XML-signing certificates.
    let (gw, _pki, rx_server, mut rx) = routed("digital_signing_certs = \"user-certs\"\n").await;
    let answer = transform(&gw, counter()).await;
    let back = signed_back(&gw.certs(), "supplier", &answer, 5);
    let (_, got) = send(&gw, "supplier", SEND, back.as_bytes()).await;
    assert_eq!(code(&got), "I99", "{got}");
    let response = next(&mut rx).await;
    assert_eq!(response.description.response_code.as_deref(), Some("E1007"));
    xmlsec1_verifies(&gw, &response.body);
    rx_server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_command_survives_sigkill() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let hub = "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n";
    let (dir, config) = routed_dir(pki.path(), rx_server.local_addr().port(), hub, "");
    let certs = dir.path().join("certs");
    let client = |user: &str| {
        let pem = std::fs::read(certs.join("users").join(user).join("client.pem")).unwrap();
        support::client_with(&certs, Some(reqwest::Identity::from_pem(&pem).unwrap()))
    };
    let sign = |xml: &[u8]| {
        let user = certs.join("users/supplier");
        tools::sign(
            xml,
            &user.join("xml-sign.key.pem"),
            &user.join("xml-sign.pem"),
            None,
        )
        .unwrap()
    };
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    let xml = dccgw::demo::example_transform_xml(SUPPLIER, dccgw::demo::DEMO_ESME, counter());
    let url = |path: &str| format!("https://localhost:{port}{path}");
    let (_, answer) = post(&client("supplier"), &url(TRANSFORM), sign(xml.as_bytes())).await;
    assert_eq!(code(&answer), "I0", "{answer}");
    child.kill().unwrap(); // SIGKILL: the answer left, so the pre-command is on disk
    child.wait().unwrap();
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    let back = signed_back(&certs, "supplier", &answer, 5);
    let (_, got) = post(&client("supplier"), &url(SEND), sign(back.as_bytes())).await;
    assert_eq!(code(&got), "I99", "{got}");
    let response = next(&mut rx).await;
    assert_eq!(response.description.response_code.as_deref(), Some("I0"));
    // Used once: after another SIGKILL it is still used.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    let (_, got) = post(&client("supplier"), &url(SEND), sign(back.as_bytes())).await;
    assert_eq!(code(&got), "E1001", "{got}");
    child.kill().unwrap();
    child.wait().unwrap();
    rx_server.stop().await;
}

/// A User's Digital Signing certificate added through the admin API (a User change, journalled)
/// takes effect at once and survives a restart; a certificate that is not one is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_digital_signing_certificate_added_at_run_time_takes_effect_and_stays() {
    const TOKEN: &str = "critical-test-token";
    let gw = support::start_with("[admin]\ntoken_file = \"admin.token\"\n", |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
        let ds = dir.join("certs/users/supplier/digital-signing.pem");
        std::fs::rename(&ds, dir.join("supplier-ds.pem")).unwrap();
    })
    .await;
    let certs = gw.certs();
    let pem = std::fs::read_to_string(gw.dir.path().join("supplier-ds.pem")).unwrap();
    std::fs::write(certs.join("users/supplier/digital-signing.pem"), &pem).unwrap();
    assert_eq!(round_trip(&gw, &certs).await, "E1006");
    let change = |pem: &str| {
        serde_json::json!([{"change": "add_digital_signing_certificate", "pem": pem}]).to_string()
    };
    let admin = |gw: &TestGateway, body: String| {
        let url = format!("{}/admin/v1/users/changes", gw.admin());
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(TOKEN)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, text) = admin(&gw, change(&pem)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(round_trip(&gw, &certs).await, "I99");
    assert_eq!(
        admin(&gw, change(&pem)).await.0,
        409,
        "the same certificate twice"
    );
    let xml_signing = std::fs::read_to_string(certs.join("users/supplier/xml-sign.pem")).unwrap();
    assert_eq!(
        admin(&gw, change(&xml_signing)).await.0,
        409,
        "an XML-signing certificate is not a Digital Signing one"
    );
    // A reload reads the directory again (the certificate is taken out of it meanwhile) and
    // keeps the added one.
    let in_dir = certs.join("users/supplier/digital-signing.pem");
    std::fs::remove_file(&in_dir).unwrap();
    let reload = reqwest::Client::new()
        .post(format!("{}/admin/v1/reload", gw.admin()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status().as_u16(), 200);
    std::fs::write(&in_dir, &pem).unwrap();
    assert_eq!(round_trip(&gw, &certs).await, "I99");
    let gw = gw.restart().await;
    assert_eq!(round_trip(&gw, &certs).await, "I99");
}

/// A Digital Signing certificate put in the directory is in force after a reload, with no
/// restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_reads_the_digital_signing_certificates_again() {
    const TOKEN: &str = "critical-reload-token";
    let gw = support::start_with(
        "[admin]\ntoken_file = \"admin.token\"\n[reload]\nwatch_interval_ms = 0\n",
        |dir| {
            std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
            let ds = dir.join("certs/users/supplier/digital-signing.pem");
            std::fs::rename(&ds, dir.join("supplier-ds.pem")).unwrap();
        },
    )
    .await;
    let certs = gw.certs();
    let pem = std::fs::read_to_string(gw.dir.path().join("supplier-ds.pem")).unwrap();
    std::fs::write(certs.join("users/supplier/digital-signing.pem"), &pem).unwrap();
    assert_eq!(round_trip(&gw, &certs).await, "E1006");
    let reload = || async {
        let r = reqwest::Client::new()
            .post(format!("{}/admin/v1/reload", gw.admin()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(status, 200, "{body}");
        body["digital_signing_certs"].as_u64().unwrap()
    };
    // The certificate is back in the directory the gateway reads (where the signing tool also
    // finds it), but only a reload puts it in force.
    assert!(reload().await >= 1);
    assert_eq!(round_trip(&gw, &certs).await, "I99");
}

/// A Transform and its signed pre-command by the supplier; the signed one's code.
async fn round_trip(gw: &TestGateway, certs: &Path) -> String {
    let answer = transform(gw, counter()).await;
    let back = signed_back(certs, "supplier", &answer, 5);
    let (_, got) = send(gw, "supplier", SEND, back.as_bytes()).await;
    code(&got).to_owned()
}
