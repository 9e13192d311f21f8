//! DSP schedules (Service Reference Variants 5.1 Create Schedule, 5.2 Read Schedule, 5.3 Delete
//! Schedule): the schedule a `sr:CreateSchedule` body describes (XSD `DSPSchedule`), what a
//! `sr:ReadSchedule` or `sr:DeleteSchedule` body selects, when a schedule runs (`calendar.rs`),
//! and what the DCC writes about schedules: `DSPScheduleID`, `DSPSchedulesRead`, the
//! `DSPScheduledMessage` each execution's result travels in, and the request an execution makes
//! (`write.rs`). Layer 0: no clock, no I/O; times come in.
//!
//! A schedule reads one of fourteen things ([`DSP_REQUESTS`]): the XSD's choice of `DSP…`
//! elements, each standing for one Service Reference Variant whose request the DCC makes at
//! every execution. A log read's period is given as day offsets from the execution date.

mod calendar;
mod parse;
mod write;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use time::{Date, Time, UtcOffset};

use crate::domain::{DeviceId, RequestId, Srv, UserId};

pub use calendar::MAX_EXECUTIONS;
pub use parse::{parse_create_schedule, parse_schedule_selector};
pub use write::{
    scheduled_request, write_create_schedule, write_schedule_id, write_scheduled_message,
    write_schedules_read, MAX_SCHEDULES_READ,
};

/// A DSP schedule's identifier (XSD `scheduleID`: 0 to 10^12).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ScheduleId(u64);

impl ScheduleId {
    /// The schema's largest schedule ID.
    pub const MAX: u64 = 1_000_000_000_000;
    /// The largest schedule ID, as one.
    pub const LAST: Self = Self(Self::MAX);

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<u64> for ScheduleId {
    type Error = ScheduleError;

    fn try_from(id: u64) -> Result<Self, Self::Error> {
        if id > Self::MAX {
            return Err(ScheduleError::ScheduleId);
        }
        Ok(Self(id))
    }
}

impl From<ScheduleId> for u64 {
    fn from(id: ScheduleId) -> u64 {
        id.0
    }
}

impl FromStr for ScheduleId {
    type Err = ScheduleError;

    /// An `xs:nonNegativeInteger` (an optional `+`, leading zeros allowed) up to [`Self::MAX`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('+').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ScheduleError::ScheduleId);
        }
        let significant = digits.trim_start_matches('0');
        if significant.len() > 13 {
            return Err(ScheduleError::ScheduleId);
        }
        let n = if significant.is_empty() {
            0
        } else {
            significant.parse().map_err(|_| ScheduleError::ScheduleId)?
        };
        Self::try_from(n)
    }
}

impl fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How often a schedule runs (XSD `ScheduleFrequency`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Quarterly,
    HalfYearly,
    Yearly,
}

impl Frequency {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "Daily",
            Self::Weekly => "Weekly",
            Self::Monthly => "Monthly",
            Self::Quarterly => "Quarterly",
            Self::HalfYearly => "Half-Yearly",
            Self::Yearly => "Yearly",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Daily,
            Self::Weekly,
            Self::Monthly,
            Self::Quarterly,
            Self::HalfYearly,
            Self::Yearly,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// A time of day as `xs:time` writes it, with its zone if it had one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ClockTime {
    /// Whole milliseconds are kept.
    pub time: Time,
    pub offset: Option<UtcOffset>,
}

/// What a schedule's request reads: a log over a period given as day offsets from the execution
/// date, or data at the time of the execution.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScheduledRead {
    /// XSD `ReadLogPeriodOffset`: from `start_offset` days before the execution date at
    /// `start_time` to `end_offset` days before it at `end_time` (offsets -400 to 0).
    Log {
        start_offset: i16,
        start_time: ClockTime,
        end_offset: i16,
        end_time: ClockTime,
    },
    /// XSD `DSPReadData` or `RecordNetworkDataGAS`: no parameters.
    Data,
}

/// One DSP schedule as `sr:CreateSchedule` describes it (XSD `DSPSchedule`), checked: the `DSP…`
/// element is the one the scheduled variant names, the end is not before the start, a log
/// period does not end before it starts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ScheduleSpec {
    pub frequency: Frequency,
    /// `ScheduleStartDate` (a zone on it is not kept: dates are calendar dates).
    pub start: Date,
    /// `ScheduleEndDate`: the last date an execution may fall on.
    pub end: Option<Date>,
    /// `ScheduleExecutionStartTime`; executions run at midnight UTC without one.
    pub time: Option<ClockTime>,
    /// `KAPublicSecurityCredential` (base64 as sent), passed on to the requests that take one.
    pub ka_credential: Option<String>,
    /// The variant each execution requests (`DSPScheduledServiceReferenceVariant`).
    pub srv: Srv,
    pub device: DeviceId,
    pub read: ScheduledRead,
}

impl ScheduleSpec {
    /// The scheduled variant's row of [`DSP_REQUESTS`] (a checked spec always has one).
    pub fn request(&self) -> &'static DspRequest {
        dsp_request_for(self.srv).unwrap_or(&DSP_REQUESTS[0])
    }
}

/// What `sr:ReadSchedule` and `sr:DeleteSchedule` select: one schedule, or all of the User's
/// schedules on a device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScheduleSelector {
    Id(ScheduleId),
    Device(DeviceId),
}

