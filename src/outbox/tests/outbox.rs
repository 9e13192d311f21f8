//! The outbox end to end over an in-process transport, in paused time: delivery, retries,
//! dead letters and replay, restarts, compaction, isolation between Users, the bounds.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{response_kind, METER, NETWORK, SUPPLIER};
use crate::domain::UserId;
use crate::outbox::{
    no_hook, ChannelTransport, Endpoints, Handed, MessageId, Outbound, OutboundKind, Outbox,
    OutboxConfig, OutboxError, OutboxMetrics,
};

/// What the consumer does with a message: accept, refuse, or never answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Answer {
    Accept,
    Refuse,
    Hang,
}

type Policy = Arc<Mutex<Box<dyn FnMut(&Handed) -> Answer + Send>>>;

/// An in-process consumer: answers by `policy`, and reports every attempt (time, URL, ID,
/// answer) on the returned channel.
fn consumer(
    mut rx: mpsc::Receiver<Handed>,
    policy: Policy,
) -> mpsc::UnboundedReceiver<(Instant, String, MessageId, Answer)> {
    let (tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut hung = Vec::new();
        while let Some(h) = rx.recv().await {
            let answer = (policy.lock().unwrap())(&h);
            let _ = tx.send((Instant::now(), h.url.clone(), h.message.id, answer));
            match answer {
                Answer::Accept => drop(h.accept.send(true)),
                Answer::Refuse => drop(h.accept.send(false)),
                Answer::Hang => hung.push(h.accept),
            }
        }
    });
    seen
}

fn policy(f: impl FnMut(&Handed) -> Answer + Send + 'static) -> Policy {
    Arc::new(Mutex::new(Box::new(f)))
}

fn endpoints() -> Arc<dyn Endpoints> {
    Arc::new(|user: &UserId| Some(format!("https://{}.example/rrs", user.to_compact_hex())))
}

struct Harness {
    outbox: Outbox,
    seen: mpsc::UnboundedReceiver<(Instant, String, MessageId, Answer)>,
}

/// Runs `f(outbox)` (an enqueue, a flush) on a blocking thread. In paused time the clock
/// jumps to the next timer whenever every task waits, and waiting for the journal's fsync (a
/// real disk, on another thread) counts as waiting: one fsync could skip to a two-day hold
/// deadline. A blocking task in flight stops that (tokio's documented way to wait for I/O
/// in paused time).
async fn io<T, F>(outbox: &Outbox, f: impl FnOnce(Outbox) -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T>,
    T: Send + 'static,
{
    let outbox = outbox.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(f(outbox)))
        .await
        .unwrap()
}

async fn enqueue(outbox: &Outbox, batch: Vec<Outbound>) -> Result<(), OutboxError> {
    io(outbox, |o| async move { o.enqueue(batch).await }).await
}

async fn open(dir: &Path, config: &OutboxConfig, p: Policy) -> Harness {
    let (transport, rx) = ChannelTransport::new(64);
    let seen = consumer(rx, p);
    let outbox = Outbox::open(
        dir,
        config,
        endpoints(),
        Arc::new(transport),
        OutboxMetrics::new(),
        no_hook(),
    )
    .await
    .unwrap();
    Harness { outbox, seen }
}

fn outbound(outbox: &Outbox, user: UserId, n: u64) -> Outbound {
    Outbound {
        id: outbox.next_id(),
        user,
        kind: response_kind(n),
        body: format!("<sr:Response n=\"{n}\"/>").into_bytes(),
        raised_at: 0,
    }
}

/// Waits (in paused time) until `n` deliveries have been accepted; returns their IDs.
async fn accepted(h: &mut Harness, n: usize) -> Vec<MessageId> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let (_, _, id, answer) = h.seen.recv().await.unwrap();
        if answer == Answer::Accept {
            ids.push(id);
        }
    }
    ids
}

async fn settle(h: &Harness) {
    // Two marker ticks: markers journalled, gauges refreshed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    io(&h.outbox, |o| async move { o.shutdown().await }).await;
}

