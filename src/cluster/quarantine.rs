//! Quarantined requests across instances ([`SharedEntries`]): each is a `request_entries`
//! row of the request log (kind `Q`, keyed by its reference), written in its request's commit
//! and owned, recovered and claimed as pending commands are. An operator's release or delete
//! through any instance takes the row over for that instance, exclusively for [`CLAIM`] (so two
//! instances never release one request at once, and one that dies mid-release leaves it to the
//! next try), and ends it by deleting the row once the request's final effects are durable.

use std::time::Duration;

use super::{Cluster, ClusterError};
use crate::store::{CommitError, EntryKind, SharedEntries, SharedFuture};

/// How long a release or delete holds a quarantined request against the others.
pub const CLAIM: Duration = Duration::from_secs(60);

/// References per instance start: a start's block is its number times this.
const BLOCK: u64 = 1 << 32;

impl Cluster {
    /// The first quarantine reference this start hands out: a block no other start has.
    pub async fn reference_block(&self) -> Result<u64, ClusterError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one("SELECT nextval('reference_blocks')", &[])
            .await?
            .get(0);
        Ok(u64::try_from(n).unwrap_or_default().saturating_mul(BLOCK))
    }
}

fn tag() -> String {
    char::from(EntryKind::Quarantine.tag()).to_string()
}

fn failed(e: ClusterError) -> CommitError {
    CommitError::Database(Box::new(e))
}

impl SharedEntries for Cluster {
    fn list(&self) -> SharedFuture<'_, Vec<Vec<u8>>> {
        Box::pin(async move {
            let client = self.client().await.map_err(failed)?;
            let rows = client
                .query(
                    "SELECT bytes FROM request_entries WHERE kind = $1",
                    &[&tag()],
                )
                .await
                .map_err(|e| failed(e.into()))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn claim(&self, reference: u64) -> SharedFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            let client = self.client().await.map_err(failed)?;
            let row = client
                .query_opt(
                    "UPDATE request_entries
                     SET owner = $3, claimed_until = now() + make_interval(secs => $4)
                     WHERE kind = $1 AND key = $2
                       AND (claimed_until IS NULL OR claimed_until < now())
                     RETURNING bytes",
                    &[
                        &tag(),
                        &reference.to_string(),
                        &self.instance(),
                        &CLAIM.as_secs_f64(),
                    ],
                )
                .await
                .map_err(|e| failed(e.into()))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn unclaim(&self, reference: u64) -> SharedFuture<'_, ()> {
        Box::pin(async move {
            let client = self.client().await.map_err(failed)?;
            client
                .execute(
                    "UPDATE request_entries SET claimed_until = NULL
                     WHERE kind = $1 AND key = $2",
                    &[&tag(), &reference.to_string()],
                )
                .await
                .map_err(|e| failed(e.into()))?;
            Ok(())
        })
    }

    fn precommand(&self, request: String) -> SharedFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            let client = self.client().await.map_err(failed)?;
            let kind = char::from(EntryKind::PreCommand.tag()).to_string();
            let row = client
                .query_opt(
                    "SELECT bytes FROM request_entries WHERE kind = $1 AND key = $2",
                    &[&kind, &request],
                )
                .await
                .map_err(|e| failed(e.into()))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn end(&self, reference: u64) -> SharedFuture<'_, ()> {
        Box::pin(async move {
            let client = self.client().await.map_err(failed)?;
            client
                .execute(
                    "DELETE FROM request_entries WHERE kind = $1 AND key = $2",
                    &[&tag(), &reference.to_string()],
                )
                .await
                .map_err(|e| failed(e.into()))?;
            Ok(())
        })
    }
}
