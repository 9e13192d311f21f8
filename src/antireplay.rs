//! The anti-replay rule: each originator's counter must be strictly greater than the last one
//! accepted from it, except that a Command Variant 5 request (the signed pre-command) reuses the
//! RequestID of the Command Variant 4 request that asked for it, once, for the same target.
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
}

/// The mark that accepting `id` (sent as `cv`) leaves after `last`, or why it is refused.
pub fn admit(last: Mark, id: &RequestId, cv: CommandVariant) -> Result<Mark, Replay> {
    let fresh = id.counter > last.counter || (last.counter == 0 && id.counter == 0);
    let cv5_twin =
        cv.get() == 5 && id.counter == last.counter && last.pre_command_for == Some(id.target);
    if !fresh && !cv5_twin {
        return Err(Replay::NotIncreasing {
            counter: id.counter,
            last: last.counter,
        });
    }
    Ok(Mark {
        counter: id.counter,
        pre_command_for: (cv.get() == 4).then_some(id.target),
    })
}
