//! Access control for a device a non-device service names in its body (8.3 Decommission
//! Device, 8.4 Update Inventory, 8.14.x Communications Hub Status Updates): the request's
//! target is the DCC, so [`authorize`](super::authorize) admits it by role alone; the device
//! the body names is then checked as a device request's target would be, up to registration:
//! E1 → E2 → E3 (as for any request) → E19 (the device exists) → E4 (the User is registered, in
//! an eligible role, for a meter point that decides for the device). Which device types and
//! statuses a service takes (E11, E5) is each service's own rule.
//!
//! The meter points that decide: those the service names (an installation names the premises'
//! meter point), else the device's own or those behind its hub, as for device requests. A
//! device no meter point decides for yet (a comms hub or device not installed, with no meters
//! behind it) is decided by role alone: no registration exists that could refuse it.

use crate::domain::{DeviceId, Mpxn};
use crate::register::{EligibilityClass, PartyRegister};
use crate::registry::Snapshot;

use super::{class_of, roles_for, AccessRequest, Denial, Permit};

/// The permit for `req` (a non-device request) acting on `device`, the meter points in
/// `deciding` deciding registration (empty: the device's own, as [`super::authorize`] finds
/// them).
pub fn authorize_named(
    req: &AccessRequest<'_>,
    device: DeviceId,
    deciding: &[Mpxn],
    register: &PartyRegister,
    registry: &Snapshot,
) -> Result<Permit, Denial> {
    let roles = roles_for(req, register)?;
    let record = registry
        .device(device)
        .ok_or(Denial::UnknownDevice(device))?;
    let mpxns = match deciding {
        [] => registry.deciding_meter_points(&record),
        given => given.to_vec(),
    };
    let role = if mpxns.is_empty() {
        roles[0]
    } else {
        roles
            .iter()
            .copied()
            .find(|role| {
                class_of(*role) == EligibilityClass::C
                    || mpxns.iter().any(|m| {
                        registry
                            .registered_at(*m, *role, req.at)
                            .any(|u| u == req.originator)
                    })
            })
            .ok_or(Denial::NotRegistered)?
    };
    Ok(Permit {
        user: req.originator,
        role,
        class: class_of(role),
        srv: req.service.srv,
        device: Some(device),
        device_type: Some(record.device_type),
    })
}
