//! The change log every instance appends to and follows: batches of registration changes and
//! of User changes, numbered 1, 2, 3… without gaps in commit order, so that an instance that has
//! applied every batch up to `n` only ever needs the ones after `n`.
//!
//! A writer appends under a transaction-scoped lock, and only if it has applied every batch
//! before its own (else it is told how far the log is, catches up and decides again): each
//! batch was checked against the state every instance will have when it applies it. The lock
//! serialises writers of changes only (the admin API's rate); readers never take it. A batch's
//! DCC-alert obligation is written in the batch's own transaction, and one `NOTIFY` per
//! transaction wakes the followers (the payload is the new sequence number; they read the rows).

use serde::{Deserialize, Serialize};

use super::{Cluster, ClusterError};
use crate::register::UserChange;
use crate::registry::Change;

/// The advisory lock change-log writers hold ("dccgw-changes").
const APPEND_LOCK: i64 = 0x6463_6367_7763;
/// The channel followers listen on.
pub const CHANNEL: &str = "dccgw_changes";
/// Batches read in one query at most; a follower further behind reads again.
pub const READ_LIMIT: i64 = 1000;

/// One batch of changes as the log holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoggedBatch {
    Registry(Vec<Change>),
    Users(Vec<UserChange>),
}

impl LoggedBatch {
    fn kind(&self) -> &'static str {
        match self {
            Self::Registry(_) => "registry",
            Self::Users(_) => "users",
        }
    }

    fn changes_json(&self) -> String {
        // Serialising these plain values cannot fail.
        match self {
            Self::Registry(c) => serde_json::to_string(c),
            Self::Users(c) => serde_json::to_string(c),
        }
        .unwrap_or_default()
    }
}

/// A batch read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    pub seq: u64,
    /// When it was applied (unix seconds).
    pub at: i64,
    pub batch: LoggedBatch,
    /// The instance that wrote it.
    pub origin: String,
    /// Whether its DCC Alerts are still owed (not yet marked as in an outbox).
    pub owes_alerts: bool,
    /// The instance that owes them: the origin, or the instance that claimed them from it.
    pub alerts_owner: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the change log is at {latest}, past the batches applied here")]
    Behind { latest: u64 },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl From<tokio_postgres::Error> for AppendError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Cluster(ClusterError::Db(e))
    }
}

impl Cluster {
    /// Appends `batch` as number `after + 1`, if the log ends at `after` (else
    /// [`AppendError::Behind`], nothing written). `owes_alerts` records, in the same commit,
    /// that the batch's DCC Alerts are owed. Returns the batch's number once committed.
    pub async fn append(
        &self,
        after: u64,
        at: i64,
        batch: &LoggedBatch,
        owes_alerts: bool,
    ) -> Result<u64, AppendError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
            .await?;
        let latest = seq_from(tx.query_one(LATEST, &[]).await?.get(0))?;
        if latest != after {
            return Err(AppendError::Behind { latest });
        }
        let seq = after + 1;
        let seq_db = seq_to_db(seq)?;
        tx.execute(
            "INSERT INTO change_log (seq, at, kind, changes, origin)
             VALUES ($1, $2, $3, $4::text::jsonb, $5)",
            &[
                &seq_db,
                &at,
                &batch.kind(),
                &batch.changes_json(),
                &self.instance,
            ],
        )
        .await?;
        if owes_alerts {
            tx.execute("INSERT INTO change_alerts (seq) VALUES ($1)", &[&seq_db])
                .await?;
        }
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &seq.to_string()])
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// The batches after `after`, oldest first, at most [`READ_LIMIT`] of them.
    pub async fn since(&self, after: u64) -> Result<Vec<Logged>, ClusterError> {
        let client = self.client().await?;
        read_since(&client, after, READ_LIMIT).await
    }

    /// The last batch's number (0 for an empty log).
    pub async fn latest(&self) -> Result<u64, ClusterError> {
        let client = self.client().await?;
        seq_from(client.query_one(LATEST, &[]).await?.get(0))
    }

    /// Records that the DCC Alerts of every batch this instance owes (wrote, or claimed), up to
    /// `seq`, are in its outbox.
    pub async fn mark_alerted(&self, seq: u64) -> Result<(), ClusterError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE change_alerts a SET done_at = now()
                 FROM change_log l
                 WHERE a.seq = l.seq AND a.done_at IS NULL AND a.seq <= $1
                   AND coalesce(a.owner, l.origin) = $2",
                &[&seq_to_db(seq)?, &self.instance],
            )
            .await?;
        Ok(())
    }
}

const LATEST: &str = "SELECT coalesce(max(seq), 0) FROM change_log";

/// Reads the batches after `after` through `client` (a pooled client or a transaction).
pub(super) async fn read_since(
    client: &impl deadpool_postgres::GenericClient,
    after: u64,
    limit: i64,
) -> Result<Vec<Logged>, ClusterError> {
    let rows = client
        .query(
            "SELECT l.seq, l.at, l.kind, l.changes::text, l.origin,
                    (a.seq IS NOT NULL AND a.done_at IS NULL), coalesce(a.owner, l.origin)
             FROM change_log l LEFT JOIN change_alerts a ON a.seq = l.seq
             WHERE l.seq > $1 ORDER BY l.seq LIMIT $2",
            &[&seq_to_db(after)?, &limit],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let seq = seq_from(row.get(0))?;
            let kind: &str = row.get(2);
            let changes: &str = row.get(3);
            let unreadable = |e: serde_json::Error| ClusterError::Unreadable {
                what: format!("change batch {seq} ({e})"),
            };
            let batch = match kind {
                "registry" => {
                    LoggedBatch::Registry(serde_json::from_str(changes).map_err(unreadable)?)
                }
                "users" => LoggedBatch::Users(serde_json::from_str(changes).map_err(unreadable)?),
                other => {
                    return Err(ClusterError::Unreadable {
                        what: format!("change batch {seq} of kind {other}"),
                    })
                }
            };
            Ok(Logged {
                seq,
                at: row.get(1),
                batch,
                origin: row.get(4),
                owes_alerts: row.get(5),
                alerts_owner: row.get(6),
            })
        })
        .collect()
}

pub(super) fn seq_from(n: i64) -> Result<u64, ClusterError> {
    u64::try_from(n).map_err(|_| ClusterError::Unreadable {
        what: format!("a negative sequence number ({n})"),
    })
}

pub(super) fn seq_to_db(n: u64) -> Result<i64, ClusterError> {
    i64::try_from(n).map_err(|_| ClusterError::Unreadable {
        what: format!("a sequence number past i64 ({n})"),
    })
}
