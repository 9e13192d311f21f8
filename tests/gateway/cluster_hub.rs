//! One comms-hub network for a cluster: two `dccgw serve` instances in cluster mode (one
//! throwaway PostgreSQL and nats-server) and ONE `dccgw commshub` process, every instance's
//! `[routing]` pointing at it. Commands go through instance A, whose hub answers after a few
//! seconds; A is killed with SIGKILL before any answer. The hub then hands every event to B:
//! each Service Response reaches the User through B, made from the device's one answer (the
//! hub's raised-events log shows no command sent twice: B settled A's pending entries in
//! PostgreSQL before A's lease ran out, so its claim found nothing to send again), and every
//! device alert the hub raised — before the kill (those A held unacknowledged) and while A is
//! dead — reaches the User entitled to it. With both instances alive, the answers the hub
//! hands to B for A's commands are answered once: A's timer, finding the entry settled, sends
//! no E21 beside them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dccgw::commshub::{Raised, RaisedKind};
use dccgw::demo::DEMO_ESME;

use super::alert_crash::{copy_of, owed_by, start_hub_with, AlertCopy};
use super::cluster_requests::{counter_now, instance_with, post, read, Fixture};
use super::round_trip::SUPPLIER;

/// Answers after 5 s; spontaneous alerts, five a second, of a supplier code and a network
/// operator code.
const HUB: &str = r#"
[hub]
seed = 5
[hub.default]
latency = { kind = "fixed", ms = 5000 }
[hub.alerts]
rate_per_sec = 5.0
codes = [{ code = 0x8F35, weight = 1 }, { code = 0x8F1C, weight = 1 }]
"#;

/// The instances' claim of a gone instance's entries comes after its 10 s lease; waiting this
/// long after the kill lets a claim (and the answer to any command it sent again) happen.
const PAST_THE_CLAIM: Duration = Duration::from_secs(18);

