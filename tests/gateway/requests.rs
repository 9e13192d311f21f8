//! DUIS requests end to end: the public templates, and each refusal the front door makes.

use dccgw::duis::testing::DuisXsd;

use crate::support::{self, element, post};

const SEND: &str = "/api/v1/serviceS";
const TRANSFORM: &str = "/api/v1/serviceT";
const DCC: &str = "/api/v1/serviceD";

/// Which client sends as which originator (by User ID, upper case).
fn client_for(originator: &str) -> Option<&'static str> {
    dccgw::demo::DEMO_USERS
        .iter()
        .find(|(_, id, ..)| id.eq_ignore_ascii_case(originator))
        .map(|(name, ..)| *name)
}

fn path_for(cv: &str) -> &'static str {
    match cv {
        "4" => TRANSFORM,
        "2" | "6" | "8" => DCC,
        _ => SEND,
    }
}

/// Every public request template, as published, sent by the demo User that originated it, is
/// answered with a DUIS response that the DUIS 5.4 XSD validates: `I99` when a demo User sent a
/// requestable variant (`I0` for a DSP schedule created, `I0` with the pre-command for a
/// Transform), the documented refusal otherwise.
#[tokio::test]
async fn every_public_template_gets_a_schema_valid_answer() {
    let Some(anchors) = support::anchors() else {
        return;
    };
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let gw = support::start("").await;
    let dir = anchors.join("duis-samples/templates");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // The templates that change the inventory go last, so that the devices they decommission
    // or withdraw (the demo ESME, the demo hub and its gas proxy) take every other template
    // first.
    let changes_inventory = |f: &std::path::PathBuf| {
        let name = f.file_name().unwrap().to_string_lossy();
        name.starts_with("8.3_") || name.starts_with("8.14.4_")
    };
    files.sort_by_key(|f| changes_inventory(f));
    assert!(files.len() > 100, "only {} templates", files.len());
    let mut answers = Vec::new();
    let mut acknowledged = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let body = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&body);
        let request_id = element(&text, "RequestID").unwrap().to_owned();
        let originator = request_id.split(':').next().unwrap();
        let cv = element(&text, "CommandVariant").unwrap();
        let srv = element(&text, "ServiceReferenceVariant")
            .unwrap()
            .to_owned();
        let eligible = |user: &str| {
            let roles = dccgw::demo::DEMO_USERS
                .iter()
                .find(|u| u.0 == user)
                .unwrap()
                .3;
            let entry = dccgw::catalogue::Catalogue::builtin()
                .get(&srv.parse().unwrap())
                .unwrap();
            entry
                .roles
                .iter()
                .any(|r| roles.split('|').any(|x| x == r.code()))
        };
        let (name, expected) = match client_for(originator) {
            _ if ["7.16", "8.5", "8.6"].contains(&srv.as_str()) => ("supplier", "E44"),
            // A template for a role the demo User does not hold (6.20.2 is the export
            // supplier's).
            Some(name) if !eligible(name) => (name, "E2"),
            // The second supplier is registered for nothing in the demo data (GCS16b's "URP"
            // 4.14 is its one template).
            Some("supplier2") => ("supplier2", "E4"),
            // 5.1 is answered at once with the new schedule's ID; the 5.2 template reads
            // schedule 123, which no User has.
            Some(name) if srv == "5.1" => (name, "I0"),
            Some(name) if srv == "5.2" => (name, "E71"),
            // The DSP holds 6.23 until its ExecutionDateTime, which the template puts in 2030:
            // further ahead than a year and a day.
            Some(name) if srv == "6.23" => (name, "E31"),
            // 8.13 reports the device's answer to a command this gateway sent for local
            // delivery; the template's was never sent.
            Some(name) if srv == "8.13" => (name, "E1010"),
            // A Transform is answered at once, with its pre-command.
            Some(name) if cv == "4" => (name, "I0"),
            // The DCC's own services answered at once: 8.3, 8.14.4 and 12.1 with I0; 8.14.2
            // installs the hub at a meter point the demo supplier is not registered for.
            Some(name) if ["8.3", "8.14.4", "12.1"].contains(&srv.as_str()) => (name, "I0"),
            Some(name) if srv == "8.14.2" => (name, "E4"),
            Some(name) => (name, "I99"),
            // An originator no demo User holds (the DCC's own ID, an unknown supplier ID).
            None => ("supplier", "E1"),
        };
        // The templates carry placeholder signatures and repeat counters: each is given a fresh
        // counter and re-signed with the demo User's key, as a User's client would.
        let counter = 1_000_000 + answers.len() as u64;
        let stamped =
            dccgw::tools::stamp_counter(&String::from_utf8_lossy(&body), counter).unwrap();
        let request_id = format!(
            "{}:{counter}",
            &request_id[..request_id.rfind(':').unwrap()]
        );
        let (client, body) = (gw.client(name), gw.signed(name, stamped.as_bytes()));
        let (status, answer) = post(&client, &format!("{}{}", gw.base(), path_for(cv)), body).await;
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let got = element(&answer, "ResponseCode").unwrap_or("none");
        if got != expected {
            wrong.push(format!(
                "{name} ({srv}, target {}): {got}, expected {expected}",
                request_id.split(':').nth(1).unwrap()
            ));
            continue;
        }
        let expected_status = match expected {
            "I99" | "I0" => 200,
            "E44" | "E31" => 400,
            "E71" => 404,
            "E1010" => 409,
            _ => 403, // E1, E2
        };
        assert_eq!(status, expected_status, "{name}");
        if expected == "I0" && cv == "4" {
            assert!(
                element(&answer, "GBCSVersion").is_some(),
                "{name}: {answer}"
            );
            assert!(
                element(&answer, "GBCSPayload").is_some(),
                "{name}: {answer}"
            );
        }
        assert_eq!(
            element(&answer, "RequestID").map(str::to_ascii_uppercase),
            Some(request_id.to_ascii_uppercase()),
            "{name}"
        );
        assert_eq!(
            element(&answer, "ServiceReferenceVariant"),
            Some(srv.as_str()),
            "{name}"
        );
        acknowledged += usize::from(expected == "I99" || expected == "I0");
        answers.push((name, answer));
    }
    assert!(
        wrong.is_empty(),
        "{} unexpected answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(acknowledged > 100, "only {acknowledged} acknowledged");
    let docs: Vec<&str> = answers.iter().map(|(_, a)| a.as_str()).collect();
    if let Err(report) = xsd.validate_all(&docs) {
        panic!("schema-invalid answers:\n{report}");
    }
}

