//! The outbox's metrics (the gateway's delivery families, `crate::metrics::DeliveryMetrics`),
//! the hook that hears every attempt (the gateway's audit trail), and the events that feed
//! them and the log together. Labels come from closed sets: message kind, outcome, failure
//! reason.

use std::sync::Arc;

use crate::metrics::{DeliveryMetrics, Metrics};

use super::message::{Message, OutboundKind};
use super::transport::TransportError;

/// The outbox's view of the gateway's delivery families ([`DeliveryMetrics`]): the gateway
/// builds it from `Metrics.delivery`, so every update lands in the registry `/metrics` serves.
#[derive(Clone)]
pub struct OutboxMetrics(pub(super) DeliveryMetrics);

impl OutboxMetrics {
    /// Families in a registry of their own (for tests and tools that serve no `/metrics`).
    pub fn new() -> Self {
        Self(Metrics::new().delivery)
    }
}

impl From<DeliveryMetrics> for OutboxMetrics {
    /// Every failure reason is listed at zero from the start.
    fn from(d: DeliveryMetrics) -> Self {
        for reason in TransportError::LABELS {
            d.failed_attempts.with_label_values(&[reason]);
        }
        Self(d)
    }
}

impl Default for OutboxMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The metric label of a message kind: [`crate::metrics::DELIVERY_KINDS`].
pub(super) const fn kind_label(kind: &OutboundKind) -> &'static str {
    match kind {
        OutboundKind::Response { .. } => "response",
        OutboundKind::DeviceAlert { .. } | OutboundKind::DccAlert { .. } => "alert",
    }
}

/// How one delivery attempt ended, as the [`AttemptHook`] hears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The User's endpoint answered 2xx.
    Delivered,
    /// It failed; the message will be retried (`http_status` when the endpoint answered).
    Failed { http_status: Option<u16> },
    /// The hold time passed undelivered: the message is now a dead letter.
    DeadLettered,
}

/// One delivery attempt, for the gateway's audit trail.
#[derive(Debug)]
pub struct Attempted<'a> {
    pub message: &'a Message,
    /// 1 for the first attempt (for a dead letter, the attempts made).
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    /// When the attempt ended, unix milliseconds.
    pub at_ms: i64,
}

/// What the outbox tells the gateway after every attempt. Called on the worker's task: it must
/// not block (queue the record and return).
pub trait AttemptHook: Send + Sync {
    fn attempted(&self, attempt: &Attempted<'_>);
}

impl<F: Fn(&Attempted<'_>) + Send + Sync> AttemptHook for F {
    fn attempted(&self, attempt: &Attempted<'_>) {
        self(attempt)
    }
}

/// A hook that records nothing (tools and tests without an audit trail).
pub struct NoHook;

impl AttemptHook for NoHook {
    fn attempted(&self, _: &Attempted<'_>) {}
}

/// A hook that does nothing, shared.
pub fn no_hook() -> Arc<dyn AttemptHook> {
    Arc::new(NoHook)
}

/// A message reached its User.
pub(super) struct Delivered<'a> {
    pub message: &'a Message,
    pub at_ms: i64,
    pub attempts: u32,
}

impl Delivered<'_> {
    pub fn emit(&self, metrics: &OutboxMetrics, hook: &dyn AttemptHook) {
        let kind = kind_label(&self.message.kind);
        let d = &metrics.0;
        // Raised → accepted: the figure the delivery SLO is stated in.
        let latency_ms = (self.at_ms - self.message.raised_at).max(0);
        d.latency
            .with_label_values(&[kind])
            .observe(latency_ms as f64 / 1000.0);
        count_attempt(d, kind, "delivered", self.attempts);
        hook.attempted(&Attempted {
            message: self.message,
            attempt: self.attempts,
            outcome: AttemptOutcome::Delivered,
            at_ms: self.at_ms,
        });
        tracing::debug!(
            message_id = %self.message.id, user = %self.message.user, kind,
            attempts = self.attempts, latency_ms,
            "Message delivered."
        );
    }
}

fn count_attempt(d: &DeliveryMetrics, kind: &str, outcome: &str, attempts: u32) {
    d.attempts.with_label_values(&[kind, outcome]).inc();
    if attempts > 1 {
        d.retries.inc();
    }
}

/// One delivery attempt failed; the message waits for its retry.
pub(super) struct AttemptFailed<'a> {
    pub message: &'a Message,
    pub error: &'a TransportError,
    pub attempts: u32,
    pub at_ms: i64,
    /// No attempt to this User had failed since its last success (or the start): this failure
    /// is news for the operator, the ones after it until a success are not.
    pub endpoint_was_working: bool,
}

impl AttemptFailed<'_> {
    pub fn emit(&self, metrics: &OutboxMetrics, hook: &dyn AttemptHook) {
        let reason = self.error.label();
        let d = &metrics.0;
        d.failed_attempts.with_label_values(&[reason]).inc();
        count_attempt(d, kind_label(&self.message.kind), "failed", self.attempts);
        let http_status = match self.error {
            TransportError::Status(s) => Some(*s),
            _ => None,
        };
        hook.attempted(&Attempted {
            message: self.message,
            attempt: self.attempts,
            outcome: AttemptOutcome::Failed { http_status },
            at_ms: self.at_ms,
        });
        if self.endpoint_was_working {
            tracing::warn!(
                message_id = %self.message.id, user = %self.message.user, reason,
                error = %self.error,
                "A User's Receive Response Service did not take a delivery; its messages wait in the outbox and are retried."
            );
        } else {
            tracing::debug!(
                message_id = %self.message.id, user = %self.message.user, reason,
                attempts = self.attempts, error = %self.error,
                "Delivery attempt failed; the message will be retried."
            );
        }
    }
}

/// A User's endpoint failed repeatedly: its queue waits behind one probe at a time.
pub(super) struct EndpointDown<'a> {
    pub user: &'a crate::domain::UserId,
    pub retry_in_ms: i64,
    pub waiting: usize,
}

impl EndpointDown<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            user = %self.user, retry_in_ms = self.retry_in_ms, waiting = self.waiting,
            "A User's Receive Response Service keeps failing; its deliveries wait for a probe."
        );
    }
}

/// A message outlived the hold time undelivered and moved to the dead-letter store.
pub(super) struct DeadLettered<'a> {
    pub message: &'a Message,
    pub attempts: u32,
    pub at_ms: i64,
}

impl DeadLettered<'_> {
    pub fn emit(&self, metrics: &OutboxMetrics, hook: &dyn AttemptHook) {
        let kind = kind_label(&self.message.kind);
        metrics.0.dead_letters.inc();
        hook.attempted(&Attempted {
            message: self.message,
            attempt: self.attempts,
            outcome: AttemptOutcome::DeadLettered,
            at_ms: self.at_ms,
        });
        tracing::error!(
            message_id = %self.message.id, user = %self.message.user, kind,
            what = %self.message.kind,
            "A message was not delivered within the hold time and is now a dead letter; replay it when the User's endpoint works."
        );
    }
}
