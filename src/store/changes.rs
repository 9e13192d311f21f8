//! The registration change log: every batch of live changes the admin API accepts is journalled
//! (one record a batch, all or nothing) before it is applied, and replayed over the registration
//! files at start, in order.

use std::path::Path;

use super::journal::{Journal, JournalError};
use crate::registry::Change;

#[derive(Debug, thiserror::Error)]
pub enum ChangeLogError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("change log record {index} is not a batch of changes")]
    Record {
        index: usize,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Clone)]
pub struct ChangeLog {
    journal: Journal,
}

impl ChangeLog {
    /// Opens the log and returns every batch in it, oldest first. A record that does not parse
    /// stops the start: skipping it could drop a change of supplier and leave the old supplier
    /// its access.
    pub fn open(path: &Path) -> Result<(Self, Vec<Vec<Change>>), ChangeLogError> {
        let (journal, records) = Journal::open(path)?;
        let batches = records
            .iter()
            .enumerate()
            .map(|(index, r)| {
                serde_json::from_slice(r).map_err(|source| ChangeLogError::Record { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((Self { journal }, batches))
    }

    /// Journals one batch; returns once it is on disk.
    pub async fn append(&self, batch: &[Change]) -> Result<(), JournalError> {
        // Serialising these plain values cannot fail.
        let bytes = serde_json::to_vec(batch).unwrap_or_default();
        self.journal.append(bytes).await
    }
}
