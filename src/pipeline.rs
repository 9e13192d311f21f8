//! A request's fixed sequence of phases, top to bottom: parse → identify → verify signature →
//! authorize → sign → route → dispatch → respond, then `record`, which always runs and is the one
//! place that emits the request's metrics and log event.
//!
//! Authorization and routing land in later issues; their seams are marked below and the request
//! is acknowledged (`I99`) once the phases that exist pass. Every answer is signed.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::{self, AccessRequest};
use crate::catalogue::Catalogue;
use crate::certstore::CertStore;
use crate::checks;
use crate::domain::{DuisService, RequestId, ResponseCode, Srv};
use crate::duis::{self, PartialHeader, ResponseHeaderOut, ResponsePayload};
use crate::error::Error;
use crate::metrics::{Metrics, RequestAnswered};
use crate::register::PartyRegister;
use crate::registry::{Change, ChangeError, Snapshot};
use crate::signer::Signer;
use crate::store::{ChangeLog, JournalError, ReplayGuard};
use crate::tls::PeerIdentity;
use crate::xmldsig::{self, c14n::C14nLimits, ProfileError};

/// What every request shares: rule data, registers and the metrics they report to.
pub struct Gateway {
    pub catalogue: &'static Catalogue,
    pub register: ArcSwap<PartyRegister>,
    /// Devices and registrations, swapped whole on each change.
    pub registry: ArcSwap<Snapshot>,
    pub xml_limits: duis::Limits,
    pub c14n_limits: C14nLimits,
    /// User XML-signing certificates, by issuer and serial.
    pub user_certs: ArcSwap<CertStore>,
    /// The DCC XML-signing key that signs every answer.
    pub signer: Signer,
    /// Each originator's last accepted counter, journalled.
    pub replay: ReplayGuard,
    /// Live registration changes, journalled before they apply.
    pub changes: ChangeLog,
    /// Serialises writers of `registry` (readers never wait).
    change_lock: tokio::sync::Mutex<()>,
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

/// Everything loaded from files and journals at start.
pub struct Loaded {
    pub register: PartyRegister,
    pub registry: Snapshot,
    pub user_certs: CertStore,
    pub replay: ReplayGuard,
    pub changes: ChangeLog,
    /// The DCC XML-signing key.
    pub signer: Signer,
}

impl Gateway {
    pub fn new(loaded: Loaded, xml_limits: duis::Limits, metrics: Metrics) -> Arc<Self> {
        let Loaded {
            register,
            registry,
            user_certs,
            replay,
            changes,
            signer,
        } = loaded;
        let c14n_limits = C14nLimits {
            max_bytes: xml_limits.max_bytes,
            max_depth: xml_limits.max_depth,
            ..C14nLimits::default()
        };
        Arc::new(Self {
            catalogue: Catalogue::builtin(),
            register: ArcSwap::from_pointee(register),
            registry: ArcSwap::from_pointee(registry),
            xml_limits,
            c14n_limits,
            user_certs: ArcSwap::from_pointee(user_certs),
            signer,
            replay,
            changes,
            change_lock: tokio::sync::Mutex::new(()),
            metrics,
        })
    }

