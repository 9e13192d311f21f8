//! The gateway's Prometheus registry and the events that feed it. Each notable outcome is one
//! event type whose `emit()` writes the log line and the metric together. Labels come from closed
//! sets only: service, SRV (catalogue or `unknown`), response code, reason.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::domain::{DuisService, RequestId, ResponseCode, Srv};
use crate::error::Error;
use crate::tls::{HandshakeFailure, PeerIdentity};

/// Request-latency buckets: 100 µs to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    request_duration: HistogramVec,
    refusals: IntCounterVec,
    handshake_duration: HistogramVec,
    handshake_failures: IntCounterVec,
    connections_open: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "dccgw_request_duration_seconds",
                "Time from a request's body being read to its synchronous answer, by service, SRV and DUIS response code.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["service", "srv", "code"],
        )
        .expect("static metric definition is valid");
        let refusals = IntCounterVec::new(
            Opts::new(
                "dccgw_request_refusals_total",
                "Requests refused before acceptance, by reason (see docs/response-codes.md).",
            ),
            &["reason"],
        )
        .expect("static metric definition is valid");
        let handshake_duration = HistogramVec::new(
            HistogramOpts::new(
                "dccgw_tls_handshake_duration_seconds",
                "Time from TCP accept to the end of the TLS handshake, by outcome.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["outcome"],
        )
        .expect("static metric definition is valid");
        let handshake_failures = IntCounterVec::new(
            Opts::new(
                "dccgw_tls_handshake_failures_total",
                "Failed TLS handshakes on the DUIS port, by reason.",
            ),
            &["reason"],
        )
        .expect("static metric definition is valid");
        let connections_open = IntGauge::new(
            "dccgw_connections_open",
            "Open mTLS connections on the DUIS port.",
        )
        .expect("static metric definition is valid");
        let build_info = IntGaugeVec::new(
            Opts::new("dccgw_build_info", "Always 1; the labels name the build."),
            &["version"],
        )
        .expect("static metric definition is valid");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for c in [
            Box::new(request_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(refusals.clone()),
            Box::new(handshake_duration.clone()),
            Box::new(handshake_failures.clone()),
            Box::new(connections_open.clone()),
            Box::new(build_info),
        ] {
            registry
                .register(c)
                .expect("each metric is registered once, with a distinct name");
        }
        Self {
            registry,
            request_duration,
            refusals,
            handshake_duration,
            handshake_failures,
            connections_open,
        }
    }

    /// The text exposition format for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn connection_opened(&self) -> ConnectionGuard {
        self.connections_open.inc();
        ConnectionGuard(self.connections_open.clone())
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

/// A request reached its synchronous answer.
pub struct RequestAnswered<'a> {
    pub service: DuisService,
    pub peer: &'a PeerIdentity,
    pub request_id: Option<RequestId>,
    /// Set only for SRVs in the catalogue, so the label stays a closed set.
    pub srv: Option<Srv>,
    pub code: ResponseCode,
    /// `None` when accepted.
    pub refusal: Option<&'a Error>,
    pub elapsed: Duration,
}

impl RequestAnswered<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        let service = self.service.label();
        let srv = self.srv.map(|s| s.to_string());
        let srv = srv.as_deref().unwrap_or("unknown");
        metrics
            .request_duration
            .with_label_values(&[service, srv, self.code.as_str()])
            .observe(self.elapsed.as_secs_f64());
        let request_id = self.request_id.map(|r| r.to_string());
        let request_id = request_id.as_deref().unwrap_or("-");
        match self.refusal {
            None => tracing::info!(
                request_id, srv, service, client = %self.peer.user_id, code = %self.code,
                elapsed_us = self.elapsed.as_micros() as u64,
                "Request accepted."
            ),
            Some(error) => {
                let (_, _, reason) = error.classify();
                metrics.refusals.with_label_values(&[reason]).inc();
                tracing::info!(
                    request_id, srv, service, client = %self.peer.user_id, code = %self.code, reason,
                    cause = ?error.cause(), error = %error,
                    elapsed_us = self.elapsed.as_micros() as u64,
                    "Request refused."
                );
            }
        }
    }
}

/// A TLS handshake finished, one way or the other.
pub struct HandshakeFinished<'a> {
    pub peer: Option<&'a PeerIdentity>,
    pub failure: Option<HandshakeFailure>,
    pub remote: std::net::SocketAddr,
    pub elapsed: Duration,
}

impl HandshakeFinished<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        let outcome = if self.failure.is_none() {
            "ok"
        } else {
            "failed"
        };
        metrics
            .handshake_duration
            .with_label_values(&[outcome])
            .observe(self.elapsed.as_secs_f64());
        match (self.failure, self.peer) {
            (Some(f), _) => {
                metrics
                    .handshake_failures
                    .with_label_values(&[f.label()])
                    .inc();
                tracing::info!(remote = %self.remote, reason = f.label(), "TLS handshake refused.");
            }
            (None, Some(p)) => tracing::debug!(
                remote = %self.remote, client = %p.user_id, role = %p.role,
                "TLS client connected."
            ),
            (None, None) => {}
        }
    }
}
