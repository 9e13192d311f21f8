//! Start-up of the request log: opened first, its decisions not yet checkpointed sorted by the
//! store they go to (each store reads its share when it opens and makes it durable in its own
//! file; the audit trail copies the records it lacks), released once every store has, and then checkpointed in the background for as long as
//! the gateway runs.

use std::sync::Arc;

use crate::audit::Audit;
use crate::config::Config;
use crate::pipeline::{self, Gateway, Recovery, Stores};
use crate::store::{FileRequestLog, MarkEntry, Recovered, ReplayGuard, RequestLog};

use super::{blocking, StartError};

/// Decisions in one segment of the request log before it is sealed and checkpointed.
const SEGMENT_RECORDS: usize = 4096;

/// Opens the request log (`requests/` in the state directory): the log, the decisions found,
/// and those sorted by store.
pub(super) async fn open(
    config: &Config,
) -> Result<(Arc<FileRequestLog>, Recovered, Recovery), StartError> {
    let dir = config.state.dir.join("requests");
    let (log, recovered) = blocking(move || FileRequestLog::open(&dir, SEGMENT_RECORDS)).await??;
    let recovery = Recovery::of(&recovered.decisions);
    if !recovered.decisions.is_empty() {
        tracing::info!(
            decisions = recovered.decisions.len(),
            "Request log read back into the stores."
        );
    }
    Ok((Arc::new(log), recovered, recovery))
}

/// The anti-replay marks: `replay.journal`, then the log's.
pub(super) async fn replay(
    config: &Config,
    log: &Arc<FileRequestLog>,
    marks: Vec<MarkEntry>,
) -> Result<Arc<ReplayGuard>, StartError> {
    let path = config.state.dir.join("replay.journal");
    let log: Arc<dyn RequestLog> = log.clone();
    Ok(Arc::new(
        blocking(move || ReplayGuard::open(&path, &marks, log)).await??,
    ))
}

/// The audit trail, with the audit records of the log's recovered decisions it lacks copied
/// in; from now on each durable decision's audit record is copied into it.
pub(super) async fn audit(
    config: &Config,
    log: &Arc<FileRequestLog>,
    logged: Vec<Vec<u8>>,
) -> Result<Audit, StartError> {
    let (dir, rotation) = (config.audit.dir(&config.state), config.audit.rotation());
    let audit = blocking(move || Audit::open_after(&dir, rotation, &logged)).await??;
    let trail = audit.clone();
    log.set_trail(Box::new(move |entry| trail.copy_logged(entry)));
    Ok(audit)
}

/// Once every store holds its share of `recovered` durably: the recovered segments go, and the
/// checkpoint starts.
pub(super) async fn start(
    log: &Arc<FileRequestLog>,
    recovered: Recovered,
    precommands: Vec<Vec<u8>>,
    gateway: &Gateway,
) -> Result<(), StartError> {
    let ledger = &gateway.ledgers.precommands;
    ledger.recover(&precommands);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    ledger
        .checkpoint(&precommands, now)
        .await
        .map_err(StartError::Ledger)?;
    let opened = Arc::clone(log);
    blocking(move || opened.release_recovered(recovered)).await??;
    let stores = Stores {
        replay: Arc::clone(&gateway.replay),
        dispatcher: Arc::clone(&gateway.routing.dispatcher),
        holds: Arc::clone(&gateway.dsp.holds),
        precommands: Arc::clone(&gateway.ledgers.precommands),
        audit: gateway.audit.clone(),
    };
    tokio::spawn(pipeline::checkpoint(Arc::clone(log), stores));
    Ok(())
}
