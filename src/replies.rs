//! The asynchronous half (layer 2): what the gateway sends Users after the synchronous answer.
//! Device outcomes become signed Service Responses; device alerts, future-dated execution alerts
//! and the DCC Alerts the gateway raises become signed alert messages for the Users entitled to
//! them. Each goes into the durable [`Outbox`] before its source is let go: a command is settled
//! in the pending journal, a hub event acknowledged, only once every message it caused is on
//! disk. A crash before that replays the source (duplicates, never loss). The outcomes of a
//! firmware distribution's hub commands go to the distribution instead (`firmware.rs`).

mod firmware;
mod sign;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::alerts::{
    AlertKind, AlertMessage, ChangeAlerts, ChangeProgress, DccAlert, DeviceAlert, Fanned, Fanout,
    FutureDatedAlert,
};
use crate::dispatch::{DispatchOutcome, Dispatcher, HubEvent, Inbound, Receipt};
use crate::duis::outbound::{write_service_response, DeviceOutcome};
use crate::error;
use crate::firmware::Distributions;
use crate::metrics::Metrics;
use crate::offload::Offload;
use crate::outbox::{Outbound, OutboundKind, Outbox};
use crate::registry::Snapshot;
use crate::rules::RuleSet;
use crate::signer::Signer;
use crate::state::StateLog;
use crate::xmldsig::c14n::C14nLimits;

/// Outcomes or hub events taken together into one outbox write, at most.
const BATCH: usize = 256;
/// How long to wait before trying the outbox again when it refuses (full, or a write failed).
const ENQUEUE_RETRY: Duration = Duration::from_secs(1);

/// What the replies task reads from.
pub struct Sources {
    pub outcomes: mpsc::Receiver<DispatchOutcome>,
    pub events: mpsc::Receiver<Inbound>,
    /// The DCC Alerts registration changes call for, a journalled batch at a time.
    pub raised: mpsc::Receiver<ChangeAlerts>,
}

/// What the replies task uses of the gateway: the registry in force, the DCC XML-signing key
/// and the metrics. The gateway is one; the fan-out benchmark runs the task with just these
/// parts, without the request side.
pub trait Context: Send + Sync {
    /// Devices and registrations in force now.
    fn registry(&self) -> Arc<Snapshot>;
    /// The DCC XML-signing key every outbound message is signed with.
    fn signer(&self) -> &Signer;
    fn c14n_limits(&self) -> &C14nLimits;
    fn metrics(&self) -> &Metrics;
    /// The registration change log, where how far the DCC Alerts of its batches are out is
    /// recorded.
    fn change_log(&self) -> &StateLog;
    /// The firmware distributions in progress, if the gateway runs any.
    fn firmware(&self) -> Option<&Distributions> {
        None
    }
    /// The dated rule set in force at `at` (unix seconds), whose alert routes decide; `None`:
    /// the configured routes decide.
    fn rules_at(&self, _at: i64) -> Option<Arc<RuleSet>> {
        None
    }
    /// Records how `alert` was routed under `rules` (the audit trail's routing record); by
    /// default, no record.
    fn routed(&self, _alert: &DeviceAlert, _rules: &RuleSet, _fanned: &Fanned) {}
    /// Where messages are signed: by default inline, on the replies task's async worker.
    fn offload(&self) -> Offload {
        Offload::inline()
    }
}

