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
//! - **Durability**: one writer thread gathers every record waiting, writes them in one go and
//!   fsyncs once (group commit); [`Audit::record`] returns a [`Receipt`] that resolves once the
//!   record is on disk. The pipeline answers a request only after its record is durable.
//! - **Rotation**: a new file when the current one reaches `max_file_bytes` or a record falls on a
//!   later UTC day; files are numbered, and the chain runs on across them.
//! - **Crash**: see [`verify`] for how a torn tail is told apart from tampering.
//! - **Bounds**: at most [`QUEUE_BOUND`] records wait for the writer; past that a record is not
//!   queued and its receipt fails at once (counted and logged by the caller) rather than the
//!   queue growing without limit. Records are at most [`chain::MAX_LINE_BYTES`].

pub mod chain;
pub mod record;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;

pub use record::{
    AuditEvent, DeliveryOutcome, DeliveryRecord, ExecutionRecord, Message, RequestRecord,
    RoutingRecord, Timings, ACCEPTED,
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
    tx: mpsc::SyncSender<writer::Pending>,
    dir: PathBuf,
    /// Set while the last write failed, cleared by the next that works (or a probe of the
    /// directory that works).
    failing: Arc<AtomicBool>,
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
        let io = |source| AuditError::Io {
            path: dir.to_owned(),
            source,
        };
        // An unwritable directory fails the start, not the first request.
        crate::store::probe_dir(dir).map_err(io)?;
        let failing = Arc::new(AtomicBool::new(false));
        let writer = writer::Writer::open(dir, rotation, Arc::clone(&failing))?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_BOUND);
        std::thread::Builder::new()
            .name("dccgw-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| AuditError::Io {
                path: dir.to_owned(),
                source,
            })?;
        Ok(Self {
            tx,
            dir: dir.to_owned(),
            failing,
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
        match self.tx.try_send((json, event.at_ms(), done)) {
            Ok(()) => Receipt(Inner::Waiting(wait)),
            Err(mpsc::TrySendError::Full(_)) => Receipt::failed(AuditError::Backlog),
            Err(mpsc::TrySendError::Disconnected(_)) => Receipt::failed(AuditError::Stopped),
        }
    }
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
