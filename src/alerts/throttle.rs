//! Alert-storm throttling, a pure state machine (`now` passed in, unix seconds).
//!
//! The rule (also in `docs/alerts.md`), per key — a (User, alert code) pair:
//! 1. A window opens at the first alert of the key and lasts `window_secs`.
//! 2. The first `burst` alerts of a window are released as they come, unchanged.
//! 3. Later alerts of the window are held: each replaces the one held before and is counted.
//! 4. When the window ends ([`Throttle::tick`], or the key's next alert, whichever is first)
//!    the last held alert is released once, carrying `ThrottledAlertSequenceId` (a number new to
//!    this summary) and `ThrottledAlertCount` (how many alerts it stands for, itself included).
//!    It also lists the identifiers of all of them, so the caller can settle each.
//! 5. A summary that reaches `max_held` alerts is released at once, and the next held alert
//!    starts a new summary with a new sequence number.
//!
//! So a key sends at most `burst` + 1 messages a window (more only past `max_held`), and every
//! alert offered is either released or counted in exactly one summary. Bounds: at most
//! `max_keys` keys are tracked; at the bound a new key's alerts are released untouched (failing
//! open: delivery beats throttling) and counted in [`Throttle::untracked`].

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use serde::Deserialize;

use crate::duis::outbound::Throttled;

use super::AlertsError;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Length of a key's window (seconds, at least 1).
    #[schemars(range(min = 1))]
    pub window_secs: u32,
    /// Alerts of a key released as they come in one window (at least 1).
    #[schemars(range(min = 1))]
    pub burst: u32,
    /// Alerts one summary may stand for before it is released early (at least 1).
    #[schemars(range(min = 1))]
    pub max_held: u32,
    /// Keys tracked at once (at least 1).
    #[schemars(range(min = 1))]
    pub max_keys: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            window_secs: 60,
            burst: 20,
            max_held: 10_000,
            max_keys: 1_000_000,
        }
    }
}

impl ThrottleConfig {
    pub fn check(&self) -> Result<(), AlertsError> {
        let zero = [
            ("window_secs", self.window_secs as usize),
            ("burst", self.burst as usize),
            ("max_held", self.max_held as usize),
            ("max_keys", self.max_keys),
        ]
        .into_iter()
        .find(|(_, v)| *v == 0);
        match zero {
            Some((name, _)) => Err(AlertsError::ZeroThrottleBound(name)),
            None => Ok(()),
        }
    }
}

/// An alert let through: unchanged (`throttled: None`, `covers` its own identifier), or a
/// summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released<T> {
    pub item: T,
    /// The identifiers of the alerts this release accounts for, its own last.
    pub covers: Vec<u64>,
    pub throttled: Option<Throttled>,
}

/// What became of an offered alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer<T> {
    /// To send now: this alert, and/or a summary the offer closed.
    pub release: Vec<Released<T>>,
    /// The sequence number of the summary this alert is held in, if it was held.
    pub held_in: Option<u32>,
}

#[derive(Debug)]
struct Held<T> {
    sequence_id: u32,
    item: T,
    covers: Vec<u64>,
}

impl<T> Held<T> {
    fn release(self) -> Released<T> {
        let count = u32::try_from(self.covers.len()).unwrap_or(u32::MAX);
        Released {
            item: self.item,
            covers: self.covers,
            throttled: Some(Throttled {
                sequence_id: self.sequence_id,
                count,
            }),
        }
    }
}

#[derive(Debug)]
struct Slot<T> {
    window_end: i64,
    sent: u32,
    held: Option<Held<T>>,
}

/// The throttle's state: the open windows, keyed by `K`, holding items `T`.
#[derive(Debug)]
pub struct Throttle<K, T> {
    config: ThrottleConfig,
    slots: HashMap<K, Slot<T>>,
    /// (window end, key) of every slot: what [`Throttle::tick`] closes.
    ends: BTreeSet<(i64, K)>,
    next_sequence: u32,
    held: usize,
    untracked: u64,
}

impl<K: Hash + Ord + Clone, T> Throttle<K, T> {
    /// A throttle whose first summary gets `first_sequence_id` (pass something that differs
    /// across restarts, e.g. a persisted counter, so that sequence numbers are not reused soon).
    pub fn new(config: ThrottleConfig, first_sequence_id: u32) -> Result<Self, AlertsError> {
        config.check()?;
        Ok(Self {
            config,
            slots: HashMap::new(),
            ends: BTreeSet::new(),
            next_sequence: first_sequence_id,
            held: 0,
            untracked: 0,
        })
    }