/// Runs until every source has closed.
pub async fn run(
    gateway: Arc<dyn Context>,
    outbox: Arc<Outbox>,
    dispatcher: Arc<Dispatcher>,
    mut fanout: Fanout,
    mut sources: Sources,
) {
    let mut replies = Replies {
        gateway,
        outbox,
        next_alert: alert_id_seed(),
        waiting: HashMap::new(),
        changes: ChangeProgress::default(),
    };
    // Distributions whose every hub answered before the last stop, but not reported.
    replies.report_finished().await;
    let (mut outcomes_open, mut events_open, mut raised_open) = (true, true, true);
    let (mut outcomes, mut events) = (Vec::with_capacity(BATCH), Vec::with_capacity(BATCH));
    while outcomes_open || events_open || raised_open {
        let tick = match fanout.next_deadline() {
            Some(at) => {
                Duration::from_secs(u64::try_from(at - now().unix_timestamp()).unwrap_or(0))
            }
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            // Whatever is waiting, up to BATCH, goes into one outbox write (one fsync for the
            // lot: the outbox's group commit only groups what it is given together).
            n = sources.outcomes.recv_many(&mut outcomes, BATCH), if outcomes_open => {
                if n == 0 {
                    outcomes_open = false;
                } else {
                    replies.responses(&dispatcher, outcomes.drain(..)).await;
                }
            },
            n = sources.events.recv_many(&mut events, BATCH), if events_open => {
                if n == 0 {
                    events_open = false;
                } else {
                    let messages: Vec<_> = events
                        .drain(..)
                        .flat_map(|e| replies.event(&mut fanout, e))
                        .collect();
                    replies.send_alerts(messages).await;
                }
            },
            raised = sources.raised.recv(), if raised_open => match raised {
                Some(batch) => replies.dcc(&mut fanout, batch).await,
                None => raised_open = false,
            },
            () = tokio::time::sleep(tick) => {
                let due = fanout.tick(now());
                replies.send_alerts(due).await;
            }
        }
    }
    let rest = fanout.flush(now());
    replies.send_alerts(rest).await;
}

struct Waiting {
    receipt: Receipt,
    owed: usize,
}

struct Replies {
    gateway: Arc<dyn Context>,
    outbox: Arc<Outbox>,
    next_alert: u64,
    /// Hub events whose alert copies are not all in the outbox yet (some held by throttling):
    /// the receipt and the copies still owed.
    waiting: HashMap<u64, Waiting>,
    /// Which batches of registration changes have all their DCC Alerts in the outbox: the
    /// change log's mark follows it.
    changes: ChangeProgress,
}

impl Replies {
    /// The devices' answers, or E20/E21, as signed Service Responses to their originators, in
    /// one outbox write; each command is settled in the pending journal only after it. A
    /// response that cannot be signed leaves its command unsettled: it is answered again after
    /// a restart.
    async fn responses(
        &mut self,
        dispatcher: &Dispatcher,
        outcomes: impl Iterator<Item = DispatchOutcome>,
    ) {
        let (mut written, mut distributed) = (Vec::new(), Vec::new());
        for o in outcomes {
            if firmware::is_distribution(&o) {
                distributed.push(o);
                continue;
            }
            let outcome = match &o.result {
                Ok(payload) => DeviceOutcome::Answer(payload),
                Err(failure) => DeviceOutcome::Failed(error::device_failure_code(*failure)),
            };
            let code = outcome.code();
            let xml = write_service_response(&o.request_id, o.srv, &outcome, now());
            written.push((o.request_id, o.at, code, xml));
        }
        let docs: Vec<&str> = written.iter().map(|(.., xml)| xml.as_str()).collect();
        let bodies = self.sign_all(&docs).await;
        let (mut batch, mut settle) = (Vec::new(), Vec::new());
        for ((request_id, at, code, _), body) in written.into_iter().zip(bodies) {
            let Some(body) = body else { continue };
            batch.push(Outbound {
                id: self.outbox.next_id(),
                user: request_id.originator,
                kind: OutboundKind::Response { request_id, code },
                body,
                raised_at: at.saturating_mul(1000),
            });
            settle.push(request_id);
        }
        self.enqueue(batch).await;
        // Together, so the pending journal's group commit makes one fsync of them.
        let settled =
            futures_util::future::join_all(settle.iter().map(|id| dispatcher.settle(id))).await;
        for e in settled.into_iter().filter_map(Result::err) {
            tracing::error!(error = %e, "Settling a command failed; it will be answered again after a restart.");
        }
        if !distributed.is_empty() {
            self.distributed(dispatcher, distributed).await;
        }
    }

