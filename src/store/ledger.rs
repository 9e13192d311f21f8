//! A ledger of things the gateway issued for one request and that may be used once before they
//! expire: the pre-commands of Transform requests (used by their Command Variant 5, 6 or 7) and
//! the commands sent for local delivery (answered by an 8.13 Return Local Command Response).
//! What is issued and what is used are journalled (group commit) before anyone is told, so both
//! survive a crash; at start the journal is read back.
//!
//! Bounds, and what happens at them:
//! - Each entry expires `expiry_secs` after it was issued; using it later is refused as expired.
//!   A used or expired entry is still known for a grace of `expiry_secs`, at most an hour, after
//!   its use or expiry (so that a late or repeated use is told apart from an unknown one; after
//!   it, such a use is refused as unknown, still a refusal), then forgotten. So memory holds the
//!   open entries and the last hour's closed ones, not every entry of two expiries.
//! - A User has at most `max_per_user` open entries (issued, neither used nor expired); an issue
//!   beyond that is refused ([`IssueError::Full`]) until some are used or expire. Closed entries
//!   do not count: a User that uses what it is issued never meets the bound.
//! - The journal is cut into segments of `expiry_secs` each (`<dir>/<n>.journal`, `n` the issue
//!   time divided by the segment length); a segment three lengths old holds nothing still known
//!   and is deleted whole. The disk used is bounded by the rate of issues times three expiries.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Journal, JournalError};
use crate::domain::{RequestId, UserId};

/// How often (in seconds of the caller's clock) forgotten entries are swept out of memory.
const SWEEP_EVERY_SECS: i64 = 60;
/// The longest a used or expired entry is still known after its use or expiry.
const MAX_GRACE_SECS: u64 = 3600;

/// The ledger's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerLimits {
    /// How long an issued entry may be used, in seconds (at least 1).
    pub expiry_secs: u64,
    /// Open entries (issued, neither used nor expired) one User may have at once.
    pub max_per_user: usize,
}

/// Why an entry could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the User already has {max} open entries in the ledger")]
    Full { max: usize },
    #[error("an entry for this RequestID was issued already")]
    Duplicate,
    #[error("the ledger could not be written")]
    Journal(#[source] JournalError),
}

/// Why an entry cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UseError {
    #[error("nothing was issued for this RequestID (or it was forgotten)")]
    Unknown,
    #[error("the entry was used already")]
    Used,
    #[error("the entry expired")]
    Expired,
    #[error("the ledger could not be written")]
    Journal(#[source] JournalError),
}

