//! A request's fixed sequence of phases, top to bottom: parse → identify → verify signature →
//! authorize → sign → route → dispatch → respond, then `record`, which always runs and is the one
//! place that emits the request's metrics, log event and audit record. The answer leaves only
//! once its audit record is durable.
//!
//! Authorization and routing land in later issues; their seams are marked below and the request
//! is acknowledged (`I99`) once the phases that exist pass. Every answer is signed.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::alerts::{self, ChangeAlerts};
use crate::audit::{Audit, Receipt};
use crate::auth::{self, AccessRequest};
use crate::catalogue::Catalogue;
use crate::certstore::CertStore;
use crate::checks;
use crate::commshub::Dispatcher;
use crate::domain::{DuisService, RequestId, ResponseCode, Srv};
use crate::duis::inventory::{self, InventoryDevice, InventoryQuery};
use crate::duis::{self, PartialHeader, ResponseHeaderOut, ResponsePayload};
use crate::error::Error;
use crate::metrics::{AuditWaited, Metrics, RequestAnswered, RequestTrace, Stage};
use crate::register::{self, PartyRegister, UserChange, UserChangeError, UserChangeLog};
use crate::registry::{Change, ChangeError, Compaction, Snapshot};
use crate::replies::FutureDated;
use crate::routing::{self, Command, CommandSigner};
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
    /// Live User changes (status, certificates), journalled before they apply.
    pub user_changes: UserChangeLog,
    /// When the registry's overlay is folded into a new base, in the background.
    pub compaction: Compaction,
    /// Serialises writers of `registry`, `register` and `user_certs` (readers never wait).
    change_lock: tokio::sync::Mutex<()>,
    pub metrics: Metrics,
    /// The audit trail: one record per request decision (and per delivery attempt).
    pub audit: Audit,
    /// Signed routing to the comms-hub network (absent: device requests are acknowledged and
    /// go nowhere, which only a configuration without `[routing]` chooses).
    pub routing: Option<Routing>,
    /// The DCC Alerts registration changes call for, a batch at a time, for the replies task
    /// (bounded: at the bound a change waits, and so does its admin caller).
    pub raised: Option<tokio::sync::mpsc::Sender<ChangeAlerts>>,
}

/// What a permitted device request needs to reach the hub network.
pub struct Routing {
    /// The access-control broker key (`OU=04`) that signs every command.
    pub signer: CommandSigner,
    pub dispatcher: Arc<Dispatcher>,
    pub future_dated: Arc<FutureDated>,
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
    pub user_changes: UserChangeLog,
    /// The DCC XML-signing key.
    pub signer: Signer,
    pub audit: Audit,
    pub routing: Option<Routing>,
    pub raised: Option<tokio::sync::mpsc::Sender<ChangeAlerts>>,
}

