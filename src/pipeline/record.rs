//! Respond, then record: every answer is written and signed here, and recorded (metrics, log
//! line, audit record: one event); it leaves once its audit record is durable (`durable.rs`:
//! with its decision, in one commit), except a shed request's (`admit.rs`). Refusals up to
//! admission are signed where they are decided (the DUIS port's front lane), not in the
//! offload pool, so that they never wait behind admitted work.

use time::OffsetDateTime;
use tracing::Instrument;

use crate::audit::AuditEvent;
use crate::domain::{DuisService, ResponseCode};
use crate::duis::{PartialHeader, ResponsePayload};
use crate::error::Error;
use crate::metrics::{RequestAnswered, RequestTrace, Stage};
use crate::tls::PeerIdentity;

use super::durable::Prepared;
use super::plan::Reply;
use super::{request_span, Answer, Gateway, Planned, Refusal};

impl Gateway {
    /// A request refused up to its admission: answered at once when shed (`admit.rs`), else
    /// once its record is durable.
    pub(super) async fn refuse(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        refusal: Refusal,
        now: OffsetDateTime,
        trace: RequestTrace,
    ) -> Answer {
        let Refusal { error, partial } = refusal;
        let shed = matches!(error, Error::Shed(_));
        let (answer, audited) = self.respond(service, peer, partial, Err(error), now, trace);
        if shed {
            return self.answer_shed(answer, audited);
        }
        self.once_recorded(answer, audited, Prepared::default())
            .await
            .unwrap_or_else(|_| Answer::withheld())
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
            self.once_recorded(answer, audited, Prepared::default())
                .await
                .unwrap_or_else(|_| Answer::withheld())
        }
        .instrument(request_span(service))
        .await
    }

    /// Respond, then record: the one place a request's metrics, log event and audit record are
    /// emitted. The receipt says when the audit record is durable. `outcome` is the accepted
    /// request's answer (`I0` with its data, or `I99`), or the refusal.
    pub(super) fn respond(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        partial: PartialHeader,
        outcome: Result<Planned, Error>,
        now: OffsetDateTime,
        mut trace: RequestTrace,
    ) -> (Answer, AuditEvent) {
        // Only SRVs in the catalogue are echoed: the schema's enumeration holds no others, and
        // the metric label stays a closed set.
        let srv = partial.srv.filter(|s| self.catalogue.get(s).is_some());
        let (code, status, payload, follows, refusal) = match outcome {
            Ok(Planned {
                reply: Reply::Done(payload),
                follows,
            }) => (ResponseCode::I0, 200, payload, follows, None),
            Ok(Planned {
                reply: Reply::Acknowledged,
                follows,
            }) => (ResponseCode::I99, 200, ResponsePayload::None, follows, None),
            Err(error) => {
                let (code, status, _) = error.classify();
                (code, status, ResponsePayload::None, false, Some(error))
            }
        };
        trace.mark();
        let answer = self.write(partial.request_id, srv, code, status, now, &payload);
        trace.lap(Stage::Sign);
        // Record: metrics, log line and audit record, from one event.
        let ruled = trace.rules().map_or(self.catalogue, |r| &r.catalogue);
        let entry = srv.and_then(|s| ruled.get(&s));
        let audited = RequestAnswered {
            service,
            peer,
            request_id: partial.request_id,
            srv,
            on_demand: entry.is_some_and(|e| e.on_demand),
            // What the plan promised: a final message, asynchronously.
            response_follows: follows,
            code,
            refusal: refusal.as_ref(),
            trace: &trace,
            received: now,
            bytes_out: answer.body.len(),
        }
        .emit(&self.metrics);
        (answer, audited)
    }
}
