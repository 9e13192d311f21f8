//! The gateway as the asynchronous half's context: what `replies` needs to turn device outcomes
//! and alerts into signed messages.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::alerts::{DeviceAlert, Fanned};
use crate::audit::{AuditEvent, RoutingRecord};
use crate::firmware::Distributions;
use crate::metrics::Metrics;
use crate::offload::Offload;
use crate::registry::Snapshot;
use crate::replies;
use crate::rules::RuleSet;
use crate::signer::Signer;
use crate::state::StateLog;
use crate::xmldsig::c14n::C14nLimits;

use super::Gateway;

impl replies::Context for Gateway {
    fn registry(&self) -> Arc<Snapshot> {
        self.state.registry()
    }

    fn signer(&self) -> &Signer {
        &self.signer
    }

    fn c14n_limits(&self) -> &C14nLimits {
        &self.c14n_limits
    }

    fn offload(&self) -> Offload {
        self.offload.clone()
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn change_log(&self) -> &StateLog {
        self.state.change_log()
    }

    fn firmware(&self) -> Option<&Distributions> {
        Some(&self.routing.firmware)
    }

    fn rules_at(&self, at: i64) -> Option<Arc<RuleSet>> {
        Some(self.rule_set_at(at))
    }

    /// The routing record goes to the audit trail without holding the alert up: should it not
    /// reach the disk, that is counted and logged for an operator (as for a delivery attempt's
    /// record), and the readiness check reports the failing trail.
    fn routed(&self, alert: &DeviceAlert, rules: &RuleSet, fanned: &Fanned) {
        let copies = fanned
            .messages
            .iter()
            .filter(|m| m.covers.contains(&alert.id));
        let record = RoutingRecord {
            at_ms: i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
                .unwrap_or(0),
            alert_id: alert.id,
            device: alert.device,
            code: format!("{:04X}", alert.code),
            raised_at_ms: alert.at.saturating_mul(1000),
            rules: rules.version.clone(),
            users: copies
                .map(|m| m.user)
                .chain(fanned.held.iter().map(|(user, _)| *user))
                .collect(),
        };
        let receipt = self.audit.record(&AuditEvent::Routing(record));
        let metrics = self.metrics.clone();
        let id = alert.id;
        tokio::spawn(async move {
            if let Err(error) = receipt.durable().await {
                metrics.audit_write_failed();
                tracing::error!(%error, alert = id, "A device alert's routing record was not written; check the audit directory's disk.");
            }
        });
    }
}
