//! The embedded outbox: a segmented journal under `[state] dir`, one delivery worker per User
//! in this process, dead letters kept in the journal.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

use super::message::{DeadLetter, Message, MessageId, Outbound};
use super::metrics::{self, AttemptHook, OutboxMetrics};
use super::queue::Policy;
use super::record::{self, Event, Record};
use super::store::{self, Store};
use super::transport::{Endpoints, Transport};
use super::worker::{self, Clock, Marker};
use super::{OutboxConfig, OutboxError};

/// The embedded outbox. Cloning shares it.
#[derive(Clone)]
pub(super) struct FileOutbox {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(super) policy: Policy,
    pub(super) max_held_bytes: u64,
    pub(super) store: Store,
    pub(super) transport: Arc<dyn Transport>,
    pub(super) endpoints: Arc<dyn Endpoints>,
    pub(super) metrics: OutboxMetrics,
    pub(super) hook: Arc<dyn AttemptHook>,
    pub(super) clock: Clock,
    pub(super) markers: mpsc::UnboundedSender<Marker>,
    pub(super) users: Mutex<HashMap<crate::domain::UserId, mpsc::UnboundedSender<Arc<Message>>>>,
    pub(super) shutdown: watch::Sender<bool>,
    pub(super) stopped: AtomicBool,
    pub(super) next_id: AtomicU64,
}

