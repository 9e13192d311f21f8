//! PostgreSQL as the system of record of several gateway instances: the schema and its
//! versioned migrations ([`schema`]), the registers loaded once with `COPY` ([`init`]), the
//! change log every instance appends to and follows ([`log`], woken by [`wake`]), a consistent
//! snapshot to start from ([`snapshot`]), anti-replay marks accepted at most once across
//! instances ([`marks`]), and the request log those marks are committed in with the requests'
//! open effects, which a live instance claims from a gone one ([`requests`], `lease`), among
//! them quarantined requests, which any instance releases or deletes ([`quarantine`]), and
//! anomaly detection's counts, written in the same transactions and read by every instance
//! ([`counts`]). Throwaway servers for tests and the demo are [`servers`], and HAProxy in front
//! of instances [`haproxy`].
//!
//! The crate is `tokio-postgres` with the `deadpool-postgres` pool: plain SQL we write and can
//! read, `COPY` and `LISTEN` as the protocol has them, and few dependencies (no macros, no
//! compile-time database). Connections are plain TCP or a unix socket: the servers are on a
//! private network or the same host.

pub mod counts;
mod entries;
pub mod haproxy;
pub mod init;
mod lease;
pub mod log;
pub mod marks;
pub mod quarantine;
pub mod requests;
pub mod schema;
pub mod servers;
pub mod snapshot;
pub mod wake;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use counts::CountFeed;
pub use lease::Claimed;
pub use log::{AppendError, Logged, LoggedBatch};
pub use marks::MarkError;
pub use requests::{LocalSink, PgRequestLog};
pub use snapshot::Snapshot;

/// Connections one instance holds to PostgreSQL at most. A caller past it waits up to
/// [`WAIT_TIMEOUT`] for one to come free, then fails.
const MAX_CONNECTIONS: usize = 16;
/// How long a caller waits for a connection (a free one, or a new one made) before it fails:
/// with PostgreSQL away, callers get an error rather than hang.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the PostgreSQL connection string")]
    Url(#[source] tokio_postgres::Error),
    #[error("no PostgreSQL connection")]
    Pool(#[source] deadpool_postgres::PoolError),
    #[error("PostgreSQL")]
    Db(#[from] tokio_postgres::Error),
    #[error("PostgreSQL did not answer in time")]
    TimedOut,
    #[error("the database already holds registers or changes; cluster init loads an empty one")]
    AlreadyLoaded,
    #[error("the database holds {what}, which this version cannot read")]
    Unreadable { what: String },
}

impl From<deadpool_postgres::PoolError> for ClusterError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Pool(e)
    }
}

/// An instance's handle on the cluster's PostgreSQL: a bounded pool, and the name this instance
/// writes in the change log.
#[derive(Clone)]
pub struct Cluster {
    pool: Pool,
    config: tokio_postgres::Config,
    instance: String,
}

impl Cluster {
    /// A pool for `url` (a `postgresql://` URL or `key=value` pairs); connections are made when
    /// first used. `instance` names this instance in the change log.
    pub fn connect(url: &str, instance: &str) -> Result<Self, ClusterError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(ClusterError::Url)?;
        // A server that stops answering (a machine gone, a network cut) fails the calls on its
        // connections once unacknowledged data has waited this long, rather than hanging them.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(WAIT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(WAIT_TIMEOUT * 2);
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(MAX_CONNECTIONS)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(WAIT_TIMEOUT))
            .recycle_timeout(Some(WAIT_TIMEOUT))
            .build()
            // Only a missing runtime fails the build, and one is named above.
            .map_err(|e| ClusterError::Unreadable {
                what: format!("a pool it cannot build ({e})"),
            })?;
        Ok(Self {
            pool,
            config,
            instance: instance.to_owned(),
        })
    }

    /// This instance's name in the change log.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, ClusterError> {
        Ok(self.pool.get().await?)
    }
}

/// A read-only transaction at repeatable read on `client`: one consistent view of the database
/// for every statement in it.
async fn consistent_read(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, ClusterError> {
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

#[cfg(test)]
mod tests;
