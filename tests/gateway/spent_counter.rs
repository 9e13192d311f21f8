//! A counter is never spent without its effect: a gateway process (the real binary) under a
//! concurrent stream of routed and held requests from two Users is SIGKILLed at varied instants,
//! several rounds. After each restart, the requests that were in flight at the kill are sent
//! again, the same signed bytes. For every request sent before a kill, either its final message
//! arrives or its resend is accepted; never is a resend refused as a replay (`E57`) without its
//! final message ever arriving.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dccgw::demo::{self, DEMO_ESME};
use time::OffsetDateTime;

use super::crash::{spawn_with, wait_ready};
use super::dsp::held_read;
use super::round_trip::pki_and_receiver;
use super::support;

const KILLS: usize = 6;
/// The Users sending, each one request at a time (so that a request in flight at a kill is its
/// User's last, and no later counter of that User can have been accepted).
const USERS: [(&str, &str); 2] = [
    ("supplier", "90-B3-D5-1F-30-01-00-00"),
    ("network-operator", "90-B3-D5-1F-30-02-00-00"),
];
/// How far ahead a held request's execution time is: past every round, so that a resend is
/// never refused for being late.
const HOLD_AHEAD: Duration = Duration::from_secs(25);

/// One request and its signed bytes.
#[derive(Clone)]
struct Sent {
    id: String,
    body: Vec<u8>,
}

/// What one User's stream saw until the kill: the requests answered `I99`, and the request in
/// flight when the gateway died (sent, never answered), if any.
#[derive(Default)]
struct Stream {
    acknowledged: Vec<String>,
    in_flight: Option<Sent>,
}

struct User {
    client: reqwest::Client,
    key: PathBuf,
    cert: PathBuf,
    id: &'static str,
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
        }
    }

    /// Request number `n`: a routed read, or (odd `n`) a read the DSP holds.
    fn request(&self, n: u64) -> Sent {
        let xml = if n % 2 == 0 {
            demo::example_request_xml(self.id, DEMO_ESME, n)
        } else {
            held_read(self.id, n, OffsetDateTime::now_utc() + HOLD_AHEAD)
        };
        let body = dccgw::tools::sign(xml.as_bytes(), &self.key, &self.cert, None).unwrap();
        Sent {
            id: format!("{}:{DEMO_ESME}:{n}", self.id),
            body: body.into_bytes(),
        }
    }

    /// The answer's code, or `None` when no answer came (the gateway died).
    async fn post(&self, port: u16, body: &[u8]) -> Option<String> {
        let url = format!("https://localhost:{port}/api/v1/serviceS");
        let r = self
            .client
            .post(&url)
            .header("content-type", "application/xml")
            .body(body.to_vec())
            .send()
            .await
            .ok()?;
        let text = r.text().await.ok()?;
        support::element(&text, "ResponseCode").map(str::to_owned)
    }

    /// Sends one request after another until `until`, or until the gateway dies.
    async fn stream(
        self: Arc<Self>,
        port: u16,
        counter: Arc<Mutex<u64>>,
        until: Instant,
    ) -> Stream {
        let mut seen = Stream::default();
        while Instant::now() < until {
            let n = {
                let mut c = counter.lock().unwrap();
                *c += 1;
                *c
            };
            let sent = self.request(n);
            match self.post(port, &sent.body).await {
                Some(code) if code == "I99" => seen.acknowledged.push(sent.id),
                Some(code) => panic!("{} answered {code} before any kill", sent.id),
                None => {
                    seen.in_flight = Some(sent);
                    break;
                }
            }
        }
        seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_a_kill_is_executed_or_its_resend_accepted() {
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
    let counters: Vec<_> = users.iter().map(|_| Arc::new(Mutex::new(0u64))).collect();

    let (received, collector) = support::request_ids(rx);

    // Every request whose final message must arrive.
    let mut owed = BTreeSet::new();
    // Resends refused as replays: their first sending must have been executed.
    let mut refused_resends = BTreeSet::new();
    let mut accepted_resends = 0usize;
    let mut in_flight: Vec<(usize, Sent)> = Vec::new();
    let mut last = None;
    for round in 0..=KILLS {
        let (port, admin) = (support::free_port(), support::free_port());
        let mut child = spawn_with(&config, port, admin, &[]);
        wait_ready(admin).await;
        // The requests the last kill cut off, sent again as they were.
        for (u, sent) in in_flight.drain(..) {
            match users[u].post(port, &sent.body).await.as_deref() {
                Some("I99") => {
                    accepted_resends += 1;
                    owed.insert(sent.id);
                }
                Some("E57") => {
                    refused_resends.insert(sent.id.clone());
                    owed.insert(sent.id);
                }
                other => panic!("the resend of {} was answered {other:?}", sent.id),
            }
        }
        // Varied instants: from a fifth of a second to two seconds into the round.
        let run = Duration::from_millis(if round < KILLS {
            200 + (round as u64 * 337) % 1800
        } else {
            300
        });
        let until = Instant::now()
            + if round < KILLS {
                Duration::from_secs(60)
            } else {
                run
            };
        let streams: Vec<_> = users
            .iter()
            .zip(&counters)
            .map(|(u, c)| tokio::spawn(Arc::clone(u).stream(port, Arc::clone(c), until)))
            .collect();
        if round < KILLS {
            tokio::time::sleep(run).await;
            child.kill().unwrap(); // SIGKILL, with requests in every phase
            child.wait().unwrap();
        } else {
            last = Some(child);
        }
        for (u, stream) in streams.into_iter().enumerate() {
            let seen = stream.await.unwrap();
            owed.extend(seen.acknowledged);
            if let Some(sent) = seen.in_flight {
                in_flight.push((u, sent));
            }
        }
    }
    assert!(
        in_flight.is_empty(),
        "the last round is not killed: every request is answered"
    );
    // The last run stays up until every owed final message is in, or it is clear one never
    // comes (held requests are released at most HOLD_AHEAD after the last round).
    let deadline = Instant::now() + HOLD_AHEAD + Duration::from_secs(30);
    let missing = loop {
        let missing: Vec<String> = {
            let got = received.lock().unwrap();
            owed.difference(&got).cloned().collect()
        };
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if let Some(mut child) = last {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    eprintln!(
        "{} final messages owed, {} resends accepted, {} refused as replays",
        owed.len(),
        accepted_resends,
        refused_resends.len()
    );
    let burned: Vec<_> = missing
        .iter()
        .filter(|id| refused_resends.contains(*id))
        .collect();
    assert!(
        burned.is_empty(),
        "refused as a replay with no final message: {burned:?} ({} resends accepted, {} refused)",
        accepted_resends,
        refused_resends.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {} owed final messages never arrived: {:?}",
        missing.len(),
        owed.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        owed.len() >= 40,
        "too few requests to prove anything: {}",
        owed.len()
    );
    rx_server.stop().await;
    collector.abort();
}
