//! `dccgw cluster init`'s load: the CSV registers and the Users' certificates into an empty
//! database, with `COPY … FROM STDIN` in one transaction (all of it or none). The caller has
//! parsed each file with the gateway's own loaders first; here the files are only cut into
//! fields (comments and blank lines dropped, fields trimmed) and streamed, a chunk at a time, to
//! the server, so a national register never sits whole in memory.

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::mpsc;

use super::{Cluster, ClusterError};

/// Bytes of CSV sent to the server in one `COPY` message.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks converted ahead of the server; the converter waits past it.
const CHUNKS_AHEAD: usize = 4;

/// The register files' bytes, as read from disk.
pub struct RegisterFiles {
    pub users: std::path::PathBuf,
    pub devices: std::path::PathBuf,
    pub registrations: std::path::PathBuf,
}

/// One User certificate to load.
pub struct CertRow {
    /// `xml_signing` or `digital_signing`.
    pub kind: &'static str,
    /// The file it came from.
    pub origin: String,
    pub pem: String,
}

/// How many rows each table received.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub users: u64,
    pub devices: u64,
    pub registrations: u64,
    pub certificates: u64,
}

/// A table, its columns in the files' order, and how many a row of the file may leave out at
/// the end (the devices' manufacturer and model).
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    optional: usize,
}

const USERS: Table = Table {
    name: "users",
    columns: &[
        "user_id",
        "party_id",
        "party_name",
        "roles",
        "status",
        "response_url",
    ],
    optional: 0,
};
const DEVICES: Table = Table {
    name: "devices",
    columns: &[
        "device_id",
        "device_type",
        "status",
        "mpxn",
        "chf_id",
        "csp_region",
        "manufacturer",
        "model",
    ],
    optional: 2,
};
const REGISTRATIONS: Table = Table {
    name: "registrations",
    columns: &["mpxn", "role", "user_id", "effective_from", "effective_to"],
    optional: 0,
};

impl Cluster {
    /// Loads the registers and certificates into the (migrated, empty) database in one
    /// transaction. A database that already holds registers or changes is refused.
    pub async fn load_registers(
        &self,
        files: &RegisterFiles,
        certs: &[CertRow],
    ) -> Result<Loaded, ClusterError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let loaded_before: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM change_log)",
                &[],
            )
            .await?
            .get(0);
        if loaded_before {
            return Err(ClusterError::AlreadyLoaded);
        }
        let loaded = Loaded {
            users: copy_file(&tx, &USERS, &files.users).await?,
            devices: copy_file(&tx, &DEVICES, &files.devices).await?,
            registrations: copy_file(&tx, &REGISTRATIONS, &files.registrations).await?,
            certificates: certs.len() as u64,
        };
        let insert = tx
            .prepare("INSERT INTO user_certificates (kind, origin, pem) VALUES ($1, $2, $3)")
            .await?;
        for cert in certs {
            tx.execute(&insert, &[&cert.kind, &cert.origin, &cert.pem])
                .await?;
        }
        tx.commit().await?;
        Ok(loaded)
    }
}

/// Streams one CSV file into `table` with `COPY`; returns the rows copied.
async fn copy_file(
    tx: &tokio_postgres::Transaction<'_>,
    table: &'static Table,
    path: &std::path::Path,
) -> Result<u64, ClusterError> {
    let statement = format!(
        "COPY {} ({}) FROM STDIN (FORMAT csv)",
        table.name,
        table.columns.join(", ")
    );
    let sink = tx.copy_in::<_, Bytes>(&statement).await?;
    futures_util::pin_mut!(sink);
    let (chunks, mut received) = mpsc::channel(CHUNKS_AHEAD);
    let path = path.to_owned();
    let converter = tokio::task::spawn_blocking(move || convert(&path, table, &chunks));
    while let Some(chunk) = received.recv().await {
        sink.send(chunk).await?;
    }
    match converter.await {
        Ok(Ok(())) => Ok(sink.finish().await?),
        Ok(Err(what)) => Err(ClusterError::Unreadable { what }),
        Err(e) => Err(ClusterError::Unreadable {
            what: format!("a file whose conversion failed ({e})"),
        }),
    }
}

/// Reads the file's records (header, comments and blank lines dropped, fields trimmed, rows
/// padded to the table's width) and sends them as CSV chunks.
fn convert(
    path: &std::path::Path,
    table: &Table,
    chunks: &mpsc::Sender<Bytes>,
) -> Result<(), String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .flexible(true)
        .from_path(path)
        .map_err(|e| unreadable(&e))?;
    let width = table.columns.len();
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(CHUNK_BYTES * 2));
    for record in reader.records() {
        let record = record.map_err(|e| unreadable(&e))?;
        if record.len() > width || record.len() + table.optional < width {
            return Err(unreadable(&format!("a row of {} fields", record.len())));
        }
        let padding = std::iter::repeat_n("", width - record.len());
        writer
            .write_record(record.iter().chain(padding))
            .map_err(|e| unreadable(&e))?;
        if writer.get_ref().len() >= CHUNK_BYTES {
            let full = writer.into_inner().map_err(|e| unreadable(&e))?;
            writer = csv::Writer::from_writer(Vec::with_capacity(CHUNK_BYTES * 2));
            if chunks.blocking_send(Bytes::from(full)).is_err() {
                return Ok(());
            }
        }
    }
    let rest = writer.into_inner().map_err(|e| unreadable(&e))?;
    if !rest.is_empty() {
        let _ = chunks.blocking_send(Bytes::from(rest));
    }
    Ok(())
}
