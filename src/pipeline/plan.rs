//! What a permitted request does, decided before its counter is accepted and carried out after:
//! the synchronous answer, and the effects made durable before that answer leaves. Each DUIS
//! flow plans here, by its Command Variant and service; nothing is planned that cannot be kept —
//! a request answered `I99` has an effect that will bring its final message.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::auth::Permit;
use crate::catalogue::SrvEntry;
use crate::duis::inventory;
use crate::duis::{ParsedRequest, ResponsePayload};
use crate::error::{Error, Resource};
use crate::firmware::Distribution;
use crate::registry::Change;
use crate::routing::{self, Command, SignedCommand};

use super::dcc::distribute;
use super::{answer, Gateway, Routing};

/// The synchronous answer a planned request gets.
#[derive(Debug)]
pub(super) enum Reply {
    /// `I0`, with the data the service answers at once (none for some).
    Done(ResponsePayload),
    /// `I99`: accepted; the final message follows asynchronously.
    Acknowledged,
}

/// Something a request makes durable before its answer leaves.
#[derive(Debug)]
pub(super) enum Effect {
    /// A signed command for a device: journalled as pending, then sent in the background. Its
    /// Service Response (or `E20`/`E21`) is the final message.
    Route(SignedCommand),
    /// Registration changes (the DCC's own inventory services): journalled and in force, their
    /// DCC Alerts raised, through the admin API's path.
    Registry(Vec<Change>),
    /// A firmware distribution: its hub commands journalled as pending, the distribution
    /// journalled, then the commands sent. Its Service Response is the final message.
    Distribute {
        distribution: Distribution,
        commands: Vec<SignedCommand>,
    },
}

/// A permitted request's answer and effects.
#[derive(Debug)]
pub(super) struct Plan {
    pub reply: Reply,
    pub effects: Vec<Effect>,
}

impl Plan {
    /// Whether a final message will follow the synchronous answer.
    pub fn follows(&self) -> bool {
        self.effects
            .iter()
            .any(|e| matches!(e, Effect::Route(_) | Effect::Distribute { .. }))
    }

    fn done(payload: ResponsePayload) -> Self {
        Self {
            reply: Reply::Done(payload),
            effects: Vec::new(),
        }
    }

    fn routed(command: SignedCommand) -> Self {
        Self {
            reply: Reply::Acknowledged,
            effects: vec![Effect::Route(command)],
        }
    }
}

/// What the request carries that a plan reads.
pub(super) struct Planning<'a> {
    pub entry: &'a SrvEntry,
    pub permit: &'a Permit,
    pub request: &'a ParsedRequest,
    pub body: &'a [u8],
    /// When the request executes (its `ExecutionDateTime`, or now).
    pub at: OffsetDateTime,
}

impl Gateway {
    /// The plan for a permitted request.
    pub(super) fn plan(&self, p: &Planning<'_>) -> Result<Plan, Error> {
        let cv = p.request.header.command_variant;
        if p.entry.body_element == "ReadInventory" {
            return self.read_inventory(p).map(Plan::done);
        }
        if let Some(plan) = p.entry.non_device.then(|| self.dcc_service(p)).flatten() {
            return plan;
        }
        if !p.entry.non_device && routing::sent_to_device(cv) {
            return self.sign_command(p).map(Plan::routed);
        }
        // Local delivery (Command Variants 2 and 6), the critical flow's pre-command (4) and the
        // DCC's own services not planned above (8): acknowledged, with no final message yet;
        // the audit trail records that none follows.
        Ok(Plan {
            reply: Reply::Acknowledged,
            effects: Vec::new(),
        })
    }

    /// 8.2 Read Inventory (Command Variant 8) is answered from the cache: `I0` with data.
    fn read_inventory(&self, p: &Planning<'_>) -> Result<ResponsePayload, Error> {
        let span = p.body.get(p.request.body.clone()).unwrap_or_default();
        let query = inventory::parse_read_inventory(span).map_err(Error::InventoryQuery)?;
        let xml = answer::inventory_payload(&self.state.registry(), query)
            .ok_or(Error::InventoryEmpty)?;
        Ok(ResponsePayload::Raw(xml))
    }

    /// The signed command for a device request: made from the permit alone and signed with the
    /// broker key. The request's Body stands in for the GBCS command the DCC would build.
    fn sign_command(&self, p: &Planning<'_>) -> Result<SignedCommand, Error> {
        let header = &p.request.header;
        let payload = p
            .body
            .get(p.request.body.clone())
            .unwrap_or_default()
            .to_vec();
        let execute_at = p
            .request
            .execution_date_time
            .is_some()
            .then(|| p.at.unix_timestamp());
        Command::from_permit(
            p.permit,
            header.request_id,
            header.command_variant,
            execute_at,
            payload,
        )
        .and_then(|c| self.routing.signer.sign(&c))
        .map_err(Error::Command)
    }

    /// Makes the plan's effects durable, in order; each is on disk before this returns.
    pub(super) async fn carry_out(&self, effects: Vec<Effect>) -> Result<(), Error> {
        for effect in effects {
            match effect {
                Effect::Route(command) => route(&self.routing, command).await?,
                Effect::Registry(changes) => self.apply(&changes).await?,
                Effect::Distribute {
                    distribution,
                    commands,
                } => distribute(&self.routing, distribution, commands).await?,
            }
        }
        Ok(())
    }
}

/// Journals the command (it is on disk before the `I99` promises a response), then sends it in
/// the background.
async fn route(routing: &Routing, command: SignedCommand) -> Result<(), Error> {
    routing
        .dispatcher
        .record(&command)
        .await
        .map_err(|e| Error::resource(Resource::PendingJournal, e))?;
    let dispatcher = Arc::clone(&routing.dispatcher);
    tokio::spawn(async move {
        if let Err(e) = dispatcher.dispatch(command).await {
            tracing::error!(error = %e, "Dispatch failed; the command is answered after a restart.");
        }
    });
    Ok(())
}
