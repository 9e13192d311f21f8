//! The JetStream layout the cluster's outbox uses: the names, subjects and settings of its
//! streams and per-User consumers, and a message's form on the wire.
//!
//! One stream (`DCCGW_OUTBOX`) holds every message waiting for delivery, on the subject
//! `dccgw.outbox.<User ID>.<kind>` (kind `response`, `device_alert`, `dcc_alert`). One stream
//! rather than one per kind because the unit of delivery is the User, not the kind: a User's
//! one durable consumer (filter `dccgw.outbox.<User ID>.>`) then bounds everything in flight to
//! that User across kinds and instances, and one de-duplication window covers every message ID.
//! The kind stays in the subject, so monitoring can still count and filter by it.
//!
//! The stream's retention is work-queue: a message is removed when its delivery is
//! acknowledged (its consumers' filters never overlap), so the stream holds what is
//! undelivered, as the embedded journal does. Dead letters move to `DCCGW_DEAD`
//! (`dccgw.dead.<User ID>`), kept until an operator replays or discards them.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
use bytes::Bytes;

use super::super::message::{Message, OutboundKind};
use super::super::record::{self, Record, RecordError};
use crate::domain::{Eui64, UserId};

pub(super) const OUTBOX_STREAM: &str = "DCCGW_OUTBOX";
pub(super) const DEAD_STREAM: &str = "DCCGW_DEAD";
pub(super) const STARTS_STREAM: &str = "DCCGW_STARTS";
pub(super) const STARTS_SUBJECT: &str = "dccgw.starts";
pub(super) const DEAD_SUBJECTS: &str = "dccgw.dead.>";
/// Header on a dead letter: when it became one, Unix milliseconds.
pub(super) const DEAD_AT_HEADER: &str = "Dccgw-Dead-At";
/// A message republished within this window under the same `Nats-Msg-Id` is stored once: a
/// publish whose acknowledgement was lost, sent again by the caller's retry (seconds later).
pub(super) const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long past the hold the outbox stream keeps a message no instance has judged. The hold
/// is the workers' rule (they move a message to the dead letters at their first look after
/// it); the stream's age limit is only the backstop for a cluster with no instance running.
pub(super) const AGE_GRACE: Duration = Duration::from_secs(3600);
/// Attempts per message: far more than a hold allows (two days at one attempt a second).
const MAX_DELIVER: i64 = 1 << 30;

/// The subject token of a User: the compact hex of its EUI-64.
pub(super) fn user_token(user: &UserId) -> String {
    user.to_compact_hex()
}

pub(super) fn user_from_token(token: &str) -> Option<UserId> {
    Eui64::from_compact_hex(token).ok()
}

pub(super) fn outbox_subject(m: &Message) -> String {
    let kind = match m.kind {
        OutboundKind::Response { .. } => "response",
        OutboundKind::DeviceAlert { .. } => "device_alert",
        OutboundKind::DccAlert { .. } => "dcc_alert",
    };
    format!("dccgw.outbox.{}.{kind}", user_token(&m.user))
}

pub(super) fn user_filter(user: &UserId) -> String {
    format!("dccgw.outbox.{}.>", user_token(user))
}

pub(super) fn dead_subject(user: &UserId) -> String {
    format!("dccgw.dead.{}", user_token(user))
}

/// The User a subject of either stream names.
pub(super) fn user_of_subject(subject: &str) -> Option<UserId> {
    let mut parts = subject.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("dccgw"), Some("outbox" | "dead"), Some(token)) => user_from_token(token),
        _ => None,
    }
}

/// A message as stored: the outbox journal's own record form (bounded, checked decoding).
pub(super) fn encode(m: &Message) -> Bytes {
    Bytes::from(record::encode(&Record::Enqueued(vec![m.clone()])))
}

pub(super) fn decode(bytes: &[u8]) -> Result<Message, RecordError> {
    match record::decode(bytes)? {
        Record::Enqueued(mut messages) if messages.len() == 1 => {
            Ok(messages.pop().ok_or(RecordError::Truncated)?)
        }
        _ => Err(RecordError::Tag {
            field: "stream message",
            tag: 0,
        }),
    }
}

/// What the streams and consumers are made with.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub replicas: usize,
    pub hold: Duration,
    pub max_bytes: u64,
    pub ack_wait: Duration,
    pub per_user: usize,
}

impl Layout {
    pub fn outbox(&self) -> Config {
        Config {
            name: OUTBOX_STREAM.into(),
            subjects: vec!["dccgw.outbox.>".into()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            max_age: self.hold + AGE_GRACE,
            max_bytes: i64::try_from(self.max_bytes).unwrap_or(i64::MAX),
            discard: DiscardPolicy::New,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: self.replicas,
            ..Config::default()
        }
    }

    pub fn dead(&self) -> Config {
        Config {
            name: DEAD_STREAM.into(),
            subjects: vec![DEAD_SUBJECTS.into()],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            max_bytes: i64::try_from(self.max_bytes).unwrap_or(i64::MAX),
            discard: DiscardPolicy::New,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: self.replicas,
            ..Config::default()
        }
    }

    /// One message per instance start; only the sequence numbers matter (see `next_id`).
    pub fn starts(&self) -> Config {
        Config {
            name: STARTS_STREAM.into(),
            subjects: vec![STARTS_SUBJECT.into()],
            storage: StorageType::File,
            max_messages: 1,
            num_replicas: self.replicas,
            ..Config::default()
        }
    }

    /// A User's durable consumer. An attempt is acknowledged or refused (a NAK with the retry
    /// delay) by the instance that made it; `ack_wait` and `backoff` redeliver a message whose
    /// instance died mid-attempt, each within the 300 s promise. `max_deliver` is only as large
    /// as the server lets it be beside `backoff` (it refuses "unlimited" there): a message
    /// ends as a dead letter by age (the hold), as in the embedded outbox.
    pub fn consumer(&self, user: &UserId) -> pull::Config {
        let wait = self.ack_wait;
        let cap = Duration::from_millis(super::super::PROMISED_FIRST_RETRY_MS);
        pull::Config {
            durable_name: Some(consumer_name(user)),
            filter_subject: user_filter(user),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: wait,
            backoff: vec![wait, (wait * 2).min(cap), cap],
            max_deliver: MAX_DELIVER,
            max_ack_pending: i64::try_from(self.per_user).unwrap_or(i64::MAX),
            num_replicas: self.replicas,
            ..pull::Config::default()
        }
    }
}

pub(super) fn consumer_name(user: &UserId) -> String {
    format!("user-{}", user_token(user))
}
