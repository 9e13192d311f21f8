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
        OutboundKind::Response { request_id } => Message::Response {
            request_id,
            code: response_code(&m.body).unwrap_or_default().to_owned(),
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

/// The DUIS response code in a Service Response the gateway wrote and signed (the text of its
/// first `ResponseCode` element); `None` if it is not a short alphanumeric code.
pub(super) fn response_code(body: &[u8]) -> Option<&str> {
    const TAG: &[u8] = b"ResponseCode>";
    let start = body.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let rest = body.get(start..)?;
    let len = rest.iter().position(|&b| b == b'<')?;
    let code = std::str::from_utf8(rest.get(..len)?).ok()?;
    let plausible =
        (1..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::response_code;

    #[test]
    fn the_response_code_is_read_from_the_header() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                b"<sr:Header><sr:ResponseCode>I0</sr:ResponseCode></sr:Header>",
                Some("I0"),
            ),
            (b"<ResponseCode>E20</ResponseCode>", Some("E20")),
            (b"<sr:ResponseCode></sr:ResponseCode>", None),
            (b"<sr:ResponseCode>not a code!</sr:ResponseCode>", None),
            (b"<sr:ResponseCode>I0", None),
            (b"", None),
        ];
        for (body, want) in cases {
            assert_eq!(
                response_code(body),
                *want,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(body: Vec<u8>) {
            let _ = response_code(&body);
        }
    }
}