    pub fn offer(&mut self, key: K, id: u64, item: T, now: i64) -> Offer<T> {
        let mut release = Vec::new();
        if !self.open_window(&key, now, &mut release) {
            self.untracked += 1;
            release.push(plain(id, item));
            return Offer {
                release,
                held_in: None,
            };
        }
        let burst = self.config.burst;
        match self.slots.get_mut(&key) {
            Some(slot) if slot.sent >= burst => {}
            // Within the burst (a slot always exists after `open_window`).
            slot => {
                if let Some(slot) = slot {
                    slot.sent += 1;
                }
                release.push(plain(id, item));
                return Offer {
                    release,
                    held_in: None,
                };
            }
        }
        let held_in = self.hold(&key, id, item, &mut release);
        Offer { release, held_in }
    }

    /// Makes sure `key` has a window open at `now`: a window that is over is closed (its
    /// summary released into `release`) and a new one opened. `false` when the key is new and
    /// the throttle already tracks its maximum of keys.
    fn open_window(&mut self, key: &K, now: i64, release: &mut Vec<Released<T>>) -> bool {
        let window = i64::from(self.config.window_secs);
        let tracked = self.slots.len();
        match self.slots.get_mut(key) {
            Some(slot) if now >= slot.window_end => {
                // The window is over: close it, and open a new one with this alert.
                self.ends.remove(&(slot.window_end, key.clone()));
                if let Some(h) = slot.held.take() {
                    self.held -= h.covers.len();
                    release.push(h.release());
                }
                slot.window_end = now.saturating_add(window);
                slot.sent = 0;
                self.ends.insert((slot.window_end, key.clone()));
                true
            }
            Some(_) => true,
            None if tracked >= self.config.max_keys => false,
            None => {
                let window_end = now.saturating_add(window);
                self.ends.insert((window_end, key.clone()));
                let slot = Slot {
                    window_end,
                    sent: 0,
                    held: None,
                };
                self.slots.insert(key.clone(), slot);
                true
            }
        }
    }

    /// Holds `item` in `key`'s summary (a later alert replaces the one held: the summary carries
    /// the last) and returns the summary's sequence number; a summary that reaches its maximum
    /// is released at once.
    fn hold(&mut self, key: &K, id: u64, item: T, release: &mut Vec<Released<T>>) -> Option<u32> {
        let Some(slot) = self.slots.get_mut(key) else {
            // Unreachable: `open_window` left a slot for `key`. Sent rather than lost.
            release.push(plain(id, item));
            return None;
        };
        self.held += 1;
        let sequence_id = match slot.held.as_mut() {
            Some(held) => {
                held.item = item;
                held.covers.push(id);
                held.sequence_id
            }
            None => {
                let sequence_id = self.next_sequence;
                self.next_sequence = self.next_sequence.wrapping_add(1);
                slot.held = Some(Held {
                    sequence_id,
                    item,
                    covers: vec![id],
                });
                sequence_id
            }
        };
        let full = slot
            .held
            .as_ref()
            .is_some_and(|h| h.covers.len() >= self.config.max_held as usize);
        if full {
            if let Some(h) = slot.held.take() {
                self.held -= h.covers.len();
                release.push(h.release());
            }
        }
        Some(sequence_id)
    }

    /// Closes every window that has ended by `now`, releasing its summary if it holds alerts,
    /// and forgets its key.
    pub fn tick(&mut self, now: i64) -> Vec<Released<T>> {
        let mut out = Vec::new();
        while let Some((end, _)) = self.ends.first() {
            if *end > now {
                break;
            }
            let Some((_, key)) = self.ends.pop_first() else {
                break;
            };
            if let Some(slot) = self.slots.remove(&key) {
                if let Some(h) = slot.held {
                    self.held -= h.covers.len();
                    out.push(h.release());
                }
            }
        }
        out
    }

    /// Releases every summary now, whatever its window (at shutdown), and forgets every key.
    pub fn flush(&mut self) -> Vec<Released<T>> {
        self.ends.clear();
        self.held = 0;
        let mut keys: Vec<(K, Slot<T>)> = self.slots.drain().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.into_iter()
            .filter_map(|(_, slot)| slot.held.map(Held::release))
            .collect()
    }

    /// When the next window ends, if any is open: the latest instant to call [`Self::tick`] at.
    pub fn next_deadline(&self) -> Option<i64> {
        self.ends.first().map(|(end, _)| *end)
    }

    /// Alerts held in summaries now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Keys with an open window.
    pub fn keys(&self) -> usize {
        self.slots.len()
    }

    /// Alerts released untouched because `max_keys` keys were already tracked.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }
}

fn plain<T>(id: u64, item: T) -> Released<T> {
    Released {
        item,
        covers: vec![id],
        throttled: None,
    }
}
