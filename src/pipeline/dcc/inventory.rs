//! 8.3 Decommission Device, 8.4 Update Inventory and 12.2 Device Pre-notification: what each
//! makes of the inventory, as registration changes, and which devices and statuses each takes.
//!
//! - 8.3: any device but a comms hub (those leave through 8.14.3/8.14.4), in status
//!   Whitelisted, InstalledNotCommissioned, Commissioned, Suspended or Recovered, becomes
//!   Decommissioned (E11, E5 otherwise).
//! - 8.4 status: a device not yet commissioned (Pending, Whitelisted, InstalledNotCommissioned)
//!   moves to the status asked for; `UpdateDeviceStatusExceptCH` is for any device but a comms
//!   hub, `UpdateDeviceStatusCH` only for one (E11, E5 otherwise).
//! - 8.4 details: the manufacturer and model, for a device neither Decommissioned nor
//!   Withdrawn; what is not given is kept.
//! - 8.4 delete: a Pending device (and not a hub with devices behind it) leaves the inventory.
//!   The cache keeps every device it has known, so it is recorded as Withdrawn, which takes no
//!   request and raises the DCC Alert for a device removed.
//! - 8.4 MPxN: a meter's import meter point (of its own fuel: E11 otherwise); the cache holds
//!   no secondary import or export MPAN (E080405).
//! - 12.2: an unknown device becomes known as Pending, with its manufacturer and model, behind
//!   no hub and in no region yet; a Pending device of the same type is notified again (its
//!   model updated). A comms hub's associated gas proxy is pre-notified with it, behind it.

use crate::domain::{DeviceStatus, DeviceType, Mpxn};
use crate::duis::services::{self, InventoryUpdate, MpxnUpdate, Prenotification};
use crate::error::Error;
use crate::registry::{Change, CspRegion, DeviceRecord, Snapshot};

use super::super::plan::Planning;
use super::super::Gateway;
use super::body_error;
use crate::auth::Denial;

impl Gateway {
    pub(super) fn decommission(
        &self,
        p: &Planning<'_>,
        body: &[u8],
        registry: &Snapshot,
    ) -> Result<Vec<Change>, Error> {
        let device = services::read_decommission(body).map_err(body_error)?;
        let d = self.named(p, device, &[], registry)?;
        decommission(&d, p)
    }

    pub(super) fn update_inventory(
        &self,
        p: &Planning<'_>,
        body: &[u8],
        registry: &Snapshot,
    ) -> Result<Vec<Change>, Error> {
        let (device, update) = services::read_update_inventory(body).map_err(body_error)?;
        let d = self.named(p, device, &[], registry)?;
        update_inventory(&d, update, p, registry)
    }
}

pub(super) fn device_type(p: &Planning<'_>, d: &DeviceRecord) -> Error {
    Error::Denied(Denial::DeviceType {
        srv: p.entry.srv,
        device_type: d.device_type,
    })
}

pub(super) fn status(d: &DeviceRecord) -> Error {
    Error::Denied(Denial::DeviceStatus(d.status))
}

pub(super) fn decommission(d: &DeviceRecord, p: &Planning<'_>) -> Result<Vec<Change>, Error> {
    use DeviceStatus::*;
    if d.device_type == DeviceType::Chf {
        return Err(device_type(p, d));
    }
    match d.status {
        Whitelisted | InstalledNotCommissioned | Commissioned | Suspended | Recovered => {
            Ok(vec![Change::SetDeviceStatus {
                device: d.id,
                status: Decommissioned,
            }])
        }
        Pending | Decommissioned | Withdrawn | Recovery => Err(status(d)),
    }
}

/// Whether a device in `from` may be moved by 8.4: only before it is commissioned.
fn not_yet_commissioned(from: DeviceStatus) -> bool {
    use DeviceStatus::*;
    matches!(from, Pending | Whitelisted | InstalledNotCommissioned)
}

pub(super) fn update_inventory(
    d: &DeviceRecord,
    update: InventoryUpdate,
    p: &Planning<'_>,
    registry: &Snapshot,
) -> Result<Vec<Change>, Error> {
    let hub = d.device_type == DeviceType::Chf;
    let set = |status| {
        Ok(vec![Change::SetDeviceStatus {
            device: d.id,
            status,
        }])
    };
    match update {
        InventoryUpdate::Status(_) | InventoryUpdate::HubStatus(_)
            if hub != matches!(update, InventoryUpdate::HubStatus(_)) =>
        {
            Err(device_type(p, d))
        }
        InventoryUpdate::Status(to) | InventoryUpdate::HubStatus(to) => {
            if !not_yet_commissioned(d.status) {
                return Err(status(d));
            }
            if to == d.status {
                return Ok(Vec::new());
            }
            set(to)
        }
        InventoryUpdate::Details {
            manufacturer,
            model,
        } => details(d, manufacturer, model, registry),
        InventoryUpdate::Delete => {
            let in_use = hub && registry.devices_behind(d.id).next().is_some();
            if d.status != DeviceStatus::Pending || in_use {
                return Err(status(d));
            }
            set(DeviceStatus::Withdrawn)
        }
        InventoryUpdate::Mpxn(m) => meter_point(d, m, p),
    }
}