impl FileOutbox {
    /// Opens (creating) the outbox in `dir`, replays its journal, and starts delivering what
    /// was pending at the last stop. `hook` hears every attempt's outcome (the gateway's audit
    /// trail). Must run inside a tokio runtime.
    pub(super) async fn open(
        dir: &Path,
        config: &OutboxConfig,
        endpoints: Arc<dyn Endpoints>,
        transport: Arc<dyn Transport>,
        metrics: OutboxMetrics,
        hook: Arc<dyn AttemptHook>,
    ) -> Result<Self, OutboxError> {
        let policy = config.policy()?;
        let owned = dir.to_owned();
        let segment_bytes = config.segment_bytes;
        let (store, pending) =
            tokio::task::spawn_blocking(move || Store::open(&owned, segment_bytes))
                .await
                .map_err(|_| OutboxError::Stopped)??;
        let clock = Clock::start();
        // IDs above every one still held, and above the clock's millisecond times 2^16, so
        // they do not repeat one issued before a restart.
        let seed = {
            let s = store.lock();
            let held = s.entries.keys().map(|id| id.get()).max().unwrap_or(0);
            held.saturating_add(1)
                .max((clock.now_ms().max(0) as u64) << 16)
        };
        let (markers, marker_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            policy,
            max_held_bytes: config.max_held_bytes,
            store,
            transport,
            endpoints,
            metrics,
            hook,
            clock,
            markers,
            users: Mutex::new(HashMap::new()),
            shutdown: watch::channel(false).0,
            stopped: AtomicBool::new(false),
            next_id: AtomicU64::new(seed),
        });
        tokio::spawn(worker::run_markers(shared.clone(), marker_rx));
        if !pending.is_empty() {
            tracing::info!(
                pending = pending.len(),
                "Outbox reopened; resuming delivery."
            );
        }
        for m in pending {
            shared.route(m);
        }
        // A first pass over the segments: compaction left unfinished at the last stop.
        let _ = shared.markers.send(Marker::Upkeep);
        shared.refresh_gauges();
        Ok(Self { shared })
    }

    /// A fresh message ID.
    pub(super) fn next_id(&self) -> MessageId {
        MessageId::new(self.shared.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Makes `batch` durable and queues it for delivery; returns once it is on disk. A message
    /// whose ID the outbox already holds is not added twice.
    pub(super) async fn enqueue(&self, batch: Vec<Outbound>) -> Result<(), OutboxError> {
        let shared = &self.shared;
        if shared.stopped.load(Ordering::Acquire) {
            return Err(OutboxError::Stopped);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let now = shared.clock.now_ms();
        let messages: Vec<Message> = batch
            .into_iter()
            .map(|o| Message::from_outbound(o, now))
            .collect();
        for m in &messages {
            let bytes = record::message_len(m);
            if bytes + 64 > crate::store::MAX_RECORD_BYTES {
                return Err(OutboxError::TooLarge { id: m.id, bytes });
            }
        }
        let body_bytes: u64 = messages.iter().map(|m| m.body.len() as u64).sum();
        let (segment, journal) = {
            let mut s = shared.store.lock();
            if s.held_bytes.saturating_add(body_bytes) > shared.max_held_bytes {
                return Err(OutboxError::Full {
                    held: s.held_bytes,
                    limit: shared.max_held_bytes,
                });
            }
            let (segment, journal) = s.current();
            // Counted live before the write, so compaction cannot delete the segment under it.
            for m in &messages {
                s.live(segment, record::message_len(m) as u64);
            }
            s.held_bytes += body_bytes;
            (segment, journal)
        };
        let records = store::chunk(messages.clone(), record::message_len, Record::Enqueued);
        let lens: Vec<usize> = records.iter().map(Vec::len).collect();
        let written = worker::append_all(&journal, records).await;
        let mut s = shared.store.lock();
        for len in lens {
            s.wrote(segment, len);
        }
        if let Err(e) = written {
            for m in &messages {
                s.unlive(segment, record::message_len(m) as u64);
            }
            s.held_bytes = s.held_bytes.saturating_sub(body_bytes);
            return Err(e);
        }
        let mut fresh = Vec::with_capacity(messages.len());
        for m in messages {
            if s.entries.contains_key(&m.id) {
                s.unlive(segment, record::message_len(&m) as u64);
                s.held_bytes = s.held_bytes.saturating_sub(m.body.len() as u64);
                continue;
            }
            let m = Arc::new(m);
            s.insert(m.clone(), segment, None);
            fresh.push(m);
        }
        drop(s);
        if shared.store.wants_roll() {
            let _ = shared.markers.send(Marker::Upkeep);
        }
        shared.refresh_gauges();
        for m in fresh {
            shared
                .metrics
                .0
                .enqueued
                .with_label_values(&[metrics::kind_label(&m.kind)])
                .inc();
            shared.route(m);
        }
        Ok(())
    }

    /// The dead letters, oldest ID first.
    pub(super) fn dead_letters(&self) -> Vec<DeadLetter> {
        let s = self.shared.store.lock();
        s.dead
            .iter()
            .filter_map(|id| s.entries.get(id))
            .map(|e| DeadLetter {
                id: e.message.id,
                user: e.message.user,
                kind: e.message.kind,
                raised_at: e.message.raised_at,
                held_since: e.message.held_since,
                dead_at: e.dead_at.unwrap_or(0),
                body_bytes: e.message.body.len(),
            })
            .collect()
    }

    /// Puts the named dead letters back in their Users' queues with a fresh hold time; returns
    /// how many there were (IDs that are not dead letters are skipped). Durable on return.
    pub(super) async fn replay_dead(&self, ids: &[MessageId]) -> Result<usize, OutboxError> {
        let now = self.shared.clock.now_ms();
        let mut revived = Vec::new();
        {
            let mut s = self.shared.store.lock();
            for id in ids {
                if !s.dead.contains(id) {
                    continue;
                }
                let Some(e) = s.entries.get(id) else { continue };
                let mut m = (*e.message).clone();
                m.held_since = now;
                let m = Arc::new(m);
                let segment = e.segment;
                s.insert(m.clone(), segment, None);
                revived.push(m);
            }
        }
        let events = revived
            .iter()
            .map(|m| Event::Revived { id: m.id, at: now })
            .collect();
        self.shared.journal_events(events).await?;
        let n = revived.len();
        for m in revived {
            self.shared.route(m);
        }
        Ok(n)
    }

    /// Deletes the named dead letters for good; returns how many there were.
    pub(super) async fn discard_dead(&self, ids: &[MessageId]) -> Result<usize, OutboxError> {
        let mut events = Vec::new();
        {
            let mut s = self.shared.store.lock();
            for id in ids {
                if s.dead.contains(id) && s.remove(*id).is_some() {
                    events.push(Event::Discarded(*id));
                }
            }
        }
        let n = events.len();
        self.shared.journal_events(events).await?;
        Ok(n)
    }

    /// Waits until every outcome so far is journalled, and the upkeep that followed is done.
    pub(super) async fn flush(&self) -> Result<(), OutboxError> {
        // The marker task answers a sync before its upkeep; the second waits for that upkeep.
        self.shared.journal_events(Vec::new()).await?;
        self.shared.journal_events(Vec::new()).await
    }

    /// Messages waiting for delivery (not counting dead letters).
    pub(super) fn pending(&self) -> usize {
        let s = self.shared.store.lock();
        s.entries.len() - s.dead.len()
    }

    /// Journal segment files on disk.
    pub(super) fn segments(&self) -> usize {
        self.shared.store.segment_count()
    }

    /// Stops the workers (attempts in flight are abandoned and will be retried after the next
    /// start) and waits until every marker is on disk. Later `enqueue` calls fail.
    pub(super) async fn shutdown(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        let _ = self.shared.journal_events(Vec::new()).await;
        self.shared.shutdown.send_replace(true);
    }
}

impl Shared {
    /// Hands a pending message to its User's worker, starting one if there is none.
    fn route(self: &Arc<Self>, m: Arc<Message>) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let tx = users.entry(m.user).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(worker::run_user(self.clone(), m.user, rx));
            tx
        });
        // The worker only stops at shutdown, when nothing is routed any more.
        let _ = tx.send(m);
    }

    /// Journals `events` (after every marker queued before them) and waits for the disk.
    async fn journal_events(&self, events: Vec<Event>) -> Result<(), OutboxError> {
        for e in events {
            let _ = self.markers.send(Marker::Event(e));
        }
        let (done, wait) = oneshot::channel();
        self.markers
            .send(Marker::Sync(done))
            .map_err(|_| OutboxError::Stopped)?;
        match wait.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(OutboxError::Journal(crate::store::JournalError::Stopped)),
            Err(_) => Err(OutboxError::Stopped),
        }
    }
}
