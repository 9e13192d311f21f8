//! The request log: one durable commit per request, carrying everything the request makes
//! durable before its answer — an accepted request's originator's new anti-replay mark and its
//! effects' records (a command journalled as pending, a held request, a pre-command issued or
//! used, a quarantined request, a command sent for local delivery or answered), and every answer's audit record (a refusal's decision is that
//! record alone) — so that a crash can never leave a counter spent without its command, nor a
//! command without its counter, nor either without its audit record; and an answer waits for
//! one fsync.
//!
//! The boundary is [`RequestLog`]. Its contract, for any implementation:
//!
//! - [`RequestLog::commit`] makes one [`Decision`] durable as a whole, or not at all: after a
//!   crash, recovery sees either every part of it or none. It resolves once the decision is
//!   durable (`Ok`), or once it is known not to be (`Err`: nothing of it may surface later as
//!   durable, so the caller can withhold the answer and undo what it reserved).
//! - Many concurrent commits may share one write (group commit); each resolves only once its
//!   own decision is durable. Commits are independent: their order in the log is the order
//!   they were made durable, which concurrent requests do not otherwise fix (marks fold by
//!   the highest counter, so that order does not matter; a reset sets a mark outright).
//! - Recovery hands back every durable decision not yet checkpointed into the per-kind stores,
//!   in log order; replaying one into its stores twice is harmless (each store keys its records
//!   by RequestID or originator; the audit trail copies only the records it lacks).
//!
//! The file implementation ([`FileRequestLog`], `requests/` under the state directory) is a
//! segmented [`Journal`](super::Journal): one writer thread, one write and one fsync for every
//! decision waiting. The per-kind stores (`replay.journal`, `pending/`, `holds.journal`,
//! `precommands/`, `local-commands/`, `quarantine.journal`) are in-memory views on the request path; a sealed
//! segment is checkpointed into their own files in the background (one batch per store) and
//! then deleted, so the log stays bounded. The audit trail is the log's copy of the audit records ([`Trail`]: each handed
//! over once durable, the trail fsynced before its segment is deleted). A database
//! implementation commits a batch of decisions in one transaction, writing the same rows the
//! checkpoint writes (the audit rows among them), and needs no checkpoint.
//!
//! What is made durable outside a request keeps its own journal: a pending command's settling
//! (`pending/`), a held request's release (`holds.journal`), outbox deliveries, registration and
//! User changes, a quarantine's release or deletion, and the effects that are not log entries
//! (schedules, firmware distributions), which are written before the
//! decision's commit (so a crash between the two leaves the counter unspent and the effect
//! done: a resend is accepted, and the effect may happen twice, never not at all).

mod file;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

use crate::antireplay::{Mark, Replay};
use crate::domain::{Eui64, UserId};

pub use file::{FileRequestLog, Recovered, Sealed, Trail};

use super::JournalError;

/// A future a [`RequestLog`] returns.
pub type LogFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CommitError>> + Send + 'a>>;
/// The bytes of an open entry, as [`RequestLog::open_entry`] finds them.
pub type EntryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, CommitError>> + Send + 'a>>;

/// Why a decision was not made durable. Nothing of it is (see the module's contract).
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The log's own storage failed: the gateway's fault.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The log's database could not be reached or failed, within the log's time bound.
    #[error("the request log's database")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The decision's mark was refused by a log shared with other instances: one of them
    /// accepted that counter (or a higher one) first. The sender's fault, answered as a local
    /// replay is.
    #[error(transparent)]
    Refused(#[from] Replay),
}

/// Where requests' decisions are made durable. See the module's documentation for the contract.
pub trait RequestLog: Send + Sync {
    /// Makes `decision` durable, whole; resolves once it is (or once it is known not to be).
    fn commit(&self, decision: Decision) -> LogFuture<'_>;
    /// Whether the last write failed (`/readyz` says not ready; a later write that works clears
    /// it).
    fn is_failing(&self) -> bool;
    /// Says that the entry of `kind` for `key` (its request, [`KeyOf`]) is over: its command
    /// answered, its hold released. A log whose entries are copied into the per-kind stores
    /// (the file log) has nothing to do, as those stores settle their own records; a log that
    /// keeps the entries itself (PostgreSQL) deletes it, in the background.
    fn settle(&self, kind: EntryKind, key: String) {
        let _ = (kind, key);
    }
    /// The bytes of the open entry of `kind` for `key`, whichever instance committed it and
    /// owns it now: `None` once it is settled (or was never committed). A log of this instance's
    /// entries alone (the file log) holds none of another's, and says `None`.
    fn open_entry(&self, kind: EntryKind, key: String) -> EntryFuture<'_> {
        let _ = (kind, key);
        Box::pin(async { Ok(None) })
    }
}

/// Everything one request makes durable before its answer leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The originator's new high-water mark (none for a signed pre-command, which spent its
    /// Transform's counter, nor for a held request's release).
    pub mark: Option<MarkEntry>,
    /// The durable records of the request's effects.
    pub entries: Vec<Entry>,
}

impl Decision {
    /// Whether there is nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.mark.is_none() && self.entries.is_empty()
    }
}

/// An originator's mark, as a decision sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkEntry {
    pub originator: UserId,
    pub mark: Mark,
    /// An operator's reset: the mark is set outright, lower or higher, rather than raised.
    pub reset: bool,
    /// For a Command Variant 5 reusing its Transform's counter, the device it is for: a log
    /// shared with other instances checks the reuse against the mark there (the file log's
    /// marks were checked in memory, and its records do not carry it).
    pub twin_of: Option<Eui64>,
}

