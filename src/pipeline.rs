//! A request's fixed sequence of phases, top to bottom: parse → identify → verify signature →
//! authorize → sign → route → dispatch → respond, then `record`, which always runs and is the one
//! place that emits the request's metrics and log event.
//!
//! Signature verification, authorization and routing land in later issues; their seams are
//! marked below and the request is acknowledged (`I99`) once the phases that exist pass.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use time::OffsetDateTime;

use crate::catalogue::Catalogue;
use crate::checks;
use crate::domain::{DuisService, RequestId, ResponseCode, Srv};
use crate::duis::{self, PartialHeader, ResponseHeaderOut, ResponsePayload};
use crate::error::Error;
use crate::metrics::{Metrics, RequestAnswered};
use crate::register::PartyRegister;
use crate::tls::PeerIdentity;

/// What every request shares: rule data, registers and the metrics they report to.
pub struct Gateway {
    pub catalogue: &'static Catalogue,
    pub register: ArcSwap<PartyRegister>,
    pub xml_limits: duis::Limits,
    pub metrics: Metrics,
}

/// The synchronous answer: an HTTP status and a DUIS `sr:Response` document.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub code: ResponseCode,
    pub body: String,
}

/// A failure together with whatever of the header was read, so the answer can echo it.
struct Refusal {
    error: Error,
    partial: PartialHeader,
}

impl Gateway {
    pub fn new(register: PartyRegister, xml_limits: duis::Limits, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            catalogue: Catalogue::builtin(),
            register: ArcSwap::from_pointee(register),
            xml_limits,
            metrics,
        })
    }

    /// Runs one request through the phases. `now` is the time the request was received.
    pub fn handle(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Answer {
        let started = Instant::now();
        match self.process(service, peer, body) {
            Ok(partial) => self.respond(service, peer, partial, None, now, started),
            Err(Refusal { error, partial }) => {
                self.respond(service, peer, partial, Some(error), now, started)
            }
        }
    }

    /// Answers a request refused before its body reached the parser (content type, size,
    /// timeout), through the same respond-and-record path.
    pub fn refuse_early(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        error: Error,
        now: OffsetDateTime,
    ) -> Answer {
        let partial = PartialHeader::default();
        self.respond(service, peer, partial, Some(error), now, Instant::now())
    }

    /// Respond, then record: the one place a request's metrics and log event are emitted.
    fn respond(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        partial: PartialHeader,
        refusal: Option<Error>,
        now: OffsetDateTime,
        started: Instant,
    ) -> Answer {
        // Only SRVs in the catalogue are echoed: the schema's enumeration holds no others, and
        // the metric label stays a closed set.
        let srv = partial.srv.filter(|s| self.catalogue.get(s).is_some());
        let (code, status) = match &refusal {
            None => (ResponseCode::I99, 200),
            Some(error) => {
                let (code, status, _) = error.classify();
                (code, status)
            }
        };
        let answer = write(partial.request_id, srv, code, status, now);
        RequestAnswered {
            service,
            peer,
            request_id: partial.request_id,
            srv,
            code,
            refusal: refusal.as_ref(),
            elapsed: started.elapsed(),
        }
        .emit(&self.metrics);
        answer
    }

    fn process(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        body: &[u8],
    ) -> Result<PartialHeader, Refusal> {
        // Parse.
        let request = duis::parse_request(body, &self.xml_limits).map_err(|f| Refusal {
            error: f.error.into(),
            partial: f.partial,
        })?;
        let header = &request.header;
        let partial = PartialHeader {
            request_id: Some(header.request_id),
            service_reference: Some(header.service_reference),
            srv: Some(header.srv),
        };
        let refuse = |error: Error| Refusal {
            error,
            partial: partial.clone(),
        };
        checks::check_service(self.catalogue, service, &request).map_err(refuse)?;
        // Identify: the TLS identity was read once at accept; the originator must be its party's.
        checks::check_originator(
            &self.register.load(),
            peer.user_id,
            header.request_id.originator,
        )
        .map_err(refuse)?;
        // Verify signature: issue 3. Authorize (→ Permit): issue 4.
        // Sign, route, dispatch: issue 5.
        Ok(partial)
    }
}

/// Writes the `sr:Response`. The schema requires a ServiceReference and variant in every
/// `ResponseMessage`; when the request gave no SRV the catalogue knows, the answer is the header
/// alone, which the sender can still read the code from (documented in `docs/response-codes.md`).
fn write(
    request_id: Option<RequestId>,
    srv: Option<Srv>,
    code: ResponseCode,
    status: u16,
    now: OffsetDateTime,
) -> Answer {
    let header = ResponseHeaderOut {
        request_id,
        response_id: None,
        code,
        date_time: now,
    };
    let body = match srv {
        Some(srv) => duis::write_response(
            &header,
            srv.service_reference(),
            srv,
            &ResponsePayload::None,
        ),
        None => duis::write_header_only_response(&header),
    };
    Answer { status, code, body }
}