impl Gateway {
    pub fn new(loaded: Loaded, xml_limits: duis::Limits, metrics: Metrics) -> Arc<Self> {
        let Loaded {
            register,
            registry,
            user_certs,
            replay,
            changes,
            user_changes,
            signer,
            audit,
            routing,
            raised,
        } = loaded;
        // Operators' view (issue 6): cache sizes and the signing certificate's expiry.
        metrics.cache_loaded("users", register.len(), false);
        metrics.cache_loaded("devices", registry.device_count(), false);
        metrics.cache_loaded("registrations", registry.registration_count(), false);
        metrics.cache_loaded("user_certs", user_certs.len(), false);
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
            register: ArcSwap::from_pointee(register),
            registry: ArcSwap::from_pointee(registry),
            xml_limits,
            c14n_limits,
            user_certs: ArcSwap::from_pointee(user_certs),
            signer,
            replay,
            changes,
            user_changes,
            compaction: Compaction::default(),
            change_lock: tokio::sync::Mutex::new(()),
            metrics,
            audit,
            routing,
            raised,
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
        let span = tracing::info_span!(
            "request",
            service = service.label(),
            request_id = tracing::field::Empty,
            srv = tracing::field::Empty,
            role = tracing::field::Empty
        );
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
            // The answer leaves once its audit record is on disk (group commit: many requests
            // share one fsync).
            let waiting = Instant::now();
            let result = audited.durable().await;
            AuditWaited {
                result,
                waited: waiting.elapsed(),
            }
            .emit(&self.metrics);
            answer
        }
        .instrument(span)
        .await
    }

    /// Answers a request refused before its body reached the parser (content type, size,
    /// timeout), through the same respond-and-record path. Its audit record is queued but not
    /// waited for: such requests carry no identity beyond the TLS session's.
    pub fn refuse_early(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        error: Error,
        now: OffsetDateTime,
    ) -> Answer {
        let partial = PartialHeader::default();
        let (answer, _queued) = self.respond(
            service,
            peer,
            partial,
            Err(error),
            now,
            RequestTrace::start(),
        );
        answer
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
        // Record (issue 6): metrics, log line and audit record, from one event.
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
        let register = self.register.load();
        // Identify: the TLS identity was read once at accept; the originator must be its party's.
        checks::check_originator(&register, peer.user_id, header.request_id.originator)
            .map_err(refuse)?;
        self.verify_signature(
            body,
            request.signature.clone(),
            header.request_id.originator,
            now,
        )
        .map_err(refuse)?;
        trace.lap(Stage::Verify);
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
        let permit = auth::authorize(&access, &register, &self.registry.load())
            .map_err(|d| refuse(Error::Denied(d)))?;
        trace.permitted(&permit);
        trace.lap(Stage::Authorize);
        // 8.2 Read Inventory (Command Variant 8) is answered here, from the cache: I0 with data.
        let payload = if entry.body_element == "ReadInventory" {
            let span = body.get(request.body.clone()).unwrap_or_default();
            let query = inventory::parse_read_inventory(span)
                .map_err(|e| refuse(Error::InventoryQuery(e)))?;
            let xml = inventory_payload(&self.registry.load(), query)
                .ok_or_else(|| refuse(Error::InventoryEmpty))?;
            Some(ResponsePayload::Raw(xml))
        } else {
            None
        };
        // Sign: a device command is made from the permit alone and signed with the broker key.
        // The request's Body stands in for the GBCS command the DCC would build from it.
        let command = match &self.routing {
            Some(routing)
                if !entry.non_device && routing::sent_to_device(header.command_variant) =>
            {
                let payload = body.get(request.body.clone()).unwrap_or_default().to_vec();
                let execute_at = request
                    .execution_date_time
                    .is_some()
                    .then(|| at.unix_timestamp());
                let command = Command::from_permit(
                    &permit,
                    header.request_id,
                    header.command_variant,
                    execute_at,
                    payload,
                )
                .and_then(|c| routing.signer.sign(&c))
                .map_err(|e| refuse(Error::Command(e)))?;
                Some((routing, command, execute_at))
            }
            _ => None,
        };
        // Replay: the counter is checked and journalled last, so that only accepted requests
        // move an originator's high-water mark.
        self.replay
            .advance(&header.request_id, header.command_variant)
            .await
            .map_err(|e| refuse(Error::Replay(e)))?;
        trace.lap(Stage::Replay);
        // Route and dispatch: the command is on disk before the I99 promises a response.
        if let Some((routing, command, execute_at)) = command {
            routing
                .dispatcher
                .record(&command)
                .await
                .map_err(|e| refuse(Error::Pending(e)))?;
            if execute_at.is_some() {
                routing.future_dated.insert(header.request_id, header.srv);
            }
            let dispatcher = Arc::clone(&routing.dispatcher);
            tokio::spawn(async move {
                if let Err(e) = dispatcher.dispatch(command).await {
                    tracing::error!(error = %e, "Dispatch failed; the command is answered after a restart.");
                }
            });
            trace.lap(Stage::Dispatch);
        }
        Ok((partial, payload))
    }
}

