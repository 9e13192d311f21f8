//! A cluster instance following the change log: the batches other instances wrote, applied
//! here in order through the same checks and swaps as the writers' own, without journalling
//! them again or raising their DCC Alerts (their writer does). Woken by the log's
//! notifications, and every [`POLL`] regardless.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{LogError, State};
use crate::cluster::log::READ_LIMIT;
use crate::cluster::wake::Wake;
use crate::cluster::{Logged, LoggedBatch};

/// How often the log is read without a notification.
pub const POLL: Duration = Duration::from_millis(500);

impl State {
    /// Applies the cluster's batches after the last one applied here; the caller holds the
    /// writers' lock. Nothing to do for the embedded journals.
    pub(super) async fn catch_up_locked(self: &Arc<Self>) -> Result<(), LogError> {
        let Some(cluster) = self.log.cluster() else {
            return Ok(());
        };
        loop {
            let batches = cluster.since(self.applied()).await?;
            let full = batches.len() as i64 >= READ_LIMIT;
            for logged in &batches {
                self.apply_followed(logged)?;
                self.applied.store(logged.seq, Ordering::Release);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Applies one batch another instance wrote. One that does not apply here means this
    /// instance's state has left the cluster's: it stops following and says so (`/readyz`).
    fn apply_followed(self: &Arc<Self>, logged: &Logged) -> Result<(), LogError> {
        let applied = match &logged.batch {
            LoggedBatch::Registry(batch) => self
                .check_changes(batch)
                .map(|(next, _)| self.install_registry(next, batch)),
            LoggedBatch::Users(batch) => self
                .check_user_changes(batch)
                .map(|next| self.install_users(next, batch)),
        };
        applied.map_err(|e| {
            self.diverged.store(true, Ordering::Relaxed);
            tracing::error!(seq = logged.seq, origin = logged.origin, error = %e, "A change another instance made does not apply here; this instance stops following the change log.");
            LogError::Diverged { seq: logged.seq }
        })
    }

    /// Follows the cluster's change log until `shutdown`: each wake-up (or [`POLL`]) applies
    /// what other instances wrote since.
    pub async fn follow(self: Arc<Self>, wake: Wake, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => return,
            }
            if self.diverged.load(Ordering::Relaxed) {
                continue;
            }
            let _writer = self.change_lock.lock().await;
            if let Err(e) = self.catch_up_locked().await {
                tracing::warn!(error = %e, "Following the change log failed; trying again.");
            }
        }
    }
}
