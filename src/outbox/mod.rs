//! Layer 1: the durable outbox. Every asynchronous message the gateway sends a User (a Service
//! Response, a Device Alert, a DCC Alert) is journalled here before it counts as sent, then
//! delivered by a per-User worker, retried with backoff (the first retry within 300 s), and
//! after the hold time (two days) moved to a dead-letter store that an operator can list and
//! replay. Duplicates are possible (a crash between a delivery and its marker); loss is not.
//!
//! - [`Outbox::enqueue`] returns once the batch is on disk (group commit across callers).
//! - Each User has its own worker and concurrency bound, so a slow or dead endpoint delays no
//!   one else ([`queue`] has the retry and circuit rules).
//! - The journal is a set of segments, compacted from the oldest end ([`store`]).
//! - Time comes from tokio's clock, so tests run two days in paused time.
//!
//! Two implementations sit behind [`Outbox`]'s methods, chosen at start: the embedded one
//! ([`file`]: the journal under `[state] dir`, this process's workers) and, in cluster mode,
//! NATS JetStream ([`jetstream`]: streams every instance shares, a durable consumer per User,
//! delivered by whichever instance pulls first).

mod config;
mod file;
mod https;
pub mod jetstream;
mod message;
mod metrics;
mod queue;
mod record;
mod store;
mod transport;
mod worker;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use config::{OutboxConfig, PROMISED_FIRST_RETRY_MS};
pub use https::{HttpsTransport, TransportConfig, MESSAGE_ID_HEADER};
pub use message::{DeadLetter, Message, MessageError, MessageId, Outbound, OutboundKind};
pub use metrics::{no_hook, AttemptHook, AttemptOutcome, Attempted, NoHook, OutboxMetrics};
pub use record::RecordError;
pub use transport::{ChannelTransport, Endpoints, Handed, PostFuture, Transport, TransportError};

use file::{FileOutbox, Shared};
use jetstream::{JetstreamOutbox, JetstreamSettings};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox configuration: {key} is out of range")]
    Config { key: &'static str },
    #[error("outbox directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] crate::store::JournalError),
    #[error("outbox segment {segment} record {index} cannot be read")]
    Record {
        segment: PathBuf,
        index: usize,
        #[source]
        source: RecordError,
    },
    #[error("message {id} is {bytes} bytes, more than a journal record holds")]
    TooLarge { id: MessageId, bytes: usize },
    #[error("the outbox holds {held} bytes and may hold {limit}; refusing more until it drains")]
    Full { held: u64, limit: u64 },
    #[error("the outbox has been shut down")]
    Stopped,
    #[error("JetStream: {what}")]
    Fabric {
        what: &'static str,
        #[source]
        source: async_nats::Error,
    },
    #[error("JetStream did not acknowledge the messages within {waited_ms} ms")]
    Unavailable { waited_ms: u64 },
}

/// The outbox: the embedded journal or the cluster's JetStream. Cloning shares it.
#[derive(Clone)]
pub struct Outbox(Backend);

#[derive(Clone)]
enum Backend {
    File(FileOutbox),
    Jetstream(JetstreamOutbox),
}

impl Outbox {
    /// Opens (creating) the embedded outbox in `dir`, replays its journal, and starts delivering
    /// what was pending at the last stop. `hook` hears every attempt's outcome (the gateway's
    /// audit trail). Must run inside a tokio runtime.
    pub async fn open(
        dir: &Path,
        config: &OutboxConfig,
        endpoints: Arc<dyn Endpoints>,
        transport: Arc<dyn Transport>,
        metrics: OutboxMetrics,
        hook: Arc<dyn AttemptHook>,
    ) -> Result<Self, OutboxError> {
        let file = FileOutbox::open(dir, config, endpoints, transport, metrics, hook).await?;
        Ok(Self(Backend::File(file)))
    }

    /// Connects to the cluster's JetStream, creates its streams when missing, and starts
    /// delivering for every User that has messages waiting there (cluster mode).
    pub async fn open_jetstream(
        settings: &JetstreamSettings,
        config: &OutboxConfig,
        endpoints: Arc<dyn Endpoints>,
        transport: Arc<dyn Transport>,
        metrics: OutboxMetrics,
        hook: Arc<dyn AttemptHook>,
    ) -> Result<Self, OutboxError> {
        let js =
            JetstreamOutbox::open(settings, config, endpoints, transport, metrics, hook).await?;
        Ok(Self(Backend::Jetstream(js)))
    }

    /// A fresh message ID (unique across the cluster's instances in cluster mode).
    pub fn next_id(&self) -> MessageId {
        match &self.0 {
            Backend::File(f) => f.next_id(),
            Backend::Jetstream(j) => j.next_id(),
        }
    }

    /// Makes `batch` durable and queues it for delivery; returns once it is on disk (embedded)
    /// or acknowledged by JetStream (cluster), within a bounded wait. A message whose ID is
    /// already held is not added twice.
    pub async fn enqueue(&self, batch: Vec<Outbound>) -> Result<(), OutboxError> {
        match &self.0 {
            Backend::File(f) => f.enqueue(batch).await,
            Backend::Jetstream(j) => j.enqueue(batch).await,
        }
    }

    /// The dead letters, oldest ID first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, OutboxError> {
        match &self.0 {
            Backend::File(f) => Ok(f.dead_letters()),
            Backend::Jetstream(j) => j.dead_letters().await,
        }
    }

    /// Puts the named dead letters back in their Users' queues with a fresh hold time; returns
    /// how many there were (IDs that are not dead letters are skipped). Durable on return.
    pub async fn replay_dead(&self, ids: &[MessageId]) -> Result<usize, OutboxError> {
        match &self.0 {
            Backend::File(f) => f.replay_dead(ids).await,
            Backend::Jetstream(j) => j.replay_dead(ids).await,
        }
    }

    /// Deletes the named dead letters for good; returns how many there were.
    pub async fn discard_dead(&self, ids: &[MessageId]) -> Result<usize, OutboxError> {
        match &self.0 {
            Backend::File(f) => f.discard_dead(ids).await,
            Backend::Jetstream(j) => j.discard_dead(ids).await,
        }
    }

    /// Waits until every outcome so far is journalled, and the upkeep that followed is done
    /// (JetStream acknowledges each outcome as it happens: nothing to wait for).
    pub async fn flush(&self) -> Result<(), OutboxError> {
        match &self.0 {
            Backend::File(f) => f.flush().await,
            Backend::Jetstream(_) => Ok(()),
        }
    }

    /// Messages waiting for delivery (not counting dead letters): this process's count, or
    /// the last count read from JetStream.
    pub fn pending(&self) -> usize {
        match &self.0 {
            Backend::File(f) => f.pending(),
            Backend::Jetstream(j) => j.pending(),
        }
    }

    /// Journal segment files on disk (none in JetStream).
    pub fn segments(&self) -> usize {
        match &self.0 {
            Backend::File(f) => f.segments(),
            Backend::Jetstream(_) => 0,
        }
    }

    /// Stops the workers (attempts in flight are abandoned and will be retried after the next
    /// start, or by another instance) and waits until every marker is on disk. Later `enqueue`
    /// calls fail.
    pub async fn shutdown(&self) {
        match &self.0 {
            Backend::File(f) => f.shutdown().await,
            Backend::Jetstream(j) => j.shutdown().await,
        }
    }
}
