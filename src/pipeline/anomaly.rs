//! Threshold anomaly detection in the request's path. A request whose plan sends something on
//! (acknowledged `I99`, with a final message to follow: a device command, a held request, a
//! local delivery, a firmware distribution) is screened after it is planned: the thresholds in
//! force and the counts decide (`anomaly::decide`, through `tally::Counts`). A warning is
//! counted, logged and audited, and the request goes on. A breach replaces the plan: the request
//! is not sent but quarantined — its `AD1` DCC Alert (`QuarantinedRequest`: the breach and the
//! quarantine reference) put in the outbox, the request kept in its decision's commit (the
//! request log, checkpointed into `quarantine.journal`) — and answered `I99`,
//! so that the User can tell it was quarantined, not lost. Its final message comes when an
//! operator releases it (the request's own, `quarantine.rs`) or deletes it (a Service Response
//! with `E67`). A quarantine that is full refuses the request with `E68`.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::alerts::DccEvent;
use crate::anomaly::{attribute_values, Attribute, Breach, Detail, Facts, Thresholds, Warning};
use crate::audit::AnomalyRecord;
use crate::duis::outbound::{write_dcc_alert, DccAlertBody, DccAlertOut, DccAlertPayload};
use crate::error::{Error, Resource};
use crate::metrics::AnomalyDecided;
use crate::outbox::{Outbound, OutboundKind};
use crate::store::{
    CountLog, JournalError, Quarantine, Quarantined, SharedEntries, Tallied, ThresholdLog,
};
use crate::tally::{Counts, LocalCounts};
use crate::xmldsig;

use super::durable::Prepared;
use super::plan::{Effect, Plan, Planning, Reply};
use super::Gateway;

/// `[anomaly]`: the quarantine's bounds.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Quarantined requests kept at most; a further breach is refused with `E68` (nothing is
    /// kept or sent).
    pub max_quarantined: usize,
    /// Bytes of quarantined requests kept at most; past it, as `max_quarantined`.
    pub max_quarantined_bytes: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            max_quarantined: 100_000,
            max_quarantined_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Anomaly detection's parts: the thresholds in force and their journal, the counts, the
/// quarantine.
pub struct Anomaly {
    pub thresholds: ArcSwap<Thresholds>,
    pub log: ThresholdLog,
    pub counts: Arc<dyn Counts>,
    /// Every request counted, journalled before its answer: the counts rebuilt at a start.
    pub count_log: Arc<CountLog>,
    pub quarantine: Arc<Quarantine>,
    /// The entries every instance reads, in cluster mode (set once at the start): quarantined
    /// requests listed, released and deleted through any instance; pre-commands issued
    /// through another instance.
    pub shared: std::sync::OnceLock<Arc<dyn SharedEntries>>,
    /// One threshold change at a time, so versions follow each other.
    pub(super) changing: tokio::sync::Mutex<()>,
    /// Told of each new threshold set: in a cluster, the counts are read again whole for it
    /// (a counter the set names anew starts from the cluster's window, not from nothing).
    pub changed: Arc<tokio::sync::Notify>,
}

