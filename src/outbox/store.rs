//! The outbox on disk: a directory of journal segments (`0000000000000001.seg`, …), each a
//! [`Journal`] (checksummed records, group commit). New messages and the markers that follow
//! them (delivered, dead, revived, discarded) are appended to the newest segment; when it
//! passes its size it is sealed and a new one begun.
//!
//! Compaction works from the oldest end, so that no marker is ever lost while the record it
//! refers to survives: a sealed oldest segment with nothing live in it is deleted; one that is
//! mostly garbage has its live messages (pending and dead letters, with their state) carried
//! forward into the newest segment and is then deleted. Replaying the segments in order at
//! start rebuilds the state: later records override earlier ones.
//!
//! The in-memory state is authoritative while running; it is changed first and the marker
//! journalled after, by one task ([`super::worker::run_markers`]) that also compacts, so a
//! carried copy can never land after a marker that should have removed it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::message::{Message, MessageId};
use super::record::{self, Event, Record};
use super::OutboxError;
use crate::store::{Journal, MAX_RECORD_BYTES};

/// Bytes of framing the journal adds to each record.
const FRAME_BYTES: u64 = 8;

pub(super) struct Entry {
    pub message: Arc<Message>,
    pub segment: u64,
    pub dead_at: Option<i64>,
}

#[derive(Default, Debug, Clone, Copy)]
struct Segment {
    /// Bytes in the file.
    bytes: u64,
    /// Live messages whose latest copy is here, plus enqueues in flight to it.
    live: u64,
    live_bytes: u64,
}

pub(super) struct State {
    current: u64,
    journal: Journal,
    segments: BTreeMap<u64, Segment>,
    pub entries: HashMap<MessageId, Entry>,
    pub dead: BTreeSet<MessageId>,
    /// Pending (not dead) messages by when their hold began, oldest first.
    pub by_age: BTreeSet<(i64, MessageId)>,
    /// Body bytes of every live message (pending, dead, and enqueues in flight).
    pub held_bytes: u64,
}

pub(super) struct Store {
    dir: PathBuf,
    segment_bytes: u64,
    state: Mutex<State>,
}

/// What compaction should do next with the oldest sealed segment.
pub(super) enum Compaction {
    Nothing,
    Delete(u64),
    Carry(u64, Vec<(Arc<Message>, Option<i64>)>),
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.seg"))
}

impl Store {
    /// Opens the segments under `dir` (creating it), replays them, and returns the store and
    /// the messages still pending, oldest first.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Self, Vec<Arc<Message>>), OutboxError> {
        let io = |source| OutboxError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut numbers = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        let newest = numbers.last().copied().unwrap_or(1);
        if numbers.is_empty() {
            numbers.push(newest);
        }
        // The newest segment stays open for appending; older ones are only read.
        let (journal, mut newest_records) = Journal::open(&segment_path(dir, newest))?;
        let mut state = State {
            current: newest,
            journal,
            segments: BTreeMap::new(),
            entries: HashMap::new(),
            dead: BTreeSet::new(),
            by_age: BTreeSet::new(),
            held_bytes: 0,
        };
        let mut order = 0u64;
        let mut first_seen: HashMap<MessageId, u64> = HashMap::new();
        for &n in &numbers {
            let path = segment_path(dir, n);
            let records = if n == newest {
                std::mem::take(&mut newest_records)
            } else {
                Journal::open(&path)?.1
            };
            let bytes = std::fs::metadata(&path).map_err(io)?.len();
            state.segments.insert(
                n,
                Segment {
                    bytes,
                    ..Segment::default()
                },
            );
            for (index, bytes) in records.iter().enumerate() {
                let record = record::decode(bytes).map_err(|source| OutboxError::Record {
                    segment: path.clone(),
                    index,
                    source,
                })?;
                for id in state.replay(n, record) {
                    first_seen.entry(id).or_insert_with(|| {
                        order += 1;
                        order
                    });
                }
            }
        }
        let mut pending: Vec<Arc<Message>> = state
            .entries
            .iter()
            .filter(|(_, e)| e.dead_at.is_none())
            .map(|(_, e)| e.message.clone())
            .collect();
        pending.sort_by_key(|m| (m.held_since, first_seen.get(&m.id).copied()));
        let store = Self {
            dir: dir.to_owned(),
            segment_bytes,
            state: Mutex::new(state),
        };
        Ok((store, pending))
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock is a bug elsewhere; the state it guards is still
        // consistent enough to keep delivering, so a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the newest segment is due to be sealed.
    pub fn wants_roll(&self) -> bool {
        let s = self.lock();
        s.segments
            .get(&s.current)
            .is_some_and(|seg| seg.bytes >= self.segment_bytes)
    }

