//! The cluster's outbox on NATS JetStream ([`streams`] has the layout and why): an enqueue
//! counts as durable once JetStream has acknowledged every message of the batch (the `I99`
//! promise), within a bounded wait, after which it fails and the caller answers with its
//! documented refusal; a durable consumer per User, made on demand, which every instance pulls
//! from ([`deliver`]); dead letters in a stream of their own ([`dead`]), listed and replayed
//! by any instance.
//!
//! Message IDs must not repeat across instances (JetStream de-duplicates by them, and the
//! operator names dead letters by them): each start takes a number from the `DCCGW_STARTS`
//! stream's sequence, and an ID is that number (20 bits) above a counter (44 bits).

mod dead;
mod deliver;
mod streams;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, context::Context, stream::Stream};
use futures_util::TryStreamExt;
use tokio::sync::watch;

use super::message::{Message, MessageId, Outbound};
use super::metrics::{self, AttemptHook, OutboxMetrics};
use super::queue::Policy;
use super::transport::{Endpoints, Transport};
use super::{OutboxConfig, OutboxError};
use crate::domain::UserId;
use streams::Layout;

/// How often an instance looks for Users with messages waiting (to pull for them too, whoever
/// enqueued them) and refreshes the gauges.
const DISCOVER_EVERY: Duration = Duration::from_secs(5);
/// Bits of a message ID below the start number.
const COUNTER_BITS: u32 = 44;

/// Where the cluster's JetStream is and how the outbox uses it (`[cluster]`).
#[derive(Clone, Debug)]
pub struct JetstreamSettings {
    /// `nats://host:port`.
    pub url: String,
    /// Replicas of each stream: 1 on one server (demo, tests), 3 on a production cluster.
    pub replicas: usize,
    /// The bound on every wait for JetStream: an enqueue's acknowledgement, a consumer's
    /// creation, a dead-letter operation. Past it the call fails (JetStream away).
    pub timeout: Duration,
    /// How long an instance may hold a message in an attempt before JetStream gives it to
    /// another (longer than the transport's request timeout).
    pub ack_wait: Duration,
}

impl JetstreamSettings {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            replicas: 1,
            timeout: Duration::from_secs(5),
            ack_wait: Duration::from_secs(60),
        }
    }
}

/// The outbox in JetStream. Cloning shares it.
#[derive(Clone)]
pub(crate) struct JetstreamOutbox {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    client: async_nats::Client,
    js: Context,
    outbox: Stream,
    dead: Stream,
    layout: Layout,
    policy: Policy,
    timeout: Duration,
    transport: Arc<dyn Transport>,
    endpoints: Arc<dyn Endpoints>,
    metrics: OutboxMetrics,
    hook: Arc<dyn AttemptHook>,
    /// Users this instance runs a delivery worker for.
    workers: Mutex<HashSet<UserId>>,
    id_base: u64,
    next_id: AtomicU64,
    stopped: AtomicBool,
    stop: watch::Sender<bool>,
    pending: AtomicUsize,
    max_payload: usize,
}

