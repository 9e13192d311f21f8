//! 8.14.1–8.14.4 Communications Hub Status Updates: a comms hub installed or returned.
//!
//! - 8.14.1 Install Success (the hub reached the SM WAN): a hub Pending, Whitelisted or
//!   InstalledNotCommissioned becomes Commissioned.
//! - 8.14.2 Install, no SM WAN: a hub Pending or Whitelisted becomes InstalledNotCommissioned.
//!   For both, the User must be registered for the meter point the body names (the premises'),
//!   as a supplier is for a device request.
//! - 8.14.3 Fault Return and 8.14.4 No Fault Return: a hub neither Decommissioned nor Withdrawn
//!   becomes Withdrawn, and so does the gas proxy behind it (the same physical hub). A fault
//!   return's `OtherDeviceID` must be that gas proxy (E19 unknown, E11 otherwise).
//!
//! The device named must be a comms hub (E11); a status not listed is refused (E5). The DCC
//! Alert a withdrawn hub calls for (`CHFDecommissioning`) is raised by the change path.

use crate::auth::Denial;
use crate::domain::{DeviceId, DeviceStatus, DeviceType};
use crate::duis::services::{self, HubUpdateKind};
use crate::error::Error;
use crate::registry::{Change, Snapshot};

use super::super::plan::Planning;
use super::super::Gateway;
use super::body_error;
use super::inventory::{device_type, status};

impl Gateway {
    pub(super) fn hub_status(
        &self,
        p: &Planning<'_>,
        body: &[u8],
        element: &str,
        registry: &Snapshot,
    ) -> Result<Vec<Change>, Error> {
        use DeviceStatus::*;
        let update = services::read_hub_status_update(body, element).map_err(body_error)?;
        let deciding = match update.kind {
            HubUpdateKind::Installed { mpxn, .. } => vec![mpxn],
            HubUpdateKind::Returned { .. } => Vec::new(),
        };
        let hub = self.named(p, update.hub, &deciding, registry)?;
        if hub.device_type != DeviceType::Chf {
            return Err(device_type(p, &hub));
        }
        let set = |device, status| Change::SetDeviceStatus { device, status };
        match update.kind {
            HubUpdateKind::Installed { wan: true, .. } => match hub.status {
                Pending | Whitelisted | InstalledNotCommissioned => {
                    Ok(vec![set(hub.id, Commissioned)])
                }
                _ => Err(status(&hub)),
            },
            HubUpdateKind::Installed { wan: false, .. } => match hub.status {
                Pending | Whitelisted => Ok(vec![set(hub.id, InstalledNotCommissioned)]),
                _ => Err(status(&hub)),
            },
            HubUpdateKind::Returned { other, .. } => {
                if matches!(hub.status, Decommissioned | Withdrawn) {
                    return Err(status(&hub));
                }
                let proxies = gas_proxies(registry, hub.id);
                if let Some(other) = other {
                    check_other(p, registry, &proxies, other)?;
                }
                let mut changes = vec![set(hub.id, Withdrawn)];
                changes.extend(proxies.into_iter().map(|gpf| set(gpf, Withdrawn)));
                Ok(changes)
            }
        }
    }
}

/// The gas proxies behind `hub` not already out of the inventory, by ID.
fn gas_proxies(registry: &Snapshot, hub: DeviceId) -> Vec<DeviceId> {
    let mut out: Vec<DeviceId> = registry
        .devices_behind(hub)
        .filter(|d| d.device_type == DeviceType::Gpf)
        .filter(|d| {
            !matches!(
                d.status,
                DeviceStatus::Decommissioned | DeviceStatus::Withdrawn
            )
        })
        .map(|d| d.id)
        .collect();
    out.sort();
    out
}

/// A fault return's other device: a gas proxy behind the returned hub.
fn check_other(
    p: &Planning<'_>,
    registry: &Snapshot,
    proxies: &[DeviceId],
    other: DeviceId,
) -> Result<(), Error> {
    let d = registry
        .device(other)
        .ok_or(Error::Denied(Denial::UnknownDevice(other)))?;
    if proxies.contains(&other) {
        Ok(())
    } else {
        Err(device_type(p, &d))
    }
}
