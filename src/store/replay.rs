//! Anti-replay high-water marks (the rule is `antireplay`'s): one mark per originator, journalled
//! before the request is accepted, so they hold across restarts.

use std::path::Path;

use dashmap::mapref::entry::Entry;
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
    /// CV4) and not above `now_ns` (the time in nanoseconds since 1970), records it durably, and
    /// only then returns.
    pub async fn advance(
        &self,
        id: &RequestId,
        cv: CommandVariant,
        now_ns: u64,
    ) -> Result<(), AdvanceError> {
        let mark = {
            // The entry lock makes check-and-set atomic; it is dropped before the await.
            match self.marks.entry(id.originator) {
                Entry::Occupied(mut entry) => {
                    let mark = antireplay::admit(Some(*entry.get()), id, cv, now_ns)?;
                    entry.insert(mark);
                    mark
                }
                Entry::Vacant(entry) => *entry.insert(antireplay::admit(None, id, cv, now_ns)?),
            }
        };
        self.journal_mark(id.originator, mark)
            .await
            .map_err(AdvanceError::Journal)
    }

    /// Sets `originator`'s mark to `counter` (lower or higher than it was), durably: an
    /// operator's way back for a User whose client sent a counter it cannot follow.
    pub async fn reset(&self, originator: UserId, counter: u64) -> Result<(), JournalError> {
        let mark = Mark {
            counter,
            pre_command_for: None,
        };
        self.marks.insert(originator, mark);
        self.journal_mark(originator, mark).await
    }

    /// Whether the journal's last write failed (`/readyz` says not ready).
    pub fn is_failing(&self) -> bool {
        self.journal.is_failing()
    }

    /// The last counter accepted from `originator`, if any.
    pub fn mark(&self, originator: &UserId) -> Option<u64> {
        self.marks.get(originator).map(|m| m.counter)
    }

    async fn journal_mark(&self, originator: UserId, mark: Mark) -> Result<(), JournalError> {
        let record = Record { originator, mark };
        // Serialising this struct of plain values cannot fail.
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        self.journal.append(bytes).await
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

    const NOW_NS: u64 = 1_800_000_000_000_000_000;
    const ESME: &str = "00-DB-12-34-56-78-90-A0";
    const GSME: &str = "00-DB-12-34-56-78-90-A1";

    #[tokio::test]
    async fn counters_must_rise_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.journal");
        let guard = ReplayGuard::open(&path).unwrap();
        guard.advance(&id(10, ESME), cv(1), NOW_NS).await.unwrap();
        guard.advance(&id(11, GSME), cv(1), NOW_NS).await.unwrap();
        assert!(matches!(
            guard.advance(&id(11, ESME), cv(1), NOW_NS).await,
            Err(AdvanceError::Refused(Replay::NotIncreasing {
                counter: 11,
                last: 11
            }))
        ));
        assert!(guard.advance(&id(5, ESME), cv(1), NOW_NS).await.is_err());
        // The CV4 → CV5 pair shares one RequestID; only for the same target, only once after.
        guard.advance(&id(20, ESME), cv(4), NOW_NS).await.unwrap();
        assert!(guard.advance(&id(20, GSME), cv(5), NOW_NS).await.is_err());
        guard.advance(&id(20, ESME), cv(5), NOW_NS).await.unwrap();
        assert!(guard.advance(&id(20, ESME), cv(5), NOW_NS).await.is_err());
        drop(guard);

        let guard = ReplayGuard::open(&path).unwrap();
        assert!(matches!(
            guard.advance(&id(20, ESME), cv(1), NOW_NS).await,
            Err(AdvanceError::Refused(Replay::NotIncreasing {
                counter: 20,
                last: 20
            }))
        ));
        guard.advance(&id(21, ESME), cv(1), NOW_NS).await.unwrap();
        // Another originator has its own counter.
        let other: RequestId = format!("90-B3-D5-1F-30-02-00-00:{ESME}:1").parse().unwrap();
        guard.advance(&other, cv(1), NOW_NS).await.unwrap();
    }

    #[tokio::test]
    async fn a_counter_of_zero_is_taken_once_also_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.journal");
        let guard = ReplayGuard::open(&path).unwrap();
        guard.advance(&id(0, ESME), cv(1), NOW_NS).await.unwrap();
        assert!(guard.advance(&id(0, ESME), cv(1), NOW_NS).await.is_err());
        drop(guard);
        let guard = ReplayGuard::open(&path).unwrap();
        assert!(matches!(
            guard.advance(&id(0, ESME), cv(1), NOW_NS).await,
            Err(AdvanceError::Refused(Replay::NotIncreasing {
                counter: 0,
                last: 0
            }))
        ));
    }

    #[tokio::test]
    async fn an_operator_reset_gives_a_user_its_counters_back_durably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.journal");
        let guard = ReplayGuard::open(&path).unwrap();
        let near_top = NOW_NS - 1;
        guard
            .advance(&id(near_top, ESME), cv(1), NOW_NS)
            .await
            .unwrap();
        assert!(guard
            .advance(&id(1_000, ESME), cv(1), NOW_NS)
            .await
            .is_err());
        let user = id(0, ESME).originator;
        guard.reset(user, 999).await.unwrap();
        assert_eq!(guard.mark(&user), Some(999));
        drop(guard);
        let guard = ReplayGuard::open(&path).unwrap();
        assert!(guard.advance(&id(999, ESME), cv(1), NOW_NS).await.is_err());
        guard
            .advance(&id(1_000, ESME), cv(1), NOW_NS)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn concurrent_duplicates_let_exactly_one_through() {
        let dir = tempfile::tempdir().unwrap();
        let guard = std::sync::Arc::new(ReplayGuard::open(&dir.path().join("r")).unwrap());
        let tries: Vec<_> = (0..32)
            .map(|_| {
                let g = guard.clone();
                tokio::spawn(async move { g.advance(&id(7, ESME), cv(1), NOW_NS).await.is_ok() })
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
            guard.advance(&id(c, ESME), cv(1), NOW_NS).await.unwrap();
        }
        drop(guard);
        let before = std::fs::metadata(&path).unwrap().len();
        let guard = ReplayGuard::open(&path).unwrap();
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after * 100 < before, "{before} → {after}");
        assert!(guard.advance(&id(3000, ESME), cv(1), NOW_NS).await.is_err());
        guard.advance(&id(3001, ESME), cv(1), NOW_NS).await.unwrap();
    }
}