pub(super) fn fabric(what: &'static str, e: impl Into<async_nats::Error>) -> OutboxError {
    OutboxError::Fabric {
        what,
        source: e.into(),
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl JetstreamOutbox {
    pub(in crate::outbox) async fn open(
        settings: &JetstreamSettings,
        config: &OutboxConfig,
        endpoints: Arc<dyn Endpoints>,
        transport: Arc<dyn Transport>,
        metrics: OutboxMetrics,
        hook: Arc<dyn AttemptHook>,
    ) -> Result<Self, OutboxError> {
        let policy = config.policy()?;
        let timeout = settings.timeout;
        let client = async_nats::ConnectOptions::new()
            .name("dccgw")
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            .connect(settings.url.as_str())
            .await
            .map_err(|e| fabric("connecting", e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .build(client.clone());
        let layout = Layout {
            replicas: settings.replicas.max(1),
            hold: Duration::from_millis(policy.hold_ms as u64),
            max_bytes: config.max_held_bytes,
            ack_wait: settings.ack_wait,
            per_user: config.per_user_concurrency,
        };
        let outbox = stream(&js, layout.outbox()).await?;
        let dead = stream(&js, layout.dead()).await?;
        stream(&js, layout.starts()).await?;
        let start = start_number(&js).await?;
        let (stop, _) = watch::channel(false);
        let max_payload = client.server_info().max_payload;
        let inner = Arc::new(Inner {
            client,
            js,
            outbox,
            dead,
            layout,
            policy,
            timeout,
            transport,
            endpoints,
            metrics,
            hook,
            workers: Mutex::new(HashSet::new()),
            id_base: (start & ((1 << (64 - COUNTER_BITS)) - 1)) << COUNTER_BITS,
            next_id: AtomicU64::new(1),
            stopped: AtomicBool::new(false),
            stop,
            pending: AtomicUsize::new(0),
            max_payload,
        });
        inner.discover().await;
        tokio::spawn(Arc::clone(&inner).keep_discovering());
        tracing::info!(
            url = %settings.url,
            start,
            "Outbox on JetStream: delivering for every User with messages waiting."
        );
        Ok(Self { inner })
    }

    pub(in crate::outbox) fn next_id(&self) -> MessageId {
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed) & ((1 << COUNTER_BITS) - 1);
        MessageId::new(self.inner.id_base | n)
    }

    /// Publishes every message of the batch and waits for all their acknowledgements.
    pub(in crate::outbox) async fn enqueue(&self, batch: Vec<Outbound>) -> Result<(), OutboxError> {
        let inner = &self.inner;
        if inner.stopped.load(Ordering::Acquire) {
            return Err(OutboxError::Stopped);
        }
        // While the client is reconnecting it would hold the publishes and send them once
        // connected, after this call has failed: refuse at once instead.
        if inner.client.connection_state() != async_nats::connection::State::Connected {
            return Err(OutboxError::Unavailable { waited_ms: 0 });
        }
        let now = now_ms();
        let messages: Vec<Message> = batch
            .into_iter()
            .map(|o| Message::from_outbound(o, now))
            .collect();
        let mut sends = Vec::with_capacity(messages.len());
        for m in &messages {
            let payload = streams::encode(m);
            // Room for the headers the publish carries.
            if payload.len() + 256 > inner.max_payload {
                return Err(OutboxError::TooLarge {
                    id: m.id,
                    bytes: payload.len(),
                });
            }
            let publish = jetstream::message::PublishMessage::build()
                .payload(payload)
                .message_id(m.id.to_string());
            sends.push(publish_acked(
                &inner.js,
                streams::outbox_subject(m),
                publish,
            ));
        }
        let acked = tokio::time::timeout(inner.timeout, futures_util::future::join_all(sends));
        match acked.await {
            Err(_) => return Err(self.unavailable()),
            Ok(results) => {
                if let Some(e) = results.into_iter().find_map(Result::err) {
                    return Err(e);
                }
            }
        }
        for m in &messages {
            inner
                .metrics
                .0
                .enqueued
                .with_label_values(&[metrics::kind_label(&m.kind)])
                .inc();
            self.ensure_worker(m.user);
        }
        Ok(())
    }

    /// Messages waiting in the outbox stream at the last look (every few seconds).
    pub(in crate::outbox) fn pending(&self) -> usize {
        self.inner.pending.load(Ordering::Relaxed)
    }

    /// Stops this instance's workers; messages in their attempts go to another instance (or
    /// back here after a restart) once their `ack_wait` passes.
    pub(in crate::outbox) async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        self.inner.stop.send_replace(true);
    }

    fn ensure_worker(&self, user: UserId) {
        self.inner.ensure_worker(user);
    }

    fn unavailable(&self) -> OutboxError {
        OutboxError::Unavailable {
            waited_ms: self.inner.timeout.as_millis() as u64,
        }
    }
}

impl Inner {
    fn ensure_worker(self: &Arc<Self>, user: UserId) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if workers.insert(user) {
            tokio::spawn(deliver::run_user(
                Arc::clone(self),
                user,
                self.stop.subscribe(),
            ));
        }
    }

    async fn keep_discovering(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(DISCOVER_EVERY) => {}
                _ = stop.changed() => return,
            }
            self.discover().await;
        }
    }

    /// Starts a worker for every User with messages in the outbox stream, and sets the gauges.
    async fn discover(self: &Arc<Self>) {
        let look = async {
            let mut info = self.outbox.info_with_subjects("dccgw.outbox.>").await?;
            let (messages, first) = (info.info.state.messages, info.info.state.first_timestamp);
            let mut users = HashSet::new();
            while let Some((subject, _)) = info.try_next().await? {
                users.extend(streams::user_of_subject(&subject));
            }
            let dead = self.dead.get_info().await?.state.messages;
            Ok::<_, async_nats::Error>((messages, first, users, dead))
        };
        match tokio::time::timeout(self.timeout, look).await {
            Ok(Ok((messages, first, users, dead))) => {
                for user in users {
                    self.ensure_worker(user);
                }
                let pending = usize::try_from(messages).unwrap_or(usize::MAX);
                self.pending.store(pending, Ordering::Relaxed);
                let d = &self.metrics.0;
                d.queue.set(messages as i64);
                d.dead_letters_held.set(dead as i64);
                d.oldest_pending.set(if messages == 0 {
                    0
                } else {
                    first.unix_timestamp()
                });
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "Looking at the outbox stream failed."),
            Err(_) => tracing::debug!("Looking at the outbox stream timed out."),
        }
    }
}

/// One publish and its acknowledgement (a duplicate's too: it was stored before).
async fn publish_acked(
    js: &Context,
    subject: String,
    publish: jetstream::message::PublishMessage,
) -> Result<(), OutboxError> {
    let ack = js
        .send_publish(subject, publish)
        .await
        .map_err(|e| fabric("publishing", e))?;
    ack.await.map_err(|e| fabric("publishing", e))?;
    Ok(())
}

async fn stream(js: &Context, config: jetstream::stream::Config) -> Result<Stream, OutboxError> {
    js.get_or_create_stream(config)
        .await
        .map_err(|e| fabric("making the outbox streams", e))
}

/// This start's number: the sequence JetStream gives its message in `DCCGW_STARTS`.
async fn start_number(js: &Context) -> Result<u64, OutboxError> {
    let ack = js
        .publish(streams::STARTS_SUBJECT, bytes::Bytes::new())
        .await
        .map_err(|e| fabric("numbering this start", e))?
        .await
        .map_err(|e| fabric("numbering this start", e))?;
    Ok(ack.sequence)
}
