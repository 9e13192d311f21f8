//! Who receives a device alert: the audience its code names (the [`RoutingTable`]), resolved to
//! the Users registered for the device's meter point(s) at the instant of the alert.

use crate::domain::{DeviceId, Mpxn, UserId, UserRole};
use crate::registry::{DeviceRecord, Snapshot};

use super::{AlertsError, Audience, RoutingTable};

/// A device alert as the comms-hub network reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAlert {
    /// The gateway's identifier of this raised alert (unique, e.g. a journal sequence number):
    /// the counter of every message it becomes.
    pub id: u64,
    pub device: DeviceId,
    /// The GBCS alert code (`0x8F35`).
    pub code: u16,
    /// The alert's GBCS bytes.
    pub payload: Vec<u8>,
    /// When the device raised it (unix seconds): registrations in force then decide.
    pub at: i64,
}

/// One User a message goes to, and the role it gets it in (`None`: as the originator of the
/// request the message is about).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Recipient {
    pub user: UserId,
    pub role: Option<UserRole>,
}

/// The Users `alert` goes to, each once, in a stable order (meter points in order; supplier before
/// network operator). Refused when the device is unknown or nobody in the audience is
/// registered at the time.
pub fn route(
    table: &RoutingTable,
    alert: &DeviceAlert,
    registry: &Snapshot,
) -> Result<Vec<Recipient>, AlertsError> {
    let device = registry
        .device(alert.device)
        .ok_or(AlertsError::UnknownDevice(alert.device))?;
    let recipients = audience_at(&device, table.audience(alert.code), registry, alert.at);
    if recipients.is_empty() {
        return Err(AlertsError::NoRecipient {
            device: alert.device,
            code: alert.code,
        });
    }
    Ok(recipients)
}

/// The Users in `audience` for `device` at `at`, each once.
pub fn audience_at(
    device: &DeviceRecord,
    audience: Audience,
    registry: &Snapshot,
    at: i64,
) -> Vec<Recipient> {
    let mut out: Vec<Recipient> = Vec::new();
    for mpxn in registry.deciding_meter_points(device) {
        if audience.includes_supplier() {
            push_registered(&mut out, registry, mpxn, supplier_role(mpxn), at);
        }
        if audience.includes_network_operator() {
            push_registered(&mut out, registry, mpxn, network_operator_role(mpxn), at);
        }
    }
    out
}

/// Adds the Users registered for `mpxn` in `role` at `at` that `out` does not have yet.
pub(super) fn push_registered(
    out: &mut Vec<Recipient>,
    registry: &Snapshot,
    mpxn: Mpxn,
    role: UserRole,
    at: i64,
) {
    for user in registry.registered_at(mpxn, role, at) {
        push_unique(out, user, Some(role));
    }
}

/// Adds `user` unless `out` has it already (a User ID with two roles gets one copy).
pub(super) fn push_unique(out: &mut Vec<Recipient>, user: UserId, role: Option<UserRole>) {
    if !out.iter().any(|r| r.user == user) {
        out.push(Recipient { user, role });
    }
}

/// The supplier role for a meter point: Import Supplier (MPAN) or Gas Supplier (MPRN).
pub const fn supplier_role(mpxn: Mpxn) -> UserRole {
    match mpxn {
        Mpxn::Mpan(_) => UserRole::ImportSupplier,
        Mpxn::Mprn(_) => UserRole::GasSupplier,
    }
}

/// The network operator role: Electricity Distributor (MPAN) or Gas Transporter (MPRN).
pub const fn network_operator_role(mpxn: Mpxn) -> UserRole {
    match mpxn {
        Mpxn::Mpan(_) => UserRole::ElectricityDistributor,
        Mpxn::Mprn(_) => UserRole::GasTransporter,
    }
}
