//! The integration binary: a real gateway on port 0 with a generated PKI, spoken to over real
//! mTLS, with `xmllint`, `openssl` and `curl` as independent oracles.

mod access;
mod admin_api;
mod admission;
mod alert_crash;
mod anomaly;
mod bounds;
mod cli;
mod cluster;
mod cluster_effects;
mod cluster_requests;
mod conformance;
mod crash;
mod critical;
mod dcc_services;
mod dead_letters;
mod demo;
mod dsp;
mod dsp_crash;
mod examples;
mod local;
mod local_fsyncs;
mod one_commit;
mod openssl_made;
mod operations;
mod quarantine_crash;
mod requests;
mod round_trip;
mod rules;
mod signatures;
mod spent_counter;
mod supplier_change;
mod support;
mod transport;
mod walkthrough;
