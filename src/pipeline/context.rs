//! The gateway as the asynchronous half's context: what `replies` needs to turn device outcomes
//! and alerts into signed messages.

use std::sync::Arc;

use crate::firmware::Distributions;
use crate::metrics::Metrics;
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
}
