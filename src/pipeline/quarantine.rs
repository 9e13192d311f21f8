//! What operators do with anomaly detection through the admin API: a new threshold set
//! (checked, journalled, then in force; audited), and the release or deletion of quarantined
//! requests (audited).
//!
//! A **release** continues the request's flow as if it had just been accepted: it is read
//! again, access control decides again (at its execution time if it has one, else now, under
//! the rule set in force then), and its plan — route, hold, local delivery … — is carried out,
//! so that its own final message follows. It is not screened again. If it can no longer go
//! (access control refuses it now, a signed pre-command's has expired), its final message is a
//! Service Response with the refusal's code. A **delete** ends it for good: the User receives
//! the request's Service Response with `E67`, and nothing is sent to the device.
//!
//! Each ends with its journal mark (in cluster mode, its row deleted first), after its effects
//! (or its Service Response) are durable; a crash in between leaves it listed, and a second
//! release or delete repeats what was done (a duplicate, which DUIS allows). In cluster mode a
//! release or delete through any instance first takes the request over from whichever instance
//! keeps it (`cluster::quarantine`: exclusive for a minute, so two never run at once).

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::anomaly::{Entry, ThresholdError, Thresholds};
use crate::audit::AnomalyRecord;
use crate::domain::ResponseCode;
use crate::duis::outbound::{write_service_response, DeviceOutcome};
use crate::duis::{self};
use crate::metrics::AnomalyDecided;
use crate::outbox::{Outbound, OutboundKind};
use crate::store::{CommitError, Ending, JournalError, Quarantined, ThresholdSet};
use crate::xmldsig;

use super::anomaly::anomaly_record;
use super::plan::{Planning, Reply};
use super::{execution_time, Gateway};