/// The RequestID a ledger's record (issued or used) is for, as its text; `None` for bytes that
/// are not a record.
pub fn record_key(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Keyed {
        id: String,
    }
    serde_json::from_slice::<Keyed>(bytes).ok().map(|k| k.id)
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
enum Record<V> {
    Issued { id: String, at: i64, value: V },
    Used { id: String },
}

struct Entry<V> {
    issued: i64,
    /// `None` once used.
    value: Option<V>,
    /// Counted against its User's bound: neither used nor (as of the last sweep) expired.
    open: bool,
    /// When it is forgotten: the grace after its expiry, or after its use once used.
    forget_at: i64,
}

struct Book<V> {
    entries: HashMap<RequestId, Entry<V>>,
    per_user: HashMap<UserId, usize>,
    next_sweep: i64,
}

/// The ledger: entries in memory, their journal on disk.
pub struct Ledger<V> {
    dir: PathBuf,
    limits: LedgerLimits,
    book: Mutex<Book<V>>,
    /// The segment being written and its journal.
    segment: Mutex<(i64, Journal)>,
}

impl<V: Clone + Serialize + DeserializeOwned> Ledger<V> {
    /// Opens the ledger in `dir` (created if missing) and reads back what is still known at
    /// `now` (unix seconds). Blocking.
    pub fn open(dir: &Path, limits: LedgerLimits, now: i64) -> Result<Self, JournalError> {
        let limits = LedgerLimits {
            expiry_secs: limits.expiry_secs.max(1),
            ..limits
        };
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mut book = Book {
            entries: HashMap::new(),
            per_user: HashMap::new(),
            next_sweep: now,
        };
        let current = segment_of(now, &limits);
        for (n, path) in segments(dir)? {
            if n + 3 <= current {
                remove(&path)?;
                continue;
            }
            let (_, records) = Journal::open(&path)?;
            for bytes in records {
                // A record that does not parse was written by a newer version: passed over.
                if let Ok(record) = serde_json::from_slice::<Record<V>>(&bytes) {
                    book.replay(record, &limits);
                }
            }
        }
        book.sweep(now, &limits);
        let (journal, _) = Journal::open(&segment_path(dir, current))?;
        Ok(Self {
            dir: dir.to_owned(),
            limits,
            book: Mutex::new(book),
            segment: Mutex::new((current, journal)),
        })
    }

    /// Issues `value` for `id` at `now`; returns once it is on disk.
    pub async fn issue(&self, id: RequestId, value: V, now: i64) -> Result<(), IssueError> {
        let record = self.issue_in_memory(id, value, now)?;
        if let Err(e) = self.append_bytes(record, now).await {
            // Not on disk: not issued.
            self.unissue(&id);
            return Err(IssueError::Journal(e));
        }
        Ok(())
    }

    /// Issues `value` for `id` at `now` in memory only, and returns the record that makes it
    /// durable: the caller writes it (the request log, with the request's decision) and calls
    /// [`Self::unissue`] if that fails; [`Self::checkpoint`] copies it into this ledger's journal.
    pub fn issue_in_memory(
        &self,
        id: RequestId,
        value: V,
        now: i64,
    ) -> Result<Vec<u8>, IssueError> {
        let mut book = self.book();
        book.sweep(now, &self.limits);
        if book.entries.contains_key(&id) {
            return Err(IssueError::Duplicate);
        }
        let held = book.per_user.entry(id.originator).or_default();
        if *held >= self.limits.max_per_user {
            return Err(IssueError::Full {
                max: self.limits.max_per_user,
            });
        }
        *held += 1;
        let record = Record::Issued {
            id: id.to_string(),
            at: now,
            value: value.clone(),
        };
        book.entries
            .insert(id, Entry::issued(now, value, &self.limits));
        // Serialising these plain values cannot fail.
        Ok(serde_json::to_vec(&record).unwrap_or_default())
    }

    /// An issue in memory whose record did not become durable, undone.
    pub fn unissue(&self, id: &RequestId) {
        self.book().forget(id);
    }

    /// Whether `id` is known here (open, used or expired but still known).
    pub fn knows(&self, id: &RequestId) -> bool {
        self.book().entries.contains_key(id)
    }

    /// The open entry for `id` at `now`, without using it.
    pub fn peek(&self, id: &RequestId, now: i64) -> Result<V, UseError> {
        let book = self.book();
        let entry = book.entries.get(id).ok_or(UseError::Unknown)?;
        match &entry.value {
            None => Err(UseError::Used),
            Some(_) if self.expired(entry, now) => Err(UseError::Expired),
            Some(v) => Ok(v.clone()),
        }
    }

    /// Uses the entry for `id` at `now`, once; returns once that is on disk. Of two concurrent
    /// uses, one gets the value and the other [`UseError::Used`].
    pub async fn take(&self, id: &RequestId, now: i64) -> Result<V, UseError> {
        let (value, record) = self.take_in_memory(id, now)?;
        if let Err(e) = self.append_bytes(record, now).await {
            // Not on disk: not used; it may be tried again.
            self.untake(id, value.clone());
            return Err(UseError::Journal(e));
        }
        Ok(value)
    }

    /// Uses the entry for `id` at `now` in memory only; returns its value and the record that
    /// makes the use durable (see [`Self::issue_in_memory`]; [`Self::untake`] undoes it).
    pub fn take_in_memory(&self, id: &RequestId, now: i64) -> Result<(V, Vec<u8>), UseError> {
        let mut book = self.book();
        let Book {
            entries, per_user, ..
        } = &mut *book;
        let entry = entries.get_mut(id).ok_or(UseError::Unknown)?;
        if entry.value.is_some() && now >= entry.issued + self.expiry() {
            return Err(UseError::Expired);
        }
        let value = entry.value.take().ok_or(UseError::Used)?;
        entry.close(per_user, id.originator);
        entry.forget_at = entry.forget_at.min(now.saturating_add(grace(&self.limits)));
        let record = Record::<V>::Used { id: id.to_string() };
        Ok((value, serde_json::to_vec(&record).unwrap_or_default()))
    }

    /// A use in memory whose record did not become durable, undone.
    pub fn untake(&self, id: &RequestId, value: V) {
        let mut book = self.book();
        let Book {
            entries, per_user, ..
        } = &mut *book;
        if let Some(entry) = entries.get_mut(id) {
            *entry = Entry::issued(entry.issued, value, &self.limits);
            *per_user.entry(id.originator).or_default() += 1;
        }
    }

    /// Records made durable elsewhere (by [`Self::issue_in_memory`] and
    /// [`Self::take_in_memory`]) and read back from there at a start, taken into memory (those
    /// known already are passed over); [`Self::checkpoint`] then makes them durable here.
    pub fn recover(&self, records: &[Vec<u8>]) {
        let mut book = self.book();
        for bytes in records {
            if let Ok(record) = serde_json::from_slice::<Record<V>>(bytes) {
                book.replay(record, &self.limits);
            }
        }
    }

    /// Records made durable elsewhere (already in memory) written to this ledger's journal at
    /// `now`; returns once they are on disk. Writing one twice is harmless: an issue already
    /// known is passed over on reading, a use sets what it set.
    pub async fn checkpoint(&self, records: &[Vec<u8>], now: i64) -> Result<(), JournalError> {
        let writes = records.iter().map(|r| self.append_bytes(r.clone(), now));
        for result in futures_util::future::join_all(writes).await {
            result?;
        }
        Ok(())
    }

    /// Entries in memory (open, used or expired but still known).
    pub fn len(&self) -> usize {
        self.book().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expiry(&self) -> i64 {
        i64::try_from(self.limits.expiry_secs).unwrap_or(i64::MAX)
    }

    fn expired(&self, entry: &Entry<V>, now: i64) -> bool {
        now >= entry.issued.saturating_add(self.expiry())
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book<V>> {
        // A panic while the lock was held left the map consistent (every change is one call).
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a record to the segment of `now`, starting a new segment (and deleting those
    /// that hold nothing still known) when `now` has moved past the current one.
    async fn append_bytes(&self, bytes: Vec<u8>, now: i64) -> Result<(), JournalError> {
        let journal = {
            let mut segment = self.segment.lock().unwrap_or_else(PoisonError::into_inner);
            let current = segment_of(now, &self.limits);
            if current > segment.0 {
                let (journal, _) = Journal::open(&segment_path(&self.dir, current))?;
                *segment = (current, journal);
                for (n, path) in segments(&self.dir)? {
                    if n + 3 <= current {
                        remove(&path)?;
                    }
                }
            }
            segment.1.clone()
        };
        journal.append(bytes).await
    }
}

impl<V> Entry<V> {
    /// An open entry issued at `at`.
    fn issued(at: i64, value: V, limits: &LedgerLimits) -> Self {
        let expiry = i64::try_from(limits.expiry_secs).unwrap_or(i64::MAX);
        Self {
            issued: at,
            value: Some(value),
            open: true,
            forget_at: at.saturating_add(expiry).saturating_add(grace(limits)),
        }
    }

    /// No longer counted against its User's bound (used, or found expired).
    fn close(&mut self, per_user: &mut HashMap<UserId, usize>, user: UserId) {
        if std::mem::take(&mut self.open) {
            decrement(per_user, user);
        }
    }
}

/// How long a used or expired entry is still known: its expiry, at most an hour.
fn grace(limits: &LedgerLimits) -> i64 {
    i64::try_from(limits.expiry_secs.min(MAX_GRACE_SECS)).unwrap_or(i64::MAX)
}

impl<V> Book<V> {
    /// A record read back: an issue (once) or a use (whose time is not recorded: the entry is
    /// forgotten the grace after its expiry).
    fn replay(&mut self, record: Record<V>, limits: &LedgerLimits) {
        match record {
            Record::Issued { id, at, value } => {
                let Ok(id) = id.parse::<RequestId>() else {
                    return;
                };
                if self.entries.contains_key(&id) {
                    return;
                }
                *self.per_user.entry(id.originator).or_default() += 1;
                self.entries.insert(id, Entry::issued(at, value, limits));
            }
            Record::Used { id } => {
                let Ok(id) = id.parse::<RequestId>() else {
                    return;
                };
                if let Some(entry) = self.entries.get_mut(&id) {
                    entry.value = None;
                    entry.close(&mut self.per_user, id.originator);
                }
            }
        }
    }

    /// At most once a minute: closes the open entries that expired (no longer counted against
    /// their User's bound) and forgets those whose grace has passed.
    fn sweep(&mut self, now: i64, limits: &LedgerLimits) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_EVERY_SECS;
        let expiry = i64::try_from(limits.expiry_secs).unwrap_or(i64::MAX);
        let per_user = &mut self.per_user;
        self.entries.retain(|id, e| {
            if e.open && now >= e.issued.saturating_add(expiry) {
                e.close(per_user, id.originator);
            }
            now < e.forget_at
        });
    }

    fn forget(&mut self, id: &RequestId) {
        if let Some(mut entry) = self.entries.remove(id) {
            entry.close(&mut self.per_user, id.originator);
        }
    }
}

fn decrement<K: Eq + Hash>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

fn segment_of(now: i64, limits: &LedgerLimits) -> i64 {
    now.div_euclid(i64::try_from(limits.expiry_secs).unwrap_or(i64::MAX).max(1))
}

fn segment_path(dir: &Path, n: i64) -> PathBuf {
    dir.join(format!("{n}.journal"))
}

/// The segment files in `dir`, oldest first.
fn segments(dir: &Path) -> Result<Vec<(i64, PathBuf)>, JournalError> {
    super::numbered_files(dir, "", ".journal").map_err(|source| JournalError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn remove(path: &Path) -> Result<(), JournalError> {
    std::fs::remove_file(path).map_err(|source| JournalError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;
