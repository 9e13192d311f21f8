//! The outbox's tasks: one delivery worker per User, and the one marker task that journals
//! outcomes in order, seals segments, compacts, and refreshes the gauges.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::message::Message;
use super::metrics::{AttemptFailed, DeadLettered, Delivered, EndpointDown};
use super::queue::{Attempt, Circuit, Step, UserQueue};
use super::record::{self, Event, Record};
use super::store::{self, Compaction};
use super::transport::TransportError;
use super::{OutboxError, Shared};
use crate::domain::UserId;
use crate::store::Journal;

/// Markers journalled in one pass at most.
const MARKER_BATCH: usize = 16_384;
/// Compaction steps per pass; more wait for the next pass, so markers are never held long.
const COMPACTION_STEPS: usize = 16;

/// Wall-clock milliseconds read from tokio's clock (so paused time moves it in tests).
#[derive(Clone, Copy)]
pub(super) struct Clock {
    start: Instant,
    wall_start_ms: i64,
}

impl Clock {
    pub fn start() -> Self {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            start: Instant::now(),
            wall_start_ms: wall,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.wall_start_ms + self.start.elapsed().as_millis() as i64
    }

    fn instant_at(&self, ms: i64) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(self.wall_start_ms).max(0) as u64)
    }
}

pub(super) enum Marker {
    Event(Event),
    /// Nothing to journal: look at the segments (one may be full).
    Upkeep,
    /// Answered once every marker before it is on disk (`true`) or failed to be (`false`).
    Sync(oneshot::Sender<bool>),
}

/// Appends `records` together (one group commit) and waits for all of them.
pub(super) async fn append_all(
    journal: &Journal,
    records: Vec<Vec<u8>>,
) -> Result<(), OutboxError> {
    if records.len() == 1 {
        let r = records.into_iter().next().unwrap_or_default();
        return journal.append(r).await.map_err(OutboxError::from);
    }
    let mut set = JoinSet::new();
    for r in records {
        let j = journal.clone();
        set.spawn(async move { j.append(r).await });
    }
    let mut result = Ok(());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(OutboxError::from(e)),
            Err(_) => result = Err(OutboxError::Stopped),
        }
    }
    result
}

/// Writes markers in the order they were sent, and does the upkeep between batches. It runs
/// only when there is something to do (no periodic tick), so in paused time it never moves
/// the clock.
pub(super) async fn run_markers(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Marker>) {
    let mut events = Vec::new();
    let mut syncs = Vec::new();
    while let Some(first) = rx.recv().await {
        take(first, &mut events, &mut syncs);
        while events.len() < MARKER_BATCH {
            match rx.try_recv() {
                Ok(m) => take(m, &mut events, &mut syncs),
                Err(_) => break,
            }
        }
        let ok = write_events(&shared, std::mem::take(&mut events)).await;
        for done in syncs.drain(..) {
            let _ = done.send(ok);
        }
        upkeep(&shared).await;
        shared.refresh_gauges();
    }
}

fn take(m: Marker, events: &mut Vec<Event>, syncs: &mut Vec<oneshot::Sender<bool>>) {
    match m {
        Marker::Event(e) => events.push(e),
        Marker::Upkeep => {}
        Marker::Sync(done) => syncs.push(done),
    }
}

async fn write_events(shared: &Shared, events: Vec<Event>) -> bool {
    if events.is_empty() {
        return true;
    }
    let (segment, journal) = shared.store.lock().current();
    let records = store::chunk(events, |_| 17, Record::Events);
    let lens: Vec<usize> = records.iter().map(Vec::len).collect();
    let result = append_all(&journal, records).await;
    let mut s = shared.store.lock();
    for len in lens {
        s.wrote(segment, len);
    }
    if let Err(e) = &result {
        // A lost marker costs a duplicate delivery or a dead letter back in the queue after a
        // restart, never a lost message.
        tracing::error!(error = %e, "Outbox markers could not be journalled.");
    }
    result.is_ok()
}

/// Seals a full segment, compacts from the oldest end, refreshes the gauges.
async fn upkeep(shared: &Arc<Shared>) {
    if shared.store.wants_roll() {
        let s = shared.clone();
        match tokio::task::spawn_blocking(move || s.store.roll()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "Outbox segment could not be sealed."),
            Err(_) => {}
        }
    }
    for step in 0.. {
        if step == COMPACTION_STEPS {
            // More to do: come back after the markers that queued meanwhile.
            let _ = shared.markers.send(Marker::Upkeep);
            break;
        }
        let result = match shared.store.compaction() {
            Compaction::Nothing => break,
            Compaction::Delete(n) => {
                let s = shared.clone();
                tokio::task::spawn_blocking(move || s.store.delete(n)).await
            }
            Compaction::Carry(from, messages) => carry(shared, from, messages).await,
        };
        if let Ok(Err(e)) | Err(e) = result.map_err(|_| OutboxError::Stopped) {
            tracing::error!(error = %e, "Outbox compaction failed; it is tried again later.");
            break;
        }
    }
}

