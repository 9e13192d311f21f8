//! Anti-replay high-water marks (the rule is `antireplay`'s): one mark per originator. A
//! request's counter is reserved in memory ([`ReplayGuard::reserve`]) and made durable with the
//! rest of its decision in the request log ([`super::RequestLog`]); should that fail, the
//! reservation is rolled back. `replay.journal` holds what the checkpoint copies from the log
//! (and what earlier versions wrote); a start folds it, then the log's decisions not yet
//! checkpointed. Marks fold by the highest counter, whatever order they were written in; an
//! operator's reset sets a mark outright.

use std::path::Path;
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use super::journal::{rewrite, Journal, JournalError};
use super::requests::{fold_mark, CommitError, Decision, MarkEntry, RequestLog};
use crate::antireplay::{self, Mark, Replay};
use crate::domain::{CommandVariant, RequestId, UserId};

#[derive(Serialize, Deserialize)]
struct Record {
    originator: UserId,
    #[serde(flatten)]
    mark: Mark,
    /// An operator's reset (set outright); otherwise the mark only ever rises.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    reset: bool,
}

/// Why a counter was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AdvanceError {
    #[error(transparent)]
    Refused(#[from] Replay),
    #[error("the high-water mark could not be made durable")]
    Journal(#[source] CommitError),
}

/// A counter accepted in memory, not yet durable: its decision's mark, and what to put back if
/// that decision is not committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub entry: MarkEntry,
    previous: Option<Mark>,
}

pub struct ReplayGuard {
    marks: DashMap<UserId, Mark>,
    journal: Journal,
    log: Arc<dyn RequestLog>,
}

impl ReplayGuard {
    /// Opens the journal at `path`, folds it into the high-water marks, then folds `recovered`
    /// (the request log's marks not yet checkpointed, in log order) and makes them durable in
    /// the journal. A journal with many superseded records is compacted (written anew beside
    /// it, then renamed over it). Blocking.
    pub fn open(
        path: &Path,
        recovered: &[MarkEntry],
        log: Arc<dyn RequestLog>,
    ) -> Result<Self, JournalError> {
        let (_, records) = Journal::open(path)?;
        let marks: DashMap<UserId, Mark> = DashMap::new();
        let mut superseded = 0usize;
        for bytes in &records {
            // A record that does not parse was written by a newer version; it is kept on disk
            // and ignored here rather than stopping start-up.
            let Ok(r) = serde_json::from_slice::<Record>(bytes) else {
                continue;
            };
            let entry = MarkEntry {
                originator: r.originator,
                mark: r.mark,
                reset: r.reset,
                twin_of: None,
            };
            let last = marks.get(&r.originator).map(|m| *m);
            superseded += usize::from(last.is_some());
            marks.insert(r.originator, fold_mark(last, &entry));
        }
        for entry in recovered {
            let last = marks.get(&entry.originator).map(|m| *m);
            marks.insert(entry.originator, fold_mark(last, entry));
        }
        if !recovered.is_empty() || (superseded > 1024 && superseded > marks.len()) {
            compact(path, &marks)?;
        }
        let (journal, _) = Journal::open(path)?;
        Ok(Self {
            marks,
            journal,
            log,
        })
    }

    /// Accepts `id`'s counter in memory if it is new for its originator (or is the CV5 twin of
    /// the last CV4) and not above `now_ns` (the time in nanoseconds since 1970). The mark is
    /// durable only once the decision carrying [`Reservation::entry`] is committed; if it is
    /// not, [`Self::rollback`].
    pub fn reserve(
        &self,
        id: &RequestId,
        cv: CommandVariant,
        now_ns: u64,
    ) -> Result<Reservation, Replay> {
        // The entry lock makes check-and-set atomic.
        let (mark, previous) = match self.marks.entry(id.originator) {
            Entry::Occupied(mut entry) => {
                let previous = *entry.get();
                let mark = antireplay::admit(Some(previous), id, cv, now_ns)?;
                entry.insert(mark);
                (mark, Some(previous))
            }
            Entry::Vacant(entry) => (
                *entry.insert(antireplay::admit(None, id, cv, now_ns)?),
                None,
            ),
        };
        Ok(Reservation {
            entry: MarkEntry {
                originator: id.originator,
                mark,
                reset: false,
                twin_of: (cv.get() == 5).then_some(id.target),
            },
            previous,
        })
    }

