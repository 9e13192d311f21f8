//! The audit trail: an append-only, hash-chained record of every request decision and every
//! delivery attempt, written durably, rotated, and verifiable by anyone with the files
//! (`dccgw audit verify DIR`). It settles disputes ("did you receive my request at 10:02, and
//! what did you decide?") and is the only source of the monthly reports (`crate::report`).
//!
//! - **What**: one JSON object per record ([`record`]): who (User ID from the TLS certificate,
//!   its SMKI role, the RequestID's originator), the role access control used and its class, the
//!   SRV, the device, the decision and response code, per-phase timings, bytes in and out. No
//!   message bodies, signatures or keys.
//! - **Chain** ([`chain`]): each line carries `SHA-256(previous hash ‖ this line)`; a file's
//!   first line is an opening record naming the previous file's last hash.
//! - **Durability**: one writer thread gathers every record waiting, chains them and writes them
//!   in one go. A request's record is committed with its decision in the request log (the
//!   answer waits for that one fsync) and copied here once durable ([`Audit::copy_logged`]):
//!   written without an fsync of its own, fsynced with the next batch that needs one or by
//!   [`Audit::sync`] (the log's checkpoint, before it deletes a segment); a start copies the
//!   records the log holds and the trail lacks ([`Audit::open_after`]). Any other record
//!   ([`Audit::record`]) is fsynced before its [`Receipt`] resolves (group commit).
//! - **Rotation**: a new file when the current one reaches `max_file_bytes` or a record falls on a
//!   later UTC day; files are numbered, and the chain runs on across them.
//! - **Crash**: see [`verify`] for how a torn tail is told apart from tampering.
//! - **Bounds**: at most [`QUEUE_BOUND`] records wait for the writer; past that a record is not
//!   queued and its receipt fails at once (counted and logged by the caller) rather than the
//!   queue growing without limit. Records are at most [`chain::MAX_LINE_BYTES`].

pub mod chain;
pub mod record;
mod recover;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

pub use record::{
    AnomalyRecord, AuditEvent, DeliveryOutcome, DeliveryRecord, ExecutionRecord, Message,
    RequestRecord, RoutingRecord, Timings, ACCEPTED,
};
pub use verify::{read_trail, Broken, Fault, TornTail, Verified};

/// Records waiting for the writer, at most.
pub const QUEUE_BOUND: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit trail {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Broken(#[from] Broken),
    #[error("the audit record could not be written")]
    Write(#[source] Arc<io::Error>),
    #[error("an audit record of {0} bytes is larger than the bound")]
    TooLarge(usize),
    #[error("{QUEUE_BOUND} audit records are already waiting for the disk")]
    Backlog,
    #[error("the audit writer has stopped")]
    Stopped,
    #[error("copies of logged records were dropped; the request log keeps them until a start copies them")]
    CopiesDropped,
}

/// When to start a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Start a new file once the current one holds this many bytes.
    pub max_file_bytes: u64,
    /// Start a new file on the first record of each UTC day.
    pub daily: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_file_bytes: 64 * 1024 * 1024,
            daily: true,
        }
    }
}

/// The writing side of a trail. Cloning shares the one writer thread; the thread stops when the
/// last clone is dropped, after writing what it was given.
#[derive(Clone)]
pub struct Audit {
    queue: writer::Queue,
    dir: PathBuf,
    /// Set while the last write failed, cleared by the next that works (or a probe of the
    /// directory that works).
    failing: Arc<AtomicBool>,
    /// Set for good once a copy of a logged record could not be queued: from then on
    /// [`Self::sync`] fails, so the request log keeps its segments for the next start to copy.
    dropped: Arc<AtomicBool>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("dir", &self.dir).finish()
    }
}

impl Audit {
    /// Opens the trail in `dir` (created if missing) and starts its writer. Blocking: it reads
    /// the newest file to find the chain's head: an interrupted last record is cut off, a file
    /// with no complete record removed, and any other damage refuses to open (naming the record).
    pub fn open(dir: &Path, rotation: Rotation) -> Result<Self, AuditError> {
        Self::open_after(dir, rotation, &[])
    }

