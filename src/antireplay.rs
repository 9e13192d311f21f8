//! The anti-replay rule: each originator's counter must be strictly greater than the last one
//! accepted from it, except that a Command Variant 5 request (the signed pre-command) reuses the
//! RequestID of the Command Variant 4 request that asked for it, once, for the same target.
//! An originator from which nothing was accepted yet may start at any counter, `0` included —
//! once.
//!
//! A counter may not be above the current time in nanoseconds since 1970: no way of stamping
//! counters (a sequence, or the time in seconds, milliseconds, microseconds or nanoseconds) makes
//! a larger one, and accepting one would leave its User no counter to send next. An operator can
//! still set an originator's mark back (`store::ReplayGuard::reset`).
//!
//! Pure: `store::ReplayGuard` keeps the marks and journals them.

use serde::{Deserialize, Serialize};

use crate::domain::{CommandVariant, DeviceId, RequestId};

/// The last counter accepted from one originator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub counter: u64,
    /// Set when that request was a Command Variant 4 for this target: its CV5 may reuse it.
    pub pre_command_for: Option<DeviceId>,
}

/// Why a counter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Replay {
    #[error("counter {counter} is not above {last}, the last accepted from this originator")]
    NotIncreasing { counter: u64, last: u64 },
    #[error("counter {counter} is above the current time in nanoseconds since 1970 ({limit})")]
    AheadOfClock { counter: u64, limit: u64 },
}

/// The mark that accepting `id` (sent as `cv`) leaves after `last` (`None`: nothing accepted from
/// this originator yet), or why it is refused. `now_ns` is the current time in nanoseconds since
/// 1970.
pub fn admit(
    last: Option<Mark>,
    id: &RequestId,
    cv: CommandVariant,
    now_ns: u64,
) -> Result<Mark, Replay> {
    if id.counter > now_ns {
        return Err(Replay::AheadOfClock {
            counter: id.counter,
            limit: now_ns,
        });
    }
    if let Some(last) = last {
        let fresh = id.counter > last.counter;
        let cv5_twin =
            cv.get() == 5 && id.counter == last.counter && last.pre_command_for == Some(id.target);
        if !fresh && !cv5_twin {
            return Err(Replay::NotIncreasing {
                counter: id.counter,
                last: last.counter,
            });
        }
    }
    Ok(Mark {
        counter: id.counter,
        pre_command_for: (cv.get() == 4).then_some(id.target),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_NS: u64 = 1_800_000_000_000_000_000;

    fn id(counter: u64) -> RequestId {
        format!("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}")
            .parse()
            .unwrap()
    }

    fn cv(v: u8) -> CommandVariant {
        CommandVariant::try_from(v).unwrap()
    }

    #[test]
    fn a_first_counter_of_zero_is_accepted_once() {
        let mark = admit(None, &id(0), cv(1), NOW_NS).unwrap();
        assert_eq!(mark.counter, 0);
        assert_eq!(
            admit(Some(mark), &id(0), cv(1), NOW_NS),
            Err(Replay::NotIncreasing {
                counter: 0,
                last: 0
            })
        );
        assert!(admit(Some(mark), &id(1), cv(1), NOW_NS).is_ok());
    }

    #[test]
    fn counters_above_the_clock_in_nanoseconds_are_refused() {
        for counter in [u64::MAX, u64::MAX - 1, NOW_NS + 1] {
            assert_eq!(
                admit(None, &id(counter), cv(1), NOW_NS),
                Err(Replay::AheadOfClock {
                    counter,
                    limit: NOW_NS
                }),
                "{counter}"
            );
        }
        // Every stamping scheme's counter is at or below it.
        for counter in [
            1,
            NOW_NS / 1_000_000_000,
            NOW_NS / 1_000_000,
            NOW_NS / 1000,
            NOW_NS,
        ] {
            assert!(
                admit(None, &id(counter), cv(1), NOW_NS).is_ok(),
                "{counter}"
            );
        }
    }

    #[test]
    fn a_cv5_reuses_its_cv4s_request_id_once() {
        let cv4 = admit(None, &id(20), cv(4), NOW_NS).unwrap();
        let cv5 = admit(Some(cv4), &id(20), cv(5), NOW_NS).unwrap();
        assert!(admit(Some(cv5), &id(20), cv(5), NOW_NS).is_err());
    }
}
