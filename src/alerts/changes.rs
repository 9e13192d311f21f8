//! The DCC Alerts a registration change calls for: a device status change, a meter's new
//! identity, a change of supplier. Judged against the snapshot before the change.
//!
//! They must survive a crash: the change log is the durable record of each batch, and a mark
//! in it says up to which batch the alerts are all in the outbox ([`ChangeProgress`] works the
//! mark out). At start the alerts of every batch after the mark are derived again from the
//! snapshot before it ([`apply_batch`]) and raised again: duplicates, never loss.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::{DeviceType, Mpxn, UserRole};
use crate::duis::outbound::{DeviceStatusChange, MeterMpxns};
use crate::registry::{Change, ChangeError, DeviceRecord, Registration, Snapshot};

use super::dcc::{status_change, DccEvent};

/// The DCC Alerts one journalled batch of registration changes calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeAlerts {
    /// The batch's sequence number in the change log.
    pub seq: u64,
    /// When the batch was applied (unix seconds): the registrations in force then decide who
    /// hears of a status change.
    pub at: i64,
    pub events: Vec<DccEvent>,
}

/// Applies `batch` to `before` change by change, collecting the events each change calls for,
/// judged against the snapshot just before that change. The snapshot after the whole batch, or
/// the first change that does not apply (then nothing is applied).
pub fn apply_batch(
    before: &Snapshot,
    batch: &[Change],
) -> Result<(Snapshot, Vec<DccEvent>), ChangeError> {
    let mut snapshot = before.clone();
    let mut events = Vec::new();
    for change in batch {
        events.extend(events_for_change(&snapshot, change));
        snapshot = snapshot.apply(change)?;
    }
    Ok((snapshot, events))
}

/// Which batches have every copy of their DCC Alerts in the outbox, for the change log's mark.
/// Batches are begun in rising order; copies may leave out of order (the throttle holds some
/// until the summary that covers them).
#[derive(Debug, Default)]
pub struct ChangeProgress {
    /// Alerts with copies still to go: alert identifier → (batch, copies).
    alerts: HashMap<u64, (u64, usize)>,
    /// Batches not settled: sequence number → alerts with copies to go, plus one while the
    /// batch is still being raised.
    open: BTreeMap<u64, usize>,
    /// The highest batch begun.
    last: u64,
    /// Batches begun that no mark handed out covers yet.
    unmarked: BTreeSet<u64>,
}

/// A new mark: every batch up to `seq` has all its alerts in the outbox; `batches` of those
/// were begun since the mark before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub seq: u64,
    pub batches: usize,
}

impl ChangeProgress {
    /// Batch `seq` starts being raised.
    pub fn begin(&mut self, seq: u64) {
        self.last = self.last.max(seq);
        self.unmarked.insert(seq);
        *self.open.entry(seq).or_default() += 1;
    }

    /// Alert `id` of batch `seq` has `copies` copies to go (sent now or held).
    pub fn owe(&mut self, seq: u64, id: u64, copies: usize) {
        if copies > 0 {
            *self.open.entry(seq).or_default() += 1;
            self.alerts.insert(id, (seq, copies));
        }
    }

    /// One copy of alert `id` is in the outbox, alone or in a summary that covers it. Other
    /// identifiers (device alerts) are ignored.
    pub fn sent(&mut self, id: u64) {
        let Some((seq, copies)) = self.alerts.get_mut(&id) else {
            return;
        };
        *copies = copies.saturating_sub(1);
        if *copies == 0 {
            let seq = *seq;
            self.alerts.remove(&id);
            self.settle(seq);
        }
    }

    /// Every alert of batch `seq` has been raised (with `owe`).
    pub fn end(&mut self, seq: u64) {
        self.settle(seq);
    }

    fn settle(&mut self, seq: u64) {
        if let Some(n) = self.open.get_mut(&seq) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(&seq);
            }
        }
    }

    /// The mark, when it covers a batch begun since the last one handed out. Marks rise:
    /// batches are begun in rising order.
    pub fn mark(&mut self) -> Option<Mark> {
        let seq = match self.open.keys().next() {
            Some(first) => first.saturating_sub(1),
            None => self.last,
        };
        let later = self.unmarked.split_off(&seq.saturating_add(1));
        let batches = std::mem::replace(&mut self.unmarked, later).len();
        if batches == 0 {
            return None;
        }
        Some(Mark { seq, batches })
    }
}

/// The events `change`, applied to `before`, calls for (often none).
///
/// - A status change (`set_device_status`, or an `upsert_device` with another status) as
///   [`status_change`] reports it; an `upsert_device` that gives a meter another meter point as
///   `MeterIdentity`.
/// - A new supplier registration (`add_registration` in IS, ES or GS) on a meter point that had
///   another supplier in that role just before it starts: one change of supplier per meter
///   serving the meter point. A first registration is not a change of supplier.
pub fn events_for_change(before: &Snapshot, change: &Change) -> Vec<DccEvent> {
    match change {
        Change::SetDeviceStatus { device, status } => before
            .device(*device)
            .and_then(|d| status_change(&d, d.status, *status, before))
            .map(|change| DccEvent::DeviceStatusChange {
                device: *device,
                change,
            })
            .into_iter()
            .collect(),
        Change::UpsertDevice(new) => upserted(before, new).into_iter().collect(),
        Change::AddRegistration { mpxn, registration } => {
            changes_of_supplier(before, *mpxn, registration)
        }
        // Neither ends nor product details concern a User as an alert.
        Change::EndRegistration { .. } | Change::SetDeviceModel { .. } => Vec::new(),
    }
}

fn is_meter(device_type: DeviceType) -> bool {
    matches!(
        device_type,
        DeviceType::Esme | DeviceType::Gsme | DeviceType::Gpf
    )
}

/// An `upsert_device` of a known device: its status change, or a meter's new meter point.
fn upserted(before: &Snapshot, new: &DeviceRecord) -> Option<DccEvent> {
    let old = before.device(new.id)?;
    let change = status_change(&old, old.status, new.status, before).or_else(|| match new.mpxn {
        Some(m) if is_meter(new.device_type) && old.mpxn != new.mpxn => Some(
            DeviceStatusChange::MeterIdentity(MeterMpxns::import_only(m)),
        ),
        _ => None,
    });
    change.map(|change| DccEvent::DeviceStatusChange {
        device: new.id,
        change,
    })
}

/// A new supplier registration on a meter point that had another supplier in that role just
/// before it starts: one change of supplier per meter serving the meter point.
fn changes_of_supplier(
    before: &Snapshot,
    mpxn: Mpxn,
    registration: &Registration,
) -> Vec<DccEvent> {
    let role = registration.role;
    let supplier = matches!(
        role,
        UserRole::ImportSupplier | UserRole::ExportSupplier | UserRole::GasSupplier
    );
    if !supplier {
        return Vec::new();
    }
    let incoming = registration.user;
    let just_before = registration.from.saturating_sub(1);
    let mut outgoing: Vec<_> = before
        .registered_at(mpxn, role, just_before)
        .filter(|u| *u != incoming)
        .collect();
    outgoing.sort();
    outgoing.dedup();
    if outgoing.is_empty() {
        return Vec::new();
    }
    let mut meters: Vec<_> = before
        .devices_at(mpxn)
        .filter(|d| is_meter(d.device_type))
        .map(|d| d.id)
        .collect();
    meters.sort();
    meters
        .into_iter()
        .map(|device| DccEvent::ChangeOfSupplier {
            device,
            mpxn,
            role,
            outgoing: outgoing.clone(),
            incoming,
        })
        .collect()
}
