//! DCC Alerts the gateway raises itself: what happened ([`DccEvent`]), which code it gets (the
//! one table of those choices, [`DccEvent::code`]), who receives it and its payload.

use time::OffsetDateTime;

use crate::domain::{
    DccAlertCode, DeviceId, DeviceStatus, DeviceType, Mpxn, RequestId, UserId, UserRole,
};
use crate::duis::outbound::{
    DccAlertBody, DccAlertPayload, DeviceStatusChange, MeterMpxns, QuarantineBreach,
};
use crate::duis::schedule::ScheduleId;
use crate::registry::{DeviceRecord, Snapshot};

use super::route::{audience_at, push_registered, push_unique};
use super::{AlertsError, Audience, Recipient};

/// An event the gateway tells Users about with a DCC Alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DccEvent {
    /// A comms hub reported a loss of mains power; one event per meter point behind it
    /// ([`power_outage_events`]). To the network operator of `mpxn`.
    PowerOutage {
        hub: DeviceId,
        mpxn: Mpxn,
        /// When the power went (unix seconds).
        started: i64,
    },
    /// A device's SMI status or identity changed. To the suppliers and network operators of its
    /// meter point(s).
    DeviceStatusChange {
        device: DeviceId,
        change: DeviceStatusChange,
    },
    /// A meter point changed supplier in `role`; one event per meter behind it. To the outgoing
    /// and the incoming supplier.
    ChangeOfSupplier {
        device: DeviceId,
        mpxn: Mpxn,
        role: UserRole,
        outgoing: Vec<UserId>,
        incoming: UserId,
    },
    /// A command the gateway accepted could not be carried out. To the request's originator.
    CommandFailure {
        request_id: RequestId,
        device: DeviceId,
        dsp_schedule_id: Option<u64>,
    },
    /// Anomaly detection quarantined a request. To the request's originator.
    Quarantined {
        request_id: RequestId,
        breach: QuarantineBreach,
        event_ref: u64,
    },
    /// A change of supplier removed the outgoing supplier's DSP schedule on a device. To that
    /// supplier.
    DspScheduleRemoved {
        device: DeviceId,
        schedule: ScheduleId,
        owner: UserId,
    },
    /// An 11.1 or 11.4 firmware image did not reach these devices (their hubs could not take
    /// it). To the request's originator.
    FirmwareDistributionFailure {
        request_id: RequestId,
        devices: Vec<DeviceId>,
    },
}

/// A DCC Alert raised: the event, the gateway's identifier for it (the counter of every message
/// it becomes), and when it happened (unix seconds; registrations in force then decide).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DccAlert {
    pub id: u64,
    pub event: DccEvent,
    pub at: i64,
}

impl DccEvent {
    /// The DCC Alert code each event is sent with. `AD1` is DUIS's own; the meanings of the N-codes
    /// are not in the public material this gateway is built from, so these are the gateway's
    /// choices, kept here and in `docs/alerts.md` only.
    pub fn code(&self) -> DccAlertCode {
        let n = match self {
            Self::Quarantined { .. } => return DccAlertCode::AD1,
            Self::PowerOutage { .. } => 1,
            Self::DeviceStatusChange { .. } => 2,
            Self::ChangeOfSupplier { .. } => 3,
            Self::CommandFailure { .. } => 4,
            Self::DspScheduleRemoved { .. } => 5,
            Self::FirmwareDistributionFailure { .. } => 11,
        };
        // Each is in the schema's enumeration.
        DccAlertCode::n(n).unwrap_or(DccAlertCode::N999)
    }

    /// The request the event is about, written as the alert's `RequestID`.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Self::CommandFailure { request_id, .. }
            | Self::Quarantined { request_id, .. }
            | Self::FirmwareDistributionFailure { request_id, .. } => Some(*request_id),
            Self::PowerOutage { .. }
            | Self::DeviceStatusChange { .. }
            | Self::ChangeOfSupplier { .. }
            | Self::DspScheduleRemoved { .. } => None,
        }
    }
}

/// The recipients and the checked payload of `alert`.
pub fn dcc_recipients(
    alert: &DccAlert,
    registry: &Snapshot,
) -> Result<(Vec<Recipient>, DccAlertBody), AlertsError> {
    let device = |id: DeviceId| registry.device(id).ok_or(AlertsError::UnknownDevice(id));
    let (recipients, payload) = match &alert.event {
        DccEvent::PowerOutage { hub, mpxn, started } => {
            power_outage(registry, *hub, *mpxn, *started, alert.at)?
        }
        DccEvent::DeviceStatusChange { device: id, change } => {
            let d = device(*id)?;
            let to = audience_at(&d, Audience::Both, registry, alert.at);
            let payload = DccAlertPayload::DeviceStatusChangeEvent {
                device: *id,
                change: change.clone(),
            };
            (to, payload)
        }
        DccEvent::ChangeOfSupplier {
            device: id,
            mpxn,
            role,
            outgoing,
            incoming,
        } => {
            let d = device(*id)?;
            change_of_supplier(&d, *mpxn, *role, outgoing, *incoming)
        }
        DccEvent::CommandFailure { .. }
        | DccEvent::Quarantined { .. }
        | DccEvent::DspScheduleRemoved { .. }
        | DccEvent::FirmwareDistributionFailure { .. } => {
            to_one_user(&alert.event).ok_or(AlertsError::NoDccRecipient(alert.event.code()))?
        }
    };
    if recipients.is_empty() {
        return Err(AlertsError::NoDccRecipient(alert.event.code()));
    }
    let body = DccAlertBody::new(payload).map_err(AlertsError::Write)?;
    Ok((recipients, body))
}

