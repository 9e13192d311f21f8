//! One User's delivery queue as a pure state machine (time passed in, Unix milliseconds): which
//! message to send next, when to wake, when a message has outlived the hold time.
//!
//! The rules:
//! - Messages go out oldest first, at most `concurrency` at a time.
//! - A failed message is retried `first_retry` later, then with the delay doubling up to
//!   `max_backoff`. Other messages keep flowing meanwhile, so one message the endpoint refuses
//!   does not hold up the rest.
//! - After `open_after` failures in a row with no success between, the endpoint is taken to be
//!   down (the circuit opens): nothing is sent until the backoff has passed, then one message
//!   probes it. A success closes the circuit and every waiting message becomes due at once; a
//!   failure opens it again for twice as long (up to `max_backoff`). A dead endpoint so costs
//!   one attempt per backoff period, not one per message.
//! - A message still undelivered `hold` after it was enqueued (or replayed) leaves the queue
//!   as a dead letter. In-flight messages are judged when their attempt ends.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::message::Message;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Policy {
    pub first_retry_ms: i64,
    pub max_backoff_ms: i64,
    pub hold_ms: i64,
    pub concurrency: usize,
    pub open_after: u32,
}

impl Policy {
    /// The delay before the `n`th retry (n ≥ 1).
    pub fn backoff(&self, n: u32) -> i64 {
        let doublings = n.saturating_sub(1).min(30);
        self.first_retry_ms
            .saturating_mul(1i64 << doublings)
            .min(self.max_backoff_ms)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Circuit {
    Closed,
    /// Nothing is sent until `until`; `opened` counts the openings since the last success.
    Open {
        until: i64,
        opened: u32,
    },
    /// One probe may go (or has gone, `probing`).
    HalfOpen {
        opened: u32,
        probing: bool,
    },
}

/// One message being sent, and how many attempts it had before this one.
#[derive(Clone, Debug)]
pub(super) struct Attempt {
    pub message: Arc<Message>,
    pub previous: u32,
}

#[derive(Debug)]
pub(super) enum Step {
    Send(Attempt),
    /// The hold time passed; `previous` is the attempts it had.
    Expire(Attempt),
    /// Nothing to do until `wake` (or until a message arrives or an attempt ends).
    Idle {
        wake: Option<i64>,
    },
}

struct Waiting {
    message: Arc<Message>,
    due: i64,
    deadline: i64,
    attempts: u32,
}

pub(super) struct UserQueue {
    policy: Policy,
    waiting: HashMap<u64, Waiting>,
    by_due: BTreeSet<(i64, u64)>,
    by_deadline: BTreeSet<(i64, u64)>,
    next_seq: u64,
    in_flight: usize,
    failures_in_row: u32,
    circuit: Circuit,
}

impl UserQueue {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            waiting: HashMap::new(),
            by_due: BTreeSet::new(),
            by_deadline: BTreeSet::new(),
            next_seq: 0,
            in_flight: 0,
            failures_in_row: 0,
            circuit: Circuit::Closed,
        }
    }

    pub fn circuit(&self) -> Circuit {
        self.circuit
    }

    /// Failed attempts since the last success (or since the worker started).
    pub fn failures_in_row(&self) -> u32 {
        self.failures_in_row
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Adds a message, due now.
    pub fn push(&mut self, message: Arc<Message>, now: i64) {
        self.insert(message, now, 0);
    }

    fn insert(&mut self, message: Arc<Message>, due: i64, attempts: u32) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let deadline = message.held_since.saturating_add(self.policy.hold_ms);
        self.by_due.insert((due, seq));
        self.by_deadline.insert((deadline, seq));
        self.waiting.insert(
            seq,
            Waiting {
                message,
                due,
                deadline,
                attempts,
            },
        );
    }

    fn remove(&mut self, seq: u64) -> Option<Waiting> {
        let w = self.waiting.remove(&seq)?;
        self.by_due.remove(&(w.due, seq));
        self.by_deadline.remove(&(w.deadline, seq));
        Some(w)
    }

    /// What to do now. Call until it answers `Idle`.
    pub fn next(&mut self, now: i64) -> Step {
        if let Some(&(deadline, seq)) = self.by_deadline.first() {
            if deadline <= now {
                if let Some(w) = self.remove(seq) {
                    return Step::Expire(Attempt {
                        message: w.message,
                        previous: w.attempts,
                    });
                }
            }
        }
        if let Circuit::Open { until, opened } = self.circuit {
            if now >= until {
                self.circuit = Circuit::HalfOpen {
                    opened,
                    probing: false,
                };
            }
        }
        let first_due = self.by_due.first().copied();
        let send = match (self.circuit, first_due) {
            (Circuit::Closed, Some((due, seq))) if due <= now => {
                (self.in_flight < self.policy.concurrency).then_some(seq)
            }
            // The probe goes at once, whatever its own retry time.
            (Circuit::HalfOpen { probing: false, .. }, Some((_, seq))) => Some(seq),
            _ => None,
        };
        if let Some(w) = send.and_then(|seq| self.remove(seq)) {
            if let Circuit::HalfOpen { opened, .. } = self.circuit {
                self.circuit = Circuit::HalfOpen {
                    opened,
                    probing: true,
                };
            }
            self.in_flight += 1;
            return Step::Send(Attempt {
                message: w.message,
                previous: w.attempts,
            });
        }
        let deadline = self.by_deadline.first().map(|&(d, _)| d);
        let other = match self.circuit {
            Circuit::Open { until, .. } => Some(until),
            Circuit::Closed if self.in_flight < self.policy.concurrency => {
                first_due.map(|(d, _)| d)
            }
            Circuit::Closed | Circuit::HalfOpen { .. } => None,
        };
        let wake = match (deadline, other) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Step::Idle { wake }
    }

    /// The attempt was delivered: the endpoint works, so anything waiting is due now.
    pub fn succeeded(&mut self, now: i64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.failures_in_row = 0;
        if self.circuit != Circuit::Closed {
            self.circuit = Circuit::Closed;
            let later: Vec<(i64, u64)> = self.by_due.range((now + 1, 0)..).copied().collect();
            for (due, seq) in later {
                self.by_due.remove(&(due, seq));
                self.by_due.insert((now, seq));
                if let Some(w) = self.waiting.get_mut(&seq) {
                    w.due = now;
                }
            }
        }
    }

    /// The attempt failed: the message waits for its retry, and the circuit may open.
    pub fn failed(&mut self, attempt: Attempt, now: i64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        let attempts = attempt.previous.saturating_add(1);
        let due = now.saturating_add(self.policy.backoff(attempts));
        self.insert(attempt.message, due, attempts);
        let opened = match self.circuit {
            Circuit::Closed if self.failures_in_row >= self.policy.open_after => 1,
            Circuit::HalfOpen { opened, .. } => opened.saturating_add(1),
            Circuit::Closed | Circuit::Open { .. } => return,
        };
        self.circuit = Circuit::Open {
            until: now.saturating_add(self.policy.backoff(opened)),
            opened,
        };
    }
}
