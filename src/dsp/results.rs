//! The outcomes of the DSP's own commands. A schedule's execution carries a RequestID the DCC
//! minted for it ([`execution_of`]); when the schedule is one the store knows (kept, or deleted
//! or removed while this process runs), its outcome is the owner's `DSPScheduledMessage` (the
//! device's answer) or a `CommandFailure` DCC Alert (no answer: `E20`, `E21`), and is settled in
//! the pending journal once that is in the outbox. Every other outcome goes on, in order, to the
//! replies task.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::dispatch::{DispatchOutcome, Dispatcher};
use crate::domain::ResponseCode;
use crate::duis::schedule::{execution_of, write_scheduled_message, ScheduleId};
use crate::outbox::OutboundKind;
use crate::store::Schedules;

use super::executor::{at, Deliver, Unsigned};

/// Outcomes taken together, at most.
const BATCH: usize = 256;

/// Runs until the dispatcher's outcomes end or the replies task is gone.
pub(super) async fn divert(
    deliver: Arc<Deliver>,
    schedules: Arc<Schedules>,
    dispatcher: Arc<Dispatcher>,
    mut from: mpsc::Receiver<DispatchOutcome>,
    to: mpsc::Sender<DispatchOutcome>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while from.recv_many(&mut batch, BATCH).await > 0 {
        let mut ours = Vec::new();
        for outcome in batch.drain(..) {
            match execution_of(&outcome.request_id).filter(|(id, _)| schedules.knows(*id)) {
                Some((id, _)) => ours.push((id, outcome)),
                None => {
                    if to.send(outcome).await.is_err() {
                        return;
                    }
                }
            }
        }
        if ours.is_empty() {
            continue;
        }
        let messages = ours.iter().filter_map(|(id, o)| message(*id, o)).collect();
        deliver.deliver(messages).await;
        for (_, o) in &ours {
            if let Err(e) = dispatcher.settle(&o.request_id).await {
                tracing::error!(error = %e, "Settling a schedule's execution failed; it is answered again after a restart.");
            }
        }
    }
}

/// The message one execution's outcome becomes.
fn message(schedule: ScheduleId, o: &DispatchOutcome) -> Option<Unsigned> {
    match &o.result {
        Ok(payload) => Some(Unsigned {
            user: o.request_id.originator,
            kind: OutboundKind::Response {
                request_id: o.request_id,
                code: ResponseCode::I0,
            },
            xml: write_scheduled_message(&o.request_id, o.srv, schedule, payload, at(o.at)),
            raised_at: o.at,
        }),
        Err(failure) => {
            tracing::info!(request_id = %o.request_id, ?failure, "A DSP schedule's execution got no answer.");
            Deliver::command_failure(o.request_id, schedule, o.at)
        }
    }
}
