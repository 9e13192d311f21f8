//! The request log in PostgreSQL ([`PgRequestLog`]): each accepted request's decision — its
//! originator's anti-replay mark and its effects' entries — committed with the decisions of
//! other requests waiting at the same time in ONE transaction (group commit), by one of the
//! instance's few writers (each writes its share of the originators, so one originator's marks
//! reach PostgreSQL in the order they were reserved).
//!
//! In a batch, every mark is written first through the conditional upsert of [`super::marks`]
//! (pipelined, one round trip), in the order of their originators, so that two instances'
//! batches lock the rows they share in the same order and never deadlock. An upsert that
//! writes no row is no error: another instance accepted that counter, or a higher one, first.
//! That decision is left out — its entries are not written, and it resolves as the replay
//! refusal a local replay gets — while the rest of the batch commits: a refused mark needs no
//! savepoint, because nothing of its decision was written. The row locks the accepted marks
//! took are held until the commit, so a counter accepted here is not accepted elsewhere.
//!
//! The requests anomaly detection counted (`EntryKind::Count`) are added to the instance's
//! shared counts in the same transaction (`super::counts`), not kept as entries.
//!
//! A pre-command's use spends its issue's row, first in the batch: a use whose row is gone
//! (used through another instance) is refused as a replay, so a pre-command is used once
//! across the cluster.
//!
//! Entries are stored generically (`request_entries`: the kind's one-byte tag, the request
//! they belong to, the owning instance, the kind's own bytes), so a new kind of entry needs no
//! schema change. Settling an entry (its command answered, its hold released) deletes its row,
//! in the next batch. Each instance says it is alive every [`HEARTBEAT`]; one not seen for
//! [`LEASE`] is taken for gone, and a live instance claims its entries ([`super::lease`]).
//!
//! Bounds: a transaction takes at most [`BATCH_TIMEOUT`], from taking a connection to its
//! commit; past it, or with PostgreSQL away, every decision of the batch fails (the requests
//! are refused as a failing file log refuses them) and the log says it is failing until a
//! batch or a heartbeat works again. A commit whose answer is lost (the connection cut during
//! `COMMIT`) is reported failed though it may have been made: its counter is then spent and its
//! command may still be sent — the one window where the contract's "nothing of it" is not kept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

use super::counts::write_counts;
use super::entries::{delete_entries, insert_entries, kind_name, spend_entries};
use super::marks::{to_db, ADVANCE, RESET};
use super::{Cluster, ClusterError};
use crate::antireplay::Replay;
use crate::store::{
    CommitError, Decision, Entry, EntryFuture, EntryKind, KeyOf, LogFuture, RequestLog, Tallied,
};

/// Writers per instance, each with its own connection and its own share of the originators
/// (so one originator's marks are written in the order they were reserved), their batches
/// overlapping: one waits for its commit's fsync while another fills.
const WRITERS: usize = 4;
/// Decisions one transaction carries at most; those waiting past it go in the next.
const MAX_BATCH: usize = 512;
/// Commits and settles waiting for the writer at most. A commit past it waits for room; a
/// settle past it is dropped (its entry stays in the database and is sent again after a restart
/// or a claim: an answer twice, never none).
const QUEUE: usize = 16_384;
/// Settles that failed, kept for the next batch, at most (past it, dropped as above).
const MAX_OWED_SETTLES: usize = 65_536;
/// How long one batch's transaction may take before its decisions fail.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an instance says it is alive (and looks for gone instances' entries).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long an instance may go unseen before another claims its entries.
pub const LEASE: Duration = Duration::from_secs(10);

enum Job {
    Commit(Decision, oneshot::Sender<Result<(), CommitError>>),
    Settle(EntryKind, String),
}

/// The request log of an instance in cluster mode. See the module's documentation.
pub struct PgRequestLog {
    /// Where open entries are looked up (an answer to a command another instance sent).
    cluster: Cluster,
    /// Each writer's queue.
    jobs: Vec<mpsc::Sender<Job>>,
    failing: Arc<AtomicBool>,
    /// Where the entries kept in the instance's own files go (see [`LocalSink`]).
    local: std::sync::OnceLock<LocalSink>,
}

