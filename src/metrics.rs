//! The gateway's Prometheus registry and the events that feed it. Each notable outcome is one
//! event type ([`events`]) whose `emit()` writes the log line, the metrics and (for requests)
//! the audit record together. Labels come from closed sets only: service, SRV (catalogue or
//! `unknown`), role, class, response code, reason, stage, kind, outcome, cache, certificate —
//! never a User ID, device ID, MPxN or RequestID.
//!
//! Every family is registered at start, and every label value of a closed set that a dashboard
//! or rule names is created at zero, so `/metrics` lists a family before its first event.
//! `deploy/` holds the dashboard and alerting rules built on these names.

mod admission;
mod anomaly;
mod certs;
mod dsp;
mod events;
mod requests;
mod trace;

#[cfg(test)]
mod tests;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub use admission::{AdmissionDecided, AdmissionMetrics, LimitChanged};
pub use anomaly::{AnomalyDecided, AnomalyMetrics, ANOMALY_BREACHES, QUARANTINE_ENDINGS};
pub use certs::{CertMetrics, RELOAD_TRIGGERS, TRUSTS};
pub use dsp::{DspMetrics, DSP_KINDS, DSP_OUTCOMES};
pub use events::{AuditWaited, HandshakeFinished, RequestAnswered};
pub use trace::{micros, RequestTrace, Stage};

/// Request and stage latency buckets: 100 µs to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Delivery latency buckets (a message raised → accepted by the User): 5 ms to the 2-day hold.
const DELIVERY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 300.0, 900.0,
    3600.0, 21600.0, 172800.0,
];

/// The caches whose sizes and reloads are counted.
pub const CACHES: [&str; 5] = [
    "users",
    "devices",
    "registrations",
    "user_certs",
    "digital_signing_certs",
];
/// The certificates whose expiry is exported: the gateway's own four, and the earliest of each
/// set it trusts (TLS client anchors, signing anchors, Users' XML-signing certificates).
pub const CERTIFICATES: [&str; 7] = [
    "tls_server",
    "dcc_xml_signing",
    "access_control_broker",
    "delivery_client",
    "tls_client_anchor",
    "signing_anchor",
    "user_xml_signing",
];
/// Kinds of asynchronous message.
pub const DELIVERY_KINDS: [&str; 2] = ["response", "alert"];
/// How a delivery attempt ended.
pub const DELIVERY_OUTCOMES: [&str; 2] = ["delivered", "failed"];
/// Kinds of alert: from a device, a device's future-dated execution, or raised by the DCC.
pub const ALERT_KINDS: [&str; 3] = ["device", "future_dated", "dcc"];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    request_duration: HistogramVec,
    requests: IntCounterVec,
    /// `dccgw_request_stage_duration_seconds`, one handle per [`Stage`] (by its position in
    /// `Stage::ALL`), looked up once here rather than by label on every request.
    stage_duration: [Histogram; Stage::ALL.len()],
    refusals: IntCounterVec,
    handshake_duration: HistogramVec,
    handshake_failures: IntCounterVec,
    connections_open: IntGauge,
    connections_shed: IntCounterVec,
    audit_failures: IntCounter,
    cache_entries: IntGaugeVec,
    cache_reloads: IntCounterVec,
    certificate_expiry: GaugeVec,
    /// For the delivery side (outbox and workers) to update.
    pub delivery: DeliveryMetrics,
    /// For the alert side (routing and throttling) to update.
    pub alerts: AlertMetrics,
    /// Certificate reloads and CRLs.
    pub certs: CertMetrics,
    /// Held requests and schedule executions as they come due.
    pub dsp: DspMetrics,
    /// Anomaly detection: warnings, quarantines and their ends.
    pub anomaly: AnomalyMetrics,
    /// Admission control's decisions and limit.
    pub admission: AdmissionMetrics,
}

