//! What a permitted request does, decided before its counter is accepted and carried out after:
//! the synchronous answer, and the effects made durable before that answer leaves. Each DUIS
//! flow plans here, by its Command Variant and service; nothing is planned that cannot be kept —
//! a request answered `I99` has an effect that will bring its final message.

use time::OffsetDateTime;

use crate::auth::Permit;
use crate::catalogue::SrvEntry;
use crate::domain::RequestId;
use crate::duis::inventory;
use crate::duis::{ParsedRequest, ResponsePayload};
use crate::error::{Error, Resource};
use crate::firmware::Distribution;
use crate::outbox::Outbound;
use crate::registry::Change;
use crate::routing::SignedCommand;
use crate::store::{Held, IssueError, Reservation};

use super::critical::HeldPreCommand;
use super::dcc::distribute;
use super::local::LocalCommand;
use super::schedules::NewSchedule;
use super::{answer, durable, Gateway};

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
    /// A Transform's pre-command, remembered for the signed pre-command that will answer it.
    RememberPreCommand { id: RequestId, held: HeldPreCommand },
    /// The pre-command a signed one answers, used (once).
    UsePreCommand(RequestId),
    /// A command the User delivers itself: put in the outbox for the User, then remembered for
    /// its 8.13 in the decision's commit. That `LocalCommand` message is a final message.
    DeliverLocally {
        id: RequestId,
        record: LocalCommand,
        message: Outbound,
    },
    /// An 8.13 Return Local Command Response: the local command it answers, marked answered.
    LocalCommandAnswered(RequestId),
    /// A DSP-held future-dated request: journalled, then sent at its execution time. Its
    /// Service Response (or the refusal's code then) is the final message.
    Hold(Held),
    /// A new DSP schedule (5.1); its executions' results are messages of their own.
    CreateSchedule(NewSchedule),
    /// DSP schedules deleted (5.3).
    DeleteSchedules(Vec<crate::duis::schedule::ScheduleId>),
    /// A request anomaly detection quarantined: its `AD1` in the outbox, then the request kept
    /// in its decision's commit. Its final message comes with its release or deletion.
    Quarantine(Box<super::anomaly::Quarantining>),
    /// A request anomaly detection counted: journalled, so that a restart counts it again.
    Count(crate::store::Tallied),
}

impl Effect {
    /// Whether a final message follows the answer because of this effect.
    fn follows(&self) -> bool {
        match self {
            Self::Route(_)
            | Self::Hold(_)
            | Self::DeliverLocally { .. }
            | Self::Distribute { .. }
            | Self::Quarantine(_) => true,
            Self::Registry(_)
            | Self::Count(_)
            | Self::RememberPreCommand { .. }
            | Self::UsePreCommand(_)
            | Self::LocalCommandAnswered(_)
            | Self::CreateSchedule(_)
            | Self::DeleteSchedules(_) => false,
        }
    }
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
        self.effects.iter().any(Effect::follows)
    }

    /// Whether the request is a signed pre-command, whose RequestID is its Transform's.
    pub fn uses_precommand(&self) -> bool {
        self.effects
            .iter()
            .any(|e| matches!(e, Effect::UsePreCommand(_)))
    }

    pub(super) fn done(payload: ResponsePayload) -> Self {
        Self {
            reply: Reply::Done(payload),
            effects: Vec::new(),
        }
    }

    /// Acknowledged, with `effects` to bring the final message.
    pub(super) fn acknowledged(effects: Vec<Effect>) -> Self {
        Self {
            reply: Reply::Acknowledged,
            effects,
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
    /// When the request is decided (its arrival, or a held request's release).
    pub now: OffsetDateTime,
}

impl Gateway {
    /// The plan for a permitted request.
    pub(super) fn plan(&self, p: &Planning<'_>) -> Result<Plan, Error> {
        let cv = p.request.header.command_variant;
        match p.entry.body_element.as_str() {
            "ReadInventory" => return self.read_inventory(p).map(Plan::done),
            "ReturnLocalCommandResponse" => return self.local_command_response(p),
            _ => {}
        }
        if let Some(plan) = self.plan_schedule(p)? {
            return Ok(plan);
        }
        if let Some(plan) = p.entry.non_device.then(|| self.dcc_service(p)).flatten() {
            return plan;
        }
        if !p.entry.non_device {
            return match cv.get() {
                4 => self.transform(p),
                5..=7 => self.signed_precommand(p),
                _ => match self.plan_hold(p)? {
                    Some(plan) => Ok(plan),
                    None => self.device_command(p),
                },
            };
        }
        // The DCC's own services not planned above (Command Variant 8): acknowledged, with
        // no final message yet; the audit trail records that none follows.
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

    /// Makes the plan's effects durable; each is on disk before this returns. The effects the
    /// request log carries (commands for the hub network, held requests) are committed with
    /// `mark` (the request's reserved counter, if it spends one) as one decision, after the
    /// others (their own journals, in order), so that a crash between leaves the counter
    /// unspent. `now` is when the request was received (unix seconds).
    pub(super) async fn carry_out(
        &self,
        effects: Vec<Effect>,
        mark: Option<Reservation>,
        now: i64,
    ) -> Result<(), Error> {
        let prepared = self.carry_out_all_but_commit(effects, mark, now).await?;
        self.commit_prepared(prepared, None).await
    }

    /// As [`Self::carry_out`], up to the commit: the decision comes back prepared, for the
    /// request's answer to commit with its audit record.
    pub(super) async fn carry_out_all_but_commit(
        &self,
        effects: Vec<Effect>,
        mark: Option<Reservation>,
        now: i64,
    ) -> Result<durable::Prepared, Error> {
        let (logged, others): (Vec<_>, Vec<_>) = effects.into_iter().partition(durable::logged);
        if let Err(e) = self.carry_out_others(others).await {
            if let Some(r) = &mark {
                self.replay.rollback(r);
            }
            return Err(e);
        }
        let prepared = self.prepare(mark, logged, now)?;
        if let Err(e) = self.enqueue_before_commit(&prepared).await {
            self.give_back_prepared(prepared);
            return Err(e);
        }
        Ok(prepared)
    }

    /// The effects the request log does not carry, each in its own journal, in order.
    async fn carry_out_others(&self, effects: Vec<Effect>) -> Result<(), Error> {
        for effect in effects {
            match effect {
                // Carried by the request log (`durable.rs`).
                Effect::Route(_)
                | Effect::Hold(_)
                | Effect::RememberPreCommand { .. }
                | Effect::UsePreCommand(_)
                | Effect::Count(_)
                | Effect::Quarantine(_)
                | Effect::DeliverLocally { .. }
                | Effect::LocalCommandAnswered(_) => {}
                Effect::CreateSchedule(new) => self.create_schedule(new).await?,
                Effect::DeleteSchedules(ids) => self.delete_schedules(&ids).await?,
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

pub(super) fn issue_error(e: IssueError) -> Error {
    match e {
        IssueError::Full { max } => Error::Outstanding { max },
        IssueError::Duplicate | IssueError::Journal(_) => Error::resource(Resource::Ledger, e),
    }
}
