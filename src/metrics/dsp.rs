//! The DSP's held future-dated requests and schedule executions: how each ended when its time
//! came.

use prometheus::IntCounterVec;

use super::Builder;

/// What comes due: a held future-dated request, or a DSP schedule's execution.
pub const DSP_KINDS: [&str; 2] = ["held", "scheduled"];
/// How it ended: `sent` (its command made and journalled as pending, or delivered locally),
/// `refused` (access control or its command refused it at its time), `late` (its window passed
/// while the gateway was stopped: `E30` for a held request, a `CommandFailure` for an execution).
pub const DSP_OUTCOMES: [&str; 3] = ["sent", "refused", "late"];

#[derive(Clone)]
pub struct DspMetrics {
    /// `dccgw_dsp_executions_total{kind, outcome}`.
    pub executions: IntCounterVec,
}

impl DspMetrics {
    pub(super) fn register(b: &Builder) -> Self {
        let executions = b.counters(
            "dccgw_dsp_executions_total",
            "Held future-dated requests and DSP schedule executions that came due, by kind (held, scheduled) and outcome (sent, refused, late).",
            &["kind", "outcome"],
        );
        for kind in DSP_KINDS {
            for outcome in DSP_OUTCOMES {
                executions.with_label_values(&[kind, outcome]);
            }
        }
        Self { executions }
    }

    /// One of `kind` came due and ended as `outcome`.
    pub fn executed(&self, kind: &'static str, outcome: &'static str) {
        self.executions.with_label_values(&[kind, outcome]).inc();
    }
}
