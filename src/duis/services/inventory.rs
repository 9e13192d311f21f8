//! 8.3 Decommission Device, 8.4 Update Inventory and 12.2 Device Pre-notification: the device
//! each names and what is to become of it in the inventory (XSD `DecommissionDevice`,
//! `UpdateInventory`, `DevicePrenotification`).

use super::fields::Fields;
use super::BodyError;
use crate::domain::{DeviceId, DeviceStatus, DeviceType, Mpxn};

/// The schema's `ESMEVariant` values.
const ESME_VARIANTS: &[&str] = &[
    "A", "B", "C", "AD", "BD", "CD", "ADE", "BDE", "CDE", "ADF", "BDF", "CDF", "ADEF", "BDEF",
    "CDEF", "ADG", "ADEG", "AF", "BF", "CF", "AEF", "BEF", "CEF", "AG", "AEG",
];
/// `DeviceManufacturer`, `DeviceModel`: at most 30 characters.
const MAX_NAME: usize = 30;
/// `SMETSCHTSVersion`: 1 to 20 characters.
const MAX_SMETS_VERSION: usize = 20;
/// `FirmwareVersion`: 1 to 8 characters.
pub(super) const MAX_FIRMWARE_VERSION: usize = 8;

/// What an 8.4 Update Inventory asks for (the schema's choice of one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InventoryUpdate {
    /// `UpdateDeviceStatusExceptCH`: `Pending` or `InstalledNotCommissioned`, for a device other
    /// than a comms hub.
    Status(DeviceStatus),
    /// `UpdateDeviceStatusCH`: `Commissioned`, `Withdrawn` or `InstalledNotCommissioned`, for a
    /// comms hub.
    HubStatus(DeviceStatus),
    /// `UpdateDeviceDetails`: the manufacturer and model, each when given. The SMETS/CHTS
    /// version, firmware version and ESME variant are checked against the schema but not held
    /// by the registration cache.
    Details {
        manufacturer: Option<String>,
        model: Option<String>,
    },
    /// `DeleteDevice`.
    Delete,
    /// `UpdateMPxN`.
    Mpxn(MpxnUpdate),
}

/// Which meter point an `UpdateMPxN` sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MpxnUpdate {
    Import(Mpxn),
    /// An MPAN.
    SecondaryImport(Mpxn),
    /// An MPAN.
    Export(Mpxn),
}

/// A 12.2 Device Pre-notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prenotification {
    pub device: DeviceId,
    pub device_type: DeviceType,
    pub manufacturer: String,
    pub model: String,
    /// `AssociatedGPFDeviceID`: the gas proxy that comes with a comms hub.
    pub associated_gpf: Option<DeviceId>,
}

/// Reads an `sr:DecommissionDevice`: the device to decommission.
pub fn read_decommission(body: &[u8]) -> Result<DeviceId, BodyError> {
    let mut f = Fields::read(body, "DecommissionDevice")?;
    let device = f.parsed("DeviceID")?;
    f.finish()?;
    Ok(device)
}

/// Reads an `sr:UpdateInventory`: the device and the one update asked for.
pub fn read_update_inventory(body: &[u8]) -> Result<(DeviceId, InventoryUpdate), BodyError> {
    let mut f = Fields::read(body, "UpdateInventory")?;
    let device = f.parsed("DeviceID")?;
    let branches = [
        "UpdateDeviceStatusExceptCH",
        "UpdateDeviceStatusCH",
        "UpdateDeviceDetails",
        "DeleteDevice",
        "UpdateMPxN",
    ];
    let present: Vec<&str> = branches.into_iter().filter(|b| f.has(b)).collect();
    let update = match present.as_slice() {
        ["UpdateDeviceStatusExceptCH"] => {
            let status = f.parsed("UpdateDeviceStatusExceptCH")?;
            match status {
                DeviceStatus::Pending | DeviceStatus::InstalledNotCommissioned => {
                    InventoryUpdate::Status(status)
                }
                _ => return Err(BodyError::Invalid("UpdateDeviceStatusExceptCH")),
            }
        }
        ["UpdateDeviceStatusCH"] => {
            let status = f.parsed("UpdateDeviceStatusCH")?;
            match status {
                DeviceStatus::Commissioned
                | DeviceStatus::Withdrawn
                | DeviceStatus::InstalledNotCommissioned => InventoryUpdate::HubStatus(status),
                _ => return Err(BodyError::Invalid("UpdateDeviceStatusCH")),
            }
        }
        ["UpdateDeviceDetails"] => details(&mut f)?,
        ["DeleteDevice"] => match f.required("DeleteDevice")?.as_str() {
            "" => InventoryUpdate::Delete,
            _ => return Err(BodyError::Invalid("DeleteDevice")),
        },
        ["UpdateMPxN"] => InventoryUpdate::Mpxn(mpxn_update(&mut f)?),
        [] => return Err(BodyError::Missing("an update (UpdateDeviceStatusExceptCH, UpdateDeviceStatusCH, UpdateDeviceDetails, DeleteDevice or UpdateMPxN)")),
        _ => return Err(BodyError::Unexpected),
    };
    f.finish()?;
    Ok((device, update))
}

