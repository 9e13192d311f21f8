//! Admission: the phase between parse and signature check that decides whether the gateway takes
//! a request on (`crate::admission` decides; this file holds its state under one lock, reads
//! the clock and emits the metrics). An admitted request holds a [`Ticket`] until its answer is
//! recorded; dropping the ticket gives its slot back and feeds its latency to the limit.
//!
//! With the DUIS port on a runtime of its own (`[admission] front_threads`), [`Gateway::serve`]
//! decides there and hands an admitted request's further phases to the main runtime: a shed
//! request is answered without waiting behind admitted work.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::runtime::Handle;
use tracing::Instrument;

use crate::admission::{AdmissionConfig, Admitted, ClassTable, ConfigError, Limiter};
use crate::audit::{self, AuditError, AuditEvent};
use crate::catalogue::Catalogue;
use crate::domain::{DuisService, Srv, UserId};
use crate::duis::RequestHeader;
use crate::error::Error;
use crate::metrics::{
    AdmissionDecided, AdmissionMetrics, AuditWaited, LimitChanged, Metrics, RequestTrace,
};
use crate::store::{Decision, Entry, EntryKind};
use crate::tls::PeerIdentity;

use super::{request_span, Answer, Gateway};

/// Admission control's gate: the limiter, the class of every SRV, and the clock it runs on.
pub struct Gate {
    enabled: bool,
    classes: ClassTable,
    shared: Arc<Shared>,
    /// Where admitted requests run when the DUIS port has a runtime of its own: the runtime
    /// the gateway was started on.
    work: Option<Handle>,
}

struct Shared {
    limiter: Mutex<Limiter>,
    epoch: Instant,
    metrics: AdmissionMetrics,
}

/// An admitted request's slot, given back (and its latency sampled) when dropped.
pub struct Ticket {
    admitted: Admitted,
    shared: Arc<Shared>,
}

impl Gate {
    /// Admission under `config`, its classes from the built-in catalogue, its metrics in
    /// `metrics`; a configuration out of range is refused (start-up fails with its key).
    pub fn new(config: &AdmissionConfig, metrics: &Metrics) -> Result<Self, ConfigError> {
        config.validate()?;
        let (catalogue, metrics) = (Catalogue::builtin(), metrics.admission.clone());
        let limiter = Limiter::new(config.clone());
        LimitChanged {
            from: limiter.limit(),
            to: limiter.limit(),
        }
        .emit(&metrics);
        let work = (config.front_threads > 0)
            .then(Handle::try_current)
            .and_then(Result::ok);
        Ok(Self {
            enabled: config.enabled,
            classes: ClassTable::new(catalogue),
            work,
            shared: Arc::new(Shared {
                limiter: Mutex::new(limiter),
                epoch: Instant::now(),
                metrics,
            }),
        })
    }

    /// Admits a request for `srv` from `user`: its ticket (none when admission control is off),
    /// or the shed refusal (`E60`/`E61`), decided at once.
    pub fn admit(&self, user: UserId, srv: &Srv) -> Result<Option<Ticket>, Error> {
        if !self.enabled {
            return Ok(None);
        }
        let class = self.classes.get(srv);
        let now = self.shared.now_ns();
        let mut limiter = self.shared.lock();
        let decision = limiter.admit(user, class, now);
        AdmissionDecided {
            class,
            decision: decision.map(|_| ()),
            limit: limiter.limit(),
            inflight: limiter.inflight(),
        }
        .emit(&self.shared.metrics);
        drop(limiter);
        match decision {
            Ok(admitted) => Ok(Some(Ticket {
                admitted,
                shared: Arc::clone(&self.shared),
            })),
            Err(shed) => Err(Error::Shed(shed)),
        }
    }

    /// The global limit and the requests in flight now.
    pub fn load(&self) -> (usize, usize) {
        let limiter = self.shared.lock();
        (limiter.limit(), limiter.inflight())
    }
}

impl Gateway {
    /// Runs one request (received at `now`) as [`Gateway::handle`] does, except that the
    /// phases after admission run on the gateway's main runtime when the DUIS port has its own
    /// (the caller's task waits for them there): parse, identify and admission, and a refusal
    /// up to them, stay on the caller's.
    pub async fn serve(
        self: &Arc<Self>,
        service: DuisService,
        peer: &PeerIdentity,
        body: Bytes,
        now: OffsetDateTime,
    ) -> Answer {
        let Some(work) = &self.admission.work else {
            return self.handle(service, peer, &body, now).await;
        };
        let span = request_span(service);
        let mut trace = RequestTrace::start();
        trace.bytes_in = body.len() as u64;
        let taken = span.in_scope(|| self.take_on(service, peer, &body, now, &mut trace));
        let taken = match taken {
            Ok(taken) => taken,
            Err(refusal) => {
                return self
                    .refuse(service, peer, refusal, now, trace)
                    .instrument(span)
                    .await
            }
        };
        let (gateway, peer) = (Arc::clone(self), *peer);
        let finished = async move {
            gateway
                .finish(service, &peer, taken, &body, now, trace)
                .await
        };
        match work.spawn(finished.instrument(span)).await {
            Ok(answer) => answer,
            Err(error) => {
                // A bug in a phase; nothing was promised, so no answer leaves.
                tracing::error!(%error, "A request's processing ended without an answer.");
                Answer::withheld()
            }
        }
    }

    /// Admits a parsed request, its originator checked: its ticket, or the shed refusal when
    /// the User or the gateway is at its bound for the request's class.
    pub(super) fn admit(&self, header: &RequestHeader) -> Result<Option<Ticket>, Error> {
        self.admission
            .admit(header.request_id.originator, &header.srv)
    }

    /// A shed request's answer leaves at once, without waiting for its audit record's commit:
    /// it promises nothing and changed nothing (no counter, no effect), and a refusal that
    /// waited for the disk would not be the fast answer shedding is for. The record is committed
    /// with the next group commit all the same; its outcome is counted as every other's.
    pub(super) fn answer_shed(&self, answer: Answer, audited: AuditEvent) -> Answer {
        let metrics = self.metrics.clone();
        let log = Arc::clone(&self.log);
        tokio::spawn(async move {
            let waiting = Instant::now();
            let result = match audit::logged(&audited) {
                Ok(bytes) => {
                    let decision = Decision {
                        mark: None,
                        entries: vec![Entry {
                            kind: EntryKind::Audit,
                            bytes,
                        }],
                    };
                    log.commit(decision)
                        .await
                        .map_err(|e| AuditError::Write(Arc::new(std::io::Error::other(e))))
                }
                Err(e) => Err(e),
            };
            AuditWaited {
                result,
                waited: waiting.elapsed(),
            }
            .emit(&metrics);
        });
        answer
    }
}

impl Shared {
    fn now_ns(&self) -> u64 {
        // Nanoseconds since start fit a u64 for 584 years.
        self.epoch.elapsed().as_nanos() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Limiter> {
        // The limiter's updates leave it consistent at every step.
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let now = self.shared.now_ns();
        let mut limiter = self.shared.lock();
        let from = limiter.limit();
        let changed = limiter.release(&self.admitted, now);
        let inflight = limiter.inflight();
        drop(limiter);
        self.shared.metrics.answered(inflight);
        if let Some(to) = changed {
            LimitChanged { from, to }.emit(&self.shared.metrics);
        }
    }
}
