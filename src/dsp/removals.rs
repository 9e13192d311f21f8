//! What a change of supplier does to DSP schedules: every batch of registration changes passes
//! here on its way to the replies task; for each change of supplier in it, the outgoing
//! supplier's schedules on that meter are removed (journalled, under the batch's number) and a
//! `DSPScheduleRemoval` DCC Alert to their owner joins the batch's events. The batch counts as
//! alerted only once all of them are in the outbox; until then a start raises the batch again,
//! and the store, which keeps what that batch removed, gives the same schedules back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::alerts::{ChangeAlerts, DccEvent};
use crate::store::Schedules;

/// How long to wait before trying the schedule journal again when it fails.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until the registration changes end or the replies task is gone.
pub(super) async fn remove(
    schedules: Arc<Schedules>,
    mut from: mpsc::Receiver<ChangeAlerts>,
    to: mpsc::Sender<ChangeAlerts>,
) {
    while let Some(mut batch) = from.recv().await {
        let removals = removals(&schedules, &batch).await;
        batch.events.extend(removals);
        if to.send(batch).await.is_err() {
            return;
        }
    }
}

/// The removal alerts a batch's changes of supplier call for, once the removals are on disk.
async fn removals(schedules: &Schedules, batch: &ChangeAlerts) -> Vec<DccEvent> {
    let mut out = Vec::new();
    for event in &batch.events {
        let DccEvent::ChangeOfSupplier {
            device, outgoing, ..
        } = event
        else {
            continue;
        };
        let removed = loop {
            match schedules
                .remove_for_change(batch.seq, *device, outgoing)
                .await
            {
                Ok(removed) => break removed,
                Err(e) => {
                    // The change is journalled and in force; its removals must follow it.
                    tracing::error!(error = %e, seq = batch.seq, "Removing schedules after a change of supplier failed; trying again.");
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        out.extend(removed.into_iter().map(|(schedule, owner)| {
            tracing::info!(%schedule, %owner, %device, "A change of supplier removed a DSP schedule.");
            DccEvent::DspScheduleRemoved {
                device: *device,
                schedule,
                owner,
            }
        }));
    }
    out
}
