//! The hub link's contract: the [`HubNetwork`] the gateway sends signed commands to, and the
//! events that come back on the channel the network was started with, each an [`Inbound`] with a
//! [`Receipt`] the consumer acknowledges once the event is safe (durably in the outbox). An
//! unacknowledged event is offered again after a reconnect or restart, to this gateway or
//! another one reading the same hub (duplicates, not loss).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::domain::{DeviceId, RequestId, Srv};
use crate::routing::{RoutingError, SignedCommand};

use super::remote::AckTracker;

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
    /// The device refused the command: it could not verify the User's signature on it, or
    /// read it.
    Refused {
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
        /// The future-dated request's service, which its alert names.
        srv: Srv,
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
            | Self::Refused { device, .. }
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
/// event again (to this gateway or another) once this gateway's stream ends or its hold on the
/// event lapses.
#[derive(Debug)]
pub struct Receipt {
    inner: Option<(Arc<AckTracker>, u64, u64)>,
}

impl Receipt {
    /// A receipt with nothing behind it (in-process events die with the process anyway).
    pub fn none() -> Self {
        Self { inner: None }
    }

    /// The receipt for event `seq` of hub epoch `epoch`, acknowledged through `tracker`.
    pub(super) fn tracked(tracker: Arc<AckTracker>, epoch: u64, seq: u64) -> Self {
        Self {
            inner: Some((tracker, epoch, seq)),
        }
    }

    pub fn ack(mut self) {
        if let Some((tracker, epoch, seq)) = self.inner.take() {
            tracker.ack(epoch, seq);
        }
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if let Some((tracker, epoch, seq)) = self.inner.take() {
            tracker.release(epoch, seq);
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

    /// Whether the link to the network is up (`/readyz` says not ready while it is down). A
    /// network in the same process is always linked.
    fn is_linked(&self) -> bool {
        true
    }
}
