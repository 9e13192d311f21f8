//! Signatures against an independent implementation, both ways: `xmlsec1` signs a request the
//! gateway accepts, and verifies every kind of answer the gateway signs. Tampering, a swapped or
//! another User's certificate, and an expired one are refused with their codes. `dccgw verify`
//! reproduces the DCC signing tool's known answers.

use std::process::Command;

use time::OffsetDateTime;

use dccgw::domain::SmkiRole;
use dccgw::pki::{Ca, LeafSpec, Usage, Validity};

use crate::support::{self, element, TestGateway};

const SEND: &str = "/api/v1/serviceS";
const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";

fn read_request(counter: u64) -> String {
    dccgw::demo::example_request_xml(SUPPLIER, dccgw::demo::DEMO_ESME, counter)
}

async fn post(gw: &TestGateway, path: &str, body: Vec<u8>) -> (u16, String) {
    support::post(
        &gw.client("supplier"),
        &format!("{}{path}", gw.base()),
        body,
    )
    .await
}

#[tokio::test]
async fn xmlsec1_signs_requests_the_gateway_accepts_and_verifies_every_answer() {
    if !support::have_tool("xmlsec1") {
        return;
    }
    let gw = support::start("").await;
    let dir = gw.dir.path();
    let user = gw.certs().join("users/supplier");

    let signed = support::xmlsec1_sign(
        dir,
        &user.join("xml-sign.key.pem"),
        &user.join("xml-sign.pem"),
        &read_request(11),
    );
    let (status, answer) = post(&gw, SEND, signed).await;
    assert_eq!(
        (status, element(&answer, "ResponseCode")),
        (200, Some("I99")),
        "{answer}"
    );

    // Every kind of answer the gateway emits, verified by xmlsec1 with the DCC's certificate.
    let ours = gw.signed("supplier", read_request(12).as_bytes());
    let tampered = String::from_utf8(gw.signed("supplier", read_request(13).as_bytes()))
        .unwrap()
        .replacen(":13<", ":14<", 1);
    let kinds: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("acknowledgement", SEND, ours, "I99"),
        (
            "refusal with a variant",
            "/api/v1/serviceD",
            gw.signed("supplier", read_request(15).as_bytes()),
            "E13",
        ),
        ("signature refusal", SEND, tampered.into_bytes(), "E50"),
        (
            "refusal without a variant",
            SEND,
            b"not xml".to_vec(),
            "E40",
        ),
    ];
    for (name, path, body, code) in kinds {
        let (_, answer) = post(&gw, path, body).await;
        assert_eq!(
            element(&answer, "ResponseCode"),
            Some(code),
            "{name}: {answer}"
        );
        assert!(answer.contains("<ds:SignatureValue>"), "{name} is unsigned");
        let verified = support::xmlsec1_dcc_verify(&gw, answer.as_bytes());
        assert!(verified.is_ok(), "{name}: {verified:?}");
        // And xmlsec1 is a real check: a changed answer fails it.
        let changed = answer.replacen(code, "I0", 1);
        assert!(
            support::xmlsec1_dcc_verify(&gw, changed.as_bytes()).is_err(),
            "{name} changed"
        );
    }
    gw.running.shutdown().await;
}