/// How one release or delete went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarantineAct {
    pub reference: u64,
    /// `released` (its effects durable, its final message to follow), `refused` (it could no
    /// longer go: its Service Response carries `code`), `deleted` (its `E67` Service Response
    /// is in the outbox), `unknown` (not quarantined, or being released or deleted already),
    /// `failed` (a journal or the outbox failed: it stays quarantined; try again).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Why a threshold set was not put in force.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdsRefused {
    #[error(transparent)]
    Invalid(#[from] ThresholdError),
    #[error("the threshold journal could not be written")]
    Journal(#[source] JournalError),
}

impl Gateway {
    /// Checks `entries` (against the catalogue and the party register in force), journals them
    /// as the next version, puts them in force and audits the change.
    pub async fn set_thresholds(
        &self,
        entries: Vec<Entry>,
    ) -> Result<Arc<Thresholds>, ThresholdsRefused> {
        let _one = self.anomaly.changing.lock().await;
        let version = self.anomaly.thresholds.load().version + 1;
        let register = self.state.register();
        let known = |u| register.get(&u).is_some();
        let set = Thresholds::parse(entries, version, self.catalogue, known)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let record = ThresholdSet {
            version,
            at: now,
            entries: set.entries.clone(),
        };
        self.anomaly
            .log
            .append(&record)
            .await
            .map_err(ThresholdsRefused::Journal)?;
        let set = Arc::new(set);
        self.anomaly.thresholds.store(Arc::clone(&set));
        self.anomaly.counts.retain(&set);
        self.anomaly.changed.notify_one();
        let record = AnomalyRecord {
            at_ms: now.saturating_mul(1000),
            action: "thresholds".into(),
            user: None,
            request_id: None,
            srv: None,
            breach: None,
            reference: None,
            detail: Some(format!("version {version}: {} entries", set.entries.len())),
        };
        let quarantined = self.anomaly.quarantine.len();
        let decided = AnomalyDecided {
            record,
            quarantined,
        };
        let _ = decided.emit(&self.metrics, &self.audit).durable().await;
        Ok(set)
    }

    /// Every quarantined request, oldest reference first: this instance's, or in cluster mode
    /// every instance's (`Err` when the database cannot be read).
    pub async fn list_quarantined(&self) -> Result<Vec<Quarantined>, CommitError> {
        let Some(shared) = self.anomaly.shared.get() else {
            return Ok(self.anomaly.quarantine.list());
        };
        let mut listed: Vec<Quarantined> = shared
            .list()
            .await?
            .iter()
            .filter_map(|r| Quarantined::from_record(r))
            .collect();
        listed.sort_by_key(|q| q.reference);
        Ok(listed)
    }

    /// Takes `reference` for a release or a delete: `Ok(None)` if it is not quarantined or
    /// another release or delete is working on it; `Err` if the cluster's database failed.
    async fn claim_quarantined(&self, reference: u64) -> Result<Option<Quarantined>, ()> {
        let local = &self.anomaly.quarantine;
        let Some(shared) = self.anomaly.shared.get() else {
            return Ok(local.claim(reference));
        };
        let record = shared.claim(reference).await.map_err(|e| {
            tracing::warn!(error = %e, reference, "A quarantined request could not be claimed.");
        })?;
        let Some(q) = record.as_deref().and_then(Quarantined::from_record) else {
            // Ended, or being ended, through another instance: not this one's to keep.
            local.forget(reference);
            return Ok(None);
        };
        local.adopt(q);
        let claimed = local.claim(reference);
        if claimed.is_none() {
            let _ = shared.unclaim(reference).await;
        }
        Ok(claimed)
    }

    /// A claim given back: the release or delete failed, and the request stays quarantined.
    async fn unclaim_quarantined(&self, reference: u64) {
        self.anomaly.quarantine.unclaim(reference);
        if let Some(shared) = self.anomaly.shared.get() {
            if let Err(e) = shared.unclaim(reference).await {
                tracing::warn!(error = %e, reference, "A quarantine's claim was not given back; it lapses in a minute.");
            }
        }
    }

    /// Releases quarantined request `reference`: its flow continues to its final message.
    pub async fn release_quarantined(&self, reference: u64) -> QuarantineAct {
        let q = match self.claim_quarantined(reference).await {
            Ok(Some(q)) => q,
            Ok(None) => return act(reference, "unknown", None),
            Err(()) => return act(reference, "failed", None),
        };
        let now = OffsetDateTime::now_utc();
        let refused = self.continue_quarantined(&q, now).await.err();
        if let Some(code) = refused {
            if !self.final_response(&q, code, now).await {
                self.unclaim_quarantined(reference).await;
                return act(reference, "failed", None);
            }
        }
        let code = refused.map(|c| c.to_string());
        self.ended(&q, Ending::Released, code).await
    }

    /// Deletes quarantined request `reference`: its `E67` Service Response goes to the User.
    pub async fn delete_quarantined(&self, reference: u64) -> QuarantineAct {
        let q = match self.claim_quarantined(reference).await {
            Ok(Some(q)) => q,
            Ok(None) => return act(reference, "unknown", None),
            Err(()) => return act(reference, "failed", None),
        };
        let now = OffsetDateTime::now_utc();
        if !self.final_response(&q, ResponseCode::E67, now).await {
            self.unclaim_quarantined(reference).await;
            return act(reference, "failed", None);
        }
        self.ended(&q, Ending::Deleted, None).await
    }

    /// The journal mark, the metrics and the audit record of a release or delete whose effects
    /// are durable.
    async fn ended(&self, q: &Quarantined, ending: Ending, code: Option<String>) -> QuarantineAct {
        let label = match ending {
            Ending::Released => "released",
            Ending::Deleted => "deleted",
        };
        if let Some(shared) = self.anomaly.shared.get() {
            if let Err(e) = shared.end(q.reference).await {
                tracing::error!(error = %e, reference = q.reference, "A quarantine's end could not be written to the cluster; it stays listed.");
                self.unclaim_quarantined(q.reference).await;
                return act(q.reference, "failed", None);
            }
        }
        if let Err(e) = self.anomaly.quarantine.end(q.reference, ending).await {
            tracing::error!(error = %e, reference = q.reference, "A quarantine's end could not be journalled; it stays listed.");
            return act(q.reference, "failed", None);
        }
        let detail = code.as_ref().map(|c| format!("refused at release: {c}"));
        let decided = AnomalyDecided {
            record: anomaly_record(label, q, detail),
            quarantined: self.anomaly.quarantine.len(),
        };
        let _ = decided.emit(&self.metrics, &self.audit).durable().await;
        let outcome = if code.is_some() { "refused" } else { label };
        act(q.reference, outcome, code)
    }

    /// The request's flow from its plan on: read again, authorized again, its plan's effects
    /// durable. `Err` is the code of the Service Response that ends it instead.
    async fn continue_quarantined(
        &self,
        q: &Quarantined,
        now: OffsetDateTime,
    ) -> Result<(), ResponseCode> {
        let code = |e: crate::error::Error| e.classify().0;
        let request =
            duis::parse_request(&q.request, &self.xml_limits).map_err(|f| code(f.error.into()))?;
        let at = execution_time(&request, now).map_err(code)?;
        let rules = self.rule_set_at(at.unix_timestamp());
        let register = self.state.register();
        let (permit, entry) = self
            .authorize(&rules.catalogue, &request, &register, at)
            .map_err(code)?;
        let planning = Planning {
            entry,
            permit: &permit,
            request: &request,
            body: &q.request,
            at,
            now,
        };
        let plan = self.plan(&planning).map_err(code)?;
        if !matches!(plan.reply, Reply::Acknowledged) || !plan.follows() {
            // Its rules changed so that it is answered at once now: nothing would follow.
            tracing::warn!(request_id = %q.request_id, "A released request no longer sends anything; it is ended with E100.");
            return Err(ResponseCode::E100);
        }
        self.carry_out(plan.effects, None, now.unix_timestamp())
            .await
            .map_err(code)
    }

    /// Puts the request's Service Response with `code` in the outbox; whether it is there.
    async fn final_response(
        &self,
        q: &Quarantined,
        code: ResponseCode,
        now: OffsetDateTime,
    ) -> bool {
        let outcome = DeviceOutcome::Failed(code);
        let xml = write_service_response(&q.request_id, q.srv, &outcome, now);
        let Ok(body) = xmldsig::sign_document(&xml, &self.signer, &self.c14n_limits) else {
            tracing::error!(
                "Signing a quarantined request's response failed; check the DCC signing key."
            );
            return false;
        };
        let message = Outbound {
            id: self.outbox.next_id(),
            user: q.request_id.originator,
            kind: OutboundKind::Response {
                request_id: q.request_id,
                code,
            },
            body: body.into_bytes(),
            raised_at: now.unix_timestamp().saturating_mul(1000),
        };
        match self.outbox.enqueue(vec![message]).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "The outbox refused a quarantined request's response.");
                false
            }
        }
    }
}

fn act(reference: u64, outcome: &'static str, code: Option<String>) -> QuarantineAct {
    QuarantineAct {
        reference,
        outcome,
        code,
    }
}