/// The outbox's metrics. Kinds and outcomes are [`DELIVERY_KINDS`] and [`DELIVERY_OUTCOMES`].
#[derive(Clone)]
pub struct DeliveryMetrics {
    /// `dccgw_delivery_queue_messages`: messages waiting to be delivered, now.
    pub queue: IntGauge,
    /// `dccgw_delivery_oldest_undelivered_age_seconds`: how long the oldest has waited.
    pub oldest_age: Gauge,
    /// `dccgw_delivery_attempts_total{kind, outcome}`.
    pub attempts: IntCounterVec,
    /// `dccgw_delivery_retries_total`: attempts after a message's first.
    pub retries: IntCounter,
    /// `dccgw_delivery_dead_letters_total`: messages moved to the dead-letter store.
    pub dead_letters: IntCounter,
    /// `dccgw_delivery_dead_letter_messages`: held in the dead-letter store, now.
    pub dead_letters_held: IntGauge,
    /// `dccgw_delivery_latency_seconds{kind}`: raised → accepted by the User, per message.
    pub latency: HistogramVec,
    /// `dccgw_outbox_oldest_pending_timestamp_seconds`: when the oldest waiting message entered
    /// the outbox (0 when none); [`Metrics::render`] turns it into `oldest_age`.
    pub oldest_pending: IntGauge,
    /// `dccgw_delivery_failed_attempts_total{reason}`: failed attempts by transport reason.
    pub failed_attempts: IntCounterVec,
    /// `dccgw_outbox_enqueued_total{kind}`: messages made durable in the outbox.
    pub enqueued: IntCounterVec,
    /// `dccgw_outbox_segments`: journal segment files on disk.
    pub segments: IntGauge,
}

/// Alert counters by [`ALERT_KINDS`].
#[derive(Clone)]
pub struct AlertMetrics {
    /// `dccgw_alerts_received_total{kind}`: from the comms hubs (or raised by the gateway).
    pub received: IntCounterVec,
    /// `dccgw_alerts_sent_total{kind}`: queued for delivery to a User.
    pub sent: IntCounterVec,
    /// `dccgw_alerts_throttled_total{kind}`: suppressed by throttling.
    pub throttled: IntCounterVec,
    /// `dccgw_alerts_unrouted_total{kind}`: reached nobody (an unknown device, nobody
    /// registered in the audience at the alert's time).
    pub unrouted: IntCounterVec,
    /// `dccgw_alerts_owed_change_batches`: journalled batches of registration changes whose
    /// DCC Alerts are not yet all durably in the outbox (raised again after a restart).
    pub owed_change_batches: IntGauge,
}

/// Builds and registers families; a static definition that fails is a bug, found by any test.
struct Builder(Registry);

impl Builder {
    fn add<C: Collector + Clone + 'static>(&self, c: C) -> C {
        self.0
            .register(Box::new(c.clone()))
            .expect("each static metric is valid and registered once under its own name");
        c
    }

    fn histogram(&self, name: &str, help: &str, buckets: &[f64], labels: &[&str]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(HistogramVec::new(opts, labels).expect("static histogram"))
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("static counter"))
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help).expect("static counter"))
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("static gauge"))
    }
}

/// Entries in each loaded cache and how often each was replaced, every cache listed from the
/// start.
fn cache_families(b: &Builder) -> (IntGaugeVec, IntCounterVec) {
    let cache_entries = b.add(
        IntGaugeVec::new(
            Opts::new("dccgw_cache_entries", "Entries in each loaded cache."),
            &["cache"],
        )
        .expect("static gauge"),
    );
    let cache_reloads = b.counters(
        "dccgw_cache_reloads_total",
        "Times a cache was replaced (a live registration change swaps the registry).",
        &["cache"],
    );
    for cache in CACHES {
        cache_entries.with_label_values(&[cache]);
        cache_reloads.with_label_values(&[cache]);
    }
    (cache_entries, cache_reloads)
}

/// The expiry of the gateway's own certificates, and the build's version.
fn certificate_families(b: &Builder) -> GaugeVec {
    let certificate_expiry = b.add(
        GaugeVec::new(
            Opts::new(
                "dccgw_certificate_expiry_timestamp_seconds",
                "When each of the gateway's own certificates expires (unix seconds).",
            ),
            &["certificate"],
        )
        .expect("static gauge"),
    );
    let build_info = b.add(
        IntGaugeVec::new(
            Opts::new("dccgw_build_info", "Always 1; the labels name the build."),
            &["version"],
        )
        .expect("static gauge"),
    );
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    certificate_expiry
}

