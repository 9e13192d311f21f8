//! Held future-dated requests and DSP schedules survive SIGKILL: a gateway process killed after
//! acknowledging a held request and creating a schedule, before either is due, sends the held
//! request and runs the schedule once started again; killed again between two executions, it
//! goes on running the schedule.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dccgw::demo::DEMO_ESME;
use time::OffsetDateTime;

use super::crash::{spawn_with, wait_ready};
use super::dsp::{create_schedule, dcc_request, held_read};
use super::round_trip::{next, pki_and_receiver, routed_dir_with, SUPPLIER};
use super::support;

/// Posts `xml`, signed by the demo supplier, to `service` on `port`; the answer's code.
async fn send(certs: &std::path::Path, port: u16, service: &str, xml: &str) -> String {
    let dir = certs.join("users/supplier");
    let body = dccgw::tools::sign(
        xml.as_bytes(),
        &dir.join("xml-sign.key.pem"),
        &dir.join("xml-sign.pem"),
        None,
    )
    .unwrap();
    let pem = std::fs::read(dir.join("client.pem")).unwrap();
    let client = support::client_with(certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let url = format!("https://localhost:{port}/api/v1/{service}");
    let (_, answer) = support::post(&client, &url, body).await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_and_schedules_survive_sigkill() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let (dir, config) = routed_dir_with(
        pki.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n",
        "",
        "[dsp]\nschedule_day_secs = 2\n",
    );
    let certs = dir.path().join("certs");

    // First run: a read held for six seconds from now, and a schedule whose first execution
    // is then too; both acknowledged, then the process is killed.
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    let at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::from_secs(6);
    let held = send(&certs, port, "serviceS", &held_read(SUPPLIER, 1, at)).await;
    assert_eq!(
        support::element(&held, "ResponseCode"),
        Some("I99"),
        "{held}"
    );
    let create = dcc_request(SUPPLIER, 2, "5.1", &create_schedule(at));
    let created = send(&certs, port, "serviceD", &create).await;
    assert_eq!(
        support::element(&created, "ResponseCode"),
        Some("I0"),
        "{created}"
    );
    let id = support::element(&created, "DSPScheduleID")
        .unwrap()
        .to_owned();
    child.kill().unwrap(); // SIGKILL, before either is due
    child.wait().unwrap();
    assert!(
        OffsetDateTime::now_utc() < at,
        "the kill came too late to prove anything"
    );

    // Second run: the held read's response, and the schedule's first result.
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    let held_id = format!("{SUPPLIER}:{DEMO_ESME}:1");
    let (mut held_answered, mut executions) = (false, BTreeSet::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !held_answered || executions.is_empty() {
        assert!(Instant::now() < deadline, "not everything arrived");
        let got = next(&mut rx).await;
        let body = String::from_utf8_lossy(&got.body).into_owned();
        let rid = got.description.request_id.clone().unwrap_or_default();
        if rid == held_id {
            assert_eq!(got.description.response_code.as_deref(), Some("I0"));
            held_answered = true;
        } else if body.contains(&format!("<sr:DSPScheduleID>{id}</sr:DSPScheduleID>")) {
            executions.insert(rid);
        }
    }
    assert!(OffsetDateTime::now_utc() >= at);
    child.kill().unwrap(); // SIGKILL, between executions
    child.wait().unwrap();

    // Third run: the schedule goes on with executions it had not run.
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    let before = executions.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while executions.len() < before + 2 {
        assert!(Instant::now() < deadline, "the schedule did not go on");
        let got = next(&mut rx).await;
        let body = String::from_utf8_lossy(&got.body).into_owned();
        if body.contains(&format!("<sr:DSPScheduleID>{id}</sr:DSPScheduleID>")) {
            executions.insert(got.description.request_id.clone().unwrap_or_default());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    rx_server.stop().await;
}
