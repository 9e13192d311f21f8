//! The notable outcomes: each writes its log line and its metrics together (and a request its
//! audit record).

use std::time::Duration;

use time::OffsetDateTime;

use super::{micros, Metrics, RequestTrace, Stage};
use crate::audit::{self, AuditError, AuditEvent, RequestRecord};
use crate::domain::{DuisService, RequestId, ResponseCode, Srv};
use crate::error::Error;
use crate::register::EligibilityClass;
use crate::tls::{HandshakeFailure, PeerIdentity};

/// A request reached its synchronous answer.
pub struct RequestAnswered<'a> {
    pub service: DuisService,
    pub peer: &'a PeerIdentity,
    pub request_id: Option<RequestId>,
    /// Set only for SRVs in the catalogue, so the label stays a closed set.
    pub srv: Option<Srv>,
    /// The catalogue's on-demand flag for the SRV.
    pub on_demand: bool,
    /// Whether an asynchronous Service Response is to follow this answer.
    pub response_follows: bool,
    pub code: ResponseCode,
    /// `None` when accepted.
    pub refusal: Option<&'a Error>,
    pub trace: &'a RequestTrace,
    /// When the request was received.
    pub received: OffsetDateTime,
    /// The answer's body bytes.
    pub bytes_out: usize,
}

impl RequestAnswered<'_> {
    /// Observes the metrics, writes the log line, and returns the audit record (the pipeline
    /// commits it with the request's decision).
    pub fn emit(&self, metrics: &Metrics) -> AuditEvent {
        let elapsed = self.trace.elapsed();
        let service = self.service.label();
        let srv = self.srv.map(|s| s.text());
        let srv = srv.as_deref().unwrap_or("unknown");
        let permit = self.trace.permit();
        let role = permit.map_or("none", |p| p.role().code());
        let class = permit.map_or("none", |p| class_label(p.class()));
        let outcome = if self.refusal.is_none() {
            "accepted"
        } else {
            "refused"
        };
        metrics
            .request_duration
            .with_label_values(&[service, outcome])
            .observe(elapsed.as_secs_f64());
        metrics
            .requests
            .with_label_values(&[service, srv, role, class, self.code.as_str()])
            .inc();
        self.observe_stages(metrics);
        let span = tracing::Span::current();
        // Written only for a span a subscriber keeps (not below the log level).
        if !span.is_disabled() {
            let request_id = self.request_id.map(|r| r.to_string());
            span.record("request_id", request_id.as_deref().unwrap_or("-"));
            span.record("srv", srv);
            span.record("role", role);
        }
        let elapsed_us = micros(elapsed);
        let decision = match self.refusal {
            None => {
                tracing::info!(code = %self.code, client = %self.peer.user_id, elapsed_us, "Request accepted.");
                audit::ACCEPTED
            }
            Some(error) => {
                let (_, _, reason) = error.classify();
                metrics.refusals.with_label_values(&[reason]).inc();
                if let Error::Resource { .. } = error {
                    // The operator must act (a journal's disk): with the cause.
                    let source = std::error::Error::source(error).map(|s| s.to_string());
                    tracing::error!(
                        code = %self.code, client = %self.peer.user_id, reason,
                        error = %error, source, elapsed_us,
                        "Request refused: the gateway failed."
                    );
                } else {
                    tracing::info!(
                        code = %self.code, client = %self.peer.user_id, reason,
                        cause = ?error.cause(), error = %error, elapsed_us,
                        "Request refused."
                    );
                }
                reason
            }
        };
        let at_ms = i64::try_from(self.received.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        AuditEvent::Request(RequestRecord {
            at_ms,
            service: service.to_owned(),
            tls_user: self.peer.user_id,
            tls_role: self.peer.role.to_string(),
            request_id: self.request_id,
            srv: self.srv,
            role: permit.map(|p| p.role()),
            class: permit.map(|p| class_label(p.class()).to_owned()),
            device: self.request_id.map(|r| r.target),
            on_demand: self.on_demand,
            rules: self.trace.rules().map(|r| r.version.clone()),
            decision: decision.to_owned(),
            code: self.code.as_str().to_owned(),
            response_follows: self.response_follows,
            timings: self.trace.timings(elapsed),
            bytes_in: self.trace.bytes_in,
            bytes_out: self.bytes_out as u64,
        })
    }
}

impl RequestAnswered<'_> {
    fn observe_stages(&self, metrics: &Metrics) {
        for stage in Stage::ALL {
            if let Some(took) = self.trace.lap_of(stage) {
                metrics.stage_duration[stage as usize].observe(took.as_secs_f64());
            }
        }
    }
}

fn class_label(class: EligibilityClass) -> &'static str {
    match class {
        EligibilityClass::A => "A",
        EligibilityClass::B => "B",
        EligibilityClass::C => "C",
    }
}

/// A request's audit record reached the disk, or did not.
pub struct AuditWaited {
    pub result: Result<(), AuditError>,
    pub waited: Duration,
}

impl AuditWaited {
    pub fn emit(&self, metrics: &Metrics) {
        metrics.stage_duration[Stage::Audit as usize].observe(self.waited.as_secs_f64());
        if let Err(e) = &self.result {
            metrics.audit_failures.inc();
            tracing::error!(error = %e, "A request's decision and audit record were not committed; check the state directory's disk.");
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
