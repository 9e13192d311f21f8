//! The anomaly-detection threshold sets submitted through the admin API, journalled before they
//! are in force: each record is one whole set as JSON (`{"version": .., "at": .., "entries":
//! [..]}`, `schemas/anomaly.md`); the last one read is in force at a start. A journal of more
//! than 64 sets is rewritten at open with the last one only.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::journal::{rewrite, Journal, JournalError};
use crate::anomaly::Entry;

/// One threshold set as journalled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdSet {
    pub version: u64,
    /// When it was put in force (unix seconds).
    pub at: i64,
    pub entries: Vec<Entry>,
}

pub struct ThresholdLog {
    journal: Journal,
}

impl ThresholdLog {
    /// Opens the journal at `path`, with the set last journalled (none before the first).
    /// Blocking.
    pub fn open(path: &Path) -> Result<(Self, Option<ThresholdSet>), JournalError> {
        let (_, records) = Journal::open(path)?;
        let sets = records.len();
        let last = records.iter().rev().find_map(|r| {
            let set = serde_json::from_slice::<ThresholdSet>(r).ok();
            if set.is_none() {
                tracing::warn!("A threshold set record does not read; skipped.");
            }
            set
        });
        if sets > 64 {
            if let Some(set) = &last {
                rewrite(path, std::iter::once(to_bytes(set)))?;
            }
        }
        let (journal, _) = Journal::open(path)?;
        Ok((Self { journal }, last))
    }

    /// Journals `set`; returns once it is on disk.
    pub async fn append(&self, set: &ThresholdSet) -> Result<(), JournalError> {
        self.journal.append(to_bytes(set)).await
    }

    pub fn is_failing(&self) -> bool {
        self.journal.is_failing()
    }
}

fn to_bytes(set: &ThresholdSet) -> Vec<u8> {
    // A set of plain fields always serialises.
    serde_json::to_vec(set).unwrap_or_default()
}
