//! The readers of the DCC's own services' bodies on arbitrary bytes (and on the bytes wrapped
//! in each body element, so the fuzzer starts inside one): nothing may panic, and a firmware
//! request read never lists more devices than its bound, nor one twice.
#![no_main]

use dccgw::duis::services::{
    read_decommission, read_hub_status_update, read_prenotification, read_update_firmware,
    read_update_inventory, read_wan_matrix_request, MAX_FIRMWARE_DEVICES,
};
use libfuzzer_sys::fuzz_target;

const ELEMENTS: [&str; 10] = [
    "DecommissionDevice",
    "UpdateInventory",
    "DevicePrenotification",
    "CHFInstallSuccessSMWAN",
    "CHFInstallSuccessNoSMWAN",
    "CHFFaultReturn",
    "CHFNoFaultReturn",
    "UpdateFirmware",
    "UpdatePPMIDFirmware",
    "RequestWANMatrix",
];

fn read_all(body: &[u8], element: &str) {
    let _ = read_decommission(body);
    let _ = read_update_inventory(body);
    let _ = read_prenotification(body);
    let _ = read_hub_status_update(body, element);
    let _ = read_wan_matrix_request(body);
    if let Ok(update) = read_update_firmware(body, element) {
        assert!(update.devices.len() <= MAX_FIRMWARE_DEVICES);
        let unique: std::collections::HashSet<_> = update.devices.iter().collect();
        assert_eq!(unique.len(), update.devices.len());
    }
}

fuzz_target!(|data: &[u8]| {
    let element = ELEMENTS[usize::from(data.first().copied().unwrap_or(0)) % ELEMENTS.len()];
    read_all(data, element);
    let mut wrapped = format!("<sr:{element}>").into_bytes();
    wrapped.extend_from_slice(data);
    wrapped.extend_from_slice(format!("</sr:{element}>").as_bytes());
    read_all(&wrapped, element);
});
