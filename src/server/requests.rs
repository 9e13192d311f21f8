//! Start-up of the request log. Embedded: `requests/` in the state directory, opened first, its
//! decisions not yet checkpointed sorted by the store they go to (each store reads its share
//! when it opens and makes it durable in its own file; the audit trail copies the records it
//! lacks), released once every store has, and then checkpointed in the background for as long
//! as the gateway runs. Cluster mode: the log in PostgreSQL, this instance's open entries read
//! back and taken up by the stores in memory (not copied into their files: the rows stay the
//! record); the stores tell the log what they settle, the entries it claims from gone instances
//! are taken up as they come, and the entries each instance keeps in its own files (its audit
//! records, local commands, counted requests) are written there once their batch has
//! committed; pre-commands are the cluster's (read from PostgreSQL by the instance a signed
//! pre-command reaches).

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::audit::Audit;
use crate::cluster::{counts, Cluster, CountFeed, PgRequestLog};
use crate::config::Config;
use crate::pipeline::{self, Gateway, Recovery, Stores};
use crate::store::{
    CommitError, Decision, EntryKind, FileRequestLog, MarkEntry, Recovered, ReplayGuard,
    RequestLog, SharedEntries, Tallied,
};

use super::{blocking, StartError};

/// Decisions in one segment of the request log before it is sealed and checkpointed.
const SEGMENT_RECORDS: usize = 4096;

/// The request log in force, and what its start still owes.
pub(super) enum Log {
    File {
        log: Arc<FileRequestLog>,
        recovered: Recovered,
    },
    Cluster {
        /// Boxed: the pool's handle is the size of the rest of the enum.
        cluster: Box<Cluster>,
        log: Arc<PgRequestLog>,
        /// This instance's open entries, as found at the start.
        recovered: Vec<Decision>,
        claimed: mpsc::Receiver<crate::cluster::Claimed>,
    },
}

impl Log {
    /// The log, as the pipeline and the anti-replay guard commit to it.
    pub(super) fn shared(&self) -> Arc<dyn RequestLog> {
        match self {
            Self::File { log, .. } => log.clone(),
            Self::Cluster { log, .. } => log.clone(),
        }
    }
}

/// Opens the request log (`requests/` in the state directory, or in cluster mode PostgreSQL):
/// the log, and the decisions found sorted by store.
pub(super) async fn open(config: &Config) -> Result<(Log, Recovery), StartError> {
    if let Some(cluster) = &config.cluster {
        let cluster = Cluster::connect(&cluster.postgres_url, &config.instance_name())?;
        let opened = PgRequestLog::open(cluster.clone(), pipeline::entry_key).await?;
        if !opened.recovered.is_empty() {
            tracing::info!(
                entries = opened.recovered.len(),
                "Open entries read back from the cluster's request log."
            );
        }
        let log = Log::Cluster {
            cluster: Box::new(cluster),
            log: opened.log,
            recovered: opened.recovered,
            claimed: opened.claimed,
        };
        // Nothing for the stores' own files: the entries stay PostgreSQL's (so a restart after
        // another instance claimed them finds none in `pending/`), taken up at `start`.
        return Ok((log, Recovery::default()));
    }
    let dir = config.state.dir.join("requests");
    let (log, recovered) = blocking(move || FileRequestLog::open(&dir, SEGMENT_RECORDS)).await??;
    let recovery = Recovery::of(&recovered.decisions);
    if !recovered.decisions.is_empty() {
        tracing::info!(
            decisions = recovered.decisions.len(),
            "Request log read back into the stores."
        );
    }
    let log = Log::File {
        log: Arc::new(log),
        recovered,
    };
    Ok((log, recovery))
}

