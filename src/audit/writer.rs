//! The one writer thread: it takes every record waiting, chains and writes them, and fsyncs once
//! for all of them (group commit), then tells each caller. Files rotate by size and by UTC day;
//! the chain runs on across them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;

use super::chain::{self, Hash, GENESIS};
use super::record::{Opening, Stored};
use super::verify::{self, Cursor};
use super::{AuditError, Rotation};

/// Who waits for a record (or a barrier) to be durable.
pub(super) type Done = oneshot::Sender<Result<(), Arc<io::Error>>>;

/// What the writer is given.
pub(super) enum Pending {
    /// A record's JSON and its time; with `done`, it is fsynced before `done` is told. Without,
    /// it is a copy of a record already durable in the request log: written, and fsynced with
    /// the next batch that needs it (a barrier, a record with `done`, a rotation).
    Record {
        json: Vec<u8>,
        at_ms: i64,
        done: Option<Done>,
    },
    /// Everything written so far fsynced, then `done` told.
    Sync(Done),
}

/// The writer's queue: a channel that allocates as records come and frees as the writer takes
/// them (an idle trail holds no memory for its bound), and the count waiting in it, which
/// [`super::QUEUE_BOUND`] bounds.
#[derive(Clone)]
pub(super) struct Queue {
    tx: mpsc::Sender<Pending>,
    waiting: Arc<AtomicUsize>,
}

impl Queue {
    /// The queue, and its receiving end for [`Writer::run`].
    pub(super) fn new() -> (Self, mpsc::Receiver<Pending>, Arc<AtomicUsize>) {
        let (tx, rx) = mpsc::channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let queue = Self {
            tx,
            waiting: Arc::clone(&waiting),
        };
        (queue, rx, waiting)
    }

    /// Queues `pending` without waiting: refused when [`super::QUEUE_BOUND`] records wait
    /// already, or the writer has stopped.
    pub(super) fn send(&self, pending: Pending) -> Result<(), AuditError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= super::QUEUE_BOUND {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(AuditError::Backlog);
        }
        self.tx.send(pending).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            AuditError::Stopped
        })
    }
}

/// Records gathered into one write and one fsync at most.
const MAX_BATCH: usize = 4096;
/// How often a failing trail tries to write again when no record comes.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The chain's position: the next sequence number and the hash to chain from.
#[derive(Clone, Copy)]
struct Head {
    next_seq: u64,
    prev: Hash,
}

/// The file being appended to.
struct Segment {
    file: File,
    path: PathBuf,
    day: u32,
    /// Bytes on disk (fsynced or being written).
    len: u64,
}

pub(super) struct Writer {
    dir: PathBuf,
    rotation: Rotation,
    /// What is on disk, and what the buffer will make it once written.
    committed: Head,
    pending: Head,
    current: Option<Segment>,
    next_index: u64,
    buf: Vec<u8>,
    waiting: Vec<Done>,
    /// Bytes written to the current file and not yet fsynced (copies of logged records).
    unsynced: bool,
    /// Set when a write or a new file fails, cleared when a write works.
    failing: Arc<AtomicBool>,
}

impl Writer {
    /// Finds where the trail in `dir` ends. The newest file is checked line by line: an
    /// incomplete last line (an interrupted write, never acknowledged) is cut off; a file with no
    /// complete line is removed; any other damage refuses to start, naming the record.
    pub(super) fn open(
        dir: &Path,
        rotation: Rotation,
        failing: Arc<AtomicBool>,
    ) -> Result<Self, AuditError> {
        let io = |source| AuditError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut files = verify::list_files(dir)?;
        let mut writer = Self {
            dir: dir.to_owned(),
            rotation,
            committed: Head {
                next_seq: 0,
                prev: GENESIS,
            },
            pending: Head {
                next_seq: 0,
                prev: GENESIS,
            },
            current: None,
            next_index: 0,
            buf: Vec::with_capacity(256 * 1024),
            waiting: Vec::new(),
            unsynced: false,
            failing,
        };
        while let Some((index, day, path)) = files.pop() {
            let mut cursor = Cursor::default();
            let scan = verify::scan_file(&path, &mut cursor, &mut |_, _| {})?;
            let file_io = |source| AuditError::Io {
                path: path.clone(),
                source,
            };
            let Some((seq, hash)) = cursor.last.filter(|_| scan.lines > 0) else {
                tracing::warn!(file = %path.display(), "Audit file with no complete record removed (an interrupted start of a file).");
                std::fs::remove_file(&path).map_err(file_io)?;
                sync_dir(dir)?;
                continue;
            };
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(file_io)?;
            if let Some(torn) = &scan.torn {
                tracing::warn!(file = %path.display(), offset = torn.offset, bytes = torn.bytes,
                    "Audit file ends in an interrupted write; the incomplete record is cut off.");
                file.set_len(scan.complete).map_err(file_io)?;
                file.sync_all().map_err(file_io)?;
            }
            let head = Head {
                next_seq: seq + 1,
                prev: hash,
            };
            writer.committed = head;
            writer.pending = head;
            writer.next_index = index + 1;
            writer.current = Some(Segment {
                file,
                path,
                day,
                len: scan.complete,
            });
            break;
        }
        Ok(writer)
    }

