//! The comms-hub network as its own server (`dccgw commshub`'s code, on a loopback port) and the
//! gateway's dispatcher talking to it over real HTTP: answers, E20 and E21, refused forgeries,
//! and events that survive a broken stream without loss.

use std::sync::Arc;
use std::time::Duration;

use dccgw::commshub::{serve_on, HubConfig, Raised, RaisedKind, RaisedLog, Simulator};
use dccgw::dispatch::{DispatchConfig, Dispatcher, HubEvent, HubNetwork, Inbound, RemoteHub};
use dccgw::domain::DeviceFailure;
use dccgw::gbcs::Apdu;
use dccgw::routing::CommandSigner;
use dccgw::testing::fixture::{self, Fleet};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// Generous bound on waiting for something that should happen in milliseconds; never asserted
/// as a duration.
const PATIENCE: Duration = Duration::from_secs(30);

struct Hub {
    addr: std::net::SocketAddr,
    _stop: watch::Sender<bool>,
}

async fn start_hub(fleet: &Fleet, config: &str) -> (Hub, CommandSigner) {
    start_hub_with(fleet, config, None).await
}

/// As [`start_hub`], recording the events raised in `raised`.
async fn start_hub_with(
    fleet: &Fleet,
    config: &str,
    raised: Option<RaisedLog>,
) -> (Hub, CommandSigner) {
    let (signer, verifier, _) = fixture::broker();
    let config: HubConfig = toml::from_str(config).unwrap();
    let sim = Simulator::new(config, fleet.snapshot.clone(), verifier).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(serve_on(listener, sim, 10_000, raised, stop));
    (
        Hub {
            addr,
            _stop: stop_tx,
        },
        signer,
    )
}

async fn next<T>(rx: &mut mpsc::Receiver<T>) -> T {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("an event in time")
        .expect("channel open")
}

#[tokio::test]
async fn commands_cross_real_http_and_come_back_as_outcomes() {
    let fleet = Fleet::new(3);
    let config = r#"
        [default]
        latency = { kind = "uniform", min_ms = 1, max_ms = 20 }
        [[groups]]
        device_types = ["GSME"]
        unreachable = 1.0
        [srv."11.2"]
        no_answer = 1.0
    "#;
    let (hub, signer) = start_hub(&fleet, config).await;
    let (tx, rx) = mpsc::channel(64);
    let remote: Arc<dyn HubNetwork> = Arc::new(RemoteHub::start(hub.addr, tx));
    let dir = tempfile::tempdir().unwrap();
    let dispatch = DispatchConfig {
        timeout_ms: 300,
        ..DispatchConfig::default()
    };
    let mut opened = Dispatcher::open(dir.path(), dispatch, remote, rx)
        .await
        .unwrap();
    let d = opened.dispatcher.clone();

    // A read: the device's GBCS-shaped answer.
    let read = fleet.command(&signer, fleet.esmes[0], "4.1.1", 100, None);
    d.record(&read).await.unwrap();
    d.dispatch(read).await.unwrap();
    let out = next(&mut opened.outcomes).await;
    assert_eq!(out.request_id.counter, 100);
    let apdu = Apdu::decode(out.result.as_ref().expect("an answer")).unwrap();
    let frame = apdu.general_signing();
    assert_eq!(
        (frame.transaction.counter, frame.originator),
        (100, fleet.esmes[0])
    );
    d.settle(&out.request_id).await.unwrap();
    assert_eq!(d.pending(), 0);

    // E20: the network cannot reach a gas meter.
    d.dispatch(fleet.command(&signer, fleet.gsmes[1], "4.1.1", 101, None))
        .await
        .unwrap();
    let out = next(&mut opened.outcomes).await;
    assert_eq!(
        (out.request_id.counter, out.result),
        (101, Err(DeviceFailure::Unreachable))
    );

    // E21: the device never answers; the dispatcher's timer ends it.
    d.dispatch(fleet.command(&signer, fleet.esmes[1], "11.2", 102, None))
        .await
        .unwrap();
    let out = next(&mut opened.outcomes).await;
    assert_eq!(
        (out.request_id.counter, out.result),
        (102, Err(DeviceFailure::NoAnswer))
    );

    // A forgery (a broker key the hub does not trust) is refused by the hub: E20 at once.
    let (stranger, _, _) = fixture::broker();
    d.dispatch(fleet.command(&stranger, fleet.esmes[2], "4.1.1", 103, None))
        .await
        .unwrap();
    let out = next(&mut opened.outcomes).await;
    assert_eq!(
        (out.request_id.counter, out.result),
        (103, Err(DeviceFailure::Unreachable))
    );
}

