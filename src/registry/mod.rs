//! The national registration cache: every device and every effective-dated registration of a
//! supplier or network operator to a meter point, for the whole country, in memory.
//!
//! A [`Snapshot`] is immutable and shared as `Arc<Snapshot>` (swapped whole by `state`, which
//! owns the live one). It is a large packed *base*, built once by [`load`] (from any [`Source`]
//! of the two files) or [`Snapshot::compact`], plus a
//! small *overlay* of live [`Change`]s that shadows it: [`Snapshot::apply`] returns a new snapshot
//! sharing the base, so a change never copies the 30 million rows and a reader never sees half of
//! one. Look-ups take `&self`, lock nothing and allocate nothing.
//!
//! File formats: `schemas/devices.md`, `schemas/registrations.md`.

mod base;
mod change;
mod load;
mod locate;
mod models;
mod overlay;
mod source;
/// Serde through `Display`/`FromStr` (also used by the audit trail's records).
pub(crate) mod text;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{DeviceId, DeviceStatus, DeviceType, Mpxn, UserId, UserRole};

use base::{mpxn_code, Base};
use overlay::Overlay;

pub use base::mix;
pub use change::{Change, ChangeError};
pub use load::{load, DEVICE_COLUMNS, REGISTRATION_COLUMNS};
pub use models::{DeviceModel, MAX_MODELS};
pub use source::{InMemory, Source};

/// The Communications Service Provider region a device is served from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum CspRegion {
    North,
    Central,
    South,
    /// Not known yet: a device pre-notified (12.2) before it is installed anywhere.
    Unknown,
}

impl CspRegion {
    /// The three regions first (the generator draws from them), then `Unknown`.
    pub const ALL: [CspRegion; 4] = [Self::North, Self::Central, Self::South, Self::Unknown];

    /// The DUIS schema's `CSPRegion` value.
    pub const fn duis_name(self) -> &'static str {
        match self {
            Self::North => "North",
            Self::Central => "Central",
            Self::South => "South",
            Self::Unknown => "Unknown",
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::North => "north",
            Self::Central => "central",
            Self::South => "south",
            Self::Unknown => "unknown",
        }
    }
}

impl FromStr for CspRegion {
    type Err = RowProblem;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(RowProblem::Region)
    }
}

impl fmt::Display for CspRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One device as the cache knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub id: DeviceId,
    #[serde(with = "text")]
    pub device_type: DeviceType,
    #[serde(with = "text")]
    pub status: DeviceStatus,
    /// The meter point the device serves; `None` for a CHF and unbound devices (an IHD).
    #[serde(with = "text::option")]
    pub mpxn: Option<Mpxn>,
    /// The communications hub the device is behind; `None` for a CHF.
    pub chf: Option<DeviceId>,
    #[serde(with = "text")]
    pub region: CspRegion,
}

/// One User registered to a meter point in a role over the half-open interval `[from, to)`, in
/// unix seconds; `to: None` is open-ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub role: UserRole,
    pub user: UserId,
    pub from: i64,
    pub to: Option<i64>,
}

impl Registration {
    /// Whether it is in effect at `at`: `from <= at < to`.
    pub fn covers(&self, at: i64) -> bool {
        self.from <= at && self.to.is_none_or(|to| at < to)
    }

    /// Canonical order within one meter point: role, user, start.
    fn order_key(&self) -> (u8, UserId, i64) {
        (base::role_index(self.role), self.user, self.from)
    }
}

/// Which registration file a problem is in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FileKind {
    Devices,
    Registrations,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Devices => "devices",
            Self::Registrations => "registrations",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file} file: the header row is missing or not the documented columns")]
    Header { file: FileKind },
    #[error("{file} file line {line}: {problem}")]
    Row {
        file: FileKind,
        line: u64,
        problem: RowProblem,
    },
    #[error("{file} file: more than {} rows", u32::MAX)]
    TooManyRows { file: FileKind },
    #[error("devices file: more than {MAX_MODELS} distinct manufacturer and model pairs")]
    TooManyModels,
}

