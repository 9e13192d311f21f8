//! A request's fixed sequence of phases, top to bottom: parse → identify → admit (or shed at
//! once, `admit.rs`) → verify signature →
//! authorize → plan (the answer, and the effects that keep its promise: the GBCS command signed
//! for the hub network, a pre-command remembered or used, a command for local delivery) →
//! replay → carry out the effects (route and dispatch, …) → respond, then `record`, which always
//! runs and is the one place that emits the request's metrics, log event and audit record. The
//! answer leaves only once its decision and its audit record are durable, in one commit of the
//! request log (`durable.rs`). Every answer is signed.
//!
//! The flows plan in their own files: `command.rs` (a device request's GBCS command, Command
//! Variants 1–3), `critical.rs` (Transform and signed pre-commands, 4–7), `local.rs` (local
//! delivery and 8.13), `held.rs` (future-dated requests the DSP holds, released at their time),
//! `schedules.rs` (DSP schedules, 5.1–5.3), `plan.rs` (the choice between them, and the
//! effects); `anomaly.rs` screens a plan against the anomaly thresholds (quarantine in its
//! place), `quarantine.rs` releases and deletes quarantined requests; `record.rs` responds and
//! records.

mod admit;
mod anomaly;
mod answer;
mod command;
mod context;
mod critical;
mod dcc;
mod durable;
mod executed;
mod held;
mod local;
mod plan;
mod quarantine;
mod record;
mod recovery;
mod schedules;
mod signature;

use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::audit::Audit;
use crate::auth::{self, AccessRequest, Permit};
use crate::catalogue::{Catalogue, SrvEntry};
use crate::checks;
use crate::dispatch::Dispatcher;
use crate::domain::DuisService;
use crate::duis::{self, ParsedRequest, PartialHeader};
use crate::error::{Error, Resource};
use crate::firmware::Distributions;
use crate::metrics::{Metrics, RequestTrace, Stage};
use crate::offload::Offload;
use crate::outbox::Outbox;
use crate::register::PartyRegister;
use crate::routing::CommandSigner;
use crate::signer::Signer;
use crate::state::{Rules, State};
use crate::store::{ReplayGuard, RequestLog, Reservation};
use crate::tls::PeerIdentity;
use crate::xmldsig::c14n::C14nLimits;

pub use admit::{Gate, Ticket};
pub use anomaly::{Anomaly, AnomalyConfig};
pub use answer::Answer;
pub use critical::{HeldPreCommand, Ledgers, GBCS_VERSION};
pub use durable::entry_key;
pub use held::Dsp;
pub use local::LocalCommand;
pub use quarantine::{QuarantineAct, ThresholdsRefused};
pub use recovery::{checkpoint, Recovery, Stores};

use durable::Prepared;
use plan::{Planning, Reply};

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
    /// Each originator's last accepted counter.
    pub replay: Arc<ReplayGuard>,
    /// Where each accepted request's decision (its mark, its commands and holds) is made
    /// durable, in one commit.
    pub log: Arc<dyn RequestLog>,
    pub metrics: Metrics,
    /// The audit trail: one record per request decision (and per delivery attempt).
    pub audit: Audit,
    /// Signed routing to the comms-hub network.
    pub routing: Routing,
    /// The dated rule sets: each request is decided under the version in force at its
    /// execution time.
    pub rules: Arc<Rules>,
    /// What the DSP keeps for later: held future-dated requests and DSP schedules.
    pub dsp: Dsp,
    /// Pre-commands and commands for local delivery, until used.
    pub ledgers: Ledgers,
    /// Every asynchronous message to a User, until it is delivered.
    pub outbox: Arc<Outbox>,
    /// Threshold anomaly detection: thresholds, counts, quarantined requests.
    pub anomaly: Anomaly,
    /// Which parsed requests are taken on before their signature is verified.
    pub admission: Gate,
    /// Where signing and verifying run: off the async workers, so many at once.
    pub offload: Offload,
}

/// What a permitted device request needs to reach the hub network.
pub struct Routing {
    /// The access-control broker key (`OU=04`) that signs every command.
    pub signer: CommandSigner,
    pub dispatcher: Arc<Dispatcher>,
    /// Firmware distributions in progress (11.1, 11.4).
    pub firmware: Arc<Distributions>,
}

/// What an accepted request gets: its answer, and whether a final message follows it.
struct Planned {
    reply: Reply,
    follows: bool,
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
    pub log: Arc<dyn RequestLog>,
    /// The DCC XML-signing key.
    pub signer: Signer,
    pub audit: Audit,
    pub routing: Routing,
    pub rules: Arc<Rules>,
    pub dsp: Dsp,
    pub ledgers: Ledgers,
    pub outbox: Arc<Outbox>,
    pub anomaly: Anomaly,
    pub admission: Gate,
    pub offload: Offload,
}

