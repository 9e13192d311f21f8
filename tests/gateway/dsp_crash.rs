//! Held future-dated requests and DSP schedules survive SIGKILL: a gateway process killed after
//! acknowledging a held request and creating a schedule, before either is due, sends the held
//! request and runs the schedule once started again; killed again between two executions, it
//! goes on running the schedule.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dccgw::demo::DEMO_ESME;
use time::OffsetDateTime;

use super::crash::{admin_routed_dir, change_of_supplier, outbox_full, spawn_with, wait_ready};
use super::dsp::{create_schedule, dcc_request, held_read};
use super::round_trip::{next, pki_and_receiver, routed_dir_with, SUPPLIER};
use super::support;

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
    let held =
        support::send_as_supplier(&certs, port, "serviceS", &held_read(SUPPLIER, 1, at)).await;
    assert_eq!(
        support::element(&held, "ResponseCode"),
        Some("I99"),
        "{held}"
    );
    let create = dcc_request(SUPPLIER, 2, "5.1", &create_schedule(at));
    let created = support::send_as_supplier(&certs, port, "serviceD", &create).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_removal_survives_sigkill_after_the_change_of_supplier_was_acknowledged() {
    const TOKEN: &str = "dsp-crash-admin-token";
    // The change's alerts, the removal's among them, cannot get out while the outbox is full.
    let outbox_full = outbox_full();
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let (dir, config) = admin_routed_dir(pki.path(), rx_server.local_addr().port(), TOKEN);
    let certs = dir.path().join("certs");

    // First run, the outbox full: a schedule, then a change of supplier; killed.
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &outbox_full);
    wait_ready(admin).await;
    let first = OffsetDateTime::now_utc() + Duration::from_secs(86_400);
    let create = dcc_request(SUPPLIER, 1, "5.1", &create_schedule(first));
    let created = support::send_as_supplier(&certs, port, "serviceD", &create).await;
    let id = support::element(&created, "DSPScheduleID")
        .unwrap()
        .to_owned();
    change_of_supplier(admin, TOKEN).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap(); // SIGKILL, the alerts owed
    child.wait().unwrap();

    // Second run, with room in the outbox: the removal reaches the outgoing supplier.
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let removal = loop {
        assert!(Instant::now() < deadline, "no DSPScheduleRemoval");
        let got = next(&mut rx).await;
        if got.description.alert_code.as_deref() == Some("N5") {
            break got;
        }
    };
    let to = removal.description.response_id.clone().unwrap_or_default();
    assert_eq!(to.split(':').nth(1), Some(SUPPLIER), "{to}");
    let body = String::from_utf8_lossy(&removal.body).into_owned();
    assert!(
        body.contains(&format!("<sr:DSPScheduleID>{id}</sr:DSPScheduleID>")),
        "{body}"
    );
    // And the schedule is gone for its old owner.
    let read = dcc_request(
        SUPPLIER,
        2,
        "5.2",
        &format!("<sr:ReadSchedule><sr:DSPScheduleID>{id}</sr:DSPScheduleID></sr:ReadSchedule>"),
    );
    let answer = support::send_as_supplier(&certs, port, "serviceD", &read).await;
    assert_eq!(
        support::element(&answer, "ResponseCode"),
        Some("E71"),
        "{answer}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    rx_server.stop().await;
}
