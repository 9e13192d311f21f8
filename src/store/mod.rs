//! Durable state behind small interfaces, with embedded defaults: the journal (an append-only,
//! checksummed, fsynced log with group commit) and what is kept in it — the request log (one
//! durable commit per request's decision: its mark and its effects' records), the anti-replay
//! high-water marks, the logs of registration and User changes, the ledgers of pre-commands
//! and locally delivered commands, held future-dated requests, DSP schedules, quarantined requests and anomaly thresholds.

mod changes;
mod counts;
mod holds;
mod journal;
mod ledger;
mod quarantine;
mod replay;
mod requests;
mod schedules;
mod thresholds;
mod user_changes;

pub use changes::{Batch, ChangeLog, ChangeLogError, Replayed};
pub use counts::{CountLog, Tallied};
pub use holds::{Held, HoldError, HoldLimits, Holds};
pub use journal::{rewrite, Journal, JournalError, MAX_RECORD_BYTES};
pub use ledger::record_key;
pub use ledger::{IssueError, Ledger, LedgerLimits, UseError};
pub use quarantine::{
    Ending, Quarantine, QuarantineError, Quarantined, SharedEntries, SharedFuture,
};
pub use replay::{AdvanceError, ReplayGuard, Reservation};
pub use requests::{
    CommitError, Decision, Entry, EntryFuture, EntryKind, FileRequestLog, KeyOf, LogFuture,
    MarkEntry, Recovered, RequestLog, Sealed, Trail,
};
pub use schedules::{Due, Schedule, ScheduleStoreError, Schedules};
pub use thresholds::{ThresholdLog, ThresholdSet};
pub use user_changes::{Replayed as UserChangesReplayed, UserChangeLog, UserChangeLogError};

/// The files in `dir` named `{prefix}{N}{suffix}`, with their numbers, in number order (the
/// segments of a segmented journal). Other files are left alone.
pub fn numbered_files<N: std::str::FromStr + Ord>(
    dir: &std::path::Path,
    prefix: &str,
    suffix: &str,
) -> std::io::Result<Vec<(N, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_prefix(prefix))
            .and_then(|s| s.strip_suffix(suffix))
            .and_then(|s| s.parse::<N>().ok())
        else {
            continue;
        };
        out.push((n, entry.path()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Makes a directory's entries (a file created, renamed or removed in it) durable.
pub fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

/// Whether files can be made durable in `dir` (created if missing): a probe file is written,
/// fsynced and removed. A start checks each state directory this way before it loads anything;
/// `/readyz` uses it to see a failed disk come back.
pub fn probe_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(".dccgw-probe");
    let result = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(b"probe")?;
        f.sync_all()
    });
    let removed = std::fs::remove_file(&path);
    result.and(removed)
}
