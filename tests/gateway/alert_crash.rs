//! Crash safety for alerts: every alert the comms-hub network raised reaches every
//! User entitled to it at least once, although the gateway is killed with SIGKILL several times
//! while alerts and requests flow. The alert source is the `dccgw commshub` process (it keeps
//! unacknowledged events and offers them again after a reconnect), raising spontaneous alerts
//! at a rate, power-outage storms and alerts after each read; its raised-events log says what
//! it raised. Each delivered `DeviceAlertMessage` is matched to a raised alert by the device,
//! the alert code and the counter of the alert's GBCS frame (one sequence across the simulated
//! fleet, so unique in one hub run), and to its User by the `ResponseID`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dccgw::commshub::{Raised, RaisedKind};
use dccgw::gbcs::Apdu;
use dccgw::receiver::Received;

use super::crash::{send_reads, spawn_with, wait_ready};
use super::round_trip::{pki_and_receiver, routed_dir_with, SUPPLIER};
use super::support;

const BIN: &str = env!("CARGO_BIN_EXE_dccgw");
pub(super) const NETWORK_OPERATOR: &str = "90-B3-D5-1F-30-02-00-00";
/// How long each run sends reads before the gateway is killed: varied, so that kills land
/// both in the backlog a restart replays and in steady flow.
const KILL_AFTER_MS: [u64; 3] = [1_500, 400, 900];

/// A child process killed (SIGKILL) when dropped, so that a failing test leaves none behind.
pub(super) struct Killed(pub(super) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One delivered alert copy: User, device, code, frame counter.
pub(super) type AlertCopy = (String, String, String, u64);

/// The simulator's behaviour: reads answered in 50–800 ms, each followed by a supplier-family
/// alert and, half the time, a network-operator one; spontaneous alerts from the meters at
/// 100 a second across three codes; a power outage behind the demo hub every two seconds.
const HUB: &str = r#"
[hub]
seed = 11
[hub.default]
latency = { kind = "uniform", min_ms = 50, max_ms = 800 }
alerts_after = [{ code = 0x8F1C, delay_ms = 50 }, { code = 0x8002, delay_ms = 150, probability = 0.5 }]
[hub.alerts]
rate_per_sec = 100.0
codes = [{ code = 0x8F35, weight = 2 }, { code = 0x8F1C, weight = 1 }, { code = 0x8002, weight = 1 }]
[[hub.storms]]
after_secs = 1
hubs = 1
spread_ms = 300
[[hub.storms]]
after_secs = 3
hubs = 1
spread_ms = 300
[[hub.storms]]
after_secs = 5
hubs = 1
spread_ms = 300
[[hub.storms]]
after_secs = 7
hubs = 1
spread_ms = 300
"#;

/// The Users entitled to an alert of `code` from any demo device (`docs/alerts.md`: voltage
/// `8000`–`80FF` and outage `8F35`–`8F3C` to the network operator, the rest to the supplier;
/// the demo supplier and network operator hold both meter points, which every demo device
/// resolves to).
pub(super) fn entitled(code: u16) -> &'static str {
    match code {
        0x8000..=0x80FF | 0x8F35..=0x8F3C => NETWORK_OPERATOR,
        _ => SUPPLIER,
    }
}

/// The copy a delivered message is, if it is a device alert; `Err` for one that cannot be
/// matched (a throttling summary — the gateway is configured so that none is made — or a
/// message without its fields).
pub(super) fn copy_of(m: &Received) -> Option<Result<AlertCopy, String>> {
    let code = m.description.alert_code.clone()?;
    let xml = String::from_utf8_lossy(&m.body);
    if !xml.contains("DeviceAlertMessage") {
        return None;
    }
    if xml.contains("ThrottledAlertCount") {
        return Some(Err(format!("a throttled summary: {xml}")));
    }
    let fields = || -> Option<AlertCopy> {
        // ResponseID: device:User:alert identifier.
        let mut parts = m.description.response_id.as_deref()?.split(':');
        let (device, user) = (parts.next()?.to_owned(), parts.next()?.to_owned());
        let payload = base64::engine::general_purpose::STANDARD
            .decode(support::element(&xml, "GBCSPayload")?)
            .ok()?;
        let apdu = Apdu::decode(&payload).ok()?;
        let frame = apdu.general_signing();
        (frame.originator.to_string() == device).then_some((
            user,
            device,
            code,
            frame.transaction.counter,
        ))
    };
    Some(fields().ok_or_else(|| format!("an alert that names no raised alert: {xml}")))
}

/// Every alert copy the raised log (complete lines only) says is owed, and how many alerts
/// that is.
pub(super) fn owed_by(log: &Path) -> (BTreeSet<AlertCopy>, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut epochs = BTreeSet::new();
    let mut copies = BTreeSet::new();
    let mut alerts = 0;
    for line in complete.lines() {
        let r = Raised::parse_line(line).unwrap();
        epochs.insert(r.epoch);
        if r.kind != RaisedKind::Alert {
            continue;
        }
        let code = r.code.expect("an alert has a code");
        let counter = r.frame_counter.expect("an alert has a frame counter");
        alerts += 1;
        copies.insert((
            entitled(code).to_owned(),
            r.device.to_string(),
            format!("{code:04X}"),
            counter,
        ));
    }
    assert!(epochs.len() <= 1, "one hub run: {epochs:?}");
    (copies, alerts)
}

/// The `dccgw commshub` process for the fleet in `dir` (the gateway's registers), recording
/// what it raises in `raised_log`; killed when the guard drops. Returns once it is live.
async fn start_hub(dir: &Path, raised_log: &Path) -> (Killed, u16) {
    start_hub_with(dir, "commshub", raised_log, HUB).await
}

