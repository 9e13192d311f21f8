//! A request's audit record is made durable in the same commit as its decision (its counter,
//! its command), and the request log's checkpoint loses nothing.
//!
//! - A gateway process (the real binary) under concurrent streams of routed reads from two
//!   Users is SIGKILLed at varied instants, several rounds. Every request whose final message
//!   arrives had its decision made durable (its command was sent, before or after a restart);
//!   each has exactly one accepted record in the audit trail, and the trail's chain verifies.
//! - Transforms from one User, SIGKILLed at varied instants: each in flight at a kill, sent
//!   again, is answered `I0` (nothing of it was durable) or `E57` (its counter and its
//!   pre-command were), never refused for a pre-command issued without its counter.
//! - Enough requests that a segment of the request log is sealed, checkpointed and deleted;
//!   then a SIGKILL and a restart: every answer's record is in the trail, the marks hold (a
//!   resend is refused as a replay), and the log's segments are gone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dccgw::audit::{read_trail, AuditEvent, ACCEPTED};
use dccgw::demo::{self, DEMO_ESME};

use super::crash::{spawn_with, wait_ready};
use super::round_trip::pki_and_receiver;
use super::support;

const KILLS: usize = 5;
/// Streams per User, each one request at a time; counters are shared per User, so some
/// requests overtake others and are refused as replays (`E57`), which is fine here.
const STREAMS: usize = 4;
const USERS: [(&str, &str); 2] = [
    ("supplier", "90-B3-D5-1F-30-01-00-00"),
    ("network-operator", "90-B3-D5-1F-30-02-00-00"),
];

struct User {
    client: reqwest::Client,
    key: PathBuf,
    cert: PathBuf,
    id: &'static str,
    counter: Mutex<u64>,
}

