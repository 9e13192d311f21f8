//! A request's fixed sequence of phases, top to bottom: parse → identify → verify signature →
//! authorize → sign → replay → route and dispatch → respond, then `record`, which always runs and
//! is the one place that emits the request's metrics, log event and audit record. The answer
//! leaves only once its audit record is durable. Every answer is signed.

mod answer;

use std::sync::Arc;
use std::time::Instant;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::audit::{Audit, Receipt};
use crate::auth::{self, AccessRequest, Permit};
use crate::catalogue::{Catalogue, SrvEntry};
use crate::checks;
use crate::dispatch::Dispatcher;
use crate::domain::{DuisService, ResponseCode, UserId};
use crate::duis::inventory;
use crate::duis::{self, ParsedRequest, PartialHeader, ResponsePayload};
use crate::error::{Error, Resource};
use crate::metrics::{AuditWaited, Metrics, RequestAnswered, RequestTrace, Stage};
use crate::registry::Snapshot;
use crate::replies::{self, FutureDated};
use crate::routing::{self, Command, CommandSigner, SignedCommand};
use crate::signer::Signer;
use crate::state::State;
use crate::store::{AdvanceError, ChangeLog, ReplayGuard};
use crate::tls::PeerIdentity;
use crate::xmldsig::{self, c14n::C14nLimits, ProfileError, SignerRefusal};

pub use answer::Answer;

/// What a request needs: rule data, the state it is decided against, the keys that sign, and
/// where its effects go.
pub struct Gateway {
    pub catalogue: &'static Catalogue,
    /// The registers, the registry and the User certificates in force.
    pub state: Arc<State>,
    pub xml_limits: duis::Limits,
    pub c14n_limits: C14nLimits,
    /// The DCC XML-signing key that signs every answer.
    pub signer: Signer,
    /// Each originator's last accepted counter, journalled.
    pub replay: Arc<ReplayGuard>,
    pub metrics: Metrics,
    /// The audit trail: one record per request decision (and per delivery attempt).
    pub audit: Audit,
    /// Signed routing to the comms-hub network (absent: device requests are acknowledged and
    /// go nowhere, which only a configuration without `[routing]` chooses).
    pub routing: Option<Routing>,
}

/// What a permitted device request needs to reach the hub network.
pub struct Routing {
    /// The access-control broker key (`OU=04`) that signs every command.
    pub signer: CommandSigner,
    pub dispatcher: Arc<Dispatcher>,
    pub future_dated: Arc<FutureDated>,
}

impl replies::Context for Gateway {
    fn registry(&self) -> Arc<Snapshot> {
        self.state.registry()
    }

    fn signer(&self) -> &Signer {
        &self.signer
    }

