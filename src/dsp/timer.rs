//! The DSP's timer: sleeps until the next held request or schedule execution is due (or one is
//! added), then hands everything due to its [`Executor`] and records it done — a hold once its
//! command is journalled or its refusal is in the outbox, an execution once it is started or
//! reported. A crash in between does it again after the restart (duplicates, never loss).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;

use crate::store::{Due, Held, Holds, Schedule, Schedules};

/// The longest the timer sleeps without reading the clock again, so that a change of the wall
/// clock is noticed within it.
const MAX_NAP: Duration = Duration::from_secs(60);
/// Held requests released, or schedules run, at once (their journal writes share fsyncs).
const BATCH: usize = 64;

/// Where the timer reads the time: unix milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        i64::try_from(now).unwrap_or(i64::MAX)
    }
}

/// What the timer does with what is due. Each call resolves once its effect is durable.
pub trait Executor: Send + Sync + 'static {
    /// Sends a held request that is due (`now`: unix seconds).
    fn release(&self, held: &Held, now: i64) -> impl Future<Output = ()> + Send;
    /// Ends a held request whose window passed while the gateway was stopped (`E30`).
    fn expire(&self, held: &Held, now: i64) -> impl Future<Output = ()> + Send;
    /// Starts execution `k` of a schedule.
    fn run(&self, schedule: &Schedule, k: u32, now: i64) -> impl Future<Output = ()> + Send;
    /// Reports that a schedule's executions up to `k` passed their window unrun.
    fn missed(&self, schedule: &Schedule, k: u32, now: i64) -> impl Future<Output = ()> + Send;
}

pub struct Timer<E> {
    pub holds: Arc<Holds>,
    pub schedules: Arc<Schedules>,
    pub executor: Arc<E>,
    pub clock: Arc<dyn Clock>,
    /// How late past its time a held request or an execution is still sent (seconds).
    pub late_secs: i64,
}

impl<E: Executor> Timer<E> {
    /// Runs until `stop` says so (or its sender is gone).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let now_ms = self.clock.now_ms();
            self.tick(now_ms.div_euclid(1000)).await;
            let nap = self.nap(self.clock.now_ms());
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                () = self.holds.added() => {}
                () = self.schedules.created() => {}
                changed = stop.changed() => if changed.is_err() {
                    return;
                },
            }
        }
    }

    /// Everything due at `now` (unix seconds): held requests, then schedule executions.
    pub async fn tick(&self, now: i64) {
        let held = self.holds.take_due(now);
        for chunk in held.chunks(BATCH) {
            join_all(chunk.iter().map(|h| self.settle_hold(h, now))).await;
        }
        let due = self.schedules.due(now);
        for chunk in due.chunks(BATCH) {
            join_all(chunk.iter().map(|d| self.run_due(d, now))).await;
        }
    }

    /// How long to sleep from `now_ms` until the next due time (at most [`MAX_NAP`]).
    fn nap(&self, now_ms: i64) -> Duration {
        let next = [self.holds.next_due(), self.schedules.next_due()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(due) => {
                let ms = due.saturating_mul(1000).saturating_sub(now_ms);
                Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(MAX_NAP)
            }
            None => MAX_NAP,
        }
    }

    async fn settle_hold(&self, held: &Held, now: i64) {
        if now.saturating_sub(held.due) > self.late_secs {
            self.executor.expire(held, now).await;
        } else {
            self.executor.release(held, now).await;
        }
        if let Err(e) = self.holds.done(&held.request_id).await {
            tracing::error!(error = %e, request_id = %held.request_id, "Marking a held request done failed; it is released again after a restart.");
        }
    }

    /// A schedule's due executions: those in the window run, in turn; those before it are
    /// reported, once, by the last of them.
    async fn run_due(&self, due: &Due, now: i64) {
        let schedule = &due.schedule;
        let day_secs = self.schedules.day_secs();
        let first = schedule
            .spec
            .first_execution_from(now.saturating_sub(self.late_secs), day_secs)
            .unwrap_or(u32::MAX)
            .clamp(due.from, due.to.saturating_add(1));
        if first > due.from {
            let skipped = first - 1;
            self.executor.missed(schedule, skipped, now).await;
            self.ran(schedule, skipped).await;
        }
        for k in first..=due.to {
            self.executor.run(schedule, k, now).await;
            self.ran(schedule, k).await;
        }
    }

    async fn ran(&self, schedule: &Schedule, k: u32) {
        if let Err(e) = self.schedules.ran(schedule.id, k).await {
            tracing::error!(error = %e, schedule = %schedule.id, "Recording a schedule's execution failed; it runs again after a restart.");
        }
    }
}
