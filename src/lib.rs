//! dccgw: a DCC User Gateway for the GB smart-metering network.
//!
//! The modules fall in three layers (see `README.md` for the map):
//! - layer 0, pure: [`domain`], [`catalogue`], [`duis`], [`identity`], [`checks`], [`auth`],
//!   [`error`], [`xmldsig`], [`alerts`], [`routing`] (with the broker key's use), [`gbcs`],
//!   [`dscerts`] (Users' Digital Signing certificates), [`smki`] (certificates judged by the SMKI
//!   profile against trust anchors and CRLs);
//! - layer 1, one resource each: [`tls`], [`register`], [`registry`], [`store`], [`metrics`],
//!   [`audit`], [`pki`], [`signer`], [`certstore`], [`dispatch`] (the gateway's side of the hub
//!   network: the hub link and the dispatcher with its pending-command journal), [`commshub`]
//!   (the simulated hub network behind the link), [`outbox`], [`receiver`]; [`report`] (pure
//!   builders over the audit trail);
//! - layer 2, wiring: [`pipeline`], [`dsp`] (held requests and schedules, run at their times),
//!   [`server`], [`admin`], [`reload`], [`config`], [`demo`], [`tools`].
//!
//! Test support (`testing`, `duis::testing`) is built only for the crate's unit tests and with
//! the `testing` feature, which the crate's dev-dependency on itself turns on for its
//! integration tests and benchmarks; a release build has none of it.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admission;
pub mod alerts;
mod allocator;
pub mod anomaly;
pub mod antireplay;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod certstore;
pub mod checks;
pub mod cluster;
pub mod commshub;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod domain;
pub mod dscerts;
pub mod dsp;
pub mod duis;
pub mod error;
pub mod firmware;
pub mod gbcs;
pub mod identity;
pub mod metrics;
pub mod offload;
pub mod outbox;
pub mod pipeline;
pub mod pki;
pub mod progress;
pub mod receiver;
pub mod register;
pub mod registry;
pub mod reload;
pub mod replies;
pub mod report;
pub mod routing;
pub mod rules;
pub mod server;
pub mod signer;
pub mod smki;
pub mod state;
pub mod store;
pub mod tally;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;
pub mod tools;
pub mod xmldsig;

pub use allocator::NAME as ALLOCATOR;
