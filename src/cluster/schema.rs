//! The schema, as numbered migrations embedded in the binary (`migrations/NNNN_name.sql`) and a
//! `schema_version` table of those applied. Migrating takes a lock first, so instances starting
//! together apply each migration once; each migration commits with its row in
//! `schema_version`, or not at all.

use super::{Cluster, ClusterError};

/// Every migration, in order: its version, its name and its SQL.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "state", include_str!("migrations/0001_state.sql")),
    (2, "requests", include_str!("migrations/0002_requests.sql")),
    (
        3,
        "anomaly_counts",
        include_str!("migrations/0003_anomaly_counts.sql"),
    ),
    (4, "effects", include_str!("migrations/0004_effects.sql")),
    (
        5,
        "alert_owner",
        include_str!("migrations/0005_alert_owner.sql"),
    ),
];

/// The advisory lock migrations hold (a number of our own: "dccgw" in ASCII).
const MIGRATION_LOCK: i64 = 0x0064_6363_6777;

impl Cluster {
    /// Applies the migrations the database does not have yet; returns the schema version now
    /// in force. A database with a version newer than this binary knows is refused.
    pub async fn migrate(&self) -> Result<i32, ClusterError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
        let current: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
            .await?
            .get(0);
        let known = MIGRATIONS.last().map_or(0, |(v, _, _)| *v);
        if current > known {
            return Err(ClusterError::Unreadable {
                what: format!("schema version {current} (this binary knows up to {known})"),
            });
        }
        for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
            tracing::info!(version, name, "Schema migration applied.");
        }
        tx.commit().await?;
        Ok(known)
    }

    /// The schema version in force (0 before any migration).
    pub async fn schema_version(&self) -> Result<i32, ClusterError> {
        let client = self.client().await?;
        let exists: bool = client
            .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
            .await?
            .get(0);
        if !exists {
            return Ok(0);
        }
        Ok(client
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
            .await?
            .get(0))
    }
}
