//! `dccgw cluster init --config FILE`: creates (or brings up to date) the cluster's schema in
//! `[cluster] postgres_url` and loads the configuration's registers (`[registration]`) and
//! Users' certificates (`[signatures] user_certs`, `digital_signing_certs`) into it, once.

use crate::cluster::{Cluster, ClusterError};
use crate::config::Config;
use crate::state::snapshot::{self, ClusterLoadError, Initialised};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("the configuration has no [cluster] section (postgres_url, nats_url)")]
    NotClustered,
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Load(#[from] ClusterLoadError),
}

/// Initialises the cluster's database from the configuration's files.
pub async fn run(config: &Config) -> Result<Initialised, InitError> {
    let cluster = config.cluster.as_ref().ok_or(InitError::NotClustered)?;
    let db = Cluster::connect(&cluster.postgres_url, &config.instance_name())?;
    let files = crate::server::state_files(config);
    Ok(snapshot::init(&db, &files).await?)
}