fn details(
    d: &DeviceRecord,
    manufacturer: Option<String>,
    model: Option<String>,
    registry: &Snapshot,
) -> Result<Vec<Change>, Error> {
    if matches!(
        d.status,
        DeviceStatus::Decommissioned | DeviceStatus::Withdrawn
    ) {
        return Err(status(d));
    }
    if manufacturer.is_none() && model.is_none() {
        return Ok(Vec::new());
    }
    let known = registry.model(d.id);
    let keep = |given: Option<String>, old: Option<&str>| {
        given.unwrap_or_else(|| old.unwrap_or_default().to_owned())
    };
    Ok(vec![Change::SetDeviceModel {
        device: d.id,
        manufacturer: keep(manufacturer, known.map(|m| m.manufacturer.as_str())),
        model: keep(model, known.map(|m| m.model.as_str())),
    }])
}

fn meter_point(
    d: &DeviceRecord,
    update: MpxnUpdate,
    p: &Planning<'_>,
) -> Result<Vec<Change>, Error> {
    let mpxn = match update {
        MpxnUpdate::Import(m) => m,
        MpxnUpdate::SecondaryImport(_) | MpxnUpdate::Export(_) => {
            return match d.device_type {
                DeviceType::Esme => Err(Error::InventoryFieldNotHeld),
                _ => Err(device_type(p, d)),
            }
        }
    };
    let fits = matches!(
        (d.device_type, mpxn),
        (DeviceType::Esme, Mpxn::Mpan(_)) | (DeviceType::Gsme | DeviceType::Gpf, Mpxn::Mprn(_))
    );
    if !fits {
        return Err(device_type(p, d));
    }
    if matches!(
        d.status,
        DeviceStatus::Decommissioned | DeviceStatus::Withdrawn
    ) {
        return Err(status(d));
    }
    if d.mpxn == Some(mpxn) {
        return Ok(Vec::new());
    }
    Ok(vec![Change::UpsertDevice(DeviceRecord {
        mpxn: Some(mpxn),
        ..*d
    })])
}

/// 12.2: the changes that make the pre-notified device (and a hub's gas proxy) known.
pub(super) fn prenotify(
    p: &Planning<'_>,
    body: &[u8],
    registry: &Snapshot,
) -> Result<Vec<Change>, Error> {
    let n = services::read_prenotification(body).map_err(body_error)?;
    let mut changes = notified(p, registry, &n, n.device, n.device_type, None)?;
    if let Some(gpf) = n.associated_gpf {
        if n.device_type != DeviceType::Chf {
            return Err(Error::Denied(Denial::DeviceType {
                srv: p.entry.srv,
                device_type: n.device_type,
            }));
        }
        changes.extend(notified(
            p,
            registry,
            &n,
            gpf,
            DeviceType::Gpf,
            Some(n.device),
        )?);
    }
    Ok(changes)
}

/// The changes that record `device` as pre-notified (of `device_type`, behind `hub`).
fn notified(
    p: &Planning<'_>,
    registry: &Snapshot,
    n: &Prenotification,
    device: crate::domain::DeviceId,
    device_type: DeviceType,
    hub: Option<crate::domain::DeviceId>,
) -> Result<Vec<Change>, Error> {
    let model = Change::SetDeviceModel {
        device,
        manufacturer: n.manufacturer.clone(),
        model: n.model.clone(),
    };
    match registry.device(device) {
        None => Ok(vec![
            Change::UpsertDevice(DeviceRecord {
                id: device,
                device_type,
                status: DeviceStatus::Pending,
                mpxn: None,
                chf: hub,
                region: CspRegion::Unknown,
            }),
            model,
        ]),
        Some(d) if d.device_type != device_type => Err(self::device_type(p, &d)),
        Some(d) if d.status != DeviceStatus::Pending => Err(status(&d)),
        Some(d) if hub.is_some() && d.chf != hub => Ok(vec![
            Change::UpsertDevice(DeviceRecord { chf: hub, ..d }),
            model,
        ]),
        Some(_) => Ok(vec![model]),
    }
}