/// As [`start_hub`], the simulator's `[hub]` configuration `hub` (TOML), its configuration
/// written to `dir/<name>.toml`.
pub(super) async fn start_hub_with(
    dir: &Path,
    name: &str,
    raised_log: &Path,
    hub: &str,
) -> (Killed, u16) {
    let port = support::free_port();
    let config = dir.join(format!("{name}.toml"));
    let at = |name: &str| dir.join(name).display().to_string();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndevices = \"{}\"\nregistrations = \"{}\"\n\
             acb_certs = [\"{}\"]\nraised_log = \"{}\"\n{hub}",
            at("devices.csv"),
            at("registrations.csv"),
            at("certs/dcc-acb.pem"),
            raised_log.display(),
        ),
    )
    .unwrap();
    let hub = Killed(
        Command::new(BIN)
            .args(["commshub", "--config"])
            .arg(&config)
            .env("DCCGW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reqwest::get(format!("http://127.0.0.1:{port}/livez"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the hub process did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (hub, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_alerts_flow_loses_no_raised_alert() {
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    // Throttling off in effect (a burst no run reaches): every raised alert is its own message,
    // so each can be matched.
    let (dir, config) = routed_dir_with(
        pki.path(),
        rx_server.local_addr().port(),
        "",
        "",
        "[alerts.throttle]\nburst = 1000000\n",
    );
    let certs = dir.path().join("certs");
    let raised_log = dir.path().join("raised.ndjson");

    let (_hub, hub_port) = start_hub(dir.path(), &raised_log).await;

    // What arrives, collected throughout: alert copies (with how often each came) and the
    // RequestIDs of responses.
    let copies: Arc<Mutex<BTreeMap<AlertCopy, u32>>> = Arc::default();
    let responses: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let unmatched: Arc<Mutex<Vec<String>>> = Arc::default();
    let collector = tokio::spawn({
        let (copies, responses, unmatched) = (copies.clone(), responses.clone(), unmatched.clone());
        async move {
            while let Some(m) = rx.recv().await {
                match copy_of(&m) {
                    Some(Ok(copy)) => *copies.lock().unwrap().entry(copy).or_default() += 1,
                    Some(Err(e)) => unmatched.lock().unwrap().push(e),
                    None => {}
                }
                if m.description.alert_code.is_none() {
                    if let Some(id) = m.description.request_id {
                        responses.lock().unwrap().insert(id);
                    }
                }
            }
        }
    });

    let pem = std::fs::read(certs.join("users/supplier/client.pem")).unwrap();
    let client = support::client_with(&certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let remote = [
        ("DCCGW_ROUTING__HUB", "remote".to_owned()),
        ("DCCGW_ROUTING__HUB_ADDR", format!("127.0.0.1:{hub_port}")),
    ];
    let counter = Arc::new(AtomicU64::new(1));
    let mut acknowledged = BTreeSet::new();
    for kill_after in KILL_AFTER_MS {
        let (port, admin) = (support::free_port(), support::free_port());
        let mut gateway = Killed(spawn_with(&config, port, admin, &remote));
        wait_ready(admin).await;
        let url = format!("https://localhost:{port}/api/v1/serviceS");
        let far = Instant::now() + Duration::from_secs(60);
        let sender = tokio::spawn(send_reads(
            client.clone(),
            url,
            counter.clone(),
            certs.clone(),
            far,
        ));
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        // SIGKILL, with requests, commands and alerts in flight; the sender stops at the
        // first failure.
        gateway.0.kill().unwrap();
        gateway.0.wait().unwrap();
        acknowledged.extend(sender.await.unwrap());
    }

    // The last run stays up; what the hub had raised by now must all arrive.
    let (port, admin) = (support::free_port(), support::free_port());
    let _gateway = Killed(spawn_with(&config, port, admin, &remote));
    wait_ready(admin).await;
    let (owed, alerts) = owed_by(&raised_log);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let missing: Vec<AlertCopy> = {
            let got = copies.lock().unwrap();
            owed.iter()
                .filter(|c| !got.contains_key(*c))
                .cloned()
                .collect()
        };
        let unanswered: Vec<String> = {
            let got = responses.lock().unwrap();
            acknowledged.difference(&got).cloned().collect()
        };
        if missing.is_empty() && unanswered.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} raised alert copies never arrived (first: {:?}); \
             {} of {} acknowledged requests got no response",
            missing.len(),
            owed.len(),
            &missing[..missing.len().min(5)],
            unanswered.len(),
            acknowledged.len(),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = copies.lock().unwrap().clone();
    // Nothing arrived that the hub did not raise (a wrong User, a garbled counter).
    let unmatched = unmatched.lock().unwrap().clone();
    assert!(unmatched.is_empty(), "{unmatched:?}");
    let raised_now = owed_by(&raised_log).0;
    for copy in got.keys() {
        assert!(raised_now.contains(copy), "{copy:?} was never raised");
    }
    let duplicates = got.values().filter(|n| **n > 1).count();
    eprintln!(
        "{alerts} alerts raised before the cut-off ({} copies owed), all delivered; \
         {duplicates} copies delivered more than once; {} acknowledged requests answered",
        owed.len(),
        acknowledged.len()
    );
    assert!(alerts >= 200, "too few alerts to prove anything: {alerts}");
    assert!(
        acknowledged.len() >= 20,
        "too few requests acknowledged: {}",
        acknowledged.len()
    );
    rx_server.stop().await;
    collector.abort();
}