    /// Seals the newest segment and begins the next. Blocking (creates and fsyncs a file).
    pub fn roll(&self) -> Result<(), OutboxError> {
        let next = self.lock().current + 1;
        let (journal, old) = Journal::open(&segment_path(&self.dir, next))?;
        debug_assert!(old.is_empty());
        let mut s = self.lock();
        s.segments.insert(next, Segment::default());
        s.current = next;
        s.journal = journal;
        Ok(())
    }

    /// Decides what to do with the oldest sealed segment.
    pub fn compaction(&self) -> Compaction {
        let s = self.lock();
        let Some((&oldest, seg)) = s.segments.first_key_value() else {
            return Compaction::Nothing;
        };
        if oldest == s.current {
            return Compaction::Nothing;
        }
        if seg.live == 0 {
            return Compaction::Delete(oldest);
        }
        if seg.live_bytes.saturating_mul(2) > seg.bytes {
            return Compaction::Nothing;
        }
        let carry = s
            .entries
            .values()
            .filter(|e| e.segment == oldest)
            .map(|e| (e.message.clone(), e.dead_at))
            .collect();
        Compaction::Carry(oldest, carry)
    }

    /// Moves what was carried out of `from` (copies now durable in `to`) and deletes `from`
    /// if nothing is left in it. Blocking.
    pub fn carried(&self, from: u64, to: u64, ids: &[MessageId]) -> Result<(), OutboxError> {
        let mut s = self.lock();
        for id in ids {
            let Some(e) = s.entries.get_mut(id) else {
                continue;
            };
            if e.segment != from {
                continue;
            }
            e.segment = to;
            let len = record::message_len(&e.message) as u64;
            s.unlive(from, len);
            s.live(to, len);
        }
        let empty = s.segments.get(&from).is_some_and(|seg| seg.live == 0);
        drop(s);
        if empty {
            self.delete(from)?;
        }
        Ok(())
    }

    /// Deletes a sealed segment with nothing live in it. Blocking.
    pub fn delete(&self, n: u64) -> Result<(), OutboxError> {
        {
            let mut s = self.lock();
            if n == s.current || s.segments.get(&n).is_none_or(|seg| seg.live != 0) {
                return Ok(());
            }
            s.segments.remove(&n);
        }
        let path = segment_path(&self.dir, n);
        let io = |source| OutboxError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        crate::store::sync_dir(&self.dir).map_err(io)
    }

    pub fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }
}

impl State {
    pub fn current(&self) -> (u64, Journal) {
        (self.current, self.journal.clone())
    }

    pub fn wrote(&mut self, segment: u64, record_len: usize) {
        if let Some(seg) = self.segments.get_mut(&segment) {
            seg.bytes += record_len as u64 + FRAME_BYTES;
        }
    }

    pub fn live(&mut self, segment: u64, len: u64) {
        let seg = self.segments.entry(segment).or_default();
        seg.live += 1;
        seg.live_bytes += len;
    }