fn unsigned(originator: &str, target: &str, cv: u8, srv: &str, body: &str) -> Vec<u8> {
    request(originator, target, cv, srv, body)
}

fn request(originator: &str, target: &str, cv: u8, srv: &str, body: &str) -> Vec<u8> {
    // The ServiceReference is the variant's first two parts.
    let sr = match srv.match_indices('.').nth(1) {
        Some((at, _)) => &srv[..at],
        None => srv,
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">
<sr:Header><sr:RequestID>{originator}:{target}:42</sr:RequestID><sr:CommandVariant>{cv}</sr:CommandVariant>
<sr:ServiceReference>{sr}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header>
<sr:Body>{body}</sr:Body></sr:Request>"#
    )
    .into_bytes()
}

const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
const OTHER_USER: &str = "00-DB-12-34-56-78-00-04";
const ESME: &str = "00-DB-12-34-56-78-90-A0";
const READ: &str = "<sr:ReadInstantaneousImportRegisters/>";

/// Each refusal the front door makes, with its documented code and HTTP status.
#[tokio::test]
async fn refusals_carry_their_documented_codes() {
    let gw = support::start("").await;
    let supplier = gw.client("supplier");
    let request = |originator: &str, target: &str, cv: u8, srv: &str, body: &str| {
        gw.signed("supplier", &request(originator, target, cv, srv, body))
    };
    let cases: Vec<(&str, &str, Vec<u8>, &str, u16)> = vec![
        ("acknowledged", SEND, request(SUPPLIER, ESME, 1, "4.1.1", READ), "I99", 200),
        ("wrong URL for CV1", DCC, request(SUPPLIER, ESME, 1, "4.1.1", READ), "E13", 400),
        ("CV not allowed for SRV", TRANSFORM, request(SUPPLIER, ESME, 4, "4.1.1", READ), "E12", 400),
        ("unknown SRV", SEND, request(SUPPLIER, ESME, 1, "99.1", READ), "E44", 400),
        ("body of another SRV", SEND, request(SUPPLIER, ESME, 1, "4.1.1", "<sr:ReadInventory/>"), "E45", 400),
        ("originator of another party", SEND, request(OTHER_USER, ESME, 1, "4.1.1", READ), "E46", 403),
        ("unknown originator", SEND, request("90-B3-D5-1F-30-09-00-00", ESME, 1, "4.1.1", READ), "E1", 403),
        ("malformed RequestID", SEND, unsigned("90-B3-D5-1F-30-01-00", ESME, 1, "4.1.1", READ), "E43", 400),
        ("unsigned", SEND, unsigned(SUPPLIER, ESME, 1, "4.1.1", READ), "E48", 403),
        ("not XML", SEND, b"hello".to_vec(), "E40", 400),
        (
            "DOCTYPE",
            SEND,
            br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"/>"#.to_vec(),
            "E41",
            400,
        ),
    ];
    for (what, path, body, code, status) in cases {
        let (got_status, answer) = post(&supplier, &format!("{}{path}", gw.base()), body).await;
        assert_eq!(
            element(&answer, "ResponseCode"),
            Some(code),
            "{what}: {answer}"
        );
        assert_eq!(got_status, status, "{what}");
    }
    let wrong_type = supplier
        .post(format!("{}{SEND}", gw.base()))
        .header("content-type", "text/plain")
        .body(request(SUPPLIER, ESME, 1, "4.1.1", READ))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status().as_u16(), 415);
    assert_eq!(wrong_type.headers()["x-duis-response-code"], "E40");
    let get = supplier
        .get(format!("{}{SEND}", gw.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let elsewhere = supplier
        .post(format!("{}/api/v1/other", gw.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status().as_u16(), 404);

    let metrics = gw.metrics().await;
    for line in [
        r#"dccgw_request_refusals_total{reason="party_mismatch"} 1"#,
        r#"dccgw_request_refusals_total{reason="wrong_service"} 1"#,
        r#"dccgw_request_refusals_total{reason="xml_doctype"} 1"#,
        r#"dccgw_request_refusals_total{reason="content_type"} 1"#,
        r#"dccgw_request_duration_seconds_count{class="A",code="I99",role="IS",service="send",srv="4.1.1"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    gw.running.shutdown().await;
}

/// The schema-valid answers to refusals, checked by the independent validator too.
#[tokio::test]
async fn refusal_answers_validate_against_the_schema() {
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let gw = support::start("").await;
    let supplier = gw.client("supplier");
    let request = |originator: &str, target: &str, cv: u8, srv: &str, body: &str| {
        gw.signed("supplier", &request(originator, target, cv, srv, body))
    };
    let mut answers = Vec::new();
    for (name, path, body) in [
        ("E13", DCC, request(SUPPLIER, ESME, 1, "4.1.1", READ)),
        ("E12", TRANSFORM, request(SUPPLIER, ESME, 4, "4.1.1", READ)),
        (
            "E45",
            SEND,
            request(SUPPLIER, ESME, 1, "4.1.1", "<sr:ReadInventory/>"),
        ),
        ("E46", SEND, request(OTHER_USER, ESME, 1, "4.1.1", READ)),
    ] {
        let (_, answer) = post(&supplier, &format!("{}{path}", gw.base()), body).await;
        answers.push((name, answer));
    }
    for (name, answer) in &answers {
        assert_eq!(element(answer, "ResponseCode"), Some(*name), "{answer}");
    }
    let docs: Vec<&str> = answers.iter().map(|(_, a)| a.as_str()).collect();
    if let Err(report) = xsd.validate_all(&docs) {
        panic!("schema-invalid answers:\n{report}");
    }
}

/// A replayed counter is refused, before and after a restart; a higher one is accepted.
#[tokio::test]
async fn replayed_counters_are_refused_across_a_restart() {
    let gw = support::start("").await;
    let send = |gw: &support::TestGateway, counter: u64| {
        let xml = request(SUPPLIER, ESME, 1, "4.1.1", READ);
        let xml = dccgw::tools::stamp_counter(&String::from_utf8(xml).unwrap(), counter).unwrap();
        let body = gw.signed("supplier", xml.as_bytes());
        let (client, url) = (gw.client("supplier"), format!("{}{SEND}", gw.base()));
        async move {
            let (status, answer) = post(&client, &url, body).await;
            (status, element(&answer, "ResponseCode").map(str::to_owned))
        }
    };
    assert_eq!(send(&gw, 500).await, (200, Some("I99".into())));
    assert_eq!(send(&gw, 500).await, (409, Some("E57".into())));
    assert_eq!(send(&gw, 499).await, (409, Some("E57".into())));
    let gw = gw.restart().await;
    assert_eq!(send(&gw, 500).await, (409, Some("E57".into())));
    assert_eq!(send(&gw, 501).await, (200, Some("I99".into())));
    gw.running.shutdown().await;
}