/// What is wrong with one row (or one changed record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RowProblem {
    #[error("not a CSV row with the documented number of columns")]
    Shape,
    #[error("device_id is not an EUI-64")]
    DeviceId,
    #[error("device_type is not ESME GSME GPF CHF PPMID IHD CAD HCALCS")]
    DeviceType,
    #[error("status is not an SMI status")]
    Status,
    #[error("mpxn is not an MPAN (13 digits) or MPRN (6 to 10 digits)")]
    Mpxn,
    #[error("an ESME serves an MPAN; a GSME or GPF an MPRN")]
    MpxnKind,
    #[error("chf_id is not an EUI-64")]
    ChfId,
    #[error("a CHF has no mpxn and no chf_id")]
    ChfBound,
    #[error("a device cannot be behind itself")]
    OwnChf,
    #[error("csp_region is not north, central, south or unknown")]
    Region,
    #[error("role is not IS ES GS RSA ED GT (OU never registers)")]
    Role,
    #[error(
        "the role is not one of the meter point's fuel (IS ES ED on an MPAN, GS GT on an MPRN)"
    )]
    RoleFuel,
    #[error("user_id is not an EUI-64")]
    UserId,
    #[error("effective_from is not an RFC 3339 instant")]
    EffectiveFrom,
    #[error("effective_to is not empty or an RFC 3339 instant")]
    EffectiveTo,
    #[error("effective_to is not after effective_from")]
    EmptyInterval,
    #[error("the device ID appears twice")]
    DuplicateDevice,
    #[error("chf_id names no device")]
    UnknownChf,
    #[error("chf_id names a device that is not a CHF")]
    NotAChf,
    #[error("the registration overlaps another of the same user in the same role")]
    Overlap,
    #[error(
        "manufacturer or model longer than 30 characters, with a control character, or both empty"
    )]
    Model,
    #[error("more than {MAX_MODELS} distinct manufacturer and model pairs")]
    TooManyModels,
}

/// The rules one device record must keep by itself.
fn check_device(d: &DeviceRecord) -> Result<(), RowProblem> {
    use DeviceType::*;
    match (d.device_type, d.mpxn) {
        (Chf, _) if d.mpxn.is_some() || d.chf.is_some() => Err(RowProblem::ChfBound),
        (Esme, Some(Mpxn::Mprn(_))) | (Gsme | Gpf, Some(Mpxn::Mpan(_))) => {
            Err(RowProblem::MpxnKind)
        }
        _ if d.chf == Some(d.id) => Err(RowProblem::OwnChf),
        _ => Ok(()),
    }
}

/// Whether `role` can be registered on a meter point of `mpxn`'s fuel: import and export
/// suppliers and electricity distributors on an MPAN, gas suppliers and transporters on an MPRN,
/// a supplier's agent on either. Other Users never register.
pub const fn role_fits(role: UserRole, mpxn: Mpxn) -> bool {
    use UserRole::*;
    matches!(
        (role, mpxn),
        (
            ImportSupplier | ExportSupplier | ElectricityDistributor,
            Mpxn::Mpan(_)
        ) | (GasSupplier | GasTransporter, Mpxn::Mprn(_))
            | (RegisteredSupplierAgent, _)
    )
}

/// The rules one registration on `mpxn` must keep by itself.
fn check_registration(mpxn: Mpxn, r: &Registration) -> Result<(), RowProblem> {
    match r.to {
        _ if r.role == UserRole::OtherUser => Err(RowProblem::Role),
        _ if !role_fits(r.role, mpxn) => Err(RowProblem::RoleFuel),
        // i64::MAX is how the base writes "open".
        Some(i64::MAX) => Err(RowProblem::EffectiveTo),
        Some(to) if to <= r.from => Err(RowProblem::EmptyInterval),
        _ => Ok(()),
    }
}

/// One immutable state of the registration data.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    base: Arc<Base>,
    overlay: Arc<Overlay>,
}

