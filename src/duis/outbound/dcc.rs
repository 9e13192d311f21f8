//! DCC Alerts (`DCCAlertMessage`): the code, the optional throttling fields, and the typed
//! payload (`DCCAlert`) for the events the gateway raises itself.

use time::OffsetDateTime;

use super::{alert_header, element, open_with_header, throttle_fields};
use super::{Throttled, WriteError, RESPONSE_CLOSE};
use crate::domain::{DccAlertCode, DeviceId, DeviceType, Mpxn, RequestId, UserId, DCC_ID};
use crate::duis::schedule::ScheduleId;
use crate::duis::xs_date_time;

/// `MeterMPxNs`: the meter points a meter serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterMpxns {
    pub import: Mpxn,
    /// Must be an MPAN.
    pub secondary_import: Option<Mpxn>,
    /// Must be an MPAN.
    pub export: Option<Mpxn>,
}

impl MeterMpxns {
    pub const fn import_only(import: Mpxn) -> Self {
        Self {
            import,
            secondary_import: None,
            export: None,
        }
    }
}

/// The `DeviceStatusChange` choices the gateway raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceStatusChange {
    /// A meter's identity (its meter points) changed or was set.
    MeterIdentity(MeterMpxns),
    /// A meter was decommissioned or withdrawn, with up to seven devices associated with it.
    MeterDecommissioningOrWithdrawal {
        meter: MeterMpxns,
        associated: Vec<(DeviceId, DeviceType)>,
    },
    DeviceRemovedFromInventory,
    ChfDecommissioning,
    DeviceSuspended,
    DeviceRestored,
    RecoveryComplete,
}

/// Which threshold an anomaly-detection quarantine breached (`QuarantinedRequest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuarantineBreach {
    UserThreshold,
    DccThreshold,
    AttributeLimits,
}

/// The `DCCAlert` payloads the gateway raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DccAlertPayload {
    PowerOutageEvent {
        comms_hub: DeviceId,
        start: OffsetDateTime,
        mpxn: Mpxn,
    },
    DeviceStatusChangeEvent {
        device: DeviceId,
        change: DeviceStatusChange,
    },
    /// `ChangeOfSupplier` about one device whose meter point changed supplier.
    DeviceChangeOfSupplier {
        device: DeviceId,
        device_type: DeviceType,
        mpxns: MeterMpxns,
    },
    /// `ChangeOfSupplier` about a change-of-supplier Service Request (with its ECoS error code,
    /// three characters, when it failed).
    ChangeOfSupplierRequest {
        request_id: RequestId,
        ecos_error_code: Option<String>,
    },
    CommandFailure {
        request_id: RequestId,
        dsp_schedule_id: Option<u64>,
        device: DeviceId,
    },
    QuarantinedRequest {
        breach: QuarantineBreach,
        request_id: RequestId,
        /// At most 20 decimal digits, which every `u64` has.
        quarantine_event_ref: u64,
    },
    /// `DSPScheduleRemoval`: a change of supplier removed the outgoing supplier's schedule.
    DspScheduleRemoval {
        device: DeviceId,
        schedule: ScheduleId,
    },
    /// `FirmwareDistributionFailure`: the devices an 11.1 or 11.4 request's image did not reach
    /// (at least one).
    FirmwareDistributionFailure {
        request_id: RequestId,
        devices: Vec<DeviceId>,
    },
}

/// A [`DccAlertPayload`] checked against the schema rules its type does not rule out, so that
/// writing it cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DccAlertBody(DccAlertPayload);

impl DccAlertBody {
    pub fn new(payload: DccAlertPayload) -> Result<Self, WriteError> {
        check(&payload)?;
        Ok(Self(payload))
    }

    pub fn payload(&self) -> &DccAlertPayload {
        &self.0
    }
}

/// A DCC Alert for one User.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DccAlertOut<'a> {
    pub user: UserId,
    /// The gateway's identifier of the raised alert (the `ResponseID`'s counter).
    pub counter: u64,
    /// The request the alert is about, written as the header's `RequestID`.
    pub request_id: Option<RequestId>,
    pub code: DccAlertCode,
    pub throttled: Option<Throttled>,
    pub body: &'a DccAlertBody,
}

