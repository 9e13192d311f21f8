//! A start's and a checkpoint's side of the request log: the decisions it hands back sorted
//! by the store each part goes to ([`Recovery`]), and the background copy of each sealed
//! segment into those stores' own files ([`checkpoint`]).

use std::sync::Arc;
use std::time::Duration;

use crate::audit::Audit;
use crate::dispatch::Dispatcher;
use crate::routing::SignedCommand;
use crate::store::{
    CountLog, Decision, EntryKind, FileRequestLog, Held, Holds, Ledger, MarkEntry, Quarantine,
    Quarantined, ReplayGuard, Tallied,
};

use super::critical::HeldPreCommand;
use super::local::LocalCommand;

/// The request log's decisions at a start, by the store each part goes to.
#[derive(Default)]
pub struct Recovery {
    pub marks: Vec<MarkEntry>,
    pub commands: Vec<SignedCommand>,
    pub holds: Vec<Held>,
    /// The requests' audit records (`audit::logged`), for the trail to copy those it lacks.
    pub audit: Vec<Vec<u8>>,
    /// Pre-commands issued and used (the pre-command ledger's records).
    pub precommands: Vec<Vec<u8>>,
    /// Requests anomaly detection counted (the count journal's records).
    pub counts: Vec<Tallied>,
    /// Requests anomaly detection quarantined.
    pub quarantined: Vec<Quarantined>,
    /// Commands sent for local delivery and answered (the local-command ledger's records).
    pub local_commands: Vec<Vec<u8>>,
}

impl Recovery {
    /// Sorts `decisions` (in log order) by store.
    pub fn of(decisions: &[Decision]) -> Self {
        let mut r = Self::default();
        for d in decisions {
            r.marks.extend(d.mark);
            for e in &d.entries {
                match e.kind {
                    EntryKind::Pending => {
                        r.commands.push(SignedCommand::from_bytes(e.bytes.clone()));
                    }
                    EntryKind::Hold => match Held::from_record(&e.bytes) {
                        Some(h) => r.holds.push(h),
                        None => tracing::warn!(
                            "A held request in the request log does not read; skipped."
                        ),
                    },
                    EntryKind::Audit => r.audit.push(e.bytes.clone()),
                    EntryKind::PreCommand | EntryKind::PreCommandUse => {
                        r.precommands.push(e.bytes.clone());
                    }
                    EntryKind::LocalCommand => r.local_commands.push(e.bytes.clone()),
                    EntryKind::Count => match Tallied::from_record(&e.bytes) {
                        Some(t) => r.counts.push(t),
                        None => tracing::warn!(
                            "A counted request in the request log does not read; skipped."
                        ),
                    },
                    EntryKind::Quarantine => match Quarantined::from_record(&e.bytes) {
                        Some(q) => r.quarantined.push(q),
                        None => tracing::warn!(
                            "A quarantined request in the request log does not read; skipped."
                        ),
                    },
                }
            }
        }
        r
    }
}

/// The stores a checkpoint copies into.
pub struct Stores {
    pub replay: Arc<ReplayGuard>,
    pub dispatcher: Arc<Dispatcher>,
    pub holds: Arc<Holds>,
    pub precommands: Arc<Ledger<HeldPreCommand>>,
    pub counts: Arc<CountLog>,
    pub quarantine: Arc<Quarantine>,
    pub local_commands: Arc<Ledger<LocalCommand>>,
    /// The trail that copies each decision's audit record: fsynced before a segment goes.
    pub audit: Audit,
}

/// Copies each sealed segment of `log` into the stores' own files, then deletes it; runs for as
/// long as the gateway does. A checkpoint that fails is tried again a second later (the
/// segment stays on disk meanwhile, so nothing is lost; the log's bound on sealed segments
/// holds the rest).
pub async fn checkpoint(log: Arc<FileRequestLog>, stores: Stores) {
    loop {
        let sealed = log.next_sealed().await;
        loop {
            match copy(&sealed, &stores)
                .await
                .and_then(|()| log.release(&sealed).map_err(|e| e.to_string()))
            {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, "Request log checkpoint failed; tried again in a second.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

async fn copy(sealed: &crate::store::Sealed, stores: &Stores) -> Result<(), String> {
    let decisions = sealed.decisions().await.map_err(|e| e.to_string())?;
    let r = Recovery::of(&decisions);
    stores
        .replay
        .checkpoint(&r.marks)
        .await
        .map_err(|e| e.to_string())?;
    stores
        .dispatcher
        .checkpoint(&r.commands)
        .await
        .map_err(|e| e.to_string())?;
    stores
        .holds
        .checkpoint(&r.holds)
        .await
        .map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    stores
        .precommands
        .checkpoint(&r.precommands, now)
        .await
        .map_err(|e| e.to_string())?;
    stores
        .local_commands
        .checkpoint(&r.local_commands, now)
        .await
        .map_err(|e| e.to_string())?;
    stores
        .counts
        .checkpoint(&r.counts)
        .await
        .map_err(|e| e.to_string())?;
    stores
        .quarantine
        .checkpoint(&r.quarantined)
        .await
        .map_err(|e| e.to_string())?;
    // Every audit entry of the segment was handed to the trail before its gate was free.
    stores
        .audit
        .sync()
        .durable()
        .await
        .map_err(|e| e.to_string())
}
