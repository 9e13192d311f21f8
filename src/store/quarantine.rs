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
        let (_, records) = Journal::open(path)?;
        let mut live: BTreeMap<u64, Quarantined> = BTreeMap::new();
        let (mut ended, mut next) = (0usize, 1u64);
        for r in &records {
            let reference = r
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            match (r.first(), reference) {
                (Some(&QUARANTINED), Some(reference)) => match decode(&r[1..]) {
                    Some(q) => {
                        next = next.max(reference.saturating_add(1));
                        live.insert(reference, q);
                    }
                    None => tracing::warn!("A quarantine record does not read; skipped."),
                },
                (Some(&RELEASED | &DELETED), Some(reference)) => {
                    live.remove(&reference);
                    ended += 1;
                    next = next.max(reference.saturating_add(1));
                }
                (Some(&NEXT), Some(n)) => next = next.max(n),
                _ => tracing::warn!("An unknown quarantine record; skipped."),
            }
        }
        if ended > 1024 && ended > live.len() {
            let head = std::iter::once(next_bytes(next));
            rewrite(path, head.chain(live.values().map(encode)))?;
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