fn details(f: &mut Fields) -> Result<InventoryUpdate, BodyError> {
    // An `UpdateDeviceDetails` with nothing in it is a leaf of its own.
    if f.take("UpdateDeviceDetails").is_some_and(|t| !t.is_empty()) {
        return Err(BodyError::Invalid("UpdateDeviceDetails"));
    }
    let manufacturer = f.text("UpdateDeviceDetails/DeviceManufacturer", MAX_NAME)?;
    let model = f.text("UpdateDeviceDetails/DeviceModel", MAX_NAME)?;
    let smets = f.text("UpdateDeviceDetails/SMETSCHTSVersion", MAX_SMETS_VERSION)?;
    if smets.is_some_and(|v| v.is_empty()) {
        return Err(BodyError::Invalid("UpdateDeviceDetails/SMETSCHTSVersion"));
    }
    let firmware = f.text("UpdateDeviceDetails/FirmwareVersion", MAX_FIRMWARE_VERSION)?;
    if firmware.is_some_and(|v| v.is_empty()) {
        return Err(BodyError::Invalid("UpdateDeviceDetails/FirmwareVersion"));
    }
    if let Some(v) = f.take("UpdateDeviceDetails/ESMEVariant") {
        if !ESME_VARIANTS.contains(&v.as_str()) {
            return Err(BodyError::Invalid("UpdateDeviceDetails/ESMEVariant"));
        }
    }
    Ok(InventoryUpdate::Details {
        manufacturer,
        model,
    })
}

fn mpxn_update(f: &mut Fields) -> Result<MpxnUpdate, BodyError> {
    let mpan = |m: Mpxn, path| match m {
        Mpxn::Mpan(_) => Ok(m),
        Mpxn::Mprn(_) => Err(BodyError::Invalid(path)),
    };
    if let Some(m) = f.optional("UpdateMPxN/ImportMPxN")? {
        return Ok(MpxnUpdate::Import(m));
    }
    if let Some(m) = f.optional("UpdateMPxN/SecondaryImportMPAN")? {
        return mpan(m, "UpdateMPxN/SecondaryImportMPAN").map(MpxnUpdate::SecondaryImport);
    }
    if let Some(m) = f.optional("UpdateMPxN/ExportMPAN")? {
        return mpan(m, "UpdateMPxN/ExportMPAN").map(MpxnUpdate::Export);
    }
    Err(BodyError::Missing("UpdateMPxN/ImportMPxN"))
}

/// Reads an `sr:DevicePrenotification`.
pub fn read_prenotification(body: &[u8]) -> Result<Prenotification, BodyError> {
    let mut f = Fields::read(body, "DevicePrenotification")?;
    let device = f.parsed("DeviceID")?;
    let manufacturer = f
        .text("DeviceManufacturer", MAX_NAME)?
        .ok_or(BodyError::Missing("DeviceManufacturer"))?;
    let model = f
        .text("DeviceModel", MAX_NAME)?
        .ok_or(BodyError::Missing("DeviceModel"))?;
    let device_type = f.parsed("DeviceType")?;
    if f.text("SMETSCHTSVersion", MAX_SMETS_VERSION)?
        .is_some_and(|v| v.is_empty())
    {
        return Err(BodyError::Invalid("SMETSCHTSVersion"));
    }
    if f.text("FirmwareVersion", MAX_FIRMWARE_VERSION)?
        .is_some_and(|v| v.is_empty())
    {
        return Err(BodyError::Invalid("FirmwareVersion"));
    }
    if let Some(v) = f.take("ESMEVariant") {
        if !ESME_VARIANTS.contains(&v.as_str()) {
            return Err(BodyError::Invalid("ESMEVariant"));
        }
    }
    let associated_gpf = f.optional("AssociatedGPFDeviceID")?;
    f.finish()?;
    Ok(Prenotification {
        device,
        device_type,
        manufacturer,
        model,
        associated_gpf,
    })
}
