//! What start-up checks and opens besides the registers and the request path's stores.

use std::sync::Arc;

use super::{blocking, StartError};
use crate::config::Config;
use crate::pipeline::Anomaly;
use crate::state::Rules;

/// The state and audit directories take writes, checked before anything is loaded.
pub(super) async fn check_writable(config: &Config) -> Result<(), StartError> {
    for dir in [config.state.dir.clone(), config.audit.dir(&config.state)] {
        let probe = dir.clone();
        blocking(move || crate::store::probe_dir(&probe))
            .await?
            .map_err(|source| StartError::Unwritable { dir, source })?;
    }
    Ok(())
}

/// Anomaly detection's thresholds and quarantine, from their journals in `[state] dir` and the
/// quarantines the request log recovered.
pub(super) async fn anomaly(
    config: &Config,
    recovered: Vec<crate::store::Quarantined>,
) -> Result<Anomaly, StartError> {
    let (anomaly, dir) = (config.anomaly.clone(), config.state.dir.clone());
    blocking(move || Anomaly::open(&anomaly, &dir, recovered))
        .await?
        .map_err(StartError::AnomalyJournal)
}

/// The dated rule sets: the built-in catalogue and `[alerts]` routes, then the configured files'
/// versions and the journalled ones.
pub(super) async fn rules(config: &Config) -> Result<Arc<Rules>, StartError> {
    let config = config.clone();
    let rules = blocking(move || crate::config::rules(&config))
        .await?
        .map_err(StartError::Rules)?;
    let book = rules.book();
    let latest = book.latest();
    tracing::info!(
        versions = book.versions().count(),
        latest = %latest.version,
        "Rule sets loaded."
    );
    Ok(Arc::new(rules))
}