/// The TLS handshake's duration by outcome and its failures by reason, every label at zero.
fn handshake_families(b: &Builder) -> (HistogramVec, IntCounterVec) {
    let handshake_duration = b.histogram(
        "dccgw_tls_handshake_duration_seconds",
        "Time from TCP accept to the end of the TLS handshake, by outcome.",
        LATENCY_BUCKETS,
        &["outcome"],
    );
    let handshake_failures = b.counters(
        "dccgw_tls_handshake_failures_total",
        "Failed TLS handshakes on the DUIS port, by reason.",
        &["reason"],
    );
    for failure in crate::tls::HandshakeFailure::ALL {
        handshake_failures.with_label_values(&[failure.label()]);
    }
    for outcome in ["ok", "failed"] {
        handshake_duration.with_label_values(&[outcome]);
    }
    (handshake_duration, handshake_failures)
}

impl Metrics {
    pub fn new() -> Self {
        let b = Builder(Registry::new());
        let (request_duration, requests) = requests::families(&b);
        let stage_duration = b.histogram(
            "dccgw_request_stage_duration_seconds",
            "Time a request spent in each phase: parse, verify, authorize, replay, sign, dispatch, audit.",
            LATENCY_BUCKETS,
            &["stage"],
        );
        let refusals = b.counters(
            "dccgw_request_refusals_total",
            "Requests refused, by reason (see docs/response-codes.md).",
            &["reason"],
        );
        for reason in crate::error::REASONS {
            refusals.with_label_values(&[reason]);
        }
        let (handshake_duration, handshake_failures) = handshake_families(&b);
        let connections_open = b.gauge(
            "dccgw_connections_open",
            "Open mTLS connections on the DUIS port.",
        );
        let connections_shed = b.counters(
            "dccgw_connections_shed_total",
            "New connections closed at once because a bound was reached: handshake slots, or the source address's open connections.",
            &["reason"],
        );
        for reason in ["handshakes", "per_source"] {
            connections_shed.with_label_values(&[reason]);
        }
        let audit_failures = b.counter(
            "dccgw_audit_write_failures_total",
            "Audit records that could not be written (disk error, backlog, writer stopped).",
        );
        let (cache_entries, cache_reloads) = cache_families(&b);
        // `process_*`: CPU, memory, open and maximum file descriptors, threads, start time.
        #[cfg(target_os = "linux")]
        b.0.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("the process collector is registered once");
        let certificate_expiry = certificate_families(&b);
        let delivery = DeliveryMetrics::register(&b);
        let alerts = AlertMetrics::register(&b);
        let certs = CertMetrics::register(&b);
        let dsp = DspMetrics::register(&b);
        let anomaly = AnomalyMetrics::register(&b);
        let admission = AdmissionMetrics::register(&b);
        let stage_duration = Stage::ALL.map(|s| stage_duration.with_label_values(&[s.label()]));
        Self {
            registry: b.0,
            request_duration,
            requests,
            stage_duration,
            refusals,
            handshake_duration,
            handshake_failures,
            connections_open,
            connections_shed,
            audit_failures,
            cache_entries,
            cache_reloads,
            certificate_expiry,
            delivery,
            alerts,
            certs,
            dsp,
            anomaly,
            admission,
        }
    }

