//! The DCC's own services (Command Variant 8, at `serviceD`) that change or read what the DCC
//! holds, each in its own file: 8.3 Decommission Device, 8.4 Update Inventory and 12.2 Device
//! Pre-notification (`inventory.rs`), 8.14.1–8.14.4 Communications Hub Status Updates
//! (`hubs.rs`), 11.1 Update Firmware and 11.4 Update PPMID Firmware (`firmware.rs`), 12.1
//! Request WAN Matrix (`wan.rs`). `docs/dcc-services.md` says what each does and answers.
//!
//! Inventory changes are registration changes (`registry::Change`), planned here against the
//! registry in force, checked to apply, and made through the same durable path as the admin
//! API's (`State::apply_changes`: journalled, then visible, their DCC Alerts raised) before the
//! `I0` leaves. A firmware update is acknowledged (`I99`) once its distribution and its hub
//! commands are journalled; its final message follows from the replies task.

mod effects;
mod firmware;
mod hubs;
mod inventory;
mod wan;

#[cfg(test)]
mod tests;

use crate::auth::{self, AccessRequest, Permit};
use crate::domain::{DeviceId, Mpxn};
use crate::duis::services::BodyError;
use crate::duis::ResponsePayload;
use crate::error::Error;
use crate::registry::{Change, DeviceRecord, Snapshot};

pub(super) use effects::distribute;

use super::plan::{Effect, Plan, Planning, Reply};
use super::Gateway;

impl Gateway {
    /// The plan for one of the DCC's own services this module carries out; `None` for the
    /// others (planned elsewhere).
    pub(super) fn dcc_service(&self, p: &Planning<'_>) -> Option<Result<Plan, Error>> {
        let body = p.body.get(p.request.body.clone()).unwrap_or_default();
        let element = p.entry.body_element.as_str();
        let registry = self.state.registry();
        let changes = match element {
            "DecommissionDevice" => self.decommission(p, body, &registry),
            "UpdateInventory" => self.update_inventory(p, body, &registry),
            "DevicePrenotification" => inventory::prenotify(p, body, &registry),
            "CHFInstallSuccessSMWAN"
            | "CHFInstallSuccessNoSMWAN"
            | "CHFFaultReturn"
            | "CHFNoFaultReturn" => self.hub_status(p, body, element, &registry),
            "UpdateFirmware" | "UpdatePPMIDFirmware" => {
                return Some(self.update_firmware(p, body, element, &registry))
            }
            "RequestWANMatrix" => return Some(wan::request_wan_matrix(body)),
            _ => return None,
        };
        Some(changes.and_then(|c| changed(&registry, c)))
    }

    /// The record of `device`, which the request's body names, once access control admits the
    /// User for it (E19, E4; `deciding`: the meter points that decide, if the service names
    /// them).
    fn named(
        &self,
        p: &Planning<'_>,
        device: DeviceId,
        deciding: &[Mpxn],
        registry: &Snapshot,
    ) -> Result<DeviceRecord, Error> {
        self.named_permit(p, device, deciding, registry)
            .map(|(_, d)| d)
    }

    /// As [`Self::named`], with the permit access control gave.
    fn named_permit(
        &self,
        p: &Planning<'_>,
        device: DeviceId,
        deciding: &[Mpxn],
        registry: &Snapshot,
    ) -> Result<(Permit, DeviceRecord), Error> {
        let access = AccessRequest {
            originator: p.permit.user(),
            target: p.request.header.request_id.target,
            service: p.entry,
            at: p.at.unix_timestamp(),
        };
        let register = self.state.register();
        let permit = auth::authorize_named(&access, device, deciding, &register, registry)
            .map_err(Error::Denied)?;
        let record = registry
            .device(device)
            .ok_or(Error::Denied(auth::Denial::UnknownDevice(device)))?;
        Ok((permit, record))
    }
}

/// The plan for an inventory change: `I0` once the changes are durable and in force. An empty
/// change (nothing to do) is answered `I0` at once.
fn changed(registry: &Snapshot, changes: Vec<Change>) -> Result<Plan, Error> {
    // Checked against the registry now, so that what cannot apply is refused before the
    // counter is spent; applied again, atomically, when carried out.
    registry
        .apply_all(&changes)
        .map_err(Error::InventoryChange)?;
    let effects = match changes.is_empty() {
        true => Vec::new(),
        false => vec![Effect::Registry(changes)],
    };
    Ok(Plan {
        reply: Reply::Done(ResponsePayload::None),
        effects,
    })
}

fn body_error(e: BodyError) -> Error {
    Error::ServiceBody(e)
}
