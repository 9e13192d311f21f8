//! How the request log's entries are written in a batch's transaction: the spends of
//! pre-commands used, the entries of the decisions accepted, the entries settled; each kind's
//! name and each entry's key in `request_entries`.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;

use super::ClusterError;
use crate::antireplay::Replay;
use crate::store::{Decision, Entry, EntryKind, KeyOf};

/// Spends the entry each pre-command use names (deletes the row): pipelined, one
/// statement per use. Returns the decisions whose entry was gone (used through another
/// instance first, or never issued), each refused as a replay of its Transform's counter.
pub(super) async fn spend_entries(
    tx: &deadpool_postgres::Transaction<'_>,
    key_of: KeyOf,
    decisions: &[Decision],
) -> Result<Vec<(usize, Replay)>, ClusterError> {
    let issued = kind_name(EntryKind::PreCommand);
    let uses: Vec<(usize, String)> = decisions
        .iter()
        .enumerate()
        .flat_map(|(i, d)| d.entries.iter().map(move |e| (i, e)))
        .filter(|(_, e)| e.kind == EntryKind::PreCommandUse)
        .map(|(i, e)| (i, key(key_of, e)))
        .collect();
    let params: Vec<[&(dyn ToSql + Sync); 2]> = uses
        .iter()
        .map(|(_, k)| {
            let p: [&(dyn ToSql + Sync); 2] = [&issued, k];
            p
        })
        .collect();
    let spends = params.iter().map(|p| {
        tx.execute(
            "DELETE FROM request_entries WHERE kind = $1 AND key = $2",
            &p[..],
        )
    });
    let spent = futures_util::future::try_join_all(spends).await?;
    Ok(uses
        .into_iter()
        .zip(spent)
        .filter(|(_, n)| *n == 0)
        .map(|((i, k), _)| {
            let counter = k.rsplit(':').next().and_then(|c| c.parse().ok());
            let counter = counter.unwrap_or_default();
            let last = counter;
            (i, Replay::NotIncreasing { counter, last })
        })
        .collect())
}

/// Writes `entries` as this instance's (an entry of a kind and request already there is
/// replaced: the same effect taken again, as a held request released again after a crash).
pub(super) async fn insert_entries<'a>(
    tx: &deadpool_postgres::Transaction<'_>,
    owner: &str,
    key_of: KeyOf,
    entries: impl Iterator<Item = &'a Entry>,
) -> Result<(), ClusterError> {
    // One row per kind and key: a statement may not upsert one row twice.
    let mut rows: HashMap<(String, String), &[u8]> = HashMap::new();
    for e in entries {
        rows.insert((kind_name(e.kind), key(key_of, e)), &e.bytes);
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut kinds = Vec::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len());
    let mut bytes = Vec::with_capacity(rows.len());
    for ((kind, key), b) in rows {
        kinds.push(kind);
        keys.push(key);
        bytes.push(b);
    }
    tx.execute(
        "INSERT INTO request_entries (kind, key, owner, bytes)
         SELECT k, e, $3, b FROM unnest($1::text[], $2::text[], $4::bytea[]) AS u(k, e, b)
         ON CONFLICT (kind, key) DO UPDATE SET owner = excluded.owner, bytes = excluded.bytes",
        &[&kinds, &keys, &owner, &bytes],
    )
    .await?;
    Ok(())
}

/// Deletes settled entries.
pub(super) async fn delete_entries(
    tx: &deadpool_postgres::Transaction<'_>,
    settles: &[(EntryKind, String)],
) -> Result<(), ClusterError> {
    if settles.is_empty() {
        return Ok(());
    }
    let kinds: Vec<String> = settles.iter().map(|(k, _)| kind_name(*k)).collect();
    let keys: Vec<&str> = settles.iter().map(|(_, key)| key.as_str()).collect();
    tx.execute(
        "DELETE FROM request_entries
         WHERE (kind, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        &[&kinds, &keys],
    )
    .await?;
    Ok(())
}

/// An entry kind's name in the database: its one-byte tag.
pub(super) fn kind_name(kind: EntryKind) -> String {
    char::from(kind.tag()).to_string()
}

/// An entry's key: its request, as the wiring reads it; an entry that does not read is keyed
/// by its bytes' digest (written and recovered all the same, never settled by key).
fn key(key_of: KeyOf, e: &Entry) -> String {
    key_of(e).unwrap_or_else(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, &e.bytes);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    })
}
