//! The live changes since the base was built: device records that replace (or add to) the base's,
//! and whole per-meter-point registration lists that shadow the base's. Small by design —
//! `Snapshot::apply` copies it and `Snapshot::compact` folds it into a new base.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::domain::{DeviceId, Mpxn};

use super::models::DeviceModel;
use super::{DeviceRecord, Registration};

#[derive(Clone, Debug, Default)]
pub(super) struct Overlay {
    devices: HashMap<DeviceId, DeviceRecord>,
    /// (mpxn, device) for every overlay device with an MPxN.
    by_mpxn: BTreeSet<(Mpxn, DeviceId)>,
    /// (chf, device) for every overlay device behind a CHF.
    by_chf: BTreeSet<(DeviceId, DeviceId)>,
    /// Overlay devices the base does not have.
    new_devices: usize,
    /// The whole list for each changed meter point, in canonical order.
    registrations: HashMap<Mpxn, Vec<Registration>>,
    registration_count: usize,
    /// Models set by changes, by device (base or overlay).
    models: HashMap<DeviceId, Arc<DeviceModel>>,
    /// Distinct models set by changes that the base's table lacks.
    pub new_models: Vec<Arc<DeviceModel>>,
}

impl Overlay {
    pub fn device(&self, id: DeviceId) -> Option<DeviceRecord> {
        if self.devices.is_empty() {
            return None; // the common case: skip hashing
        }
        self.devices.get(&id).copied()
    }

    /// Whether the overlay replaces the base's device `id`.
    pub fn shadows(&self, id: u64) -> bool {
        !self.devices.is_empty()
            && self
                .devices
                .contains_key(&DeviceId::from_bytes(id.to_be_bytes()))
    }

    pub fn registrations(&self, mpxn: Mpxn) -> Option<&[Registration]> {
        if self.registrations.is_empty() {
            return None;
        }
        self.registrations.get(&mpxn).map(Vec::as_slice)
    }

    pub fn devices_at(&self, mpxn: Mpxn) -> impl Iterator<Item = DeviceRecord> + '_ {
        let lo = (mpxn, DeviceId::from_bytes([0; 8]));
        let hi = (mpxn, DeviceId::from_bytes([0xFF; 8]));
        self.by_mpxn
            .range(lo..=hi)
            .filter_map(|(_, id)| self.devices.get(id).copied())
    }

    pub fn devices_behind(&self, chf: DeviceId) -> impl Iterator<Item = DeviceRecord> + '_ {
        let lo = (chf, DeviceId::from_bytes([0; 8]));
        let hi = (chf, DeviceId::from_bytes([0xFF; 8]));
        self.by_chf
            .range(lo..=hi)
            .filter_map(|(_, id)| self.devices.get(id).copied())
    }

    pub fn model(&self, id: DeviceId) -> Option<&Arc<DeviceModel>> {
        if self.models.is_empty() {
            return None;
        }
        self.models.get(&id)
    }

    pub fn put_model(&mut self, id: DeviceId, model: Arc<DeviceModel>) {
        self.models.insert(id, model);
    }

    pub fn new_devices(&self) -> usize {
        self.new_devices
    }

    pub fn registration_count(&self) -> usize {
        self.registration_count
    }

    pub fn shadowed_mpxns(&self) -> impl Iterator<Item = Mpxn> + '_ {
        self.registrations.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.devices.len() + self.registrations.len() + self.models.len()
    }

    pub fn all_devices(&self) -> impl Iterator<Item = &DeviceRecord> + '_ {
        self.devices.values()
    }

    pub fn all_registrations(&self) -> impl Iterator<Item = (Mpxn, &[Registration])> + '_ {
        self.registrations.iter().map(|(m, l)| (*m, l.as_slice()))
    }

    /// Records `d`; `in_base` says whether the base has a device with its ID.
    pub fn put_device(&mut self, d: DeviceRecord, in_base: bool) {
        match self.devices.insert(d.id, d) {
            Some(old) => {
                if let Some(m) = old.mpxn {
                    self.by_mpxn.remove(&(m, old.id));
                }
                if let Some(c) = old.chf {
                    self.by_chf.remove(&(c, old.id));
                }
            }
            None if !in_base => self.new_devices += 1,
            None => {}
        }
        if let Some(m) = d.mpxn {
            self.by_mpxn.insert((m, d.id));
        }
        if let Some(c) = d.chf {
            self.by_chf.insert((c, d.id));
        }
    }

    /// Replaces the whole list for `mpxn`, which must be in canonical order.
    pub fn put_registrations(&mut self, mpxn: Mpxn, list: Vec<Registration>) {
        self.registration_count += list.len();
        if let Some(old) = self.registrations.insert(mpxn, list) {
            self.registration_count -= old.len();
        }
    }
}