    pub fn unlive(&mut self, segment: u64, len: u64) {
        if let Some(seg) = self.segments.get_mut(&segment) {
            seg.live = seg.live.saturating_sub(1);
            seg.live_bytes = seg.live_bytes.saturating_sub(len);
        }
    }

    /// Forgets a message (delivered or discarded).
    pub fn remove(&mut self, id: MessageId) -> Option<Entry> {
        let e = self.entries.remove(&id)?;
        self.dead.remove(&id);
        self.by_age.remove(&(e.message.held_since, id));
        self.unlive(e.segment, record::message_len(&e.message) as u64);
        self.held_bytes = self.held_bytes.saturating_sub(e.message.body.len() as u64);
        Some(e)
    }

    /// Adds or replaces a message whose latest copy is in `segment` (already counted live
    /// there), pending or dead.
    pub fn insert(&mut self, message: Arc<Message>, segment: u64, dead_at: Option<i64>) {
        let id = message.id;
        if dead_at.is_some() {
            self.dead.insert(id);
        } else {
            self.dead.remove(&id);
            self.by_age.insert((message.held_since, id));
        }
        let old = self.entries.insert(
            id,
            Entry {
                message,
                segment,
                dead_at,
            },
        );
        if let Some(old) = old {
            let still = self
                .entries
                .get(&id)
                .map(|e| (e.message.held_since, e.dead_at));
            if still != Some((old.message.held_since, None)) {
                self.by_age.remove(&(old.message.held_since, id));
            }
        }
    }

    /// Applies one record read back from segment `n`; returns the IDs it (re)introduced.
    fn replay(&mut self, n: u64, record: Record) -> Vec<MessageId> {
        let mut introduced = Vec::new();
        match record {
            Record::Enqueued(messages) => {
                for m in messages {
                    if self.entries.contains_key(&m.id) {
                        continue;
                    }
                    introduced.push(m.id);
                    self.held_bytes += m.body.len() as u64;
                    self.live(n, record::message_len(&m) as u64);
                    self.insert(Arc::new(m), n, None);
                }
            }
            Record::Carried(messages) => {
                for (m, dead_at) in messages {
                    self.remove(m.id);
                    introduced.push(m.id);
                    self.held_bytes += m.body.len() as u64;
                    self.live(n, record::message_len(&m) as u64);
                    self.insert(Arc::new(m), n, dead_at);
                }
            }
            Record::Events(events) => {
                for e in events {
                    self.apply(e);
                }
            }
        }
        introduced
    }

    /// Applies one marker to the in-memory state (replay; running code changes the state
    /// itself before the marker is written).
    fn apply(&mut self, event: Event) {
        match event {
            Event::Delivered(id) | Event::Discarded(id) => {
                self.remove(id);
            }
            Event::Dead { id, at } => {
                if let Some(e) = self.entries.get(&id) {
                    let (message, segment) = (e.message.clone(), e.segment);
                    self.insert(message, segment, Some(at));
                }
            }
            Event::Revived { id, at } => {
                if let Some(e) = self.entries.get(&id) {
                    let mut m = (*e.message).clone();
                    m.held_since = at;
                    let segment = e.segment;
                    self.insert(Arc::new(m), segment, None);
                }
            }
        }
    }
}

/// Splits `messages` into records of at most the journal's bound; `make` builds each one.
pub(super) fn chunk<T, F>(items: Vec<T>, size: impl Fn(&T) -> usize, make: F) -> Vec<Vec<u8>>
where
    F: Fn(Vec<T>) -> Record,
{
    // Header (tag and count) plus slack for the carried state of each item.
    let budget = MAX_RECORD_BYTES - 16;
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut used = 0usize;
    for item in items {
        let n = size(&item) + 9;
        if !batch.is_empty() && used + n > budget {
            out.push(record::encode(&make(std::mem::take(&mut batch))));
            used = 0;
        }
        used += n;
        batch.push(item);
    }
    if !batch.is_empty() {
        out.push(record::encode(&make(batch)));
    }
    out
}
