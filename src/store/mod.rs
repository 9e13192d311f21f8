//! Durable state behind small interfaces, with embedded defaults: the journal (an append-only,
//! checksummed, fsynced log with group commit) and what is kept in it — the anti-replay
//! high-water marks, and the logs of registration and User changes.

mod changes;
mod journal;
mod replay;
mod user_changes;

pub use changes::{Batch, ChangeLog, ChangeLogError, Replayed};
pub use journal::{rewrite, Journal, JournalError, MAX_RECORD_BYTES};
pub use replay::{AdvanceError, ReplayGuard};
pub use user_changes::{UserChangeLog, UserChangeLogError};
