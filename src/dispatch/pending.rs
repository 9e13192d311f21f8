//! The pending journal: every command the gateway acknowledged (`I99`) and whose outcome is not
//! yet durably in the outbox. A directory of numbered segment files, each a
//! [`Journal`](crate::store::Journal) (checksummed records, group commit):
//!
//! - `record` appends `P` + the signed command to the newest segment and returns after fsync;
//! - `settle` appends `S` + the RequestID (its loss only means a duplicate after a restart);
//! - once the newest segment holds `segment_records` records a new one starts;
//! - a segment is deleted once every command recorded in it is settled, oldest first (so a
//!   settle mark is never deleted while the command it settles is still on disk);
//! - when more than `max_segments` are kept, the oldest one's unsettled commands are copied
//!   into the newest and it is deleted (a command that never settles cannot pin the journal);
//! - on open, everything is read, the unsettled commands are written to a fresh segment, and the
//!   old segments are deleted.
//!
//! A command whose request committed it to the request log (`store::RequestLog`) is pending in
//! memory only (`admit`, segment [`IN_LOG`]) until the log's checkpoint copies it into the
//! newest segment (`checkpoint`); a start reads the log's uncheckpointed commands (`open`'s
//! `recovered`) with the segments.
//!
//! Reading back is order-free: a RequestID settled anywhere is settled. A RequestID is recorded
//! once (anti-replay refuses a repeat; the CV4/CV5 pair shares one but only CV5 goes to a
//! device), so this is exact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::domain::{Eui64, RequestId};
use crate::routing::SignedCommand;
use crate::store::{numbered_files, sync_dir, Journal, JournalError};

const PENDING: u8 = b'P';
/// The segment number of a command whose record is in the request log, not yet in a segment.
const IN_LOG: u64 = 0;
const SETTLED: u8 = b'S';

#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("pending journal directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub(super) struct PendingJournal {
    dir: PathBuf,
    segment_records: usize,
    max_segments: usize,
    state: Mutex<State>,
    /// One compaction at a time: a copy-forward must be durable before its segment goes.
    compacting: tokio::sync::Mutex<()>,
}

struct State {
    current: u64,
    current_records: usize,
    journal: Journal,
    /// Live (unsettled) commands per segment, oldest first; includes the current one.
    live: BTreeMap<u64, usize>,
    /// Unsettled commands: the segment holding their newest record, and the command.
    entries: HashMap<RequestId, (u64, SignedCommand)>,
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("pending-{n:016}.journal"))
}

fn dir_error(dir: &Path) -> impl FnOnce(std::io::Error) -> PendingError + '_ {
    move |source| PendingError::Dir {
        path: dir.to_owned(),
        source,
    }
}

