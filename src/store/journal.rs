//! An append-only journal file: each record is `len: u32 LE | crc32: u32 LE | payload`, written
//! by one thread that gathers every record waiting, writes them, and fsyncs once for all (group
//! commit), so durability does not cost one fsync per request. A record counts only once its
//! fsync has returned. On open, records are read back up to the first torn or corrupt one, and
//! the file is cut there: a crash mid-write loses only records nobody was told were written.
//!
//! A failed write or fsync must not leave a torn record behind the records that follow it (on
//! reopen everything after the tear would be cut, acknowledged records included): the writer
//! cuts the file back to its last durable length and fsyncs that before it takes another record.
//! If even that fails, the journal stops (every later append is refused) — fail-stop, as after
//! a failed fsync nobody can say what is on disk.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// The largest record accepted; larger ones are refused, not written.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Records waiting for the writer; at the bound `append` waits (backpressure), it does not grow.
/// The queue holds only what waits (a channel that allocates as records come and frees as the
/// writer takes them), so an idle journal costs no memory for its bound.
const QUEUE_BOUND: usize = 65_536;
/// The writer's batch buffer is kept up to this size between batches; a larger batch's buffer
/// is given back once written, so one burst does not hold its size for the process's life.
const KEPT_BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("a journal record of {0} bytes is larger than the bound")]
    TooLarge(usize),
    #[error("the journal writer has stopped")]
    Stopped,
}

/// A record for the writer, the sender its answer goes to, and its place in the queue's bound
/// (given back when the writer has answered).
type Pending = (
    Vec<u8>,
    oneshot::Sender<Result<(), String>>,
    Option<OwnedSemaphorePermit>,
);

/// The journal's writer side. Cloning shares the one writer thread.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Pending>,
    /// Places left in the queue ([`QUEUE_BOUND`] in all).
    room: Arc<Semaphore>,
    path: PathBuf,
    /// Set while the last write failed (or the journal stopped), cleared by the next that works.
    failing: Arc<AtomicBool>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, returns it and every intact record in
    /// it, in order. The file is cut after the last intact record.
    pub fn open(path: &Path) -> Result<(Self, Vec<Vec<u8>>), JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let (records, intact) = read_all(&mut file).map_err(io)?;
        file.set_len(intact).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        file.sync_all().map_err(io)?;
        let file = Durable {
            file,
            durable: intact,
        };
        let (tx, rx) = mpsc::channel::<Pending>();
        let thread_path = path.to_owned();
        let failing = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failing);
        std::thread::Builder::new()
            .name("dccgw-journal".into())
            .spawn(move || write_loop(file, rx, &thread_path, &flag))
            .map_err(io)?;
        Ok((
            Self {
                tx,
                room: Arc::new(Semaphore::new(QUEUE_BOUND)),
                path: path.to_owned(),
                failing,
            },
            records,
        ))
    }

    /// Whether the last write failed (or the journal stopped): `/readyz` says not ready.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and returns once it is on disk.
    pub async fn append(&self, payload: Vec<u8>) -> Result<(), JournalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(JournalError::TooLarge(payload.len()));
        }
        let (done, wait) = oneshot::channel();
        // At the bound, wait (asynchronously) for the writer to take records off the queue.
        let place = Arc::clone(&self.room)
            .acquire_owned()
            .await
            .map_err(|_| JournalError::Stopped)?;
        self.tx
            .send((payload, done, Some(place)))
            .map_err(|_| JournalError::Stopped)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(JournalError::Io {
                path: self.path.clone(),
                source: io::Error::other(e),
            }),
            Err(_) => Err(JournalError::Stopped),
        }
    }
}

/// Every intact record of the journal file at `path`, in order, without opening it for
/// writing (nothing is cut). Blocking.
pub fn read_records(path: &Path) -> Result<Vec<Vec<u8>>, JournalError> {
    let io = |source| JournalError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    Ok(read_all(&mut file).map_err(io)?.0)
}

