//! The outbox's configuration (`[outbox]`), with the delivery promise's numbers as defaults:
//! first retry within 300 s, messages held two days before they become dead letters.

use serde::Deserialize;

use super::queue::Policy;
use super::OutboxError;

/// The DUIS promise: a failed delivery is retried at least once within this time.
pub const PROMISED_FIRST_RETRY_MS: u64 = 300_000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Delay before a failed message's first retry; must be at most 300 000 (the promise).
    #[schemars(range(min = 1, max = 300_000))]
    pub first_retry_ms: u64,
    /// The retry delay doubles per failure up to this.
    pub max_backoff_ms: u64,
    /// Time a message is held for delivery before it becomes a dead letter (two days).
    #[schemars(range(min = 1))]
    pub hold_secs: u64,
    /// Deliveries in flight to one User at a time. A User's slow endpoint holds at most this
    /// many; other Users have their own.
    #[schemars(range(min = 1))]
    pub per_user_concurrency: usize,
    /// Failures in a row, with no success between, after which a User's endpoint is taken to
    /// be down: its queue then waits behind one probe per backoff period.
    #[schemars(range(min = 1))]
    pub open_after_failures: u32,
    /// A journal segment is sealed, and a new one begun, past this size.
    #[schemars(range(min = 4096))]
    pub segment_bytes: u64,
    /// Body bytes the outbox holds (pending and dead letters). At the bound `enqueue` refuses
    /// with `OutboxError::Full`: the caller sheds load (answers busy, leaves hub events
    /// unacknowledged) rather than the outbox growing without end.
    pub max_held_bytes: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            first_retry_ms: 60_000,
            max_backoff_ms: 300_000,
            hold_secs: 2 * 24 * 3600,
            per_user_concurrency: 8,
            open_after_failures: 3,
            segment_bytes: 64 * 1024 * 1024,
            max_held_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl OutboxConfig {
    /// Checks every bound without opening anything (`dccgw config check`).
    pub fn check(&self) -> Result<(), OutboxError> {
        self.policy().map(|_| ())
    }

    pub(super) fn policy(&self) -> Result<Policy, OutboxError> {
        let bad = |key: &'static str| Err(OutboxError::Config { key });
        if self.first_retry_ms == 0 || self.first_retry_ms > PROMISED_FIRST_RETRY_MS {
            return bad("first_retry_ms");
        }
        if self.max_backoff_ms < self.first_retry_ms || self.max_backoff_ms > i64::MAX as u64 {
            return bad("max_backoff_ms");
        }
        if self.hold_secs == 0 || self.hold_secs > (i64::MAX / 1000) as u64 {
            return bad("hold_secs");
        }
        if self.per_user_concurrency == 0 {
            return bad("per_user_concurrency");
        }
        if self.open_after_failures == 0 {
            return bad("open_after_failures");
        }
        if self.segment_bytes < 4096 {
            return bad("segment_bytes");
        }
        // Values checked above fit an i64.
        Ok(Policy {
            first_retry_ms: self.first_retry_ms as i64,
            max_backoff_ms: self.max_backoff_ms as i64,
            hold_ms: self.hold_secs as i64 * 1000,
            concurrency: self.per_user_concurrency,
            open_after: self.open_after_failures,
        })
    }
}