#[tokio::test]
async fn the_hub_refuses_unsigned_commands_over_http() {
    let fleet = Fleet::new(1);
    let (hub, signer) = start_hub(&fleet, "").await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/commands", hub.addr);
    let good = fleet
        .command(&signer, fleet.esmes[0], "4.1.1", 1, None)
        .into_bytes();
    let unsigned = good[..good.len() - 64].to_vec();
    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    for (body, want) in [
        (good, 202),
        (unsigned, 403),
        (forged, 403),
        (vec![0; 200_000], 413),
    ] {
        let status = client.post(&url).body(body).send().await.unwrap().status();
        assert_eq!(status.as_u16(), want);
    }
}

#[tokio::test]
async fn unacknowledged_events_are_offered_again_after_a_reconnect() {
    let fleet = Fleet::new(4);
    // A power outage behind two hubs as soon as the hub starts: four alerts.
    let config =
        "[default]\nlatency = { kind = \"fixed\", ms = 0 }\n[[storms]]\nafter_secs = 0\nhubs = 2\n";
    let (hub, signer) = start_hub(&fleet, config).await;

    let alerts = |list: &[Inbound]| {
        let mut v: Vec<_> = list
            .iter()
            .map(|i| match &i.event {
                HubEvent::Alert { device, code, .. } => (*device, *code),
                other => panic!("{other:?}"),
            })
            .collect();
        v.sort();
        v
    };

    // First gateway: receives the storm, acknowledges nothing, goes away.
    let (tx, mut rx) = mpsc::channel(64);
    let first = RemoteHub::start(hub.addr, tx);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next(&mut rx).await);
    }
    let storm = alerts(&seen);
    assert_eq!(storm.len(), 4);
    drop(seen);
    drop(first);

    // Second gateway: the same four again (nothing lost); it acknowledges them.
    let (tx, mut rx) = mpsc::channel(64);
    let second = RemoteHub::start(hub.addr, tx);
    let mut again = Vec::new();
    for _ in 0..4 {
        again.push(next(&mut rx).await);
    }
    assert_eq!(alerts(&again), storm);
    for i in again {
        i.receipt.ack();
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while second.acknowledged() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acknowledgement confirmed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(second);

    // Third gateway: the acknowledged storm is not sent again; the first thing it sees is the
    // answer to a new command.
    let (tx, mut rx) = mpsc::channel(64);
    let third = RemoteHub::start(hub.addr, tx);
    third
        .send(fleet.command(&signer, fleet.esmes[0], "4.1.1", 7, None))
        .await
        .unwrap();
    let first_seen = next(&mut rx).await;
    assert!(
        matches!(first_seen.event, HubEvent::Response { request_id, .. } if request_id.counter == 7),
        "{:?}",
        first_seen.event
    );
}

#[tokio::test]
async fn the_raised_log_holds_every_event_before_the_gateway_sees_it() {
    let fleet = Fleet::new(3);
    // A storm behind two hubs (four alerts), and a read whose meter raises an alert after its
    // answer: six events in all.
    let config = "[default]\nlatency = { kind = \"fixed\", ms = 0 }\n\
                  alerts_after = [{ code = 0x8F1C, delay_ms = 5 }]\n\
                  [[storms]]\nafter_secs = 0\nhubs = 2\nspread_ms = 50\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raised.ndjson");
    let log = RaisedLog::open(&path).await.unwrap();
    let (hub, signer) = start_hub_with(&fleet, config, Some(log)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let remote = RemoteHub::start(hub.addr, tx);
    remote
        .send(fleet.command(&signer, fleet.esmes[2], "4.1.1", 9, None))
        .await
        .unwrap();

    // Each event, as the gateway sees it, is in the log by the time it arrives.
    let mut seen = Vec::new();
    for _ in 0..6 {
        let event = next(&mut rx).await.event;
        let text = std::fs::read_to_string(&path).unwrap();
        let records: Vec<Raised> = text
            .lines()
            .map(|l| Raised::parse_line(l).unwrap())
            .collect();
        let key = identity(&event);
        assert!(
            records.iter().any(|r| record_identity(r) == key),
            "{event:?} is not in the raised log:\n{text}"
        );
        seen.push(key);
    }
    // And the log holds nothing the gateway was not offered.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut logged: Vec<_> = text
        .lines()
        .map(|l| record_identity(&Raised::parse_line(l).unwrap()))
        .collect();
    logged.sort();
    seen.sort();
    assert_eq!(logged, seen);
    let kinds: Vec<_> = text
        .lines()
        .map(|l| Raised::parse_line(l).unwrap().kind)
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == RaisedKind::Alert).count(), 5);
    assert_eq!(
        kinds.iter().filter(|k| **k == RaisedKind::Response).count(),
        1
    );
}

