//! Dead letters in JetStream (`DCCGW_DEAD`): listed, replayed into the outbox stream with a fresh
//! hold, or discarded, by any instance. A replay publishes the message before it deletes the
//! dead letter, so a failure between the two leaves a duplicate, never a loss.

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::RawMessageErrorKind;

use super::super::message::{DeadLetter, Message, MessageId};
use super::super::OutboxError;
use super::streams::{self, DEAD_AT_HEADER, DEAD_SUBJECTS};
use super::{fabric, now_ms, JetstreamOutbox};

/// Dead letters read in one listing at most; the rest wait for the next listing after some are
/// replayed or discarded.
const MAX_LISTED: usize = 10_000;

/// A dead letter and where it is in its stream.
struct Held {
    sequence: u64,
    message: Message,
    dead_at: i64,
}

impl JetstreamOutbox {
    pub(in crate::outbox) async fn dead_letters(&self) -> Result<Vec<DeadLetter>, OutboxError> {
        let mut letters: Vec<DeadLetter> = self
            .held()
            .await?
            .into_iter()
            .map(|h| DeadLetter {
                id: h.message.id,
                user: h.message.user,
                kind: h.message.kind,
                raised_at: h.message.raised_at,
                held_since: h.message.held_since,
                dead_at: h.dead_at,
                body_bytes: h.message.body.len(),
            })
            .collect();
        letters.sort_by_key(|d| d.id);
        Ok(letters)
    }

    pub(in crate::outbox) async fn replay_dead(
        &self,
        ids: &[MessageId],
    ) -> Result<usize, OutboxError> {
        let inner = &self.inner;
        let mut n = 0;
        for held in self
            .held()
            .await?
            .into_iter()
            .filter(|h| ids.contains(&h.message.id))
        {
            let now = now_ms();
            let mut message = held.message;
            message.held_since = now;
            let publish = PublishMessage::build()
                .payload(streams::encode(&message))
                .message_id(format!("{}.{now}.replay", message.id));
            let subject = streams::outbox_subject(&message);
            let sent = async {
                let ack = inner.js.send_publish(subject, publish).await?;
                ack.await.map_err(async_nats::Error::from)
            };
            match tokio::time::timeout(inner.timeout, sent).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(fabric("replaying a dead letter", e)),
                Err(_) => return Err(self.unavailable()),
            }
            self.delete(held.sequence).await?;
            self.ensure_worker(message.user);
            n += 1;
        }
        Ok(n)
    }

    pub(in crate::outbox) async fn discard_dead(
        &self,
        ids: &[MessageId],
    ) -> Result<usize, OutboxError> {
        let mut n = 0;
        for held in self
            .held()
            .await?
            .into_iter()
            .filter(|h| ids.contains(&h.message.id))
        {
            self.delete(held.sequence).await?;
            n += 1;
        }
        Ok(n)
    }

    async fn delete(&self, sequence: u64) -> Result<(), OutboxError> {
        let deleted = self.inner.dead.delete_message(sequence);
        match tokio::time::timeout(self.inner.timeout, deleted).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(fabric("deleting a dead letter", e)),
            Err(_) => Err(self.unavailable()),
        }
    }

    /// The dead letters held, in stream order (at most [`MAX_LISTED`]).
    async fn held(&self) -> Result<Vec<Held>, OutboxError> {
        let inner = &self.inner;
        let mut held = Vec::new();
        let mut next = 1;
        while held.len() < MAX_LISTED {
            let got = inner
                .dead
                .get_first_raw_message_by_subject(DEAD_SUBJECTS, next);
            let m = match tokio::time::timeout(inner.timeout, got).await {
                Ok(Ok(m)) => m,
                Ok(Err(e)) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
                Ok(Err(e)) => return Err(fabric("reading the dead letters", e)),
                Err(_) => return Err(self.unavailable()),
            };
            next = m.sequence + 1;
            let Ok(message) = streams::decode(&m.payload) else {
                tracing::warn!(
                    sequence = m.sequence,
                    "A dead letter cannot be read; it is skipped."
                );
                continue;
            };
            let dead_at = m
                .headers
                .get(DEAD_AT_HEADER)
                .and_then(|v| v.as_str().parse().ok())
                .unwrap_or(0);
            held.push(Held {
                sequence: m.sequence,
                message,
                dead_at,
            });
        }
        Ok(held)
    }
}
