//! Durable state behind small interfaces, with embedded defaults: the journal (an append-only,
//! checksummed, fsynced log with group commit) and what is kept in it — the anti-replay
//! high-water marks, the logs of registration and User changes, the ledgers of pre-commands
//! and locally delivered commands, held future-dated requests and DSP schedules.

mod changes;
mod holds;
mod journal;
mod ledger;
mod replay;
mod schedules;
mod user_changes;

pub use changes::{Batch, ChangeLog, ChangeLogError, Replayed};
pub use holds::{Held, HoldError, HoldLimits, Holds};
pub use journal::{Journal, JournalError, MAX_RECORD_BYTES};
pub use ledger::{IssueError, Ledger, LedgerLimits, UseError};
pub use replay::{AdvanceError, ReplayGuard};
pub use schedules::{Due, Schedule, ScheduleStoreError, Schedules};
pub use user_changes::{UserChangeLog, UserChangeLogError};
