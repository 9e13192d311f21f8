//! The per-User queue's rules, step by step with time passed in.

use super::message;
use crate::outbox::queue::{Attempt, Circuit, Policy, Step, UserQueue};

const POLICY: Policy = Policy {
    first_retry_ms: 60_000,
    max_backoff_ms: 300_000,
    hold_ms: 2 * 24 * 3_600_000,
    concurrency: 2,
    open_after: 3,
};

fn send(q: &mut UserQueue, now: i64) -> Attempt {
    match q.next(now) {
        Step::Send(a) => a,
        other => panic!("expected a send at {now}, got {other:?}"),
    }
}

fn idle(q: &mut UserQueue, now: i64) -> Option<i64> {
    match q.next(now) {
        Step::Idle { wake } => wake,
        other => panic!("expected idle at {now}, got {other:?}"),
    }
}

#[test]
fn backoff_doubles_from_the_first_retry_up_to_the_cap() {
    let cases = [
        (1, 60_000),
        (2, 120_000),
        (3, 240_000),
        (4, 300_000),
        (40, 300_000),
    ];
    for (n, want) in cases {
        assert_eq!(POLICY.backoff(n), want, "retry {n}");
    }
}

#[test]
fn oldest_first_and_no_more_than_the_concurrency_bound() {
    let mut q = UserQueue::new(POLICY);
    for id in 1..=4 {
        q.push(message(id, 0), 0);
    }
    assert_eq!(send(&mut q, 0).message.id.get(), 1);
    assert_eq!(send(&mut q, 0).message.id.get(), 2);
    // At the bound: only the hold deadline of the oldest waiting message wakes it.
    assert_eq!(idle(&mut q, 0), Some(POLICY.hold_ms));
    assert_eq!(q.in_flight(), 2);
    q.succeeded(5);
    assert_eq!(send(&mut q, 5).message.id.get(), 3);
}

#[test]
fn a_failed_message_waits_for_its_retry_while_others_flow() {
    let mut q = UserQueue::new(POLICY);
    q.push(message(1, 0), 0);
    q.push(message(2, 0), 0);
    let first = send(&mut q, 0);
    q.failed(first, 10);
    assert_eq!(q.circuit(), Circuit::Closed, "one failure is not an outage");
    let second = send(&mut q, 10);
    assert_eq!(second.message.id.get(), 2);
    q.succeeded(20);
    // Message 1 is due first_retry after its failure: the promise's "within 300 s".
    assert_eq!(idle(&mut q, 20), Some(10 + POLICY.first_retry_ms));
    let retry = send(&mut q, 10 + POLICY.first_retry_ms);
    assert_eq!((retry.message.id.get(), retry.previous), (1, 1));
}

#[test]
fn repeated_failures_open_the_circuit_and_one_probe_tests_the_endpoint() {
    let mut q = UserQueue::new(Policy {
        concurrency: 8,
        ..POLICY
    });
    for id in 1..=10 {
        q.push(message(id, 0), 0);
    }
    let sent: Vec<_> = (0..8).map(|_| send(&mut q, 0)).collect();
    for a in sent.into_iter().take(3) {
        q.failed(a, 100);
    }
    let until = 100 + POLICY.first_retry_ms;
    assert_eq!(q.circuit(), Circuit::Open { until, opened: 1 });
    // Nothing goes while open, however much is due.
    assert_eq!(idle(&mut q, 200), Some(until));
    // Half-open: exactly one probe.
    let probe = send(&mut q, until);
    assert!(matches!(q.next(until), Step::Idle { .. }));
    q.failed(probe, until + 5);
    assert_eq!(
        q.circuit(),
        Circuit::Open {
            until: until + 5 + 120_000,
            opened: 2
        },
        "a failed probe doubles the wait"
    );
    let later = until + 5 + 120_000;
    let probe = send(&mut q, later);
    q.succeeded(later + 1);
    assert_eq!(q.circuit(), Circuit::Closed);
    // Everything waiting, retries included, is due at once; the concurrency bound holds.
    let in_flight_before = q.in_flight();
    let mut sent = 0;
    while let Step::Send(_) = q.next(later + 1) {
        sent += 1;
    }
    assert_eq!(in_flight_before + sent, 8);
    drop(probe);
}

#[test]
fn messages_past_the_hold_time_expire_but_not_while_in_flight() {
    let mut q = UserQueue::new(POLICY);
    q.push(message(1, 0), 0);
    q.push(message(2, 1_000), 1_000);
    let a = send(&mut q, 1_000);
    let deadline = POLICY.hold_ms;
    let b = send(&mut q, 1_000);
    // Both in flight past the deadline: nothing expires until they come back.
    assert_eq!(idle(&mut q, deadline + 10), None);
    q.failed(a, deadline + 10);
    match q.next(deadline + 10) {
        Step::Expire(a) => assert_eq!(a.message.id.get(), 1),
        other => panic!("expected expiry, got {other:?}"),
    }
    q.failed(b, deadline + 20);
    // Message 2's deadline is 1 s later than message 1's.
    assert_eq!(idle(&mut q, deadline + 20), Some(deadline + 1_000));
    assert!(matches!(q.next(deadline + 1_000), Step::Expire(_)));
    assert_eq!(q.waiting(), 0);
}