/// Where a decision's entries that stay on this instance (`EntryKind::kept_by_instance`) are
/// made durable once its batch has committed, before the commit resolves: the instance's audit
/// trail and local-command ledger, as the embedded log's checkpoint writes them. So an answer in
/// cluster mode waits for the transaction and then for that local write.
pub type LocalSink = Box<
    dyn Fn(
            Vec<Entry>,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CommitError>> + Send>>
        + Send
        + Sync,
>;

impl PgRequestLog {
    /// The writer of `bytes`' decisions: one per originator (or per settled request).
    fn writer(&self, bytes: &[u8]) -> &mpsc::Sender<Job> {
        let n = bytes.iter().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(*b))
        });
        &self.jobs[n % self.jobs.len()]
    }
}

/// What [`PgRequestLog::open`] hands back besides the log.
pub struct Opened {
    pub log: Arc<PgRequestLog>,
    /// This instance's open entries, as decisions without marks (the marks are in the
    /// database, which decides), oldest first.
    pub recovered: Vec<Decision>,
    /// Entries and DCC-alert obligations claimed from gone instances, one claim at a time,
    /// for as long as the log runs.
    pub claimed: mpsc::Receiver<super::Claimed>,
}

impl PgRequestLog {
    /// Says this instance is alive, reads back its open entries, and starts the writer and the
    /// heartbeat (which claims gone instances' entries). `key_of` names each entry's request.
    pub async fn open(cluster: Cluster, key_of: KeyOf) -> Result<Opened, ClusterError> {
        cluster.heartbeat().await?;
        let recovered = cluster.own_entries().await?;
        let failing = Arc::new(AtomicBool::new(false));
        let (found, claimed) = mpsc::channel(16);
        let jobs = (0..WRITERS)
            .map(|_| {
                let (jobs, queue) = mpsc::channel(QUEUE / WRITERS);
                let writer = Writer {
                    cluster: cluster.clone(),
                    key_of,
                    failing: Arc::clone(&failing),
                    owed: Vec::new(),
                };
                tokio::spawn(writer.run(queue));
                jobs
            })
            .collect();
        tokio::spawn(super::lease::run(
            cluster.clone(),
            Arc::clone(&failing),
            found,
        ));
        let log = Arc::new(Self {
            cluster,
            jobs,
            failing,
            local: std::sync::OnceLock::new(),
        });
        Ok(Opened {
            log,
            recovered,
            claimed,
        })
    }
}

impl PgRequestLog {
    /// Sets where the entries kept on this instance go; once, at the start, before requests.
    pub fn keep_locally(&self, sink: LocalSink) {
        let _ = self.local.set(sink);
    }
}

impl RequestLog for PgRequestLog {
    fn commit(&self, decision: Decision) -> LogFuture<'_> {
        Box::pin(async move {
            let (local, entries): (Vec<Entry>, Vec<Entry>) = decision
                .entries
                .into_iter()
                .partition(|e| e.kind.kept_by_instance());
            let decision = Decision {
                mark: decision.mark,
                entries,
            };
            if !decision.is_empty() {
                let (reply, outcome) = oneshot::channel();
                let originator = decision.mark.map(|m| m.originator);
                let writer =
                    self.writer(originator.as_ref().map_or(&[][..], |o| &o.as_bytes()[..]));
                writer
                    .send(Job::Commit(decision, reply))
                    .await
                    .map_err(|_| stopped())?;
                outcome.await.map_err(|_| stopped())??;
            }
            if local.is_empty() {
                return Ok(());
            }
            match self.local.get() {
                Some(sink) => sink(local).await,
                None => Err(CommitError::Database(
                    "the instance's own stores are not open yet".into(),
                )),
            }
        })
    }

    fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    fn open_entry(&self, kind: EntryKind, key: String) -> EntryFuture<'_> {
        Box::pin(async move {
            let read = async {
                let client = self.cluster.client().await?;
                let row = client
                    .query_opt(
                        "SELECT bytes FROM request_entries WHERE kind = $1 AND key = $2",
                        &[&kind_name(kind), &key],
                    )
                    .await?;
                Ok::<_, ClusterError>(row.map(|r| r.get::<_, Vec<u8>>(0)))
            };
            match tokio::time::timeout(BATCH_TIMEOUT, read).await {
                Ok(Ok(bytes)) => Ok(bytes),
                Ok(Err(e)) => Err(CommitError::Database(causes(&e).into())),
                Err(_) => Err(CommitError::Database(
                    "looking up an open entry took too long".into(),
                )),
            }
        })
    }

    fn settle(&self, kind: EntryKind, key: String) {
        let writer = self.writer(key.as_bytes());
        if writer.try_send(Job::Settle(kind, key)).is_err() {
            tracing::warn!("The request log's queue is full; a settled entry stays in PostgreSQL and may be sent again.");
        }
    }
}

