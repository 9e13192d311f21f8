//! Admission control's decisions: each parsed request admitted or shed (by class and why), the
//! adaptive limit and the requests in flight under it.

use prometheus::{IntCounterVec, IntGauge};

use super::Builder;
use crate::admission::{Class, Shed, CLASSES, DECISIONS};

#[derive(Clone)]
pub struct AdmissionMetrics {
    /// `dccgw_admission_decisions_total{class, decision}`.
    decisions: IntCounterVec,
    /// `dccgw_admission_limit`: the global limit now (requests in flight, standard class).
    limit: IntGauge,
    /// `dccgw_admission_inflight`: admitted requests not yet answered.
    inflight: IntGauge,
}

/// One request's admission decision: the metric, and a DEBUG line for a shed (the request's
/// own record, `RequestAnswered`, logs its refusal at INFO).
pub struct AdmissionDecided {
    pub class: Class,
    pub decision: Result<(), Shed>,
    pub limit: usize,
    pub inflight: usize,
}

/// The adaptive limit moved (once per window at most): the gauge, and an INFO line when it
/// moved by a tenth or more.
pub struct LimitChanged {
    pub from: usize,
    pub to: usize,
}

impl AdmissionMetrics {
    pub(super) fn register(b: &Builder) -> Self {
        let decisions = b.counters(
            "dccgw_admission_decisions_total",
            "Parsed requests admitted or shed before their signature check, by priority class (critical, standard, bulk) and decision (admitted, overload, user_concurrency, user_rate).",
            &["class", "decision"],
        );
        for class in CLASSES {
            for decision in DECISIONS {
                decisions.with_label_values(&[class.label(), decision]);
            }
        }
        let limit = b.gauge(
            "dccgw_admission_limit",
            "The adaptive limit on requests in flight (standard class; bulk reads get a share, critical requests headroom).",
        );
        let inflight = b.gauge(
            "dccgw_admission_inflight",
            "Admitted requests not yet answered.",
        );
        Self {
            decisions,
            limit,
            inflight,
        }
    }
}

impl AdmissionMetrics {
    /// Requests in flight after one was answered.
    pub fn answered(&self, inflight: usize) {
        self.inflight.set(inflight as i64);
    }
}

impl AdmissionDecided {
    pub fn emit(&self, m: &AdmissionMetrics) {
        let decision = match self.decision {
            Ok(()) => "admitted",
            Err(shed) => {
                tracing::debug!(
                    class = self.class.label(),
                    reason = shed.label(),
                    limit = self.limit,
                    inflight = self.inflight,
                    "Request shed by admission control."
                );
                shed.label()
            }
        };
        m.decisions
            .with_label_values(&[self.class.label(), decision])
            .inc();
        m.inflight.set(self.inflight as i64);
    }
}

impl LimitChanged {
    pub fn emit(&self, m: &AdmissionMetrics) {
        m.limit.set(self.to as i64);
        // A move of a tenth or more is news; the small steps of every window are not.
        if self.from.abs_diff(self.to) * 10 >= self.from.max(1) {
            tracing::info!(
                from = self.from,
                to = self.to,
                "Admission limit adapted to latency."
            );
        } else if self.from != self.to {
            tracing::debug!(from = self.from, to = self.to, "Admission limit adapted.");
        }
    }
}
