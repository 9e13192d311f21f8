//! Access control: whether this User, in which of its roles, may ask this of this device at this
//! time. A pure function of (request, party register, registration snapshot, instant); it returns
//! a [`Permit`] — which only this module can build, and which signing and routing will require —
//! or the [`Denial`] with the exact DUIS code, checked in this order:
//! E1 → E2 → E3 → E19 → E11 → E4 → E5 (`docs/access-control.md` says why E11 comes before E4).
//!
//! Rules where DUIS leaves the detail to us (also in `docs/access-control.md`):
//! - Roles: the User's roles that the SRV admits, tried in catalogue order; the first one the
//!   device's registrations admit is used and recorded in the permit.
//! - Eligibility: IS ES GS RSA are Type A (registered supplier or its agent), ED GT Type B
//!   (registered network operator), OU Type C (any User). A suspension names classes.
//! - Which meter points decide: the device's own MPxN; for a device without one (a comms hub, an
//!   IHD, a PPMID) the MPxNs of the meters behind the same hub. Registration is judged at the
//!   execution time (`ExecutionDateTime` for future-dated requests, else the request's arrival).
//! - Device status: device commands need a Commissioned, InstalledNotCommissioned or Recovered
//!   device; installation and device-management services (Service Reference family 8) also accept
//!   Pending and Whitelisted devices. Decommissioned, Withdrawn, Suspended and Recovery devices
//!   take none.
//! - Device type (E11): the catalogue's `device_types` for the SRV, derived from the GBCS use
//!   cases that carry it (`schemas/README.md`).

use crate::catalogue::SrvEntry;
use crate::domain::{DeviceId, DeviceStatus, DeviceType, Srv, UserId, UserRole};
use crate::register::{EligibilityClass, PartyRegister, UserStatus};
use crate::registry::Snapshot;

mod named;

#[cfg(test)]
mod tests;

pub use named::authorize_named;

/// Proof that access control admitted a request. Only [`authorize`] builds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    user: UserId,
    role: UserRole,
    class: EligibilityClass,
    srv: Srv,
    device: Option<DeviceId>,
    /// The device's type, as the registration data had it when the request was admitted.
    device_type: Option<DeviceType>,
}

impl Permit {
    pub fn user(&self) -> UserId {
        self.user
    }
    /// The role the gateway chose for the request (a User ID may carry several).
    pub fn role(&self) -> UserRole {
        self.role
    }
    pub fn class(&self) -> EligibilityClass {
        self.class
    }
    pub fn srv(&self) -> Srv {
        self.srv
    }
    /// `None` for non-device services.
    pub fn device(&self) -> Option<DeviceId> {
        self.device
    }
    /// The type of [`Self::device`]: which GBCS use case its command takes.
    pub fn device_type(&self) -> Option<DeviceType> {
        self.device_type
    }
}

/// Why access control refused a request; each maps to one DUIS code (`crate::error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("User {0} is not in the party register")]
    UnknownUser(UserId),
    #[error("none of the User's roles may send service reference variant {0}")]
    RoleNotEligible(Srv),
    #[error("the User's status does not allow this request")]
    UserStatus,
    #[error("device {0} does not exist")]
    UnknownDevice(DeviceId),
    #[error("the User is not registered for the device's meter point at the execution time")]
    NotRegistered,
    #[error("device status {0:?} does not allow this request")]
    DeviceStatus(DeviceStatus),
    #[error("service reference variant {srv} cannot target a device of type {device_type}")]
    DeviceType { srv: Srv, device_type: DeviceType },
}

/// What access control needs to know of a request.
#[derive(Clone, Copy, Debug)]
pub struct AccessRequest<'a> {
    pub originator: UserId,
    pub target: DeviceId,
    pub service: &'a SrvEntry,
    /// When the request takes effect (unix seconds): its ExecutionDateTime, or its arrival.
    pub at: i64,
}

/// The eligibility class of a role (the SEC's Type A, B and C services).
pub const fn class_of(role: UserRole) -> EligibilityClass {
    match role {
        UserRole::ImportSupplier
        | UserRole::ExportSupplier
        | UserRole::GasSupplier
        | UserRole::RegisteredSupplierAgent => EligibilityClass::A,
        UserRole::ElectricityDistributor | UserRole::GasTransporter => EligibilityClass::B,
        UserRole::OtherUser => EligibilityClass::C,
    }
}

pub fn authorize(
    req: &AccessRequest<'_>,
    register: &PartyRegister,
    registry: &Snapshot,
) -> Result<Permit, Denial> {
    let entry = req.service;
    let roles = roles_for(req, register)?;
    let permit = |role: UserRole, device: Option<(DeviceId, DeviceType)>| Permit {
        user: req.originator,
        role,
        class: class_of(role),
        srv: entry.srv,
        device: device.map(|d| d.0),
        device_type: device.map(|d| d.1),
    };
    if entry.non_device {
        return Ok(permit(roles[0], None));
    }
    // E19: the device exists.
    let device = registry
        .device(req.target)
        .ok_or(Denial::UnknownDevice(req.target))?;
    // E11: a device type the SRV may target. Before E4: a request no registration could make
    // valid (an electricity-only read sent to a gas meter) is refused as what it is.
    if !entry.targets(device.device_type) {
        return Err(Denial::DeviceType {
            srv: entry.srv,
            device_type: device.device_type,
        });
    }
    // E4: registered for the device's meter point(s) at the execution time, in one of the roles.
    let mpxns = registry.deciding_meter_points(&device);
    let role = roles
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
        .ok_or(Denial::NotRegistered)?;
    // E5: the device's status.
    if !status_allows(device.status, entry) {
        return Err(Denial::DeviceStatus(device.status));
    }
    Ok(permit(role, Some((device.id, device.device_type))))
}

/// The User's roles that may send the request's SRV and that its status leaves it, in catalogue
/// order: E1 (not a SEC Party), E2 (no role the SRV admits), E3 (withdrawn, or suspended for the
/// classes of all those roles).
fn roles_for(req: &AccessRequest<'_>, register: &PartyRegister) -> Result<Vec<UserRole>, Denial> {
    let entry = req.service;
    // E1: a SEC Party in some role.
    let user = register
        .get(&req.originator)
        .ok_or(Denial::UnknownUser(req.originator))?;
    // E2: a role the SRV admits.
    let mut roles: Vec<UserRole> = entry
        .roles
        .iter()
        .copied()
        .filter(|r| user.roles.contains(r))
        .collect();
    if roles.is_empty() {
        return Err(Denial::RoleNotEligible(entry.srv));
    }
    // E3: status, for the classes those roles fall in.
    match &user.status {
        UserStatus::Active => Ok(roles),
        UserStatus::Withdrawn => Err(Denial::UserStatus),
        UserStatus::Suspended(classes) => {
            roles.retain(|r| !classes.contains(&class_of(*r)));
            if roles.is_empty() {
                return Err(Denial::UserStatus);
            }
            Ok(roles)
        }
    }
}

fn status_allows(status: DeviceStatus, entry: &SrvEntry) -> bool {
    use DeviceStatus::*;
    let installation = entry.srv.service_reference().family() == 8;
    match status {
        Commissioned | InstalledNotCommissioned | Recovered => true,
        Pending | Whitelisted => installation,
        Decommissioned | Withdrawn | Suspended | Recovery => false,
    }
}
