//! The registration files on arbitrary bytes: the first byte splits the rest into
//! `devices.csv` and `registrations.csv`, which the loader reads as it reads the files on disk
//! (header, rows, cross-row checks, the line of the first fault); the whole input is also read
//! as `users.csv`. Nothing may panic; whatever loads is checked against itself: every
//! registration's meter point and role agree on the fuel.
#![no_main]

use std::path::PathBuf;

use dccgw::domain::{Mpxn, UserRole};
use dccgw::register::PartyRegister;
use dccgw::registry::{self, InMemory};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = std::str::from_utf8(data).map(PartyRegister::parse);
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut) * rest.len() / 256;
    let (devices, registrations) = rest.split_at(at);
    let devices = InMemory {
        name: PathBuf::from("devices.csv"),
        bytes: devices.to_vec(),
    };
    let registrations = InMemory {
        name: PathBuf::from("registrations.csv"),
        bytes: registrations.to_vec(),
    };
    let Ok(snapshot) = registry::load(&devices, &registrations) else {
        return;
    };
    for device in snapshot.devices() {
        let Some(mpxn) = device.mpxn else { continue };
        for r in snapshot.registrations(mpxn) {
            let electricity = matches!(mpxn, Mpxn::Mpan(_));
            let ok = match r.role {
                UserRole::ImportSupplier
                | UserRole::ExportSupplier
                | UserRole::ElectricityDistributor => electricity,
                UserRole::GasSupplier | UserRole::GasTransporter => !electricity,
                UserRole::RegisteredSupplierAgent | UserRole::OtherUser => true,
            };
            assert!(ok, "{:?} registered on {mpxn:?}", r.role);
        }
    }
});
