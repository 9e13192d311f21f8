//! The registration change log: every batch of live changes the admin API accepts is journalled
//! (one record a batch, all or nothing) before it is applied, and replayed over the registration
//! files at start, in order.
//!
//! The log also records how far the DCC Alerts the batches call for have got: each batch carries
//! a sequence number, and a mark record says "the alerts of every batch up to this one are in the
//! outbox". At start the batches after the last mark are the ones whose alerts may have been
//! lost with the process; the caller derives them again (duplicates, never loss). The log is
//! never rewritten; a compaction of it would have to keep every batch after the last mark, and
//! the mark.
//!
//! Records (JSON): a batch `{"batch": {"seq": 7, "at": 1767225600, "changes": [..]}}`, a mark
//! `{"alerted": 7}`. A bare array of changes is a batch written before sequence numbers (it
//! takes part in the replay, its alerts were sent from memory as they were then).

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::journal::{Journal, JournalError};
use crate::registry::Change;

#[derive(Debug, thiserror::Error)]
pub enum ChangeLogError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("change log record {index} is not a batch of changes or a mark")]
    Record {
        index: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// One journalled batch of changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Its sequence number (from 1, rising); `None` for a batch written before there were any.
    pub seq: Option<u64>,
    /// When it was applied (unix seconds); `None` as for `seq`.
    pub at: Option<i64>,
    pub changes: Vec<Change>,
}

impl Batch {
    /// Whether the DCC Alerts this batch calls for may not all be in the outbox, given the last
    /// mark (`alerted`).
    pub fn owes_alerts(&self, alerted: u64) -> bool {
        self.seq.is_some_and(|seq| seq > alerted)
    }
}

/// What the log held at open.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Every batch, oldest first.
    pub batches: Vec<Batch>,
    /// The highest mark: every batch up to this sequence number has its alerts in the outbox
    /// (0 if none).
    pub alerted: u64,
}

/// One record of the log (externally tagged: `{"batch": {..}}` or `{"alerted": 7}`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Record<C> {
    Batch { seq: u64, at: i64, changes: C },
    Alerted(u64),
}

#[derive(Clone)]
pub struct ChangeLog {
    journal: Journal,
    /// The next batch's sequence number. Held across the append, so numbers follow the order
    /// of the records in the file.
    next: Arc<tokio::sync::Mutex<u64>>,
}

impl ChangeLog {
    /// Whether the log's last write failed (`/readyz` says not ready).
    pub fn is_failing(&self) -> bool {
        self.journal.is_failing()
    }
    /// Opens the log and returns every batch in it, oldest first, and the last mark. A record
    /// that does not parse stops the start: skipping it could drop a change of supplier and
    /// leave the old supplier its access.
    pub fn open(path: &Path) -> Result<(Self, Replayed), ChangeLogError> {
        let (journal, records) = Journal::open(path)?;
        let mut replayed = Replayed::default();
        let mut last_seq = 0;
        for (index, r) in records.iter().enumerate() {
            let bad = |source| ChangeLogError::Record { index, source };
            if r.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                replayed.batches.push(Batch {
                    seq: None,
                    at: None,
                    changes: serde_json::from_slice(r).map_err(bad)?,
                });
                continue;
            }
            match serde_json::from_slice::<Record<Vec<Change>>>(r).map_err(bad)? {
                Record::Batch { seq, at, changes } => {
                    last_seq = last_seq.max(seq);
                    replayed.batches.push(Batch {
                        seq: Some(seq),
                        at: Some(at),
                        changes,
                    });
                }
                Record::Alerted(seq) => replayed.alerted = replayed.alerted.max(seq),
            }
        }
        let log = Self {
            journal,
            next: Arc::new(tokio::sync::Mutex::new(last_seq.max(replayed.alerted) + 1)),
        };
        Ok((log, replayed))
    }

    /// Journals one batch, applied at `at` (unix seconds); returns its sequence number once it
    /// is on disk.
    pub async fn append(&self, at: i64, changes: &[Change]) -> Result<u64, JournalError> {
        let mut next = self.next.lock().await;
        let seq = *next;
        let record = Record::Batch { seq, at, changes };
        // Serialising these plain values cannot fail.
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        // The number is used up even if the write fails: the record may be on disk regardless.
        *next += 1;
        self.journal.append(bytes).await?;
        Ok(seq)
    }

    /// Records that the DCC Alerts of every batch up to `seq` are in the outbox; returns once
    /// that is on disk.
    pub async fn mark_alerted(&self, seq: u64) -> Result<(), JournalError> {
        let record: Record<()> = Record::Alerted(seq);
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        self.journal.append(bytes).await
    }
}

#[cfg(test)]
mod tests;