/// One effect's durable record: its kind, and the bytes its own store writes for it (so that a
/// checkpoint copies them into that store unchanged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub bytes: Vec<u8>,
}

/// How the wiring, which knows each kind's bytes, names an entry for [`RequestLog::settle`]:
/// its request's ID (`None` for bytes that do not read).
pub type KeyOf = fn(&Entry) -> Option<String>;

/// The kinds of effect records a decision carries. A new kind gets a tag here, and a line in
/// the pipeline's `durable.rs` saying how it is applied, checkpointed and recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A signed command for the hub network (the pending journal's record).
    Pending,
    /// A DSP-held future-dated request (the held-request journal's record).
    Hold,
    /// The request's audit record (the audit trail's entry: its time and its JSON), so that
    /// the answer waits for this one commit and the trail copies it from the log.
    Audit,
    /// A pre-command issued by a Transform (the pre-command ledger's record).
    PreCommand,
    /// A pre-command used by its signed form (the pre-command ledger's record). It spends the
    /// issue's entry: a log shared with other instances refuses the decision if that entry is
    /// gone (used through another instance, or never issued there), as a replay.
    PreCommandUse,
    /// A request counted by anomaly detection (the count journal's record), so that a restart
    /// counts it again.
    Count,
    /// A request anomaly detection quarantined (the quarantine journal's record), kept until an
    /// operator releases or deletes it.
    Quarantine,
    /// A command sent to a User for local delivery, or its 8.13 answer recorded against it (the
    /// local-command ledger's record).
    LocalCommand,
}

impl EntryKind {
    /// Whether a log shared by several instances leaves this kind to each instance's own stores
    /// (its audit trail and local-command ledger), rather than keeping it for whichever instance
    /// owns or claims the request. A shared log keeps the requests counted in counts every
    /// instance reads.
    pub const fn kept_by_instance(self) -> bool {
        matches!(self, Self::Audit | Self::LocalCommand)
    }

    /// The kind's one-byte name, in the file log's records and the database's rows.
    pub const fn tag(self) -> u8 {
        match self {
            Self::Pending => b'P',
            Self::Hold => b'H',
            Self::Audit => b'A',
            Self::PreCommand => b'C',
            Self::Count => b'N',
            Self::Quarantine => b'Q',
            Self::LocalCommand => b'L',
            Self::PreCommandUse => b'U',
        }
    }

    /// The kind a tag names; `None` for a tag this version does not know.
    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            b'P' => Some(Self::Pending),
            b'H' => Some(Self::Hold),
            b'A' => Some(Self::Audit),
            b'C' => Some(Self::PreCommand),
            b'N' => Some(Self::Count),
            b'Q' => Some(Self::Quarantine),
            b'L' => Some(Self::LocalCommand),
            b'U' => Some(Self::PreCommandUse),
            _ => None,
        }
    }
}

/// The record's first byte, and its version.
const DECISION: u8 = b'D';
const VERSION: u8 = 1;
const NO_MARK: u8 = 0;
const ADVANCE: u8 = 1;
const RESET: u8 = 2;

/// A decision's record: `D`, version, the mark (`0`; or `1` advance / `2` reset, originator (8),
/// counter (u64 BE), `0`, or `1` and the pre-command's target (8)), then each entry as its
/// kind's tag, its length (u32 LE) and its bytes.
pub(crate) fn encode(d: &Decision) -> Vec<u8> {
    let size = 2 + 26 + d.entries.iter().map(|e| 5 + e.bytes.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&[DECISION, VERSION]);
    match &d.mark {
        None => out.push(NO_MARK),
        Some(m) => {
            out.push(if m.reset { RESET } else { ADVANCE });
            out.extend_from_slice(m.originator.as_bytes());
            out.extend_from_slice(&m.mark.counter.to_be_bytes());
            match m.mark.pre_command_for {
                None => out.push(0),
                Some(target) => {
                    out.push(1);
                    out.extend_from_slice(target.as_bytes());
                }
            }
        }
    }
    for e in &d.entries {
        out.push(e.kind.tag());
        // An entry is one journal record at most (MAX_RECORD_BYTES), which fits a u32.
        out.extend_from_slice(&(e.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.bytes);
    }
    out
}

/// A decision's record read back; `None` for one that does not read (written by a newer
/// version, or not a decision).
pub(crate) fn decode(b: &[u8]) -> Option<Decision> {
    let mut r = Reader(b);
    if r.take(2)? != [DECISION, VERSION] {
        return None;
    }
    let mark = match r.byte()? {
        NO_MARK => None,
        kind @ (ADVANCE | RESET) => {
            let originator = r.eui()?;
            let counter = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
            let pre_command_for = match r.byte()? {
                0 => None,
                1 => Some(r.eui()?),
                _ => return None,
            };
            Some(MarkEntry {
                originator,
                mark: Mark {
                    counter,
                    pre_command_for,
                },
                reset: kind == RESET,
                twin_of: None,
            })
        }
        _ => return None,
    };
    let mut entries = Vec::new();
    while !r.0.is_empty() {
        let kind = EntryKind::from_tag(r.byte()?)?;
        let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        entries.push(Entry {
            kind,
            bytes: r.take(len)?.to_vec(),
        });
    }
    Some(Decision { mark, entries })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn eui(&mut self) -> Option<Eui64> {
        Some(Eui64::from_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Folds `entry` into the marks seen so far: a reset sets, an advance raises (a later record
/// with the same counter wins, as a Command Variant 4's twin state is the newer).
pub fn fold_mark(current: Option<Mark>, entry: &MarkEntry) -> Mark {
    match current {
        Some(c) if !entry.reset && c.counter > entry.mark.counter => c,
        _ => entry.mark,
    }
}