    /// The text exposition format for `/metrics`. The oldest undelivered message's age is
    /// computed here, at scrape time, from when it entered the outbox.
    pub fn render(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.delivery.refresh_age(now);
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn connection_opened(&self) -> ConnectionGuard {
        self.connections_open.inc();
        ConnectionGuard(self.connections_open.clone())
    }

    /// A new connection was closed at once at a bound (`reason`: `handshakes`, `per_source`).
    pub fn connection_shed(&self, reason: &'static str) {
        self.connections_shed.with_label_values(&[reason]).inc();
    }

    /// An audit record other than a request's (a delivery attempt's) could not be written.
    pub fn audit_write_failed(&self) {
        self.audit_failures.inc();
    }

    /// A cache was loaded at start (`reloaded: false`) or replaced while running.
    pub fn cache_loaded(&self, cache: &'static str, entries: usize, reloaded: bool) {
        self.cache_entries
            .with_label_values(&[cache])
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        if reloaded {
            self.cache_reloads.with_label_values(&[cache]).inc();
        }
    }

    /// One of [`CERTIFICATES`] expires at `not_after` (unix seconds).
    pub fn certificate_expires(&self, certificate: &'static str, not_after: i64) {
        self.certificate_expiry
            .with_label_values(&[certificate])
            .set(not_after as f64);
    }
}

impl DeliveryMetrics {
    fn register(b: &Builder) -> Self {
        let d = Self {
            queue: b.gauge(
                "dccgw_delivery_queue_messages",
                "Asynchronous messages waiting to be delivered to Users.",
            ),
            oldest_age: b.add(
                Gauge::new(
                    "dccgw_delivery_oldest_undelivered_age_seconds",
                    "Age of the oldest message not yet delivered.",
                )
                .expect("static gauge"),
            ),
            attempts: b.counters(
                "dccgw_delivery_attempts_total",
                "Delivery attempts to Users' Receive Response Services, by message kind and outcome.",
                &["kind", "outcome"],
            ),
            retries: b.counter(
                "dccgw_delivery_retries_total",
                "Delivery attempts after a message's first.",
            ),
            dead_letters: b.counter(
                "dccgw_delivery_dead_letters_total",
                "Messages moved to the dead-letter store after the hold time.",
            ),
            dead_letters_held: b.gauge(
                "dccgw_delivery_dead_letter_messages",
                "Messages held in the dead-letter store.",
            ),
            latency: b.histogram(
                "dccgw_delivery_latency_seconds",
                "Time from a message being raised to a User accepting it, by kind.",
                DELIVERY_BUCKETS,
                &["kind"],
            ),
            oldest_pending: b.gauge(
                "dccgw_outbox_oldest_pending_timestamp_seconds",
                "Unix time at which the oldest message waiting for delivery entered the outbox (0 when none).",
            ),
            failed_attempts: b.counters(
                "dccgw_delivery_failed_attempts_total",
                "Delivery attempts that failed and will be retried, by reason.",
                &["reason"],
            ),
            enqueued: b.counters(
                "dccgw_outbox_enqueued_total",
                "Messages made durable in the outbox, by kind.",
                &["kind"],
            ),
            segments: b.gauge(
                "dccgw_outbox_segments",
                "Journal segment files the outbox keeps on disk.",
            ),
        };
        for kind in DELIVERY_KINDS {
            d.latency.with_label_values(&[kind]);
            d.enqueued.with_label_values(&[kind]);
            for outcome in DELIVERY_OUTCOMES {
                d.attempts.with_label_values(&[kind, outcome]);
            }
        }
        d
    }

    /// Sets `oldest_age` from `oldest_pending` at `now` (unix seconds): 0 when nothing waits.
    pub fn refresh_age(&self, now: i64) {
        let entered = self.oldest_pending.get();
        let age = if entered > 0 {
            (now - entered).max(0)
        } else {
            0
        };
        self.oldest_age.set(age as f64);
    }
}

impl AlertMetrics {
    fn register(b: &Builder) -> Self {
        let a = Self {
            received: b.counters(
                "dccgw_alerts_received_total",
                "Alerts received from comms hubs or raised by the gateway, by kind.",
                &["kind"],
            ),
            sent: b.counters(
                "dccgw_alerts_sent_total",
                "Alerts queued for delivery to Users, by kind.",
                &["kind"],
            ),
            throttled: b.counters(
                "dccgw_alerts_throttled_total",
                "Alerts suppressed by throttling, by kind.",
                &["kind"],
            ),
            unrouted: b.counters(
                "dccgw_alerts_unrouted_total",
                "Alerts that reached nobody (unknown device, nobody registered), by kind.",
                &["kind"],
            ),
            owed_change_batches: b.gauge(
                "dccgw_alerts_owed_change_batches",
                "Journalled registration-change batches whose DCC Alerts are not all in the outbox yet.",
            ),
        };
        for kind in ALERT_KINDS {
            for c in [&a.received, &a.sent, &a.throttled, &a.unrouted] {
                c.with_label_values(&[kind]);
            }
        }
        a
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Decrements the open-connection gauge when the connection ends, however it ends.
pub struct ConnectionGuard(IntGauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
