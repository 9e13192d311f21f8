//! The gateway's [`Executor`]: held requests and schedule executions go through the pipeline
//! (access control again, the command made and routed); what cannot go ends in a signed message
//! in the outbox — a held request's Service Response with the refusal's code, a schedule
//! execution's `CommandFailure` DCC Alert to its owner.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::alerts::DccEvent;
use crate::domain::{RequestId, ResponseCode, UserId};
use crate::duis::outbound::{
    write_dcc_alert, write_service_response, DccAlertBody, DccAlertOut, DccAlertPayload,
    DeviceOutcome,
};
use crate::duis::schedule::{execution_request_id, ScheduleId};
use crate::offload::CHUNK;
use crate::outbox::{Outbound, OutboundKind, Outbox};
use crate::pipeline::Gateway;
use crate::store::{Held, Schedule};
use crate::xmldsig;

use super::Executor;

/// How long to wait before offering the outbox a message again when it refuses.
const ENQUEUE_RETRY: Duration = Duration::from_secs(1);

pub(super) struct Deliver {
    gateway: Arc<Gateway>,
    outbox: Arc<Outbox>,
}

/// A message to sign and enqueue.
pub(super) struct Unsigned {
    pub user: UserId,
    pub kind: OutboundKind,
    pub xml: String,
    /// When what it reports arose (unix seconds).
    pub raised_at: i64,
}

impl Deliver {
    pub(super) fn new(gateway: &Arc<Gateway>, outbox: &Arc<Outbox>) -> Self {
        Self {
            gateway: Arc::clone(gateway),
            outbox: Arc::clone(outbox),
        }
    }

    /// A held request's final message: its Service Response with `code` and no data.
    async fn refuse_held(&self, held: &Held, code: ResponseCode, now: i64) {
        let outcome = DeviceOutcome::Failed(code);
        let xml = write_service_response(&held.request_id, held.srv, &outcome, at(now));
        let kind = OutboundKind::Response {
            request_id: held.request_id,
            code,
        };
        let message = Unsigned {
            user: held.request_id.originator,
            kind,
            xml,
            raised_at: now,
        };
        self.deliver(vec![message]).await;
    }

    /// The `CommandFailure` DCC Alert about execution `request_id` of `schedule` on `device`,
    /// for the schedule's owner; its `ResponseID` counter is the execution's.
    pub(super) fn command_failure(
        request_id: RequestId,
        schedule: ScheduleId,
        now: i64,
    ) -> Option<Unsigned> {
        let event = DccEvent::CommandFailure {
            request_id,
            device: request_id.target,
            dsp_schedule_id: Some(schedule.get()),
        };
        let code = event.code();
        let payload = DccAlertPayload::CommandFailure {
            request_id,
            dsp_schedule_id: Some(schedule.get()),
            device: request_id.target,
        };
        // A command failure passes every check a DCC Alert body has.
        let body = DccAlertBody::new(payload).ok()?;
        let alert = DccAlertOut {
            user: request_id.originator,
            counter: request_id.counter,
            request_id: Some(request_id),
            code,
            throttled: None,
            body: &body,
        };
        Some(Unsigned {
            user: request_id.originator,
            kind: OutboundKind::DccAlert { code },
            xml: write_dcc_alert(&alert, at(now)),
            raised_at: now,
        })
    }

    /// Signs and enqueues messages in one outbox write; offers them again until the outbox
    /// takes them, so that what they end is only let go once they are on disk. A message that
    /// cannot be signed is logged and left out.
    pub(super) async fn deliver(&self, messages: Vec<Unsigned>) {
        let mut batch = Vec::with_capacity(messages.len());
        let g = &self.gateway;
        let mut bodies = Vec::with_capacity(messages.len());
        // Off the async workers, a few at a time (`offload`).
        for chunk in messages.chunks(CHUNK) {
            let sign = |m: &Unsigned| xmldsig::sign_document(&m.xml, &g.signer, &g.c14n_limits);
            bodies.extend(
                g.offload
                    .run(|| chunk.iter().map(sign).collect::<Vec<_>>())
                    .await,
            );
        }
        for (m, body) in messages.into_iter().zip(bodies) {
            let Ok(body) = body else {
                tracing::error!("Signing a DSP message failed; check the DCC signing key.");
                continue;
            };
            batch.push(Outbound {
                id: self.outbox.next_id(),
                user: m.user,
                kind: m.kind,
                body: body.into_bytes(),
                raised_at: m.raised_at.saturating_mul(1000),
            });
        }
        if batch.is_empty() {
            return;
        }
        while let Err(e) = self.outbox.enqueue(batch.clone()).await {
            tracing::error!(error = %e, "The outbox refused DSP messages; trying again.");
            tokio::time::sleep(ENQUEUE_RETRY).await;
        }
    }
}

impl Deliver {
    /// The `CommandFailure` DCC Alert about execution `k` of `schedule`, to its owner.
    async fn report_failure(&self, schedule: &Schedule, k: u32, now: i64) {
        let id = execution_request_id(schedule.owner, schedule.spec.device, schedule.id, k);
        let message = Self::command_failure(id, schedule.id, now);
        self.deliver(message.into_iter().collect()).await;
    }

    fn executed(&self, kind: &'static str, outcome: &'static str) {
        self.gateway.metrics.dsp.executed(kind, outcome);
    }
}

impl Executor for Deliver {
    async fn release(&self, held: &Held, now: i64) {
        match self.gateway.release_held(held, at(now)).await {
            Ok(()) => self.executed("held", "sent"),
            Err(code) => {
                tracing::info!(request_id = %held.request_id, %code, "A held request was refused at its execution time.");
                self.executed("held", "refused");
                self.refuse_held(held, code, now).await;
            }
        }
    }

    async fn expire(&self, held: &Held, now: i64) {
        tracing::warn!(request_id = %held.request_id, due = held.due, "A held request's window passed while the gateway was stopped; it is answered E30.");
        self.executed("held", "late");
        self.refuse_held(held, ResponseCode::E30, now).await;
    }

    async fn run(&self, schedule: &Schedule, k: u32, now: i64) {
        match self.gateway.run_scheduled(schedule, k, at(now)).await {
            Ok(()) => self.executed("scheduled", "sent"),
            Err(code) => {
                tracing::info!(schedule = %schedule.id, k, %code, "A DSP schedule's execution was refused.");
                self.executed("scheduled", "refused");
                self.report_failure(schedule, k, now).await;
            }
        }
    }

    async fn missed(&self, schedule: &Schedule, k: u32, now: i64) {
        tracing::warn!(schedule = %schedule.id, k, "A DSP schedule's executions passed their window while the gateway was stopped; reported as a CommandFailure.");
        self.executed("scheduled", "late");
        self.report_failure(schedule, k, now).await;
    }
}

pub(super) fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
