//! Which of the request log's audit entries a trail does not hold yet. The log commits a
//! request's audit record with its decision; the trail's copy follows (`Audit::copy_logged`)
//! and is fsynced before the log's segment is deleted. A crash between the two leaves entries
//! in the log's remaining segments that the trail lacks; a start copies those, and only those.
//!
//! An entry is found in the trail by its exact JSON (which carries its time, its request and
//! its phases' timings to the microsecond), counted: `n` equal entries in the log and `k` in the
//! trail's window mean `n - k` are missing. The window is the newest files back to the first
//! that opened [`WINDOW_MS`] before the oldest entry's time: a record reaches the trail after
//! its request was received, and no request is still being decided that long after.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::chain;
use super::record::Stored;
use super::verify::list_files;
use super::AuditError;

/// How far before the oldest logged entry's time the trail is searched.
pub const WINDOW_MS: i64 = 10 * 60 * 1000;

/// The entries of `logged` (time and JSON, in log order) the trail in `dir` does not hold, in
/// log order.
pub(super) fn missing<'a>(
    dir: &Path,
    logged: &[(i64, &'a [u8])],
) -> Result<Vec<(i64, &'a [u8])>, AuditError> {
    let Some(oldest) = logged.iter().map(|(at, _)| *at).min() else {
        return Ok(Vec::new());
    };
    let mut wanted: HashMap<&[u8], usize> = HashMap::with_capacity(logged.len());
    for (_, json) in logged {
        wanted.entry(json).or_insert(0);
    }
    for (_, _, path) in list_files(dir)?.iter().rev() {
        let opened = count_in(path, &mut wanted)?;
        if opened.is_some_and(|at| at < oldest.saturating_sub(WINDOW_MS)) {
            break;
        }
    }
    let mut out = Vec::new();
    for &(at, json) in logged {
        match wanted.get_mut(json) {
            Some(found) if *found > 0 => *found -= 1,
            _ => out.push((at, json)),
        }
    }
    Ok(out)
}

/// Counts the lines of `path` whose record is a key of `wanted`; returns the time its opening
/// record gives. Lines that do not read are left to `dccgw audit verify`.
fn count_in(path: &Path, wanted: &mut HashMap<&[u8], usize>) -> Result<Option<i64>, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io)?);
    let mut line = Vec::with_capacity(1024);
    let mut opened = None;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            return Ok(opened);
        }
        let Some(text) = line.strip_suffix(b"\n") else {
            return Ok(opened);
        };
        let Ok(parsed) = chain::split_line(text) else {
            continue;
        };
        if opened.is_none() {
            if let Ok(Stored::Open(o)) = serde_json::from_slice::<Stored>(parsed.record) {
                opened = Some(o.at_ms);
                continue;
            }
        }
        if let Some(found) = wanted.get_mut(parsed.record) {
            *found += 1;
        }
    }
}

#[cfg(test)]
mod tests;