/// A `DCCAlertMessage`.
pub fn write_dcc_alert(alert: &DccAlertOut<'_>, now: OffsetDateTime) -> String {
    let header = alert_header(alert.request_id, DCC_ID, alert.user, alert.counter, now);
    let mut out = String::with_capacity(900);
    open_with_header(&mut out, &header);
    out.push_str("<sr:Body><sr:DCCAlertMessage>");
    element(&mut out, "DCCAlertCode", &alert.code.to_string());
    throttle_fields(&mut out, alert.throttled);
    out.push_str("<sr:DCCAlert>");
    payload(&mut out, alert.body.payload());
    out.push_str("</sr:DCCAlert></sr:DCCAlertMessage></sr:Body>");
    out.push_str(RESPONSE_CLOSE);
    out
}

/// The schema rules a payload's types leave open.
fn check(p: &DccAlertPayload) -> Result<(), WriteError> {
    let mpxns = |m: &MeterMpxns| match [m.secondary_import, m.export]
        .into_iter()
        .flatten()
        .find(|x| !x.is_electricity())
    {
        Some(gas) => Err(WriteError::NotAnMpan(gas)),
        None => Ok(()),
    };
    match p {
        DccAlertPayload::DeviceChangeOfSupplier { mpxns: m, .. } => mpxns(m),
        DccAlertPayload::DeviceStatusChangeEvent { change, .. } => match change {
            DeviceStatusChange::MeterIdentity(m) => mpxns(m),
            DeviceStatusChange::MeterDecommissioningOrWithdrawal { meter, associated } => {
                if associated.len() > 7 {
                    return Err(WriteError::TooManyAssociatedDevices(associated.len()));
                }
                mpxns(meter)
            }
            DeviceStatusChange::DeviceRemovedFromInventory
            | DeviceStatusChange::ChfDecommissioning
            | DeviceStatusChange::DeviceSuspended
            | DeviceStatusChange::DeviceRestored
            | DeviceStatusChange::RecoveryComplete => Ok(()),
        },
        DccAlertPayload::ChangeOfSupplierRequest {
            ecos_error_code: Some(code),
            ..
        } if code.chars().count() != 3 => Err(WriteError::EcosErrorCode),
        DccAlertPayload::FirmwareDistributionFailure { devices, .. } if devices.is_empty() => {
            Err(WriteError::EmptyDeviceList)
        }
        DccAlertPayload::ChangeOfSupplierRequest { .. }
        | DccAlertPayload::FirmwareDistributionFailure { .. }
        | DccAlertPayload::PowerOutageEvent { .. }
        | DccAlertPayload::CommandFailure { .. }
        | DccAlertPayload::QuarantinedRequest { .. }
        | DccAlertPayload::DspScheduleRemoval { .. } => Ok(()),
    }
}

fn payload(out: &mut String, p: &DccAlertPayload) {
    match p {
        DccAlertPayload::PowerOutageEvent {
            comms_hub,
            start,
            mpxn,
        } => {
            out.push_str("<sr:PowerOutageEvent>");
            element(out, "CommsHubDeviceID", &comms_hub.to_string());
            element(out, "StartDateTime", &xs_date_time(*start));
            element(out, "MPxN", &mpxn.to_string());
            out.push_str("</sr:PowerOutageEvent>");
        }
        DccAlertPayload::DeviceStatusChangeEvent { device, change } => {
            out.push_str("<sr:DeviceStatusChangeEvent>");
            element(out, "DeviceID", &device.to_string());
            out.push_str("<sr:DeviceStatusChange>");
            status_change(out, change);
            out.push_str("</sr:DeviceStatusChange></sr:DeviceStatusChangeEvent>");
        }
        DccAlertPayload::DeviceChangeOfSupplier {
            device,
            device_type,
            mpxns,
        } => {
            out.push_str("<sr:ChangeOfSupplier><sr:DeviceChangeOfSupplier>");
            element(out, "DeviceID", &device.to_string());
            element(out, "DeviceType", device_type.as_str());
            meter_mpxns(out, "MPxNs", mpxns);
            out.push_str("</sr:DeviceChangeOfSupplier></sr:ChangeOfSupplier>");
        }
        DccAlertPayload::ChangeOfSupplierRequest {
            request_id,
            ecos_error_code,
        } => {
            out.push_str("<sr:ChangeOfSupplier>");
            element(
                out,
                "ChangeOfSupplierServiceRequestID",
                &request_id.to_string(),
            );
            if let Some(code) = ecos_error_code {
                element(out, "ECoSErrorCode", code);
            }
            out.push_str("</sr:ChangeOfSupplier>");
        }
        DccAlertPayload::CommandFailure {
            request_id,
            dsp_schedule_id,
            device,
        } => {
            out.push_str("<sr:CommandFailure>");
            element(out, "CommandRequestID", &request_id.to_string());
            if let Some(id) = dsp_schedule_id {
                element(out, "DSPScheduleID", &id.to_string());
            }
            element(out, "DeviceID", &device.to_string());
            out.push_str("</sr:CommandFailure>");
        }
        DccAlertPayload::DspScheduleRemoval { device, schedule } => {
            out.push_str("<sr:DSPScheduleRemoval>");
            element(out, "DeviceID", &device.to_string());
            element(out, "DSPScheduleID", &schedule.to_string());
            out.push_str("</sr:DSPScheduleRemoval>");
        }
        DccAlertPayload::FirmwareDistributionFailure {
            request_id,
            devices,
        } => firmware_failure(out, request_id, devices),
        DccAlertPayload::QuarantinedRequest {
            breach,
            request_id,
            quarantine_event_ref,
        } => quarantined(out, *breach, request_id, *quarantine_event_ref),
    }
}

