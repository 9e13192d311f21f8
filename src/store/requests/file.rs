//! The request log in files: numbered segments (`requests-<n>.log`) in one directory, each a
//! [`Journal`] (checksummed records, one writer thread, group commit). Decisions go to the
//! newest segment; once it holds `segment_records` decisions a new one starts and the old one
//! is sealed. A sealed segment waits for the checkpoint ([`FileRequestLog::next_sealed`]): its
//! decisions are copied into the per-kind stores' own files, then it is deleted
//! ([`FileRequestLog::release`]).
//!
//! On open, every segment on disk is read (each up to its first torn or corrupt record: a crash
//! mid-write loses only decisions nobody was told were durable) and handed back as
//! [`Recovered`]; the caller replays them into the stores, makes those durable, and then
//! releases them. New decisions go to a fresh segment, so a recovered one is never appended to.
//!
//! A decision's [`EntryKind::Audit`] entries are handed to the log's [`Trail`] once the decision
//! is durable, while the commit still holds its segment's gate: so once the checkpoint holds a
//! sealed segment's gate alone, every audit entry in it has been handed over (and the checkpoint
//! makes the trail durable before the segment goes).
//!
//! Bound: at most [`MAX_SEALED`] sealed segments wait for the checkpoint; past that the newest
//! segment is not sealed and grows on until the checkpoint catches up (the disk holds what the
//! checkpoint has not yet copied, never less).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, OwnedRwLockReadGuard, RwLock};

use super::{decode, encode, Decision, EntryKind, LogFuture, RequestLog};
use crate::store::journal::read_records;
use crate::store::{numbered_files, sync_dir, Journal, JournalError};

/// Sealed segments waiting for the checkpoint, at most (see the module's bound).
pub const MAX_SEALED: usize = 64;

/// Where a durable decision's audit entries go (the audit trail's copy of the log): called with
/// each entry's bytes, in commit order within a decision. It must not block for long: it runs
/// on the committing task.
pub type Trail = Box<dyn Fn(&[u8]) + Send + Sync>;

pub struct FileRequestLog {
    dir: PathBuf,
    trail: std::sync::OnceLock<Trail>,
    segment_records: usize,
    state: Mutex<State>,
    /// Told when a segment is sealed.
    sealed_added: Notify,
}

struct State {
    current: Segment,
    records: usize,
    sealed: VecDeque<Segment>,
}

/// A segment and the gate its commits pass: each commit holds it shared while it writes, so
/// the checkpoint, holding it alone, reads a sealed segment only once every write to it is over.
struct Segment {
    n: u64,
    journal: Journal,
    gate: Arc<RwLock<()>>,
}

/// A sealed segment, for the checkpoint.
pub struct Sealed {
    n: u64,
    gate: Arc<RwLock<()>>,
    path: PathBuf,
}

/// The decisions found at open, and the files they came from.
pub struct Recovered {
    pub decisions: Vec<Decision>,
    files: Vec<PathBuf>,
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("requests-{n:016}.log"))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

