//! Held future-dated requests: requests whose future-dated pattern is the DSP's, kept until their
//! execution time. Each is journalled before its `I99` (the request as received, so that it is
//! read, checked and made into a command again when it is released), and marked done once its
//! command is in the pending journal or its refusal in the outbox; a start reads back every hold
//! not marked done. A crash between release and mark releases it again (a duplicate command, as
//! DUIS allows; never a lost one).
//!
//! Records: `H` | RequestID (24 bytes) | due (i64, unix seconds) | the variant (a length byte,
//! then its text) | the request; `D` | RequestID.
//! A journal with more done holds than live ones (and over a thousand) is rewritten at open with
//! the live ones only.
//!
//! Bounds: at most `max_held` holds and `max_bytes` bytes of held requests; a hold past either is
//! refused (the request gets its code, nothing is kept).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use tokio::sync::Notify;

use super::journal::{rewrite, Journal, JournalError};
use super::requests::{EntryKind, RequestLog};
use crate::domain::{Eui64, RequestId, Srv};

const HELD: u8 = b'H';
const DONE: u8 = b'D';
const ID_BYTES: usize = 24;

/// `[dsp]` bounds on what is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HoldLimits {
    pub max_held: usize,
    pub max_bytes: usize,
}

impl Default for HoldLimits {
    fn default() -> Self {
        Self {
            max_held: 100_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One held request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub request_id: RequestId,
    /// Its Service Reference Variant (what its final message names).
    pub srv: Srv,
    /// When it is to be sent (unix seconds): its `ExecutionDateTime`.
    pub due: i64,
    /// The request as received (the signed DUIS document).
    pub request: Arc<[u8]>,
}

#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("{0} requests are held already")]
    TooMany(usize),
    #[error("held requests would pass {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

#[derive(Default)]
struct State {
    /// Waiting holds by due time (and arrival, for ties).
    waiting: BTreeMap<(i64, u64), Held>,
    /// Every hold not done (being written, waiting, or being released).
    live: HashMap<RequestId, Live>,
    /// The bytes of every live hold's request.
    bytes: usize,
    arrivals: u64,
}

struct Live {
    /// Where it waits, while it does.
    key: Option<(i64, u64)>,
    size: usize,
}

pub struct Holds {
    journal: Journal,
    limits: HoldLimits,
    state: Mutex<State>,
    /// Told when a hold is added, so a timer waiting for a later one looks again.
    added: Notify,
    /// A request log that keeps the holds itself (cluster mode), told when one is done.
    settled_in: std::sync::OnceLock<Arc<dyn RequestLog>>,
}

impl Holds {
    /// Opens the journal at `path` and returns every hold not done. Blocking.
    pub fn open(path: &Path, limits: HoldLimits) -> Result<Self, JournalError> {
        Self::open_with(path, limits, Vec::new())
    }

    /// As [`Self::open`], with the holds the request log recovered (not yet checkpointed):
    /// read before the journal's records, so that a release marked done there counts, and
    /// made durable in the journal (rewritten with every live hold) before this returns.
    pub fn open_with(
        path: &Path,
        limits: HoldLimits,
        recovered: Vec<Held>,
    ) -> Result<Self, JournalError> {
        let (_, records) = Journal::open(path)?;
        let mut held: HashMap<RequestId, Held> = HashMap::new();
        let mut order: Vec<RequestId> = Vec::new();
        // Requests done: a hold record written after its own end (a checkpoint racing a
        // release) does not bring it back.
        let mut done = std::collections::HashSet::new();
        let from_log: std::collections::HashSet<RequestId> =
            recovered.iter().map(|h| h.request_id).collect();
        for h in recovered {
            order.push(h.request_id);
            held.insert(h.request_id, h);
        }
        for r in &records {
            match r.split_first() {
                Some((&HELD, rest)) => match decode_held(rest) {
                    Some(h) if done.contains(&h.request_id) => {}
                    Some(h) => {
                        order.push(h.request_id);
                        held.insert(h.request_id, h);
                    }
                    None => tracing::warn!("A held-request record does not read; skipped."),
                },
                Some((&DONE, id)) => {
                    if let Some(id) = decode_id(id) {
                        held.remove(&id);
                        done.insert(id);
                    }
                }
                _ => tracing::warn!("An unknown held-request record; skipped."),
            }
        }
        let mut seen = std::collections::HashSet::new();
        order.retain(|id| held.contains_key(id) && seen.insert(*id));
        if !from_log.is_empty() || (done.len() > 1024 && done.len() > held.len()) {
            // With holds from the log, the marks of those done stay: the log's segments
            // (released only after a checkpoint) still hold them at the next start.
            let marks = done.iter().filter(|id| from_log.contains(id)).map(|id| {
                let mut record = vec![DONE];
                encode_id(id, &mut record);
                record
            });
            rewrite(
                path,
                order
                    .iter()
                    .filter_map(|id| held.get(id))
                    .map(held_bytes)
                    .chain(marks),
            )?;
        }
        let (journal, _) = Journal::open(path)?;
        let holds = Self {
            journal,
            limits,
            state: Mutex::new(State::default()),
            added: Notify::new(),
            settled_in: std::sync::OnceLock::new(),
        };
        {
            let mut s = holds.lock();
            for id in order {
                if let Some(h) = held.remove(&id) {
                    let size = h.request.len();
                    s.live.insert(id, Live { key: None, size });
                    s.bytes += size;
                    s.wait(h);
                }
            }
        }
        Ok(holds)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before it could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `held` durably; returns once it is on disk. A RequestID already held is not held
    /// twice.
    pub async fn hold(&self, held: Held) -> Result<(), HoldError> {
        let size = held.request.len();
        {
            let mut s = self.lock();
            if s.live.contains_key(&held.request_id) {
                return Ok(());
            }
            if s.live.len() >= self.limits.max_held {
                return Err(HoldError::TooMany(self.limits.max_held));
            }
            if s.bytes + size > self.limits.max_bytes {
                return Err(HoldError::TooLarge(self.limits.max_bytes));
            }
            // Counted while it is written, so concurrent holds cannot pass the bounds.
            s.live.insert(held.request_id, Live { key: None, size });
            s.bytes += size;
        }
        if let Err(e) = self.journal.append(held_bytes(&held)).await {
            let mut s = self.lock();
            s.live.remove(&held.request_id);
            s.bytes -= size;
            return Err(e.into());
        }
        self.lock().wait(held);
        self.added.notify_one();
        Ok(())
    }

    /// Counts `held` against the bounds before its decision is committed to the request log;
    /// `Ok(false)` if that RequestID is held already (nothing more to keep). Then
    /// [`Self::admit`] once committed, or [`Self::unreserve`] if not.
    pub fn reserve(&self, held: &Held) -> Result<bool, HoldError> {
        let size = held.request.len();
        let mut s = self.lock();
        if s.live.contains_key(&held.request_id) {
            return Ok(false);
        }
        if s.live.len() >= self.limits.max_held {
            return Err(HoldError::TooMany(self.limits.max_held));
        }
        if s.bytes + size > self.limits.max_bytes {
            return Err(HoldError::TooLarge(self.limits.max_bytes));
        }
        s.live.insert(held.request_id, Live { key: None, size });
        s.bytes += size;
        Ok(true)
    }

    /// A reserved hold whose decision is durable: it waits for its time.
    pub fn admit(&self, held: Held) {
        self.lock().wait(held);
        self.added.notify_one();
    }

    /// A reserved hold whose decision was not committed: forgotten.
    pub fn unreserve(&self, id: &RequestId) {
        let mut s = self.lock();
        if let Some(live) = s.live.remove(id) {
            s.bytes -= live.size;
        }
    }

    /// Copies holds from a sealed segment of the request log into the journal (those not done
    /// since); returns once they are durable.
    pub async fn checkpoint(&self, holds: &[Held]) -> Result<(), JournalError> {
        let writes = holds
            .iter()
            .filter(|h| self.lock().live.contains_key(&h.request_id))
            .map(|h| self.journal.append(held_bytes(h)));
        for result in futures_util::future::join_all(writes).await {
            result?;
        }
        Ok(())
    }

    /// Whether a request of `size` bytes could be held now.
    pub fn room_for(&self, size: usize) -> bool {
        let s = self.lock();
        s.live.len() < self.limits.max_held && s.bytes + size <= self.limits.max_bytes
    }

    /// The earliest due time of a waiting hold.
    pub fn next_due(&self) -> Option<i64> {
        self.lock().waiting.keys().next().map(|(due, _)| *due)
    }

    /// Takes every waiting hold due at or before `now`, oldest first; each stays counted until
    /// [`Self::done`].
    pub fn take_due(&self, now: i64) -> Vec<Held> {
        let mut s = self.lock();
        let later = s.waiting.split_off(&(now.saturating_add(1), 0));
        let due = std::mem::replace(&mut s.waiting, later);
        due.into_values()
            .inspect(|h| {
                if let Some(live) = s.live.get_mut(&h.request_id) {
                    live.key = None;
                }
            })
            .collect()
    }

    /// From now on, tells `log` of every hold done (a log that keeps the holds itself rather
    /// than copying them here). Set once; a second call does nothing.
    pub fn settle_in(&self, log: Arc<dyn RequestLog>) {
        let _ = self.settled_in.set(log);
    }

    /// Marks `id` done (released or refused); returns once that is on disk.
    pub async fn done(&self, id: &RequestId) -> Result<(), JournalError> {
        let mut record = Vec::with_capacity(1 + ID_BYTES);
        record.push(DONE);
        encode_id(id, &mut record);
        self.journal.append(record).await?;
        if let Some(log) = self.settled_in.get() {
            log.settle(EntryKind::Hold, id.to_string());
        }
        let mut s = self.lock();
        if let Some(live) = s.live.remove(id) {
            if let Some(key) = live.key {
                s.waiting.remove(&key);
            }
            s.bytes -= live.size;
        }
        Ok(())
    }

    /// Resolves once a hold has been added since the last call.
    pub async fn added(&self) {
        self.added.notified().await;
    }

    /// Holds not done.
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

impl State {
    /// `held`, already counted in `live` and `bytes`, waits for its time.
    fn wait(&mut self, held: Held) {
        self.arrivals += 1;
        let key = (held.due, self.arrivals);
        if let Some(live) = self.live.get_mut(&held.request_id) {
            live.key = Some(key);
        }
        self.waiting.insert(key, held);
    }
}

impl Held {
    /// Its record, as the journal (and the request log) keep it.
    pub fn to_record(&self) -> Vec<u8> {
        held_bytes(self)
    }

    /// A record read back; `None` if it is not a hold's.
    pub fn from_record(b: &[u8]) -> Option<Self> {
        match b.split_first() {
            Some((&HELD, rest)) => decode_held(rest),
            _ => None,
        }
    }
}

fn held_bytes(h: &Held) -> Vec<u8> {
    let srv = h.srv.to_string();
    let mut out = Vec::with_capacity(1 + ID_BYTES + 9 + srv.len() + h.request.len());
    out.push(HELD);
    encode_id(&h.request_id, &mut out);
    out.extend_from_slice(&h.due.to_be_bytes());
    // A variant's text is at most 11 bytes ("255.255.255").
    out.push(srv.len() as u8);
    out.extend_from_slice(srv.as_bytes());
    out.extend_from_slice(&h.request);
    out
}

fn decode_held(b: &[u8]) -> Option<Held> {
    let request_id = decode_id(b.get(..ID_BYTES)?)?;
    let due = i64::from_be_bytes(b.get(ID_BYTES..ID_BYTES + 8)?.try_into().ok()?);
    let rest = b.get(ID_BYTES + 8..)?;
    let (&len, rest) = rest.split_first()?;
    let srv = std::str::from_utf8(rest.get(..usize::from(len))?)
        .ok()?
        .parse()
        .ok()?;
    let request = Arc::from(rest.get(usize::from(len)..)?);
    Some(Held {
        request_id,
        srv,
        due,
        request,
    })
}

pub(super) fn encode_id(id: &RequestId, out: &mut Vec<u8>) {
    out.extend_from_slice(id.originator.as_bytes());
    out.extend_from_slice(id.target.as_bytes());
    out.extend_from_slice(&id.counter.to_be_bytes());
}

pub(super) fn decode_id(b: &[u8]) -> Option<RequestId> {
    let b: &[u8; ID_BYTES] = b.try_into().ok()?;
    let eui = |r: &[u8]| -> Option<Eui64> { Some(Eui64::from_bytes(r.try_into().ok()?)) };
    Some(RequestId {
        originator: eui(&b[0..8])?,
        target: eui(&b[8..16])?,
        counter: u64::from_be_bytes(b[16..24].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests;
