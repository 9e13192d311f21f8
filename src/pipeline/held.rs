//! DSP-held future-dated requests. A device request whose Service Reference Variant's
//! future-dated pattern is the DSP's (`dsp`, and `dsp_and_device`, where the gateway chooses to
//! hold) and that carries an `ExecutionDateTime` is not sent at once: it is checked as usual
//! (access control at its execution time), its command made once to prove it can be, and the
//! request itself journalled before its `I99`. At the execution time the `dsp` timer releases
//! it: the request is read again, access control decides again at that time, and its command
//! (with no execution time of its own: the device runs it on arrival) goes where its Command
//! Variant says, as if the request had just arrived: to the device (1), to the User for local
//! delivery (2), or both (3). Its final messages follow as for such a request; a refusal then is
//! a Service Response with the refusal's code.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::{ResponseCode, UserRole};
use crate::duis;
use crate::error::Error;
use crate::rules::RuleSet;
use crate::store::{Held, Holds, Schedules};

use super::executed::{Executed, Source};
use super::plan::{Effect, Plan, Planning, Reply};
use super::Gateway;

/// What the DSP keeps for later, and its bound on how far ahead a request may be held.
pub struct Dsp {
    pub holds: Arc<Holds>,
    pub schedules: Arc<Schedules>,
    /// How far past its arrival a held request's `ExecutionDateTime` may be (seconds).
    pub max_hold_secs: i64,
}

impl Gateway {
    /// The plan of a device request the DSP holds until its execution time, if this is one:
    /// `I99`, and the request journalled. An execution time before now, or further ahead than
    /// the bound, is refused (`E31`); so is a hold past the store's bounds (`E69`).
    pub(super) fn plan_hold(&self, p: &Planning<'_>) -> Result<Option<Plan>, Error> {
        if !p.entry.future_dated.dsp_holds() || p.request.execution_date_time.is_none() {
            return Ok(None);
        }
        let (at, now) = (p.at.unix_timestamp(), p.now.unix_timestamp());
        if at < now {
            return Err(Error::ExecutionInPast);
        }
        let max_secs = self.dsp.max_hold_secs;
        if at - now > max_secs {
            return Err(Error::ExecutionTooFar { max_secs });
        }
        // The command is made now only to refuse at once what could never be sent.
        self.gbcs_command(p)?;
        if !self.dsp.holds.room_for(p.body.len()) {
            return Err(Error::HoldsFull);
        }
        let held = Held {
            request_id: p.request.header.request_id,
            srv: p.request.header.srv,
            due: at,
            request: Arc::from(p.body),
        };
        Ok(Some(Plan {
            reply: Reply::Acknowledged,
            effects: vec![Effect::Hold(held)],
        }))
    }

    /// Sends a held request at its time (`now`): read again, decided again by access control
    /// at `now` (under the rule set in force then), its command made and its effects durable before this returns (journalled as
    /// pending, then dispatched; the local copy in the outbox). `Err` is the code of the
    /// Service Response that ends it instead.
    ///
    /// The decision is audited (`ExecutionRecord`) with the rule set's version.
    pub async fn release_held(&self, held: &Held, now: OffsetDateTime) -> Result<(), ResponseCode> {
        let rules = self.rule_set_at(now.unix_timestamp());
        let mut role = None;
        let outcome = self.release_under(&rules, held, now, &mut role).await;
        self.record_execution(Executed {
            source: Source::Held,
            request_id: held.request_id,
            srv: held.srv,
            rules: &rules,
            role,
            outcome,
            now,
        })
        .await;
        outcome
    }

    /// [`Gateway::release_held`] under `rules`; `role` is set to the role access control chose.
    async fn release_under(
        &self,
        rules: &RuleSet,
        held: &Held,
        now: OffsetDateTime,
        role: &mut Option<UserRole>,
    ) -> Result<(), ResponseCode> {
        // What was accepted once reads again; should a stricter bound now refuse it, it cannot
        // be sent in its window.
        let request =
            duis::parse_request(&held.request, &self.xml_limits).map_err(|_| ResponseCode::E30)?;
        let (permit, entry) = self
            .authorize(&rules.catalogue, &request, &self.state.register(), now)
            .map_err(|e| match e {
                Error::UnknownSrv(_) => ResponseCode::E30,
                e => e.classify().0,
            })?;
        *role = Some(permit.role());
        let planning = Planning {
            entry,
            permit: &permit,
            request: &request,
            body: &held.request,
            at: now,
            now,
        };
        let plan = self.device_command(&planning).map_err(|e| e.classify().0)?;
        self.carry_out(plan.effects, None, now.unix_timestamp())
            .await
            .map_err(|e| e.classify().0)
    }
}
