//! Durable state behind small interfaces, with embedded defaults: the journal (an append-only,
//! checksummed, fsynced log with group commit) and what is kept in it — the anti-replay
//! high-water marks now, registration changes and the delivery outbox later. A shared database
//! can take the journal's place behind the same interface (mission item 11).

mod changes;
mod journal;
mod replay;

pub use changes::{Batch, ChangeLog, ChangeLogError, Replayed};
pub use journal::{Journal, JournalError, MAX_RECORD_BYTES};
pub use replay::{Replay, ReplayGuard};