/// Why a batch of registration changes was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the changes cannot apply")]
    Invalid(#[source] ChangeError),
    #[error("the user changes cannot apply")]
    InvalidUser(#[source] UserChangeError),
    #[error("the change log could not be written")]
    Journal(#[source] JournalError),
}

impl Gateway {
    /// Applies a batch of registration changes atomically: checked against the current
    /// snapshot, journalled, and only then made visible to requests (one swap). The DCC Alerts
    /// the changes call for go to the replies task; should they not reach the outbox (a crash,
    /// the task gone), the change log still owes them and the next start raises them again.
    /// Once the overlay passes its bound, a compaction starts in the background.
    pub async fn apply_changes(self: &Arc<Self>, batch: &[Change]) -> Result<(), ApplyError> {
        let _writer = self.change_lock.lock().await;
        let current = self.registry.load_full();
        let (next, events) = alerts::apply_batch(&current, batch).map_err(ApplyError::Invalid)?;
        let at = OffsetDateTime::now_utc().unix_timestamp();
        let seq = self
            .changes
            .append(at, batch)
            .await
            .map_err(ApplyError::Journal)?;
        self.metrics
            .cache_loaded("devices", next.device_count(), true);
        self.metrics
            .cache_loaded("registrations", next.registration_count(), true);
        let next = Arc::new(next);
        self.registry.store(Arc::clone(&next));
        // After the swap, so that the replies task routes them against a snapshot with the
        // batch in it (as after a restart).
        if let (Some(raised), false) = (&self.raised, events.is_empty()) {
            self.metrics.alerts.owed_change_batches.inc();
            if raised.send(ChangeAlerts { seq, at, events }).await.is_err() {
                tracing::error!(
                    seq,
                    "The replies task has stopped; this change's DCC Alerts are raised at the next start."
                );
            }
        }
        if self.compaction.after_change(&next, batch) {
            tokio::spawn(Arc::clone(self).compact(next));
        }
        Ok(())
    }

    /// Folds `from`'s overlay into a new base off the async workers, then (as a writer) swaps
    /// it in with the batches applied meanwhile. On failure the live snapshot simply stays.
    async fn compact(self: Arc<Self>, from: Arc<Snapshot>) {
        let overlay = from.overlay_len();
        let compacted = tokio::task::spawn_blocking(move || from.compact()).await;
        let _writer = self.change_lock.lock().await;
        match compacted.map(|c| self.compaction.finish(c)) {
            Ok(Ok(next)) => {
                tracing::info!(overlay, "Registration cache compacted.");
                self.registry.store(Arc::new(next));
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Compaction result dropped: a change did not apply again.")
            }
            Err(e) => {
                self.compaction.abandon();
                tracing::error!(error = %e, "Compaction failed.");
            }
        }
    }

    /// Applies a batch of User changes (status, certificates) atomically and durably, as
    /// `apply_changes` does registration changes. The store is swapped before the register, so
    /// a batch that adds a certificate and lifts a suspension never admits a request early.
    pub async fn apply_user_changes(&self, batch: &[UserChange]) -> Result<(), ApplyError> {
        let _writer = self.change_lock.lock().await;
        let (next_register, next_certs) =
            register::apply_user_changes(&self.register.load(), &self.user_certs.load(), batch)
                .map_err(ApplyError::InvalidUser)?;
        self.user_changes
            .append(batch)
            .await
            .map_err(ApplyError::Journal)?;
        self.user_certs.store(Arc::new(next_certs));
        self.register.store(Arc::new(next_register));
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
        let prepared =
            xmldsig::prepare(body, &self.c14n_limits).map_err(|e| Error::Signature(e.into()))?;
        let sig = &prepared.signature;
        // Two readers that disagree on where the signature is: the request is not signed as
        // the parser read it.
        if sig.signature != span {
            return Err(Error::Signature(ProfileError::Missing.into()));
        }
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
        payload: &ResponsePayload,
    ) -> Answer {
        let unsigned = write_unsigned(request_id, srv, code, now, payload);
        match xmldsig::sign_document(&unsigned, &self.signer, &self.c14n_limits) {
            Ok(body) => Answer { status, code, body },
            Err(e) => {
                tracing::error!(error = %e, "Signing an answer failed; check the DCC signing key.");
                let (code, status, _) = Error::SignAnswer.classify();
                let body = write_unsigned(request_id, srv, code, now, &ResponsePayload::None);
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
    payload: &ResponsePayload,
) -> String {
    let header = ResponseHeaderOut {
        request_id,
        response_id: None,
        code,
        date_time: now,
    };
    match srv {
        Some(srv) => duis::write_response(&header, srv.service_reference(), srv, payload),
        None => duis::write_header_only_response(&header),
    }
}

/// 8.2 Read Inventory from the cache: the premises (comms hub and every device behind it) of the
/// device searched for, or of the devices on the meter point searched for. `None` when nothing
/// matches (the cache holds no addresses, so a UPRN or address search never matches).
fn inventory_payload(registry: &Snapshot, query: InventoryQuery) -> Option<String> {
    let anchor = match query {
        InventoryQuery::Device(id) => id,
        InventoryQuery::Mpxn(m) => registry.devices_at(m).map(|d| d.id).min()?,
        InventoryQuery::Address => return None,
    };
    let premises = registry.premises(anchor);
    let devices: Vec<InventoryDevice<'_>> = premises
        .iter()
        .map(|d| {
            let model = registry.model(d.id);
            InventoryDevice {
                id: d.id,
                device_type: d.device_type,
                status: d.status,
                manufacturer: model.map_or("", |m| m.manufacturer.as_str()),
                model: model.map_or("", |m| m.model.as_str()),
                mpxn: d.mpxn,
                csp_region: Some(d.region.duis_name()),
            }
        })
        .collect();
    (!devices.is_empty()).then(|| inventory::write_dsp_inventory(&devices))
}
