//! The dispatcher in front of the in-process simulator, on tokio's paused clock; and the
//! in-process hub's own bounds.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::super::*;
use crate::dispatch::{
    unix_millis, DispatchConfig, Dispatcher, HubError, HubEvent, HubNetwork, Opened,
    FUTURE_DATED_EXECUTED,
};
use crate::domain::DeviceFailure;
use crate::routing::CommandSigner;
use crate::testing::fixture::{self, Fleet};

struct Rig {
    fleet: Fleet,
    signer: CommandSigner,
    opened: Opened,
    _dir: tempfile::TempDir,
}

async fn rig(hub_config: &str, dispatch: DispatchConfig) -> Rig {
    let fleet = Fleet::new(2);
    let (signer, verifier, _) = fixture::broker();
    let config: HubConfig = toml::from_str(hub_config).unwrap();
    let sim = Simulator::new(config, fleet.snapshot.clone(), verifier).unwrap();
    let (tx, rx) = mpsc::channel(64);
    let hub: Arc<dyn HubNetwork> = Arc::new(InProcessHub::start(sim, tx));
    let dir = tempfile::tempdir().unwrap();
    let opened = Dispatcher::open(dir.path(), dispatch, hub, rx)
        .await
        .unwrap();
    Rig {
        fleet,
        signer,
        opened,
        _dir: dir,
    }
}

const FIXED: &str = "[default]\nlatency = { kind = \"fixed\", ms = 2000 }\n";