/// Tampering, a certificate of another User, a swapped certificate and an expired one.
#[tokio::test]
async fn bad_signatures_are_refused_with_their_codes() {
    let now = OffsetDateTime::now_utc();
    let expired_dir = tempfile::tempdir().unwrap();
    let expired_path = expired_dir.path().to_owned();
    let gw = support::start_with("", |dir| {
        // An expired XML-signing certificate for the supplier, in the gateway's store.
        let certs = dir.join("certs");
        let ca = Ca::load(&certs.join("ca.pem"), &certs.join("ca.key.pem")).unwrap();
        let spec = LeafSpec {
            common_name: Some("expired signer".into()),
            role: SmkiRole::XmlSigning,
            user_id: Some("90-B3-D5-1F-30-01-00-00".parse().unwrap()),
            dns_names: vec![],
            ip_addresses: vec![],
            usage: Usage::XmlSigning,
            validity: Validity {
                not_before: now - time::Duration::days(30),
                not_after: now - time::Duration::days(1),
            },
        };
        let issued = ca.issue(&spec).unwrap();
        std::fs::write(dir.join("user-certs/expired.pem"), &issued.cert_pem).unwrap();
        std::fs::write(expired_path.join("cert.pem"), &issued.cert_pem).unwrap();
        std::fs::write(expired_path.join("key.pem"), &issued.key_pkcs8_pem).unwrap();
    })
    .await;
    let good = String::from_utf8(gw.signed("supplier", read_request(20).as_bytes())).unwrap();
    let (status, answer) = post(&gw, SEND, good.clone().into_bytes()).await;
    assert_eq!(
        (status, element(&answer, "ResponseCode")),
        (200, Some("I99"))
    );

    let flip = |doc: &str, marker: &str| {
        let at = doc.find(marker).unwrap() + marker.len();
        let mut bytes = doc.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        bytes
    };
    // The network operator's certificate, named in KeyInfo of a request the supplier signed.
    let operator = dccgw::identity::identity_from_pem(
        &std::fs::read(gw.certs().join("users/network-operator/xml-sign.pem")).unwrap(),
    )
    .unwrap();
    let swapped = good.replace(
        &good[good.find("<ds:X509SerialNumber>").unwrap()
            ..good.find("</ds:X509SerialNumber>").unwrap()],
        &format!("<ds:X509SerialNumber>{}", operator.serial_decimal),
    );
    let by_operator = gw.signed("network-operator", read_request(21).as_bytes());
    let expired = dccgw::tools::sign(
        read_request(22).as_bytes(),
        &expired_dir.path().join("key.pem"),
        &expired_dir.path().join("cert.pem"),
        None,
    )
    .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "changed body",
            good.replacen("<sr:Body>", "<sr:Body> ", 1).into_bytes(),
            "E50",
        ),
        (
            "changed header",
            good.replacen(":20<", ":23<", 1).into_bytes(),
            "E50",
        ),
        (
            "changed DigestValue",
            flip(&good, "<ds:DigestValue>"),
            "E50",
        ),
        (
            "changed SignedInfo",
            good.replacen(
                r#"<ds:Reference URI="">"#,
                r#"<ds:Reference URI="" Id="r">"#,
                1,
            )
            .into_bytes(),
            "E51",
        ),
        (
            "changed signature value",
            flip(&good, "<ds:SignatureValue>"),
            "E51",
        ),
        (
            "unknown certificate",
            good.replacen("<ds:X509SerialNumber>", "<ds:X509SerialNumber>9", 1)
                .into_bytes(),
            "E52",
        ),
        ("swapped certificate", swapped.into_bytes(), "E56"),
        ("another User's certificate", by_operator, "E56"),
        ("expired certificate", expired.into_bytes(), "E53"),
    ];
    for (what, body, code) in cases {
        let (status, answer) = post(&gw, SEND, body).await;
        assert_eq!(
            (status, element(&answer, "ResponseCode")),
            (403, Some(code)),
            "{what}: {answer}"
        );
    }
    gw.running.shutdown().await;
}

/// `dccgw verify` on the DCC signing tool's published messages: exit codes as documented.
#[test]
fn dccgw_verify_reproduces_the_known_answers() {
    let Some(anchors) = support::anchors() else {
        return;
    };
    let certs = anchors.join("certs/zaz1-public");
    let samples = anchors.join("duis-samples");
    let cases = [
        ("responses/signing-tool__readfw-response.xml", 0),
        ("responses/duis-parser__readfw-response.xml", 0),
        ("negative/signing-tool__readfw-response-badsignature.xml", 1),
        (
            "negative/signing-tool__readfw-response-nonexist-serial.xml",
            3,
        ),
        ("negative/signing-tool__readfw-response-no-signature.xml", 4),
    ];
    for (file, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_dccgw"))
            .arg("verify")
            .arg("--certs")
            .arg(&certs)
            .arg(samples.join(file))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(want),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // From standard input too, and a document that is not XML at all is malformed (4).
    let mut child = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args(["verify", "--certs"])
        .arg(&certs)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"<<<").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(4));
}

/// `dccgw sign` then `dccgw verify` with our dev PKI, with the chain checked.
#[test]
fn dccgw_sign_output_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    dccgw::pki::init(&certs, OffsetDateTime::now_utc()).unwrap();
    std::fs::write(dir.path().join("in.xml"), read_request(30)).unwrap();
    let user = certs.join("users/supplier");
    let out = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .arg("sign")
        .arg("--stamp-counter")
        .arg("--key")
        .arg(user.join("xml-sign.key.pem"))
        .arg("--cert")
        .arg(user.join("xml-sign.pem"))
        .arg(dir.path().join("in.xml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = String::from_utf8(out.stdout).unwrap();
    assert!(!signed.contains(":30<"), "the counter was not stamped");
    std::fs::write(dir.path().join("signed.xml"), &signed).unwrap();
    let verify = |trust: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dccgw"));
        c.arg("verify").arg("--certs").arg(&user);
        if trust {
            c.arg("--trust").arg(certs.join("ca.pem"));
        }
        c.arg(dir.path().join("signed.xml"))
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(verify(false), Some(0));
    assert_eq!(verify(true), Some(0));
    // A foreign trust anchor: the certificate does not chain to it (5).
    let foreign = Ca::generate(
        "foreign",
        Validity::days_from(OffsetDateTime::now_utc(), 30),
    )
    .unwrap();
    std::fs::write(dir.path().join("foreign.pem"), foreign.cert_pem()).unwrap();
    let code = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .arg("verify")
        .arg("--certs")
        .arg(&user)
        .arg("--trust")
        .arg(dir.path().join("foreign.pem"))
        .arg(dir.path().join("signed.xml"))
        .output()
        .unwrap()
        .status
        .code();
    assert_eq!(code, Some(5));
}
