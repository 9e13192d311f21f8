//! What a request's phases learn on the way, for `record`: how long each phase took, and the
//! permit access control gave (the role used and its class).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::Timings;
use crate::auth::Permit;
use crate::rules::RuleSet;

/// A phase of a request, as timed. Work between two laps counts toward the later one (the
/// catalogue and originator checks toward `verify`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stage {
    Parse,
    Verify,
    Authorize,
    /// The anti-replay check and its journal fsync.
    Replay,
    /// Writing and signing the answer.
    Sign,
    /// Handing the signed command to the comms hub.
    Dispatch,
    /// Waiting for the request's audit record to be durable (after the answer is written).
    Audit,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Self::Parse,
        Self::Verify,
        Self::Authorize,
        Self::Replay,
        Self::Sign,
        Self::Dispatch,
        Self::Audit,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Parse => "parse",
            Self::Verify => "verify",
            Self::Authorize => "authorize",
            Self::Replay => "replay",
            Self::Sign => "sign",
            Self::Dispatch => "dispatch",
            Self::Audit => "audit",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// The stopwatch and notebook a request carries through its phases.
#[derive(Debug)]
pub struct RequestTrace {
    started: Instant,
    last: Instant,
    laps: [Option<Duration>; Stage::ALL.len()],
    permit: Option<Permit>,
    /// The rule set the decision used.
    rules: Option<Arc<RuleSet>>,
    /// Request body bytes read.
    pub bytes_in: u64,
}

impl RequestTrace {
    pub fn start() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: now,
            laps: [None; Stage::ALL.len()],
            permit: None,
            rules: None,
            bytes_in: 0,
        }
    }

    /// Marks the end of `stage`: it took the time since the previous mark.
    pub fn lap(&mut self, stage: Stage) {
        let now = Instant::now();
        let took = now.saturating_duration_since(self.last);
        self.last = now;
        let slot = &mut self.laps[stage.index()];
        *slot = Some(slot.unwrap_or_default() + took);
    }

    /// Starts the next lap now: the time since the previous mark belongs to no stage (it was
    /// spent in the phase that refused the request).
    pub fn mark(&mut self) {
        self.last = Instant::now();
    }

    /// Records the permit, for the role and class it names.
    pub fn permitted(&mut self, permit: &Permit) {
        self.permit = Some(*permit);
    }

    pub fn permit(&self) -> Option<&Permit> {
        self.permit.as_ref()
    }

    /// The request is decided under `rules`.
    pub fn ruled(&mut self, rules: &Arc<RuleSet>) {
        self.rules = Some(Arc::clone(rules));
    }

    pub fn rules(&self) -> Option<&Arc<RuleSet>> {
        self.rules.as_ref()
    }

    pub fn lap_of(&self, stage: Stage) -> Option<Duration> {
        self.laps[stage.index()]
    }

    /// Since the trace started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The laps as the audit record keeps them (microseconds), with `total` as given.
    pub fn timings(&self, total: Duration) -> Timings {
        let us = |s| self.lap_of(s).map(micros);
        Timings {
            parse_us: us(Stage::Parse),
            verify_us: us(Stage::Verify),
            authorize_us: us(Stage::Authorize),
            replay_us: us(Stage::Replay),
            sign_us: us(Stage::Sign),
            dispatch_us: us(Stage::Dispatch),
            total_us: micros(total),
        }
    }
}

/// Whole microseconds (a u64 of them lasts 584 000 years).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
