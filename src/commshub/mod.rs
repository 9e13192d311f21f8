//! The comms-hub network behind the gateway, and the gateway's side of it.
//!
//! - [`HubNetwork`]: what the gateway sends signed commands to. Two implementations: an
//!   [`InProcessHub`] (demo, tests) and a [`RemoteHub`] (HTTP client of the `dccgw commshub`
//!   process, [`serve`]). Events come back on the channel given when the hub starts, each with a
//!   [`Receipt`] the consumer acknowledges once the event is safe (durably in the outbox); an
//!   unacknowledged event is delivered again after a reconnect or restart (duplicates, not loss).
//! - [`Simulator`]: every device of a registry [`Snapshot`](crate::registry::Snapshot), with
//!   per-SRV and per-device-group behaviour ([`HubConfig`]), faults, spontaneous alerts and
//!   storms, from a seeded random generator so a run can be replayed. It verifies every
//!   command's broker signature and refuses unsigned or forged ones.
//! - [`Dispatcher`]: the gateway side. Journals each command before the `I99`, sends it, turns
//!   the hub's answer, an unreachable device or a timeout into a [`DispatchOutcome`], and
//!   re-dispatches whatever was pending at the last stop.

mod config;
mod dispatch;
#[doc(hidden)]
pub mod fixture;
mod gbcs;
mod inprocess;
mod pending;
mod raised;
mod remote;
mod rng;
mod serve;
mod sim;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dispatch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::domain::{DeviceId, RequestId};
use crate::routing::{RoutingError, SignedCommand};

pub use config::{
    AlertSpec, Behaviour, BehaviourPatch, ConfigError, GroupOverride, HubConfig, Latency,
    SpontaneousAlerts, Storm, WeightedCode,
};
pub use dispatch::{
    DeviceFailure, DispatchConfig, DispatchError, DispatchOutcome, Dispatcher, Opened,
};
pub use gbcs::{alert_frame, response_frame, GbcsFrame};
pub use inprocess::InProcessHub;
pub use raised::{Raised, RaisedError, RaisedKind, RaisedLog};
pub use remote::RemoteHub;
pub use serve::{serve, serve_on, ServeConfig};
pub use sim::{Scheduled, Simulator};

/// GBCS alert code: a future-dated command executed.
pub const FUTURE_DATED_EXECUTED: u16 = 0x8F66;
/// GBCS alert code: a future-dated command failed.
pub const FUTURE_DATED_FAILED: u16 = 0x8F67;

/// Something the hub network reports. `at` is when it happened, unix seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubEvent {
    /// The device's answer to a command (GBCS-shaped bytes).
    Response {
        request_id: RequestId,
        device: DeviceId,
        payload: Vec<u8>,
        at: i64,
    },
    /// The network could not reach the device (DUIS `E20`).
    Unreachable {
        request_id: RequestId,
        device: DeviceId,
        at: i64,
    },
    /// A device alert (GBCS alert code and frame).
    Alert {
        device: DeviceId,
        code: u16,
        payload: Vec<u8>,
        at: i64,
    },
    /// A future-dated command ran (`8F66`) or failed (`8F67`) at its execution time.
    FutureDated {
        request_id: RequestId,
        device: DeviceId,
        code: u16,
        payload: Vec<u8>,
        at: i64,
    },
}

impl HubEvent {
    pub fn device(&self) -> DeviceId {
        match self {
            Self::Response { device, .. }
            | Self::Unreachable { device, .. }
            | Self::Alert { device, .. }
            | Self::FutureDated { device, .. } => *device,
        }
    }
}

/// A hub event and the receipt to acknowledge it with.
#[derive(Debug)]
pub struct Inbound {
    pub event: HubEvent,
    pub receipt: Receipt,
}

/// Acknowledges one event to the hub network. Call [`Receipt::ack`] once the event is safe
/// (its message durably in the outbox); dropping it unacknowledged means the hub offers the
/// event again after the next reconnect or restart.
#[derive(Debug)]
pub struct Receipt {
    inner: Option<(Arc<remote::AckTracker>, u64, u64)>,
}

impl Receipt {
    /// A receipt with nothing behind it (in-process events die with the process anyway).
    pub fn none() -> Self {
        Self { inner: None }
    }

    pub fn ack(mut self) {
        if let Some((tracker, epoch, seq)) = self.inner.take() {
            tracker.ack(epoch, seq);
        }
    }
}

/// Why the hub network did not take a command.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("the hub network refused the command")]
    Refused(#[source] RoutingError),
    #[error("the hub network is unreachable")]
    Unreachable(#[source] std::io::Error),
    #[error("the hub network answered HTTP {0}")]
    Status(u16),
    #[error("the hub network is at its bound of commands in flight")]
    Overloaded,
    #[error("the hub network has stopped")]
    Stopped,
}

/// A boxed future, so that `HubNetwork` can be used as `Arc<dyn HubNetwork>`.
pub type HubFuture<'a> = Pin<Box<dyn Future<Output = Result<(), HubError>> + Send + 'a>>;

/// The comms-hub network, as the gateway sees it.
pub trait HubNetwork: Send + Sync {
    /// Hands one signed command to the network. `Ok` means it was taken; what the device does
    /// comes back later as events.
    fn send(&self, cmd: SignedCommand) -> HubFuture<'_>;
}

/// Unix milliseconds from the system clock (the only clock read in this module's drivers).
pub(crate) fn unix_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