/// Replaces the journal at `path` with exactly `records` (for compaction): written to a file
/// beside it, fsynced, renamed over it, and the directory fsynced. Blocking.
pub fn rewrite(path: &Path, records: impl Iterator<Item = Vec<u8>>) -> Result<(), JournalError> {
    let fresh = path.with_extension("compacting");
    let io = |source| JournalError::Io {
        path: fresh.clone(),
        source,
    };
    let mut buf = Vec::new();
    for r in records {
        if r.len() > MAX_RECORD_BYTES {
            return Err(JournalError::TooLarge(r.len()));
        }
        frame(&r, &mut buf);
    }
    let mut file = File::create(&fresh).map_err(io)?;
    file.write_all(&buf).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&fresh, path).map_err(|source| JournalError::Io {
        path: path.to_owned(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| JournalError::Io {
                path: dir.to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// What the writer needs of its file; a trait so the tests can make writes fail.
trait Sink {
    fn put(&mut self, buf: &[u8]) -> io::Result<()>;
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes and goes on writing at its end.
    fn cut(&mut self, len: u64) -> io::Result<()>;
}

impl Sink for File {
    fn put(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn cut(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        self.seek(SeekFrom::End(0))?;
        File::sync_all(self)
    }
}

/// A sink and how many of its bytes are known to be on disk.
struct Durable<S> {
    file: S,
    durable: u64,
}

impl<S: Sink> Durable<S> {
    /// Writes and fsyncs `buf`. On failure, cuts the file back to its last durable length so no
    /// torn record sits before the next ones; `Err(true)` when even that failed.
    fn commit(&mut self, buf: &[u8]) -> Result<(), (io::Error, bool)> {
        match self.file.put(buf).and_then(|()| self.file.sync()) {
            Ok(()) => {
                self.durable += buf.len() as u64;
                Ok(())
            }
            Err(e) => Err((e, self.file.cut(self.durable).is_err())),
        }
    }
}

fn write_loop<S: Sink>(
    mut file: Durable<S>,
    rx: mpsc::Receiver<Pending>,
    path: &Path,
    failing: &AtomicBool,
) {
    let mut buf = Vec::with_capacity(KEPT_BUFFER_BYTES);
    let mut waiting = Vec::new();
    let mut stopped: Option<String> = None;
    while let Ok(first) = rx.recv() {
        waiting.push(first);
        // Gather everything already queued: one write and one fsync for the lot.
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
            if waiting.len() >= 4096 {
                break;
            }
        }
        let result = match &stopped {
            Some(why) => Err(why.clone()),
            None => {
                buf.clear();
                for (payload, _, _) in &waiting {
                    frame(payload, &mut buf);
                }
                file.commit(&buf).map_err(|(e, stop)| {
                    if stop {
                        tracing::error!(path = %path.display(), error = %e, "Journal write failed and the file could not be cut back; the journal stops (restart to recover).");
                        stopped = Some(format!("stopped after a failed write: {e}"));
                    } else {
                        tracing::error!(path = %path.display(), error = %e, "Journal write failed; requests that need it are refused.");
                    }
                    e.to_string()
                })
            }
        };
        failing.store(result.is_err(), Ordering::Relaxed);
        for (_, done, _) in waiting.drain(..) {
            let _ = done.send(result.clone());
        }
        buf.clear();
        buf.shrink_to(KEPT_BUFFER_BYTES);
    }
}

fn frame(payload: &[u8], out: &mut Vec<u8>) {
    // MAX_RECORD_BYTES (checked in `append`) fits a u32.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Every intact record, and the byte length they span.
fn read_all(file: &mut File) -> io::Result<(Vec<Vec<u8>>, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut intact = 0u64;
    loop {
        let mut head = [0u8; 8];
        if read_exact_or_eof(&mut reader, &mut head)? != 8 {
            break;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD_BYTES {
            break;
        }
        let mut payload = vec![0u8; len];
        if read_exact_or_eof(&mut reader, &mut payload)? != len || crc32fast::hash(&payload) != crc
        {
            break;
        }
        intact += 8 + len as u64;
        records.push(payload);
    }
    Ok((records, intact))
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_survive_reopening_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (j, old) = Journal::open(&path).unwrap();
        assert!(old.is_empty());
        let writes: Vec<_> = (0..100u32)
            .map(|i| {
                let j = j.clone();
                tokio::spawn(async move { j.append(i.to_le_bytes().to_vec()).await })
            })
            .collect();
        for w in writes {
            w.await.unwrap().unwrap();
        }
        drop(j);
        let (_, records) = Journal::open(&path).unwrap();
        assert_eq!(records.len(), 100);
        let mut seen: Vec<u32> = records
            .iter()
            .map(|r| u32::from_le_bytes(r.as_slice().try_into().unwrap()))
            .collect();
        seen.sort();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());

        // A torn record (half written) and then garbage: both cut, the rest kept.
        let good_len = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
        drop(f);
        let (j, records) = Journal::open(&path).unwrap();
        assert_eq!(records.len(), 100);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        j.append(b"after".to_vec()).await.unwrap();
        drop(j);
        let (_, records) = Journal::open(&path).unwrap();
        assert_eq!(records.last().unwrap(), b"after");

        // A flipped byte in the middle: everything from that record on is cut.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8 * 50 + 4 * 50 + 9] ^= 0xFF;
        std::fs::write(&path, bytes).unwrap();
        let (_, records) = Journal::open(&path).unwrap();
        assert_eq!(records.len(), 50);
    }

    #[tokio::test]
    async fn oversized_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(&dir.path().join("j")).unwrap();
        assert!(matches!(
            j.append(vec![0; MAX_RECORD_BYTES + 1]).await,
            Err(JournalError::TooLarge(_))
        ));
    }

    /// An in-memory file whose writes can be made to fail halfway, and whose cut can fail.
    #[derive(Clone, Default)]
    struct Flaky {
        disk: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        fail_writes: std::sync::Arc<std::sync::atomic::AtomicBool>,
        fail_cuts: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl Sink for Flaky {
        fn put(&mut self, buf: &[u8]) -> io::Result<()> {
            use std::sync::atomic::Ordering::SeqCst;
            let mut disk = self.disk.lock().unwrap();
            if self.fail_writes.load(SeqCst) {
                disk.extend_from_slice(&buf[..buf.len() / 2]);
                return Err(io::Error::other("no space left on device"));
            }
            disk.extend_from_slice(buf);
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn cut(&mut self, len: u64) -> io::Result<()> {
            if self.fail_cuts.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(io::Error::other("read-only file system"));
            }
            self.disk.lock().unwrap().truncate(len as usize);
            Ok(())
        }
    }

    /// Sends one record through a running writer and waits for its answer.
    fn append_blocking(tx: &mpsc::Sender<Pending>, payload: &[u8]) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        tx.send((payload.to_vec(), done, None)).unwrap();
        wait.blocking_recv().unwrap()
    }

    fn records_on(disk: &[u8]) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, disk).unwrap();
        Journal::open(&path).unwrap().1
    }

    /// Through a running writer: "first"; "torn" while writes fail halfway (and the cut back
    /// too, when `cut_fails`); "after" once writes work again. Returns whether "after" was
    /// acknowledged and the records a reopen of the result finds.
    fn first_torn_after(cut_fails: bool) -> (bool, Vec<Vec<u8>>) {
        use std::sync::atomic::Ordering::SeqCst;
        let flaky = Flaky::default();
        let (tx, rx) = mpsc::channel();
        let sink = Durable {
            file: flaky.clone(),
            durable: 0,
        };
        let failing = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failing);
        let writer = std::thread::spawn(move || write_loop(sink, rx, Path::new("flaky"), &flag));
        append_blocking(&tx, b"first").unwrap();
        assert!(!failing.load(SeqCst));
        flaky.fail_writes.store(true, SeqCst);
        flaky.fail_cuts.store(cut_fails, SeqCst);
        assert!(append_blocking(&tx, b"torn").is_err());
        // Readiness reads this: failing until a write works again.
        assert!(failing.load(SeqCst));
        flaky.fail_writes.store(false, SeqCst);
        flaky.fail_cuts.store(false, SeqCst);
        let after = append_blocking(&tx, b"after").is_ok();
        assert_eq!(failing.load(SeqCst), !after);
        drop(tx);
        writer.join().unwrap();
        let disk = flaky.disk.lock().unwrap().clone();
        (after, records_on(&disk))
    }

    #[test]
    fn a_failed_write_leaves_no_tear_before_the_records_after_it() {
        // "after" is acknowledged, so it must survive a reopen.
        let (after, records) = first_torn_after(false);
        assert!(after);
        assert_eq!(records, [b"first".to_vec(), b"after".to_vec()]);
    }

    #[test]
    fn when_the_file_cannot_be_cut_back_the_journal_stops() {
        // Writes would work again, but nobody knows what is on disk: refused, never acknowledged.
        let (after, records) = first_torn_after(true);
        assert!(!after);
        assert_eq!(records, [b"first".to_vec()]);
    }
}