impl Snapshot {
    /// No devices and no registrations.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn device(&self, id: DeviceId) -> Option<DeviceRecord> {
        if let Some(d) = self.overlay.device(id) {
            return Some(d);
        }
        self.base.device_row(id.to_u64()).map(|r| r.decode())
    }

    /// The device's manufacturer and model, when known.
    pub fn model(&self, id: DeviceId) -> Option<&DeviceModel> {
        if let Some(m) = self.overlay.model(id) {
            return Some(m);
        }
        let row = self.base.device_row(id.to_u64())?;
        models::ModelTable::get(&self.base.models, row.model_slot()).map(|m| &**m)
    }

    /// The premises an 8.2 inventory reports for `device`: its comms hub and every device behind
    /// that hub (the hub first, then by ID); a device bound to no hub alone. Empty when the
    /// device is unknown.
    pub fn premises(&self, device: DeviceId) -> Vec<DeviceRecord> {
        let Some(d) = self.device(device) else {
            return Vec::new();
        };
        let hub = match (d.device_type, d.chf) {
            (DeviceType::Chf, _) => d.id,
            (_, Some(chf)) => chf,
            (_, None) => return vec![d],
        };
        let mut behind: Vec<DeviceRecord> = self.devices_behind(hub).collect();
        behind.sort_unstable_by_key(|d| d.id);
        let mut out: Vec<DeviceRecord> = self.device(hub).into_iter().collect();
        out.append(&mut behind);
        out
    }

    /// Every registration (past, present and future) on `mpxn`, ordered by role, user and start.
    pub fn registrations(&self, mpxn: Mpxn) -> impl Iterator<Item = Registration> + '_ {
        let shadow = self.overlay.registrations(mpxn);
        let code = mpxn_code(Some(mpxn));
        let base = match shadow {
            Some(_) => &[][..],
            None => self.base.reg_bucket(code),
        };
        let users = &self.base.users;
        shadow.into_iter().flatten().copied().chain(
            base.iter()
                .filter(move |r| r.mpxn == code)
                .map(|r| r.decode(users)),
        )
    }

    /// Users registered for `mpxn` in `role` at instant `at` (unix seconds).
    pub fn registered_at(
        &self,
        mpxn: Mpxn,
        role: UserRole,
        at: i64,
    ) -> impl Iterator<Item = UserId> + '_ {
        self.registrations(mpxn)
            .filter(move |r| r.role == role && r.covers(at))
            .map(|r| r.user)
    }

    /// The devices serving `mpxn` (the 8.2 inventory by meter point), in no particular order.
    pub fn devices_at(&self, mpxn: Mpxn) -> impl Iterator<Item = DeviceRecord> + '_ {
        let base = self
            .base
            .devices_with_mpxn(mpxn_code(Some(mpxn)))
            .filter(|r| !self.overlay.shadows(r.id))
            .map(|r| r.decode());
        base.chain(self.overlay.devices_at(mpxn))
    }

    /// The devices behind the comms hub `chf`, in no particular order.
    pub fn devices_behind(&self, chf: DeviceId) -> impl Iterator<Item = DeviceRecord> + '_ {
        let base = self
            .base
            .devices_with_chf(chf.to_u64())
            .filter(|r| !self.overlay.shadows(r.id))
            .map(|r| r.decode());
        base.chain(self.overlay.devices_behind(chf))
    }

    /// The meter points whose registrations decide who may act for `device` and who hears its
    /// alerts: the device's own; for a device without one (a comms hub, a PPMID, an IHD) those
    /// of the meters behind the same hub, in order, each once.
    pub fn deciding_meter_points(&self, device: &DeviceRecord) -> Vec<Mpxn> {
        match device.mpxn {
            Some(m) => vec![m],
            None => self.meter_points_behind(device.chf.unwrap_or(device.id)),
        }
    }

    /// The meter points of the meters behind the comms hub `hub`, in order, each once.
    pub fn meter_points_behind(&self, hub: DeviceId) -> Vec<Mpxn> {
        let mut out: Vec<Mpxn> = self.devices_behind(hub).filter_map(|d| d.mpxn).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every device, in no particular order (the comms-hub simulator walks the fleet once).
    pub fn devices(&self) -> impl Iterator<Item = DeviceRecord> + '_ {
        let base = self
            .base
            .devices
            .iter()
            .filter(|r| !self.overlay.shadows(r.id))
            .map(|r| r.decode());
        base.chain(self.overlay.all_devices().copied())
    }

    /// Every User some registration names (past, present or future), each at least once.
    pub fn registered_users(&self) -> impl Iterator<Item = UserId> + '_ {
        let overlay = self
            .overlay
            .all_registrations()
            .flat_map(|(_, list)| list.iter().map(|r| r.user));
        self.base.users.iter().copied().chain(overlay)
    }

    pub fn device_count(&self) -> usize {
        self.base.devices.len() + self.overlay.new_devices()
    }

    pub fn registration_count(&self) -> usize {
        let shadowed: usize = self
            .overlay
            .shadowed_mpxns()
            .map(|m| {
                let code = mpxn_code(Some(m));
                self.base
                    .reg_bucket(code)
                    .iter()
                    .filter(|r| r.mpxn == code)
                    .count()
            })
            .sum();
        self.base.regs.len() - shadowed + self.overlay.registration_count()
    }

    /// How many changed devices, meter points and device models the overlay holds: what `apply`
    /// copies, and what `compact` folds away (`state` decides when).
    pub fn overlay_len(&self) -> usize {
        self.overlay.len()
    }

    /// Bytes held by the base's columns and tables.
    pub fn base_heap_bytes(&self) -> usize {
        self.base.heap_bytes()
    }
}
