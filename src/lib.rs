//! dccgw: a DCC User Gateway for the GB smart-metering network.
//!
//! The modules fall in three layers (see `README.md` for the map):
//! - layer 0, pure: [`domain`], [`catalogue`], [`duis`], [`identity`], [`error`];
//! - layer 1, one resource each: [`tls`], [`register`], [`metrics`], [`pki`];
//! - layer 2, wiring: [`pipeline`], [`server`], [`admin`], [`config`], [`demo`].
#![forbid(unsafe_code)]

pub mod domain;
pub mod catalogue;
pub mod duis;
pub mod identity;
pub mod pki;
pub mod admin;
pub mod checks;
pub mod config;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod register;
pub mod server;
pub mod tls;
pub mod demo;
