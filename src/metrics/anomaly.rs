//! Anomaly detection's decisions: warnings, quarantines, and how quarantined requests ended.

use prometheus::{IntCounterVec, IntGauge};

use super::{Builder, Metrics};
use crate::audit::{AnomalyRecord, Audit, AuditEvent, Receipt};

/// Which threshold a warning or quarantine is about.
pub const ANOMALY_BREACHES: [&str; 3] = ["user_threshold", "dcc_threshold", "attribute_limits"];
/// How a quarantined request ended: sent on by an operator, or deleted.
pub const QUARANTINE_ENDINGS: [&str; 2] = ["released", "deleted"];

#[derive(Clone)]
pub struct AnomalyMetrics {
    /// `dccgw_anomaly_warnings_total{breach}`: counts taken past a warning tier.
    pub warnings: IntCounterVec,
    /// `dccgw_anomaly_quarantined_total{breach}`: requests quarantined.
    pub quarantined: IntCounterVec,
    /// `dccgw_anomaly_quarantine_ends_total{ending}`: quarantined requests released or deleted.
    pub ends: IntCounterVec,
    /// `dccgw_anomaly_quarantine_requests`: requests in quarantine now.
    pub held: IntGauge,
}

impl AnomalyMetrics {
    pub(super) fn register(b: &Builder) -> Self {
        let warnings = b.counters(
            "dccgw_anomaly_warnings_total",
            "Anomaly-detection counts taken past a warning tier, by threshold kind.",
            &["breach"],
        );
        let quarantined = b.counters(
            "dccgw_anomaly_quarantined_total",
            "Requests anomaly detection quarantined, by the threshold breached.",
            &["breach"],
        );
        let ends = b.counters(
            "dccgw_anomaly_quarantine_ends_total",
            "Quarantined requests an operator released or deleted.",
            &["ending"],
        );
        for breach in ANOMALY_BREACHES {
            warnings.with_label_values(&[breach]);
            quarantined.with_label_values(&[breach]);
        }
        for ending in QUARANTINE_ENDINGS {
            ends.with_label_values(&[ending]);
        }
        let held = b.gauge(
            "dccgw_anomaly_quarantine_requests",
            "Requests in anomaly-detection quarantine now.",
        );
        Self {
            warnings,
            quarantined,
            ends,
            held,
        }
    }
}

/// One anomaly-detection decision (`warning`, `quarantined`, `released`, `deleted`,
/// `thresholds`): its log line, its metric and its audit record, together. `quarantined` is how
/// many requests are in quarantine after it.
pub struct AnomalyDecided {
    pub record: AnomalyRecord,
    pub quarantined: usize,
}

impl AnomalyDecided {
    pub fn emit(self, metrics: &Metrics, audit: &Audit) -> Receipt {
        let m = &metrics.anomaly;
        let r = &self.record;
        let breach = r.breach.as_deref().unwrap_or("");
        let request_id = r.request_id.map(|id| id.to_string()).unwrap_or_default();
        let srv = r.srv.map(|s| s.to_string()).unwrap_or_default();
        let detail = r.detail.as_deref().unwrap_or("");
        match r.action.as_str() {
            "warning" => {
                if let Some(c) = known(&ANOMALY_BREACHES, breach) {
                    m.warnings.with_label_values(&[c]).inc();
                }
                tracing::warn!(%request_id, %srv, breach, detail, "An anomaly-detection warning tier was passed.");
            }
            "quarantined" => {
                if let Some(c) = known(&ANOMALY_BREACHES, breach) {
                    m.quarantined.with_label_values(&[c]).inc();
                }
                tracing::warn!(%request_id, %srv, breach, reference = r.reference, detail, "A request was quarantined by anomaly detection.");
            }
            "released" | "deleted" => {
                if let Some(c) = known(&QUARANTINE_ENDINGS, &r.action) {
                    m.ends.with_label_values(&[c]).inc();
                }
                tracing::info!(%request_id, reference = r.reference, ending = %r.action, detail, "A quarantined request was ended by an operator.");
            }
            _ => tracing::info!(action = %r.action, detail, "Anomaly thresholds in force."),
        }
        m.held
            .set(i64::try_from(self.quarantined).unwrap_or(i64::MAX));
        audit.record(&AuditEvent::Anomaly(self.record))
    }
}

/// `value` as the label of the closed set `labels`, if it is one.
fn known(labels: &[&'static str], value: &str) -> Option<&'static str> {
    labels.iter().copied().find(|l| *l == value)
}