    /// Runs until every [`super::Audit`] handle is dropped.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Pending>, waiting: &AtomicUsize) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = match rx.recv_timeout(RETRY) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.retry();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.flush(true);
                    break;
                }
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            waiting.fetch_sub(batch.len(), Ordering::AcqRel);
            let mut sync = false;
            for pending in batch.drain(..) {
                match pending {
                    Pending::Record { json, at_ms, done } => {
                        sync |= done.is_some();
                        self.push(&json, at_ms, done);
                    }
                    Pending::Sync(done) => {
                        sync = true;
                        self.waiting.push(done);
                    }
                }
            }
            self.flush(sync);
        }
    }

    /// Appends one record to the buffer (a new file first if it is due); `done` is told with
    /// the flush that makes it durable, or at once if no file can be opened.
    pub(super) fn push(&mut self, json: &[u8], at_ms: i64, done: Option<Done>) {
        if self.must_rotate(at_ms) {
            // The file left behind is complete and fsynced: only the newest may have a tail.
            self.flush(true);
            if let Err(e) = self.rotate(at_ms) {
                tracing::error!(dir = %self.dir.display(), error = %e, "Cannot open a new audit file; requests are refused until it can.");
                self.failing.store(true, Ordering::Relaxed);
                if let Some(done) = done {
                    let _ = done.send(Err(Arc::new(e)));
                }
                return;
            }
        }
        self.append(json);
        self.waiting.extend(done);
    }

    /// `done` told with the next flush.
    pub(super) fn push_waiter(&mut self, done: Done) {
        self.waiting.push(done);
    }

    /// While writes fail and no record comes, tries every [`RETRY`] to start a new file (its
    /// opening record written and fsynced): once that works the trail is writable again, and
    /// the gateway ready, without waiting for a request.
    fn retry(&mut self) {
        if !self.failing.load(Ordering::Relaxed) {
            return;
        }
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let now_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
        match self.rotate(now_ms) {
            Ok(()) => self.flush(true),
            Err(_) => self.failing.store(true, Ordering::Relaxed),
        }
    }

    fn must_rotate(&self, at_ms: i64) -> bool {
        match &self.current {
            None => true,
            Some(seg) => {
                let size = seg.len + self.buf.len() as u64;
                size >= self.rotation.max_file_bytes
                    || (self.rotation.daily && chain::day_of(at_ms) > seg.day)
            }
        }
    }

    fn append(&mut self, json: &[u8]) {
        let h = chain::append_line(
            &mut self.buf,
            &self.pending.prev,
            self.pending.next_seq,
            json,
        );
        self.pending = Head {
            next_seq: self.pending.next_seq + 1,
            prev: h,
        };
    }

    /// Starts the next file with its opening record (written with the next flush). The file's
    /// directory entry is made durable first.
    fn rotate(&mut self, at_ms: i64) -> io::Result<()> {
        let day = chain::day_of(at_ms);
        let name = chain::file_name(self.next_index, day);
        let path = self.dir.join(&name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        sync_dir(&self.dir).map_err(|e| match e {
            AuditError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })?;
        let opening = Stored::Open(Opening {
            file: name,
            prev: chain::hex(&self.pending.prev),
            at_ms,
        });
        // An opening is plain strings and numbers: serialising it cannot fail.
        let json = serde_json::to_vec(&opening).unwrap_or_default();
        if let Some(old) = &self.current {
            tracing::info!(closed = %old.path.display(), opened = %path.display(),
                head = %chain::hex(&self.pending.prev), sequence = self.pending.next_seq,
                "Audit file rotated; the head hash anchors the trail so far.");
        }
        self.current = Some(Segment {
            file,
            path,
            day,
            len: 0,
        });
        self.next_index += 1;
        self.append(&json);
        Ok(())
    }

    /// Writes the buffer, fsyncs if `sync` (or leaves the bytes for a later fsync), and tells
    /// everyone waiting. On failure the file is cut back to what was on disk before, so the
    /// chain on disk stays whole, and the waiters are told.
    pub(super) fn flush(&mut self, sync: bool) {
        if self.buf.is_empty() && !(sync && self.unsynced) {
            for done in self.waiting.drain(..) {
                let _ = done.send(Ok(()));
            }
            return;
        }
        let Some(seg) = self.current.as_mut() else {
            // `rotate` always leaves a segment before anything is appended.
            self.fail(io::Error::other("no audit file is open"));
            return;
        };
        let result = seg.file.write_all(&self.buf).and_then(|()| {
            if sync {
                seg.file.sync_data()
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => {
                self.failing.store(false, Ordering::Relaxed);
                seg.len += self.buf.len() as u64;
                self.unsynced = !sync;
                self.committed = self.pending;
                self.buf.clear();
                for done in self.waiting.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(file = %seg.path.display(), error = %e, "Audit write failed; the records in it are reported as not written.");
                if seg.len == 0 {
                    // A new file whose opening did not make it: remove it, and reuse its number
                    // for the next try, so that file numbers stay contiguous.
                    let _ = std::fs::remove_file(&seg.path);
                    self.current = None;
                    self.next_index = self.next_index.saturating_sub(1);
                } else if seg
                    .file
                    .set_len(seg.len)
                    .and_then(|()| seg.file.sync_all())
                    .is_err()
                {
                    // It cannot be cut back: leave it as it is (verify will name its tail) and
                    // go on in a new file that chains from the last record on disk.
                    self.current = None;
                }
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.failing.store(true, Ordering::Relaxed);
        self.pending = self.committed;
        self.buf.clear();
        let e = Arc::new(e);
        for done in self.waiting.drain(..) {
            let _ = done.send(Err(e.clone()));
        }
    }
}

/// Makes a directory's entries (a new or removed file) durable.
fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    crate::store::sync_dir(dir).map_err(|source| AuditError::Io {
        path: dir.to_owned(),
        source,
    })
}
