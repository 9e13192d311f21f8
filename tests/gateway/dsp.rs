//! DSP-held future-dated requests and DSP schedules end to end, over mTLS, with the simulated
//! hub network behind and a real Receive Response Service in front: a held request goes to its
//! device at its execution time and its Service Response follows; a schedule runs at its times
//! and each result arrives as a `DSPScheduledMessage`; 5.2 reads it back, 5.3 deletes it and
//! nothing more runs; a change of supplier removes it with `DSPScheduleRemoval` to the outgoing
//! supplier; the refusals carry their codes. Every message is checked by `xmllint` against the
//! DUIS 5.4 schema and by `xmlsec1` against the DCC's certificate.

use std::time::Duration;

use dccgw::config::Config;
use dccgw::demo::{DEMO_ESME, DEMO_MPAN};
use dccgw::domain::DCC_ID;
use dccgw::duis::testing::DuisXsd;
use dccgw::receiver::Received;
use dccgw::server;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::round_trip::{next, pki_and_receiver, routed_dir_with, SUPPLIER};
use super::support::{self, TestGateway};

const NETWORK_OPERATOR: &str = "90-B3-D5-1F-30-02-00-00";
const SUPPLIER2: &str = "90-B3-D5-1F-30-03-00-00";
const TOKEN: &str = "dsp-test-admin-token";
/// Devices answer in 10 ms.
const HUB: &str = "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n";
/// A schedule's day lasts two seconds.
const SHORT_DAYS: &str = "[dsp]\nschedule_day_secs = 2\n";

/// A gateway whose Users' responses go to the receiver on `port`, with `tail` appended to its
/// configuration, and an admin token.
async fn gateway(pki: &std::path::Path, port: u16, tail: &str) -> TestGateway {
    let tail = format!("[admin]\ntoken_file = \"admin.token\"\n{tail}");
    let (dir, path) = routed_dir_with(pki, port, HUB, "", &tail);
    std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
    let config = Config::load(&path, Vec::new()).unwrap();
    let running = server::start(&config).await.unwrap();
    TestGateway { running, dir }
}

/// `xs:dateTime` of `t`, whole seconds, UTC.
fn xs(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The 4.1.1 read of the demo electricity meter, to be executed at `at`.
pub fn held_read(user: &str, counter: u64, at: OffsetDateTime) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{user}:{DEMO_ESME}:{counter}</sr:RequestID><sr:CommandVariant>1</sr:CommandVariant><sr:ServiceReference>4.1</sr:ServiceReference><sr:ServiceReferenceVariant>4.1.1</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:ReadInstantaneousImportRegisters><sr:ExecutionDateTime>{}</sr:ExecutionDateTime></sr:ReadInstantaneousImportRegisters></sr:Body></sr:Request>"#,
        xs(at)
    )
}

/// A non-device request (Command Variant 8, to the DCC) of `srv` with `body`.
pub fn dcc_request(user: &str, counter: u64, srv: &str, body: &str) -> String {
    // The service reference is the variant's first two parts.
    let sr = match srv.rsplit_once('.') {
        Some((head, _)) if srv.matches('.').count() == 2 => head,
        _ => srv,
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{user}:{DCC_ID}:{counter}</sr:RequestID><sr:CommandVariant>8</sr:CommandVariant><sr:ServiceReference>{sr}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header><sr:Body>{body}</sr:Body></sr:Request>"#
    )
}

