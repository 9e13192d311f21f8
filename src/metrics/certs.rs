//! Certificate reloads and revocation lists: how each reload ended, by what it was asked, and
//! when each trust's CRLs are next due.

use prometheus::{GaugeVec, IntCounterVec, Opts};

use super::Builder;

/// What asked for a reload.
pub const RELOAD_TRIGGERS: [&str; 3] = ["signal", "admin", "watch"];
/// How a reload ended.
pub const RELOAD_OUTCOMES: [&str; 2] = ["ok", "failed"];
/// The trusts that hold CRLs: TLS clients', and signing certificates'.
pub const TRUSTS: [&str; 2] = ["tls", "signatures"];

#[derive(Clone)]
pub struct CertMetrics {
    /// `dccgw_certificate_reloads_total{trigger, outcome}`.
    pub reloads: IntCounterVec,
    /// `dccgw_crl_next_update_timestamp_seconds{trust}`: the earliest `nextUpdate` of the
    /// trust's CRLs (0 when it has none).
    pub crl_next_update: GaugeVec,
}

impl CertMetrics {
    pub(super) fn register(b: &Builder) -> Self {
        let reloads = b.counters(
            "dccgw_certificate_reloads_total",
            "Reloads of the trust anchors, CRLs, TLS server certificate and User certificate stores, by trigger and outcome (a failed reload changes nothing).",
            &["trigger", "outcome"],
        );
        for trigger in RELOAD_TRIGGERS {
            for outcome in RELOAD_OUTCOMES {
                reloads.with_label_values(&[trigger, outcome]);
            }
        }
        let crl_next_update = b.add(
            GaugeVec::new(
                Opts::new(
                    "dccgw_crl_next_update_timestamp_seconds",
                    "The earliest nextUpdate among each trust's CRLs (unix seconds; 0 without CRLs). Past it the CRLs still apply, but are stale.",
                ),
                &["trust"],
            )
            .expect("static gauge"),
        );
        for trust in TRUSTS {
            crl_next_update.with_label_values(&[trust]);
        }
        Self {
            reloads,
            crl_next_update,
        }
    }

    /// A reload asked for by `trigger` ended (`ok` or not).
    pub fn reloaded(&self, trigger: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.reloads.with_label_values(&[trigger, outcome]).inc();
    }

    /// `trust`'s CRLs are next due at `at` (unix seconds; `None` without CRLs).
    pub fn crls_due(&self, trust: &'static str, at: Option<i64>) {
        self.crl_next_update
            .with_label_values(&[trust])
            .set(at.unwrap_or(0) as f64);
    }
}
