//! Anomaly detection's counts shared by every instance (`anomaly_counts`, migration 0003).
//!
//! Each instance counts the requests it screens in its own memory at once (`tally`), and its
//! request log writes them here in the batch transaction that commits their decisions
//! ([`write_counts`]: one statement per batch, pipelined with the entries'), one row per
//! (instance, User, role, variant, minute) holding that instance's total. Every
//! [`REFRESH`] each instance reads what the others wrote since it last looked ([`CountFeed`])
//! and adds it to its memory, so it decides on its own counts, exact, and the others' as of at
//! most [`REFRESH`] plus their commit ago. A start reads the whole window back, every
//! instance's rows (its own earlier ones included), so a restart launders nothing.
//!
//! Reading "since it last looked" without missing a commit: each look is one repeatable-read
//! transaction that notes its snapshot's `xmin` (no transaction that commits later can have an
//! older xid) and reads the rows whose `xid` (the transaction that wrote them last) is at least
//! the previous look's. A row seen again is taken as the difference from the total last seen
//! for it; those totals are kept while a row may be read again (its xid not below the
//! watermark) or written again (its minute among the last [`SEEN_MINUTES`], the only ones still
//! written). A row of an older minute written again — a clock more than that far behind — is
//! taken whole: counted twice, never missed, so a threshold trips early, not late.
//!
//! Bounds: the rows kept are the distinct (instance, User, role, variant, minute) counted in the
//! last 25 hours — requests only count where a threshold names their User (or all Users) and
//! variant, so the keys are bounded by the threshold set and the register; one look reads the
//! rows written since the last, at most [`MAX_ROWS`] (more are left for the next look).

use std::collections::HashMap;
use std::time::Duration;

use super::{Cluster, ClusterError};
use crate::store::Tallied;

/// How often an instance reads the other instances' counts. With the batch's commit, the time
/// one instance's request takes to count on another: what the overshoot is bounded by
/// (`schemas/anomaly.md`).
pub const REFRESH: Duration = Duration::from_millis(100);

/// Minutes of rows kept: the day window and the hour its oldest step is in, as the embedded
/// count journal keeps.
const KEPT_MINUTES: i64 = 25 * 60;

/// Minutes back whose rows' totals an instance remembers, to count a row seen again by its
/// difference. A row is written while its minute is the writers' current one (and, for a batch
/// committed late, up to its transaction's bound of a few seconds later).
const SEEN_MINUTES: i64 = 10;

/// Rows one look reads at most; the rest wait for the next look.
const MAX_ROWS: i64 = 100_000;

/// A row's identity: (instance, User, role, variant, minute), as the database writes them.
type RowKey = (String, String, String, String, i64);

/// Adds `counted` (the batch's requests anomaly detection counted) to this instance's rows, in
/// the batch's transaction: one statement, the requests of one key and minute summed first.
pub(super) async fn write_counts<'a>(
    tx: &deadpool_postgres::Transaction<'_>,
    instance: &str,
    counted: impl Iterator<Item = &'a Tallied>,
) -> Result<(), ClusterError> {
    let mut rows: HashMap<(String, String, String, i64), i64> = HashMap::new();
    for t in counted {
        let key = (
            t.user.to_string(),
            t.role.to_string(),
            t.srv.to_string(),
            t.minute,
        );
        *rows.entry(key).or_default() += i64::from(t.n);
    }
    if rows.is_empty() {
        return Ok(());
    }
    let (mut users, mut roles, mut srvs, mut minutes, mut ns) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((user, role, srv, minute), n) in rows {
        users.push(user);
        roles.push(role);
        srvs.push(srv);
        minutes.push(minute);
        ns.push(n);
    }
    tx.execute(
        "INSERT INTO anomaly_counts AS c (instance, user_id, role, srv, minute, n, xid)
         SELECT $1, u, r, s, m, n, pg_current_xact_id()
         FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[]) AS x(u, r, s, m, n)
         ON CONFLICT (instance, user_id, role, srv, minute)
         DO UPDATE SET n = c.n + excluded.n, xid = excluded.xid",
        &[&instance, &users, &roles, &srvs, &minutes, &ns],
    )
    .await?;
    Ok(())
}

/// The other instances' counts as they come: where the last look got to, and the totals seen.
pub struct CountFeed {
    cluster: Cluster,
    /// Every row written by a transaction older than this was read (an xid: the oldest
    /// transaction running at the last look, `pg_snapshot_xmin`, or where a bounded look
    /// stopped).
    since: u64,
    /// Each row's total as last seen, and the transaction that wrote it: kept while the row may
    /// be read again (its xid not below `since`) or written again (its minute recent).
    seen: HashMap<RowKey, (i64, u64)>,
    /// When rows out of the window were last deleted (unix seconds).
    pruned: i64,
}

