//! The pending journal, the dispatcher in front of a scripted hub network, and the link's wire
//! format. The dispatcher is also tested in front of the simulator
//! (`commshub/tests/dispatcher.rs`) and over HTTP (`tests/commshub.rs`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::sync::mpsc;

use super::pending::PendingJournal;
use super::*;
use crate::domain::DeviceFailure;
use crate::routing::SignedCommand;
use crate::testing::fixture::{self, Fleet};

fn journal_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[tokio::test]
async fn pending_commands_survive_a_restart_and_settled_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::new(3);
    let (signer, _, _) = fixture::broker();
    let cmds = fleet.commands(&signer, 6);
    let (j, old) = PendingJournal::open(dir.path(), 1000, 4, Vec::new())
        .await
        .unwrap();
    assert!(old.is_empty());
    for (id, c) in &cmds {
        j.record(*id, c).await.unwrap();
    }
    // Recording the same RequestID again changes nothing.
    j.record(cmds[0].0, &cmds[0].1).await.unwrap();
    assert_eq!(j.len(), 6);
    for (id, _) in &cmds[..4] {
        assert!(j.settle(id).await.unwrap());
    }
    assert!(!j.settle(&cmds[0].0).await.unwrap(), "settled twice");
    drop(j);
    let (j, pending) = PendingJournal::open(dir.path(), 1000, 4, Vec::new())
        .await
        .unwrap();
    assert_eq!(pending, vec![cmds[4].1.clone(), cmds[5].1.clone()]);
    assert_eq!(
        journal_files(dir.path()),
        1,
        "reopening writes one fresh segment"
    );
    j.settle(&cmds[4].0).await.unwrap();
    drop(j);
    let (_, pending) = PendingJournal::open(dir.path(), 1000, 4, Vec::new())
        .await
        .unwrap();
    assert_eq!(pending, vec![cmds[5].1.clone()]);
}

#[tokio::test]
async fn settled_segments_are_deleted_and_old_pending_ones_copied_forward() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::new(3);
    let (signer, _, _) = fixture::broker();
    let cmds = fleet.commands(&signer, 40);
    let (j, _) = PendingJournal::open(dir.path(), 4, 3, Vec::new())
        .await
        .unwrap();
    for (id, c) in &cmds[..20] {
        j.record(*id, c).await.unwrap();
    }
    assert!(j.segment_count() >= 5);
    for (id, _) in &cmds[..20] {
        j.settle(id).await.unwrap();
    }
    j.compact().await.unwrap();
    assert_eq!(j.segment_count(), 1);
    assert_eq!(journal_files(dir.path()), 1);

    // One command that never settles, then many that do: it is copied forward, not pinned.
    j.record(cmds[20].0, &cmds[20].1).await.unwrap();
    for (id, c) in &cmds[21..] {
        j.record(*id, c).await.unwrap();
        j.settle(id).await.unwrap();
    }
    j.compact().await.unwrap();
    assert!(j.segment_count() <= 3, "{} segments", j.segment_count());
    assert!(journal_files(dir.path()) <= 3);
    drop(j);
    let (_, pending) = PendingJournal::open(dir.path(), 4, 3, Vec::new())
        .await
        .unwrap();
    assert_eq!(pending, vec![cmds[20].1.clone()]);
}

/// A hub network that takes every command (and keeps it) or refuses every one.
struct ScriptedHub {
    refuse: bool,
    taken: Mutex<Vec<SignedCommand>>,
}

impl HubNetwork for ScriptedHub {
    fn send(&self, cmd: SignedCommand) -> HubFuture<'_> {
        Box::pin(async move {
            if self.refuse {
                return Err(HubError::Overloaded);
            }
            self.taken.lock().unwrap().push(cmd);
            Ok(())
        })
    }
}

