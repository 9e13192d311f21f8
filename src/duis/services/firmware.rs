//! 11.1 Update Firmware and 11.4 Update PPMID Firmware: the image, its version and the devices
//! to receive it (XSD `UpdateFirmware`, `UpdatePPMIDFirmware`); and the warning the DCC writes
//! about listed devices it will not send the image to (`DSPUpdateFirmwareWarning`,
//! `DSPUpdatePPMIDFirmwareWarning`).

use base64::Engine as _;
use ring::digest;

use super::fields::Fields;
use super::inventory::MAX_FIRMWARE_VERSION;
use super::BodyError;
use crate::domain::DeviceId;

/// The most devices one request may list. The schema's `DeviceIDList` holds up to 50,000; the
/// gateway takes 20,000, so that a distribution's durable record stays within the journal's
/// record bound (a longer list is refused as not readable).
pub const MAX_FIRMWARE_DEVICES: usize = 20_000;

/// An 11.1 or 11.4 request. The image itself is not kept: what travels on is its digest and
/// length (the hub network's commands are bounded far below an image's size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareUpdate {
    /// SHA-256 of the decoded `FirmwareImage`.
    pub image_digest: [u8; 32],
    /// Octets in the decoded image.
    pub image_len: usize,
    /// `FirmwareVersion`, 1 to 8 characters.
    pub version: String,
    /// `DeviceIDList`, each device once, in the order first listed.
    pub devices: Vec<DeviceId>,
}

/// Reads an `sr:UpdateFirmware` or `sr:UpdatePPMIDFirmware` (`element`).
pub fn read_update_firmware(body: &[u8], element: &str) -> Result<FirmwareUpdate, BodyError> {
    let mut f = Fields::read(body, element)?;
    let image = f.required("FirmwareImage")?;
    let compact: Vec<u8> = image.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let image = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| BodyError::Invalid("FirmwareImage"))?;
    let version = f.required("FirmwareVersion")?;
    if version.is_empty() || version.chars().count() > MAX_FIRMWARE_VERSION {
        return Err(BodyError::Invalid("FirmwareVersion"));
    }
    let list = f.required("DeviceIDList")?;
    let mut devices: Vec<DeviceId> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for part in list.split(',') {
        let id: DeviceId = part
            .parse()
            .map_err(|_| BodyError::Invalid("DeviceIDList"))?;
        if seen.insert(id) {
            if devices.len() == MAX_FIRMWARE_DEVICES {
                return Err(BodyError::Invalid("DeviceIDList"));
            }
            devices.push(id);
        }
    }
    f.finish()?;
    let mut image_digest = [0u8; 32];
    image_digest.copy_from_slice(digest::digest(&digest::SHA256, &image).as_ref());
    Ok(FirmwareUpdate {
        image_digest,
        image_len: image.len(),
        version,
        devices,
    })
}

/// The listed devices the DCC does not send the image to, and why (each list may be empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareWarning {
    /// Unknown devices, and devices the User is not registered for.
    pub invalid: Vec<DeviceId>,
    /// Devices not Commissioned.
    pub not_commissioned: Vec<DeviceId>,
    /// Devices of a type the service does not update.
    pub not_applicable: Vec<DeviceId>,
    /// Devices another distribution is still reaching.
    pub in_progress: Vec<DeviceId>,
}

impl FirmwareWarning {
    pub fn is_empty(&self) -> bool {
        self.invalid.is_empty()
            && self.not_commissioned.is_empty()
            && self.not_applicable.is_empty()
            && self.in_progress.is_empty()
    }

    /// Every device the warning names.
    pub fn len(&self) -> usize {
        self.invalid.len()
            + self.not_commissioned.len()
            + self.not_applicable.len()
            + self.in_progress.len()
    }
}

/// Writes `<sr:DSPUpdateFirmwareWarning>` (or, for 11.4, `<sr:DSPUpdatePPMIDFirmwareWarning>`),
/// its non-empty lists in the schema's order.
pub fn write_firmware_warning(warning: &FirmwareWarning, ppmid: bool) -> String {
    let name = if ppmid {
        "DSPUpdatePPMIDFirmwareWarning"
    } else {
        "DSPUpdateFirmwareWarning"
    };
    let mut out = String::with_capacity(64 + warning.len() * 24);
    out.push_str("<sr:");
    out.push_str(name);
    out.push('>');
    for (list, devices) in [
        ("InvalidDeviceIDList", &warning.invalid),
        ("NotCommissionedDeviceIDList", &warning.not_commissioned),
        ("NotApplicableFirmwareDeviceIDList", &warning.not_applicable),
        ("OtherRequestInProgressList", &warning.in_progress),
    ] {
        if devices.is_empty() {
            continue;
        }
        out.push_str("<sr:");
        out.push_str(list);
        out.push('>');
        push_ids(&mut out, devices);
        out.push_str("</sr:");
        out.push_str(list);
        out.push('>');
    }
    out.push_str("</sr:");
    out.push_str(name);
    out.push('>');
    out
}

/// Devices as a schema `DeviceIDList`: EUI-64s separated by commas.
pub fn push_ids(out: &mut String, devices: &[DeviceId]) {
    for (i, d) in devices.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&d.to_string());
    }
}
