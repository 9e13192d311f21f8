//! The audit record of the DSP's own decisions: a held request released at its time, a DSP
//! schedule's execution. Each is decided again by access control under the rule set in force
//! then; the record names that rule set's version, the role chosen, and the refusal's code.

use time::OffsetDateTime;

use crate::audit::{AuditEvent, ExecutionRecord};
use crate::domain::{RequestId, ResponseCode, Srv, UserRole};
use crate::rules::RuleSet;

use super::Gateway;

/// Where the decision came from, as the record names it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Source {
    Held,
    Scheduled,
}

/// One DSP decision, to record.
pub(super) struct Executed<'a> {
    pub source: Source,
    pub request_id: RequestId,
    pub srv: Srv,
    pub rules: &'a RuleSet,
    pub role: Option<UserRole>,
    pub outcome: Result<(), ResponseCode>,
    pub now: OffsetDateTime,
}

impl Gateway {
    /// Writes the record of `e` and waits until it is on disk (a sent command's effects are
    /// durable already; a refusal's final message is made after this). Should the audit trail
    /// fail, nothing is held back: the failure is counted and logged for an operator, as for a
    /// delivery attempt's record, and the readiness check reports the failing trail.
    pub(super) async fn record_execution(&self, e: Executed<'_>) {
        let record = ExecutionRecord {
            at_ms: i64::try_from(e.now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
            source: match e.source {
                Source::Held => "held",
                Source::Scheduled => "scheduled",
            }
            .to_owned(),
            request_id: e.request_id,
            srv: e.srv,
            role: e.role,
            rules: e.rules.version.clone(),
            decision: if e.outcome.is_ok() { "sent" } else { "refused" }.to_owned(),
            code: e.outcome.err().map(|c| c.as_str().to_owned()),
        };
        if let Err(error) = self
            .audit
            .record(&AuditEvent::Execution(record))
            .durable()
            .await
        {
            self.metrics.audit_write_failed();
            tracing::error!(%error, request_id = %e.request_id, "A DSP decision's audit record was not written; check the audit directory's disk.");
        }
    }
}