#[tokio::test(start_paused = true)]
async fn enqueued_messages_are_delivered_and_stay_delivered_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig::default();
    let mut h = open(dir.path(), &config, policy(|_| Answer::Accept)).await;
    let batch: Vec<_> = (0..20).map(|n| outbound(&h.outbox, SUPPLIER, n)).collect();
    let mut want: Vec<_> = batch.iter().map(|o| o.id).collect();
    enqueue(&h.outbox, batch).await.unwrap();
    let mut got = accepted(&mut h, 20).await;
    got.sort();
    want.sort();
    assert_eq!(got, want);
    settle(&h).await;
    assert_eq!(h.outbox.pending(), 0);
    assert!(matches!(
        enqueue(&h.outbox, vec![outbound(&h.outbox, SUPPLIER, 1)]).await,
        Err(OutboxError::Stopped)
    ));

    let h = open(dir.path(), &config, policy(|_| Answer::Accept)).await;
    assert_eq!(
        h.outbox.pending(),
        0,
        "delivered markers hold across a restart"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_message_is_retried_within_300_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = true;
    let mut h = open(
        dir.path(),
        &OutboxConfig::default(),
        policy(move |_| {
            if std::mem::take(&mut first) {
                Answer::Refuse
            } else {
                Answer::Accept
            }
        }),
    )
    .await;
    enqueue(&h.outbox, vec![outbound(&h.outbox, SUPPLIER, 1)])
        .await
        .unwrap();
    let (t1, _, id1, a1) = h.seen.recv().await.unwrap();
    let (t2, _, id2, a2) = h.seen.recv().await.unwrap();
    assert_eq!((id1, a1, a2), (id2, Answer::Refuse, Answer::Accept));
    let gap = t2 - t1;
    assert!(gap <= Duration::from_secs(300), "retried after {gap:?}");
    assert!(gap >= Duration::from_secs(60), "retried after {gap:?}");
}