async fn carry(
    shared: &Arc<Shared>,
    from: u64,
    messages: Vec<(Arc<Message>, Option<i64>)>,
) -> Result<Result<(), OutboxError>, tokio::task::JoinError> {
    let ids: Vec<_> = messages.iter().map(|(m, _)| m.id).collect();
    let (to, journal) = shared.store.lock().current();
    let owned: Vec<(Message, Option<i64>)> = messages
        .into_iter()
        .map(|(m, dead)| ((*m).clone(), dead))
        .collect();
    let records = store::chunk(owned, |(m, _)| record::message_len(m), Record::Carried);
    let lens: Vec<usize> = records.iter().map(Vec::len).collect();
    let written = append_all(&journal, records).await;
    {
        let mut s = shared.store.lock();
        for len in lens {
            s.wrote(to, len);
        }
    }
    if let Err(e) = written {
        return Ok(Err(e));
    }
    let s = shared.clone();
    tokio::task::spawn_blocking(move || s.store.carried(from, to, &ids)).await
}

/// One User's deliveries: sends from its queue, handles outcomes, moves expired messages to
/// the dead letters. Runs until the outbox shuts down.
pub(super) async fn run_user(
    shared: Arc<Shared>,
    user: UserId,
    mut rx: mpsc::UnboundedReceiver<Arc<Message>>,
) {
    let mut queue = UserQueue::new(shared.policy);
    let mut attempts: JoinSet<Result<(), TransportError>> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, Attempt> = HashMap::new();
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let now = shared.clock.now_ms();
        let wake = loop {
            match queue.next(now) {
                Step::Send(attempt) => {
                    let s = shared.clone();
                    let message = attempt.message.clone();
                    let handle = attempts.spawn(async move {
                        match s.endpoints.response_url(&message.user) {
                            None => Err(TransportError::NoEndpoint),
                            Some(url) => s.transport.post(&url, &message).await,
                        }
                    });
                    in_flight.insert(handle.id(), attempt);
                }
                Step::Expire(attempt) => shared.dead_letter(&attempt, now),
                Step::Idle { wake } => break wake,
            }
        };
        let sleep = wake.map(|ms| shared.clock.instant_at(ms));
        tokio::select! {
            _ = shutdown.changed() => break,
            joined = attempts.join_next_with_id(), if !attempts.is_empty() => {
                let (id, result) = match joined {
                    Some(Ok((id, result))) => (id, result),
                    Some(Err(e)) => (e.id(), Err(TransportError::Closed)),
                    None => continue,
                };
                if let Some(attempt) = in_flight.remove(&id) {
                    outcome(&shared, &mut queue, attempt, result);
                }
            }
            m = rx.recv() => match m {
                Some(m) => {
                    let now = shared.clock.now_ms();
                    queue.push(m, now);
                    while let Ok(m) = rx.try_recv() {
                        queue.push(m, now);
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(sleep.unwrap_or_else(Instant::now)), if sleep.is_some() => {}
        }
    }
    attempts.abort_all();
    tracing::debug!(%user, waiting = queue.waiting(), "Delivery worker stopped.");
}

fn outcome(
    shared: &Shared,
    queue: &mut UserQueue,
    attempt: Attempt,
    result: Result<(), TransportError>,
) {
    let now = shared.clock.now_ms();
    match result {
        Ok(()) => {
            shared.delivered(&attempt.message, now);
            Delivered {
                message: &attempt.message,
                at_ms: now,
                attempts: attempt.previous + 1,
            }
            .emit(&shared.metrics, shared.hook.as_ref());
            queue.succeeded(now);
        }
        Err(error) => {
            AttemptFailed {
                message: &attempt.message,
                error: &error,
                attempts: attempt.previous + 1,
                at_ms: now,
                endpoint_was_working: queue.failures_in_row() == 0,
            }
            .emit(&shared.metrics, shared.hook.as_ref());
            let was = queue.circuit();
            let user = attempt.message.user;
            queue.failed(attempt, now);
            if let (Circuit::Closed, Circuit::Open { until, .. }) = (was, queue.circuit()) {
                EndpointDown {
                    user: &user,
                    retry_in_ms: until - now,
                    waiting: queue.waiting(),
                }
                .emit();
            }
        }
    }
}

impl Shared {
    /// Sets the gauges from the state (called after every change that moves them).
    pub(super) fn refresh_gauges(&self) {
        let d = &self.metrics.0;
        let s = self.store.lock();
        d.queue.set((s.entries.len() - s.dead.len()) as i64);
        d.dead_letters_held.set(s.dead.len() as i64);
        let oldest = s.by_age.first().map_or(0, |&(t, _)| t.max(0) / 1000);
        d.oldest_pending.set(oldest);
        drop(s);
        d.segments.set(self.store.segment_count() as i64);
    }

    fn delivered(&self, message: &Message, _now: i64) {
        let removed = self.store.lock().remove(message.id).is_some();
        if removed {
            let _ = self
                .markers
                .send(Marker::Event(Event::Delivered(message.id)));
        }
    }

    fn dead_letter(&self, attempt: &Attempt, now: i64) {
        let message = &attempt.message;
        {
            let mut s = self.store.lock();
            let segment = match s.entries.get(&message.id) {
                Some(e) if Arc::ptr_eq(&e.message, message) => e.segment,
                // Replaced (replayed afresh) or gone meanwhile: nothing to do.
                _ => return,
            };
            s.insert(message.clone(), segment, Some(now));
        }
        let _ = self.markers.send(Marker::Event(Event::Dead {
            id: message.id,
            at: now,
        }));
        DeadLettered {
            message,
            attempts: attempt.previous,
            at_ms: now,
        }
        .emit(&self.metrics, self.hook.as_ref());
    }
}
