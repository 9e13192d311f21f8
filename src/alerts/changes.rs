//! The DCC Alerts a registration change calls for: a device status change, a meter's new
//! identity, a change of supplier. Judged against the snapshot before the change.

use crate::domain::{DeviceType, UserRole};
use crate::duis::outbound::{DeviceStatusChange, MeterMpxns};
use crate::registry::{Change, Snapshot};

use super::dcc::{status_change, DccEvent};

/// The events `change`, applied to `before`, calls for (often none).
///
/// - A status change (`set_device_status`, or an `upsert_device` with another status) as
///   [`status_change`] reports it; an `upsert_device` that gives a meter another meter point as
///   `MeterIdentity`.
/// - A new supplier registration (`add_registration` in IS, ES or GS) on a meter point that had
///   another supplier in that role just before it starts: one change of supplier per meter
///   serving the meter point. A first registration is not a change of supplier.
pub fn events_for_change(before: &Snapshot, change: &Change) -> Vec<DccEvent> {
    match change {
        Change::SetDeviceStatus { device, status } => before
            .device(*device)
            .and_then(|d| status_change(&d, d.status, *status, before))
            .map(|change| DccEvent::DeviceStatusChange {
                device: *device,
                change,
            })
            .into_iter()
            .collect(),
        Change::UpsertDevice(new) => {
            let Some(old) = before.device(new.id) else {
                return Vec::new();
            };
            let change = status_change(&old, old.status, new.status, before).or_else(|| {
                let meter = matches!(
                    new.device_type,
                    DeviceType::Esme | DeviceType::Gsme | DeviceType::Gpf
                );
                match new.mpxn {
                    Some(m) if meter && old.mpxn != new.mpxn => Some(
                        DeviceStatusChange::MeterIdentity(MeterMpxns::import_only(m)),
                    ),
                    _ => None,
                }
            });
            change
                .map(|change| DccEvent::DeviceStatusChange {
                    device: new.id,
                    change,
                })
                .into_iter()
                .collect()
        }
        Change::AddRegistration { mpxn, registration } => {
            let role = registration.role;
            let supplier = matches!(
                role,
                UserRole::ImportSupplier | UserRole::ExportSupplier | UserRole::GasSupplier
            );
            if !supplier {
                return Vec::new();
            }
            let incoming = registration.user;
            let just_before = registration.from.saturating_sub(1);
            let mut outgoing: Vec<_> = before
                .registered_at(*mpxn, role, just_before)
                .filter(|u| *u != incoming)
                .collect();
            outgoing.sort();
            outgoing.dedup();
            if outgoing.is_empty() {
                return Vec::new();
            }
            let mut meters: Vec<_> = before
                .devices_at(*mpxn)
                .filter(|d| {
                    matches!(
                        d.device_type,
                        DeviceType::Esme | DeviceType::Gsme | DeviceType::Gpf
                    )
                })
                .map(|d| d.id)
                .collect();
            meters.sort();
            meters
                .into_iter()
                .map(|device| DccEvent::ChangeOfSupplier {
                    device,
                    mpxn: *mpxn,
                    role,
                    outgoing: outgoing.clone(),
                    incoming,
                })
                .collect()
        }
        // Neither ends nor product details concern a User as an alert.
        Change::EndRegistration { .. } | Change::SetDeviceModel { .. } => Vec::new(),
    }
}
