//! The line format and the hash chain, pure. A line is
//!
//! ```text
//! <SHA-256 hex, 64> SP <sequence, decimal> SP <record, one JSON object> LF
//! ```
//!
//! and its hash is `SHA-256(previous line's hash (32 bytes) ‖ "<sequence> <record>")`, so changing,
//! removing or reordering any line breaks every hash after it. The first line of a trail chains
//! from 32 zero bytes. Files are named `audit-<index, 6 digits>-<UTC day, YYYYMMDD>.log`; the
//! index orders them and the chain runs on from one file into the next.

use ring::digest::{Context, SHA256};

pub type Hash = [u8; 32];

/// What the first record of a trail chains from.
pub const GENESIS: Hash = [0; 32];

/// A line longer than this is not one the writer makes (records are a few hundred bytes); the
/// reader refuses it rather than hold it.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The hash of a line whose body (`"<sequence> <record>"`) follows `prev`.
pub fn hash(prev: &Hash, body: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(prev);
    ctx.update(body);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Appends the line for `record` (compact JSON: it holds no raw line feed) as number `seq` after
/// `prev`; returns its hash.
pub fn append_line(out: &mut Vec<u8>, prev: &Hash, seq: u64, record: &[u8]) -> Hash {
    let start = out.len();
    out.extend_from_slice(&[b'0'; 64]);
    out.push(b' ');
    let body_start = out.len();
    out.extend_from_slice(seq.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(record);
    let h = hash(prev, &out[body_start..]);
    out[start..start + 64].copy_from_slice(hex(&h).as_bytes());
    out.push(b'\n');
    h
}

/// A line taken apart (without its line feed). Nothing is checked against the chain here.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub hash: Hash,
    pub seq: u64,
    /// What the hash covers: `"<sequence> <record>"`.
    pub body: &'a [u8],
    pub record: &'a [u8],
}

/// Why a line could not be taken apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    Hash,
    Sequence,
}

pub fn split_line(line: &[u8]) -> Result<Line<'_>, Malformed> {
    if line.len() < 66 || line[64] != b' ' {
        return Err(Malformed::Hash);
    }
    let hash = unhex(&line[..64]).ok_or(Malformed::Hash)?;
    let body = &line[65..];
    let space = body
        .iter()
        .position(|&b| b == b' ')
        .ok_or(Malformed::Sequence)?;
    let digits = &body[..space];
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Malformed::Sequence);
    }
    // ASCII digits only, checked above.
    let seq = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Malformed::Sequence)?;
    Ok(Line {
        hash,
        seq,
        body,
        record: &body[space + 1..],
    })
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// 64 lower- or upper-case hex digits.
pub fn unhex(text: &[u8]) -> Option<Hash> {
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// The file name for file number `index` opened on `day` (`YYYYMMDD`).
pub fn file_name(index: u64, day: u32) -> String {
    format!("audit-{index:06}-{day:08}.log")
}

/// The index and day of an audit file's name; `None` for any other name.
pub fn parse_file_name(name: &str) -> Option<(u64, u32)> {
    let rest = name.strip_prefix("audit-")?.strip_suffix(".log")?;
    let (index, day) = rest.split_once('-')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(index) || day.len() != 8 || !all_digits(day) {
        return None;
    }
    Some((index.parse().ok()?, day.parse().ok()?))
}

/// The UTC day of a unix-milliseconds instant as `YYYYMMDD` (instants out of range count as
/// 1970-01-01).
pub fn day_of(at_ms: i64) -> u32 {
    let date = time::OffsetDateTime::from_unix_timestamp(at_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    let year = u32::try_from(date.year()).unwrap_or(0);
    year * 10_000 + u32::from(u8::from(date.month())) * 100 + u32::from(date.day())
}