    /// Puts back what `r` replaced, unless a later request has moved the mark since (its own
    /// commit then decides).
    pub fn rollback(&self, r: &Reservation) {
        if let Entry::Occupied(mut entry) = self.marks.entry(r.entry.originator) {
            if *entry.get() == r.entry.mark {
                match r.previous {
                    Some(previous) => {
                        entry.insert(previous);
                    }
                    None => {
                        entry.remove();
                    }
                }
            }
        }
    }

    /// Reserves `id`'s counter and commits it alone (a decision with no effects).
    pub async fn advance(
        &self,
        id: &RequestId,
        cv: CommandVariant,
        now_ns: u64,
    ) -> Result<(), AdvanceError> {
        let r = self.reserve(id, cv, now_ns)?;
        let decision = Decision {
            mark: Some(r.entry),
            entries: Vec::new(),
        };
        self.log.commit(decision).await.map_err(|e| {
            self.rollback(&r);
            match e {
                CommitError::Refused(replay) => AdvanceError::Refused(replay),
                e => AdvanceError::Journal(e),
            }
        })
    }

    /// Sets `originator`'s mark to `counter` (lower or higher than it was), durably: an
    /// operator's way back for a User whose client sent a counter it cannot follow.
    pub async fn reset(&self, originator: UserId, counter: u64) -> Result<(), CommitError> {
        let mark = Mark {
            counter,
            pre_command_for: None,
        };
        let entry = MarkEntry {
            originator,
            mark,
            reset: true,
            twin_of: None,
        };
        self.log
            .commit(Decision {
                mark: Some(entry),
                entries: Vec::new(),
            })
            .await?;
        self.marks.insert(originator, mark);
        Ok(())
    }

    /// Copies marks from a sealed segment of the request log into the journal (each
    /// originator's marks folded first, a reset among them making the result one); returns once
    /// they are durable.
    pub async fn checkpoint(&self, entries: &[MarkEntry]) -> Result<(), JournalError> {
        let mut folded: std::collections::HashMap<UserId, MarkEntry> = Default::default();
        for e in entries {
            let merged = match folded.get(&e.originator) {
                Some(f) => MarkEntry {
                    mark: fold_mark(Some(f.mark), e),
                    reset: f.reset || e.reset,
                    ..*e
                },
                None => *e,
            };
            folded.insert(e.originator, merged);
        }
        let writes = folded.into_values().map(|e| {
            let record = Record {
                originator: e.originator,
                mark: e.mark,
                reset: e.reset,
            };
            // Serialising this struct of plain values cannot fail.
            self.journal
                .append(serde_json::to_vec(&record).unwrap_or_default())
        });
        for result in futures_util::future::join_all(writes).await {
            result?;
        }
        Ok(())
    }

    /// Whether the journal's or the request log's last write failed (`/readyz` says not ready).
    pub fn is_failing(&self) -> bool {
        self.journal.is_failing() || self.log.is_failing()
    }

    /// The last counter accepted from `originator`, if any.
    pub fn mark(&self, originator: &UserId) -> Option<u64> {
        self.marks.get(originator).map(|m| m.counter)
    }
}

