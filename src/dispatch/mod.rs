//! The gateway's side of the comms-hub network.
//!
//! - The link ([`HubNetwork`], `link.rs`): what the gateway sends signed commands to, and the
//!   events that come back ([`HubEvent`]), each as an [`Inbound`] with a [`Receipt`] the consumer
//!   acknowledges once the event is safe (durably in the outbox); an unacknowledged event is
//!   delivered again after a reconnect or restart (duplicates, not loss). [`RemoteHub`] speaks
//!   the link over HTTP (`wire.rs`) to a hub network in its own process; the simulator in
//!   [`commshub`](crate::commshub) implements it in-process too.
//! - [`Dispatcher`]: journals each command before the `I99` (`pending.rs`), sends it, keeps it
//!   in flight with its timer (`in_flight.rs`), turns the hub's answer, an unreachable device or
//!   a timeout into a [`DispatchOutcome`], and re-dispatches whatever was pending at the last
//!   stop.

mod dispatcher;
mod in_flight;
mod link;
mod pending;
mod remote;
pub(crate) mod wire;

#[cfg(test)]
mod tests;

pub use dispatcher::{DispatchConfig, DispatchError, DispatchOutcome, Dispatcher, Opened};
pub use link::{
    HubError, HubEvent, HubFuture, HubNetwork, Inbound, Receipt, FUTURE_DATED_EXECUTED,
    FUTURE_DATED_FAILED,
};
pub use remote::RemoteHub;

/// Unix milliseconds from the system clock: the one clock read of the dispatcher and of the hub
/// network's drivers.
pub(crate) fn unix_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