    /// Opens the trail as [`Self::open`] does, then copies into it, in order and fsynced, the
    /// entries of `logged` (audit entries of the request log's decisions not yet checkpointed,
    /// in log order) that it does not hold yet: those a crash caught between the log's commit
    /// and the trail's copy. Blocking.
    pub fn open_after(
        dir: &Path,
        rotation: Rotation,
        logged: &[Vec<u8>],
    ) -> Result<Self, AuditError> {
        let io = |source| AuditError::Io {
            path: dir.to_owned(),
            source,
        };
        // An unwritable directory fails the start, not the first request.
        crate::store::probe_dir(dir).map_err(io)?;
        let failing = Arc::new(AtomicBool::new(false));
        let mut writer = writer::Writer::open(dir, rotation, Arc::clone(&failing))?;
        let entries: Vec<(i64, &[u8])> = logged.iter().filter_map(|e| split_logged(e)).collect();
        let missing = recover::missing(dir, &entries)?;
        if !missing.is_empty() {
            tracing::info!(
                records = missing.len(),
                "Audit records durable in the request log copied into the trail."
            );
            for &(at_ms, json) in &missing {
                writer.push(json, at_ms, None);
            }
            let (done, mut wait) = oneshot::channel();
            writer.push_waiter(done);
            writer.flush(true);
            match wait.try_recv() {
                Ok(Ok(())) if !failing.load(Ordering::Relaxed) => {}
                Ok(Err(e)) => return Err(AuditError::Write(e)),
                _ => {
                    return Err(io(io::Error::other(
                        "the recovered records were not written",
                    )))
                }
            }
        }
        let (queue, rx, waiting) = writer::Queue::new();
        std::thread::Builder::new()
            .name("dccgw-audit".into())
            .spawn(move || writer.run(rx, &waiting))
            .map_err(|source| AuditError::Io {
                path: dir.to_owned(),
                source,
            })?;
        Ok(Self {
            queue,
            dir: dir.to_owned(),
            failing,
            dropped: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether records are failing to reach the disk: the gateway then takes no request's
    /// effects, and `/readyz` says not ready, until a write works again (the writer tries every
    /// second while no record comes).
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Queues `event` for the writer without waiting; the receipt says when it is on disk.
    /// Callable from synchronous code and from any thread.
    pub fn record(&self, event: &AuditEvent) -> Receipt {
        // Records are plain strings, numbers and identifiers: serialising cannot fail.
        let json = match serde_json::to_vec(event) {
            Ok(j) => j,
            Err(e) => return Receipt::failed(AuditError::Write(Arc::new(io::Error::other(e)))),
        };
        if json.len() + 100 > chain::MAX_LINE_BYTES {
            return Receipt::failed(AuditError::TooLarge(json.len()));
        }
        let (done, wait) = oneshot::channel();
        let pending = writer::Pending::Record {
            json,
            at_ms: event.at_ms(),
            done: Some(done),
        };
        match self.queue.send(pending) {
            Ok(()) => Receipt(Inner::Waiting(wait)),
            Err(e) => Receipt::failed(e),
        }
    }

    /// Queues the trail's copy of a record already durable in the request log (`entry` as
    /// [`logged`] made it): chained and written with the next batch, fsynced with the next
    /// batch that needs it or by [`Self::sync`]. Nobody waits for it; one the writer cannot
    /// take now (a full queue, a stopped writer) is logged, and stays in the log (its segment
    /// is not deleted: `sync` fails from then on) for the next start's recovery
    /// ([`Audit::open_after`]) to copy.
    pub fn copy_logged(&self, entry: &[u8]) {
        let Some((at_ms, json)) = split_logged(entry) else {
            tracing::warn!("An audit entry in the request log does not read; skipped.");
            return;
        };
        let pending = writer::Pending::Record {
            json: json.to_vec(),
            at_ms,
            done: None,
        };
        if let Err(why) = self.queue.send(pending) {
            self.failing.store(true, Ordering::Relaxed);
            self.dropped.store(true, Ordering::Relaxed);
            tracing::error!(error = %why, "An audit record durable in the request log is not yet in the trail; it is copied at the next start.");
        }
    }

    /// Resolves once everything queued before it is fsynced: the request log's checkpoint
    /// waits for it before a segment whose audit entries were copied here is deleted.
    pub fn sync(&self) -> Receipt {
        if self.dropped.load(Ordering::Relaxed) {
            return Receipt::failed(AuditError::CopiesDropped);
        }
        let (done, wait) = oneshot::channel();
        match self.queue.send(writer::Pending::Sync(done)) {
            Ok(()) => Receipt(Inner::Waiting(wait)),
            Err(e) => Receipt::failed(e),
        }
    }
}

/// `event` as the request log carries it (an audit entry of a decision): its time (i64 BE)
/// and its JSON, checked against the line bound here, so that the copy cannot be refused.
pub fn logged(event: &AuditEvent) -> Result<Vec<u8>, AuditError> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&event.at_ms().to_be_bytes());
    serde_json::to_writer(&mut out, event)
        .map_err(|e| AuditError::Write(Arc::new(io::Error::other(e))))?;
    if out.len() - 8 + 100 > chain::MAX_LINE_BYTES {
        return Err(AuditError::TooLarge(out.len() - 8));
    }
    Ok(out)
}

/// A logged entry's time and JSON.
fn split_logged(entry: &[u8]) -> Option<(i64, &[u8])> {
    let (at, json) = entry.split_first_chunk::<8>()?;
    Some((i64::from_be_bytes(*at), json))
}

/// Resolves once a record is on disk (or it could not be written).
#[must_use = "a receipt says whether the record reached the disk"]
pub struct Receipt(Inner);

enum Inner {
    Waiting(oneshot::Receiver<Result<(), Arc<io::Error>>>),
    Failed(AuditError),
}

impl Receipt {
    fn failed(e: AuditError) -> Self {
        Self(Inner::Failed(e))
    }

    /// Waits until the record is fsynced.
    pub async fn durable(self) -> Result<(), AuditError> {
        match self.0 {
            Inner::Failed(e) => Err(e),
            Inner::Waiting(wait) => match wait.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(AuditError::Write(e)),
                Err(_) => Err(AuditError::Stopped),
            },
        }
    }

    /// Waits without an async runtime (tools, tests).
    pub fn durable_blocking(self) -> Result<(), AuditError> {
        match self.0 {
            Inner::Failed(e) => Err(e),
            Inner::Waiting(wait) => match wait.blocking_recv() {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(AuditError::Write(e)),
                Err(_) => Err(AuditError::Stopped),
            },
        }
    }
}

/// Checks the whole trail in `dir` without visiting its records.
pub fn verify_dir(dir: &Path) -> Result<Verified, AuditError> {
    read_trail(dir, |_, _| {})
}
