//! Local delivery over mTLS: a command for local delivery reaches its User as a signed
//! `LocalCommand` message (XSD-valid, xmlsec1-verified) carrying the command the device would
//! get — for Command Variant 2 only that, for 3 that and the device's Service Response, for 6
//! the User-signed command, for 7 both. The User then reports the device's answer with an 8.13
//! Return Local Command Response, recorded once against the command; the audit trail records
//! that a final message follows each of them.

use std::time::Duration;

use base64::Engine as _;
use dccgw::audit::{read_trail, AuditEvent};
use dccgw::demo::DEMO_ESME;
use dccgw::domain::DCC_ID;
use dccgw::duis::testing::DuisXsd;
use dccgw::gbcs::command::mac_holds;
use dccgw::gbcs::usecase::response_to;
use dccgw::gbcs::{Apdu, Cra, DlmsDateTime, GeneralSigning, SignatureField};
use dccgw::receiver::Received;
use tokio::sync::mpsc;

use super::critical::{code, counter, routed, send, signed_back, transform};
use super::critical::{DCC, SEND};
use super::round_trip::{next, SUPPLIER};
use super::support::{element, xmlsec1_verifies, TestGateway};

pub(super) fn request(target: &str, counter: u64, cv: u8, srv: &str, body: &str) -> String {
    let sr = match srv.match_indices('.').nth(1) {
        Some((at, _)) => &srv[..at],
        None => srv,
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{SUPPLIER}:{target}:{counter}</sr:RequestID><sr:CommandVariant>{cv}</sr:CommandVariant><sr:ServiceReference>{sr}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header><sr:Body>{body}</sr:Body></sr:Request>"#
    )
}

/// A 4.1.1 read of the demo meter as Command Variant `cv`, answered `I99`; its RequestID.
async fn read(gw: &TestGateway, cv: u8) -> String {
    let n = counter();
    let xml = request(
        DEMO_ESME,
        n,
        cv,
        "4.1.1",
        "<sr:ReadInstantaneousImportRegisters/>",
    );
    let path = if cv == 2 { DCC } else { SEND };
    let (status, answer) = send(gw, "supplier", path, xml.as_bytes()).await;
    assert_eq!((status, code(&answer)), (200, "I99"), "{answer}");
    format!("{SUPPLIER}:{DEMO_ESME}:{n}")
}

/// The messages for `id`, `count` of them (others are passed over).
async fn messages_for(rx: &mut mpsc::Receiver<Received>, id: &str, count: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < count {
        let got = next(rx).await;
        if got
            .description
            .request_id
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(id))
            && got.description.alert_code.is_none()
        {
            out.push(String::from_utf8(got.body.to_vec()).unwrap());
        }
    }
    out
}

