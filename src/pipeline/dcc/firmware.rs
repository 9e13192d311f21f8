//! 11.1 Update Firmware and 11.4 Update PPMID Firmware: the DCC distributes the image to the
//! listed devices through their comms hubs, and reports the outcome.
//!
//! Each listed device is sorted: unknown or not the User's (as access control judges a device
//! request's target: E19, E4) → invalid; of a type the service does not update (11.1: ESME,
//! GSME, HCALCS; 11.4: PPMID) → not applicable; not Commissioned → not commissioned; in another
//! distribution in progress → other request in progress; the rest go, grouped by hub. If none
//! goes, the request is refused (`E110101`, `E110401`). Otherwise it is acknowledged (`I99`)
//! once the distribution and one command per hub are journalled; the image's digest, length,
//! version and the hub's devices travel in the hub's GBCS command (an image is far larger than
//! a command may be). When every hub has answered, the originator gets a
//! `FirmwareDistributionFailure` DCC Alert naming the devices behind hubs that did not take the
//! image (if any), then the Service Response (`I0`, with the warning listing the devices not
//! sent to, if any): see `replies`.

use std::collections::BTreeMap;

use crate::domain::{CommandVariant, DeviceId, DeviceStatus, DeviceType, RequestId};
use crate::duis::services::{self, FirmwareUpdate, FirmwareWarning};
use crate::error::Error;
use crate::firmware::{hub_request_id, Distribution, HubTransfer};
use crate::gbcs::command::{CommandError, NO_PUBLIC_CODE};
use crate::gbcs::usecase::{self, body, Parties};
use crate::registry::Snapshot;
use crate::routing::{Command, SignedCommand};

use super::super::plan::{Effect, Plan, Planning, Reply};
use super::super::Gateway;
use super::body_error;

/// The device types 11.1 updates.
const FIRMWARE_TYPES: &[DeviceType] = &[DeviceType::Esme, DeviceType::Gsme, DeviceType::Hcalcs];
/// The device types 11.4 updates.
const PPMID_FIRMWARE_TYPES: &[DeviceType] = &[DeviceType::Ppmid];

impl Gateway {
    pub(super) fn update_firmware(
        &self,
        p: &Planning<'_>,
        body: &[u8],
        element: &str,
        registry: &Snapshot,
    ) -> Result<Plan, Error> {
        let ppmid = element == "UpdatePPMIDFirmware";
        let update = services::read_update_firmware(body, element).map_err(body_error)?;
        if !self.routing.firmware.has_room() {
            return Err(Error::FirmwareBusy);
        }
        let (by_hub, mut warning) = self.sort_devices(p, &update, ppmid, registry);
        let request_id = p.request.header.request_id;
        let (mut hubs, mut commands) = (Vec::new(), Vec::new());
        for (hub, devices) in by_hub {
            match self.hub_command(p, &update, hub, &devices, registry) {
                Some(command) => {
                    commands.push(command?);
                    hubs.push(HubTransfer {
                        hub,
                        devices,
                        delivered: None,
                    });
                }
                // A hub the User may not reach: its devices are not the User's to update.
                None => warning.invalid.extend(devices),
            }
        }
        if hubs.is_empty() {
            return Err(Error::FirmwareNoDevice { ppmid });
        }
        let distribution = Distribution {
            request_id,
            srv: p.entry.srv,
            version: update.version,
            warning,
            hubs,
            at: p.at.unix_timestamp(),
        };
        Ok(Plan {
            reply: Reply::Acknowledged,
            effects: vec![Effect::Distribute {
                distribution,
                commands,
            }],
        })
    }

    /// The devices the image goes to, by hub, and those it does not, with why.
    fn sort_devices(
        &self,
        p: &Planning<'_>,
        update: &FirmwareUpdate,
        ppmid: bool,
        registry: &Snapshot,
    ) -> (BTreeMap<DeviceId, Vec<DeviceId>>, FirmwareWarning) {
        let types = if ppmid {
            PPMID_FIRMWARE_TYPES
        } else {
            FIRMWARE_TYPES
        };
        let mut warning = FirmwareWarning::default();
        let mut hubs: BTreeMap<DeviceId, Vec<DeviceId>> = BTreeMap::new();
        for &id in &update.devices {
            let Ok(d) = self.named(p, id, &[], registry) else {
                warning.invalid.push(id);
                continue;
            };
            if !types.contains(&d.device_type) {
                warning.not_applicable.push(id);
            } else if d.status != DeviceStatus::Commissioned {
                warning.not_commissioned.push(id);
            } else if self.routing.firmware.in_progress(id) {
                warning.in_progress.push(id);
            } else if let Some(hub) = d.chf {
                hubs.entry(hub).or_default().push(id);
            } else {
                warning.invalid.push(id);
            }
        }
        (hubs, warning)
    }

    /// The signed command taking the image to `hub` for `devices`; `None` when access control
    /// does not admit the User for the hub.
    fn hub_command(
        &self,
        p: &Planning<'_>,
        update: &FirmwareUpdate,
        hub: DeviceId,
        devices: &[DeviceId],
        registry: &Snapshot,
    ) -> Option<Result<SignedCommand, Error>> {
        let (permit, _) = self.named_permit(p, hub, &[], registry).ok()?;
        let id = hub_request_id(&p.request.header.request_id, hub);
        // Command Variant 1: the DCC's own command, sent to the hub over the WAN.
        let variant = CommandVariant::try_from(1).ok()?;
        let line = distribution_payload(p, update, devices);
        let signed = distribution_command(p, id, &line).and_then(|payload| {
            Command::from_permit(&permit, id, variant, None, payload)
                .and_then(|c| self.routing.signer.sign(&c))
                .map_err(Error::Command)
        });
        Some(signed)
    }
}

/// The GBCS command a hub receives: from the User to the hub under the request's counter, in
/// the body encoding (`schemas/gbcs.md`) of `line` under the stand-in message code (Distribute
/// Firmware, CS05a–c, has no public one), unsigned behind the DCC's MAC header.
pub(super) fn distribution_command(
    p: &Planning<'_>,
    id: RequestId,
    line: &[u8],
) -> Result<Vec<u8>, Error> {
    let content = body::command_content(p.entry.srv, line)
        .map_err(|e| Error::CommandBody(CommandError::Content(e)))?;
    let parties = Parties {
        user: id.originator,
        device: id.target,
        counter: id.counter,
    };
    let frame = usecase::command_frame(&parties, NO_PUBLIC_CODE, content, false);
    super::super::command::seal(frame)
}

/// What a hub's command carries, one line of text:
/// `dccgw-firmware/1 srv=11.1 version=<v> sha256=<hex> octets=<n> devices=<id>,<id>`.
fn distribution_payload(
    p: &Planning<'_>,
    update: &FirmwareUpdate,
    devices: &[DeviceId],
) -> Vec<u8> {
    let digest: String = update
        .image_digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut out = format!(
        "dccgw-firmware/1 srv={} version={} sha256={digest} octets={} devices=",
        p.entry.srv, update.version, update.image_len
    );
    services::push_ids(&mut out, devices);
    out.into_bytes()
}
