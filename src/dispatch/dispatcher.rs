//! The dispatcher. For each admitted command:
//! `record` (durable, before the `I99`) → `dispatch` (sent, timer started) → one
//! [`DispatchOutcome`] on the outcomes channel: the device's answer, `Unreachable` (E20: the
//! network said so, or would not take the command) or `NoAnswer` (E21: nothing before the SRV's
//! timeout) → the caller writes the Service Response durably to the outbox → `settle`.
//! A command recorded but not settled is returned by [`Dispatcher::open`] after a restart, to be
//! dispatched again: the device may see it twice and the User may get two responses (DUIS allows
//! duplicates), but an acknowledged request never goes unanswered.
//!
//! Device alerts and future-dated execution alerts are passed on untouched (with their
//! receipts) on the `events` channel of [`Opened`].
//!
//! In a cluster the instances share one hub network, which hands each answer to one of them,
//! not necessarily the one that sent the command (that one may be gone). An answer for a
//! command not in flight here is looked up in the request log ([`RequestLog::open_entry`]):
//! while the command's entry is open, whichever instance owns it, the outcome is made here from
//! the command the entry holds (its User, SRV and device) and the answer, and settling it
//! settles the entry; once it is settled, the answer is a late or repeated one and is dropped.
//! The instance that sent the command, when its timer ends, looks too: a command the log no
//! longer holds was answered elsewhere, and is let go without an E21.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, Notify, Semaphore};

use crate::domain::{DeviceFailure, DeviceId, RequestId, Srv};
use crate::routing::{RoutingError, SignedCommand};
use crate::store::{EntryKind, RequestLog};

use super::in_flight::InFlight;
use super::link::{HubEvent, HubNetwork, Inbound, Receipt};
use super::pending::{PendingError, PendingJournal};
use super::unix_millis;

#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// How long a device has to answer before the request fails with E21.
    pub timeout_ms: u64,
    /// Per-SRV timeouts, overriding `timeout_ms` (e.g. firmware, or slow reads of logs).
    #[schemars(with = "BTreeMap<String, u64>")]
    pub srv_timeout_ms: BTreeMap<Srv, u64>,
    /// Records per pending-journal segment before a new one starts.
    pub segment_records: usize,
    /// Segments kept before the oldest one's unsettled commands are copied forward.
    pub max_segments: usize,
    /// Outcomes and passed-on events waiting for the caller; when full the dispatcher waits
    /// (and so does the hub behind it) rather than dropping one.
    pub queue: usize,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            srv_timeout_ms: BTreeMap::new(),
            segment_records: 65_536,
            max_segments: 8,
            queue: 4_096,
        }
    }
}

impl DispatchConfig {
    pub fn timeout_for(&self, srv: Srv) -> Duration {
        Duration::from_millis(*self.srv_timeout_ms.get(&srv).unwrap_or(&self.timeout_ms))
    }
}