/// The command in a `LocalCommand` message: behind the DCC's MAC header, for the demo meter.
pub(super) fn local_command(xml: &str) -> GeneralSigning {
    let payload = xml
        .split("<sr:LocalCommand><sr:GBCSPayload>")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap_or_else(|| panic!("no LocalCommand: {xml}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    let Apdu::Mac(sealed) = Apdu::decode(&bytes).unwrap() else {
        panic!("a local command travels behind the MAC header")
    };
    assert!(mac_holds(&sealed));
    assert_eq!(sealed.inner.transaction.cra, Cra::Command);
    assert_eq!(sealed.inner.recipient.to_string(), DEMO_ESME);
    sealed.inner
}

/// The 8.13 reporting `response` (the device's answer) to the local command `original`.
pub(super) fn return_response(original: &str, response: &GeneralSigning) -> String {
    let bytes = response.encode().unwrap();
    let body = format!(
        "<sr:ReturnLocalCommandResponse><sr:OriginalRequestID>{original}</sr:OriginalRequestID><sr:DeviceGBCSResponse>{}</sr:DeviceGBCSResponse></sr:ReturnLocalCommandResponse>",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    request(&DCC_ID.to_string(), counter(), 8, "8.13", &body)
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_for_local_delivery_reach_the_user_and_their_answers_come_back_by_8_13() {
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let (gw, _pki, rx_server, mut rx) = routed("").await;
    let mut all = Vec::new();
    // CV2: the command for local delivery, and nothing for the device.
    let id2 = read(&gw, 2).await;
    let messages = messages_for(&mut rx, &id2, 1).await;
    let command = local_command(&messages[0]);
    assert_eq!(command.signature, SignatureField::Empty);
    assert_eq!(element(&messages[0], "ResponseCode"), Some("I0"));
    all.extend(messages);
    // CV3: the same, and the device's Service Response.
    let id3 = read(&gw, 3).await;
    let messages = messages_for(&mut rx, &id3, 2).await;
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.contains("<sr:LocalCommand>"))
            .count(),
        1,
        "{messages:?}"
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| !m.contains("<sr:LocalCommand>") && m.contains("<sr:GBCSPayload>"))
            .count(),
        1,
        "{messages:?}"
    );
    all.extend(messages);
    // The User delivers the CV2 command and returns the device's answer: recorded, once.
    let answer = response_to(
        &command,
        Some(DlmsDateTime::from_utc(time::OffsetDateTime::now_utc())),
        vec![0x0C, 0x01, 0x00],
    );
    let (status, got) = send(
        &gw,
        "supplier",
        DCC,
        return_response(&id2, &answer).as_bytes(),
    )
    .await;
    assert_eq!((status, code(&got)), (200, "I0"), "{got}");
    all.push(got);
    let (_, got) = send(
        &gw,
        "supplier",
        DCC,
        return_response(&id2, &answer).as_bytes(),
    )
    .await;
    assert_eq!(code(&got), "E1010", "an answer already returned: {got}");
    // Not the device's answer to that command: another message code.
    let id3_command = all
        .iter()
        .find(|m| m.contains(&id3) && m.contains("<sr:LocalCommand>"))
        .unwrap();
    let mut wrong = response_to(&local_command(id3_command), None, vec![]);
    wrong.other.message_code = dccgw::gbcs::MessageCode(0x0001);
    let (_, got) = send(
        &gw,
        "supplier",
        DCC,
        return_response(&id3, &wrong).as_bytes(),
    )
    .await;
    assert_eq!(code(&got), "E1011", "{got}");
    for m in all.iter().filter(|m| m.contains("<sr:LocalCommand>")) {
        xmlsec1_verifies(&gw, m.as_bytes());
    }
    let docs: Vec<&str> = all.iter().map(String::as_str).collect();
    if let Err(report) = xsd.validate_all(&docs) {
        panic!("schema-invalid messages:\n{report}");
    }
    assert_follows(&gw, &[(&id2, true), (&id3, true)]).await;
    rx_server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_pre_command_for_local_delivery_reaches_the_user_signed() {
    let (gw, _pki, rx_server, mut rx) = routed("").await;
    for (cv, path, count) in [(6u8, DCC, 1usize), (7, SEND, 2)] {
        let answer = transform(&gw, counter()).await;
        let id = element(&answer, "RequestID").unwrap().to_owned();
        let back = signed_back(&gw.certs(), "supplier", &answer, cv);
        let (status, got) = send(&gw, "supplier", path, back.as_bytes()).await;
        assert_eq!((status, code(&got)), (200, "I99"), "CV{cv}: {got}");
        let messages = messages_for(&mut rx, &id, count).await;
        let local = messages
            .iter()
            .find(|m| m.contains("<sr:LocalCommand>"))
            .unwrap_or_else(|| panic!("CV{cv}: no LocalCommand in {messages:?}"));
        let command = local_command(local);
        // The User's own signature, as it signed the pre-command.
        assert!(
            matches!(command.signature, SignatureField::Ecdsa(_)),
            "CV{cv}"
        );
        let transform = dccgw::duis::critical::read_transform_response(answer.as_bytes()).unwrap();
        assert!(command.encode().unwrap().starts_with(&transform.precommand));
        if cv == 7 {
            assert!(messages.iter().any(|m| !m.contains("<sr:LocalCommand>")));
        }
        xmlsec1_verifies(&gw, local.as_bytes());
        assert_follows(&gw, &[(&id, true)]).await;
    }
    rx_server.stop().await;
}

/// Each accepted request's audit record says whether a final message follows (the Transform's
/// record, under the same RequestID, says none does).
async fn assert_follows(gw: &TestGateway, want: &[(&str, bool)]) {
    let dir = gw.running.gateway.audit.dir().to_owned();
    for _ in 0..100 {
        let mut found = Vec::new();
        read_trail(&dir, |_, e| {
            if let AuditEvent::Request(r) = e {
                if r.accepted() && r.code == "I99" {
                    found.push((r.request_id.map(|i| i.to_string()), r.response_follows));
                }
            }
        })
        .unwrap();
        let all = want.iter().all(|(id, follows)| {
            found.iter().any(|(r, f)| {
                r.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(id)) && f == follows
            })
        });
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the audit trail does not record {want:?}");
}
