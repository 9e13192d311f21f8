//! Reading a trail back: every line's hash, sequence number and link to the line before, across
//! files, handing each record to a visitor (the reports) and naming the first that fails.
//!
//! **Torn tail or tampering.** The writer appends whole lines, in order, to the newest file only,
//! and fsyncs before anyone is told a record is written. A crash or SIGKILL mid-write can
//! therefore leave only one kind of damage: bytes after the last line feed of the *newest* file
//! (a line cut short, or zeros a filesystem left after power loss). That, and only that, is
//! reported as a torn tail: the trail verifies up to the last complete record, and the torn
//! record was never acknowledged. Anything else — a complete line whose hash, sequence number or
//! link does not match, a line that cannot be read, a cut-short line in an older file, a missing
//! file — is reported as a broken record. The chain cannot tell a tail cut at a line boundary from
//! one never written: publish the head hash (`dccgw audit verify` prints it; the gateway logs it
//! at each rotation) somewhere else to anchor it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::chain::{self, Hash, Malformed, GENESIS, MAX_LINE_BYTES};
use super::record::Stored;
use super::{AuditError, AuditEvent};
use crate::progress::{Progress, Unit};

/// What a successful read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub files: usize,
    /// Event records (openings not counted).
    pub records: u64,
    /// The sequence numbers of the first and last complete lines (`None` for an empty trail).
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The hash of the last complete line: the value to anchor elsewhere.
    pub head: Hash,
    /// False when the first file present does not start the trail (older files were removed by
    /// retention): the chain is proved from that file's opening on.
    pub from_genesis: bool,
    pub torn_tail: Option<TornTail>,
}

/// An interrupted write at the end of the newest file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    /// Where the incomplete line starts, and how many bytes it has.
    pub offset: u64,
    pub bytes: u64,
}

/// The first record that does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit record broken in {file}, line {line} (byte offset {offset}{}): {fault}",
    seq.map(|s| format!(", sequence {s}")).unwrap_or_default())]
pub struct Broken {
    pub file: PathBuf,
    /// 1-based line number within the file.
    pub line: u64,
    pub offset: u64,
    /// The sequence number the line should carry, when known.
    pub seq: Option<u64>,
    pub fault: Fault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("the line does not start with a 64-digit hex hash and a space")]
    MalformedHash,
    #[error("the line has no decimal sequence number after its hash")]
    MalformedSequence,
    #[error("the line is longer than any record the gateway writes")]
    TooLong,
    #[error("the hash does not match the line and the one before it")]
    HashMismatch,
    #[error("sequence number {found} where {expected} was due")]
    Sequence { expected: u64, found: u64 },
    #[error("the record is not a readable audit record")]
    Unreadable,
    #[error("the file does not begin with an opening record")]
    NoOpening,
    #[error("an opening record in the middle of a file")]
    MisplacedOpening,
    #[error("the opening does not chain from the previous file's last record")]
    Link,
    #[error("the file's last line is incomplete, and newer files follow it")]
    TornInside,
    #[error("audit file number {expected} is missing (found {found} next)")]
    MissingFile { expected: u64, found: u64 },
}