impl Gateway {
    pub fn new(parts: Parts, xml_limits: duis::Limits, metrics: Metrics) -> Arc<Self> {
        let Parts {
            state,
            replay,
            log,
            signer,
            audit,
            routing,
            rules,
            dsp,
            ledgers,
            outbox,
            anomaly,
            admission,
            offload,
        } = parts;
        metrics.certificate_expires(
            "dcc_xml_signing",
            signer.identity().not_after.unix_timestamp(),
        );
        let quarantined = anomaly.quarantine.len();
        metrics
            .anomaly
            .held
            .set(i64::try_from(quarantined).unwrap_or(i64::MAX));
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
            log,
            metrics,
            audit,
            routing,
            rules,
            dsp,
            ledgers,
            outbox,
            anomaly,
            admission,
            offload,
        })
    }

    /// Runs one request through the phases on the calling task. `now` is the time the request
    /// was received. (`Gateway::serve` runs the phases after admission on the main runtime.)
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
            match self.take_on(service, peer, body, now, &mut trace) {
                Ok(taken) => self.finish(service, peer, taken, body, now, trace).await,
                Err(refusal) => self.refuse(service, peer, refusal, now, trace).await,
            }
        }
        .instrument(request_span(service))
        .await
    }

    /// The phases after admission, then respond and record; the answer once its record is
    /// durable. The request's admission ticket is given back only then.
    async fn finish(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        taken: TakenOn,
        body: &[u8],
        now: OffsetDateTime,
        mut trace: RequestTrace,
    ) -> Answer {
        let ticket = taken.ticket;
        let processed = self.process(taken.request, body, now, &mut trace).await;
        let (partial, outcome, prepared, kept) = match processed {
            Ok((partial, planned, prepared)) => {
                let kept = partial.clone();
                (partial, Ok(planned), prepared, kept)
            }
            Err(Refusal { error, partial }) => {
                let none = PartialHeader::default();
                (partial, Err(error), Prepared::default(), none)
            }
        };
        let (answer, audited) = self
            .offload
            .run(|| self.respond(service, peer, partial, outcome, now, trace))
            .await;
        let answer = match self.once_recorded(answer, audited, prepared).await {
            Ok(answer) => answer,
            Err(e) => self.refuse_after_commit(service, peer, kept, e, now).await,
        };
        drop(ticket);
        answer
    }

    /// Parse, identify, admit: the phases that decide whether the gateway takes a request on,
    /// cheap enough to run on the DUIS port's front lane.
    fn take_on(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        body: &[u8],
        now: OffsetDateTime,
        trace: &mut RequestTrace,
    ) -> Result<TakenOn, Refusal> {
        // Parse.
        let request = duis::parse_request(body, &self.xml_limits).map_err(|f| Refusal {
            error: f.error.into(),
            partial: f.partial,
        })?;
        trace.lap(Stage::Parse);
        let header = &request.header;
        let refuse = |error: Error| Refusal {
            error,
            partial: partial_of(&request),
        };
        let now_rules = Arc::clone(self.rules.book().in_force(now.unix_timestamp()));
        trace.ruled(&now_rules);
        checks::check_service(&now_rules.catalogue, service, &request).map_err(refuse)?;
        // Identify: the TLS identity was read once at accept; the originator must be its party's.
        checks::check_originator(
            &self.state.register(),
            peer.user_id,
            header.request_id.originator,
        )
        .map_err(refuse)?;
        // Admit, or shed at once: `admit.rs`.
        let ticket = self.admit(header).map_err(refuse)?;
        Ok(TakenOn { request, ticket })
    }

    async fn process(
        &self,
        request: ParsedRequest,
        body: &[u8],
        now: OffsetDateTime,
        trace: &mut RequestTrace,
    ) -> Result<(PartialHeader, Planned, Prepared), Refusal> {
        let partial = partial_of(&request);
        let refuse = |error: Error| Refusal {
            error,
            partial: partial.clone(),
        };
        self.fetch_precommand(&request).await;
        let book = self.rules.book();
        // One register for the rest of the request, whatever changes meanwhile.
        let register = self.state.register();
        // Verify to replay: the ECDSA verify and the signed command, off the async workers.
        let (plan, mark) = self
            .offload
            .run(|| -> Result<_, Error> {
                self.verify_signature(body, &request, now)?;
                trace.lap(Stage::Verify);
                // Authorize: at the execution time for future-dated requests, else now.
                let at = execution_time(&request, now)?;
                let at_rules = Arc::clone(book.in_force(at.unix_timestamp()));
                trace.ruled(&at_rules);
                let (permit, entry) =
                    self.authorize(&at_rules.catalogue, &request, &register, at)?;
                trace.permitted(&permit);
                trace.lap(Stage::Authorize);
                let planning = Planning {
                    entry,
                    permit: &permit,
                    request: &request,
                    body,
                    at,
                    now,
                };
                let plan = self.plan(&planning)?;
                let reused = plan.uses_precommand();
                // Anomaly detection: the plan, or the request's quarantine in its place.
                let plan = self.screen(plan, &planning)?;
                // Replay: the counter is checked last, so that only accepted requests move an
                // originator's high-water mark; it is reserved now and made durable with the
                // effects' records, in one commit. A signed pre-command's counter was accepted
                // with its Transform; the pre-command it uses (below) is what it may use once.
                let mark = self.reserve_counter(&request, now, reused)?;
                trace.lap(Stage::Replay);
                Ok((plan, mark))
            })
            .await
            .map_err(refuse)?;
        // Route and dispatch, and whatever else the plan promises: on disk before the answer.
        let (planned, prepared) = self.settle(plan, mark, now, trace).await.map_err(refuse)?;
        Ok((partial, planned, prepared))
    }

    /// Carries out a plan's effects with the counter's reservation up to their commit, which
    /// the answer makes with its audit record; what the answer needs.
    async fn settle(
        &self,
        plan: plan::Plan,
        mark: Option<Reservation>,
        now: OffsetDateTime,
        trace: &mut RequestTrace,
    ) -> Result<(Planned, Prepared), Error> {
        let follows = plan.follows();
        let effects = !plan.effects.is_empty();
        let prepared = self
            .carry_out_all_but_commit(plan.effects, mark, now.unix_timestamp())
            .await?;
        if effects {
            trace.lap(Stage::Dispatch);
        }
        let planned = Planned {
            reply: plan.reply,
            follows,
        };
        Ok((planned, prepared))
    }

    /// The dated rule set in force at `at` (unix seconds).
    pub(crate) fn rule_set_at(&self, at: i64) -> Arc<crate::rules::RuleSet> {
        Arc::clone(self.rules.book().in_force(at))
    }

    /// Authorize under `catalogue` (the rule set in force at the execution time `at`): the
    /// permit, and the SRV's entry under those rules.
    fn authorize<'c>(
        &self,
        catalogue: &'c Catalogue,
        request: &ParsedRequest,
        register: &PartyRegister,
        at: OffsetDateTime,
    ) -> Result<(Permit, &'c SrvEntry), Error> {
        let header = &request.header;
        let entry = catalogue
            .get(&header.srv)
            .ok_or(Error::UnknownSrv(header.srv))?;
        let access = AccessRequest {
            originator: header.request_id.originator,
            target: header.request_id.target,
            service: entry,
            at: at.unix_timestamp(),
        };
        let permit =
            auth::authorize(&access, register, &self.state.registry()).map_err(Error::Denied)?;
        Ok((permit, entry))
    }

    /// The request's counter checked and reserved (made durable by `carry_out`'s commit): taken
    /// only while the audit trail can record the answer. A signed pre-command (`reused`) spends
    /// none: it reuses its Transform's RequestID, whose counter was spent then.
    fn reserve_counter(
        &self,
        request: &ParsedRequest,
        now: OffsetDateTime,
        reused: bool,
    ) -> Result<Option<Reservation>, Error> {
        if self.audit.is_failing() {
            return Err(Error::resource(
                Resource::AuditTrail,
                std::io::Error::other("the audit trail's last write failed"),
            ));
        }
        if reused {
            return Ok(None);
        }
        // Nanoseconds since 1970 fit a u64 until the year 2554.
        let now_ns = u64::try_from(now.unix_timestamp_nanos()).unwrap_or(0);
        let header = &request.header;
        self.replay
            .reserve(&header.request_id, header.command_variant, now_ns)
            .map(Some)
            .map_err(Error::Replay)
    }
}

/// What a request admitted has read of itself, and its admission ticket (none when admission
/// control is off).
struct TakenOn {
    request: ParsedRequest,
    ticket: Option<Ticket>,
}

/// The header's parts an answer echoes.
fn partial_of(request: &ParsedRequest) -> PartialHeader {
    let header = &request.header;
    PartialHeader {
        request_id: Some(header.request_id),
        service_reference: Some(header.service_reference),
        srv: Some(header.srv),
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