#[tokio::test(start_paused = true)]
async fn an_answer_becomes_an_outcome_and_settles() {
    let mut r = rig(FIXED, DispatchConfig::default()).await;
    let d = r.opened.dispatcher.clone();
    let cmd = r
        .fleet
        .command(&r.signer, r.fleet.esmes[0], "4.1.1", 11, None);
    let id = cmd.header().unwrap().request_id;
    d.record(&cmd).await.unwrap();
    assert_eq!(d.pending(), 1);
    let sent = tokio::time::Instant::now();
    d.dispatch(cmd.clone()).await.unwrap();
    d.dispatch(cmd).await.unwrap(); // already in flight: not sent twice
    let out = r.opened.outcomes.recv().await.unwrap();
    assert_eq!(sent.elapsed(), Duration::from_secs(2));
    assert_eq!((out.request_id, out.device), (id, r.fleet.esmes[0]));
    let frame = crate::gbcs::Apdu::decode(out.result.as_ref().unwrap()).unwrap();
    assert_eq!(frame.general_signing().transaction.counter, 11);
    assert_eq!(d.in_flight(), 0);
    d.settle(&id).await.unwrap();
    assert_eq!(d.pending(), 0);
    // Nothing else comes: the second dispatch of the same command did not reach the hub.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(r.opened.outcomes.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn unreachable_devices_and_silent_ones_fail_with_e20_and_e21() {
    let config = format!("{FIXED}[[groups]]\ndevice_types = [\"GSME\"]\nunreachable = 1.0\n[srv.\"11.2\"]\nno_answer = 1.0\n");
    let dispatch = DispatchConfig {
        timeout_ms: 10_000,
        srv_timeout_ms: [("11.2".parse().unwrap(), 20_000)].into(),
        ..DispatchConfig::default()
    };
    let mut r = rig(&config, dispatch).await;
    let d = r.opened.dispatcher.clone();
    let start = tokio::time::Instant::now();
    let e20 = r
        .fleet
        .command(&r.signer, r.fleet.gsmes[0], "4.1.1", 1, None);
    d.dispatch(e20).await.unwrap();
    let out = r.opened.outcomes.recv().await.unwrap();
    assert_eq!(out.result, Err(DeviceFailure::Unreachable));
    assert_eq!(
        crate::error::device_failure_code(out.result.unwrap_err()),
        crate::domain::ResponseCode::E20
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    let start = tokio::time::Instant::now();
    let e21 = r
        .fleet
        .command(&r.signer, r.fleet.esmes[0], "11.2", 2, None);
    d.dispatch(e21).await.unwrap();
    let out = r.opened.outcomes.recv().await.unwrap();
    assert_eq!(out.result, Err(DeviceFailure::NoAnswer));
    assert_eq!(
        crate::error::device_failure_code(DeviceFailure::NoAnswer),
        crate::domain::ResponseCode::E21
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(20),
        "the SRV's own timeout"
    );

    // A command the hub refuses (signed by a key it does not trust) fails at once with E20.
    let (stranger, _, _) = fixture::broker();
    let start = tokio::time::Instant::now();
    d.dispatch(
        r.fleet
            .command(&stranger, r.fleet.esmes[1], "4.1.1", 3, None),
    )
    .await
    .unwrap();
    let out = r.opened.outcomes.recv().await.unwrap();
    assert_eq!(
        (out.request_id.counter, out.result),
        (3, Err(DeviceFailure::Unreachable))
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn alerts_and_future_dated_alerts_pass_through_with_receipts() {
    let config =
        format!("{FIXED}[srv.\"4.1.1\"]\nalerts_after = [{{ code = 0x8F02, delay_ms = 100 }}]\n");
    let mut r = rig(&config, DispatchConfig::default()).await;
    let d = r.opened.dispatcher.clone();
    let at = unix_millis() / 1000 + 60;
    d.dispatch(
        r.fleet
            .command(&r.signer, r.fleet.esmes[0], "4.1.1", 1, Some(at)),
    )
    .await
    .unwrap();
    assert!(r.opened.outcomes.recv().await.unwrap().result.is_ok());
    let first = r.opened.events.recv().await.unwrap();
    assert!(matches!(first.event, HubEvent::Alert { code: 0x8F02, .. }));
    first.receipt.ack();
    let second = r.opened.events.recv().await.unwrap();
    assert!(matches!(
        second.event,
        HubEvent::FutureDated { code: FUTURE_DATED_EXECUTED, request_id, .. } if request_id.counter == 1
    ));
}

#[tokio::test(start_paused = true)]
async fn a_restart_returns_what_was_acknowledged_and_not_settled() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::new(2);
    let (signer, verifier, _) = fixture::broker();
    let cmds = fleet.commands(&signer, 3);
    {
        let sim = Simulator::new(
            HubConfig::default(),
            fleet.snapshot.clone(),
            verifier.clone(),
        )
        .unwrap();
        let (tx, rx) = mpsc::channel(8);
        let hub: Arc<dyn HubNetwork> = Arc::new(InProcessHub::start(sim, tx));
        let opened = Dispatcher::open(dir.path(), DispatchConfig::default(), hub, rx)
            .await
            .unwrap();
        for (_, c) in &cmds {
            opened.dispatcher.record(c).await.unwrap();
        }
        opened.dispatcher.settle(&cmds[1].0).await.unwrap();
    }
    let sim = Simulator::new(HubConfig::default(), fleet.snapshot.clone(), verifier).unwrap();
    let (tx, rx) = mpsc::channel(8);
    let hub: Arc<dyn HubNetwork> = Arc::new(InProcessHub::start(sim, tx));
    let mut opened = Dispatcher::open(dir.path(), DispatchConfig::default(), hub, rx)
        .await
        .unwrap();
    assert_eq!(opened.recovered, vec![cmds[0].1.clone(), cmds[2].1.clone()]);
    for c in std::mem::take(&mut opened.recovered) {
        opened.dispatcher.dispatch(c).await.unwrap();
    }
    let mut answered = vec![
        opened.outcomes.recv().await.unwrap().request_id,
        opened.outcomes.recv().await.unwrap().request_id,
    ];
    answered.sort_by_key(|id| id.counter);
    assert_eq!(answered, vec![cmds[0].0, cmds[2].0]);
}

#[tokio::test(start_paused = true)]
async fn the_in_process_hub_bounds_commands_in_flight_and_raises_storms_on_demand() {
    let fleet = Fleet::new(3);
    let (signer, verifier, _) = fixture::broker();
    let config: HubConfig = toml::from_str(&format!("max_in_flight = 1\n{FIXED}")).unwrap();
    let sim = Simulator::new(config, fleet.snapshot.clone(), verifier).unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let hub = InProcessHub::start(sim, tx);
    hub.send(fleet.command(&signer, fleet.esmes[0], "4.1.1", 1, None))
        .await
        .unwrap();
    assert!(matches!(
        hub.send(fleet.command(&signer, fleet.esmes[1], "4.1.1", 2, None))
            .await,
        Err(HubError::Overloaded)
    ));
    assert!(matches!(
        rx.recv().await.unwrap().event,
        HubEvent::Response { .. }
    ));
    // Its events are out: room for the next.
    tokio::task::yield_now().await;
    hub.send(fleet.command(&signer, fleet.esmes[1], "4.1.1", 3, None))
        .await
        .unwrap();
    assert!(
        matches!(rx.recv().await.unwrap().event, HubEvent::Response { request_id, .. } if request_id.counter == 3)
    );
    hub.storm_now(Storm {
        after_secs: 0,
        hubs: 3,
        code: 0x8F35,
        spread_ms: 0,
    });
    let mut devices = Vec::new();
    for _ in 0..6 {
        devices.push(rx.recv().await.unwrap().event.device());
    }
    devices.sort();
    let mut want: Vec<_> = fleet.esmes.iter().chain(&fleet.gsmes).copied().collect();
    want.sort();
    assert_eq!(devices, want);
}
