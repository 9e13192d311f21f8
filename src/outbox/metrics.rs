//! The outbox's metrics (Prometheus types the gateway registers beside its own) and the events
//! that feed them and the log together. Labels come from closed sets: message kind, failure
//! reason.

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts};

use super::message::Message;
use super::transport::TransportError;

/// Delivery-latency buckets: 1 ms to two days (the hold time).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0,
    300.0, 900.0, 3600.0, 14400.0, 86400.0, 172800.0,
];

#[derive(Clone)]
pub struct OutboxMetrics {
    pub(super) pending: IntGauge,
    pub(super) dead_letters: IntGauge,
    pub(super) oldest_pending: IntGauge,
    pub(super) segments: IntGauge,
    pub(super) delivery_latency: HistogramVec,
    pub(super) failed_attempts: IntCounterVec,
    pub(super) dead_lettered: IntCounterVec,
    pub(super) enqueued: IntCounterVec,
}

impl OutboxMetrics {
    pub fn new() -> Self {
        let gauge = |name: &str, help: &str| {
            IntGauge::new(name, help).expect("static metric definition is valid")
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
                .expect("static metric definition is valid")
        };
        Self {
            pending: gauge(
                "dccgw_outbox_pending_messages",
                "Messages in the outbox waiting for delivery (including those being sent).",
            ),
            dead_letters: gauge(
                "dccgw_outbox_dead_letters",
                "Messages in the dead-letter store: undelivered after the hold time, waiting for an operator.",
            ),
            oldest_pending: gauge(
                "dccgw_outbox_oldest_pending_timestamp_seconds",
                "Unix time at which the oldest message waiting for delivery entered the outbox (0 when none); its age is time() minus this.",
            ),
            segments: gauge(
                "dccgw_outbox_segments",
                "Journal segment files the outbox keeps on disk.",
            ),
            delivery_latency: HistogramVec::new(
                HistogramOpts::new(
                    "dccgw_delivery_latency_seconds",
                    "Time from a message entering the outbox to the User accepting it, by kind; its count is the deliveries.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["kind"],
            )
            .expect("static metric definition is valid"),
            failed_attempts: counter(
                "dccgw_delivery_failed_attempts_total",
                "Delivery attempts that failed and will be retried, by reason.",
                &["reason"],
            ),
            dead_lettered: counter(
                "dccgw_outbox_dead_lettered_total",
                "Messages moved to the dead-letter store, by kind.",
                &["kind"],
            ),
            enqueued: counter(
                "dccgw_outbox_enqueued_total",
                "Messages made durable in the outbox, by kind.",
                &["kind"],
            ),
        }
    }

    /// Every collector, for the gateway to register once.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.pending.clone()),
            Box::new(self.dead_letters.clone()),
            Box::new(self.oldest_pending.clone()),
            Box::new(self.segments.clone()),
            Box::new(self.delivery_latency.clone()),
            Box::new(self.failed_attempts.clone()),
            Box::new(self.dead_lettered.clone()),
            Box::new(self.enqueued.clone()),
        ]
    }

    pub fn register(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        for c in self.collectors() {
            registry.register(c)?;
        }
        Ok(())
    }
}

impl Default for OutboxMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A message reached its User.
pub(super) struct Delivered<'a> {
    pub message: &'a Message,
    pub latency_ms: i64,
    pub attempts: u32,
}

impl Delivered<'_> {
    pub fn emit(&self, metrics: &OutboxMetrics) {
        let kind = self.message.kind.label();
        metrics
            .delivery_latency
            .with_label_values(&[kind])
            .observe(self.latency_ms.max(0) as f64 / 1000.0);
        tracing::debug!(
            message_id = %self.message.id, user = %self.message.user, kind,
            attempts = self.attempts, latency_ms = self.latency_ms,
            "Message delivered."
        );
    }
}

/// One delivery attempt failed; the message waits for its retry.
pub(super) struct AttemptFailed<'a> {
    pub message: &'a Message,
    pub error: &'a TransportError,
    pub attempts: u32,
}

impl AttemptFailed<'_> {
    pub fn emit(&self, metrics: &OutboxMetrics) {
        let reason = self.error.label();
        metrics.failed_attempts.with_label_values(&[reason]).inc();
        tracing::debug!(
            message_id = %self.message.id, user = %self.message.user, reason,
            attempts = self.attempts, error = %self.error,
            "Delivery attempt failed; the message will be retried."
        );
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
}

impl DeadLettered<'_> {
    pub fn emit(&self, metrics: &OutboxMetrics) {
        let kind = self.message.kind.label();
        metrics.dead_lettered.with_label_values(&[kind]).inc();
        tracing::error!(
            message_id = %self.message.id, user = %self.message.user, kind,
            what = %self.message.kind,
            "A message was not delivered within the hold time and is now a dead letter; replay it when the User's endpoint works."
        );
    }
}
