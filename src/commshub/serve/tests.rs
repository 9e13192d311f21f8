//! The hub's event log handed out to several readers: each event held by one reader at a time,
//! let go when its reader's stream ends or its lease lapses, forgotten when acknowledged.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::events::EventLog;

const LEASE: Duration = Duration::from_secs(60);

fn log_with(events: u64) -> EventLog {
    let log = EventLog::new(1_000, LEASE);
    log.push(
        (1..=events)
            .map(|seq| (seq, Bytes::from(seq.to_string())))
            .collect(),
    );
    log
}

fn seqs(taken: &[(u64, Bytes)]) -> BTreeSet<u64> {
    taken.iter().map(|(seq, _)| *seq).collect()
}

#[test]
fn each_event_goes_to_one_reader_at_a_time() {
    let log = log_with(10);
    let (a, b) = (log.reader(), log.reader());
    let now = Instant::now();
    let first = log.take(a, 4, now);
    let second = log.take(b, 100, now);
    assert_eq!(seqs(&first), (1..=4).collect());
    assert_eq!(seqs(&second), (5..=10).collect());
    // Nothing is left for either while they hold everything.
    assert!(log.take(a, 100, now).is_empty());
    assert!(log.take(b, 100, now).is_empty());
    assert_eq!(log.counts(), (0, 10));
    // The lines are the events'.
    assert_eq!(first[0].1, Bytes::from("1"));
}

#[test]
fn a_reader_gone_lets_its_events_go_to_the_others() {
    let log = log_with(6);
    let (a, b) = (log.reader(), log.reader());
    let now = Instant::now();
    let held_by_a = seqs(&log.take(a, 3, now));
    log.take(b, 100, now);
    // B acknowledges its own; A's stream ends without acknowledging anything.
    assert_eq!(log.ack(log.epoch(), &[(4, 6)]), 3);
    log.release(a);
    assert_eq!(log.counts(), (3, 0));
    assert_eq!(seqs(&log.take(b, 100, now)), held_by_a);
    // A reader that holds nothing lets nothing go.
    log.release(a);
    assert_eq!(log.counts(), (0, 3));
}

#[test]
fn an_event_held_past_its_lease_is_offered_again() {
    let log = log_with(3);
    let (a, b) = (log.reader(), log.reader());
    let start = Instant::now();
    log.take(a, 2, start);
    // Within the lease, B gets only the event A did not take.
    assert_eq!(
        seqs(&log.take(b, 100, start + LEASE / 2)),
        BTreeSet::from([3])
    );
    // Past it, A's two are B's to take; B's own lease (taken later) has not lapsed.
    assert_eq!(
        seqs(&log.take(b, 100, start + LEASE)),
        BTreeSet::from([1, 2])
    );
    // A's late release does not take back what B now holds.
    log.release(a);
    assert_eq!(log.counts(), (0, 3));
}

#[test]
fn an_acknowledgement_forgets_events_whoever_holds_them() {
    let log = log_with(5);
    let (a, b) = (log.reader(), log.reader());
    let now = Instant::now();
    log.take(a, 2, now);
    // Another epoch's acknowledgement (an earlier hub process's) changes nothing.
    assert_eq!(log.ack(log.epoch() + 1, &[(1, 5)]), 0);
    // B acknowledges A's events (it got them before, and holds them durably) and a free one.
    assert_eq!(log.ack(log.epoch(), &[(1, 3)]), 3);
    assert_eq!(log.counts(), (2, 0));
    assert_eq!(seqs(&log.take(b, 100, now)), BTreeSet::from([4, 5]));
    // A range far past the log forgets only what is there.
    assert_eq!(log.ack(log.epoch(), &[(5, u64::MAX)]), 1);
    assert_eq!(log.counts(), (0, 1));
}

#[test]
fn leases_of_acknowledged_events_do_not_pile_up() {
    let log = log_with(0);
    let reader = log.reader();
    let now = Instant::now();
    for seq in 1..=10_000u64 {
        log.push(vec![(seq, Bytes::from_static(b"e"))]);
        let taken = log.take(reader, 1, now);
        assert_eq!(seqs(&taken), BTreeSet::from([seq]));
        log.ack(log.epoch(), &[(seq, seq)]);
    }
    // Each take passes over the lapsed entries of acknowledged events at the queue's front.
    assert!(log.leases() <= 1, "{} leases kept", log.leases());
}

#[test]
fn acknowledgements_out_of_order_and_overlapping_count_each_event_once() {
    let log = log_with(6);
    let reader = log.reader();
    let now = Instant::now();
    log.take(reader, 100, now);
    assert_eq!(log.ack(log.epoch(), &[(3, 3), (5, 5)]), 2);
    assert_eq!(log.counts(), (0, 4));
    // Overlapping ranges, and a range already acknowledged: each event forgotten once.
    assert_eq!(log.ack(log.epoch(), &[(1, 4), (2, 3), (5, 5)]), 3);
    assert_eq!(log.counts(), (0, 1));
    // New events after the holes are handed out in order.
    log.push(vec![(7, Bytes::from_static(b"7"))]);
    log.release(reader);
    assert_eq!(seqs(&log.take(reader, 100, now)), BTreeSet::from([6, 7]));
}