    /// Runs one request through the phases. `now` is the time the request was received.
    pub async fn handle(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Answer {
        let started = Instant::now();
        match self.process(service, peer, body, now).await {
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
        let answer = self.write(partial.request_id, srv, code, status, now);
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

    async fn process(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        body: &[u8],
        now: OffsetDateTime,
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
        let entry = checks::check_service(self.catalogue, service, &request).map_err(refuse)?;
        // Identify: the TLS identity was read once at accept; the originator must be its party's.
        checks::check_originator(
            &self.register.load(),
            peer.user_id,
            header.request_id.originator,
        )
        .map_err(refuse)?;
        self.verify_signature(
            body,
            request.signature.clone(),
            header.request_id.originator,
            now,
        )
        .map_err(refuse)?;
        // Authorize: at the execution time for future-dated requests, else now.
        let at = match &request.execution_date_time {
            Some(text) => OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| refuse(Error::ExecutionDateTime))?,
            None => now,
        };
        let access = AccessRequest {
            originator: header.request_id.originator,
            target: header.request_id.target,
            service: entry,
            at: at.unix_timestamp(),
        };
        let _permit = auth::authorize(&access, &self.register.load(), &self.registry.load())
            .map_err(|d| refuse(Error::Denied(d)))?;
        // Sign, route and dispatch take the permit: issue 5.
        // Replay: the counter is checked and journalled last, so that only accepted requests
        // move an originator's high-water mark.
        self.replay
            .advance(&header.request_id, header.command_variant)
            .await
            .map_err(|e| refuse(Error::Replay(e)))?;
        Ok(partial)
    }
}

/// Why a batch of registration changes was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the changes cannot apply")]
    Invalid(#[source] ChangeError),
    #[error("the change log could not be written")]
    Journal(#[source] JournalError),
}

impl Gateway {
    /// Applies a batch of registration changes atomically: checked against the current
    /// snapshot, journalled, and only then made visible to requests (one swap).
    pub async fn apply_changes(&self, batch: &[Change]) -> Result<(), ApplyError> {
        let _writer = self.change_lock.lock().await;
        let current = self.registry.load_full();
        let next = current.apply_all(batch).map_err(ApplyError::Invalid)?;
        self.changes
            .append(batch)
            .await
            .map_err(ApplyError::Journal)?;
        self.registry.store(Arc::new(next));
        Ok(())
    }

    /// Verify signature: the document's one `ds:Signature`, made with a known User XML-signing
    /// certificate that may sign for the originator now, over exactly this document.
    fn verify_signature(
        &self,
        body: &[u8],
        signature: Option<std::ops::Range<usize>>,
        originator: crate::domain::UserId,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        // The parser found the one ds:Signature as the root's last child (or none).
        let span = signature.ok_or(Error::Signature(ProfileError::Missing.into()))?;
        // One walk reads the signature, checks the digest and canonicalises SignedInfo; a digest
        // mismatch is reported only after the signer checks, as the refusal order requires.
        let prepared = xmldsig::prepare_at(body, span, &self.c14n_limits)
            .map_err(|e| Error::Signature(e.into()))?;
        let sig = &prepared.signature;
        let cert = self
            .user_certs
            .load()
            .find(&sig.issuer, &sig.serial)
            .ok_or(Error::UnknownSigner)?;
        xmldsig::check_signer(&cert.identity, cert.chained, originator, now)
            .map_err(Error::Signer)?;
        prepared
            .verify(&cert.identity.public_key)
            .map_err(Error::Signature)
    }

    /// Writes and signs the answer. Should signing ever fail, the sender gets an unsigned `E100`
    /// and the operator an ERROR: the gateway never sends an unsigned answer as if it were one.
    fn write(
        &self,
        request_id: Option<RequestId>,
        srv: Option<Srv>,
        code: ResponseCode,
        status: u16,
        now: OffsetDateTime,
    ) -> Answer {
        let unsigned = write_unsigned(request_id, srv, code, now);
        match xmldsig::sign_document(&unsigned, &self.signer, &self.c14n_limits) {
            Ok(body) => Answer { status, code, body },
            Err(e) => {
                tracing::error!(error = %e, "Signing an answer failed; check the DCC signing key.");
                let (code, status, _) = Error::SignAnswer.classify();
                let body = write_unsigned(request_id, srv, code, now);
                Answer { status, code, body }
            }
        }
    }
}

/// Writes the `sr:Response`. The schema requires a ServiceReference and variant in every
/// `ResponseMessage`; when the request gave no SRV the catalogue knows, the answer is the header
/// alone, which the sender can still read the code from (documented in `docs/response-codes.md`).
fn write_unsigned(
    request_id: Option<RequestId>,
    srv: Option<Srv>,
    code: ResponseCode,
    now: OffsetDateTime,
) -> String {
    let header = ResponseHeaderOut {
        request_id,
        response_id: None,
        code,
        date_time: now,
    };
    match srv {
        Some(srv) => duis::write_response(
            &header,
            srv.service_reference(),
            srv,
            &ResponsePayload::None,
        ),
        None => duis::write_header_only_response(&header),
    }
}
