//! What an instance starts from: the registers as loaded, the Users' certificates and every
//! change batch up to a sequence number S, read in one repeatable-read transaction (so the
//! registers and the log agree), the registers as CSV in the files' own formats (`COPY … TO
//! STDOUT`), for the gateway's own loaders. After it the instance follows the log from S.

use bytes::Bytes;
use futures_util::TryStreamExt;

use super::log::{read_since, seq_from, Logged};
use super::{Cluster, ClusterError};

/// The state at one point of the change log.
pub struct Snapshot {
    /// The last change batch in it (0: none).
    pub seq: u64,
    /// `users.csv`, `devices.csv` and `registrations.csv` as loaded by `cluster init`.
    pub users_csv: Vec<u8>,
    pub devices_csv: Vec<u8>,
    pub registrations_csv: Vec<u8>,
    /// The Users' certificates: `(kind, origin, pem)`, kind `xml_signing` or `digital_signing`.
    pub certificates: Vec<(String, String, String)>,
    /// Every change batch up to `seq`, oldest first.
    pub log: Vec<Logged>,
}

impl Cluster {
    /// Reads a consistent snapshot.
    pub async fn snapshot(&self) -> Result<Snapshot, ClusterError> {
        let mut client = self.client().await?;
        let tx = super::consistent_read(&mut client).await?;
        let seq = seq_from(
            tx.query_one("SELECT coalesce(max(seq), 0) FROM change_log", &[])
                .await?
                .get(0),
        )?;
        let users_csv = copy_out(
            &tx,
            "SELECT user_id, party_id, party_name, roles, status, response_url
             FROM users ORDER BY ord",
        )
        .await?;
        let devices_csv = copy_out(
            &tx,
            "SELECT device_id, device_type, status, mpxn, chf_id, csp_region, manufacturer, model
             FROM devices ORDER BY ord",
        )
        .await?;
        let registrations_csv = copy_out(
            &tx,
            "SELECT mpxn, role, user_id, effective_from, effective_to
             FROM registrations ORDER BY ord",
        )
        .await?;
        let certificates = tx
            .query(
                "SELECT kind, origin, pem FROM user_certificates ORDER BY ord",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let log = read_since(&tx, 0, i64::MAX).await?;
        tx.commit().await?;
        Ok(Snapshot {
            seq,
            users_csv,
            devices_csv,
            registrations_csv,
            certificates,
            log,
        })
    }
}

/// The rows of `query` as CSV with a header row.
async fn copy_out(
    tx: &tokio_postgres::Transaction<'_>,
    query: &str,
) -> Result<Vec<u8>, ClusterError> {
    let statement = format!("COPY ({query}) TO STDOUT (FORMAT csv, HEADER true)");
    let stream = tx.copy_out(&statement).await?;
    let chunks: Vec<Bytes> = stream.try_collect().await?;
    Ok(chunks.concat())
}