#[tokio::test(start_paused = true)]
async fn undelivered_after_two_days_is_a_dead_letter_that_survives_restart_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig::default();
    let mut h = open(dir.path(), &config, policy(|_| Answer::Refuse)).await;
    let o = outbound(&h.outbox, NETWORK, 5);
    let id = o.id;
    enqueue(&h.outbox, vec![o]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2 * 24 * 3600 + 60)).await;
    let dead = h.outbox.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].user), (id, NETWORK));
    assert!(dead[0].dead_at >= dead[0].held_since + 2 * 24 * 3600 * 1000);
    assert_eq!(h.outbox.pending(), 0);
    // Attempts were made all along, but none after it died.
    let mut attempts = 0;
    while let Ok(a) = h.seen.try_recv() {
        attempts += 1;
        assert_eq!(a.3, Answer::Refuse);
    }
    assert!(attempts > 10, "only {attempts} attempts in two days");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(h.seen.try_recv().is_err(), "a dead letter is not attempted");
    settle(&h).await;

    let mut h = open(dir.path(), &config, policy(|_| Answer::Accept)).await;
    assert_eq!(
        h.outbox.dead_letters().await.unwrap().len(),
        1,
        "dead letters are durable"
    );
    assert_eq!(
        h.outbox
            .replay_dead(&[id, MessageId::new(1)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(accepted(&mut h, 1).await, vec![id]);
    settle(&h).await;
    let h = open(dir.path(), &config, policy(|_| Answer::Accept)).await;
    assert!(h.outbox.dead_letters().await.unwrap().is_empty());
    assert_eq!(h.outbox.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn discarded_dead_letters_are_gone_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig {
        hold_secs: 600,
        ..OutboxConfig::default()
    };
    let h = open(dir.path(), &config, policy(|_| Answer::Refuse)).await;
    let batch: Vec<_> = (0..3).map(|n| outbound(&h.outbox, SUPPLIER, n)).collect();
    let ids: Vec<_> = batch.iter().map(|o| o.id).collect();
    enqueue(&h.outbox, batch).await.unwrap();
    tokio::time::sleep(Duration::from_secs(700)).await;
    assert_eq!(h.outbox.dead_letters().await.unwrap().len(), 3);
    let two = ids[..2].to_vec();
    let discarded = io(
        &h.outbox,
        move |o| async move { o.discard_dead(&two).await },
    );
    assert_eq!(discarded.await.unwrap(), 2);
    let left: Vec<_> = h
        .outbox
        .dead_letters()
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(left, vec![ids[2]]);
    settle(&h).await;
    let h = open(dir.path(), &config, policy(|_| Answer::Refuse)).await;
    let left: Vec<_> = h
        .outbox
        .dead_letters()
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(left, vec![ids[2]]);
}

#[tokio::test(start_paused = true)]
async fn pending_messages_are_delivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig::default();
    let h = open(dir.path(), &config, policy(|_| Answer::Hang)).await;
    let batch: Vec<_> = (0..5).map(|n| outbound(&h.outbox, SUPPLIER, n)).collect();
    let mut want: Vec<_> = batch.iter().map(|o| o.id).collect();
    enqueue(&h.outbox, batch).await.unwrap();
    settle(&h).await;
    assert_eq!(h.outbox.pending(), 5);

    let mut h = open(dir.path(), &config, policy(|_| Answer::Accept)).await;
    let mut got = accepted(&mut h, 5).await;
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // New IDs do not repeat the ones issued before the restart.
    let fresh = h.outbox.next_id();
    assert!(want.iter().all(|id| *id < fresh));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_endpoint_delays_no_other_user() {
    let dir = tempfile::tempdir().unwrap();
    let hang_for = format!("https://{}.example/rrs", SUPPLIER.to_compact_hex());
    let mut h = open(
        dir.path(),
        &OutboxConfig::default(),
        policy(move |m| {
            if m.url == hang_for {
                Answer::Hang
            } else {
                Answer::Accept
            }
        }),
    )
    .await;
    let stuck: Vec<_> = (0..50).map(|n| outbound(&h.outbox, SUPPLIER, n)).collect();
    enqueue(&h.outbox, stuck).await.unwrap();
    let flowing: Vec<_> = (0..50).map(|n| outbound(&h.outbox, NETWORK, n)).collect();
    enqueue(&h.outbox, flowing).await.unwrap();
    let (mut delivered, mut hung) = (0, 0);
    while delivered < 50 {
        let (_, _, _, a) = h.seen.recv().await.unwrap();
        delivered += usize::from(a == Answer::Accept);
        hung += usize::from(a == Answer::Hang);
    }
    // However long the other User hangs, nothing more of its is attempted.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(h.outbox.pending(), 50, "the hanging User's messages wait");
    while let Ok((_, _, _, a)) = h.seen.try_recv() {
        hung += usize::from(a == Answer::Hang);
    }
    // The hanging User holds no more than its concurrency bound.
    assert_eq!(hung, OutboxConfig::default().per_user_concurrency);
}

#[tokio::test(start_paused = true)]
async fn compaction_deletes_old_segments_and_carries_dead_letters_forward() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig {
        segment_bytes: 4096,
        hold_secs: 6 * 3600,
        first_retry_ms: 10_000,
        max_backoff_ms: 10_000,
        ..OutboxConfig::default()
    };
    let poison = Arc::new(Mutex::new(None::<MessageId>));
    let p = poison.clone();
    let mut h = open(
        dir.path(),
        &config,
        policy(move |m| {
            if Some(m.message.id) == *p.lock().unwrap() {
                Answer::Refuse
            } else {
                Answer::Accept
            }
        }),
    )
    .await;
    // One message that dies first, then traffic for many segments.
    let doomed = outbound(&h.outbox, NETWORK, 0);
    *poison.lock().unwrap() = Some(doomed.id);
    let doomed_id = doomed.id;
    enqueue(&h.outbox, vec![doomed]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(7 * 3600)).await;
    assert_eq!(h.outbox.dead_letters().await.unwrap().len(), 1);
    for round in 0..20u64 {
        let batch: Vec<_> = (0..10)
            .map(|n| Outbound {
                body: vec![b'x'; 300],
                ..outbound(&h.outbox, SUPPLIER, round * 10 + n)
            })
            .collect();
        enqueue(&h.outbox, batch).await.unwrap();
        accepted(&mut h, 10).await;
        io(&h.outbox, |o| async move { o.flush().await })
            .await
            .unwrap();
    }
    let files = || std::fs::read_dir(dir.path()).unwrap().count();
    for _ in 0..100 {
        if h.outbox.segments() <= 2 {
            break;
        }
        io(&h.outbox, |o| async move { o.flush().await })
            .await
            .unwrap();
    }
    assert!(
        h.outbox.segments() <= 2 && files() <= 2,
        "{} segments, {} files",
        h.outbox.segments(),
        files()
    );
    assert_eq!(h.outbox.pending(), 0);
    settle(&h).await;
    let h = open(dir.path(), &config, policy(|_| Answer::Accept)).await;
    assert_eq!(h.outbox.pending(), 0);
    let dead: Vec<_> = h
        .outbox
        .dead_letters()
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        dead,
        vec![doomed_id],
        "the dead letter was carried, not lost"
    );
}

#[tokio::test(start_paused = true)]
async fn bounds_refuse_rather_than_grow() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig {
        max_held_bytes: 1000,
        ..OutboxConfig::default()
    };
    let h = open(dir.path(), &config, policy(|_| Answer::Hang)).await;
    let big = Outbound {
        body: vec![b'x'; 600],
        ..outbound(&h.outbox, SUPPLIER, 1)
    };
    enqueue(&h.outbox, vec![big.clone()]).await.unwrap();
    let again = Outbound {
        id: h.outbox.next_id(),
        ..big.clone()
    };
    assert!(matches!(
        enqueue(&h.outbox, vec![again]).await,
        Err(OutboxError::Full { limit: 1000, .. })
    ));
    // The same ID twice is held once.
    enqueue(
        &h.outbox,
        vec![Outbound {
            body: vec![],
            ..big
        }],
    )
    .await
    .unwrap();
    assert_eq!(h.outbox.pending(), 1);
    let huge = Outbound {
        body: vec![0; crate::store::MAX_RECORD_BYTES],
        ..outbound(&h.outbox, SUPPLIER, 2)
    };
    assert!(matches!(
        enqueue(&h.outbox, vec![huge]).await,
        Err(OutboxError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn configurations_that_break_the_promise_are_refused() {
    let cases = [
        OutboxConfig {
            first_retry_ms: 300_001,
            ..OutboxConfig::default()
        },
        OutboxConfig {
            max_backoff_ms: 1,
            ..OutboxConfig::default()
        },
        OutboxConfig {
            per_user_concurrency: 0,
            ..OutboxConfig::default()
        },
        OutboxConfig {
            hold_secs: 0,
            ..OutboxConfig::default()
        },
    ];
    for config in cases {
        let dir = tempfile::tempdir().unwrap();
        let (t, _rx) = ChannelTransport::new(1);
        let r = Outbox::open(
            dir.path(),
            &config,
            endpoints(),
            Arc::new(t),
            OutboxMetrics::new(),
            no_hook(),
        )
        .await;
        assert!(matches!(r, Err(OutboxError::Config { .. })), "{config:?}");
    }
}

#[test]
fn the_kind_labels_are_a_closed_set() {
    let kinds = [
        (response_kind(1), "response"),
        (
            OutboundKind::DeviceAlert {
                code: 0x8F35,
                device: METER,
                request_id: None,
            },
            "device_alert",
        ),
        (
            OutboundKind::DccAlert {
                code: "N12".parse().unwrap(),
            },
            "dcc_alert",
        ),
    ];
    for (kind, label) in kinds {
        assert_eq!(kind.label(), label);
    }
}