/// An error and its causes, in one line (the log says why PostgreSQL failed, not only that).
fn causes(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}

fn stopped() -> CommitError {
    CommitError::Database("the request log's writer has stopped".into())
}

/// One of an instance's writers, with the decisions of its share of the originators.
struct Writer {
    cluster: Cluster,
    key_of: KeyOf,
    failing: Arc<AtomicBool>,
    /// Settles not yet written.
    owed: Vec<(EntryKind, String)>,
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        while let Some(first) = queue.recv().await {
            let mut decisions = Vec::new();
            let mut replies = Vec::new();
            let mut job = Some(first);
            while let Some(j) = job.take() {
                match j {
                    Job::Commit(d, reply) => {
                        decisions.push(d);
                        replies.push(reply);
                    }
                    Job::Settle(kind, key) => self.owed.push((kind, key)),
                }
                if decisions.len() < MAX_BATCH {
                    job = queue.try_recv().ok();
                }
            }
            let written = tokio::time::timeout(
                BATCH_TIMEOUT,
                write_batch(&self.cluster, self.key_of, &decisions, &self.owed),
            )
            .await
            .unwrap_or_else(|_| Err(ClusterError::TimedOut));
            match written {
                Ok(outcomes) => {
                    self.failing.store(false, Ordering::Relaxed);
                    self.owed.clear();
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(outcome);
                    }
                }
                Err(e) => {
                    self.failing.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        error = causes(&e),
                        decisions = decisions.len(),
                        "A request log batch was not committed; its requests are refused."
                    );
                    if self.owed.len() > MAX_OWED_SETTLES {
                        tracing::warn!(
                            dropped = self.owed.len() - MAX_OWED_SETTLES,
                            "Settled entries dropped; they may be sent again."
                        );
                        self.owed.truncate(MAX_OWED_SETTLES);
                    }
                    for reply in replies {
                        let _ = reply.send(Err(CommitError::Database(causes(&e).into())));
                    }
                }
            }
        }
    }
}

/// One mark's parameters for the upsert.
struct MarkRow {
    decision: usize,
    reset: bool,
    originator: String,
    counter: i64,
    pre_command_for: Option<String>,
    twin_of: Option<String>,
}