impl FileRequestLog {
    /// Opens the log in `dir` (created if missing); returns it and every decision on disk, in
    /// order. Blocking.
    pub fn open(dir: &Path, segment_records: usize) -> Result<(Self, Recovered), JournalError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let old = numbered_files::<u64>(dir, "requests-", ".log").map_err(io_error(dir))?;
        let mut decisions = Vec::new();
        for (_, path) in &old {
            for record in read_records(path)? {
                match decode(&record) {
                    Some(d) => decisions.push(d),
                    // Written by a newer version: it cannot be replayed here. Kept on disk
                    // until released, and said.
                    None => {
                        tracing::warn!(segment = %path.display(), "A request log record does not read; skipped.");
                    }
                }
            }
        }
        let next = old.last().map_or(1, |(n, _)| n + 1);
        let current = Segment::open(dir, next)?;
        let log = Self {
            dir: dir.to_owned(),
            trail: std::sync::OnceLock::new(),
            segment_records: segment_records.max(1),
            state: Mutex::new(State {
                current,
                records: 0,
                sealed: VecDeque::new(),
            }),
            sealed_added: Notify::new(),
        };
        let recovered = Recovered {
            decisions,
            files: old.into_iter().map(|(_, p)| p).collect(),
        };
        Ok((log, recovered))
    }

    /// Sets where durable audit entries go (once; a second call is ignored). Until it is set,
    /// they stay in the log only (and reach the trail at the next start's recovery).
    pub fn set_trail(&self, trail: Trail) {
        let _ = self.trail.set(trail);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before it could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Deletes the recovered segments: call once their decisions are durable in the stores.
    /// Blocking.
    pub fn release_recovered(&self, recovered: Recovered) -> Result<(), JournalError> {
        for path in &recovered.files {
            std::fs::remove_file(path).map_err(io_error(path))?;
        }
        if !recovered.files.is_empty() {
            sync_dir(&self.dir).map_err(io_error(&self.dir))?;
        }
        Ok(())
    }

    /// The oldest sealed segment, once there is one. Its decisions are read with
    /// [`Sealed::decisions`]; it stays on disk until [`Self::release`].
    pub async fn next_sealed(&self) -> Sealed {
        loop {
            let notified = self.sealed_added.notified();
            if let Some(s) = self.lock().sealed.front() {
                return Sealed {
                    n: s.n,
                    gate: Arc::clone(&s.gate),
                    path: segment_path(&self.dir, s.n),
                };
            }
            notified.await;
        }
    }

    /// Deletes a sealed segment whose decisions are durable in the stores.
    pub fn release(&self, sealed: &Sealed) -> Result<(), JournalError> {
        std::fs::remove_file(&sealed.path).map_err(io_error(&sealed.path))?;
        sync_dir(&self.dir).map_err(io_error(&self.dir))?;
        self.lock().sealed.retain(|s| s.n != sealed.n);
        Ok(())
    }

    /// Sealed segments waiting for the checkpoint.
    pub fn sealed(&self) -> usize {
        self.lock().sealed.len()
    }

    /// The segment a new decision goes to, sealing the current one first if it is full (and
    /// fewer than [`MAX_SEALED`] wait), with its gate held shared until the write is over.
    fn segment_for_one(&self) -> Result<(Journal, OwnedRwLockReadGuard<()>), JournalError> {
        let mut s = self.lock();
        if s.records >= self.segment_records && s.sealed.len() < MAX_SEALED {
            let next = Segment::open(&self.dir, s.current.n + 1)?;
            let old = std::mem::replace(&mut s.current, next);
            s.sealed.push_back(old);
            s.records = 0;
            self.sealed_added.notify_one();
        }
        s.records += 1;
        // Taken under the lock while the segment is current: the checkpoint takes the gate only
        // once the segment is sealed, which also happens under the lock, so this cannot fail.
        let gate = Arc::clone(&s.current.gate)
            .try_read_owned()
            .map_err(|_| JournalError::Stopped)?;
        Ok((s.current.journal.clone(), gate))
    }
}

impl RequestLog for FileRequestLog {
    fn commit(&self, decision: Decision) -> LogFuture<'_> {
        Box::pin(async move {
            let record = encode(&decision);
            let (journal, _writing) = self.segment_for_one()?;
            journal.append(record).await?;
            if let Some(trail) = self.trail.get() {
                for e in &decision.entries {
                    if e.kind == EntryKind::Audit {
                        trail(&e.bytes);
                    }
                }
            }
            Ok(())
        })
    }

    fn is_failing(&self) -> bool {
        self.lock().current.journal.is_failing()
    }
}

impl Segment {
    fn open(dir: &Path, n: u64) -> Result<Self, JournalError> {
        let (journal, _) = Journal::open(&segment_path(dir, n))?;
        Ok(Self {
            n,
            journal,
            gate: Arc::new(RwLock::new(())),
        })
    }
}

impl Sealed {
    /// Its decisions, in order, once every write to it is over.
    pub async fn decisions(&self) -> Result<Vec<Decision>, JournalError> {
        let _alone = self.gate.write().await;
        let path = self.path.clone();
        let records = tokio::task::spawn_blocking(move || read_records(&path))
            .await
            .map_err(|_| JournalError::Stopped)??;
        Ok(records.iter().filter_map(|r| decode(r)).collect())
    }
}