/// How one dispatched command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchOutcome {
    pub request_id: RequestId,
    pub device: DeviceId,
    pub srv: Srv,
    /// The device's GBCS-shaped answer, or why there is none.
    pub result: Result<Vec<u8>, DeviceFailure>,
    /// When it ended (unix seconds): the device's answer time, or the gateway's.
    pub at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("the pending journal failed")]
    Journal(#[from] PendingError),
    #[error("a command to dispatch does not read")]
    Command(#[source] RoutingError),
}

/// What [`Dispatcher::open`] hands back.
pub struct Opened {
    pub dispatcher: Arc<Dispatcher>,
    /// Commands acknowledged before the last stop and never settled: dispatch each again.
    pub recovered: Vec<SignedCommand>,
    /// One outcome per dispatched command.
    pub outcomes: mpsc::Receiver<DispatchOutcome>,
    /// Device alerts and future-dated execution alerts, with receipts to acknowledge once their
    /// messages are durably in the outbox.
    pub events: mpsc::Receiver<Inbound>,
}

pub struct Dispatcher {
    hub: Arc<dyn HubNetwork>,
    journal: PendingJournal,
    in_flight: InFlight,
    outcomes: mpsc::Sender<DispatchOutcome>,
    config: DispatchConfig,
    compaction: Arc<Notify>,
    /// A request log that keeps the commands itself (cluster mode), told when one is settled.
    settled_in: std::sync::OnceLock<Arc<dyn RequestLog>>,
}

impl Dispatcher {
    /// Opens the pending journal in `dir` and starts routing `hub_events` (the receiving end of
    /// the channel the hub was started with). Must be called inside a tokio runtime.
    pub async fn open(
        dir: &Path,
        config: DispatchConfig,
        hub: Arc<dyn HubNetwork>,
        hub_events: mpsc::Receiver<Inbound>,
    ) -> Result<Opened, DispatchError> {
        Self::open_with(dir, config, hub, hub_events, Vec::new()).await
    }

    /// As [`Self::open`], with the commands the request log recovered (not yet checkpointed):
    /// pending unless settled in the journal, and durable in it before this returns.
    pub async fn open_with(
        dir: &Path,
        config: DispatchConfig,
        hub: Arc<dyn HubNetwork>,
        hub_events: mpsc::Receiver<Inbound>,
        from_log: Vec<SignedCommand>,
    ) -> Result<Opened, DispatchError> {
        let (journal, recovered) =
            PendingJournal::open(dir, config.segment_records, config.max_segments, from_log)
                .await?;
        let queue = config.queue.max(1);
        let (outcomes_tx, outcomes) = mpsc::channel(queue);
        let (events_tx, events) = mpsc::channel(queue);
        let dispatcher = Arc::new(Self {
            hub,
            journal,
            in_flight: InFlight::default(),
            outcomes: outcomes_tx,
            config,
            compaction: Arc::new(Notify::new()),
            settled_in: std::sync::OnceLock::new(),
        });
        tokio::spawn(route_events(
            Arc::downgrade(&dispatcher),
            hub_events,
            events_tx,
        ));
        tokio::spawn(compact_loop(
            Arc::downgrade(&dispatcher),
            dispatcher.compaction.clone(),
        ));
        if !recovered.is_empty() {
            tracing::info!(
                commands = recovered.len(),
                "Commands pending at the last stop are dispatched again."
            );
        }
        Ok(Opened {
            dispatcher,
            recovered,
            outcomes,
            events,
        })
    }

    /// Records `cmd` durably; returns once it is on disk. Call before answering `I99`.
    pub async fn record(&self, cmd: &SignedCommand) -> Result<(), DispatchError> {
        let header = cmd.header().map_err(DispatchError::Command)?;
        self.journal.record(header.request_id, cmd).await?;
        Ok(())
    }

    /// Takes `cmd` as pending while its record is committed to the request log (a request's
    /// decision); [`Self::forget`] it if that commit fails. Returns whether it was new.
    pub fn admit(&self, cmd: &SignedCommand) -> Result<bool, DispatchError> {
        let header = cmd.header().map_err(DispatchError::Command)?;
        Ok(self.journal.admit(header.request_id, cmd))
    }

    /// Forgets a command taken by [`Self::admit`] whose commit failed.
    pub fn forget(&self, cmd: &SignedCommand) {
        if let Ok(header) = cmd.header() {
            self.journal.forget(&header.request_id);
        }
    }

    /// Copies commands from a sealed segment of the request log into the pending journal;
    /// returns once they are durable there.
    pub async fn checkpoint(&self, cmds: &[SignedCommand]) -> Result<(), DispatchError> {
        Ok(self.journal.checkpoint(cmds).await?)
    }

    /// Sends `cmd` to the hub network and starts its timer. Its outcome comes on the outcomes
    /// channel; a command already in flight is not sent twice.
    pub async fn dispatch(self: &Arc<Self>, cmd: SignedCommand) -> Result<(), DispatchError> {
        let h = cmd.header().map_err(DispatchError::Command)?;
        let id = h.request_id;
        let timeout = self.config.timeout_for(h.srv);
        let me = Arc::downgrade(self);
        let started = self.in_flight.start(id, h.srv, h.device, || {
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                if let Some(me) = me.upgrade() {
                    me.expire(id).await;
                }
            })
            .abort_handle()
        });
        if !started {
            return Ok(());
        }
        if let Err(e) = self.hub.send(cmd).await {
            tracing::warn!(request_id = %id, error = %e, "The hub network did not take a command; the request fails with E20.");
            self.complete(id, Err(DeviceFailure::Unreachable), now_secs(), true)
                .await;
        }
        Ok(())
    }

    /// From now on, tells `log` of every command settled (a log that keeps the commands
    /// itself rather than copying them here). Set once; a second call does nothing.
    pub fn settle_in(&self, log: Arc<dyn RequestLog>) {
        let _ = self.settled_in.set(log);
    }

    /// Forgets `id` once its outcome is durably in the outbox. Unknown IDs are ignored.
    pub async fn settle(&self, id: &RequestId) -> Result<(), DispatchError> {
        if let Some(log) = self.settled_in.get() {
            log.settle(EntryKind::Pending, id.to_string());
        }
        if self.journal.settle(id).await? {
            self.compaction.notify_one();
        }
        Ok(())
    }

    /// Commands recorded and not settled.
    pub fn pending(&self) -> usize {
        self.journal.len()
    }

    /// Commands sent and waiting for their outcome.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether the link to the hub network is up (`/readyz` says not ready while it is down).
    pub fn hub_linked(&self) -> bool {
        self.hub.is_linked()
    }

    /// Whether the pending journal's last write failed (`/readyz` says not ready).
    pub fn is_failing(&self) -> bool {
        self.journal.is_failing()
    }

    /// Pending-journal segments on disk.
    pub fn journal_segments(&self) -> usize {
        self.journal.segment_count()
    }

    /// Ends `id`'s flight with `result`, once: whichever of answer, failure or timer comes
    /// first wins; the rest find nothing. Says whether this call ended it.
    async fn complete(
        &self,
        id: RequestId,
        result: Result<Vec<u8>, DeviceFailure>,
        at: i64,
        stop_timer: bool,
    ) -> bool {
        let Some(flight) = self.in_flight.take(&id) else {
            return false;
        };
        if stop_timer {
            flight.stop_timer();
        }
        self.conclude(id, flight.device, flight.srv, result, at)
            .await;
        true
    }

    /// Hands on the outcome of command `id`.
    async fn conclude(
        &self,
        request_id: RequestId,
        device: DeviceId,
        srv: Srv,
        result: Result<Vec<u8>, DeviceFailure>,
        at: i64,
    ) {
        let outcome = DispatchOutcome {
            request_id,
            device,
            srv,
            result,
            at,
        };
        if self.outcomes.send(outcome).await.is_err() {
            tracing::warn!(request_id = %request_id, "No one takes dispatch outcomes; the command stays pending for the next start.");
        }
    }

    /// `id`'s timer ended: E21, unless the request log shared with other instances no longer
    /// holds the command (another instance got its answer and settled it), or cannot say.
    async fn expire(&self, id: RequestId) {
        if let (Some(log), true) = (self.settled_in.get(), self.journal.in_log(&id)) {
            if let Ok(None) = log.open_entry(EntryKind::Pending, id.to_string()).await {
                if self.in_flight.take(&id).is_some() {
                    tracing::debug!(request_id = %id, "A command was answered through another instance; let go here.");
                    if let Err(e) = self.journal.settle(&id).await {
                        tracing::warn!(request_id = %id, error = %e, "Letting go of a command answered elsewhere failed.");
                    }
                }
                return;
            }
        }
        self.complete(id, Err(DeviceFailure::NoAnswer), now_secs(), false)
            .await;
    }

    /// An answer for `id`, which is not in flight here: if the request log shared with other
    /// instances still holds its command, its outcome, made from that command; otherwise
    /// dropped (late or repeated). The event is let go once that is decided; if the log cannot
    /// be read, it is not, and the hub offers it again.
    async fn answer_elsewhere(
        &self,
        id: RequestId,
        result: Result<Vec<u8>, DeviceFailure>,
        at: i64,
        receipt: Receipt,
    ) {
        let Some(log) = self.settled_in.get() else {
            tracing::debug!(request_id = %id, "An answer came for a request no longer in flight (late or repeated); dropped.");
            receipt.ack();
            return;
        };
        match log.open_entry(EntryKind::Pending, id.to_string()).await {
            Ok(Some(bytes)) => match SignedCommand::from_bytes(bytes).header() {
                Ok(h) if h.request_id == id => {
                    tracing::debug!(request_id = %id, "An answer for a command another instance sent; answered here.");
                    self.conclude(id, h.device, h.srv, result, at).await;
                }
                _ => {
                    tracing::warn!(request_id = %id, "The request log's entry for an answered command does not read; the answer is dropped.")
                }
            },
            Ok(None) => {
                tracing::debug!(request_id = %id, "An answer came for a request no longer pending (late or repeated); dropped.");
            }
            Err(e) => {
                tracing::warn!(request_id = %id, error = %e, "The request log could not say whose command an answer is for; the hub offers it again.");
                return;
            }
        }
        receipt.ack();
    }
}