    /// One hub event: the alert messages it calls for (to be signed and enqueued by
    /// [`Self::send_alerts`], which lets the event go once they are all on disk).
    fn event(&mut self, fanout: &mut Fanout, inbound: Inbound) -> Vec<AlertMessage> {
        let Inbound { event, receipt } = inbound;
        let id = self.alert_id();
        match event {
            HubEvent::Alert {
                device,
                code,
                payload,
                at,
            } => {
                self.received("device");
                let alert = DeviceAlert {
                    id,
                    device,
                    code,
                    payload,
                    at,
                };
                self.device_alert(fanout, &alert, receipt, "device")
            }
            HubEvent::FutureDated {
                request_id,
                srv,
                code,
                payload,
                at,
                ..
            } => {
                self.received("future_dated");
                let alert = FutureDatedAlert {
                    id,
                    request_id,
                    srv,
                    code,
                    payload,
                    instruction: 1,
                    total_instructions: 1,
                    at,
                };
                match Fanout::future_dated(&alert, now()) {
                    Ok(m) => {
                        self.waiting.insert(id, Waiting { receipt, owed: 1 });
                        vec![m]
                    }
                    Err(e) => {
                        self.unrouted("future_dated");
                        tracing::warn!(error = %e, request_id = %request_id, "Future-dated alert not routed.");
                        receipt.ack();
                        Vec::new()
                    }
                }
            }
            // The dispatcher turns answers into outcomes; nothing else reaches here.
            HubEvent::Response { .. } | HubEvent::Unreachable { .. } | HubEvent::Refused { .. } => {
                receipt.ack();
                Vec::new()
            }
        }
    }

    /// A device alert fanned out to the Users its code is routed to; the hub event is let go
    /// once every copy is in the outbox (throttled ones with their summary). `kind` labels the
    /// metrics (a future-dated alert whose request is no longer known comes here too).
    fn device_alert(
        &mut self,
        fanout: &mut Fanout,
        alert: &DeviceAlert,
        receipt: Receipt,
        kind: &str,
    ) -> Vec<AlertMessage> {
        let registry = self.gateway.registry();
        let rules = self.gateway.rules_at(alert.at);
        let routed = match &rules {
            Some(rules) => {
                tracing::debug!(rules = %rules.version, id = alert.id, "Device alert routed.");
                fanout.device_alert_by(&rules.alert_table, alert, &registry, now())
            }
            None => fanout.device_alert(alert, &registry, now()),
        };
        match routed {
            Ok(fanned) => {
                if let Some(rules) = &rules {
                    self.gateway.routed(alert, rules, &fanned);
                }
                let owed = fanned.messages.len() + fanned.held.len();
                self.waiting.insert(alert.id, Waiting { receipt, owed });
                fanned.messages
            }
            Err(e) => {
                // Nobody to tell (an unknown device, no registration): counted, logged, let go.
                self.unrouted(kind);
                tracing::warn!(error = %e, device = %alert.device, code = format_args!("{:04X}", alert.code), "Device alert not routed.");
                receipt.ack();
                Vec::new()
            }
        }
    }

    /// The DCC Alerts of one journalled batch of registration changes. The batch counts as
    /// done (the change log's mark passes it) once every copy is in the outbox, the throttled
    /// ones with their summaries.
    async fn dcc(&mut self, fanout: &mut Fanout, batch: ChangeAlerts) {
        let ChangeAlerts { seq, at, events } = batch;
        self.changes.begin(seq);
        for event in events {
            self.received("dcc");
            let alert = DccAlert {
                id: self.alert_id(),
                event,
                at,
            };
            let registry = self.gateway.registry();
            match fanout.dcc_alert(&alert, &registry, now()) {
                Ok(fanned) => {
                    let copies = fanned.messages.len() + fanned.held.len();
                    self.changes.owe(seq, alert.id, copies);
                    self.send_alerts(fanned.messages).await;
                }
                Err(e) => {
                    self.unrouted("dcc");
                    tracing::warn!(error = %e, "DCC alert not routed.");
                }
            }
        }
        self.changes.end(seq);
        self.mark_changes().await;
    }

