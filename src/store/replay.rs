//! Anti-replay high-water marks (the rule is `antireplay`'s): one mark per originator, journalled
//! before the request is accepted, so they hold across restarts.

use std::path::Path;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use super::journal::{rewrite, Journal, JournalError};
use crate::antireplay::{self, Mark, Replay};
use crate::domain::{CommandVariant, RequestId, UserId};

#[derive(Serialize, Deserialize)]
struct Record {
    originator: UserId,
    #[serde(flatten)]
    mark: Mark,
}

/// Why a counter was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AdvanceError {
    #[error(transparent)]
    Refused(#[from] Replay),
    #[error("the high-water mark could not be made durable")]
    Journal(#[source] JournalError),
}

pub struct ReplayGuard {
    marks: DashMap<UserId, Mark>,
    journal: Journal,
}

impl ReplayGuard {
    /// Opens the journal at `path` and folds it into the high-water marks. A journal with many
    /// superseded records is compacted first (written anew beside it, then renamed over it).
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let (_, records) = Journal::open(path)?;
        let marks = DashMap::new();
        let mut superseded = 0usize;
        for bytes in &records {
            // A record that does not parse was written by a newer version; it is kept on disk
            // and ignored here rather than stopping start-up.
            let Ok(r) = serde_json::from_slice::<Record>(bytes) else {
                continue;
            };
            if marks.insert(r.originator, r.mark).is_some() {
                superseded += 1;
            }
        }
        if superseded > 1024 && superseded > marks.len() {
            compact(path, &marks)?;
        }
        let (journal, _) = Journal::open(path)?;
        Ok(Self { marks, journal })
    }

    /// Accepts `id`'s counter if it is new for its originator (or is the CV5 twin of the last
    /// CV4), records it durably, and only then returns.
    pub async fn advance(&self, id: &RequestId, cv: CommandVariant) -> Result<(), AdvanceError> {
        let mark = {
            // The entry lock makes check-and-set atomic; it is dropped before the await.
            let mut entry = self.marks.entry(id.originator).or_default();
            let mark = antireplay::admit(*entry, id, cv)?;
            *entry = mark;
            mark
        };
        let record = Record {
            originator: id.originator,
            mark,
        };
        // Serialising this struct of plain values cannot fail.
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        self.journal
            .append(bytes)
            .await
            .map_err(AdvanceError::Journal)
    }
}

fn compact(path: &Path, marks: &DashMap<UserId, Mark>) -> Result<(), JournalError> {
    let records: Vec<Vec<u8>> = marks
        .iter()
        .map(|m| {
            let record = Record {
                originator: *m.key(),
                mark: *m.value(),
            };
            serde_json::to_vec(&record).unwrap_or_default()
        })
        .collect();
    rewrite(path, records.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(counter: u64, target: &str) -> RequestId {
        format!("90-B3-D5-1F-30-01-00-00:{target}:{counter}")
            .parse()
            .unwrap()
    }

    fn cv(v: u8) -> CommandVariant {
        CommandVariant::try_from(v).unwrap()
    }

    const ESME: &str = "00-DB-12-34-56-78-90-A0";
    const GSME: &str = "00-DB-12-34-56-78-90-A1";

    #[tokio::test]
    async fn counters_must_rise_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.journal");
        let guard = ReplayGuard::open(&path).unwrap();
        guard.advance(&id(10, ESME), cv(1)).await.unwrap();
        guard.advance(&id(11, GSME), cv(1)).await.unwrap();
        assert!(matches!(
            guard.advance(&id(11, ESME), cv(1)).await,
            Err(AdvanceError::Refused(Replay::NotIncreasing {
                counter: 11,
                last: 11
            }))
        ));
        assert!(guard.advance(&id(5, ESME), cv(1)).await.is_err());
        // The CV4 → CV5 pair shares one RequestID; only for the same target, only once after.
        guard.advance(&id(20, ESME), cv(4)).await.unwrap();
        assert!(guard.advance(&id(20, GSME), cv(5)).await.is_err());
        guard.advance(&id(20, ESME), cv(5)).await.unwrap();
        assert!(guard.advance(&id(20, ESME), cv(5)).await.is_err());
        drop(guard);

        let guard = ReplayGuard::open(&path).unwrap();
        assert!(matches!(
            guard.advance(&id(20, ESME), cv(1)).await,
            Err(AdvanceError::Refused(Replay::NotIncreasing {
                counter: 20,
                last: 20
            }))
        ));
        guard.advance(&id(21, ESME), cv(1)).await.unwrap();
        // Another originator has its own counter.
        let other: RequestId = format!("90-B3-D5-1F-30-02-00-00:{ESME}:1").parse().unwrap();
        guard.advance(&other, cv(1)).await.unwrap();
    }

    #[tokio::test]
    async fn concurrent_duplicates_let_exactly_one_through() {
        let dir = tempfile::tempdir().unwrap();
        let guard = std::sync::Arc::new(ReplayGuard::open(&dir.path().join("r")).unwrap());
        let tries: Vec<_> = (0..32)
            .map(|_| {
                let g = guard.clone();
                tokio::spawn(async move { g.advance(&id(7, ESME), cv(1)).await.is_ok() })
            })
            .collect();
        let mut accepted = 0;
        for t in tries {
            accepted += usize::from(t.await.unwrap());
        }
        assert_eq!(accepted, 1);
    }

    #[tokio::test]
    async fn a_long_journal_is_compacted_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let guard = ReplayGuard::open(&path).unwrap();
        for c in 1..=3000 {
            guard.advance(&id(c, ESME), cv(1)).await.unwrap();
        }
        drop(guard);
        let before = std::fs::metadata(&path).unwrap().len();
        let guard = ReplayGuard::open(&path).unwrap();
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after * 100 < before, "{before} → {after}");
        assert!(guard.advance(&id(3000, ESME), cv(1)).await.is_err());
        guard.advance(&id(3001, ESME), cv(1)).await.unwrap();
    }
}
