//! Alert fan-out (layer 0: pure; the registry snapshot and `now` come in). Decides who receives
//! each alert and writes the unsigned messages; `docs/alerts.md` is the rule book.
//!
//! - [`RoutingTable`]: GBCS alert code → [`Audience`] (supplier, network operator, both), built-in
//!   rules from public facts plus configured overrides.
//! - [`route`]: a [`DeviceAlert`] → the Users registered in that audience for the device's meter
//!   point(s) at the alert's time.
//! - [`DccEvent`]: the DCC Alerts the gateway raises (power outage, device status change, change
//!   of supplier, command failure, quarantine), their codes and recipients;
//!   [`events_for_change`] derives them from registration changes.
//! - [`Throttle`]: per (User, alert code) storm throttling with `ThrottledAlertSequenceId` /
//!   `ThrottledAlertCount` summaries.
//! - [`Fanout`]: all of it together, one [`AlertMessage`] per User, ready to sign.

mod changes;
mod dcc;
mod fanout;
mod route;
mod table;
mod throttle;

#[cfg(test)]
mod tests;

use serde::Deserialize;

use crate::domain::{DccAlertCode, DeviceId};
use crate::duis::outbound::WriteError;

pub use changes::{apply_batch, events_for_change, ChangeAlerts, ChangeProgress, Mark};
pub use dcc::{dcc_recipients, power_outage_events, status_change, DccAlert, DccEvent};
pub use fanout::{AlertKind, AlertMessage, Fanned, Fanout, FutureDatedAlert};
pub use route::{audience_at, network_operator_role, route, supplier_role, DeviceAlert, Recipient};
pub use table::{Audience, CodeRange, RouteRule, RoutingTable, BUILTIN_RULES};
pub use throttle::{Offer, Released, Throttle, ThrottleConfig};

/// The `[alerts]` configuration section.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default)]
    pub throttle: ThrottleConfig,
    /// Routing rules over the built-in ones (`[[alerts.routes]] codes = "8F35" to = "both"`).
    #[serde(default)]
    pub routes: Vec<RouteRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertsError {
    #[error("device {0} is not in the registry")]
    UnknownDevice(DeviceId),
    #[error("nobody is registered to receive alert {code:04X} from device {device}")]
    NoRecipient { device: DeviceId, code: u16 },
    #[error("nobody is registered to receive DCC alert {0}")]
    NoDccRecipient(DccAlertCode),
    #[error("the message cannot be written")]
    Write(#[source] WriteError),
    #[error("{0} is not a unix time a message can carry")]
    TimeOutOfRange(i64),
    #[error("{0:?} is not an alert code or range of them (8F35, 8000-80FF)")]
    CodeSyntax(String),
    #[error("the code range {first:04X}-{last:04X} is empty")]
    EmptyCodeRange { first: u16, last: u16 },
    #[error("alerts.throttle.{0} must be at least 1")]
    ZeroThrottleBound(&'static str),
}
