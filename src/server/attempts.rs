//! The outbox's [`AttemptHook`] for a running gateway: one audit record per delivery attempt
//! (delivered, failed, dead-lettered), so `dccgw report performance` can count asynchronous
//! responses delivered within target.

use crate::audit::{Audit, AuditEvent, DeliveryOutcome, DeliveryRecord, Message};
use crate::metrics::Metrics;
use crate::outbox::{AttemptHook, AttemptOutcome, Attempted, OutboundKind};

/// Queues an audit record per attempt; a record that cannot be written is counted and logged
/// (delivery does not wait for the audit disk).
pub(super) struct AuditAttempts {
    pub audit: Audit,
    pub metrics: Metrics,
}

impl AttemptHook for AuditAttempts {
    fn attempted(&self, a: &Attempted<'_>) {
        let receipt = self.audit.record(&AuditEvent::Delivery(record(a)));
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = receipt.durable().await {
                metrics.audit_write_failed();
                tracing::error!(error = %e, "A delivery attempt's audit record was not written; check the audit directory's disk.");
            }
        });
    }
}

/// The audit record of one attempt.
pub(super) fn record(a: &Attempted<'_>) -> DeliveryRecord {
    let m = a.message;
    let (outcome, http_status) = match a.outcome {
        AttemptOutcome::Delivered => (DeliveryOutcome::Delivered, None),
        AttemptOutcome::Failed { http_status } => (DeliveryOutcome::Failed, http_status),
        AttemptOutcome::DeadLettered => (DeliveryOutcome::DeadLettered, None),
    };
    let message = match m.kind {
        OutboundKind::Response { request_id, code } => Message::Response {
            request_id,
            code: code.to_string(),
        },
        OutboundKind::DeviceAlert { code, .. } => Message::Alert {
            code: format!("{code:04X}"),
        },
        OutboundKind::DccAlert { code } => Message::Alert {
            code: code.to_string(),
        },
    };
    DeliveryRecord {
        at_ms: a.at_ms,
        message_id: m.id.to_string(),
        user: m.user,
        message,
        attempt: a.attempt,
        outcome,
        http_status,
        raised_at_ms: m.raised_at,
        bytes: m.body.len() as u64,
    }
}
