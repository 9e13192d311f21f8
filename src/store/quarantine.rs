//! Requests anomaly detection quarantined: each journalled before its `I99` (the request as
//! received, so that a release reads, checks and plans it again), until an operator releases or
//! deletes it; a start reads back every one not ended. A crash between a release's effects and
//! its mark leaves the request listed, and a second release sends it again (a duplicate, as
//! DUIS allows; never a lost one).
//!
//! Records: `Q` | reference (u64) | RequestID (24 bytes) | quarantined at (i64, unix seconds) |
//! breach (u8) | the variant (a length byte, then its text) | the request; `R` | reference
//! (released); `X` | reference (deleted); `N` | the next reference (written first by a rewrite,
//! so that references are never reused). A journal with more ended entries than live ones (and
//! over a thousand) is rewritten at open with the live ones only.
//!
//! Bounds: at most `max_entries` requests and `max_bytes` bytes of them; a request past either
//! is refused (`E68`: nothing is kept or sent).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::holds::{decode_id, encode_id};
use super::journal::{rewrite, Journal, JournalError};
use super::requests::CommitError;
use crate::anomaly::BreachKind;
use crate::domain::{RequestId, Srv};

const QUARANTINED: u8 = b'Q';
const RELEASED: u8 = b'R';
const DELETED: u8 = b'X';
const NEXT: u8 = b'N';
const BREACHES: [BreachKind; 3] = [
    BreachKind::UserThreshold,
    BreachKind::DccThreshold,
    BreachKind::AttributeLimits,
];

/// One quarantined request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// The quarantine reference (the `AD1`'s `QuarantineEventRef`).
    pub reference: u64,
    pub request_id: RequestId,
    pub srv: Srv,
    /// When it was quarantined (unix seconds).
    pub at: i64,
    pub breach: BreachKind,
    /// The request as received (the signed DUIS document).
    pub request: Arc<[u8]>,
}

/// How a quarantined request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Released,
    Deleted,
}

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("the quarantine holds {0} requests already")]
    TooMany(usize),
    #[error("quarantined requests would pass {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

#[derive(Default)]
struct State {
    live: BTreeMap<u64, Quarantined>,
    /// References a release or delete is working on.
    claimed: HashSet<u64>,
    bytes: usize,
}

pub struct Quarantine {
    journal: Journal,
    max_entries: usize,
    max_bytes: usize,
    state: Mutex<State>,
    next: AtomicU64,
}

impl Quarantine {
    /// Opens the journal at `path` with every request not ended. Blocking.
    pub fn open(path: &Path, max_entries: usize, max_bytes: usize) -> Result<Self, JournalError> {
        Self::open_with(path, max_entries, max_bytes, Vec::new())
    }

