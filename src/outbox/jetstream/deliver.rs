//! One User's deliveries from its durable consumer, in this instance: pull what is due (at most
//! the free share of the User's in-flight bound), POST each message, acknowledge a delivery,
//! refuse a failure with its retry delay, and move a message past the hold to the dead letters.
//! Every instance runs such a worker for every User with messages; JetStream hands each message
//! to one of them, and the consumer's `max_ack_pending` bounds what is in flight to the User
//! across all of them, so a User whose endpoint is down holds only its own messages.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::{AckKind, Message as JsMessage, PublishMessage};
use futures_util::StreamExt;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::super::message::Message;
use super::super::metrics::{AttemptFailed, DeadLettered, Delivered};
use super::super::transport::TransportError;
use super::streams::{self, DEAD_AT_HEADER};
use super::{now_ms, Inner};
use crate::domain::UserId;

/// How long one pull waits for messages before it is made again.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// The pause after a failed pull or consumer lookup (JetStream away), before trying again.
const PAUSE: Duration = Duration::from_secs(1);

/// Runs until the outbox shuts down: makes sure the User's consumer exists, then pulls.
pub(super) async fn run_user(inner: Arc<Inner>, user: UserId, mut stop: watch::Receiver<bool>) {
    let consumer = loop {
        match consumer(&inner, &user).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(%user, error = %e, "A User's JetStream consumer could not be made; trying again.");
                if pause(&mut stop).await {
                    return;
                }
            }
        }
    };
    let permits = Arc::new(Semaphore::new(inner.layout.per_user));
    let failures = Arc::new(AtomicU32::new(0));
    let mut attempts = JoinSet::new();
    while !*stop.borrow() {
        while attempts.try_join_next().is_some() {}
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                _ = attempts.join_next() => {}
                _ = stop.changed() => break,
            }
            continue;
        }
        let pulled = tokio::select! {
            p = pull(&consumer, free) => p,
            _ = stop.changed() => break,
        };
        let mut batch = match pulled {
            Ok(batch) => batch,
            Err(e) => {
                tracing::debug!(%user, error = %e, "Pulling a User's messages failed; trying again.");
                if pause(&mut stop).await {
                    break;
                }
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                n = tokio::time::timeout(PULL_EXPIRES * 2, batch.next()) => n,
                _ = stop.changed() => break,
            };
            let Ok(Some(Ok(m))) = next else { break };
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                // More than asked for: leave it to its redelivery.
                let _ = m.ack_with(AckKind::Nak(None)).await;
                continue;
            };
            let (inner, failures) = (Arc::clone(&inner), Arc::clone(&failures));
            attempts.spawn(async move {
                attempt(&inner, m, &failures).await;
                drop(permit);
            });
        }
    }
    // Attempts cut short are redelivered by JetStream after `ack_wait`, here or elsewhere.
    attempts.abort_all();
}

/// The User's consumer, made when missing (every instance makes the same one).
async fn consumer(inner: &Inner, user: &UserId) -> Result<PullConsumer, async_nats::Error> {
    let name = streams::consumer_name(user);
    let config = inner.layout.consumer(user);
    let made = inner.outbox.get_or_create_consumer(&name, config);
    Ok(tokio::time::timeout(inner.timeout, made).await??)
}

async fn pull(
    consumer: &PullConsumer,
    n: usize,
) -> Result<async_nats::jetstream::consumer::pull::Batch, async_nats::Error> {
    let batch = consumer
        .batch()
        .max_messages(n)
        .expires(PULL_EXPIRES)
        .messages();
    Ok(tokio::time::timeout(PULL_EXPIRES * 2, batch).await??)
}

/// Sleeps [`PAUSE`]; `true` when the outbox is shutting down.
async fn pause(stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(PAUSE) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// One delivery attempt of one stream message.
async fn attempt(inner: &Inner, m: JsMessage, failures: &AtomicU32) {
    let (delivered, sequence) = match m.info() {
        Ok(info) => (info.delivered, info.stream_sequence),
        Err(_) => (1, 0),
    };
    let message = match streams::decode(&m.payload) {
        Ok(message) => message,
        Err(e) => {
            // Not ours, or damaged: it can never be delivered, so it is taken off the queue.
            tracing::error!(sequence, error = %e, "A JetStream outbox message cannot be read; it is dropped.");
            let _ = m.ack_with(AckKind::Term).await;
            return;
        }
    };
    let previous = u32::try_from(delivered.saturating_sub(1)).unwrap_or(u32::MAX);
    let now = now_ms();
    let deadline = message.held_since.saturating_add(inner.policy.hold_ms);
    if now >= deadline {
        expire(inner, &m, &message, previous, now).await;
        return;
    }
    let result = match inner.endpoints.response_url(&message.user) {
        Some(url) => inner.transport.post(&url, &message).await,
        None => Err(TransportError::NoEndpoint),
    };
    let now = now_ms();
    match result {
        Ok(()) => {
            // A lost acknowledgement redelivers the message: a duplicate, never a loss.
            if let Err(e) = m.double_ack().await {
                tracing::warn!(message_id = %message.id, error = %e, "A delivery's acknowledgement did not reach JetStream; the message may be delivered again.");
            }
            failures.store(0, Ordering::Relaxed);
            Delivered {
                message: &message,
                at_ms: now,
                attempts: previous + 1,
            }
            .emit(&inner.metrics, inner.hook.as_ref());
        }
        Err(error) => {
            let before = failures.fetch_add(1, Ordering::Relaxed);
            AttemptFailed {
                message: &message,
                error: &error,
                attempts: previous + 1,
                at_ms: now,
                endpoint_was_working: before == 0,
            }
            .emit(&inner.metrics, inner.hook.as_ref());
            let retry_in = inner
                .policy
                .backoff(previous.saturating_add(1))
                .min(deadline - now)
                .max(0);
            let delay = Duration::from_millis(retry_in as u64);
            let _ = m.ack_with(AckKind::Nak(Some(delay))).await;
        }
    }
}

/// The hold passed: the message moves to the dead letters, then leaves the queue.
async fn expire(inner: &Inner, m: &JsMessage, message: &Message, previous: u32, now: i64) {
    match publish_dead(inner, message, now).await {
        Ok(()) => {
            if let Err(e) = m.double_ack().await {
                tracing::warn!(message_id = %message.id, error = %e, "A dead letter's original was not taken off the queue; it may be dead-lettered twice.");
            }
            DeadLettered {
                message,
                attempts: previous,
                at_ms: now,
            }
            .emit(&inner.metrics, inner.hook.as_ref());
        }
        Err(e) => {
            tracing::error!(message_id = %message.id, error = %e, "A message past its hold could not be moved to the dead letters; trying again.");
            let _ = m.ack_with(AckKind::Nak(Some(PAUSE))).await;
        }
    }
}

async fn publish_dead(inner: &Inner, message: &Message, now: i64) -> Result<(), async_nats::Error> {
    let publish = PublishMessage::build()
        .payload(streams::encode(message))
        .message_id(format!("{}.{}.dead", message.id, message.held_since))
        .header(DEAD_AT_HEADER, now.to_string().as_str());
    let subject = streams::dead_subject(&message.user);
    let sent = async {
        let ack = inner.js.send_publish(subject, publish).await?;
        ack.await.map_err(async_nats::Error::from)
    };
    tokio::time::timeout(inner.timeout, sent).await??;
    Ok(())
}
