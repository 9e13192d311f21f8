//! Monthly reports, computed from the audit trail alone (`dccgw report performance|usage`):
//!
//! - **performance** ([`performance`]), in the style of Code Performance Measure 1: of the
//!   on-demand requests accepted in the month, the share whose Service Response reached the User
//!   within its Target Response Time, per SRV family. A synchronous answer's response time is the
//!   request's own (body read → answer written); when an asynchronous Service Response follows
//!   (a device request acknowledged `I99`), it is the time from the request's arrival to the first
//!   delivery attempt that the User's endpoint accepted, which may fall after the month ends.
//!   A response never delivered counts as outside the target. Targets come from configuration
//!   ([`Targets`]).
//! - **usage** ([`usage`]): per User (the RequestID's originator), requests per SRV, accepted,
//!   bytes in and out, and the asynchronous messages delivered to it and their bytes — the volume
//!   that charging is by; and anomaly detection's warnings and quarantines of its requests
//!   (with their releases and deletions).
//!
//! The builders are pure (fed events, no I/O); [`read`] runs one over a trail, which is
//! verified as it is read: a report from a broken trail is refused.

mod performance;
mod text;
mod usage;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, Month as CalendarMonth};

use crate::audit::{self, AuditError, AuditEvent, Verified};
use crate::domain::Srv;

pub use performance::{FamilyPerformance, Performance, PerformanceReport};
pub use usage::{AnomalyLine, SrvUsage, Usage, UsageReport, UserUsage};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0:?} is not a month written YYYY-MM")]
    Month(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// A calendar month, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Month {
    first: Date,
}

impl Month {
    pub fn new(year: i32, month: u8) -> Option<Self> {
        let month = CalendarMonth::try_from(month).ok()?;
        Date::from_calendar_date(year, month, 1)
            .ok()
            .map(|first| Self { first })
    }

    /// The month's first instant (unix milliseconds), inclusive.
    pub fn start_ms(&self) -> i64 {
        self.first.midnight().assume_utc().unix_timestamp() * 1000
    }

    /// The next month's first instant, exclusive.
    pub fn end_ms(&self) -> i64 {
        let next = match self.first.month() {
            CalendarMonth::December => {
                Date::from_calendar_date(self.first.year() + 1, CalendarMonth::January, 1)
            }
            m => Date::from_calendar_date(self.first.year(), m.next(), 1),
        };
        // Only the last representable year has no next month; end there.
        next.map_or(i64::MAX, |d| {
            d.midnight().assume_utc().unix_timestamp() * 1000
        })
    }

    pub fn contains(&self, at_ms: i64) -> bool {
        (self.start_ms()..self.end_ms()).contains(&at_ms)
    }
}

impl FromStr for Month {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ReportError::Month(s.to_owned());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let year = y.parse().map_err(|_| bad())?;
        let month = m.parse().map_err(|_| bad())?;
        Self::new(year, month).ok_or_else(bad)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}",
            self.first.year(),
            u8::from(self.first.month())
        )
    }
}

impl From<Month> for String {
    fn from(m: Month) -> Self {
        m.to_string()
    }
}

/// Target Response Times, in seconds: a default, and overrides by SRV prefix (`"4"` is a whole
/// family, `"4.1"` a Service Reference, `"4.1.1"` one variant; the longest match wins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// The target for any SRV without an override (seconds).
    pub default_seconds: f64,
    /// Overrides by SRV prefix (`"4"`, `"4.1"`, `"4.1.1"`; the longest match wins), seconds.
    #[serde(default)]
    pub by_srv: BTreeMap<String, f64>,
}

impl Default for Targets {
    /// The on-demand device round trip target (Code Performance Measure 1): 25 s.
    fn default() -> Self {
        Self {
            default_seconds: 25.0,
            by_srv: BTreeMap::new(),
        }
    }
}

impl Targets {
    /// The target for `srv`, in milliseconds.
    pub fn target_ms(&self, srv: &Srv) -> u64 {
        let text = srv.to_string();
        let seconds = self
            .by_srv
            .iter()
            .filter(|(prefix, _)| {
                text == **prefix
                    || text
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default_seconds, |(_, s)| *s);
        // Negative or NaN targets are configuration mistakes; they count as zero.
        (seconds.max(0.0) * 1000.0).round() as u64
    }
}

/// Runs `report` over every record of the trail in `dir`, verifying it as it goes.
pub fn read<R: Report>(dir: &Path, mut report: R) -> Result<(R::Output, Verified), ReportError> {
    let verified = audit::read_trail(dir, |_, event| report.add(&event))?;
    Ok((report.finish(), verified))
}

/// A report builder: fed every event of a trail in order, then finished.
pub trait Report {
    type Output;
    fn add(&mut self, event: &AuditEvent);
    fn finish(self) -> Self::Output;
}

/// `dccgw report performance --month YYYY-MM`.
pub fn performance(
    dir: &Path,
    month: Month,
    targets: &Targets,
) -> Result<PerformanceReport, ReportError> {
    read(dir, Performance::new(month, targets.clone())).map(|(r, _)| r)
}

/// `dccgw report usage --month YYYY-MM`.
pub fn usage(dir: &Path, month: Month) -> Result<UsageReport, ReportError> {
    read(dir, Usage::new(month)).map(|(r, _)| r)
}

pub use text::{performance_text, usage_text};