    /// As [`Self::open`], with the quarantines the request log recovered (not yet
    /// checkpointed): read before the journal's records, so that a release or delete marked
    /// there counts, and made durable in the journal (rewritten with every live request) before
    /// this returns. Blocking.
    pub fn open_with(
        path: &Path,
        max_entries: usize,
        max_bytes: usize,
        recovered: Vec<Quarantined>,
    ) -> Result<Self, JournalError> {
        let (_, records) = Journal::open(path)?;
        let from_log = !recovered.is_empty();
        let mut next = 1u64;
        let mut live: BTreeMap<u64, Quarantined> = BTreeMap::new();
        for q in recovered {
            next = next.max(q.reference.saturating_add(1));
            live.insert(q.reference, q);
        }
        // References ended: a quarantine record written after its end (a checkpoint racing a
        // release) does not bring it back; references are never reused.
        let mut ended = HashSet::new();
        for r in &records {
            let reference = r
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            match (r.first(), reference) {
                (Some(&QUARANTINED), Some(reference)) => match decode(&r[1..]) {
                    Some(q) => {
                        next = next.max(reference.saturating_add(1));
                        if !ended.contains(&reference) {
                            live.insert(reference, q);
                        }
                    }
                    None => tracing::warn!("A quarantine record does not read; skipped."),
                },
                (Some(&RELEASED | &DELETED), Some(reference)) => {
                    live.remove(&reference);
                    ended.insert(reference);
                    next = next.max(reference.saturating_add(1));
                }
                (Some(&NEXT), Some(n)) => next = next.max(n),
                _ => tracing::warn!("An unknown quarantine record; skipped."),
            }
        }
        if from_log || (ended.len() > 1024 && ended.len() > live.len()) {
            let head = std::iter::once(next_bytes(next));
            // With records from the log, the ends stay: the log's segments (released only
            // after this start) may be read again, and their records must not come back.
            let ends = ended.iter().filter(|_| from_log).map(|r| {
                let mut record = vec![RELEASED];
                record.extend_from_slice(&r.to_be_bytes());
                record
            });
            rewrite(path, head.chain(live.values().map(encode)).chain(ends))?;
        }
        let (journal, _) = Journal::open(path)?;
        let bytes = live.values().map(|q| q.request.len()).sum();
        Ok(Self {
            journal,
            max_entries,
            max_bytes,
            state: Mutex::new(State {
                live,
                claimed: HashSet::new(),
                bytes,
            }),
            next: AtomicU64::new(next),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before it could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A reference no other quarantined request has or had.
    pub fn next_reference(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a request of `size` bytes could be quarantined now.
    pub fn room_for(&self, size: usize) -> bool {
        let s = self.lock();
        s.live.len() < self.max_entries && s.bytes + size <= self.max_bytes
    }

    /// Keeps `q` durably; returns once it is on disk.
    pub async fn add(&self, q: Quarantined) -> Result<(), QuarantineError> {
        let size = q.request.len();
        {
            let mut s = self.lock();
            if s.live.len() >= self.max_entries {
                return Err(QuarantineError::TooMany(self.max_entries));
            }
            if s.bytes + size > self.max_bytes {
                return Err(QuarantineError::TooLarge(self.max_bytes));
            }
            // Counted while it is written, so concurrent additions cannot pass the bounds; and
            // claimed, so that nobody releases it before it is on disk.
            s.claimed.insert(q.reference);
            s.live.insert(q.reference, q.clone());
            s.bytes += size;
        }
        let written = self.journal.append(encode(&q)).await;
        let mut s = self.lock();
        s.claimed.remove(&q.reference);
        if let Err(e) = written {
            s.live.remove(&q.reference);
            s.bytes -= size;
            return Err(e.into());
        }
        Ok(())
    }

    /// Takes `q` in memory before its decision's commit (the request log carries its record):
    /// counted against the bounds, and claimed, so that nobody releases it before it is
    /// durable. [`Self::admit`] once the decision is durable, [`Self::unreserve`] if it is not.
    pub fn reserve(&self, q: &Quarantined) -> Result<(), QuarantineError> {
        let mut s = self.lock();
        if s.live.len() >= self.max_entries {
            return Err(QuarantineError::TooMany(self.max_entries));
        }
        if s.bytes + q.request.len() > self.max_bytes {
            return Err(QuarantineError::TooLarge(self.max_bytes));
        }
        s.claimed.insert(q.reference);
        s.bytes += q.request.len();
        s.live.insert(q.reference, q.clone());
        Ok(())
    }

    /// A reserved quarantine durable: free for a release or a delete.
    pub fn admit(&self, reference: u64) {
        self.lock().claimed.remove(&reference);
    }

    /// A reserved quarantine whose decision was not committed: forgotten.
    pub fn unreserve(&self, reference: u64) {
        let mut s = self.lock();
        s.claimed.remove(&reference);
        if let Some(q) = s.live.remove(&reference) {
            s.bytes -= q.request.len();
        }
    }

    /// A quarantine durable elsewhere (a log that keeps it: this instance's own at a start, or
    /// a gone instance's claimed), taken up in memory; past the bounds too (it is kept
    /// already). Whether it was new here.
    pub fn adopt(&self, q: Quarantined) -> bool {
        let mut s = self.lock();
        self.next
            .fetch_max(q.reference.saturating_add(1), Ordering::Relaxed);
        if s.live.contains_key(&q.reference) {
            return false;
        }
        s.bytes += q.request.len();
        s.live.insert(q.reference, q);
        true
    }

    /// `reference` dropped from memory unless a release or delete here is working on it (it
    /// was ended through another instance).
    pub fn forget(&self, reference: u64) {
        let mut s = self.lock();
        if s.claimed.contains(&reference) {
            return;
        }
        if let Some(q) = s.live.remove(&reference) {
            s.bytes -= q.request.len();
        }
    }

    /// The request log's checkpoint: the records of `qs` still quarantined, into the journal.
    pub async fn checkpoint(&self, qs: &[Quarantined]) -> Result<(), JournalError> {
        let writes = qs
            .iter()
            .filter(|q| self.lock().live.contains_key(&q.reference))
            .map(|q| self.journal.append(encode(q)));
        for result in futures_util::future::join_all(writes).await {
            result?;
        }
        Ok(())
    }

    /// References from `first` on (cluster mode: a block of the cluster's own, so that no two
    /// instances hand out the same reference). Never lowers the next one.
    pub fn references_from(&self, first: u64) {
        self.next.fetch_max(first, Ordering::Relaxed);
    }

    /// Every quarantined request, oldest reference first.
    pub fn list(&self) -> Vec<Quarantined> {
        self.lock().live.values().cloned().collect()
    }

    /// Takes `reference` for a release or a delete: `None` if it is not quarantined or another
    /// one is working on it. Give it back with [`Self::unclaim`] or end it with [`Self::end`].
    pub fn claim(&self, reference: u64) -> Option<Quarantined> {
        let mut s = self.lock();
        let q = s.live.get(&reference).cloned()?;
        s.claimed.insert(reference).then_some(q)
    }

    pub fn unclaim(&self, reference: u64) {
        self.lock().claimed.remove(&reference);
    }

    /// Marks a claimed `reference` ended; returns once that is on disk.
    pub async fn end(&self, reference: u64, ending: Ending) -> Result<(), JournalError> {
        let kind = match ending {
            Ending::Released => RELEASED,
            Ending::Deleted => DELETED,
        };
        let mut record = vec![kind];
        record.extend_from_slice(&reference.to_be_bytes());
        let written = self.journal.append(record).await;
        let mut s = self.lock();
        s.claimed.remove(&reference);
        written?;
        if let Some(q) = s.live.remove(&reference) {
            s.bytes -= q.request.len();
        }
        Ok(())
    }

    /// Requests quarantined.
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the journal's last write failed (a later one that succeeds clears it).
    pub fn is_failing(&self) -> bool {
        self.journal.is_failing()
    }
}

impl Quarantined {
    /// The journal's record of this quarantine (the request log carries it unchanged).
    pub fn to_record(&self) -> Vec<u8> {
        encode(self)
    }

    /// A record of [`Self::to_record`] read back; `None` if it does not read.
    pub fn from_record(b: &[u8]) -> Option<Self> {
        match b.split_first() {
            Some((&QUARANTINED, rest)) => decode(rest),
            _ => None,
        }
    }
}

/// A future a [`SharedEntries`] returns.
pub type SharedFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, CommitError>> + Send + 'a>>;

/// The request log's entries every instance reads (cluster mode: PostgreSQL's rows): the
/// quarantined requests, so that an operator lists, releases or deletes one through any
/// instance (records are [`Quarantined::to_record`]'s), and the pre-commands, so that a signed
/// pre-command is accepted through any instance.
pub trait SharedEntries: Send + Sync {
    /// Every quarantined request's record, whichever instance keeps it.
    fn list(&self) -> SharedFuture<'_, Vec<Vec<u8>>>;
    /// Takes `reference` over for this instance, for one release or delete: its record, or
    /// `None` if no instance keeps it or a release or delete is working on it.
    fn claim(&self, reference: u64) -> SharedFuture<'_, Option<Vec<u8>>>;
    /// Gives a claim back (the release or delete failed).
    fn unclaim(&self, reference: u64) -> SharedFuture<'_, ()>;
    /// Ends `reference` for good; durable once this resolves.
    fn end(&self, reference: u64) -> SharedFuture<'_, ()>;
    /// The pre-command ledger's record for the Transform `request` (its RequestID's text),
    /// whichever instance issued it (or used it): `None` if none did.
    fn precommand(&self, request: String) -> SharedFuture<'_, Option<Vec<u8>>>;
}

fn next_bytes(next: u64) -> Vec<u8> {
    let mut out = vec![NEXT];
    out.extend_from_slice(&next.to_be_bytes());
    out
}

fn encode(q: &Quarantined) -> Vec<u8> {
    let srv = q.srv.to_string();
    let mut out = Vec::with_capacity(1 + 8 + 24 + 8 + 2 + srv.len() + q.request.len());
    out.push(QUARANTINED);
    out.extend_from_slice(&q.reference.to_be_bytes());
    encode_id(&q.request_id, &mut out);
    out.extend_from_slice(&q.at.to_be_bytes());
    let breach = BREACHES.iter().position(|b| *b == q.breach).unwrap_or(0);
    // Three kinds: the index fits a byte.
    out.push(breach as u8);
    // A variant's text is at most 11 bytes ("255.255.255").
    out.push(srv.len() as u8);
    out.extend_from_slice(srv.as_bytes());
    out.extend_from_slice(&q.request);
    out
}

fn decode(b: &[u8]) -> Option<Quarantined> {
    let reference = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
    let request_id = decode_id(b.get(8..32)?)?;
    let at = i64::from_be_bytes(b.get(32..40)?.try_into().ok()?);
    let breach = *BREACHES.get(usize::from(*b.get(40)?))?;
    let (&len, rest) = b.get(41..)?.split_first()?;
    let srv = std::str::from_utf8(rest.get(..usize::from(len))?)
        .ok()?
        .parse()
        .ok()?;
    let request = Arc::from(rest.get(usize::from(len)..)?);
    Some(Quarantined {
        reference,
        request_id,
        srv,
        at,
        breach,
        request,
    })
}

#[cfg(test)]
mod tests;
