//! Anomaly detection's counts, journalled so that a restart does not empty their windows (a
//! User could otherwise restart-launder a threshold). Each request counted is one record,
//! made durable before its decision's commit: `{"user", "role", "srv", "minute", "n"}` (JSON;
//! `minute` is unix seconds / 60, `n` the requests of that minute; 1 as appended). The records
//! are kept in one journal per hour (`anomaly-counts/<hour>.journal`, `hour` unix seconds /
//! 3 600): at open, the hours older than the longest window (a day, and the hour it started
//! in) are deleted, and every closed hour is rewritten with one record per (User, role,
//! variant, minute) — coarse buckets, at most 60 per counter and hour — so the files are
//! bounded by the distinct counted keys, not the traffic, except the hour being written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::journal::{read_records, rewrite, Journal, JournalError};
use crate::domain::{Srv, UserId, UserRole};

#[cfg(test)]
mod tests;

/// Hours of records kept: the longest window (a day) and the hour its oldest step is in.
const KEPT_HOURS: i64 = 25;

/// Requests counted in one minute for one (User, role, variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tallied {
    pub user: UserId,
    pub role: UserRole,
    pub srv: Srv,
    /// Unix seconds / 60.
    pub minute: i64,
    pub n: u32,
}

impl Tallied {
    /// One request of `user` in `role` for `srv`, counted at `at` (unix seconds).
    pub fn one(user: UserId, role: UserRole, srv: Srv, at: i64) -> Self {
        Self {
            user,
            role,
            srv,
            minute: at.div_euclid(60),
            n: 1,
        }
    }

    /// The first second of its minute.
    pub fn at(&self) -> i64 {
        self.minute.saturating_mul(60)
    }

    /// Its record, as the journal and the request log carry it.
    pub fn to_record(&self) -> Vec<u8> {
        to_bytes(self)
    }

    /// A record read back; `None` for one that does not read.
    pub fn from_record(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    fn key(&self) -> (i64, UserId, UserRole, Srv) {
        (self.minute, self.user, self.role, self.srv)
    }
}

/// The journal of counted requests, one file per hour.
pub struct CountLog {
    dir: PathBuf,
    /// The hour being written and its journal, opened when the first record of the hour comes.
    current: Mutex<Option<(i64, Journal)>>,
}

impl CountLog {
    /// Opens the journals in `dir` at `now` (unix seconds): the hours outside the window are
    /// deleted, the closed ones compacted; every record within the window, oldest first.
    /// Blocking.
    pub fn open(dir: &Path, now: i64) -> Result<(Self, Vec<Tallied>), JournalError> {
        let io = |source| JournalError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let this_hour = now.div_euclid(3_600);
        let mut kept = Vec::new();
        for (hour, path) in hours(dir).map_err(io)? {
            if hour <= this_hour - KEPT_HOURS {
                std::fs::remove_file(&path).map_err(io)?;
                continue;
            }
            let records = read_records(&path)?;
            let (merged, read) = merge(&records);
            if merged.len() < read {
                rewrite(&path, merged.iter().map(to_bytes))?;
            }
            kept.extend(merged);
        }
        let log = Self {
            dir: dir.to_owned(),
            current: Mutex::new(None),
        };
        Ok((log, kept))
    }

    /// Journals `tallied`; returns once it is on disk.
    pub async fn append(&self, tallied: &Tallied) -> Result<(), JournalError> {
        let journal = self.journal_for(tallied.at().div_euclid(3_600))?;
        journal.append(to_bytes(tallied)).await
    }

    /// Journals every one of `tallied` (records the request log carried), the appends sharing
    /// the journal's group commits; returns once all are on disk.
    pub async fn checkpoint(&self, tallied: &[Tallied]) -> Result<(), JournalError> {
        let appends = tallied.iter().map(|t| self.append(t));
        futures_util::future::try_join_all(appends).await?;
        Ok(())
    }

    /// The journal of `hour`: the current one, or a new one when the hour has changed (the
    /// old one's writer ends once its last appends are written; the next open compacts it).
    fn journal_for(&self, hour: i64) -> Result<Journal, JournalError> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((h, journal)) = current.as_ref() {
            // A clock set back keeps appending to the latest hour.
            if *h >= hour {
                return Ok(journal.clone());
            }
        }
        // Blocking (a file created and fsynced, its writer thread started), on the request
        // that starts the hour: once an hour.
        let (journal, _) = Journal::open(&self.dir.join(format!("{hour}.journal")))?;
        *current = Some((hour, journal.clone()));
        Ok(journal)
    }
}

/// The hour journals in `dir`, by hour.
fn hours(dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hour = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".journal"))
            .and_then(|n| n.parse::<i64>().ok());
        if let Some(hour) = hour {
            found.push((hour, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The records that read, one per (User, role, variant, minute) with their counts summed, and
/// how many records there were. A record that does not read is skipped (and logged).
fn merge(records: &[Vec<u8>]) -> (Vec<Tallied>, usize) {
    let mut merged: BTreeMap<(i64, UserId, UserRole, Srv), Tallied> = BTreeMap::new();
    for r in records {
        let Ok(t) = serde_json::from_slice::<Tallied>(r) else {
            tracing::warn!("An anomaly count record does not read; skipped.");
            continue;
        };
        merged
            .entry(t.key())
            .and_modify(|m| m.n = m.n.saturating_add(t.n))
            .or_insert(t);
    }
    (merged.into_values().collect(), records.len())
}

fn to_bytes(t: &Tallied) -> Vec<u8> {
    // A record of plain fields always serialises.
    serde_json::to_vec(t).unwrap_or_default()
}
