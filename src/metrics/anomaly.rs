//! Anomaly detection's decisions: warnings, quarantines, and how quarantined requests ended.

use prometheus::{IntCounterVec, IntGauge};

use super::Builder;

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