/// A Daily 4.6.1 Retrieve Import Daily Read Log schedule on the demo electricity meter, whose
/// first execution is at `first`.
pub fn create_schedule(first: OffsetDateTime) -> String {
    let date = first.date();
    let time = first.time();
    format!(
        "<sr:CreateSchedule><sr:ScheduleFrequency>Daily</sr:ScheduleFrequency>\
         <sr:ScheduleStartDate>{date}</sr:ScheduleStartDate>\
         <sr:ScheduleExecutionStartTime>{:02}:{:02}:{:02}Z</sr:ScheduleExecutionStartTime>\
         <sr:DSPScheduledServiceReference>4.6</sr:DSPScheduledServiceReference>\
         <sr:DSPScheduledServiceReferenceVariant>4.6.1</sr:DSPScheduledServiceReferenceVariant>\
         <sr:DeviceID>{DEMO_ESME}</sr:DeviceID>\
         <sr:DSPRetrieveImportDailyReadLog><sr:StartDateOffset>-1</sr:StartDateOffset>\
         <sr:StartTime>00:00:00Z</sr:StartTime><sr:EndDateOffset>0</sr:EndDateOffset>\
         <sr:EndTime>00:00:00Z</sr:EndTime></sr:DSPRetrieveImportDailyReadLog></sr:CreateSchedule>",
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// The demo User `name`'s signed request, posted to `service`; the synchronous answer.
pub async fn send(gw: &TestGateway, name: &str, service: &str, xml: &str) -> (u16, String) {
    let body = gw.signed(name, xml.as_bytes());
    let url = format!("{}/api/v1/{service}", gw.base());
    support::post(&gw.client(name), &url, body).await
}

fn code(answer: &str) -> &str {
    support::element(answer, "ResponseCode").unwrap_or_default()
}

/// Every document is valid DUIS 5.4 (xmllint) and carries a signature by the DCC's key that
/// `xmlsec1` verifies.
pub fn valid_and_signed(gw: &TestGateway, docs: &[&str]) {
    if let Some(xsd) = DuisXsd::prepare() {
        if let Err(report) = xsd.validate_all(docs) {
            panic!("xmllint refused a message:\n{report}\n{docs:?}");
        }
    }
    for doc in docs {
        support::xmlsec1_verifies(gw, doc.as_bytes());
    }
}

fn text(m: &Received) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

/// Waits out any message already on its way, then asserts that none comes for `quiet`.
async fn nothing_more(rx: &mut mpsc::Receiver<Received>, quiet: Duration) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    while rx.try_recv().is_ok() {}
    if let Ok(Some(extra)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("an unexpected message: {}", text(&extra));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_request_is_sent_at_its_execution_time_and_its_response_follows() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let gw = gateway(pki.path(), rx_server.local_addr().port(), "").await;
    let at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::from_secs(3);
    let (status, answer) = send(&gw, "supplier", "serviceS", &held_read(SUPPLIER, 1, at)).await;
    assert_eq!((status, code(&answer)), (200, "I99"), "{answer}");
    let request_id = format!("{SUPPLIER}:{DEMO_ESME}:1");
    // Held durably, and nothing sent yet.
    assert_eq!(gw.running.gateway.dsp.holds.len(), 1);

    let got = next(&mut rx).await;
    let arrived = OffsetDateTime::now_utc();
    assert!(arrived >= at, "sent before its time: {arrived} < {at}");
    assert_eq!(got.description.request_id.as_deref(), Some(&request_id[..]));
    assert_eq!(got.description.response_code.as_deref(), Some("I0"));
    let body = text(&got);
    assert!(support::element(&body, "GBCSPayload").is_some(), "{body}");
    valid_and_signed(&gw, &[&answer, &body]);
    // Released, the hold is gone; the audit trail promised the response that came.
    while !gw.running.gateway.dsp.holds.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(audited_follows(&gw, &request_id).await);
    counted(&gw, "held", "sent", 1).await;
    counted(&gw, "held", "refused", 0).await;
    rx_server.stop().await;
}

/// Waits (a few seconds at most) until `dccgw_dsp_executions_total{kind, outcome}` is `n`.
async fn counted(gw: &TestGateway, kind: &str, outcome: &str, n: u64) {
    let line = format!("dccgw_dsp_executions_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}\n");
    for _ in 0..100 {
        if gw.running.gateway.metrics.render().contains(&line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {line:?} in /metrics");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_request_for_local_delivery_too_reaches_the_user_and_the_device_at_its_time() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let gw = gateway(pki.path(), rx_server.local_addr().port(), "").await;
    let at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::from_secs(3);
    // Command Variant 3: the command to the User for local delivery and to the device.
    let xml = held_read(SUPPLIER, 1, at).replace("<sr:CommandVariant>1<", "<sr:CommandVariant>3<");
    let (status, answer) = send(&gw, "supplier", "serviceS", &xml).await;
    assert_eq!((status, code(&answer)), (200, "I99"), "{answer}");
    assert_eq!(gw.running.gateway.dsp.holds.len(), 1);
    let request_id = format!("{SUPPLIER}:{DEMO_ESME}:1");
    let (mut local, mut response) = (None, None);
    while local.is_none() || response.is_none() {
        let got = next(&mut rx).await;
        assert!(OffsetDateTime::now_utc() >= at, "sent before its time");
        assert_eq!(got.description.request_id.as_deref(), Some(&request_id[..]));
        let body = text(&got);
        if body.contains("<sr:LocalCommand>") {
            local = Some(body);
        } else {
            assert_eq!(got.description.response_code.as_deref(), Some("I0"));
            response = Some(body);
        }
    }
    let (local, response) = (local.unwrap(), response.unwrap());
    assert!(support::element(&local, "GBCSPayload").is_some(), "{local}");
    valid_and_signed(&gw, &[&answer, &local, &response]);
    assert!(audited_follows(&gw, &request_id).await);
    rx_server.stop().await;
}

/// Whether the request's audit record says a final message follows.
async fn audited_follows(gw: &TestGateway, request_id: &str) -> bool {
    gw.running.gateway.audit.sync().durable().await.unwrap();
    use dccgw::audit::{read_trail, AuditEvent};
    let dir = gw.running.gateway.audit.dir().to_owned();
    let mut follows = None;
    read_trail(&dir, |_, e| {
        if let AuditEvent::Request(r) = e {
            if r.request_id.map(|id| id.to_string()).as_deref() == Some(request_id) {
                follows = Some(r.response_follows);
            }
        }
    })
    .unwrap();
    follows.expect("the request's audit record")
}

#[tokio::test(flavor = "multi_thread")]
async fn held_requests_outside_their_window_are_refused_and_access_is_decided_again_at_release() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let gw = gateway(pki.path(), rx_server.local_addr().port(), "").await;
    let now = OffsetDateTime::now_utc();
    // In the past, or further ahead than a year and a day: E31, nothing held.
    let past = held_read(SUPPLIER, 1, now - Duration::from_secs(60));
    let (status, answer) = send(&gw, "supplier", "serviceS", &past).await;
    assert_eq!((status, code(&answer)), (400, "E31"), "{answer}");
    let far = held_read(SUPPLIER, 2, now + Duration::from_secs(400 * 86_400));
    let (status, far_answer) = send(&gw, "supplier", "serviceS", &far).await;
    assert_eq!((status, code(&far_answer)), (400, "E31"), "{far_answer}");
    assert!(gw.running.gateway.dsp.holds.is_empty());
    valid_and_signed(&gw, &[&answer, &far_answer]);

    // Held while the supplier is registered; its registration ends before the execution time,
    // so the release is refused with E4, as the Service Response.
    let at = now.replace_nanosecond(0).unwrap() + Duration::from_secs(3);
    let (_, answer) = send(&gw, "supplier", "serviceS", &held_read(SUPPLIER, 3, at)).await;
    assert_eq!(code(&answer), "I99", "{answer}");
    end_supplier_registration(&gw).await;
    let got = next(&mut rx).await;
    assert_eq!(
        got.description.request_id,
        Some(format!("{SUPPLIER}:{DEMO_ESME}:3"))
    );
    assert_eq!(got.description.response_code.as_deref(), Some("E4"));
    assert_eq!(got.description.response_id, None);
    valid_and_signed(&gw, &[&text(&got)]);
    counted(&gw, "held", "refused", 1).await;
    counted(&gw, "held", "sent", 0).await;
    rx_server.stop().await;
}

/// Ends the demo supplier's import registration now (the meter point has no supplier after).
async fn end_supplier_registration(gw: &TestGateway) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let change = format!(
        r#"[{{"change":"end_registration","mpxn":"{DEMO_MPAN}","role":"IS","user":"{SUPPLIER}","at":{now}}}]"#
    );
    admin_change(gw, change).await;
}

async fn admin_change(gw: &TestGateway, change: String) {
    let r = reqwest::Client::new()
        .post(format!("{}/admin/v1/registry/changes", gw.admin()))
        .bearer_auth(TOKEN)
        .body(change)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}

/// The `DSPScheduleID` in a 5.1 answer.
fn schedule_id(answer: &str) -> u64 {
    support::element(answer, "DSPScheduleID")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no DSPScheduleID in {answer}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_runs_at_its_times_reads_back_and_once_deleted_runs_no_more() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let gw = gateway(pki.path(), rx_server.local_addr().port(), SHORT_DAYS).await;
    let first = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::from_secs(3);
    let create = dcc_request(SUPPLIER, 1, "5.1", &create_schedule(first));
    let (status, created) = send(&gw, "supplier", "serviceD", &create).await;
    assert_eq!((status, code(&created)), (200, "I0"), "{created}");
    let id = schedule_id(&created);

    // Two executions, two days (of two seconds) apart: two DSPScheduledMessages, each with the
    // device's answer and the schedule's ID, under RequestIDs the DCC minted.
    let mut results = Vec::new();
    for _ in 0..2 {
        let got = next(&mut rx).await;
        assert_eq!(got.description.response_code.as_deref(), Some("I0"));
        let body = text(&got);
        assert!(
            body.contains("<sr:DSPScheduledMessage><sr:GBCSPayload>"),
            "{body}"
        );
        assert!(body.contains(&format!("<sr:DSPScheduleID>{id}</sr:DSPScheduleID>")));
        assert!(
            body.contains("<sr:ServiceReferenceVariant>4.6.1<"),
            "{body}"
        );
        let rid = got.description.request_id.clone().unwrap();
        assert!(
            rid.starts_with(&format!("{SUPPLIER}:{DEMO_ESME}:")),
            "{rid}"
        );
        results.push((OffsetDateTime::now_utc(), rid, body));
    }
    assert!(results[0].0 >= first, "ran before its time");
    assert!(
        results[1].0 >= first + Duration::from_secs(2),
        "ran early the second time"
    );
    assert_ne!(results[0].1, results[1].1);
    counted(&gw, "scheduled", "sent", 2).await;
    // Each execution's decision is audited with the rule set it used and the role it chose.
    let mut executions = Vec::new();
    dccgw::audit::read_trail(gw.running.gateway.audit.dir(), |_, e| {
        if let dccgw::audit::AuditEvent::Execution(x) = e {
            executions.push(x.clone());
        }
    })
    .unwrap();
    let ran: Vec<_> = results.iter().map(|r| r.1.to_ascii_uppercase()).collect();
    for rid in &ran {
        let x = executions
            .iter()
            .find(|x| x.request_id.to_string().eq_ignore_ascii_case(rid))
            .unwrap_or_else(|| panic!("no execution record for {rid}: {executions:?}"));
        assert_eq!(
            (x.source.as_str(), x.decision.as_str(), x.rules.as_str()),
            ("scheduled", "sent", "base")
        );
        assert_eq!(x.role.map(|r| r.code()), Some("IS"));
    }

    // 5.2, by ID and by device: the schedule as created.
    let read = dcc_request(
        SUPPLIER,
        2,
        "5.2",
        &format!("<sr:ReadSchedule><sr:DSPScheduleID>{id}</sr:DSPScheduleID></sr:ReadSchedule>"),
    );
    let (_, by_id) = send(&gw, "supplier", "serviceD", &read).await;
    assert_eq!(code(&by_id), "I0", "{by_id}");
    assert!(by_id.contains(&format!(
        "<sr:DSPSchedules><sr:DSPScheduleID>{id}</sr:DSPScheduleID>"
    )));
    assert!(by_id.contains("<sr:DSPRetrieveImportDailyReadLog><sr:StartDateOffset>-1<"));
    let read = dcc_request(
        SUPPLIER,
        3,
        "5.2",
        &format!("<sr:ReadSchedule><sr:DeviceID>{DEMO_ESME}</sr:DeviceID></sr:ReadSchedule>"),
    );
    let (_, by_device) = send(&gw, "supplier", "serviceD", &read).await;
    assert_eq!(code(&by_device), "I0", "{by_device}");
    // Another User sees none of it.
    let theirs = dcc_request(
        NETWORK_OPERATOR,
        1,
        "5.2",
        &format!("<sr:ReadSchedule><sr:DSPScheduleID>{id}</sr:DSPScheduleID></sr:ReadSchedule>"),
    );
    let (status, not_theirs) = send(&gw, "network-operator", "serviceD", &theirs).await;
    assert_eq!((status, code(&not_theirs)), (404, "E71"), "{not_theirs}");

    // 5.3 deletes it: I0, and no execution follows.
    let delete = dcc_request(
        SUPPLIER,
        4,
        "5.3",
        &format!(
            "<sr:DeleteSchedule><sr:DSPScheduleID>{id}</sr:DSPScheduleID></sr:DeleteSchedule>"
        ),
    );
    let (_, deleted) = send(&gw, "supplier", "serviceD", &delete).await;
    assert_eq!(code(&deleted), "I0", "{deleted}");
    nothing_more(&mut rx, Duration::from_secs(5)).await;
    let (_, gone) = send(&gw, "supplier", "serviceD", &read.replace(":3<", ":5<")).await;
    assert_eq!(code(&gone), "E71", "{gone}");

    let docs = [
        &created[..],
        &results[0].2,
        &results[1].2,
        &by_id,
        &by_device,
        &not_theirs,
        &deleted,
        &gone,
    ];
    valid_and_signed(&gw, &docs);
    rx_server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_of_supplier_removes_the_outgoing_suppliers_schedule_and_tells_it() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let gw = gateway(pki.path(), rx_server.local_addr().port(), "").await;
    // Its first execution is a day away: nothing runs during the test.
    let first = OffsetDateTime::now_utc() + Duration::from_secs(86_400);
    let create = dcc_request(SUPPLIER, 1, "5.1", &create_schedule(first));
    let (_, created) = send(&gw, "supplier", "serviceD", &create).await;
    assert_eq!(code(&created), "I0", "{created}");
    let id = schedule_id(&created);

    let now = OffsetDateTime::now_utc().unix_timestamp();
    admin_change(
        &gw,
        format!(
            r#"[{{"change":"end_registration","mpxn":"{DEMO_MPAN}","role":"IS","user":"{SUPPLIER}","at":{now}}},
                {{"change":"add_registration","mpxn":"{DEMO_MPAN}","registration":{{"role":"IS","user":"{SUPPLIER2}","from":{now},"to":null}}}}]"#
        ),
    )
    .await;
    // N3 to both suppliers, and N5 (DSPScheduleRemoval) to the outgoing one only.
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = next(&mut rx).await;
        let to = m.description.response_id.clone().unwrap_or_default();
        let to = to.split(':').nth(1).unwrap_or_default().to_owned();
        got.push((
            to,
            m.description.alert_code.clone().unwrap_or_default(),
            text(&m),
        ));
    }
    got.sort();
    let who: Vec<_> = got
        .iter()
        .map(|(to, code, _)| (to.as_str(), code.as_str()))
        .collect();
    assert_eq!(who, [(SUPPLIER, "N3"), (SUPPLIER, "N5"), (SUPPLIER2, "N3")]);
    let removal = &got[1].2;
    assert!(removal.contains(&format!(
        "<sr:DSPScheduleRemoval><sr:DeviceID>{DEMO_ESME}</sr:DeviceID><sr:DSPScheduleID>{id}</sr:DSPScheduleID></sr:DSPScheduleRemoval>"
    )), "{removal}");
    valid_and_signed(&gw, &[removal]);
    // The schedule is gone.
    let read = dcc_request(
        SUPPLIER,
        2,
        "5.2",
        &format!("<sr:ReadSchedule><sr:DSPScheduleID>{id}</sr:DSPScheduleID></sr:ReadSchedule>"),
    );
    let (_, answer) = send(&gw, "supplier", "serviceD", &read).await;
    assert_eq!(code(&answer), "E71", "{answer}");
    assert!(gw.running.gateway.dsp.schedules.is_empty());
    nothing_more(&mut rx, Duration::from_secs(1)).await;
    rx_server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_the_gateway_cannot_run_or_a_user_may_not_have_are_refused_with_their_codes() {
    let (pki, rx_server, _rx) = pki_and_receiver().await;
    let gw = gateway(pki.path(), rx_server.local_addr().port(), "").await;
    let first = OffsetDateTime::now_utc() + Duration::from_secs(3_600);
    let body = create_schedule(first);
    let cases = [
        // The DSP request element is not the scheduled variant's.
        ("supplier", SUPPLIER, body.replace(">4.6.1<", ">4.6.2<"), 400, "E40"),
        // A schedule whose end date passed has nothing left to run.
        (
            "supplier",
            SUPPLIER,
            body.replace(
                "<sr:ScheduleExecutionStartTime>",
                "<sr:ScheduleEndDate>2020-01-01</sr:ScheduleEndDate><sr:ScheduleExecutionStartTime>",
            )
            .replace(&format!(">{}<", first.date()), ">2019-01-01<"),
            400,
            "E40",
        ),
        // A network operator may not read the import daily log.
        ("network-operator", NETWORK_OPERATOR, body.clone(), 403, "E2"),
        // The second supplier is not the meter's supplier.
        ("supplier2", SUPPLIER2, body.clone(), 403, "E4"),
    ];
    let mut answers = Vec::new();
    for (i, (name, user, body, status, want)) in cases.into_iter().enumerate() {
        let request = dcc_request(user, 10 + i as u64, "5.1", &body);
        let (got_status, answer) = send(&gw, name, "serviceD", &request).await;
        assert_eq!(
            (got_status, code(&answer)),
            (status, want),
            "case {i}: {answer}"
        );
        answers.push(answer);
    }
    let read = dcc_request(
        SUPPLIER,
        20,
        "5.3",
        "<sr:DeleteSchedule><sr:DSPScheduleID>424242</sr:DSPScheduleID></sr:DeleteSchedule>",
    );
    let (status, answer) = send(&gw, "supplier", "serviceD", &read).await;
    assert_eq!((status, code(&answer)), (404, "E71"), "{answer}");
    answers.push(answer);
    assert!(gw.running.gateway.dsp.schedules.is_empty());
    let refs: Vec<&str> = answers.iter().map(String::as_str).collect();
    valid_and_signed(&gw, &refs);
    rx_server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_held_command_is_acknowledged_now_and_its_8f66_comes_at_its_time() {
    use super::critical::{code, counter, send, signed_back, SEND, TRANSFORM};
    let Some(anchors) = support::anchors() else {
        return;
    };
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let gw = gateway(pki.path(), rx_server.local_addr().port(), "").await;
    // The public future-dated 1.1.1 Update Import Tariff (critical, device-held), its execution
    // time a few seconds ahead: Transform, the pre-command signed by the supplier's Digital
    // Signing key, then sent; the command carries that time to the device.
    let template = anchors.join(
        "duis-samples/templates/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_REQUEST_DUIS.XML",
    );
    let published = std::fs::read_to_string(template).unwrap();
    let at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::from_secs(4);
    let xml = published.replace("2030-01-15T09:00:00.00Z", &xs(at));
    let n = counter();
    let xml = dccgw::tools::stamp_counter(&xml, n).unwrap();
    let request_id = format!("{SUPPLIER}:{DEMO_ESME}:{n}");
    let (status, answer) = send(&gw, "supplier", TRANSFORM, xml.as_bytes()).await;
    assert_eq!((status, code(&answer)), (200, "I0"), "{answer}");
    let back = signed_back(&gw.certs(), "supplier", &answer, 5);
    let (status, answer) = send(&gw, "supplier", SEND, back.as_bytes()).await;
    assert_eq!((status, code(&answer)), (200, "I99"), "{answer}");

    // The device's acknowledgement at once: the Service Response, I0 with its GBCS answer.
    let ack = next(&mut rx).await;
    assert_eq!(ack.description.request_id.as_deref(), Some(&request_id[..]));
    assert_eq!(ack.description.response_code.as_deref(), Some("I0"));
    assert_eq!(ack.description.alert_code, None);
    assert!(
        OffsetDateTime::now_utc() < at,
        "the acknowledgement waited for the execution"
    );
    // At the execution time, 8F66 for the same request, to its originator.
    let done = next(&mut rx).await;
    assert!(OffsetDateTime::now_utc() >= at, "executed before its time");
    assert_eq!(
        done.description.request_id.as_deref(),
        Some(&request_id[..])
    );
    assert_eq!(done.description.alert_code.as_deref(), Some("8F66"));
    let body = text(&done);
    assert!(
        body.contains("<sr:ServiceReferenceVariant>1.1.1<"),
        "{body}"
    );
    assert!(body.contains("<sr:FutureDatedDeviceAlertMessage><sr:FutureDatedAlertCode>8F66<"));
    let to = done.description.response_id.clone().unwrap_or_default();
    assert_eq!(to.split(':').nth(1), Some(SUPPLIER), "{to}");
    valid_and_signed(&gw, &[&text(&ack), &body]);
    rx_server.stop().await;
}
