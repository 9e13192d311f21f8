//! DSP schedules: 5.1 Create Schedule, 5.2 Read Schedule, 5.3 Delete Schedule (Command Variant
//! 8, answered at once), and the request each execution of a schedule makes.
//!
//! - 5.1: the schedule is read and checked, its owner must be allowed the scheduled request on
//!   the device now (access control, as for a request of its own), it must have an execution
//!   left, and there must be room for it; then `I0` with its `DSPScheduleID`, the schedule
//!   journalled before the answer.
//! - 5.2: `I0` with `DSPSchedulesRead`: the User's schedule with that ID, or the User's
//!   schedules on that device (at most 99). None is `E71`.
//! - 5.3: `I0`; the schedules 5.2 would list are deleted before the answer. None is `E71`.
//! - An execution: the scheduled variant's request (Command Variant 1, a log period counted back
//!   from the execution date) under a RequestID the DCC mints for it, decided by access control
//!   at the execution time, its command routed as any other.

use time::OffsetDateTime;

use crate::auth::{self, AccessRequest};
use crate::domain::{ResponseCode, UserId, UserRole};
use crate::duis::schedule::{
    execution_request_id, parse_create_schedule, parse_schedule_selector, scheduled_request,
    write_schedule_id, write_schedules_read, ScheduleError, ScheduleId, ScheduleSpec,
};
use crate::duis::{self, ResponsePayload};
use crate::error::{Error, Resource};
use crate::rules::RuleSet;
use crate::store::{Schedule, ScheduleStoreError};

use super::executed::{Executed, Source};
use super::plan::{Effect, Plan, Planning, Reply};
use super::Gateway;

/// A schedule a 5.1 creates.
#[derive(Debug)]
pub(super) struct NewSchedule {
    id: ScheduleId,
    owner: UserId,
    spec: ScheduleSpec,
    /// Its first execution.
    next: u32,
}

fn store_error(e: ScheduleStoreError) -> Error {
    match e {
        ScheduleStoreError::TooMany(_)
        | ScheduleStoreError::TooManyForDevice
        | ScheduleStoreError::IdsUsedUp => Error::SchedulesFull,
        ScheduleStoreError::Journal(e) => Error::resource(Resource::ScheduleJournal, e),
    }
}

impl Gateway {
    /// The plan of a 5.1, 5.2 or 5.3, if this is one.
    pub(super) fn plan_schedule(&self, p: &Planning<'_>) -> Result<Option<Plan>, Error> {
        let body = p.body.get(p.request.body.clone()).unwrap_or_default();
        let owner = p.permit.user();
        match p.entry.body_element.as_str() {
            "CreateSchedule" => self.plan_create(p, body).map(Some),
            "ReadSchedule" => {
                let found = self.selected(owner, body)?;
                let listed: Vec<_> = found.iter().map(|s| (s.id, &*s.spec)).collect();
                let xml = write_schedules_read(&listed);
                Ok(Some(Plan::done(ResponsePayload::Raw(xml))))
            }
            "DeleteSchedule" => {
                let ids = self.selected(owner, body)?.iter().map(|s| s.id).collect();
                Ok(Some(Plan {
                    reply: Reply::Done(ResponsePayload::None),
                    effects: vec![Effect::DeleteSchedules(ids)],
                }))
            }
            _ => Ok(None),
        }
    }

    fn plan_create(&self, p: &Planning<'_>, body: &[u8]) -> Result<Plan, Error> {
        let spec = parse_create_schedule(body).map_err(Error::ScheduleBody)?;
        let owner = p.permit.user();
        let rules = self.rule_set_at(p.now.unix_timestamp());
        let entry = rules
            .catalogue
            .get(&spec.srv)
            .ok_or(Error::ScheduleBody(ScheduleError::NotSchedulable))?;
        // The owner must be allowed the request the schedule will make, now.
        let access = AccessRequest {
            originator: owner,
            target: spec.device,
            service: entry,
            at: p.now.unix_timestamp(),
        };
        auth::authorize(&access, &self.state.register(), &self.state.registry())
            .map_err(Error::Denied)?;
        let schedules = &self.dsp.schedules;
        let next = spec
            .first_execution_from(p.now.unix_timestamp(), schedules.day_secs())
            .ok_or(Error::ScheduleBody(ScheduleError::Over))?;
        schedules
            .room_for(owner, spec.device)
            .map_err(store_error)?;
        let id = schedules.allocate_id().map_err(store_error)?;
        Ok(Plan {
            reply: Reply::Done(ResponsePayload::Raw(write_schedule_id(id))),
            effects: vec![Effect::CreateSchedule(NewSchedule {
                id,
                owner,
                spec,
                next,
            })],
        })
    }