fn inbound(event: HubEvent) -> Inbound {
    Inbound {
        event,
        receipt: Receipt::none(),
    }
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_ends_each_command_once_by_answer_or_timeout() {
    let fleet = Fleet::new(2);
    let (signer, _, _) = fixture::broker();
    let cmds = fleet.commands(&signer, 2);
    let hub = Arc::new(ScriptedHub {
        refuse: false,
        taken: Mutex::new(Vec::new()),
    });
    let (hub_tx, hub_rx) = mpsc::channel(8);
    let dir = tempfile::tempdir().unwrap();
    let config = DispatchConfig {
        timeout_ms: 10_000,
        ..DispatchConfig::default()
    };
    let hub_dyn: Arc<dyn HubNetwork> = hub.clone();
    let mut opened = Dispatcher::open(dir.path(), config, hub_dyn, hub_rx)
        .await
        .unwrap();
    let d = opened.dispatcher.clone();

    // Answered: the device's payload and time, once.
    let (id, device) = (cmds[0].0, cmds[0].0.target);
    d.dispatch(cmds[0].1.clone()).await.unwrap();
    assert_eq!(hub.taken.lock().unwrap().len(), 1);
    let answer = HubEvent::Response {
        request_id: id,
        device,
        payload: vec![7, 7],
        at: 42,
    };
    hub_tx.send(inbound(answer.clone())).await.unwrap();
    let out = opened.outcomes.recv().await.unwrap();
    assert_eq!(
        (out.request_id, out.result, out.at),
        (id, Ok(vec![7, 7]), 42)
    );
    hub_tx.send(inbound(answer)).await.unwrap();

    // Silent: E21 at the timeout, and a late answer finds nothing.
    let start = tokio::time::Instant::now();
    d.dispatch(cmds[1].1.clone()).await.unwrap();
    assert_eq!(d.in_flight(), 1);
    let out = opened.outcomes.recv().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(
        (out.request_id, out.result),
        (cmds[1].0, Err(DeviceFailure::NoAnswer))
    );
    hub_tx
        .send(inbound(HubEvent::Unreachable {
            request_id: cmds[1].0,
            device: cmds[1].0.target,
            at: 50,
        }))
        .await
        .unwrap();

    // Alerts pass through to the caller.
    let alert = HubEvent::Alert {
        device,
        code: 0x8F35,
        payload: vec![1],
        at: 60,
    };
    hub_tx.send(inbound(alert.clone())).await.unwrap();
    assert_eq!(opened.events.recv().await.unwrap().event, alert);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        opened.outcomes.try_recv().is_err(),
        "a repeated or late answer made a second outcome"
    );
    assert_eq!(d.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_command_the_hub_will_not_take_fails_with_e20_at_once() {
    let fleet = Fleet::new(1);
    let (signer, _, _) = fixture::broker();
    let cmds = fleet.commands(&signer, 1);
    let refusing: Arc<dyn HubNetwork> = Arc::new(ScriptedHub {
        refuse: true,
        taken: Mutex::new(Vec::new()),
    });
    let (_refusing_tx, refusing_rx) = mpsc::channel(8);
    let dir = tempfile::tempdir().unwrap();
    let mut opened = Dispatcher::open(dir.path(), DispatchConfig::default(), refusing, refusing_rx)
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    opened.dispatcher.dispatch(cmds[0].1.clone()).await.unwrap();
    let out = opened.outcomes.recv().await.unwrap();
    assert_eq!(
        (out.request_id, out.result),
        (cmds[0].0, Err(DeviceFailure::Unreachable))
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(opened.dispatcher.in_flight(), 0);
}

#[test]
fn events_cross_the_wire_intact() {
    let fleet = Fleet::new(1);
    let id = "90-B3-D5-1F-30-01-00-00:00-DB-12-01-00-00-00-00:77"
        .parse()
        .unwrap();
    let events = [
        HubEvent::Response {
            request_id: id,
            device: fleet.esmes[0],
            payload: vec![1, 2, 3],
            at: 5,
        },
        HubEvent::Unreachable {
            request_id: id,
            device: fleet.esmes[0],
            at: -1,
        },
        HubEvent::Alert {
            device: fleet.gsmes[0],
            code: 0x8F35,
            payload: vec![],
            at: 9,
        },
        HubEvent::FutureDated {
            request_id: id,
            srv: "6.15.1".parse().unwrap(),
            device: fleet.esmes[0],
            code: 0x8F67,
            payload: vec![0xFF; 300],
            at: 10,
        },
    ];
    for (i, e) in events.iter().enumerate() {
        let line = wire::encode(3, i as u64, e);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let (epoch, seq, back) = wire::decode(&line[..line.len() - 1]).unwrap();
        assert_eq!((epoch, seq, &back), (3, i as u64, e));
    }
    assert!(wire::decode(b"{\"epoch\":1}").is_err());
    assert!(
        wire::decode(
            br#"{"epoch":1,"seq":1,"kind":"alert","device":"00-DB-12-01-00-00-00-00","at":1}"#
        )
        .is_err(),
        "an alert without a code"
    );
    assert!(wire::decode(&vec![b' '; wire::MAX_EVENT_LINE + 1]).is_err());
}

#[test]
fn acknowledgements_travel_as_ranges() {
    assert_eq!(wire::encode_acks([1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
    assert_eq!(wire::encode_acks([]), "");
    assert_eq!(wire::encode_acks([u64::MAX]), u64::MAX.to_string());
    assert_eq!(
        wire::decode_acks(b"1-3,5,7-8").unwrap(),
        vec![(1, 3), (5, 5), (7, 8)]
    );
    assert_eq!(wire::decode_acks(b"").unwrap(), vec![]);
    for bad in [&b"3-1"[..], b"1,,2", b"x", b"1-", b"-1", b"1-2-3", b"\xff"] {
        assert!(wire::decode_acks(bad).is_err(), "{bad:?}");
    }
}

proptest! {
    #[test]
    fn acknowledgements_round_trip(mut seqs in proptest::collection::btree_set(any::<u64>(), 0..50)) {
        let ranges = wire::decode_acks(wire::encode_acks(seqs.iter().copied()).as_bytes()).unwrap();
        for (first, last) in ranges {
            for seq in first..=last {
                prop_assert!(seqs.remove(&seq));
            }
        }
        prop_assert!(seqs.is_empty());
    }

    #[test]
    fn the_acknowledgement_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let _ = wire::decode_acks(&bytes);
    }

    #[test]
    fn the_event_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = wire::decode(&bytes);
    }
}

#[tokio::test]
async fn commands_from_the_request_log_are_pending_and_a_checkpoint_makes_them_the_journals() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::new(3);
    let (signer, _, _) = fixture::broker();
    let cmds = fleet.commands(&signer, 4);
    let (j, _) = PendingJournal::open(dir.path(), 1000, 4, Vec::new())
        .await
        .unwrap();
    // Taken while their decisions commit: pending in memory only, once each.
    for (id, c) in &cmds {
        assert!(j.admit(*id, c));
    }
    assert!(!j.admit(cmds[0].0, &cmds[0].1));
    // A failed commit forgets its command; a settled one is settled.
    j.forget(&cmds[3].0);
    assert!(j.settle(&cmds[2].0).await.unwrap());
    assert_eq!(j.len(), 2);
    let all: Vec<SignedCommand> = cmds.iter().map(|(_, c)| c.clone()).collect();
    j.checkpoint(&all).await.unwrap();
    drop(j);
    // The log's segment is gone after the checkpoint: the journal alone holds 0 and 1; a settle
    // made before the checkpoint still counts for 2, and 3 was never committed.
    let (_, pending) = PendingJournal::open(dir.path(), 1000, 4, Vec::new())
        .await
        .unwrap();
    assert_eq!(pending, vec![cmds[0].1.clone(), cmds[1].1.clone()]);
}

#[tokio::test]
async fn a_start_takes_the_request_logs_commands_unless_the_journal_settled_them() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::new(3);
    let (signer, _, _) = fixture::broker();
    let cmds = fleet.commands(&signer, 3);
    let (j, _) = PendingJournal::open(dir.path(), 1000, 4, Vec::new())
        .await
        .unwrap();
    for (id, c) in &cmds {
        j.admit(*id, c);
    }
    j.settle(&cmds[1].0).await.unwrap();
    drop(j);
    // A crash before any checkpoint: the log hands back all three.
    let from_log: Vec<SignedCommand> = cmds.iter().map(|(_, c)| c.clone()).collect();
    let (_, pending) = PendingJournal::open(dir.path(), 1000, 4, from_log)
        .await
        .unwrap();
    assert_eq!(pending, vec![cmds[0].1.clone(), cmds[2].1.clone()]);
    // Durable in the journal now: the log's segments may go.
    let (_, pending) = PendingJournal::open(dir.path(), 1000, 4, Vec::new())
        .await
        .unwrap();
    assert_eq!(pending, vec![cmds[0].1.clone(), cmds[2].1.clone()]);
}