impl Cluster {
    /// Every count of the window ending at `now` (unix seconds), of every instance, oldest
    /// first; and the feed of the other instances' counts from then on.
    pub async fn counts(&self, now: i64) -> Result<(Vec<Tallied>, CountFeed), ClusterError> {
        let from = now.div_euclid(60) - KEPT_MINUTES;
        let mut client = self.client().await?;
        let tx = super::consistent_read(&mut client).await?;
        let since = snapshot_xmin(&tx).await?;
        let rows = tx
            .query(
                "SELECT user_id, role, srv, minute, sum(n)::int8 FROM anomaly_counts
                 WHERE minute >= $1 GROUP BY user_id, role, srv, minute ORDER BY minute",
                &[&from],
            )
            .await?;
        let all = rows
            .iter()
            .filter_map(|r| tallied(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        let recent = tx
            .query(
                "SELECT instance, user_id, role, srv, minute, n, xid::text FROM anomaly_counts
                 WHERE (minute >= $1 OR xid >= $3::text::xid8) AND instance <> $2",
                &[
                    &(now.div_euclid(60) - SEEN_MINUTES),
                    &self.instance,
                    &since.to_string(),
                ],
            )
            .await?;
        tx.commit().await?;
        let seen = recent
            .iter()
            .map(|r| (row_key(r), (r.get(5), xid_of(r))))
            .collect();
        let feed = CountFeed {
            cluster: self.clone(),
            since,
            seen,
            pruned: now,
        };
        Ok((all, feed))
    }
}

impl CountFeed {
    /// The requests the other instances counted since the last look, at `now` (unix seconds);
    /// once a minute, the rows out of the window deleted too.
    pub async fn next(&mut self, now: i64) -> Result<Vec<Tallied>, ClusterError> {
        let mut client = self.cluster.client().await?;
        let tx = super::consistent_read(&mut client).await?;
        let xmin = snapshot_xmin(&tx).await?;
        let rows = tx
            .query(
                "SELECT instance, user_id, role, srv, minute, n, xid::text FROM anomaly_counts
                 WHERE xid >= $1::text::xid8 AND instance <> $2 ORDER BY xid LIMIT $3",
                &[&self.since.to_string(), &self.cluster.instance, &MAX_ROWS],
            )
            .await?;
        tx.commit().await?;
        let mut out = Vec::new();
        for r in &rows {
            let (total, xid): (i64, u64) = (r.get(5), xid_of(r));
            let before = self
                .seen
                .insert(row_key(r), (total, xid))
                .map_or(0, |s| s.0);
            if total > before {
                out.extend(tallied(
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    total - before,
                ));
            }
        }
        // A transaction still running at this look has an xid of at least `xmin`; past the
        // bound, the rows not read are from the last one's xid on (read again from there: a
        // row seen twice counts by its difference).
        self.since = match rows.last() {
            Some(last) if rows.len() as i64 == MAX_ROWS => xmin.min(xid_of(last)),
            _ => xmin,
        };
        let (since, oldest) = (self.since, now.div_euclid(60) - SEEN_MINUTES);
        self.seen
            .retain(|k, (_, xid)| k.4 >= oldest || *xid >= since);
        if now - self.pruned >= 60 {
            self.pruned = now;
            self.prune(now).await?;
        }
        Ok(out)
    }

    /// Every count of the window ending at `now`, of every instance, read again (as at a
    /// start); the feed goes on from this read.
    pub async fn again(&mut self, now: i64) -> Result<Vec<Tallied>, ClusterError> {
        let (all, fresh) = self.cluster.counts(now).await?;
        *self = fresh;
        Ok(all)
    }

    /// Deletes every instance's rows older than the window (any instance may; they agree).
    async fn prune(&self, now: i64) -> Result<(), ClusterError> {
        let client = self.cluster.client().await?;
        let before = now.div_euclid(60) - KEPT_MINUTES;
        let deleted = client
            .execute("DELETE FROM anomaly_counts WHERE minute < $1", &[&before])
            .await?;
        if deleted > 0 {
            tracing::debug!(deleted, "Anomaly counts older than a day deleted.");
        }
        Ok(())
    }

    /// Rows whose totals are remembered (for tests and the log).
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }
}

/// The oldest transaction still running as the transaction `tx` sees it: every transaction
/// that commits after this look has an xid at least this.
async fn snapshot_xmin(tx: &deadpool_postgres::Transaction<'_>) -> Result<u64, ClusterError> {
    let text: String = tx
        .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
        .await?
        .get(0);
    text.parse().map_err(|_| ClusterError::Unreadable {
        what: format!("a transaction ID {text:?}"),
    })
}

/// The row's xid (its seventh column, as text); a row that has none that reads is taken as
/// written by the oldest transaction (kept, never skipped).
fn xid_of(r: &tokio_postgres::Row) -> u64 {
    r.get::<_, &str>(6).parse().unwrap_or(0)
}

fn row_key(r: &tokio_postgres::Row) -> RowKey {
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

/// A row read back as requests counted; one that does not read (written by another version)
/// is skipped and said.
fn tallied(user: &str, role: &str, srv: &str, minute: i64, n: i64) -> Option<Tallied> {
    // A count past u32 (four billion requests of one key in a minute) is as good as infinite.
    let n = u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    let read = (user.parse(), role.parse(), srv.parse());
    let (Ok(user), Ok(role), Ok(srv)) = read else {
        tracing::warn!(
            user,
            role,
            srv,
            "An anomaly count row does not read; skipped."
        );
        return None;
    };
    Some(Tallied {
        user,
        role,
        srv,
        minute,
        n,
    })
}
