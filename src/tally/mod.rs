//! Anomaly detection's counts (the resource; the decision is `anomaly::decide`): how many
//! requests each count threshold has seen over the last hour and the last day.
//!
//! One counter per distinct (User or all Users, role or any, variant or group) that a
//! threshold in force names — not per request key a peer could choose — so the memory is
//! bounded by the threshold set (at most `anomaly::MAX_ENTRIES` counters of 336 bytes of
//! buckets each, about 4 MB with the map's overhead), whatever the traffic. A request counts in
//! the counter of every threshold that covers it.
//!
//! Windows slide in steps: the hour in 60 one-minute buckets, the day in 24 one-hour buckets. A
//! count covers the current step and the full steps before it, so it can miss up to one step's
//! oldest requests (at most a minute's of the hour, an hour's of the day): the threshold
//! trips no later than exact counting would, and never earlier.
//!
//! [`Counts`] is the interface the pipeline uses; [`LocalCounts`] keeps the counts of one
//! instance in memory. Each request counted is also journalled (`store::CountLog`, by the
//! pipeline, before the request's answer), and a start rebuilds the counts from the journal
//! with [`Counts::restore`], so a restart does not empty the windows. In a cluster the other
//! instances' counts are added with [`Counts::restore`] as they are read, and all of them read
//! again with [`Counts::rebuild`] when a new threshold set names new counters
//! (`cluster::counts`, `schemas/anomaly.md`).

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use crate::anomaly::{decide, Counted, Facts, Scope, Thresholds, Verdict, Window};
use crate::domain::{Srv, UserId, UserRole};

/// Counts behind the decision.
pub trait Counts: Send + Sync {
    /// The decision on `facts` under `thresholds` at `now` (unix seconds), on the counts before
    /// the request; the request is counted unless it is quarantined. Atomic with respect to
    /// other calls, so concurrent requests cannot pass a threshold together.
    fn screen(&self, thresholds: &Thresholds, facts: &Facts<'_>, now: i64) -> Verdict;

    /// Counts `n` requests of `user` in `role` for `srv`, made at `at` (unix seconds), in every
    /// counter of `thresholds` that covers them, as `screen` counted them: the counts rebuilt
    /// at a start from the journal, oldest first.
    fn restore(
        &self,
        thresholds: &Thresholds,
        user: UserId,
        role: UserRole,
        srv: Srv,
        at: i64,
        n: u32,
    );

    /// Forgets the counters no threshold of `thresholds` names (after a new set is in force).
    fn retain(&self, thresholds: &Thresholds);

    /// Replaces every count, in one step, with `counted` — (User, role, variant, unix seconds,
    /// requests), oldest first — counted as `restore` counts: the counts of a cluster read
    /// again whole for a new threshold set.
    fn rebuild(&self, thresholds: &Thresholds, counted: &[(UserId, UserRole, Srv, i64, u32)]);

    /// Counters kept.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one counter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    user: Option<UserId>,
    role: Option<UserRole>,
    scope: Scope,
}

/// Buckets over `N` steps of `STEP` seconds; `last` is the latest step written.
#[derive(Clone, Debug)]
struct Ring<const N: usize, const STEP: i64> {
    slots: [u32; N],
    last: i64,
}

impl<const N: usize, const STEP: i64> Ring<N, STEP> {
    fn new() -> Self {
        Self {
            slots: [0; N],
            last: i64::MIN,
        }
    }

    /// Counts in the window ending at `now`.
    fn sum(&self, now: i64) -> u64 {
        let step = now.div_euclid(STEP).max(self.last);
        let n = N as i64;
        let from = (step - n + 1).max(self.last.saturating_sub(n - 1));
        (from..=self.last)
            .map(|s| u64::from(self.slots[s.rem_euclid(n) as usize]))
            .sum()
    }

