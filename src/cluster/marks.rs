//! Anti-replay high-water marks shared by every instance: the rule of `antireplay` as one
//! conditional upsert, so that an originator's counter is accepted at most once and strictly
//! rising across all instances. Only requests of the same originator meet, on its row's lock,
//! for the length of one statement; nothing else is serialised.

use super::log::seq_from as nonnegative;
use super::{Cluster, ClusterError};
use crate::antireplay::{self, Replay};
use crate::domain::{CommandVariant, RequestId, UserId};

/// Why a counter was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error(transparent)]
    Refused(#[from] Replay),
    #[error("the high-water mark could not be read or written")]
    Cluster(#[from] ClusterError),
}

impl From<tokio_postgres::Error> for MarkError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Cluster(ClusterError::Db(e))
    }
}

/// Writes the new mark when the row is new, the counter is above the row's, or (for a Command
/// Variant 5, `$4` its target) the counter is the row's and the row is that target's CV4. A
/// row comes back only when the mark was written.
pub(super) const ADVANCE: &str = "
    INSERT INTO replay_marks AS m (originator, counter, pre_command_for) VALUES ($1, $2, $3)
    ON CONFLICT (originator) DO UPDATE
        SET counter = excluded.counter, pre_command_for = excluded.pre_command_for
        WHERE excluded.counter > m.counter
           OR (excluded.counter = m.counter AND m.pre_command_for = $4)
    RETURNING counter";

/// Sets the mark outright, lower or higher (an operator's reset). Returns the row written.
pub(super) const RESET: &str = "
    INSERT INTO replay_marks AS m (originator, counter, pre_command_for) VALUES ($1, $2, NULL)
    ON CONFLICT (originator) DO UPDATE SET counter = excluded.counter, pre_command_for = NULL
    RETURNING counter";

impl Cluster {
    /// Accepts `id`'s counter if it is new for its originator across every instance (or is the
    /// CV5 twin of the last CV4) and not above `now_ns`; returns once the mark is committed.
    pub async fn advance(
        &self,
        id: &RequestId,
        cv: CommandVariant,
        now_ns: u64,
    ) -> Result<(), MarkError> {
        // The clock bound, and the mark this request leaves, are the pure rule's.
        let mark = antireplay::admit(None, id, cv, now_ns)?;
        let counter = to_db(mark.counter)?;
        let originator = id.originator.to_string();
        let pre_command_for = mark.pre_command_for.map(|d| d.to_string());
        let cv5_of = (cv.get() == 5).then(|| id.target.to_string());
        let client = self.client().await?;
        let statement = client.prepare_cached(ADVANCE).await?;
        let written = client
            .query_opt(
                &statement,
                &[&originator, &counter, &pre_command_for, &cv5_of],
            )
            .await?;
        if written.is_some() {
            return Ok(());
        }
        let last = self.mark(&id.originator).await?.unwrap_or_default();
        Err(MarkError::Refused(Replay::NotIncreasing {
            counter: id.counter,
            last,
        }))
    }

    /// The last counter accepted from `originator` by any instance, if any.
    pub async fn mark(&self, originator: &UserId) -> Result<Option<u64>, ClusterError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT counter FROM replay_marks WHERE originator = $1",
                &[&originator.to_string()],
            )
            .await?;
        row.map(|r| nonnegative(r.get(0))).transpose()
    }

    /// Sets `originator`'s mark to `counter` (lower or higher than it was): an operator's way
    /// back for a User whose client sent a counter it cannot follow.
    pub async fn reset_mark(&self, originator: &UserId, counter: u64) -> Result<(), MarkError> {
        let client = self.client().await?;
        client
            .execute(RESET, &[&originator.to_string(), &to_db(counter)?])
            .await?;
        Ok(())
    }
}

/// Counters are at most the time in nanoseconds since 1970 (the rule's bound), which fits an
/// `i64` until 2262.
pub(super) fn to_db(counter: u64) -> Result<i64, ClusterError> {
    i64::try_from(counter).map_err(|_| ClusterError::Unreadable {
        what: format!("a counter past i64 ({counter})"),
    })
}
