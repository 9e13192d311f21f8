//! Carrying out what the DCC's own services planned, before their answer leaves: inventory
//! changes through the state's change path, a firmware distribution into its journals.

use std::sync::Arc;

use crate::error::{Error, Resource};
use crate::firmware::{Distribution, StartError};
use crate::registry::Change;
use crate::routing::SignedCommand;
use crate::state::ApplyError;

use super::super::{Gateway, Routing};

impl Gateway {
    /// Applies `changes` atomically: journalled, in force, their DCC Alerts on their way.
    pub(in crate::pipeline) async fn apply(&self, changes: &[Change]) -> Result<(), Error> {
        self.state
            .apply_changes(changes)
            .await
            .map_err(|e| match e {
                ApplyError::Invalid(e) => Error::InventoryChange(e),
                ApplyError::Journal(e) => Error::resource(Resource::ChangeLog, e),
                // The services add no registration and change no User: never met.
                e @ (ApplyError::InvalidUser(_) | ApplyError::UnregisteredUser(_)) => {
                    Error::resource(Resource::ChangeLog, e)
                }
            })
    }
}

/// Journals each hub command as pending and the distribution, then sends the commands in the
/// background. Should the distribution not start, its commands are settled at once (nothing
/// was acknowledged); should the process stop between the two journals, the commands are sent
/// again at the next start and their outcomes, owned by no distribution, are let go.
pub(in crate::pipeline) async fn distribute(
    routing: &Routing,
    distribution: Distribution,
    commands: Vec<SignedCommand>,
) -> Result<(), Error> {
    let dispatcher = &routing.dispatcher;
    // Together, so the pending journal's group commit makes one fsync of them.
    let recorded =
        futures_util::future::join_all(commands.iter().map(|c| dispatcher.record(c))).await;
    let mut failed = recorded.into_iter().filter_map(Result::err);
    let outcome = match failed.next() {
        Some(e) => Err(Error::resource(Resource::PendingJournal, e)),
        None => routing
            .firmware
            .start(distribution)
            .await
            .map_err(|e| match e {
                StartError::Full => Error::FirmwareBusy,
                StartError::Journal(e) => Error::resource(Resource::FirmwareJournal, e),
            }),
    };
    if let Err(e) = outcome {
        for c in &commands {
            if let Ok(h) = c.header() {
                let _ = dispatcher.settle(&h.request_id).await;
            }
        }
        return Err(e);
    }
    for command in commands {
        let dispatcher = Arc::clone(dispatcher);
        tokio::spawn(async move {
            if let Err(e) = dispatcher.dispatch(command).await {
                tracing::error!(error = %e, "Dispatch failed; the command is answered after a restart.");
            }
        });
    }
    Ok(())
}
