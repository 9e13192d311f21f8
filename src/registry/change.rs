//! Live changes: each applies to a new snapshot that shares the old one's base, so a reader holding
//! the old snapshot keeps seeing the old state and nobody sees half a change.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{DeviceId, DeviceStatus, DeviceType, Mpxn, UserId, UserRole};

use super::base::{mpxn_code, role_index, Base, DevRow, RegRow};
use super::models::{DeviceModel, ModelTable, MAX_MODELS};
use super::overlay::Overlay;
use super::{check_device, check_registration, DeviceRecord, Registration, RowProblem, Snapshot};

/// One change to the registration data, as the admin API makes it and the durable log stores it
/// (JSON, tagged by `change`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// Adds a device or replaces its whole record.
    UpsertDevice(DeviceRecord),
    SetDeviceStatus {
        device: DeviceId,
        #[serde(with = "super::text")]
        status: DeviceStatus,
    },
    /// A new registration, e.g. the incoming supplier's on a change of supplier.
    AddRegistration {
        #[serde(with = "super::text")]
        mpxn: Mpxn,
        registration: Registration,
    },
    /// Sets a device's manufacturer and model (what 8.2 Read Inventory reports). An
    /// `upsert_device` keeps the model the device had; this changes it.
    SetDeviceModel {
        device: DeviceId,
        manufacturer: String,
        model: String,
    },
    /// Ends the registration of `user` in `role` on `mpxn` that is in effect at `at`, by setting
    /// its end to `at`; one that would then be empty (`at` is its start) is removed.
    EndRegistration {
        #[serde(with = "super::text")]
        mpxn: Mpxn,
        role: UserRole,
        user: UserId,
        at: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("the record breaks a rule: {0}")]
    Invalid(RowProblem),
    #[error("no device {0}")]
    UnknownDevice(DeviceId),
    #[error("device {device} is a CHF with devices behind it; it must stay a CHF")]
    ChfInUse { device: DeviceId },
    #[error("no {role} registration of {user} in effect at {at} on that meter point")]
    NoSuchRegistration {
        role: UserRole,
        user: UserId,
        at: i64,
    },
    #[error("the cache already holds {MAX_MODELS} distinct manufacturer and model pairs")]
    TooManyModels,
}

impl Snapshot {
    /// A new snapshot with `change` applied; `self` is unchanged. Costs a copy of the overlay.
    pub fn apply(&self, change: &Change) -> Result<Snapshot, ChangeError> {
        let mut overlay = (*self.overlay).clone();
        match *change {
            Change::UpsertDevice(d) => {
                self.check_upsert(&d)?;
                overlay.put_device(d, self.base.device_row(d.id.to_u64()).is_some());
            }
            Change::SetDeviceStatus { device, status } => {
                let d = self
                    .device(device)
                    .ok_or(ChangeError::UnknownDevice(device))?;
                let in_base = self.base.device_row(device.to_u64()).is_some();
                overlay.put_device(DeviceRecord { status, ..d }, in_base);
            }
            Change::SetDeviceModel {
                device,
                ref manufacturer,
                ref model,
            } => {
                self.device(device)
                    .ok_or(ChangeError::UnknownDevice(device))?;
                let wanted = DeviceModel::new(manufacturer, model).map_err(ChangeError::Invalid)?;
                let interned = self.intern_model(&mut overlay, wanted)?;
                overlay.put_model(device, interned);
            }
            Change::AddRegistration { mpxn, registration } => {
                check_registration(mpxn, &registration).map_err(ChangeError::Invalid)?;
                let mut list: Vec<Registration> = self.registrations(mpxn).collect();
                let clash = list.iter().any(|r| {
                    r.role == registration.role
                        && r.user == registration.user
                        && r.from < registration.to.unwrap_or(i64::MAX)
                        && registration.from < r.to.unwrap_or(i64::MAX)
                });
                if clash {
                    return Err(ChangeError::Invalid(RowProblem::Overlap));
                }
                list.push(registration);
                list.sort_unstable_by_key(Registration::order_key);
                overlay.put_registrations(mpxn, list);
            }
            Change::EndRegistration {
                mpxn,
                role,
                user,
                at,
            } => {
                let mut list: Vec<Registration> = self.registrations(mpxn).collect();
                let i = list
                    .iter()
                    .position(|r| r.role == role && r.user == user && r.covers(at))
                    .ok_or(ChangeError::NoSuchRegistration { role, user, at })?;
                if list[i].from == at {
                    list.remove(i);
                } else {
                    list[i].to = Some(at);
                }
                overlay.put_registrations(mpxn, list);
            }
        }
        Ok(Snapshot {
            base: Arc::clone(&self.base),
            overlay: Arc::new(overlay),
        })
    }