/// The anti-replay marks: `replay.journal`, then the log's. In cluster mode these are only
/// this instance's first word: every mark is decided again by PostgreSQL in its commit.
pub(super) async fn replay(
    config: &Config,
    log: Arc<dyn RequestLog>,
    marks: Vec<MarkEntry>,
) -> Result<Arc<ReplayGuard>, StartError> {
    let path = config.state.dir.join("replay.journal");
    Ok(Arc::new(
        blocking(move || ReplayGuard::open(&path, &marks, log)).await??,
    ))
}

/// The audit trail. Embedded: with the audit records of the log's recovered decisions it lacks
/// copied in; from then on each durable decision's audit record is copied into it. Cluster
/// mode: the instance's own trail, written by the log's local sink (`start`).
pub(super) async fn audit(
    config: &Config,
    log: &Log,
    logged: Vec<Vec<u8>>,
) -> Result<Audit, StartError> {
    let (dir, rotation) = (config.audit.dir(&config.state), config.audit.rotation());
    let audit = blocking(move || Audit::open_after(&dir, rotation, &logged)).await??;
    if let Log::File { log, .. } = log {
        let trail = audit.clone();
        log.set_trail(Box::new(move |entry| trail.copy_logged(entry)));
    }
    Ok(audit)
}

/// Once every store holds its share of the recovered decisions (the pre-commands, local
/// commands and counted requests among them are taken here): embedded, the recovered segments
/// go and the checkpoint starts; in cluster mode, the stores settle through the log, the entries
/// kept locally go to their files, and claimed entries are taken up.
pub(super) async fn start(
    log: Log,
    (precommands, counts): (Vec<Vec<u8>>, Vec<Tallied>),
    gateway: &Arc<Gateway>,
) -> Result<(), StartError> {
    match log {
        Log::File { log, recovered } => {
            let ledger = &gateway.ledgers.precommands;
            ledger.recover(&precommands);
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            ledger
                .checkpoint(&precommands, now)
                .await
                .map_err(StartError::Ledger)?;
            let local_commands: Vec<Vec<u8>> = (recovered.decisions.iter())
                .flat_map(|d| &d.entries)
                .filter(|e| e.kind == EntryKind::LocalCommand)
                .map(|e| e.bytes.clone())
                .collect();
            let ledger = &gateway.ledgers.local_commands;
            ledger.recover(&local_commands);
            ledger
                .checkpoint(&local_commands, now)
                .await
                .map_err(StartError::Ledger)?;
            gateway
                .anomaly
                .recount(&counts)
                .await
                .map_err(StartError::AnomalyJournal)?;
            let opened = Arc::clone(&log);
            blocking(move || opened.release_recovered(recovered)).await??;
            let stores = Stores {
                replay: Arc::clone(&gateway.replay),
                dispatcher: Arc::clone(&gateway.routing.dispatcher),
                holds: Arc::clone(&gateway.dsp.holds),
                precommands: Arc::clone(&gateway.ledgers.precommands),
                counts: Arc::clone(&gateway.anomaly.count_log),
                quarantine: Arc::clone(&gateway.anomaly.quarantine),
                local_commands: Arc::clone(&gateway.ledgers.local_commands),
                audit: gateway.audit.clone(),
            };
            tokio::spawn(pipeline::checkpoint(log, stores));
        }
        Log::Cluster {
            cluster,
            log,
            recovered,
            claimed,
        } => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let (counted, feed) = cluster.counts(now).await?;
            gateway.anomaly.count_shared(&counted);
            let changed = Arc::clone(&gateway.anomaly.changed);
            tokio::spawn(share_counts(feed, changed, Arc::downgrade(gateway)));
            log.keep_locally(local_sink(gateway));
            gateway.routing.dispatcher.settle_in(log.clone());
            gateway.dsp.holds.settle_in(log);
            let shared: Arc<dyn SharedEntries> = Arc::new(*cluster.clone());
            let _ = gateway.anomaly.shared.set(shared);
            let first = cluster.reference_block().await?;
            gateway.anomaly.quarantine.references_from(first);
            // This instance's own open entries, taken up as a claim's are: in memory, the
            // commands sent again.
            gateway.adopt(&recovered);
            tokio::spawn(take_up_claims(Arc::downgrade(gateway), claimed));
        }
    }
    Ok(())
}