/// What the raised log holds: alert lines, and Responses per RequestID.
fn raised(path: &std::path::Path) -> (usize, BTreeMap<String, usize>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let (mut alerts, mut responses) = (0, BTreeMap::new());
    for line in complete.lines() {
        let r = Raised::parse_line(line).unwrap();
        match r.kind {
            RaisedKind::Alert => alerts += 1,
            RaisedKind::Response => {
                if let Some(id) = r.request_id {
                    *responses.entry(id.to_string()).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    (alerts, responses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hub_for_two_instances_answers_and_alerts_reach_users_through_b_after_a_is_killed() {
    // Throttling off in effect: every alert is its own message, so each can be matched.
    let Some(mut c) = Fixture::start_with(0, "[alerts.throttle]\nburst = 1000000\n").await else {
        return;
    };
    let raised_log = c.dir().join("raised.ndjson");
    let (_hub, hub_port) = start_hub_with(c.dir(), "commshub", &raised_log, HUB).await;
    let remote = [
        ("DCCGW_ROUTING__HUB", "remote".to_owned()),
        ("DCCGW_ROUTING__HUB_ADDR", format!("127.0.0.1:{hub_port}")),
    ];
    let _b = instance_with(&c.config, "b", &remote).await;
    let mut a = instance_with(&c.config, "a", &remote).await;

    // What arrives, collected throughout: alert copies and the RequestIDs of responses.
    let copies: Arc<Mutex<BTreeMap<AlertCopy, u32>>> = Arc::default();
    let responses: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let mut rx = std::mem::replace(&mut c.rx, tokio::sync::mpsc::channel(1).1);
    let collector = tokio::spawn({
        let (copies, responses) = (copies.clone(), responses.clone());
        async move {
            while let Some(m) = rx.recv().await {
                if let Some(copy) = copy_of(&m) {
                    *copies.lock().unwrap().entry(copy.unwrap()).or_default() += 1;
                } else if let Some(id) = m.description.request_id {
                    *responses.lock().unwrap().entry(id).or_default() += 1;
                }
            }
        }
    });

    let mut acknowledged = BTreeSet::new();
    for _ in 0..6 {
        let counter = counter_now();
        assert_eq!(post(&c.client, &a, read(&c.certs, counter)).await, "I99");
        acknowledged.insert(format!("{SUPPLIER}:{DEMO_ESME}:{counter}"));
    }
    // Alerts flow to both instances for a while (the answers are still seconds away); then
    // SIGKILL, every command waiting for its answer.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let (alerts_at_kill, answers_at_kill) = raised(&raised_log);
    assert!(
        acknowledged
            .iter()
            .all(|id| !answers_at_kill.contains_key(id)),
        "no answer came before the kill"
    );
    let killed = Instant::now();

    // Every Service Response arrives (through B, the one instance alive).
    let deadline = killed + Duration::from_secs(60);
    loop {
        let got: BTreeSet<String> = responses.lock().unwrap().keys().cloned().collect();
        if acknowledged.is_subset(&got) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "answered: {got:?} of {acknowledged:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(PAST_THE_CLAIM.saturating_sub(killed.elapsed())).await;

    // Every alert raised until now, A's unacknowledged ones included, reaches its User.
    let (owed, alerts) = owed_by(&raised_log);
    assert!(
        alerts_at_kill > 0 && alerts > alerts_at_kill,
        "alerts were raised while both were up, and while A was dead ({alerts_at_kill} before, \
         {alerts} in all)"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let missing: Vec<AlertCopy> = {
            let got = copies.lock().unwrap();
            owed.iter()
                .filter(|c| !got.contains_key(*c))
                .cloned()
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} alert copies never arrived (first: {:?})",
            missing.len(),
            owed.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Each answer was the device's one answer: no command was sent twice (B settled A's
    // entries, so a claim found nothing to send again) and the User got each once.
    let (_, answers) = raised(&raised_log);
    for id in &acknowledged {
        assert_eq!(
            answers.get(id),
            Some(&1),
            "{id}: the hub answered it {:?} times",
            answers.get(id)
        );
    }
    let got = responses.lock().unwrap().clone();
    for id in &acknowledged {
        assert_eq!(
            got.get(id),
            Some(&1),
            "{id} arrived {:?} times",
            got.get(id)
        );
    }
    let open: i64 = {
        let (client, conn) = tokio_postgres::connect(&c.pg.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .query_one("SELECT count(*) FROM request_entries", &[])
            .await
            .unwrap()
            .get(0)
    };
    assert_eq!(open, 0, "every pending entry settled in PostgreSQL");
    eprintln!(
        "{} requests answered through B; {alerts} alerts raised ({} while A was dead), {} copies delivered",
        acknowledged.len(),
        alerts - alerts_at_kill,
        copies.lock().unwrap().len()
    );
    collector.abort();
}

/// Answers after 2 s, no alerts.
const QUIET_HUB: &str = r#"
[hub]
seed = 6
[hub.default]
latency = { kind = "fixed", ms = 2000 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_taken_by_the_other_instance_is_answered_once_and_never_also_e21() {
    let Some(mut c) = Fixture::start_with(0, "").await else {
        return;
    };
    let raised_log = c.dir().join("raised.ndjson");
    let (_hub, hub_port) = start_hub_with(c.dir(), "commshub", &raised_log, QUIET_HUB).await;
    // Both instances read the hub's events; a command's timer (E21) runs out 6 s after it is
    // sent, well after its answer (2 s).
    let env = [
        ("DCCGW_ROUTING__HUB", "remote".to_owned()),
        ("DCCGW_ROUTING__HUB_ADDR", format!("127.0.0.1:{hub_port}")),
        ("DCCGW_ROUTING__DISPATCH__TIMEOUT_MS", "6000".to_owned()),
    ];
    let _b = instance_with(&c.config, "b", &env).await;
    let a = instance_with(&c.config, "a", &env).await;
    let mut acknowledged = BTreeSet::new();
    for _ in 0..10 {
        let counter = counter_now();
        assert_eq!(post(&c.client, &a, read(&c.certs, counter)).await, "I99");
        acknowledged.insert(format!("{SUPPLIER}:{DEMO_ESME}:{counter}"));
    }
    let sent = Instant::now();
    // Every message that arrives until well past the timers: the hub hands each answer to A
    // or to B, and A's timer must not add an E21 to one B answered.
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while sent.elapsed() < Duration::from_secs(12) {
        let left = Duration::from_secs(12).saturating_sub(sent.elapsed());
        let Ok(Some(m)) = tokio::time::timeout(left, c.rx.recv()).await else {
            break;
        };
        if let Some(id) = m.description.request_id {
            let code = m.description.response_code.unwrap_or_default();
            got.entry(id).or_default().push(code);
        }
    }
    for id in &acknowledged {
        assert_eq!(
            got.get(id).map(Vec::as_slice),
            Some(&["I0".to_owned()][..]),
            "{id}: {got:?}"
        );
    }
    let (_, answers) = raised(&raised_log);
    for id in &acknowledged {
        assert_eq!(answers.get(id), Some(&1), "{id} was sent to the hub once");
    }
}