impl Anomaly {
    /// Opens `anomaly-thresholds.journal` and `quarantine.journal` in `dir`, with the last
    /// journalled threshold set in force (checked again against the built-in catalogue; its
    /// Users are not checked against the register, which may have changed since), and the
    /// quarantines the request log recovered. Blocking.
    pub fn open(
        config: &AnomalyConfig,
        dir: &Path,
        recovered: Vec<Quarantined>,
    ) -> Result<Self, JournalError> {
        let (log, last) = ThresholdLog::open(&dir.join("anomaly-thresholds.journal"))?;
        let catalogue = crate::catalogue::Catalogue::builtin();
        let thresholds = match last {
            Some(set) => Thresholds::parse(set.entries, set.version, catalogue, |_| true)
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "The journalled threshold set no longer reads; none is in force.");
                    Thresholds::default()
                }),
            None => Thresholds::default(),
        };
        let quarantine = Quarantine::open_with(
            &dir.join("quarantine.journal"),
            config.max_quarantined,
            config.max_quarantined_bytes,
            recovered,
        )?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (count_log, tallied) = CountLog::open(&dir.join("anomaly-counts"), now)?;
        let counts = LocalCounts::new();
        restore(&counts, &thresholds, &tallied);
        if !quarantine.is_empty() || thresholds.version > 0 {
            tracing::info!(
                quarantined = quarantine.len(),
                thresholds = thresholds.version,
                counted = tallied.iter().map(|t| u64::from(t.n)).sum::<u64>(),
                "Anomaly detection resumed."
            );
        }
        Ok(Self {
            thresholds: ArcSwap::from_pointee(thresholds),
            log,
            counts: Arc::new(counts),
            count_log: Arc::new(count_log),
            quarantine: Arc::new(quarantine),
            shared: std::sync::OnceLock::new(),
            changing: tokio::sync::Mutex::new(()),
            changed: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

/// A quarantined request and its `AD1`, made durable together.
#[derive(Debug)]
pub(super) struct Quarantining {
    pub entry: Quarantined,
    pub alert: Outbound,
    pub breach: Breach,
}

impl Anomaly {
    /// The requests counted in the request log's recovered decisions: counted again in memory
    /// (the count journal's own records were at `open`) and journalled.
    pub async fn recount(&self, tallied: &[Tallied]) -> Result<(), JournalError> {
        restore(self.counts.as_ref(), &self.thresholds.load(), tallied);
        self.count_log.checkpoint(tallied).await
    }
}

impl Anomaly {
    /// Requests other instances of a cluster counted (or, at a start, every instance), added to
    /// the counts in memory; their record is the cluster's, not this instance's journal.
    pub fn count_shared(&self, tallied: &[Tallied]) {
        restore(self.counts.as_ref(), &self.thresholds.load(), tallied);
    }

    /// Every count replaced with `tallied` (a cluster's window, read again whole).
    pub fn count_anew(&self, tallied: &[Tallied]) {
        let counted: Vec<_> = tallied
            .iter()
            .map(|t| (t.user, t.role, t.srv, t.at(), t.n))
            .collect();
        self.counts.rebuild(&self.thresholds.load(), &counted);
    }
}

/// `tallied` counted again into `counts`, for the thresholds of `thresholds`.
fn restore(counts: &dyn Counts, thresholds: &Thresholds, tallied: &[Tallied]) {
    for t in tallied {
        counts.restore(thresholds, t.user, t.role, t.srv, t.at(), t.n);
    }
}

impl Gateway {
    /// Screens `plan` for the request `p`: the same plan, or its quarantine.
    pub(super) fn screen(&self, plan: Plan, p: &Planning<'_>) -> Result<Plan, Error> {
        if !matches!(plan.reply, Reply::Acknowledged) || !plan.follows() {
            return Ok(plan);
        }
        let thresholds = self.anomaly.thresholds.load();
        let (user, srv) = (p.request.header.request_id.originator, p.entry.srv);
        if !thresholds.concerns(user, srv) {
            return Ok(plan);
        }
        let values = self.values(&thresholds, p);
        let facts = Facts {
            user,
            role: p.permit.role(),
            srv,
            values: &values,
        };
        let verdict = self
            .anomaly
            .counts
            .screen(&thresholds, &facts, p.now.unix_timestamp());
        for w in &verdict.warnings {
            self.warned(p, w);
        }
        let Some(breach) = verdict.quarantine else {
            // Counted: journalled before any other effect, so a restart counts it again.
            let mut plan = plan;
            let counted = Tallied::one(user, facts.role, srv, p.now.unix_timestamp());
            plan.effects.insert(0, Effect::Count(counted));
            return Ok(plan);
        };
        let quarantine = &self.anomaly.quarantine;
        if !quarantine.room_for(p.body.len()) {
            return Err(Error::QuarantineFull);
        }
        let entry = Quarantined {
            reference: quarantine.next_reference(),
            request_id: p.request.header.request_id,
            srv,
            at: p.now.unix_timestamp(),
            breach: breach.kind,
            request: Arc::from(p.body),
        };
        let alert = self.ad1(&entry, p.now)?;
        Ok(Plan::acknowledged(vec![Effect::Quarantine(Box::new(
            Quarantining {
                entry,
                alert,
                breach,
            },
        ))]))
    }

    /// The values of the attributes bounded for the request's variant: from its body, or for a
    /// signed pre-command from its Transform's (kept with the pre-command).
    fn values(&self, thresholds: &Thresholds, p: &Planning<'_>) -> Vec<(Attribute, Option<i64>)> {
        let wanted = thresholds.bounded(p.entry.srv);
        if wanted.is_empty() {
            return Vec::new();
        }
        if p.request.header.command_variant.get() >= 5 {
            let id = p.request.header.request_id;
            let held = self.ledgers.precommands.peek(&id, p.now.unix_timestamp());
            return held.map_or_else(
                |_| Vec::new(),
                |h| {
                    let bounded = |(a, _): &(Attribute, Option<i64>)| wanted.contains(a);
                    h.attributes.iter().copied().filter(bounded).collect()
                },
            );
        }
        let span = p.body.get(p.request.body.clone()).unwrap_or_default();
        attribute_values(span, &wanted)
    }

    /// A Transform's values of every attribute, when an attribute limit is in force.
    pub(super) fn transform_attributes(&self, p: &Planning<'_>) -> Vec<(Attribute, Option<i64>)> {
        if self.anomaly.thresholds.load().attributes.is_empty() {
            return Vec::new();
        }
        let span = p.body.get(p.request.body.clone()).unwrap_or_default();
        attribute_values(span, Attribute::ALL)
    }

    /// The `AD1` DCC Alert telling the request's originator it was quarantined, signed.
    fn ad1(&self, q: &Quarantined, now: OffsetDateTime) -> Result<Outbound, Error> {
        let event = DccEvent::Quarantined {
            request_id: q.request_id,
            breach: q.breach.duis(),
            event_ref: q.reference,
        };
        let code = event.code();
        let payload = DccAlertPayload::QuarantinedRequest {
            breach: q.breach.duis(),
            request_id: q.request_id,
            quarantine_event_ref: q.reference,
        };
        // A quarantined request's alert passes every check a DCC Alert body has.
        let body = DccAlertBody::new(payload).map_err(|_| Error::SignAnswer)?;
        let alert = DccAlertOut {
            user: q.request_id.originator,
            counter: q.reference,
            request_id: Some(q.request_id),
            code,
            throttled: None,
            body: &body,
        };
        let xml = write_dcc_alert(&alert, now);
        let signed =
            xmldsig::sign_document(&xml, &self.signer, &self.c14n_limits).map_err(|e| {
                tracing::error!(error = %e, "Signing an AD1 failed; check the DCC signing key.");
                Error::SignAnswer
            })?;
        Ok(Outbound {
            id: self.outbox.next_id(),
            user: q.request_id.originator,
            kind: OutboundKind::DccAlert { code },
            body: signed.into_bytes(),
            raised_at: now.unix_timestamp().saturating_mul(1000),
        })
    }

    /// The messages of `prepared`'s effects put in the outbox (one enqueue), before the
    /// decision that keeps the effects is committed: a quarantine's `AD1` (nothing is kept that
    /// its User was not told of), a command for local delivery (the final message the `I99`
    /// promises). A commit that then fails leaves the message sent and the counter unspent, as
    /// a crash between the two does: an `AD1` whose reference is not kept (its release or
    /// delete answers `unknown`), a local command whose 8.13 is refused as unknown.
    pub(super) async fn enqueue_before_commit(&self, prepared: &Prepared) -> Result<(), Error> {
        let messages = prepared.messages();
        if messages.is_empty() {
            return Ok(());
        }
        self.outbox
            .enqueue(messages)
            .await
            .map_err(|e| Error::resource(Resource::Outbox, e))
    }

    /// A quarantine whose decision is durable: free for a release or a delete, and audited.
    pub(super) fn quarantined(&self, q: Quarantining) {
        let record = anomaly_record("quarantined", &q.entry, Some(detail(&q.breach.detail)));
        self.anomaly.quarantine.admit(q.entry.reference);
        let quarantined = self.anomaly.quarantine.len();
        let _ = AnomalyDecided {
            record,
            quarantined,
        }
        .emit(&self.metrics, &self.audit);
    }

    /// A warning tier passed: the metric, a log line, an audit record.
    fn warned(&self, p: &Planning<'_>, w: &Warning) {
        let id = p.request.header.request_id;
        let record = AnomalyRecord {
            at_ms: p.now.unix_timestamp().saturating_mul(1000),
            action: "warning".into(),
            user: Some(id.originator),
            request_id: Some(id),
            srv: Some(p.entry.srv),
            breach: Some(w.kind.label().into()),
            reference: None,
            detail: Some(format!("{:?} window, warning tier {}", w.window, w.tier)),
        };
        let quarantined = self.anomaly.quarantine.len();
        let _ = AnomalyDecided {
            record,
            quarantined,
        }
        .emit(&self.metrics, &self.audit);
    }
}

/// The audit record of `action` on a quarantined request.
pub(super) fn anomaly_record(
    action: &str,
    q: &Quarantined,
    detail: Option<String>,
) -> AnomalyRecord {
    AnomalyRecord {
        at_ms: OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_mul(1000),
        action: action.into(),
        user: Some(q.request_id.originator),
        request_id: Some(q.request_id),
        srv: Some(q.srv),
        breach: Some(q.breach.label().into()),
        reference: Some(q.reference),
        detail,
    }
}

fn detail(d: &Detail) -> String {
    match d {
        Detail::Count {
            window,
            count,
            limit,
            ..
        } => format!("{window:?} window: {count} counted, quarantine tier {limit}"),
        Detail::Value { attribute, value } => match value {
            Some(v) => format!("{attribute} {v} outside its limits"),
            None => format!("{attribute} not an integer"),
        },
    }
}