impl PendingJournal {
    /// Opens the journal in `dir` and returns it with every command still pending, in the order
    /// first recorded.
    pub async fn open(
        dir: &Path,
        segment_records: usize,
        max_segments: usize,
        recovered: Vec<SignedCommand>,
    ) -> Result<(Self, Vec<SignedCommand>), PendingError> {
        std::fs::create_dir_all(dir).map_err(dir_error(dir))?;
        let old = numbered_files::<u64>(dir, "pending-", ".journal").map_err(dir_error(dir))?;
        let mut read = ReadBack::default();
        for cmd in recovered {
            read.pending(cmd);
        }
        for (_, path) in &old {
            let (_, records) = Journal::open(path)?;
            for r in records {
                read.record(&r, path);
            }
        }
        let ReadBack {
            order,
            mut commands,
            settled,
        } = read;
        let next = old.last().map_or(1, |(n, _)| n + 1);
        let (journal, _) = Journal::open(&segment_path(dir, next))?;
        let mut entries = HashMap::new();
        let mut pending = Vec::new();
        let mut writes = tokio::task::JoinSet::new();
        for id in order.into_iter().filter(|id| !settled.contains(id)) {
            if let Some(cmd) = commands.remove(&id) {
                let j = journal.clone();
                let rec = record_bytes(&cmd);
                writes.spawn(async move { j.append(rec).await });
                entries.insert(id, (next, cmd.clone()));
                pending.push(cmd);
            }
        }
        while let Some(done) = writes.join_next().await {
            done.map_err(|_| JournalError::Stopped)??;
        }
        // The fresh segment holds every pending command durably: the old ones can go.
        for (_, path) in &old {
            std::fs::remove_file(path).map_err(dir_error(dir))?;
        }
        sync_dir(dir).map_err(dir_error(dir))?;
        let state = State {
            current: next,
            current_records: pending.len(),
            journal,
            live: BTreeMap::from([(next, pending.len())]),
            entries,
        };
        Ok((
            Self {
                dir: dir.to_owned(),
                segment_records: segment_records.max(1),
                max_segments: max_segments.max(2),
                state: Mutex::new(state),
                compacting: tokio::sync::Mutex::new(()),
            },
            pending,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before it can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the current segment's last write failed.
    pub fn is_failing(&self) -> bool {
        self.lock().journal.is_failing()
    }

    /// Records `cmd` durably. A RequestID already pending is not recorded twice.
    pub async fn record(&self, id: RequestId, cmd: &SignedCommand) -> Result<(), PendingError> {
        let journal = {
            let mut s = self.lock();
            if s.entries.contains_key(&id) {
                return Ok(());
            }
            self.rotate_if_full(&mut s)?;
            let seg = s.current;
            s.entries.insert(id, (seg, cmd.clone()));
            *s.live.entry(seg).or_insert(0) += 1;
            s.current_records += 1;
            s.journal.clone()
        };
        if let Err(e) = journal.append(record_bytes(cmd)).await {
            let mut s = self.lock();
            if let Some((seg, _)) = s.entries.remove(&id) {
                decrement(&mut s.live, seg);
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Takes `cmd`, whose record is being committed to the request log, as pending (in memory
    /// until [`Self::checkpoint`]): taken before the commit, so that a checkpoint of the segment
    /// the commit lands in always finds it. Returns whether it was new (a RequestID already
    /// pending is not taken twice).
    pub fn admit(&self, id: RequestId, cmd: &SignedCommand) -> bool {
        let mut s = self.lock();
        match s.entries.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((IN_LOG, cmd.clone()));
                true
            }
        }
    }

    /// Whether `id` is pending with its record in the request log only (taken by
    /// [`Self::admit`], not checkpointed here).
    pub fn in_log(&self, id: &RequestId) -> bool {
        matches!(self.lock().entries.get(id), Some((IN_LOG, _)))
    }

    /// Forgets a command [`Self::admit`] took whose commit failed.
    pub fn forget(&self, id: &RequestId) {
        let mut s = self.lock();
        if matches!(s.entries.get(id), Some((IN_LOG, _))) {
            s.entries.remove(id);
        }
    }

    /// Copies commands from a sealed segment of the request log into the newest segment (those
    /// still pending only there); returns once they are durable.
    pub async fn checkpoint(&self, cmds: &[SignedCommand]) -> Result<(), PendingError> {
        let (journal, records) = {
            let mut s = self.lock();
            self.rotate_if_full(&mut s)?;
            let current = s.current;
            let mut records = Vec::new();
            for cmd in cmds {
                let Ok(h) = cmd.header() else { continue };
                match s.entries.get_mut(&h.request_id) {
                    Some((seg, _)) if *seg == IN_LOG => *seg = current,
                    _ => continue,
                }
                records.push((h.request_id, record_bytes(cmd)));
            }
            *s.live.entry(current).or_insert(0) += records.len();
            s.current_records += records.len();
            (s.journal.clone(), records)
        };
        let writes = records.iter().map(|(_, r)| journal.append(r.clone()));
        let failed = futures_util::future::join_all(writes)
            .await
            .into_iter()
            .find_map(Result::err);
        if let Some(e) = failed {
            // Not known to be durable here: pending in the request log again, so that the
            // segment there is kept until a checkpoint works.
            let mut s = self.lock();
            for (id, _) in &records {
                let was = s
                    .entries
                    .get_mut(id)
                    .map(|(seg, _)| std::mem::replace(seg, IN_LOG));
                if let Some(was) = was {
                    decrement(&mut s.live, was);
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Marks `id` settled. Returns whether it was pending.
    pub async fn settle(&self, id: &RequestId) -> Result<bool, PendingError> {
        let journal = {
            let mut s = self.lock();
            let Some((seg, _)) = s.entries.remove(id) else {
                return Ok(false);
            };
            decrement(&mut s.live, seg);
            self.rotate_if_full(&mut s)?;
            s.current_records += 1;
            s.journal.clone()
        };
        journal.append(settle_bytes(id)).await?;
        Ok(true)
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Segment files on disk (for the compaction tests and the operator's view).
    pub fn segment_count(&self) -> usize {
        self.lock().live.len()
    }

    /// Deletes settled segments, oldest first, and copies the oldest one forward when too many
    /// are kept. Run in the background after settles.
    pub async fn compact(&self) -> Result<(), PendingError> {
        let _one = self.compacting.lock().await;
        loop {
            let doomed = {
                let mut s = self.lock();
                let mut doomed = Vec::new();
                while let Some((&seg, &live)) = s.live.first_key_value() {
                    if seg == s.current || live > 0 {
                        break;
                    }
                    s.live.remove(&seg);
                    doomed.push(seg);
                }
                doomed
            };
            for seg in &doomed {
                match std::fs::remove_file(segment_path(&self.dir, *seg)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(dir_error(&self.dir)(e)),
                }
            }
            if !doomed.is_empty() {
                sync_dir(&self.dir).map_err(dir_error(&self.dir))?;
            }
            if !self.copy_forward().await? {
                return Ok(());
            }
        }
    }

    /// Moves the oldest segment's live commands into the current one if too many segments are
    /// kept; says whether it did.
    async fn copy_forward(&self) -> Result<bool, PendingError> {
        let (journal, records) = {
            let mut s = self.lock();
            if s.live.len() <= self.max_segments {
                return Ok(false);
            }
            let Some((&oldest, _)) = s.live.first_key_value() else {
                return Ok(false);
            };
            if oldest == s.current {
                return Ok(false);
            }
            let current = s.current;
            let mut records = Vec::new();
            for (seg, cmd) in s.entries.values_mut() {
                if *seg == oldest {
                    *seg = current;
                    records.push(record_bytes(cmd));
                }
            }
            s.live.insert(oldest, 0);
            *s.live.entry(current).or_insert(0) += records.len();
            s.current_records += records.len();
            (s.journal.clone(), records)
        };
        let mut writes = tokio::task::JoinSet::new();
        for r in records {
            let j = journal.clone();
            writes.spawn(async move { j.append(r).await });
        }
        while let Some(done) = writes.join_next().await {
            done.map_err(|_| JournalError::Stopped)??;
        }
        Ok(true)
    }

    fn rotate_if_full(&self, s: &mut State) -> Result<(), PendingError> {
        if s.current_records < self.segment_records {
            return Ok(());
        }
        let next = s.current + 1;
        let (journal, _) = Journal::open(&segment_path(&self.dir, next))?;
        s.journal = journal;
        s.current = next;
        s.current_records = 0;
        s.live.insert(next, 0);
        Ok(())
    }
}

/// What a start reads back: commands in the order first recorded, and the settled RequestIDs.
#[derive(Default)]
struct ReadBack {
    order: Vec<RequestId>,
    commands: HashMap<RequestId, SignedCommand>,
    settled: HashSet<RequestId>,
}

impl ReadBack {
    fn pending(&mut self, cmd: SignedCommand) -> bool {
        let Ok(h) = cmd.header() else { return false };
        if self.commands.insert(h.request_id, cmd).is_none() {
            self.order.push(h.request_id);
        }
        true
    }

    fn record(&mut self, r: &[u8], path: &Path) {
        match r.split_first() {
            Some((&PENDING, bytes)) => {
                // A record that does not read was not written by this gateway's signer path;
                // it cannot be dispatched and is dropped (logged).
                if !self.pending(SignedCommand::from_bytes(bytes.to_vec())) {
                    tracing::warn!(segment = %path.display(), "Pending journal record is not a command; skipped.");
                }
            }
            Some((&SETTLED, id)) => {
                if let Some(id) = decode_id(id) {
                    self.settled.insert(id);
                }
            }
            _ => {
                tracing::warn!(segment = %path.display(), "Unknown pending journal record; skipped.")
            }
        }
    }
}

fn decrement(live: &mut BTreeMap<u64, usize>, seg: u64) {
    if let Some(n) = live.get_mut(&seg) {
        *n = n.saturating_sub(1);
    }
}

fn record_bytes(cmd: &SignedCommand) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + cmd.as_bytes().len());
    out.push(PENDING);
    out.extend_from_slice(cmd.as_bytes());
    out
}

fn settle_bytes(id: &RequestId) -> Vec<u8> {
    let mut out = Vec::with_capacity(25);
    out.push(SETTLED);
    out.extend_from_slice(id.originator.as_bytes());
    out.extend_from_slice(id.target.as_bytes());
    out.extend_from_slice(&id.counter.to_be_bytes());
    out
}

fn decode_id(b: &[u8]) -> Option<RequestId> {
    let b: &[u8; 24] = b.try_into().ok()?;
    let eui = |r: &[u8]| -> Option<Eui64> { Some(Eui64::from_bytes(r.try_into().ok()?)) };
    Some(RequestId {
        originator: eui(&b[0..8])?,
        target: eui(&b[8..16])?,
        counter: u64::from_be_bytes(b[16..24].try_into().ok()?),
    })
}
