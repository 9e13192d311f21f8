//! An append-only journal file: each record is `len: u32 LE | crc32: u32 LE | payload`, written
//! by one thread that gathers every record waiting, writes them, and fsyncs once for all (group
//! commit), so durability does not cost one fsync per request. A record counts only once its
//! fsync has returned. On open, records are read back up to the first torn or corrupt one, and
//! the file is cut there: a crash mid-write loses only records nobody was told were written.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

/// The largest record accepted; larger ones are refused, not written.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Records waiting for the writer; at the bound `append` waits (backpressure), it does not grow.
const QUEUE_BOUND: usize = 65_536;

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

type Pending = (Vec<u8>, oneshot::Sender<Result<(), String>>);

/// The journal's writer side. Cloning shares the one writer thread.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::SyncSender<Pending>,
    path: PathBuf,
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
        let (tx, rx) = mpsc::sync_channel::<Pending>(QUEUE_BOUND);
        let thread_path = path.to_owned();
        std::thread::Builder::new()
            .name("dccgw-journal".into())
            .spawn(move || write_loop(file, rx, &thread_path))
            .map_err(io)?;
        Ok((
            Self {
                tx,
                path: path.to_owned(),
            },
            records,
        ))
    }

    /// Appends one record and returns once it is on disk.
    pub async fn append(&self, payload: Vec<u8>) -> Result<(), JournalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(JournalError::TooLarge(payload.len()));
        }
        let (done, wait) = oneshot::channel();
        let tx = self.tx.clone();
        // The channel is bounded: when full, wait on a blocking thread rather than an async one.
        match tx.try_send((payload, done)) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(p)) => {
                tokio::task::spawn_blocking(move || tx.send(p))
                    .await
                    .map_err(|_| JournalError::Stopped)?
                    .map_err(|_| JournalError::Stopped)?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(JournalError::Stopped),
        }
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

fn write_loop(mut file: File, rx: mpsc::Receiver<Pending>, path: &Path) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut waiting = Vec::new();
    while let Ok(first) = rx.recv() {
        waiting.push(first);
        // Gather everything already queued: one write and one fsync for the lot.
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
            if waiting.len() >= 4096 {
                break;
            }
        }
        buf.clear();
        for (payload, _) in &waiting {
            frame(payload, &mut buf);
        }
        let result = file.write_all(&buf).and_then(|()| file.sync_data());
        if let Err(e) = &result {
            tracing::error!(path = %path.display(), error = %e, "Journal write failed; requests that need it are refused.");
        }
        for (_, done) in waiting.drain(..) {
            let _ = done.send(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        }
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
}