/// The audit files in `dir`, in index order, with their indexes and days.
pub(super) fn list_files(dir: &Path) -> Result<Vec<(u64, u32, PathBuf)>, AuditError> {
    let entries = std::fs::read_dir(dir).map_err(|source| AuditError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let (index, day) = chain::parse_file_name(name.to_str()?)?;
            Some((index, day, e.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads and checks every file in `dir`, handing each event to `visit` with its sequence number.
/// Fails with [`AuditError::Broken`] naming the first record that does not verify.
pub fn read_trail(
    dir: &Path,
    mut visit: impl FnMut(u64, AuditEvent),
) -> Result<Verified, AuditError> {
    let files = list_files(dir)?;
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let total = files.iter().map(|(_, _, p)| size(p)).sum();
    let progress = Progress::start("Reading the audit trail", Some(total), Unit::Bytes);
    let read = read_files(&files, &mut visit, &progress);
    progress.finish();
    read
}

fn read_files(
    files: &[(u64, u32, PathBuf)],
    visit: &mut impl FnMut(u64, AuditEvent),
    progress: &Progress,
) -> Result<Verified, AuditError> {
    let mut cursor = Cursor::default();
    let mut torn_tail = None;
    for (n, (index, _, path)) in files.iter().enumerate() {
        if let Some(prev) = n.checked_sub(1).map(|p| files[p].0) {
            if *index != prev + 1 {
                return Err(AuditError::Broken(Broken {
                    file: path.clone(),
                    line: 1,
                    offset: 0,
                    seq: cursor.next_seq(),
                    fault: Fault::MissingFile {
                        expected: prev + 1,
                        found: *index,
                    },
                }));
            }
        }
        let scan = scan_file(path, &mut cursor, visit)?;
        progress.inc(std::fs::metadata(path).map_or(0, |m| m.len()));
        if let Some(t) = scan.torn {
            if n + 1 < files.len() {
                return Err(AuditError::Broken(Broken {
                    file: path.clone(),
                    line: scan.lines + 1,
                    offset: t.offset,
                    seq: cursor.next_seq(),
                    fault: Fault::TornInside,
                }));
            }
            torn_tail = Some(t);
        }
    }
    Ok(Verified {
        files: files.len(),
        records: cursor.events,
        first_seq: cursor.first_seq,
        last_seq: cursor.last.map(|(s, _)| s),
        head: cursor.last.map_or(GENESIS, |(_, h)| h),
        from_genesis: cursor.from_genesis,
        torn_tail,
    })
}

/// Where the chain has got to.
#[derive(Default)]
pub(super) struct Cursor {
    /// The last complete line's sequence number and hash.
    pub(super) last: Option<(u64, Hash)>,
    first_seq: Option<u64>,
    from_genesis: bool,
    events: u64,
}

impl Cursor {
    fn next_seq(&self) -> Option<u64> {
        self.last.map(|(s, _)| s + 1)
    }
}

/// One file's complete lines, and its incomplete tail if any.
pub(super) struct FileScan {
    pub(super) lines: u64,
    /// Bytes of complete lines.
    pub(super) complete: u64,
    pub(super) torn: Option<TornTail>,
}

/// Checks one file's lines against `cursor`, advancing it. An incomplete last line is returned
/// as `torn`, not judged: whether that is allowed depends on whether newer files follow.
pub(super) fn scan_file(
    path: &Path,
    cursor: &mut Cursor,
    visit: &mut impl FnMut(u64, AuditEvent),
) -> Result<FileScan, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::with_capacity(256 * 1024, File::open(path).map_err(io)?);
    let mut buf = Vec::with_capacity(1024);
    let mut offset = 0u64;
    let mut lines = 0u64;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            return Ok(FileScan {
                lines,
                complete: offset,
                torn: None,
            });
        }
        let broken = |fault, seq| {
            AuditError::Broken(Broken {
                file: path.to_owned(),
                line: lines + 1,
                offset,
                seq,
                fault,
            })
        };
        if buf.last() != Some(&b'\n') {
            if n > MAX_LINE_BYTES {
                return Err(broken(Fault::TooLong, cursor.next_seq()));
            }
            // The rest of the file, without a line feed: an interrupted write.
            return Ok(FileScan {
                lines,
                complete: offset,
                torn: Some(TornTail {
                    file: path.to_owned(),
                    offset,
                    bytes: n as u64,
                }),
            });
        }
        let at = Position {
            file: path,
            line: lines,
            offset,
        };
        if let Some((seq, event)) = check_line(&buf[..n - 1], &at, cursor)? {
            visit(seq, event);
        }
        lines += 1;
        offset += n as u64;
    }
}

/// Where a line is: its file, how many complete lines come before it there, its byte offset.
struct Position<'a> {
    file: &'a Path,
    line: u64,
    offset: u64,
}

impl Position<'_> {
    fn broken(&self, fault: Fault, seq: Option<u64>) -> AuditError {
        AuditError::Broken(Broken {
            file: self.file.to_owned(),
            line: self.line + 1,
            offset: self.offset,
            seq,
            fault,
        })
    }
}

/// Checks one complete line (without its line feed) against `cursor`, advancing it: its hash
/// chains from the line before, its sequence number follows, and a file opens with an opening.
/// Returns the event the line records, if it records one.
fn check_line(
    text: &[u8],
    at: &Position<'_>,
    cursor: &mut Cursor,
) -> Result<Option<(u64, AuditEvent)>, AuditError> {
    let line = chain::split_line(text).map_err(|m| {
        let fault = match m {
            Malformed::Hash => Fault::MalformedHash,
            Malformed::Sequence => Fault::MalformedSequence,
        };
        at.broken(fault, cursor.next_seq())
    })?;
    // The number this line should carry; its own field may be what was altered.
    let due = Some(cursor.next_seq().unwrap_or(line.seq));
    let stored: Option<Stored> = serde_json::from_slice(line.record).ok();
    // The hash each line must chain from: the line before it, or for the first line of the
    // first file present, what its opening says.
    let prev = match (cursor.last, at.line, &stored) {
        (Some((_, h)), _, _) => h,
        (None, 0, Some(Stored::Open(o))) => {
            chain::unhex(o.prev.as_bytes()).ok_or_else(|| at.broken(Fault::Unreadable, due))?
        }
        (None, 0, Some(_)) => return Err(at.broken(Fault::NoOpening, due)),
        (None, _, _) => return Err(at.broken(Fault::Unreadable, due)),
    };
    if chain::hash(&prev, line.body) != line.hash {
        return Err(at.broken(Fault::HashMismatch, due));
    }
    if let Some(expected) = cursor.next_seq() {
        if line.seq != expected {
            let fault = Fault::Sequence {
                expected,
                found: line.seq,
            };
            return Err(at.broken(fault, Some(expected)));
        }
    }
    let stored = stored.ok_or_else(|| at.broken(Fault::Unreadable, due))?;
    match (&stored, at.line) {
        (Stored::Open(o), 0) => {
            if cursor.last.is_some() && chain::unhex(o.prev.as_bytes()) != Some(prev) {
                return Err(at.broken(Fault::Link, due));
            }
            if cursor.last.is_none() {
                cursor.first_seq = due;
                cursor.from_genesis = line.seq == 0 && prev == GENESIS;
            }
        }
        (Stored::Open(_), _) => return Err(at.broken(Fault::MisplacedOpening, due)),
        (_, 0) => return Err(at.broken(Fault::NoOpening, due)),
        _ => {}
    }
    cursor.last = Some((line.seq, line.hash));
    let Some(event) = stored.into_event() else {
        return Ok(None);
    };
    cursor.events += 1;
    Ok(Some((line.seq, event)))
}
