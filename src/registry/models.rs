//! Device manufacturers and models (what an 8.2 inventory reports), interned: a national estate
//! has a few hundred distinct (manufacturer, model) pairs and tens of millions of devices, so
//! each device keeps a one-byte slot into a shared table (`DevRow`'s spare top byte) instead of
//! two strings. Slot 0 is "not known"; slots 1..=255 index the table.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::RowProblem;

/// The most distinct (manufacturer, model) pairs one snapshot can hold.
pub const MAX_MODELS: usize = 255;

/// The DUIS schema's bound on `DeviceManufacturer` and `DeviceModel` (characters).
const MAX_NAME_CHARS: usize = 30;

/// A device's manufacturer and model, as `devices.csv` and the admin API give them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceModel {
    pub manufacturer: String,
    pub model: String,
}

impl DeviceModel {
    /// Checks both names: at most 30 characters (the DUIS schema's bound), no control
    /// characters, not both empty.
    pub fn new(manufacturer: &str, model: &str) -> Result<Self, RowProblem> {
        let fits =
            |s: &str| s.chars().count() <= MAX_NAME_CHARS && !s.chars().any(char::is_control);
        if !fits(manufacturer) || !fits(model) || (manufacturer.is_empty() && model.is_empty()) {
            return Err(RowProblem::Model);
        }
        Ok(Self {
            manufacturer: manufacturer.to_owned(),
            model: model.to_owned(),
        })
    }

    /// Whether both names pass [`DeviceModel::new`]'s checks (for values read from the journal).
    pub fn is_valid(&self) -> bool {
        Self::new(&self.manufacturer, &self.model).is_ok()
    }
}

/// An interning table: slot `n` (1-based) is `list[n - 1]`.
#[derive(Clone, Debug, Default)]
pub(super) struct ModelTable {
    pub list: Vec<Arc<DeviceModel>>,
    index: HashMap<Arc<DeviceModel>, u8>,
}

impl ModelTable {
    /// The slot of `model`, adding it if new; `None` once the table is full.
    pub fn intern(&mut self, model: &Arc<DeviceModel>) -> Option<u8> {
        if let Some(&slot) = self.index.get(model) {
            return Some(slot);
        }
        if self.list.len() >= MAX_MODELS {
            return None;
        }
        self.list.push(Arc::clone(model));
        // Below 256: the list holds at most MAX_MODELS = 255 entries.
        let slot = self.list.len() as u8;
        self.index.insert(Arc::clone(model), slot);
        Some(slot)
    }

    /// The model in `slot`; `None` for slot 0 or an empty slot.
    pub fn get(list: &[Arc<DeviceModel>], slot: u8) -> Option<&Arc<DeviceModel>> {
        list.get(usize::from(slot).checked_sub(1)?)
    }
}