/// `FirmwareDistributionFailure`: the 11.1 or 11.4 request and the devices its image missed.
fn firmware_failure(out: &mut String, request_id: &RequestId, devices: &[DeviceId]) {
    out.push_str("<sr:FirmwareDistributionFailure>");
    element(out, "UpdateFirmwareRequestID", &request_id.to_string());
    out.push_str("<sr:MeterIDs>");
    crate::duis::services::push_ids(out, devices);
    out.push_str("</sr:MeterIDs></sr:FirmwareDistributionFailure>");
}

/// `QuarantinedRequest`, with the breach as its element's name.
fn quarantined(out: &mut String, breach: QuarantineBreach, request_id: &RequestId, event: u64) {
    let name = match breach {
        QuarantineBreach::UserThreshold => "ADUserThresholdBreach",
        QuarantineBreach::DccThreshold => "ADDCCThresholdBreach",
        QuarantineBreach::AttributeLimits => "ADAttributeLimitsBreach",
    };
    out.push_str("<sr:QuarantinedRequest><sr:");
    out.push_str(name);
    out.push('>');
    element(out, "RequestID", &request_id.to_string());
    element(out, "QuarantineEventRef", &event.to_string());
    out.push_str("</sr:");
    out.push_str(name);
    out.push_str("></sr:QuarantinedRequest>");
}

fn status_change(out: &mut String, change: &DeviceStatusChange) {
    match change {
        DeviceStatusChange::MeterIdentity(mpxns) => {
            out.push_str("<sr:MeterIdentity>");
            meter_mpxns(out, "MeterMPxNs", mpxns);
            out.push_str("</sr:MeterIdentity>");
        }
        DeviceStatusChange::MeterDecommissioningOrWithdrawal { meter, associated } => {
            out.push_str("<sr:MeterDecommissioningOrWithdrawal>");
            meter_mpxns(out, "MeterDecommissionOrWithdrawal", meter);
            for (id, device_type) in associated {
                out.push_str("<sr:AssociatedType1Device>");
                element(out, "DeviceID", &id.to_string());
                element(out, "DeviceType", device_type.as_str());
                out.push_str("</sr:AssociatedType1Device>");
            }
            out.push_str("</sr:MeterDecommissioningOrWithdrawal>");
        }
        DeviceStatusChange::DeviceRemovedFromInventory => {
            out.push_str("<sr:DeviceRemovedFromInventory/>")
        }
        DeviceStatusChange::ChfDecommissioning => out.push_str("<sr:CHFDecommissioning/>"),
        DeviceStatusChange::DeviceSuspended => out.push_str("<sr:DeviceSuspended/>"),
        DeviceStatusChange::DeviceRestored => out.push_str("<sr:DeviceRestored/>"),
        DeviceStatusChange::RecoveryComplete => out.push_str("<sr:RecoveryComplete/>"),
    }
}

/// A `MeterMPxNs`-typed element called `name`.
fn meter_mpxns(out: &mut String, name: &str, m: &MeterMpxns) {
    out.push_str("<sr:");
    out.push_str(name);
    out.push('>');
    element(out, "ImportMPxN", &m.import.to_string());
    if let Some(mpan) = m.secondary_import {
        element(out, "SecondaryImportMPAN", &mpan.to_string());
    }
    if let Some(mpan) = m.export {
        element(out, "ExportMPAN", &mpan.to_string());
    }
    out.push_str("</sr:");
    out.push_str(name);
    out.push('>');
}