    /// Records in the change log how far the DCC Alerts of its batches are in the outbox. A
    /// failure only means those batches' alerts are raised again after a restart.
    async fn mark_changes(&mut self) {
        let Some(mark) = self.changes.mark() else {
            return;
        };
        match self.gateway.change_log().mark_alerted(mark.seq).await {
            Ok(()) => self
                .gateway
                .metrics()
                .alerts
                .owed_change_batches
                .sub(i64::try_from(mark.batches).unwrap_or(i64::MAX)),
            Err(e) => {
                tracing::error!(error = %e, seq = mark.seq, "Marking DCC Alerts as sent failed; they are raised again at the next start.")
            }
        }
    }

    /// Signs and enqueues alert messages in one outbox write, then lets go of each hub event
    /// (and change batch) all of whose copies are now on disk.
    async fn send_alerts(&mut self, messages: Vec<AlertMessage>) {
        if messages.is_empty() {
            return;
        }
        let mut batch = Vec::with_capacity(messages.len());
        // A copy that could not be signed is not in the outbox: what it came from is not let
        // go (the hub offers the event again, the change batch is raised again, after a restart).
        let mut unsigned = vec![false; messages.len()];
        let docs: Vec<&str> = messages.iter().map(|m| m.xml.as_str()).collect();
        let bodies = self.sign_all(&docs).await;
        for ((i, m), body) in messages.iter().enumerate().zip(bodies) {
            let Some(body) = body else {
                unsigned[i] = true;
                continue;
            };
            let kind = match m.kind {
                AlertKind::Device { code, device } => OutboundKind::DeviceAlert {
                    code,
                    device,
                    request_id: None,
                },
                AlertKind::FutureDated { code, request_id } => OutboundKind::DeviceAlert {
                    code,
                    device: request_id.target,
                    request_id: Some(request_id),
                },
                AlertKind::Dcc(code) => OutboundKind::DccAlert { code },
            };
            let kind_label = m.kind.label();
            self.gateway
                .metrics()
                .alerts
                .sent
                .with_label_values(&[kind_label])
                .inc();
            if m.throttled.is_some() {
                self.gateway
                    .metrics()
                    .alerts
                    .throttled
                    .with_label_values(&[kind_label])
                    .inc();
            }
            batch.push(Outbound {
                id: self.outbox.next_id(),
                user: m.user,
                kind,
                body,
                raised_at: m.raised_at.saturating_mul(1000),
            });
        }
        if !batch.is_empty() {
            self.enqueue(batch).await;
        }
        for (m, unsigned) in messages.into_iter().zip(unsigned) {
            if unsigned {
                continue;
            }
            for id in m.covers.iter().chain(std::iter::once(&m.alert_id)) {
                let done = match self.waiting.get_mut(id) {
                    Some(w) => {
                        w.owed = w.owed.saturating_sub(1);
                        w.owed == 0
                    }
                    None => false,
                };
                if done {
                    if let Some(w) = self.waiting.remove(id) {
                        w.receipt.ack();
                    }
                }
                self.changes.sent(*id);
            }
        }
        self.mark_changes().await;
    }

    /// Enqueues until the outbox takes the batch: its source is not let go before.
    async fn enqueue(&self, batch: Vec<Outbound>) {
        loop {
            match self.outbox.enqueue(batch.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, "The outbox refused messages; trying again.");
                    tokio::time::sleep(ENQUEUE_RETRY).await;
                }
            }
        }
    }

    /// Counts an alert in, by kind (`metrics::ALERT_KINDS`).
    fn received(&self, kind: &str) {
        self.gateway
            .metrics()
            .alerts
            .received
            .with_label_values(&[kind])
            .inc();
    }

    /// Counts an alert that reached nobody, by kind.
    fn unrouted(&self, kind: &str) {
        self.gateway
            .metrics()
            .alerts
            .unrouted
            .with_label_values(&[kind])
            .inc();
    }

    fn alert_id(&mut self) -> u64 {
        self.next_alert += 1;
        self.next_alert
    }
}

/// Alert identifiers above any issued before a restart: the clock's milliseconds times 2^16.
fn alert_id_seed() -> u64 {
    u64::try_from(now().unix_timestamp_nanos() / 1_000_000).unwrap_or(0) << 16
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
