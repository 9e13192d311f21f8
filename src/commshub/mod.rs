//! The simulated comms-hub network behind the gateway: the other end of the hub link
//! ([`HubNetwork`](crate::dispatch::HubNetwork)).
//!
//! - [`Simulator`]: every device of a registry [`Snapshot`](crate::registry::Snapshot), with
//!   per-SRV and per-device-group behaviour ([`HubConfig`]), faults, spontaneous alerts and
//!   storms, from a seeded random generator so a run can be replayed. It verifies every
//!   command's broker signature and refuses unsigned or forged ones; its devices read the GBCS
//!   command inside, verify the User's signature on a critical one, and answer in GBCS
//!   (`device.rs`).
//! - [`InProcessHub`]: the simulator driven inside the gateway's process (demo, tests).
//! - [`serve`]: the simulator as its own process (`dccgw commshub`), speaking the link over HTTP
//!   to the gateway's [`RemoteHub`](crate::dispatch::RemoteHub), and recording every event it
//!   raises ([`RaisedLog`]) if asked.

mod config;
mod device;
mod inprocess;
mod raised;
mod rng;
mod serve;
mod sim;

#[cfg(test)]
mod tests;

pub use config::{
    AlertSpec, Behaviour, BehaviourPatch, ConfigError, GroupOverride, HubConfig, Latency,
    SpontaneousAlerts, Storm, WeightedCode,
};
pub use device::Refusal;
pub use inprocess::InProcessHub;
pub use raised::{Raised, RaisedError, RaisedKind, RaisedLog};
pub use serve::{serve, serve_on, ServeConfig, ServeError};
pub use sim::{Scheduled, Simulator};
