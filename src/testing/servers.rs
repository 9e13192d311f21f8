//! Throwaway PostgreSQL and nats-server for tests, started in a directory the test owns. Outside
//! CI a missing binary skips the test with a `SKIPPED:` line; under `CI=true` it fails the test.

use std::path::Path;

use crate::cluster::haproxy::{Backend, Haproxy};
use crate::cluster::servers::{Durability, Nats, NatsSync, Postgres, ServerError};

/// A scratch PostgreSQL under `dir`, or `None` (said on stderr) when it is not installed.
pub fn postgres(dir: &Path) -> Option<Postgres> {
    skip_if_missing(Postgres::start(dir, Durability::Scratch))
}

/// As [`postgres`], with `fsync` on, as in production: for measurements.
pub fn postgres_durable(dir: &Path) -> Option<Postgres> {
    skip_if_missing(Postgres::start(dir, Durability::Durable))
}

/// A `nats-server -js` under `dir`, or `None` (said on stderr) when it is not installed.
pub fn nats(dir: &Path) -> Option<Nats> {
    skip_if_missing(Nats::start(dir))
}

/// As [`nats`], with the JetStream sync setting given: for measurements.
pub fn nats_with(dir: &Path, sync: NatsSync) -> Option<Nats> {
    skip_if_missing(Nats::start_with(dir, sync))
}

/// HAProxy on `front` in front of `backends` (its files under `dir`), or `None` (said on
/// stderr) when it is not installed.
pub fn haproxy(dir: &Path, front: std::net::SocketAddr, backends: &[Backend]) -> Option<Haproxy> {
    skip_if_missing(Haproxy::start(dir, front, backends))
}

fn skip_if_missing<T>(started: Result<T, ServerError>) -> Option<T> {
    match started {
        Ok(server) => Some(server),
        Err(e @ ServerError::Missing { .. }) => {
            assert!(!super::in_ci(), "CI=true but {e}");
            eprintln!("SKIPPED: {e}");
            None
        }
        Err(e) => panic!("starting a throwaway server: {e}"),
    }
}