/// Writes one batch in one transaction; each decision's outcome, in order, once committed.
async fn write_batch(
    cluster: &Cluster,
    key_of: KeyOf,
    decisions: &[Decision],
    settles: &[(EntryKind, String)],
) -> Result<Vec<Result<(), CommitError>>, ClusterError> {
    let mut outcomes: Vec<Result<(), CommitError>> = decisions.iter().map(|_| Ok(())).collect();
    let mut rows = Vec::new();
    for (i, d) in decisions.iter().enumerate() {
        let Some(m) = &d.mark else { continue };
        match to_db(m.mark.counter) {
            Ok(counter) => rows.push(MarkRow {
                decision: i,
                reset: m.reset,
                originator: m.originator.to_string(),
                counter,
                pre_command_for: m.mark.pre_command_for.map(|t| t.to_string()),
                twin_of: m.twin_of.map(|t| t.to_string()),
            }),
            Err(e) => outcomes[i] = Err(CommitError::Database(Box::new(e))),
        }
    }
    // One lock order for every instance's batches: by originator; one originator's marks by
    // counter (stable: a Command Variant 5 after the Transform whose counter it shares), as
    // its requests may reach the queue in another order than they were reserved in.
    rows.sort_by(|a, b| (&a.originator, a.counter).cmp(&(&b.originator, b.counter)));
    let mut client = cluster.client().await?;
    let tx = client.transaction().await?;
    // The spends first: a decision whose pre-command is gone writes nothing (not its mark).
    for (decision, refusal) in spend_entries(&tx, key_of, decisions).await? {
        outcomes[decision] = Err(CommitError::Refused(refusal));
    }
    rows.retain(|r| outcomes[r.decision].is_ok());
    for (decision, refusal) in write_marks(&tx, &rows).await? {
        outcomes[decision] = Err(CommitError::Refused(refusal));
    }
    // The requests counted go to the shared counts, the rest to the entries; both statements
    // and the settles' pipelined (one round trip).
    let (counted, kept): (Vec<&Entry>, Vec<&Entry>) = decisions
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_ok())
        .flat_map(|(d, _)| &d.entries)
        .filter(|e| e.kind != EntryKind::PreCommandUse)
        .partition(|e| matches!(e.kind, EntryKind::Count));
    let counted: Vec<Tallied> = counted
        .iter()
        .filter_map(|e| Tallied::from_record(&e.bytes))
        .collect();
    let instance = cluster.instance();
    futures_util::future::try_join3(
        insert_entries(&tx, instance, key_of, kept.into_iter()),
        write_counts(&tx, instance, counted.iter()),
        delete_entries(&tx, settles),
    )
    .await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Writes every mark of `rows` (pipelined, in their order); returns the decisions whose mark
/// was refused, with the refusal (the mark they met, read after the upserts).
async fn write_marks(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[MarkRow],
) -> Result<Vec<(usize, Replay)>, ClusterError> {
    let advance = tx.prepare_cached(ADVANCE).await?;
    let reset = tx.prepare_cached(RESET).await?;
    let params: Vec<[&(dyn ToSql + Sync); 4]> = rows
        .iter()
        .map(|r| {
            let p: [&(dyn ToSql + Sync); 4] =
                [&r.originator, &r.counter, &r.pre_command_for, &r.twin_of];
            p
        })
        .collect();
    let writes = rows.iter().zip(&params).map(|(r, p)| {
        // A reset takes the originator and the counter only.
        let (statement, p) = if r.reset {
            (&reset, &p[..2])
        } else {
            (&advance, &p[..])
        };
        tx.query_opt(statement, p)
    });
    let written = futures_util::future::try_join_all(writes).await?;
    let refused: Vec<&MarkRow> = rows
        .iter()
        .zip(&written)
        .filter(|(_, w)| w.is_none())
        .map(|(r, _)| r)
        .collect();
    let refused_params: Vec<[&(dyn ToSql + Sync); 1]> = refused
        .iter()
        .map(|r| {
            let p: [&(dyn ToSql + Sync); 1] = [&r.originator];
            p
        })
        .collect();
    let lasts = futures_util::future::try_join_all(
        refused_params
            .iter()
            .map(|p| tx.query_one("SELECT counter FROM replay_marks WHERE originator = $1", p)),
    )
    .await?;
    Ok(refused
        .iter()
        .zip(lasts)
        .map(|(r, last)| {
            let last: i64 = last.get(0);
            let refusal = Replay::NotIncreasing {
                counter: u64::try_from(r.counter).unwrap_or_default(),
                last: u64::try_from(last).unwrap_or_default(),
            };
            (r.decision, refusal)
        })
        .collect())
}