    fn c14n_limits(&self) -> &C14nLimits {
        &self.c14n_limits
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn change_log(&self) -> &ChangeLog {
        self.state.change_log()
    }
}

/// A failure together with whatever of the header was read, so the answer can echo it.
struct Refusal {
    error: Error,
    partial: PartialHeader,
}

/// The parts a [`Gateway`] is made of, opened at start.
pub struct Parts {
    pub state: Arc<State>,
    pub replay: Arc<ReplayGuard>,
    /// The DCC XML-signing key.
    pub signer: Signer,
    pub audit: Audit,
    pub routing: Option<Routing>,
}

impl Gateway {
    pub fn new(parts: Parts, xml_limits: duis::Limits, metrics: Metrics) -> Arc<Self> {
        let Parts {
            state,
            replay,
            signer,
            audit,
            routing,
        } = parts;
        metrics.certificate_expires(
            "dcc_xml_signing",
            signer.identity().not_after.unix_timestamp(),
        );
        let c14n_limits = C14nLimits {
            max_bytes: xml_limits.max_bytes,
            max_depth: xml_limits.max_depth,
            ..C14nLimits::default()
        };
        Arc::new(Self {
            catalogue: Catalogue::builtin(),
            state,
            xml_limits,
            c14n_limits,
            signer,
            replay,
            metrics,
            audit,
            routing,
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
        async {
            let mut trace = RequestTrace::start();
            trace.bytes_in = body.len() as u64;
            let (answer, audited) = match self.process(service, peer, body, now, &mut trace).await {
                Ok((partial, payload)) => {
                    self.respond(service, peer, partial, Ok(payload), now, trace)
                }
                Err(Refusal { error, partial }) => {
                    self.respond(service, peer, partial, Err(error), now, trace)
                }
            };
            self.once_recorded(answer, audited).await
        }
        .instrument(request_span(service))
        .await
    }

    /// Answers a request refused before its body reached the parser (content type, size,
    /// timeout), through the same respond-and-record path, in a span of its own (so that nothing
    /// is added to the connection's span however many such requests one connection sends).
    pub async fn refuse_early(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        error: Error,
        now: OffsetDateTime,
    ) -> Answer {
        async {
            let partial = PartialHeader::default();
            let trace = RequestTrace::start();
            let (answer, audited) = self.respond(service, peer, partial, Err(error), now, trace);
            self.once_recorded(answer, audited).await
        }
        .instrument(request_span(service))
        .await
    }

    /// The answer, once its audit record is on disk (group commit: many requests share one
    /// fsync). An answer whose record could not be written does not leave: the sender gets a
    /// bare 503 with no DUIS answer, so nothing is promised that the trail does not hold.
    async fn once_recorded(&self, answer: Answer, audited: Receipt) -> Answer {
        let waiting = Instant::now();
        let result = audited.durable().await;
        let recorded = result.is_ok();
        AuditWaited {
            result,
            waited: waiting.elapsed(),
        }
        .emit(&self.metrics);
        if recorded {
            answer
        } else {
            Answer::withheld()
        }
    }

    /// Respond, then record: the one place a request's metrics, log event and audit record are
    /// emitted. The receipt says when the audit record is durable. `outcome` is the data a
    /// synchronous answer carries (`I0`), none (`I99`), or the refusal.
    fn respond(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        partial: PartialHeader,
        outcome: Result<Option<ResponsePayload>, Error>,
        now: OffsetDateTime,
        mut trace: RequestTrace,
    ) -> (Answer, Receipt) {
        let (payload, refusal) = match outcome {
            Ok(payload) => (payload, None),
            Err(error) => (None, Some(error)),
        };
        // Only SRVs in the catalogue are echoed: the schema's enumeration holds no others, and
        // the metric label stays a closed set.
        let srv = partial.srv.filter(|s| self.catalogue.get(s).is_some());
        let (code, status) = match &refusal {
            None if payload.is_some() => (ResponseCode::I0, 200),
            None => (ResponseCode::I99, 200),
            Some(error) => {
                let (code, status, _) = error.classify();
                (code, status)
            }
        };
        trace.mark();
        let payload = payload.unwrap_or(ResponsePayload::None);
        let answer = self.write(partial.request_id, srv, code, status, now, &payload);
        trace.lap(Stage::Sign);
        // Record: metrics, log line and audit record, from one event.
        let entry = srv.and_then(|s| self.catalogue.get(&s));
        let audited = RequestAnswered {
            service,
            peer,
            request_id: partial.request_id,
            srv,
            on_demand: entry.is_some_and(|e| e.on_demand),
            // A device request acknowledged I99 gets its Service Response asynchronously.
            response_follows: code == ResponseCode::I99 && entry.is_some_and(|e| !e.non_device),
            code,
            refusal: refusal.as_ref(),
            trace: &trace,
            received: now,
            bytes_out: answer.body.len(),
        }
        .emit(&self.metrics, &self.audit);
        (answer, audited)
    }

    async fn process(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        body: &[u8],
        now: OffsetDateTime,
        trace: &mut RequestTrace,
    ) -> Result<(PartialHeader, Option<ResponsePayload>), Refusal> {
        // Parse.
        let request = duis::parse_request(body, &self.xml_limits).map_err(|f| Refusal {
            error: f.error.into(),
            partial: f.partial,
        })?;
        trace.lap(Stage::Parse);
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
        // One register for the whole request, whatever changes meanwhile.
        let register = self.state.register();
        // Identify: the TLS identity was read once at accept; the originator must be its party's.
        checks::check_originator(&register, peer.user_id, header.request_id.originator)
            .map_err(refuse)?;
        self.verify_signature(body, &request, now).map_err(refuse)?;
        trace.lap(Stage::Verify);
        // Authorize: at the execution time for future-dated requests, else now.
        let at = execution_time(&request, now).map_err(refuse)?;
        let access = AccessRequest {
            originator: header.request_id.originator,
            target: header.request_id.target,
            service: entry,
            at: at.unix_timestamp(),
        };
        let permit = auth::authorize(&access, &register, &self.state.registry())
            .map_err(|d| refuse(Error::Denied(d)))?;
        trace.permitted(&permit);
        trace.lap(Stage::Authorize);
        let payload = self
            .answer_from_cache(entry, &request, body)
            .map_err(refuse)?;
        // Sign: a device command is made from the permit alone and signed with the broker key.
        let command = self
            .sign_command(entry, &permit, &request, at, body)
            .map_err(refuse)?;
        // No effect is taken while the audit trail cannot record its answer.
        if self.audit.is_failing() {
            return Err(refuse(Error::resource(
                Resource::AuditTrail,
                std::io::Error::other("the audit trail's last write failed"),
            )));
        }
        // Replay: the counter is checked and journalled last, so that only accepted requests
        // move an originator's high-water mark.
        // Nanoseconds since 1970 fit a u64 until the year 2554.
        let now_ns = u64::try_from(now.unix_timestamp_nanos()).unwrap_or(0);
        self.replay
            .advance(&header.request_id, header.command_variant, now_ns)
            .await
            .map_err(|e| {
                refuse(match e {
                    AdvanceError::Refused(r) => Error::Replay(r),
                    AdvanceError::Journal(e) => Error::resource(Resource::ReplayJournal, e),
                })
            })?;
        trace.lap(Stage::Replay);
        // Route and dispatch: the command is on disk before the I99 promises a response.
        if let Some((routing, command)) = command {
            route(routing, command, &request).await.map_err(refuse)?;
            trace.lap(Stage::Dispatch);
        }
        Ok((partial, payload))
    }

    /// 8.2 Read Inventory (Command Variant 8) is answered from the cache: `I0` with data. Every
    /// other request has no synchronous data.
    fn answer_from_cache(
        &self,
        entry: &SrvEntry,
        request: &ParsedRequest,
        body: &[u8],
    ) -> Result<Option<ResponsePayload>, Error> {
        if entry.body_element != "ReadInventory" {
            return Ok(None);
        }
        let span = body.get(request.body.clone()).unwrap_or_default();
        let query = inventory::parse_read_inventory(span).map_err(Error::InventoryQuery)?;
        let xml = answer::inventory_payload(&self.state.registry(), query)
            .ok_or(Error::InventoryEmpty)?;
        Ok(Some(ResponsePayload::Raw(xml)))
    }

    /// The signed command for a device request that goes to the device, when routing is on.
    /// The request's Body stands in for the GBCS command the DCC would build from it.
    fn sign_command(
        &self,
        entry: &SrvEntry,
        permit: &Permit,
        request: &ParsedRequest,
        at: OffsetDateTime,
        body: &[u8],
    ) -> Result<Option<(&Routing, SignedCommand)>, Error> {
        let header = &request.header;
        let Some(routing) = &self.routing else {
            return Ok(None);
        };
        if entry.non_device || !routing::sent_to_device(header.command_variant) {
            return Ok(None);
        }
        let payload = body.get(request.body.clone()).unwrap_or_default().to_vec();
        let execute_at = request
            .execution_date_time
            .is_some()
            .then(|| at.unix_timestamp());
        let command = Command::from_permit(
            permit,
            header.request_id,
            header.command_variant,
            execute_at,
            payload,
        )
        .and_then(|c| routing.signer.sign(&c))
        .map_err(Error::Command)?;
        Ok(Some((routing, command)))
    }

    /// Verify signature: the document's one `ds:Signature`, made with a known User XML-signing
    /// certificate that may sign for the originator now, over exactly this document.
    fn verify_signature(
        &self,
        body: &[u8],
        request: &ParsedRequest,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let originator: UserId = request.header.request_id.originator;
        // The parser found the one ds:Signature as the root's last child (or none).
        let span = request
            .signature
            .clone()
            .ok_or(Error::Signature(ProfileError::Missing.into()))?;
        // One walk reads the signature, checks the digest and canonicalises SignedInfo; a digest
        // mismatch is reported only after the signer checks, as the refusal order requires.
        let prepared =
            xmldsig::prepare(body, &self.c14n_limits).map_err(|e| Error::Signature(e.into()))?;
        let sig = &prepared.signature;
        // Two readers that disagree on where the signature is: the request is not signed as
        // the parser read it.
        if sig.signature != span {
            return Err(Error::Signature(ProfileError::Missing.into()));
        }
        let cert = self
            .state
            .user_certs()
            .find(&sig.issuer, &sig.serial)
            .ok_or(Error::UnknownSigner)?;
        xmldsig::check_signer(&cert.identity, cert.chained, originator, now)
            .map_err(Error::Signer)?;
        if cert.revoked {
            return Err(Error::Signer(SignerRefusal::Revoked));
        }
        prepared
            .verify(&cert.identity.public_key)
            .map_err(Error::Signature)
    }
}

/// A request's span: its fields are filled in when it is recorded.
fn request_span(service: DuisService) -> tracing::Span {
    tracing::info_span!(
        "request",
        service = service.label(),
        request_id = tracing::field::Empty,
        srv = tracing::field::Empty,
        role = tracing::field::Empty
    )
}

/// When a request is decided for: its execution time if future-dated, else now.
fn execution_time(request: &ParsedRequest, now: OffsetDateTime) -> Result<OffsetDateTime, Error> {
    match &request.execution_date_time {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).map_err(|_| Error::ExecutionDateTime),
        None => Ok(now),
    }
}

/// Journals the command (it is on disk before the `I99` promises a response), then sends it in
/// the background.
async fn route(
    routing: &Routing,
    command: SignedCommand,
    request: &ParsedRequest,
) -> Result<(), Error> {
    routing
        .dispatcher
        .record(&command)
        .await
        .map_err(|e| Error::resource(Resource::PendingJournal, e))?;
    if request.execution_date_time.is_some() {
        routing
            .future_dated
            .insert(request.header.request_id, request.header.srv);
    }
    let dispatcher = Arc::clone(&routing.dispatcher);
    tokio::spawn(async move {
        if let Err(e) = dispatcher.dispatch(command).await {
            tracing::error!(error = %e, "Dispatch failed; the command is answered after a restart.");
        }
    });
    Ok(())
}