/// Takes up what this instance claims from gone ones, for as long as the gateway runs: their
/// entries as its own open ones, their DCC-alert obligations raised.
async fn take_up_claims(
    gateway: std::sync::Weak<Gateway>,
    mut claimed: mpsc::Receiver<crate::cluster::Claimed>,
) {
    while let Some(claim) = claimed.recv().await {
        let Some(gateway) = gateway.upgrade() else {
            return;
        };
        gateway.adopt(&claim.entries);
        if !claim.alerts.is_empty() {
            tokio::spawn(raise_claimed(Arc::clone(&gateway.state), claim.alerts));
        }
    }
}

/// Raises the DCC Alerts of change batches whose obligations this instance claimed from a gone
/// one. If they cannot be derived now (PostgreSQL away), they stay this instance's to raise:
/// its next start raises them.
async fn raise_claimed(state: Arc<crate::state::State>, seqs: Vec<u64>) {
    let Some(cluster) = state.change_log().cluster() else {
        return;
    };
    match crate::state::snapshot::claimed_alerts(cluster, seqs).await {
        Ok(owed) => state.raise_owed(owed).await,
        Err(e) => {
            tracing::error!(error = %e, "The DCC Alerts owed by a gone instance could not be derived; this instance raises them at its next start.");
        }
    }
}

/// The other instances' counts added to this one's every `REFRESH`, for as long as the gateway
/// runs. A look that fails is said once and tried again at the next tick; meanwhile this
/// instance decides on the others' counts as last read (`schemas/anomaly.md`, "Several
/// instances").
async fn share_counts(
    mut feed: CountFeed,
    changed: Arc<tokio::sync::Notify>,
    gateway: std::sync::Weak<Gateway>,
) {
    let mut tick = tokio::time::interval(counts::REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut failing, mut anew) = (false, false);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = changed.notified() => anew = true,
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let read = match anew {
            true => feed.again(now).await,
            false => feed.next(now).await,
        };
        let Some(gateway) = gateway.upgrade() else {
            return;
        };
        match read {
            Ok(counted) => {
                if failing {
                    tracing::info!("The other instances' anomaly counts are read again.");
                }
                failing = false;
                match std::mem::take(&mut anew) {
                    true => gateway.anomaly.count_anew(&counted),
                    false => gateway.anomaly.count_shared(&counted),
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "The other instances' anomaly counts could not be read; deciding on those last read.");
            }
            Err(_) => {}
        }
    }
}

/// Cluster mode's writes of the entries an instance keeps in its own files, once their batch
/// has committed: the audit records copied into the trail and fsynced, the local commands into
/// their ledger's journal (as the embedded checkpoint writes them). The requests counted are
/// not among them: they are the cluster's (`cluster::counts`); nor are pre-commands, which are
/// the cluster's rows too.
fn local_sink(gateway: &Gateway) -> crate::cluster::LocalSink {
    let audit = gateway.audit.clone();
    let ledger = Arc::clone(&gateway.ledgers.local_commands);
    Box::new(move |entries| {
        let (audit, ledger) = (audit.clone(), Arc::clone(&ledger));
        Box::pin(async move {
            let mut local = Vec::new();
            for e in entries {
                match e.kind {
                    EntryKind::Audit => audit.copy_logged(&e.bytes),
                    _ => local.push(e.bytes),
                }
            }
            if !local.is_empty() {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                ledger
                    .checkpoint(&local, now)
                    .await
                    .map_err(CommitError::Journal)?;
            }
            audit
                .sync()
                .durable()
                .await
                .map_err(|e| CommitError::Database(Box::new(e)))
        })
    })
}
