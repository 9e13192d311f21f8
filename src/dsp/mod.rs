//! What the DSP does at its own times (layer 2): it releases held future-dated requests and runs
//! DSP schedules when they are due, turns its schedules' results into `DSPScheduledMessage`s,
//! and removes the schedules a change of supplier ends.
//!
//! - [`timer`]: one task that wakes at the next due time (or when a hold or schedule is added)
//!   and hands what is due to an [`Executor`]. After a stop, what fell due meanwhile is run if
//!   it is at most `late_window_secs` late; a held request later than that gets `E30`, a
//!   schedule's executions later than that are not run and the last of them is reported to the
//!   owner as a `CommandFailure` DCC Alert (`N4`, with the `DSPScheduleID`).
//! - `executor.rs`: the gateway's executor: releases through the pipeline, refusals into the
//!   outbox.
//! - `results.rs`: sits between the dispatcher and the replies task; the outcome of a schedule's
//!   execution (a RequestID the DCC minted for a schedule it knows) becomes a
//!   `DSPScheduledMessage` to the schedule's owner, or a `CommandFailure` alert when the device
//!   did not answer; every other outcome goes on to the replies task.
//! - `removals.rs`: sits between the registration changes and the replies task; a batch's change
//!   of supplier removes the outgoing supplier's schedules on that meter (journalled) and adds a
//!   `DSPScheduleRemoval` DCC Alert (`N5`) for each to the batch, so that it is raised, and
//!   raised again after a crash, with the change's own alerts.

mod executor;
mod removals;
mod results;
mod timer;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::alerts::ChangeAlerts;
use crate::dispatch::{DispatchOutcome, Dispatcher};
use crate::outbox::Outbox;
use crate::pipeline::{Dsp, Gateway};
use crate::store::{Held, HoldLimits, Holds, JournalError, Schedules};

pub use timer::{Clock, Executor, SystemClock, Timer};

/// `[dsp]`: held future-dated requests and DSP schedules.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DspConfig {
    /// How far ahead of its arrival a DSP-held request's `ExecutionDateTime` may be (seconds;
    /// 366 days). Further is refused with `E31`.
    pub max_hold_secs: i64,
    /// How late past its time a held request or a schedule's execution is still sent, after the
    /// gateway was stopped through it (seconds).
    pub late_window_secs: i64,
    /// Held requests kept at most; more are refused with `E69`.
    pub max_held: usize,
    /// Bytes of held requests kept at most; more are refused with `E69`.
    pub max_held_bytes: usize,
    /// DSP schedules kept at most (99 per User and device in any case); more are refused with
    /// `E70`.
    pub max_schedules: usize,
    /// Seconds in a day of the schedule calendar. Only tests change it, to watch a Daily
    /// schedule run several times in a few seconds.
    pub schedule_day_secs: i64,
}

impl Default for DspConfig {
    fn default() -> Self {
        Self {
            max_hold_secs: 366 * 86_400,
            late_window_secs: 3_600,
            max_held: HoldLimits::default().max_held,
            max_held_bytes: HoldLimits::default().max_bytes,
            max_schedules: 1_000_000,
            schedule_day_secs: 86_400,
        }
    }
}

/// Opens the held-request and schedule journals in `dir` (`holds.journal`,
/// `schedules.journal`), with `from_log`, the request log's holds not yet checkpointed. `owed`
/// are the registration change batches whose DCC Alerts may not all be out (what a change
/// removed is kept until they are). Blocking.
pub fn open(
    config: &DspConfig,
    dir: &Path,
    owed: &BTreeSet<u64>,
    from_log: Vec<Held>,
) -> Result<Dsp, JournalError> {
    let limits = HoldLimits {
        max_held: config.max_held,
        max_bytes: config.max_held_bytes,
    };
    let holds = Holds::open_with(&dir.join("holds.journal"), limits, from_log)?;
    let schedules = Schedules::open(
        &dir.join("schedules.journal"),
        config.max_schedules,
        config.schedule_day_secs,
        |seq| owed.contains(&seq),
    )?;
    if !holds.is_empty() || !schedules.is_empty() {
        tracing::info!(
            held = holds.len(),
            schedules = schedules.len(),
            "Held requests and DSP schedules resumed."
        );
    }
    Ok(Dsp {
        holds: Arc::new(holds),
        schedules: Arc::new(schedules),
        max_hold_secs: config.max_hold_secs,
    })
}

/// Puts the schedules' results and removals between their sources and the replies task;
/// returns what the replies task reads instead. Must be called inside a tokio runtime.
pub fn interpose(
    gateway: &Arc<Gateway>,
    outbox: &Arc<Outbox>,
    dispatcher: &Arc<Dispatcher>,
    outcomes: mpsc::Receiver<DispatchOutcome>,
    raised: mpsc::Receiver<ChangeAlerts>,
) -> (
    mpsc::Receiver<DispatchOutcome>,
    mpsc::Receiver<ChangeAlerts>,
) {
    let deliver = Arc::new(executor::Deliver::new(gateway, outbox));
    let schedules = Arc::clone(&gateway.dsp.schedules);
    // As deep as the queues they stand in: the bound holds as before.
    let (outcomes_tx, outcomes_rx) = mpsc::channel(outcomes.max_capacity());
    let (raised_tx, raised_rx) = mpsc::channel(raised.max_capacity());
    tokio::spawn(results::divert(
        deliver,
        Arc::clone(&schedules),
        Arc::clone(dispatcher),
        outcomes,
        outcomes_tx,
    ));
    tokio::spawn(removals::remove(schedules, raised, raised_tx));
    (outcomes_rx, raised_rx)
}

/// Starts the timer over the gateway's holds and schedules; it stops when `stop` says so.
pub fn start_timer(
    gateway: &Arc<Gateway>,
    outbox: &Arc<Outbox>,
    config: &DspConfig,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let timer = Timer {
        holds: Arc::clone(&gateway.dsp.holds),
        schedules: Arc::clone(&gateway.dsp.schedules),
        executor: Arc::new(executor::Deliver::new(gateway, outbox)),
        clock: Arc::new(SystemClock),
        late_secs: config.late_window_secs.max(0),
    };
    tokio::spawn(timer.run(stop))
}