fn compact(path: &Path, marks: &DashMap<UserId, Mark>) -> Result<(), JournalError> {
    let records: Vec<Vec<u8>> = marks
        .iter()
        .map(|m| {
            let record = Record {
                originator: *m.key(),
                mark: *m.value(),
                // The journal is written anew: every mark is the whole truth.
                reset: true,
            };
            serde_json::to_vec(&record).unwrap_or_default()
        })
        .collect();
    rewrite(path, records.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileRequestLog;

    /// The guard over `dir`'s request log and `replay.journal`, as a start opens them.
    fn open(dir: &Path) -> ReplayGuard {
        let (log, recovered) = FileRequestLog::open(&dir.join("requests"), 1024).unwrap();
        let marks: Vec<MarkEntry> = recovered.decisions.iter().filter_map(|d| d.mark).collect();
        let log = Arc::new(log);
        let guard = ReplayGuard::open(&dir.join("replay.journal"), &marks, log.clone()).unwrap();
        log.release_recovered(recovered).unwrap();
        guard
    }

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
        let guard = open(dir.path());
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

        let guard = open(dir.path());
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
        let guard = open(dir.path());
        guard.advance(&id(0, ESME), cv(1), NOW_NS).await.unwrap();
        assert!(guard.advance(&id(0, ESME), cv(1), NOW_NS).await.is_err());
        drop(guard);
        let guard = open(dir.path());
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
        let guard = open(dir.path());
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
        let guard = open(dir.path());
        assert!(guard.advance(&id(999, ESME), cv(1), NOW_NS).await.is_err());
        guard
            .advance(&id(1_000, ESME), cv(1), NOW_NS)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn concurrent_duplicates_let_exactly_one_through() {
        let dir = tempfile::tempdir().unwrap();
        let guard = Arc::new(open(dir.path()));
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
    async fn a_start_folds_the_log_into_a_compact_journal() {
        let dir = tempfile::tempdir().unwrap();
        let guard = open(dir.path());
        for c in 1..=3000 {
            guard.advance(&id(c, ESME), cv(1), NOW_NS).await.unwrap();
        }
        drop(guard);
        let guard = open(dir.path());
        // One record for the one originator; the log's segments are gone.
        let (_, records) = Journal::open(&dir.path().join("replay.journal")).unwrap();
        assert_eq!(records.len(), 1);
        let logs = std::fs::read_dir(dir.path().join("requests"))
            .unwrap()
            .count();
        assert_eq!(logs, 1, "only the fresh segment is left");
        assert!(guard.advance(&id(3000, ESME), cv(1), NOW_NS).await.is_err());
        guard.advance(&id(3001, ESME), cv(1), NOW_NS).await.unwrap();
    }

    #[tokio::test]
    async fn marks_written_out_of_order_fold_to_the_highest_and_a_reset_sets() {
        let dir = tempfile::tempdir().unwrap();
        let guard = open(dir.path());
        // Two reservations of one originator, committed in the other order.
        let first = guard.reserve(&id(5, ESME), cv(1), NOW_NS).unwrap();
        let second = guard.reserve(&id(6, ESME), cv(1), NOW_NS).unwrap();
        for r in [second, first] {
            let d = Decision {
                mark: Some(r.entry),
                entries: Vec::new(),
            };
            guard.log.commit(d).await.unwrap();
        }
        drop(guard);
        let guard = open(dir.path());
        assert_eq!(guard.mark(&id(0, ESME).originator), Some(6));
        guard.reset(id(0, ESME).originator, 2).await.unwrap();
        drop(guard);
        let guard = open(dir.path());
        assert_eq!(guard.mark(&id(0, ESME).originator), Some(2));
    }

    #[tokio::test]
    async fn a_rolled_back_reservation_gives_the_counter_back() {
        let dir = tempfile::tempdir().unwrap();
        let guard = open(dir.path());
        guard.advance(&id(5, ESME), cv(1), NOW_NS).await.unwrap();
        let r = guard.reserve(&id(6, ESME), cv(1), NOW_NS).unwrap();
        assert!(guard.reserve(&id(6, ESME), cv(1), NOW_NS).is_err());
        guard.rollback(&r);
        assert_eq!(guard.mark(&id(0, ESME).originator), Some(5));
        guard.advance(&id(6, ESME), cv(1), NOW_NS).await.unwrap();
    }
}