/// Answers for commands not in flight here looked up at once, at most; past it the event
/// stream waits.
const LOOKUPS: usize = 64;

fn now_secs() -> i64 {
    unix_millis().div_euclid(1000)
}

/// Responses and unreachable reports end flights; alerts go on to the caller.
async fn route_events(
    dispatcher: Weak<Dispatcher>,
    mut hub_events: mpsc::Receiver<Inbound>,
    events: mpsc::Sender<Inbound>,
) {
    let lookups = Arc::new(Semaphore::new(LOOKUPS));
    while let Some(inbound) = hub_events.recv().await {
        let Some(d) = dispatcher.upgrade() else {
            return;
        };
        let (id, result, at) = match inbound.event {
            HubEvent::Response {
                request_id,
                payload,
                at,
                ..
            } => (request_id, Ok(payload), at),
            HubEvent::Unreachable { request_id, at, .. } => {
                (request_id, Err(DeviceFailure::Unreachable), at)
            }
            HubEvent::Refused { request_id, at, .. } => {
                (request_id, Err(DeviceFailure::Refused), at)
            }
            HubEvent::Alert { .. } | HubEvent::FutureDated { .. } => {
                if events.send(inbound).await.is_err() {
                    return;
                }
                continue;
            }
        };
        match d.in_flight.take(&id) {
            Some(flight) => {
                flight.stop_timer();
                d.conclude(id, flight.device, flight.srv, result, at).await;
                // The pending journal can regenerate this answer (by dispatching again), so
                // the hub may forget it now.
                inbound.receipt.ack();
            }
            None => {
                // The semaphore is never closed.
                let Ok(permit) = Arc::clone(&lookups).acquire_owned().await else {
                    return;
                };
                tokio::spawn(async move {
                    d.answer_elsewhere(id, result, at, inbound.receipt).await;
                    drop(permit);
                });
            }
        }
    }
}

async fn compact_loop(dispatcher: Weak<Dispatcher>, wake: Arc<Notify>) {
    loop {
        // A periodic wake as well, so the loop notices when the dispatcher has gone.
        let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
        let Some(d) = dispatcher.upgrade() else {
            return;
        };
        if let Err(e) = d.journal.compact().await {
            tracing::error!(error = %e, "Pending journal compaction failed; it is retried on the next settle.");
        }
    }
}
