//! When a schedule runs. Execution `k` (from 0) falls on the `k`-th date of the schedule's
//! frequency from its start date (a monthly one on the start's day of the month, or the month's
//! last day when it is shorter), at its execution start time, while that date is not after the
//! end date. Its time is the first execution's plus `day_secs` seconds for every calendar day
//! between the two dates: a real day is 86 400 seconds (no daylight-saving shifts: a time with a
//! zone keeps that zone's fixed offset); a shorter one compresses the calendar, so that tests
//! can watch a Daily schedule run several times in a few seconds.

use time::{Date, Duration, Month, Time, UtcOffset};

use super::{Frequency, ScheduleSpec};

/// Executions are numbered below this: `k` travels in 22 bits of the execution's RequestID.
pub const MAX_EXECUTIONS: u32 = (1 << 22) - 1;

impl Frequency {
    /// The step between executions: days, or calendar months.
    const fn step(self) -> Step {
        match self {
            Self::Daily => Step::Days(1),
            Self::Weekly => Step::Days(7),
            Self::Monthly => Step::Months(1),
            Self::Quarterly => Step::Months(3),
            Self::HalfYearly => Step::Months(6),
            Self::Yearly => Step::Months(12),
        }
    }
}

#[derive(Clone, Copy)]
enum Step {
    Days(i64),
    Months(i64),
}

impl ScheduleSpec {
    /// The date of execution `k`, or `None` past the end date (or the calendar's).
    pub fn execution_date(&self, k: u32) -> Option<Date> {
        if k >= MAX_EXECUTIONS {
            return None;
        }
        let date = match self.frequency.step() {
            Step::Days(n) => self
                .start
                .checked_add(Duration::days(n.checked_mul(i64::from(k))?))?,
            Step::Months(n) => add_months(self.start, n.checked_mul(i64::from(k))?)?,
        };
        match self.end {
            Some(end) if date > end => None,
            _ => Some(date),
        }
    }

    /// When execution `k` runs (unix seconds), with `day_secs` seconds to a calendar day.
    pub fn execution_time(&self, k: u32, day_secs: i64) -> Option<i64> {
        let date = self.execution_date(k)?;
        let days = (date - self.start).whole_days();
        self.first_time().checked_add(days.checked_mul(day_secs)?)
    }

    /// The first execution whose time is at or after `t` (unix seconds), if any.
    pub fn first_execution_from(&self, t: i64, day_secs: i64) -> Option<u32> {
        let first = self.first_time();
        let day_secs = day_secs.max(1);
        // An estimate at or below the answer, then forward: each step is at least 28 days.
        let behind = t.saturating_sub(first).max(0) / day_secs;
        let mut k = match self.frequency.step() {
            Step::Days(n) => behind / n,
            Step::Months(n) => behind / (31 * n),
        };
        loop {
            let k32 = u32::try_from(k).ok()?;
            if self.execution_time(k32, day_secs)? >= t {
                return Some(k32);
            }
            k += 1;
        }
    }

    /// The last execution, from `from` on, whose time is at or before `t` (unix seconds), if
    /// any.
    pub fn last_execution_by(&self, from: u32, t: i64, day_secs: i64) -> Option<u32> {
        let last = match self.first_execution_from(t.saturating_add(1), day_secs) {
            Some(k) => k.checked_sub(1)?,
            // No execution after `t`: the schedule's last one (execution dates exist up to
            // some k and not after it).
            None => {
                let (mut lo, mut hi) = (0u32, MAX_EXECUTIONS);
                self.execution_date(0)?;
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if self.execution_date(mid).is_some() {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
        };
        (last >= from && self.execution_time(last, day_secs)? <= t).then_some(last)
    }

    /// The first execution's time (unix seconds): the start date at the execution start time.
    fn first_time(&self) -> i64 {
        let (time, offset) = match self.time {
            Some(t) => (t.time, t.offset.unwrap_or(UtcOffset::UTC)),
            None => (Time::MIDNIGHT, UtcOffset::UTC),
        };
        self.start
            .with_time(time)
            .assume_offset(offset)
            .unix_timestamp()
    }
}

/// `date` plus `months` calendar months, on the same day or the month's last.
fn add_months(date: Date, months: i64) -> Option<Date> {
    let index = i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1 + months;
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
    let last = month.length(year);
    Date::from_calendar_date(year, month, date.day().min(last)).ok()
}
