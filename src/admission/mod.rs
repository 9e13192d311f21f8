//! Admission control for the DUIS port: which parsed requests the gateway takes on and which it
//! sheds at once, before verifying their signatures (the expensive part). Three bounds, checked
//! in this order, each refusing with a fast signed answer rather than a queue:
//!
//! 1. the User's requests in flight (`per_user_concurrency`) — `E61`, HTTP 429;
//! 2. the User's rate, a token bucket (`per_user_rate` per second, `per_user_burst` at once) —
//!    `E61`, HTTP 429;
//! 3. the gateway's requests in flight against a limit that adapts to measured latency
//!    ([`gradient`], Netflix's Gradient2), by priority class ([`classes`]): bulk reads may fill
//!    `bulk_share` of the limit, standard requests all of it, critical commands and prepayment
//!    requests up to `max_limit` — so as latency rises bulk reads are shed first and a critical
//!    request is still admitted — `E60`, HTTP 503.
//!
//! Pure: the state lives in a [`Limiter`] that the pipeline holds under a lock and feeds the
//! time; the class table is data (`docs/admission.md`).

pub mod classes;
pub mod gradient;
mod limiter;

#[cfg(test)]
mod tests;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use classes::{class_of, Class, ClassTable, CLASSES};
pub use limiter::{Admitted, Limiter, Shed, DECISIONS};

/// `[admission]`: the bounds a parsed request is admitted under before its signature is
/// verified. A request over one is answered at once (`E60` 503 or `E61` 429, with
/// `Retry-After`) and costs the gateway its parse and a signed answer, nothing more.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Admission control on or off. Off, every parsed request goes on to its signature check
    /// (the connection and body bounds of `[limits]` still hold).
    pub enabled: bool,
    /// Whether the global limit adapts to latency (Gradient2). Off, it stays at
    /// `initial_limit`.
    pub adaptive: bool,
    /// Requests in flight the gateway starts by admitting (standard class).
    pub initial_limit: usize,
    /// The adaptive limit never goes below this.
    pub min_limit: usize,
    /// The adaptive limit never goes above this.
    pub max_limit: usize,
    /// How often the limit adapts (milliseconds; a window also needs 10 answered requests).
    pub window_ms: u64,
    /// The share of the limit bulk reads may fill (0 to 1). The rest is kept for others.
    /// Critical and prepayment requests are admitted up to `max_limit` in flight.
    pub bulk_share: f64,
    /// Requests one User may have in flight at once; more are refused with `E61`.
    pub per_user_concurrency: usize,
    /// Requests per second one User may send on average; faster, past its burst, is refused
    /// with `E61`.
    pub per_user_rate: f64,
    /// Requests one User may send at once above its rate.
    pub per_user_burst: f64,
    /// Users whose rate state is kept before idle ones are forgotten.
    pub max_users: usize,
    /// Threads of the DUIS port's own runtime (its front lane): connections, TLS, HTTP, the
    /// parse and the admission decision, and shed answers run there, and an admitted request's
    /// further phases on the gateway's main runtime; so a request to shed is never queued
    /// behind admitted work. 0 runs everything on the main runtime.
    pub front_threads: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            adaptive: true,
            initial_limit: 32,
            min_limit: 16,
            max_limit: 1_024,
            window_ms: 100,
            bulk_share: 0.75,
            per_user_concurrency: 64,
            per_user_rate: 500.0,
            per_user_burst: 1_000.0,
            max_users: 65_536,
            front_threads: 1,
        }
    }
}

/// A configuration value out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[admission] {key} is out of range")]
pub struct ConfigError {
    pub key: &'static str,
}

impl AdmissionConfig {
    /// Refuses values that would make the bounds meaningless (a zero limit, a share above the
    /// whole, a negative rate).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key| Err(ConfigError { key });
        if self.min_limit == 0 || self.initial_limit == 0 {
            return bad("min_limit");
        }
        if self.max_limit < self.min_limit {
            return bad("max_limit");
        }
        if !(self.bulk_share > 0.0 && self.bulk_share <= 1.0) {
            return bad("bulk_share");
        }
        if self.per_user_concurrency == 0 {
            return bad("per_user_concurrency");
        }
        if !(self.per_user_rate > 0.0 && self.per_user_rate.is_finite()) {
            return bad("per_user_rate");
        }
        if !(self.per_user_burst >= 1.0 && self.per_user_burst.is_finite()) {
            return bad("per_user_burst");
        }
        if self.window_ms == 0 {
            return bad("window_ms");
        }
        if self.max_users == 0 {
            return bad("max_users");
        }
        Ok(())
    }
}
