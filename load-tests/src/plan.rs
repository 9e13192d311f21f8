//! The plan: every request of a run, decided before it starts — when it is due (open loop:
//! evenly spaced at each step's rate, whatever the server does), which class, which User, which
//! device. Pure and deterministic for a seed. Counters are `base + index`: requests are in due
//! order, so each User's counters rise, and an answer's counter names its request.

use dccgw::domain::{DeviceId, DCC_ID};

use crate::population::Population;
use crate::scenario::{Load, MixEntry};

/// Most requests one plan may hold (all are signed in memory before the run, ~1.5 KB each).
pub const MAX_REQUESTS: u64 = 3_000_000;
/// Premises tried for a class before the plan gives up (a device that is not Commissioned is
/// passed over; about 2 % are not).
const TRIES: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// Due time, nanoseconds after the run's start.
    pub at_ns: u64,
    /// Index of the load step it belongs to.
    pub step: u16,
    /// Index into the mix.
    pub class: u16,
    /// Index into the population's Users.
    pub user: u32,
    /// The device, or the DCC's ID for non-device requests.
    pub target: DeviceId,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlannedStep {
    pub rate: f64,
    pub start_ns: u64,
    pub end_ns: u64,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub items: Vec<Planned>,
    pub steps: Vec<PlannedStep>,
    pub counter_base: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("the load asks for {0} requests; a plan holds at most {MAX_REQUESTS}")]
    TooMany(u64),
    #[error("mix entry {0:?}: no Commissioned target with a registered User found")]
    NoTarget(String),
    #[error("the mix has no weight")]
    EmptyMix,
}

/// A small, fast, seedable generator (SplitMix64): the plan must not depend on a platform RNG.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Due times (ns) with their step indices, and the steps.
pub type Arrivals = (Vec<(u64, u16)>, Vec<PlannedStep>);

/// The due times of `load`'s requests and their step indices.
pub fn arrivals(load: &Load) -> Result<Arrivals, PlanError> {
    let total = load.requests().round();
    if total > MAX_REQUESTS as f64 {
        return Err(PlanError::TooMany(total as u64));
    }
    let mut out = Vec::with_capacity(total as usize);
    let mut steps = Vec::new();
    let mut start = 0u64;
    for (k, step) in load.steps().iter().enumerate() {
        let n = (step.rate * step.duration_s).round() as u64;
        let gap = 1e9 / step.rate;
        for i in 0..n {
            out.push((start + (i as f64 * gap) as u64, k as u16));
        }
        let end = start + (step.duration_s * 1e9) as u64;
        steps.push(PlannedStep {
            rate: step.rate,
            start_ns: start,
            end_ns: end,
        });
        start = end;
    }
    Ok((out, steps))
}

/// Plans `load` with classes from `mix` (by weight), Users and devices from `pop`.
pub fn build(
    load: &Load,
    mix: &[MixEntry],
    pop: &Population,
    seed: u64,
    counter_base: u64,
) -> Result<Plan, PlanError> {
    let total_weight: u64 = mix.iter().map(|m| u64::from(m.weight)).sum();
    if total_weight == 0 {
        return Err(PlanError::EmptyMix);
    }
    let (times, steps) = arrivals(load)?;
    let mut rng = SplitMix::new(seed);
    let mut items = Vec::with_capacity(times.len());
    for (at_ns, step) in times {
        let mut w = rng.next_u64() % total_weight;
        let class = mix
            .iter()
            .position(|m| {
                let hit = w < u64::from(m.weight);
                w = w.saturating_sub(u64::from(m.weight));
                hit
            })
            .unwrap_or(0);
        let entry = &mix[class];
        let (user, target) =
            pick(entry, pop, &mut rng).ok_or_else(|| PlanError::NoTarget(entry.name.clone()))?;
        items.push(Planned {
            at_ns,
            step,
            class: class as u16,
            user,
            target,
        });
    }
    Ok(Plan {
        items,
        steps,
        counter_base,
    })
}

fn pick(entry: &MixEntry, pop: &Population, rng: &mut SplitMix) -> Option<(u32, DeviceId)> {
    if entry.non_device() {
        return pop
            .any_user(entry.role, rng.next_u64())
            .map(|u| (u, DCC_ID));
    }
    (0..TRIES).find_map(|_| pop.pick(entry.role, rng.next_u64(), rng.next_u64()))
}

impl Plan {
    /// The requests of each User, in due order (indices into `items`).
    pub fn lanes(&self, users: usize) -> Vec<Vec<u32>> {
        let mut lanes = vec![Vec::new(); users];
        for (i, item) in self.items.iter().enumerate() {
            if let Some(lane) = lanes.get_mut(item.user as usize) {
                lane.push(i as u32);
            }
        }
        lanes
    }

    /// The request index a counter names, if it is one of this plan's.
    pub fn index_of_counter(&self, counter: u64) -> Option<usize> {
        let i = counter.checked_sub(self.counter_base)?;
        (i < self.items.len() as u64).then_some(i as usize)
    }

    pub fn duration_ns(&self) -> u64 {
        self.steps.last().map_or(0, |s| s.end_ns)
    }
}

#[cfg(test)]
mod tests;