/// The shape of the scheduled variant's request body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BodyKind {
    /// `ReadLogPeriod`, and `KAPublicSecurityCredentials` when `urp` (the XSD's
    /// `ReadLogFutureDatableAndURPCredentials`).
    Log { urp: bool },
    /// An empty body.
    Data,
}

/// One of the things a DSP schedule can read: its `DSP…` element in `sr:CreateSchedule`, the
/// variant it stands for, and that variant's request body element.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DspRequest {
    pub dsp_element: &'static str,
    pub srv: &'static str,
    pub body_element: &'static str,
    pub kind: BodyKind,
}

const fn row(
    dsp: &'static str,
    srv: &'static str,
    body: &'static str,
    kind: BodyKind,
) -> DspRequest {
    DspRequest {
        dsp_element: dsp,
        srv,
        body_element: body,
        kind,
    }
}

const LOG: BodyKind = BodyKind::Log { urp: false };
const URP: BodyKind = BodyKind::Log { urp: true };
const DATA: BodyKind = BodyKind::Data;

/// The XSD's `DSPSchedule` choice, one row per element, with the variant of its
/// `DSPScheduledServiceReferenceVariant` enumeration it stands for.
pub const DSP_REQUESTS: [DspRequest; 14] = [
    row(
        "DSPRetrieveImportDailyReadLog",
        "4.6.1",
        "RetrieveImportDailyReadLog",
        URP,
    ),
    row(
        "DSPRetrieveExportDailyReadLog",
        "4.6.2",
        "RetrieveExportDailyReadLog",
        LOG,
    ),
    row(
        "DSPReadActiveImportProfileData",
        "4.8.1",
        "ReadActiveImportProfileData",
        URP,
    ),
    row(
        "DSPReadReactiveImportProfileData",
        "4.8.2",
        "ReadReactiveImportProfileData",
        LOG,
    ),
    row(
        "DSPReadExportProfileData",
        "4.8.3",
        "ReadExportProfileData",
        LOG,
    ),
    row("DSPReadNetworkData", "4.10", "ReadNetworkData", URP),
    row(
        "DSPReadMaximumDemandImportRegisters",
        "4.12.1",
        "ReadMaximumDemandImportRegisters",
        DATA,
    ),
    row(
        "DSPReadMaximumDemandExportRegisters",
        "4.12.2",
        "ReadMaximumDemandExportRegisters",
        DATA,
    ),
    row(
        "DSPReadPrepaymentDailyReadLog",
        "4.14",
        "ReadPrepaymentDailyReadLog",
        URP,
    ),
    row("DSPReadLoadLimitData", "4.15", "ReadLoadLimitData", DATA),
    row(
        "DSPReadActivePowerImport",
        "4.16",
        "ReadActivePowerImport",
        DATA,
    ),
    row(
        "DSPRetrieveDailyConsumptionLog",
        "4.17",
        "RetrieveDailyConsumptionLog",
        URP,
    ),
    row(
        "DSPRecordNetworkDataGAS",
        "14.1",
        "RecordNetworkDataGAS",
        DATA,
    ),
    row(
        "DSPReadInstantaneousExportRegisters",
        "4.2",
        "ReadInstantaneousExportRegisters",
        DATA,
    ),
];

/// The top bit of an execution's counter.
const EXECUTION_BIT: u64 = 1 << 63;
/// Bits of an execution's counter that hold the execution's number.
const EXECUTION_BITS: u32 = 22;

/// The RequestID of execution `k` of schedule `id`, owned by `owner`, on `device`: the owner's
/// and the device's, with a counter the DCC mints — the top bit set, then the schedule ID
/// (below 2^40), then `k` (22 bits). Such a counter is far above the milliseconds-since-1970
/// counters Users' tools stamp, and names the execution it answers.
pub fn execution_request_id(owner: UserId, device: DeviceId, id: ScheduleId, k: u32) -> RequestId {
    let k = u64::from(k) & ((1 << EXECUTION_BITS) - 1);
    RequestId {
        originator: owner,
        target: device,
        counter: EXECUTION_BIT | (id.get() << EXECUTION_BITS) | k,
    }
}

/// The schedule and execution a RequestID minted by [`execution_request_id`] names, if its
/// counter is of that form.
pub fn execution_of(request_id: &RequestId) -> Option<(ScheduleId, u32)> {
    let c = request_id.counter;
    if c & EXECUTION_BIT == 0 {
        return None;
    }
    let id = ScheduleId::try_from((c & !EXECUTION_BIT) >> EXECUTION_BITS).ok()?;
    let k = u32::try_from(c & ((1 << EXECUTION_BITS) - 1)).ok()?;
    Some((id, k))
}

/// The row for a scheduled variant, if it is one a schedule can run.
pub fn dsp_request_for(srv: Srv) -> Option<&'static DspRequest> {
    DSP_REQUESTS.iter().find(|r| r.srv.parse() == Ok(srv))
}

/// Why a schedule body was not accepted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("the schedule body is not the structure the schema gives it")]
    Structure,
    #[error("the schedule's {0} is not a valid value")]
    Field(&'static str),
    #[error("a DSP schedule ID is an integer from 0 to 10^12")]
    ScheduleId,
    #[error("the scheduled service reference variant is not one a DSP schedule can run")]
    NotSchedulable,
    #[error("the DSP request element is not the one the scheduled variant names")]
    RequestMismatch,
    #[error("the schedule ends before it starts")]
    EndBeforeStart,
    #[error("the log period ends before it starts")]
    PeriodBackwards,
    #[error("the schedule has no execution left after now")]
    Over,
}