    /// The User's schedules a 5.2 or 5.3 body selects; none is `E71`.
    fn selected(&self, owner: UserId, body: &[u8]) -> Result<Vec<Schedule>, Error> {
        let selector = parse_schedule_selector(body).map_err(Error::ScheduleBody)?;
        let found = self.dsp.schedules.read(owner, selector);
        if found.is_empty() {
            return Err(Error::ScheduleUnknown);
        }
        Ok(found)
    }

    /// Keeps a new schedule; on disk before this returns.
    pub(super) async fn create_schedule(&self, new: NewSchedule) -> Result<(), Error> {
        self.dsp
            .schedules
            .create(new.id, new.owner, new.spec, new.next)
            .await
            .map_err(store_error)
    }

    /// Deletes schedules; on disk before this returns.
    pub(super) async fn delete_schedules(&self, ids: &[ScheduleId]) -> Result<(), Error> {
        self.dsp
            .schedules
            .delete(ids)
            .await
            .map_err(|e| Error::resource(Resource::ScheduleJournal, e))
    }

    /// Starts execution `k` of `schedule` at `now`: its request made, decided by access control
    /// at `now`, its command journalled as pending before this returns, then dispatched. `Err`
    /// is the code of the refusal that ends it instead.
    ///
    /// The decision is audited (`ExecutionRecord`) with the rule set's version.
    pub async fn run_scheduled(
        &self,
        schedule: &Schedule,
        k: u32,
        now: OffsetDateTime,
    ) -> Result<(), ResponseCode> {
        let rules = self.rule_set_at(now.unix_timestamp());
        let mut role = None;
        let outcome = self.run_under(&rules, schedule, k, now, &mut role).await;
        let spec = &schedule.spec;
        self.record_execution(Executed {
            source: Source::Scheduled,
            request_id: execution_request_id(schedule.owner, spec.device, schedule.id, k),
            srv: spec.srv,
            rules: &rules,
            role,
            outcome,
            now,
        })
        .await;
        outcome
    }

    /// [`Gateway::run_scheduled`] under `rules`; `role` is set to the role access control chose.
    async fn run_under(
        &self,
        rules: &RuleSet,
        schedule: &Schedule,
        k: u32,
        now: OffsetDateTime,
        role: &mut Option<UserRole>,
    ) -> Result<(), ResponseCode> {
        let spec = &schedule.spec;
        let date = spec.execution_date(k).ok_or(ResponseCode::E30)?;
        let request_id = execution_request_id(schedule.owner, spec.device, schedule.id, k);
        let xml = scheduled_request(spec, &request_id, date);
        // The DCC's own request, read by the one request parser.
        let request = duis::parse_request(xml.as_bytes(), &self.xml_limits)
            .map_err(|_| ResponseCode::E100)?;
        let entry = rules.catalogue.get(&spec.srv).ok_or(ResponseCode::E100)?;
        let access = AccessRequest {
            originator: schedule.owner,
            target: spec.device,
            service: entry,
            at: now.unix_timestamp(),
        };
        let permit = auth::authorize(&access, &self.state.register(), &self.state.registry())
            .map_err(|d| Error::Denied(d).classify().0)?;
        *role = Some(permit.role());
        let planning = Planning {
            entry,
            permit: &permit,
            request: &request,
            body: xml.as_bytes(),
            at: now,
            now,
        };
        let command = self.sign_command(&planning).map_err(|e| e.classify().0)?;
        self.carry_out(vec![Effect::Route(command)], None, now.unix_timestamp())
            .await
            .map_err(|e| e.classify().0)
    }
}
