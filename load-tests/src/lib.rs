//! `dccgw-load`: an open-loop load generator for dccgw, and the references it is measured
//! against in the same run (see `load-tests/README.md`).
//!
//! Pure pieces: [`scenario`], [`population`], [`plan`], [`outcome`], [`stats`], [`report`].
//! Resources: [`setup`] (work directory), [`requests`] (signing), [`critical`] (a User's signed
//! pre-commands), [`tlsconf`], [`client`] (the lanes), [`receiver`] (Receive Response endpoint),
//! [`refserver`], [`nginx`], [`procs`], [`floor`], [`offload`], [`oha`]. Wiring: [`runner`], [`bench`].
#![forbid(unsafe_code)]

pub mod bench;
pub mod client;
pub mod critical;
pub mod floor;
pub mod nginx;
pub mod offload;
pub mod oha;
pub mod outcome;
pub mod plan;
pub mod population;
pub mod procs;
pub mod quota;
pub mod receiver;
pub mod refserver;
pub mod report;
pub mod requests;
pub mod runner;
pub mod scenario;
pub mod setup;
pub mod stats;
pub mod tlsconf;