impl User {
    fn new(certs: &Path, (name, id): (&str, &'static str)) -> Self {
        let dir = certs.join("users").join(name);
        let pem = std::fs::read(dir.join("client.pem")).unwrap();
        Self {
            client: support::client_with(certs, Some(reqwest::Identity::from_pem(&pem).unwrap())),
            key: dir.join("xml-sign.key.pem"),
            cert: dir.join("xml-sign.pem"),
            id,
            counter: Mutex::new(0),
        }
    }

    /// The next routed read, signed.
    fn next_read(&self) -> Vec<u8> {
        let n = {
            let mut c = self.counter.lock().unwrap();
            *c += 1;
            *c
        };
        let xml = demo::example_request_xml(self.id, DEMO_ESME, n);
        dccgw::tools::sign(xml.as_bytes(), &self.key, &self.cert, None)
            .unwrap()
            .into_bytes()
    }

    /// The answer's code, or `None` when no answer came (the gateway died).
    async fn post(&self, port: u16, body: Vec<u8>, content_type: &str) -> Option<String> {
        self.post_as(port, "serviceS", body, content_type).await
    }

    async fn post_to(&self, port: u16, service: &str, body: Vec<u8>) -> Option<String> {
        self.post_as(port, service, body, "application/xml").await
    }

    async fn post_as(
        &self,
        port: u16,
        service: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Option<String> {
        let url = format!("https://localhost:{port}/api/v1/{service}");
        let r = self
            .client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .ok()?;
        let text = r.text().await.ok()?;
        support::element(&text, "ResponseCode").map(str::to_owned)
    }

    /// Sends reads one after another until the gateway dies or `until`.
    async fn stream(self: Arc<Self>, port: u16, until: Instant) {
        while Instant::now() < until {
            let body = self.next_read();
            if self.post(port, body, "application/xml").await.is_none() {
                return;
            }
        }
    }
}

/// Each request's accepted records in the trail (which must verify), by RequestID.
fn accepted_records(dir: &Path) -> (BTreeMap<String, usize>, u64) {
    let mut accepted = BTreeMap::new();
    let verified = read_trail(dir, |_, e| {
        if let AuditEvent::Request(r) = e {
            if let (Some(id), true) = (r.request_id, r.decision == ACCEPTED) {
                *accepted.entry(id.to_string()).or_insert(0) += 1;
            }
        }
    })
    .unwrap_or_else(|e| panic!("the audit trail does not verify: {e}"));
    (accepted, verified.records)
}

/// Waits until `received` has not grown for two seconds (or a minute has passed).
async fn settle(received: &Mutex<BTreeSet<String>>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (usize::MAX, Instant::now());
    while Instant::now() < deadline {
        let n = received.lock().unwrap().len();
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_executed_request_has_its_audit_record_after_any_kill() {
    let (pki, rx_server, rx) = pki_and_receiver().await;
    let (dir, config) = super::round_trip::routed_dir(
        pki.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"uniform\", min_ms = 20, max_ms = 200 }\n",
        "",
    );
    let certs = dir.path().join("certs");
    let users: Vec<Arc<User>> = USERS
        .iter()
        .map(|u| Arc::new(User::new(&certs, *u)))
        .collect();
    let (received, collector) = support::request_ids(rx);
    for round in 0..=KILLS {
        let (port, admin) = (support::free_port(), support::free_port());
        let mut child = spawn_with(&config, port, admin, &[]);
        wait_ready(admin).await;
        let run = Duration::from_millis(300 + (round as u64 * 411) % 1500);
        let until = Instant::now() + run + Duration::from_secs(60);
        let streams: Vec<_> = users
            .iter()
            .flat_map(|u| (0..STREAMS).map(move |_| Arc::clone(u)))
            .map(|u| tokio::spawn(u.stream(port, until)))
            .collect();
        tokio::time::sleep(run).await;
        if round == KILLS {
            // The last round: let the commands recovered and sent come back.
            settle(&received).await;
        }
        child.kill().unwrap(); // SIGKILL, with requests in every phase
        child.wait().unwrap();
        for s in streams {
            s.await.unwrap();
        }
    }
    let (accepted, records) = accepted_records(&dir.path().join("state/audit"));
    let received = received.lock().unwrap().clone();
    let unrecorded: Vec<_> = received
        .iter()
        .filter(|id| !accepted.contains_key(*id))
        .collect();
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "{} requests executed, {} audit records, {} without their record, {} recorded twice",
        received.len(),
        records,
        unrecorded.len(),
        twice.len()
    );
    assert!(
        unrecorded.is_empty(),
        "executed with no accepted audit record: {unrecorded:?}"
    );
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    assert!(
        received.len() >= 100,
        "too few requests to prove anything: {}",
        received.len()
    );
    rx_server.stop().await;
    collector.abort();
}

/// The request log's segment files in `dir`.
fn segments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("requests-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointed_segment_is_deleted_and_nothing_it_held_is_lost() {
    // Decisions in a segment of the request log (the gateway's SEGMENT_RECORDS), and a few more.
    const REQUESTS: usize = 4096 + 300;
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    let (dir, config) = super::round_trip::routed_dir(
        pki.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n",
        "",
    );
    let certs = dir.path().join("certs");
    let log_dir = dir.path().join("state/requests");
    let user = Arc::new(User::new(&certs, USERS[0]));
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    // Reads, one at a time, then refusals (the cheapest answers, each a decision with its audit
    // record) from eight streams until the first segment is sealed and more.
    let mut reads = Vec::new();
    for _ in 0..20 {
        let body = user.next_read();
        assert_eq!(
            user.post(port, body.clone(), "application/xml")
                .await
                .as_deref(),
            Some("I99")
        );
        reads.push(body);
    }
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(reads.len()));
    let refusers: Vec<_> = (0..8)
        .map(|_| {
            let (user, sent) = (Arc::clone(&user), Arc::clone(&sent));
            tokio::spawn(async move {
                while sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < REQUESTS {
                    let code = user.post(port, b"<not-duis/>".to_vec(), "application/xml");
                    assert!(code.await.is_some(), "every refusal is answered");
                }
            })
        })
        .collect();
    for r in refusers {
        r.await.unwrap();
    }
    // The first segment goes once the checkpoint has copied it.
    let first = "requests-0000000000000001.log";
    let deadline = Instant::now() + Duration::from_secs(30);
    while segments(&log_dir).iter().any(|s| s == first) {
        assert!(
            Instant::now() < deadline,
            "the sealed segment was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut delivered = BTreeSet::new();
    while delivered.len() < reads.len() {
        let m = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("every read's final message arrives")
            .unwrap();
        delivered.extend(m.description.request_id);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // A restart reads back what the log still holds, and releases it.
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    for body in &reads {
        let code = user.post(port, body.clone(), "application/xml").await;
        assert_eq!(code.as_deref(), Some("E57"), "a spent counter stays spent");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (accepted, records) = accepted_records(&dir.path().join("state/audit"));
    assert_eq!(accepted.len(), reads.len(), "each read's record, once");
    assert!(accepted.values().all(|n| *n == 1));
    // Every answer's record: the reads, the refusals, and the resends' refusals.
    let answered = REQUESTS as u64 + reads.len() as u64;
    assert!(
        records >= answered,
        "{records} audit records for {answered} answers"
    );
    let left = segments(&log_dir);
    assert!(
        left.len() <= 2 && !left.iter().any(|s| s == first),
        "recovered segments are released: {left:?}"
    );
    rx_server.stop().await;
}

/// `user`'s 7.1 Enable Supply Transform number `n`, signed.
fn signed_transform(user: &User, n: u64) -> Vec<u8> {
    let xml = demo::example_transform_xml(user.id, DEMO_ESME, n);
    dccgw::tools::sign(xml.as_bytes(), &user.key, &user.cert, None)
        .unwrap()
        .into_bytes()
}

/// Sends Transforms one after another until the gateway dies; the one it died on.
async fn transforms(user: Arc<User>, port: u16, counter: Arc<AtomicU64>) -> Vec<u8> {
    loop {
        let body = signed_transform(&user, counter.fetch_add(1, Ordering::Relaxed));
        if user.post_to(port, "serviceT", body.clone()).await.is_none() {
            return body;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_in_flight_at_a_kill_is_answered_i0_or_e57_when_sent_again() {
    const TRANSFORM_KILLS: usize = 10;
    let (pki, rx_server, _rx) = pki_and_receiver().await;
    let (dir, config) = super::round_trip::routed_dir(
        pki.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n",
        "",
    );
    let user = Arc::new(User::new(&dir.path().join("certs"), USERS[0]));
    let counter = Arc::new(AtomicU64::new(1));
    let mut in_flight: Vec<Vec<u8>> = Vec::new();
    let mut answers = BTreeMap::<String, usize>::new();
    for round in 0..TRANSFORM_KILLS {
        let (port, admin) = (support::free_port(), support::free_port());
        let mut child = spawn_with(&config, port, admin, &[]);
        wait_ready(admin).await;
        // Sent again as they were: the counter is spent with the pre-command remembered
        // (`E57`), or neither (`I0`, the pre-command issued now); never one without the other.
        for body in in_flight.drain(..) {
            let code = user.post_to(port, "serviceT", body).await;
            let code = code.unwrap_or_else(|| "no answer".into());
            assert!(
                matches!(code.as_str(), "I0" | "E57"),
                "a Transform sent again after a kill was answered {code}"
            );
            *answers.entry(code).or_default() += 1;
        }
        let streams: Vec<_> = (0..STREAMS)
            .map(|_| tokio::spawn(transforms(Arc::clone(&user), port, Arc::clone(&counter))))
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + (round as u64 * 173) % 700)).await;
        child.kill().unwrap(); // SIGKILL, with Transforms in every phase
        child.wait().unwrap();
        for s in streams {
            in_flight.push(s.await.unwrap());
        }
    }
    eprintln!("Transforms sent again after a kill, by answer: {answers:?}");
    rx_server.stop().await;
}
