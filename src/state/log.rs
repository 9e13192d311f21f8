//! Where the state's changes are made durable before they are visible: the embedded journals
//! of one process (`registry-changes.journal`, `user-changes.journal` under `[state] dir`), or
//! the change log in the cluster's PostgreSQL, which every instance follows. The writers' path
//! in [`super::State`] is the same for both; only the cluster's log can say that another
//! instance wrote first ([`Appended::Behind`]).

use crate::cluster::{AppendError, Cluster, ClusterError, LoggedBatch};
use crate::register::UserChange;
use crate::registry::Change;
use crate::store::{ChangeLog, JournalError, UserChangeLog};

/// The state's durable change log.
pub enum StateLog {
    /// The journals of one process.
    Embedded {
        changes: ChangeLog,
        user_changes: UserChangeLog,
    },
    /// The cluster's change log in PostgreSQL.
    Cluster(Cluster),
}

/// Why a change could not be made durable.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the cluster's change log")]
    Cluster(#[from] ClusterError),
    #[error("other instances kept writing first; the change was not applied")]
    Contended,
    #[error("change batch {seq} of the cluster's log does not apply to this instance's state")]
    Diverged { seq: u64 },
}

/// What an append did.
pub(super) enum Appended {
    /// Durable as this number in the log (the embedded User log has none: the number given).
    At(u64),
    /// Not written: the cluster's log is past what this instance has applied.
    Behind,
}

impl StateLog {
    /// Whether an embedded journal's last write failed (`/readyz` says not ready). The cluster's
    /// log fails per call instead.
    pub fn is_failing(&self) -> bool {
        match self {
            Self::Embedded {
                changes,
                user_changes,
            } => changes.is_failing() || user_changes.is_failing(),
            Self::Cluster(_) => false,
        }
    }

    /// Records that the DCC Alerts of every batch up to `seq` (this instance's, in a cluster)
    /// are in the outbox.
    pub async fn mark_alerted(&self, seq: u64) -> Result<(), LogError> {
        match self {
            Self::Embedded { changes, .. } => Ok(changes.mark_alerted(seq).await?),
            Self::Cluster(cluster) => Ok(cluster.mark_alerted(seq).await?),
        }
    }

    /// The cluster, when the log is the cluster's.
    pub fn cluster(&self) -> Option<&Cluster> {
        match self {
            Self::Cluster(cluster) => Some(cluster),
            Self::Embedded { .. } => None,
        }
    }

    /// Makes a batch of registration changes durable after batch `after`.
    pub(super) async fn append_registry(
        &self,
        after: u64,
        at: i64,
        batch: &[Change],
        owes_alerts: bool,
    ) -> Result<Appended, LogError> {
        match self {
            Self::Embedded { changes, .. } => Ok(Appended::At(changes.append(at, batch).await?)),
            Self::Cluster(cluster) => {
                let batch = LoggedBatch::Registry(batch.to_vec());
                appended(cluster.append(after, at, &batch, owes_alerts).await)
            }
        }
    }

    /// Makes a batch of User changes durable after batch `after`.
    pub(super) async fn append_users(
        &self,
        after: u64,
        at: i64,
        batch: &[UserChange],
    ) -> Result<Appended, LogError> {
        match self {
            Self::Embedded { user_changes, .. } => {
                user_changes.append(batch).await?;
                Ok(Appended::At(after))
            }
            Self::Cluster(cluster) => {
                let batch = LoggedBatch::Users(batch.to_vec());
                appended(cluster.append(after, at, &batch, false).await)
            }
        }
    }
}

fn appended(result: Result<u64, AppendError>) -> Result<Appended, LogError> {
    match result {
        Ok(seq) => Ok(Appended::At(seq)),
        Err(AppendError::Behind { .. }) => Ok(Appended::Behind),
        Err(AppendError::Cluster(e)) => Err(LogError::Cluster(e)),
    }
}