    fn add(&mut self, now: i64, count: u32) {
        // A clock set back counts in the latest step.
        let step = now.div_euclid(STEP).max(self.last);
        let n = N as i64;
        if self.last == i64::MIN || step - self.last >= n {
            self.slots = [0; N];
        } else {
            for s in self.last + 1..=step {
                self.slots[s.rem_euclid(n) as usize] = 0;
            }
        }
        self.last = step;
        let slot = &mut self.slots[step.rem_euclid(n) as usize];
        *slot = slot.saturating_add(count);
    }
}

#[derive(Clone, Debug)]
struct Counter {
    hour: Ring<60, 60>,
    day: Ring<24, 3_600>,
    /// The hour's and the day's counts after the last request screened here (`None` before
    /// one): what the decision needs to raise a warning tier that counts read in jumped past.
    decided: Option<(u64, u64)>,
}

impl Counter {
    fn new() -> Self {
        Self {
            hour: Ring::new(),
            day: Ring::new(),
            decided: None,
        }
    }

    fn sum(&self, window: Window, now: i64) -> u64 {
        match window {
            Window::Hour => self.hour.sum(now),
            Window::Day => self.day.sum(now),
        }
    }
}

/// The counts of one instance, in memory.
#[derive(Default)]
pub struct LocalCounts {
    counters: Mutex<HashMap<Key, Counter>>,
}

impl LocalCounts {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The counters as the decision reads them, at one instant.
struct View<'a> {
    counters: &'a HashMap<Key, Counter>,
    now: i64,
}

impl Counted for View<'_> {
    fn count(
        &self,
        user: Option<UserId>,
        role: Option<UserRole>,
        scope: Scope,
        window: Window,
    ) -> u64 {
        self.counters
            .get(&Key { user, role, scope })
            .map_or(0, |c| c.sum(window, self.now))
    }

    fn last_decided(
        &self,
        user: Option<UserId>,
        role: Option<UserRole>,
        scope: Scope,
        window: Window,
    ) -> Option<u64> {
        let (hour, day) = self.counters.get(&Key { user, role, scope })?.decided?;
        Some(match window {
            Window::Hour => hour,
            Window::Day => day,
        })
    }
}

impl Counts for LocalCounts {
    fn screen(&self, thresholds: &Thresholds, facts: &Facts<'_>, now: i64) -> Verdict {
        // Every critical section leaves the map consistent before it could panic.
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let verdict = decide(
            thresholds,
            facts,
            &View {
                counters: &counters,
                now,
            },
        );
        let request = (facts.user, facts.role, facts.srv);
        if verdict.quarantine.is_none() {
            count(&mut counters, thresholds, request, now, 1);
        }
        for key in keys(thresholds, request) {
            if let Some(c) = counters.get_mut(&key) {
                c.decided = Some((c.hour.sum(now), c.day.sum(now)));
            }
        }
        verdict
    }

    fn restore(
        &self,
        thresholds: &Thresholds,
        user: UserId,
        role: UserRole,
        srv: Srv,
        at: i64,
        n: u32,
    ) {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        count(&mut counters, thresholds, (user, role, srv), at, n);
    }

    fn retain(&self, thresholds: &Thresholds) {
        let named: HashSet<Key> = thresholds
            .counts
            .iter()
            .map(|t| Key {
                user: t.user,
                role: t.role,
                scope: t.scope,
            })
            .collect();
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters.retain(|k, _| named.contains(k));
    }

    fn rebuild(&self, thresholds: &Thresholds, counted: &[(UserId, UserRole, Srv, i64, u32)]) {
        let mut fresh = HashMap::new();
        for &(user, role, srv, at, n) in counted {
            count(&mut fresh, thresholds, (user, role, srv), at, n);
        }
        *self.counters.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
    }

    fn len(&self) -> usize {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Adds `n` requests of (User, role, variant) at `now` to every counter a threshold covering
/// them names, once each.
fn count(
    counters: &mut HashMap<Key, Counter>,
    thresholds: &Thresholds,
    (user, role, srv): (UserId, UserRole, Srv),
    now: i64,
    n: u32,
) {
    for key in keys(thresholds, (user, role, srv)) {
        let counter = counters.entry(key).or_insert_with(Counter::new);
        counter.hour.add(now, n);
        counter.day.add(now, n);
    }
}

/// The counters of the thresholds covering a request of (User, role, variant), once each.
fn keys(thresholds: &Thresholds, (user, role, srv): (UserId, UserRole, Srv)) -> HashSet<Key> {
    thresholds
        .covering(user, role, srv)
        .map(|t| Key {
            user: t.user,
            role: t.role,
            scope: t.scope,
        })
        .collect()
}