/// The recipient and payload of an event addressed to one User: a request's originator, or a
/// schedule's owner (`None` for the other events).
fn to_one_user(event: &DccEvent) -> Option<(Vec<Recipient>, DccAlertPayload)> {
    let one = match event {
        DccEvent::CommandFailure {
            request_id,
            device,
            dsp_schedule_id,
        } => (
            vec![originator(request_id)],
            DccAlertPayload::CommandFailure {
                request_id: *request_id,
                dsp_schedule_id: *dsp_schedule_id,
                device: *device,
            },
        ),
        DccEvent::Quarantined {
            request_id,
            breach,
            event_ref,
        } => (
            vec![originator(request_id)],
            DccAlertPayload::QuarantinedRequest {
                breach: *breach,
                request_id: *request_id,
                quarantine_event_ref: *event_ref,
            },
        ),
        DccEvent::FirmwareDistributionFailure {
            request_id,
            devices,
        } => (
            vec![originator(request_id)],
            DccAlertPayload::FirmwareDistributionFailure {
                request_id: *request_id,
                devices: devices.clone(),
            },
        ),
        DccEvent::DspScheduleRemoved {
            device,
            schedule,
            owner,
        } => (
            vec![Recipient {
                user: *owner,
                role: None,
            }],
            DccAlertPayload::DspScheduleRemoval {
                device: *device,
                schedule: *schedule,
            },
        ),
        DccEvent::PowerOutage { .. }
        | DccEvent::DeviceStatusChange { .. }
        | DccEvent::ChangeOfSupplier { .. } => return None,
    };
    Some(one)
}

/// A power outage: to the network operator of the meter point.
fn power_outage(
    registry: &Snapshot,
    hub: DeviceId,
    mpxn: Mpxn,
    started: i64,
    at: i64,
) -> Result<(Vec<Recipient>, DccAlertPayload), AlertsError> {
    let mut to = Vec::new();
    push_registered(&mut to, registry, mpxn, network_role(mpxn), at);
    let payload = DccAlertPayload::PowerOutageEvent {
        comms_hub: hub,
        start: unix(started)?,
        mpxn,
    };
    Ok((to, payload))
}

/// A change of supplier: to the outgoing and the incoming supplier.
fn change_of_supplier(
    d: &DeviceRecord,
    mpxn: Mpxn,
    role: UserRole,
    outgoing: &[UserId],
    incoming: UserId,
) -> (Vec<Recipient>, DccAlertPayload) {
    let mut to = Vec::new();
    for user in outgoing {
        push_unique(&mut to, *user, Some(role));
    }
    push_unique(&mut to, incoming, Some(role));
    let payload = DccAlertPayload::DeviceChangeOfSupplier {
        device: d.id,
        device_type: d.device_type,
        mpxns: MeterMpxns::import_only(mpxn),
    };
    (to, payload)
}

fn originator(request_id: &RequestId) -> Recipient {
    Recipient {
        user: request_id.originator,
        role: None,
    }
}

fn network_role(mpxn: Mpxn) -> UserRole {
    super::route::network_operator_role(mpxn)
}

fn unix(t: i64) -> Result<OffsetDateTime, AlertsError> {
    OffsetDateTime::from_unix_timestamp(t).map_err(|_| AlertsError::TimeOutOfRange(t))
}

/// One [`DccEvent::PowerOutage`] per meter point behind `hub`.
pub fn power_outage_events(hub: DeviceId, registry: &Snapshot, started: i64) -> Vec<DccEvent> {
    registry
        .meter_points_behind(hub)
        .into_iter()
        .map(|mpxn| DccEvent::PowerOutage { hub, mpxn, started })
        .collect()
}

/// The status change a move from `from` to `to` is reported as, if any. Moves within
/// installation and commissioning (Pending → … → Commissioned) and into Recovery are not.
pub fn status_change(
    device: &DeviceRecord,
    from: DeviceStatus,
    to: DeviceStatus,
    registry: &Snapshot,
) -> Option<DeviceStatusChange> {
    use DeviceStatus::*;
    if from == to {
        return None;
    }
    match to {
        Suspended => Some(DeviceStatusChange::DeviceSuspended),
        Decommissioned | Withdrawn => Some(removal(device, registry)),
        Recovered => Some(DeviceStatusChange::RecoveryComplete),
        _ if from == Suspended => Some(DeviceStatusChange::DeviceRestored),
        Pending | Whitelisted | InstalledNotCommissioned | Commissioned | Recovery => None,
    }
}

/// How a device leaving the inventory is reported: a meter with its meter point and (up to
/// seven) PPMIDs and HCALCSs behind the same hub; a comms hub; anything else.
fn removal(device: &DeviceRecord, registry: &Snapshot) -> DeviceStatusChange {
    match (device.device_type, device.mpxn) {
        (DeviceType::Chf, _) => DeviceStatusChange::ChfDecommissioning,
        (DeviceType::Esme | DeviceType::Gsme | DeviceType::Gpf, Some(mpxn)) => {
            let mut associated: Vec<(DeviceId, DeviceType)> = match device.chf {
                Some(hub) => registry
                    .devices_behind(hub)
                    .filter(|d| matches!(d.device_type, DeviceType::Ppmid | DeviceType::Hcalcs))
                    .map(|d| (d.id, d.device_type))
                    .collect(),
                None => Vec::new(),
            };
            associated.sort();
            associated.truncate(7);
            DeviceStatusChange::MeterDecommissioningOrWithdrawal {
                meter: MeterMpxns::import_only(mpxn),
                associated,
            }
        }
        _ => DeviceStatusChange::DeviceRemovedFromInventory,
    }
}
