//! dccgw: a DCC User Gateway for the GB smart-metering network.
//!
//! The modules fall in three layers (see `README.md` for the map):
//! - layer 0, pure: [`domain`], [`catalogue`], [`duis`], [`identity`], [`checks`], [`auth`],
//!   [`error`], [`xmldsig`];
//! - layer 1, one resource each: [`tls`], [`register`], [`registry`], [`store`], [`metrics`],
//!   [`pki`], [`signer`], [`certstore`], [`outbox`], [`receiver`];
//! - layer 2, wiring: [`pipeline`], [`server`], [`admin`], [`config`], [`demo`], [`tools`].
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod catalogue;
pub mod certstore;
pub mod checks;
pub mod config;
pub mod demo;
pub mod domain;
pub mod duis;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod pki;
pub mod receiver;
pub mod register;
pub mod registry;
pub mod server;
pub mod signer;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod tls;
pub mod tools;
pub mod xmldsig;