/// What names one event: kind, device, alert code, RequestID, the alert frame's counter.
type Identity = (
    RaisedKind,
    dccgw::domain::DeviceId,
    Option<u16>,
    Option<String>,
    Option<u64>,
);

fn identity(event: &HubEvent) -> Identity {
    let counter = |p: &[u8]| {
        Apdu::decode(p)
            .ok()
            .map(|a| a.general_signing().transaction.counter)
    };
    match event {
        HubEvent::Response {
            request_id, device, ..
        } => (
            RaisedKind::Response,
            *device,
            None,
            Some(request_id.to_string()),
            None,
        ),
        HubEvent::Alert {
            device,
            code,
            payload,
            ..
        } => (
            RaisedKind::Alert,
            *device,
            Some(*code),
            None,
            counter(payload),
        ),
        other => panic!("not expected here: {other:?}"),
    }
}

fn record_identity(r: &Raised) -> Identity {
    (
        r.kind,
        r.device,
        r.code,
        r.request_id.map(|id| id.to_string()),
        r.frame_counter,
    )
}

#[tokio::test]
async fn two_gateways_share_one_hub_and_a_gone_one_leaves_its_events_to_the_other() {
    let fleet = Fleet::new(6);
    // A power outage behind six hubs as soon as the hub starts: twelve alerts.
    let config =
        "[default]\nlatency = { kind = \"fixed\", ms = 0 }\n[[storms]]\nafter_secs = 0\nhubs = 6\n";
    let (hub, _) = start_hub(&fleet, config).await;
    let key = |i: &Inbound| match &i.event {
        HubEvent::Alert {
            device,
            code,
            payload,
            ..
        } => (*device, *code, payload.clone()),
        other => panic!("{other:?}"),
    };

    // Two gateways read at once; between them they get the storm, each alert once.
    let (tx_a, mut rx_a) = mpsc::channel(64);
    let (tx_b, mut rx_b) = mpsc::channel(64);
    let a = RemoteHub::start(hub.addr, tx_a);
    let b = RemoteHub::start(hub.addr, tx_b);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    while got_a.len() + got_b.len() < 12 {
        tokio::select! {
            i = next(&mut rx_a) => got_a.push(i),
            i = next(&mut rx_b) => got_b.push(i),
        }
    }
    let mut all: Vec<_> = got_a.iter().chain(&got_b).map(key).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 12, "each alert once, none lost");
    // Nothing more is handed out while they hold everything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx_a.try_recv().is_err() && rx_b.try_recv().is_err());

    // B acknowledges what it got; A goes away holding its share unacknowledged.
    let b_count = got_b.len() as u64;
    for i in got_b {
        i.receipt.ack();
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while b.acknowledged() < b_count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acknowledgements confirmed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a_share: Vec<_> = got_a.iter().map(key).collect();
    drop(got_a);
    drop(a);

    // A's share comes to B (once its stream's end is seen), and nothing B acknowledged.
    let mut again = Vec::new();
    for _ in 0..a_share.len() {
        again.push(next(&mut rx_b).await);
    }
    let mut again_keys: Vec<_> = again.iter().map(key).collect();
    let mut want = a_share;
    again_keys.sort();
    want.sort();
    assert_eq!(again_keys, want);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx_b.try_recv().is_err(),
        "nothing B acknowledged comes again"
    );
}