    /// The model table's entry for `wanted`, added to `overlay`'s new models if it is new.
    fn intern_model(
        &self,
        overlay: &mut Overlay,
        wanted: DeviceModel,
    ) -> Result<Arc<DeviceModel>, ChangeError> {
        let known = self
            .base
            .models
            .iter()
            .chain(&overlay.new_models)
            .find(|m| ***m == wanted)
            .cloned();
        match known {
            Some(m) => Ok(m),
            None if self.base.models.len() + overlay.new_models.len() >= MAX_MODELS => {
                Err(ChangeError::TooManyModels)
            }
            None => {
                let m = Arc::new(wanted);
                overlay.new_models.push(Arc::clone(&m));
                Ok(m)
            }
        }
    }

    /// All of `changes` or none of them, in one new snapshot.
    pub fn apply_all(&self, changes: &[Change]) -> Result<Snapshot, ChangeError> {
        changes.iter().try_fold(self.clone(), |s, c| s.apply(c))
    }

    fn check_upsert(&self, d: &DeviceRecord) -> Result<(), ChangeError> {
        check_device(d).map_err(ChangeError::Invalid)?;
        if let Some(chf) = d.chf {
            match self.device(chf) {
                None => return Err(ChangeError::Invalid(RowProblem::UnknownChf)),
                Some(c) if c.device_type != DeviceType::Chf => {
                    return Err(ChangeError::Invalid(RowProblem::NotAChf))
                }
                Some(_) => {}
            }
        }
        if d.device_type != DeviceType::Chf && self.devices_behind(d.id).next().is_some() {
            return Err(ChangeError::ChfInUse { device: d.id });
        }
        Ok(())
    }

    /// Folds the overlay into a new base (blocking: it sorts every row again; run it off the async
    /// workers). The result answers every look-up exactly as `self` does.
    pub fn compact(&self) -> Snapshot {
        let (base, overlay) = (&self.base, &self.overlay);
        // The models in use are among the base's and the overlay's new ones, which `apply`
        // keeps within MAX_MODELS together: every intern below finds a slot.
        let mut models = ModelTable::default();
        let remap: Vec<u8> = base
            .models
            .iter()
            .map(|m| models.intern(m).unwrap_or(0))
            .collect();
        let mut slot_of = |id: u64, base_slot: u8| -> u8 {
            match overlay.model(DeviceId::from_bytes(id.to_be_bytes())) {
                Some(m) => models.intern(m).unwrap_or(0),
                None => usize::from(base_slot)
                    .checked_sub(1)
                    .and_then(|i| remap.get(i).copied())
                    .unwrap_or(0),
            }
        };
        let mut devices: Vec<DevRow> = base
            .devices
            .iter()
            .filter(|r| !overlay.shadows(r.id))
            .map(|r| r.with_model_slot(slot_of(r.id, r.model_slot())))
            .collect();
        for d in overlay.all_devices() {
            let row = DevRow::encode(d);
            let base_slot = base.device_row(row.id).map_or(0, DevRow::model_slot);
            devices.push(row.with_model_slot(slot_of(row.id, base_slot)));
        }

        let shadowed: std::collections::HashSet<u64> = overlay
            .shadowed_mpxns()
            .map(|m| mpxn_code(Some(m)))
            .collect();
        let mut regs: Vec<RegRow> = base
            .regs
            .iter()
            .filter(|r| !shadowed.contains(&r.mpxn))
            .copied()
            .collect();
        let mut users = base.users.clone();
        let mut index: HashMap<UserId, u32> = users.iter().copied().zip(0..).collect();
        for (mpxn, list) in overlay.all_registrations() {
            for r in list {
                let user = *index.entry(r.user).or_insert_with(|| {
                    users.push(r.user);
                    (users.len() - 1) as u32
                });
                regs.push(RegRow {
                    mpxn: mpxn_code(Some(mpxn)),
                    from: r.from,
                    to: r.to.unwrap_or(i64::MAX),
                    user,
                    role: role_index(r.role),
                });
            }
        }
        let mut base = Base::build(devices, regs, users);
        base.models = models.list;
        Snapshot {
            base: Arc::new(base),
            overlay: Arc::default(),
        }
    }
}
