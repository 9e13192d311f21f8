//! Who owns the request log's open entries: each instance's heartbeat in `instances`, its own
//! entries read back at a start, and the entries of an instance gone past its lease claimed by
//! a live one.
//!
//! A claim is one statement: the gone instances' rows locked with `FOR UPDATE SKIP LOCKED` (two
//! instances claiming at once take disjoint sets, and neither waits on the other), their
//! entries and the DCC-alert obligations they owed (`change_alerts.owner`) moved to the
//! claimer, their rows deleted (an instance that comes back says it is
//! alive again and starts with no entries). An instance taken for gone that was only slow may
//! still settle an entry it had: the row goes, and the claimer's copy is answered too — an
//! answer twice, never none.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::requests::{HEARTBEAT, LEASE};
use super::{Cluster, ClusterError};
use crate::store::{Decision, Entry, EntryKind};

impl Cluster {
    /// Says this instance is alive now.
    pub async fn heartbeat(&self) -> Result<(), ClusterError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO instances (name, last_seen) VALUES ($1, now())
                 ON CONFLICT (name) DO UPDATE SET last_seen = now()",
                &[&self.instance],
            )
            .await?;
        Ok(())
    }

    /// This instance's open entries, oldest first, one decision each.
    pub async fn own_entries(&self) -> Result<Vec<Decision>, ClusterError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT kind, bytes FROM request_entries WHERE owner = $1 ORDER BY created_at",
                &[&self.instance],
            )
            .await?;
        Ok(decisions(&rows))
    }

    /// Moves the entries of every instance unseen for `lease` to this one, and the DCC-alert
    /// obligations those instances owed; returns them.
    pub async fn claim(&self, lease: std::time::Duration) -> Result<Claimed, ClusterError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "WITH gone AS (
                     SELECT name FROM instances
                     WHERE name <> $1 AND last_seen < now() - make_interval(secs => $2)
                     FOR UPDATE SKIP LOCKED),
                 forgotten AS (
                     DELETE FROM instances i USING gone WHERE i.name = gone.name),
                 moved AS (
                     UPDATE request_entries e SET owner = $1 FROM gone
                     WHERE e.owner = gone.name
                     RETURNING e.kind, e.bytes, e.created_at),
                 owed AS (
                     UPDATE change_alerts a SET owner = $1 FROM change_log l, gone
                     WHERE a.seq = l.seq AND a.done_at IS NULL
                       AND coalesce(a.owner, l.origin) = gone.name
                     RETURNING a.seq)
                 SELECT kind, bytes, NULL::bigint AS seq, created_at FROM moved
                 UNION ALL SELECT NULL, NULL, seq, NULL FROM owed
                 ORDER BY created_at, seq",
                &[&self.instance, &lease.as_secs_f64()],
            )
            .await?;
        let (entries, owed): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|row| row.get::<_, Option<&str>>(0).is_some());
        let alerts = owed
            .iter()
            .filter_map(|row| row.get::<_, Option<i64>>(2))
            .map(super::log::seq_from)
            .collect::<Result<_, _>>()?;
        Ok(Claimed {
            entries: decisions(&entries),
            alerts,
        })
    }
}

/// What a claim moved to this instance.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The gone instances' open entries, one decision each, oldest first.
    pub entries: Vec<Decision>,
    /// The change batches whose DCC Alerts they owed, in order: this instance owes them now.
    pub alerts: Vec<u64>,
}

impl Claimed {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.alerts.is_empty()
    }
}

/// Rows of (kind, bytes) as decisions of one entry each; a kind this version does not know is
/// skipped (and said).
fn decisions(rows: &[tokio_postgres::Row]) -> Vec<Decision> {
    rows.iter()
        .filter_map(|row| {
            let kind: &str = row.get(0);
            let tag = kind.bytes().next().filter(|_| kind.len() == 1);
            let Some(kind) = tag.and_then(EntryKind::from_tag) else {
                tracing::warn!(kind, "A request log entry of an unknown kind; skipped.");
                return None;
            };
            Some(Decision {
                mark: None,
                entries: vec![Entry {
                    kind,
                    bytes: row.get(1),
                }],
            })
        })
        .collect()
}

/// Every [`HEARTBEAT`]: says this instance is alive (a failure makes the log say it is failing,
/// so `/readyz` says not ready while PostgreSQL is away), then claims gone instances' entries
/// and DCC-alert obligations and hands them to `found`. Runs until `found`'s receiver is
/// dropped.
pub(super) async fn run(cluster: Cluster, failing: Arc<AtomicBool>, found: mpsc::Sender<Claimed>) {
    let mut every = tokio::time::interval(HEARTBEAT);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // The instance that took the claims has stopped.
        if found.is_closed() {
            return;
        }
        let beat = tokio::time::timeout(super::requests::BATCH_TIMEOUT, async {
            cluster.heartbeat().await?;
            cluster.claim(LEASE).await
        })
        .await
        .unwrap_or(Err(ClusterError::TimedOut));
        match beat {
            Ok(claimed) => {
                failing.store(false, Ordering::Relaxed);
                if claimed.is_empty() {
                    continue;
                }
                tracing::warn!(
                    entries = claimed.entries.len(),
                    change_batches = claimed.alerts.len(),
                    "Open entries and owed DCC Alerts of a gone instance claimed; its commands are sent again and its alerts raised."
                );
                if found.send(claimed).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                failing.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "The request log's heartbeat failed.");
            }
        }
    }
}
