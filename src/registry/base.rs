//! The bulk of the cache, built once (load or compaction) and never changed: packed rows kept in
//! the order of a mixed hash of their key, with a table of bucket starts over that order, so a
//! look-up is one bucket read and a scan of about four rows — two cache misses, no allocation.

use std::ops::Range;

use std::sync::Arc;

use crate::domain::{DeviceId, DeviceStatus, DeviceType, Mpxn, UserId, UserRole};

use super::models::DeviceModel;
use super::{CspRegion, DeviceRecord, Registration};

/// The splitmix64 finaliser: a bijection on `u64` that spreads EUI-64s and MPxNs (which share long
/// prefixes) evenly over the bucket table.
pub const fn mix(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The start of each bucket in a sequence sorted by `mix(key)`: bucket `b` holds the entries whose
/// `mix(key) >> shift == b`. About four entries a bucket; `4 * 2^k` bytes of table.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    shift: u32,
    starts: Vec<u32>,
}

impl Buckets {
    /// `hashes` are the `mix(key)` of a sequence already sorted by them; its length fits in `u32`
    /// (the loader refuses bigger files).
    fn build(len: usize, hashes: impl Iterator<Item = u64>) -> Self {
        // At least two buckets, so `shift` stays below 64.
        let bits = (len / 4).next_power_of_two().trailing_zeros().max(1);
        let shift = 64 - bits;
        let mut starts = vec![0u32; (1usize << bits) + 1];
        for h in hashes {
            starts[(h >> shift) as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        Self { shift, starts }
    }

    fn range(&self, key: u64) -> Range<usize> {
        let b = (mix(key) >> self.shift) as usize;
        match (self.starts.get(b), self.starts.get(b + 1)) {
            (Some(&s), Some(&e)) => s as usize..e as usize,
            _ => 0..0, // only the empty default table
        }
    }
}

/// `Mpxn` as 46 bits: the number shifted left by two, kind in the low bits (1 MPRN, 2 MPAN); 0 is
/// none. Numbers are below 10^13 < 2^44.
pub(super) const fn mpxn_code(m: Option<Mpxn>) -> u64 {
    match m {
        None => 0,
        Some(Mpxn::Mprn(n)) => (n << 2) | 1,
        Some(Mpxn::Mpan(n)) => (n << 2) | 2,
    }
}

const fn mpxn_decode(code: u64) -> Option<Mpxn> {
    match code & 3 {
        1 => Some(Mpxn::Mprn(code >> 2)),
        2 => Some(Mpxn::Mpan(code >> 2)),
        _ => None,
    }
}

const MPXN_BITS: u32 = 46;
const MPXN_MASK: u64 = (1 << MPXN_BITS) - 1;
const HAS_CHF: u64 = 1 << 55;
const MODEL_SHIFT: u32 = 56;

/// One device in 24 bytes. `packed`: bits 0–45 the MPxN code, 46–48 the type, 49–52 the status,
/// 53–54 the region, 55 whether `chf` is set, 56–63 the model slot (0: not known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DevRow {
    pub id: u64,
    pub chf: u64,
    pub packed: u64,
}

fn index_of<T: PartialEq>(all: &[T], v: &T) -> u64 {
    // Every value of these enums is in its ALL table.
    all.iter().position(|x| x == v).unwrap_or(0) as u64
}

impl DevRow {
    pub fn encode(d: &DeviceRecord) -> Self {
        let packed = mpxn_code(d.mpxn)
            | index_of(DeviceType::ALL, &d.device_type) << 46
            | index_of(DeviceStatus::ALL, &d.status) << 49
            | index_of(&CspRegion::ALL, &d.region) << 53
            | if d.chf.is_some() { HAS_CHF } else { 0 };
        Self {
            id: d.id.to_u64(),
            chf: d.chf.map_or(0, |c| c.to_u64()),
            packed,
        }
    }

    pub fn decode(&self) -> DeviceRecord {
        let p = self.packed;
        // Indexing is safe: these fields are only ever written by `encode` from an ALL table.
        DeviceRecord {
            id: DeviceId::from_bytes(self.id.to_be_bytes()),
            device_type: DeviceType::ALL[(p >> 46 & 7) as usize],
            status: DeviceStatus::ALL[(p >> 49 & 15) as usize],
            mpxn: mpxn_decode(p & MPXN_MASK),
            chf: (p & HAS_CHF != 0).then(|| DeviceId::from_bytes(self.chf.to_be_bytes())),
            region: CspRegion::ALL[(p >> 53 & 3) as usize],
        }
    }

    pub fn mpxn(&self) -> u64 {
        self.packed & MPXN_MASK
    }

    pub fn chf(&self) -> Option<u64> {
        (self.packed & HAS_CHF != 0).then_some(self.chf)
    }

    /// The device's slot in the base's model table (0: not known).
    pub fn model_slot(&self) -> u8 {
        (self.packed >> MODEL_SHIFT) as u8
    }

    pub fn with_model_slot(self, slot: u8) -> Self {
        let packed = self.packed & !(0xFF << MODEL_SHIFT) | u64::from(slot) << MODEL_SHIFT;
        Self { packed, ..self }
    }

    pub fn is_chf(&self) -> bool {
        DeviceType::ALL.get((self.packed >> 46 & 7) as usize) == Some(&DeviceType::Chf)
    }
}

/// One registration in 32 bytes; `to` is `i64::MAX` when open-ended, `user` an index into the
/// sorted user table (so index order is User ID order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RegRow {
    pub mpxn: u64,
    pub from: i64,
    pub to: i64,
    pub user: u32,
    pub role: u8,
}

pub(super) fn role_index(role: UserRole) -> u8 {
    index_of(&UserRole::ALL, &role) as u8
}

impl RegRow {
    pub fn decode(&self, users: &[UserId]) -> Registration {
        Registration {
            // Both indices are only ever written from `UserRole::ALL` and the user table.
            role: UserRole::ALL[self.role as usize],
            user: users[self.user as usize],
            from: self.from,
            to: (self.to != i64::MAX).then_some(self.to),
        }
    }

    fn order_key(&self) -> (u64, u64, u8, u32, i64) {
        (mix(self.mpxn), self.mpxn, self.role, self.user, self.from)
    }
}

/// Two rows that cannot both be in a snapshot; the loader turns it into a line number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Conflict {
    DuplicateDevice(u64),
    UnknownChf(u64),
    NotAChf(u64),
    Overlap { mpxn: u64, role: u8, user: UserId },
}

/// The immutable bulk of a snapshot.
#[derive(Debug, Default)]
pub(super) struct Base {
    pub devices: Vec<DevRow>,
    device_buckets: Buckets,
    /// Indices of devices with an MPxN, sorted by (mix(mpxn), mpxn, id).
    by_mpxn: Vec<u32>,
    by_mpxn_buckets: Buckets,
    /// Indices of devices behind a CHF, sorted by (mix(chf), chf, id).
    by_chf: Vec<u32>,
    by_chf_buckets: Buckets,
    pub regs: Vec<RegRow>,
    reg_buckets: Buckets,
    /// Sorted, distinct.
    pub users: Vec<UserId>,
    /// Manufacturer and model by slot (`DevRow::model_slot` − 1); at most `MAX_MODELS`.
    pub models: Vec<Arc<DeviceModel>>,
}

impl Base {
    /// Sorts and indexes; `regs[i].user` indexes `users`, which need not be sorted or distinct.
    /// Lengths fit in `u32` (checked by the callers).
    pub fn build(mut devices: Vec<DevRow>, mut regs: Vec<RegRow>, users: Vec<UserId>) -> Self {
        let mut sorted: Vec<(UserId, u32)> = users.iter().copied().zip(0..).collect();
        sorted.sort_unstable();
        let mut remap = vec![0u32; users.len()];
        let mut table: Vec<UserId> = Vec::with_capacity(sorted.len());
        for (id, old) in sorted {
            if table.last() != Some(&id) {
                table.push(id);
            }
            remap[old as usize] = (table.len() - 1) as u32;
        }
        for r in &mut regs {
            r.user = remap[r.user as usize];
        }

        // The two halves share nothing: sort and index them on two threads.
        let (devices, regs) = std::thread::scope(|s| {
            let regs = s.spawn(move || {
                regs.sort_unstable_by_key(RegRow::order_key);
                let buckets = Buckets::build(regs.len(), regs.iter().map(|r| mix(r.mpxn)));
                (regs, buckets)
            });
            devices.sort_unstable_by_key(|d| mix(d.id)); // mix is a bijection: no ties
            let buckets = Buckets::build(devices.len(), devices.iter().map(|d| mix(d.id)));
            let by_mpxn = secondary(&devices, |d| Some(d.mpxn()).filter(|&m| m != 0));
            let by_chf = secondary(&devices, DevRow::chf);
            let regs = regs.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            ((devices, buckets, by_mpxn, by_chf), regs)
        });
        let (devices, device_buckets, (by_mpxn, by_mpxn_buckets), (by_chf, by_chf_buckets)) =
            devices;
        let (regs, reg_buckets) = regs;
        Self {
            devices,
            device_buckets,
            by_mpxn,
            by_mpxn_buckets,
            by_chf,
            by_chf_buckets,
            regs,
            reg_buckets,
            users: table,
            models: Vec::new(),
        }
    }

    /// The first cross-row inconsistency, if any: a device ID twice, a `chf_id` that is not a
    /// known CHF, or overlapping registrations of one user in one role on one MPxN.
    pub fn check(&self) -> Result<(), Conflict> {
        for pair in self.devices.windows(2) {
            if pair[0].id == pair[1].id {
                return Err(Conflict::DuplicateDevice(pair[0].id));
            }
        }
        // One random look-up a device: worth both cores.
        let part = self.devices.len().div_ceil(2).max(1);
        std::thread::scope(|s| {
            let checks: Vec<_> = self
                .devices
                .chunks(part)
                .map(|chunk| s.spawn(move || self.check_hubs(chunk)))
                .collect();
            checks
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        })?;
        for pair in self.regs.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if (a.mpxn, a.role, a.user) == (b.mpxn, b.role, b.user) && a.to > b.from {
                let user = self.users[a.user as usize];
                return Err(Conflict::Overlap {
                    mpxn: a.mpxn,
                    role: a.role,
                    user,
                });
            }
        }
        Ok(())
    }

    fn check_hubs(&self, devices: &[DevRow]) -> Result<(), Conflict> {
        for d in devices {
            if let Some(chf) = d.chf() {
                match self.device_row(chf) {
                    None => return Err(Conflict::UnknownChf(chf)),
                    Some(c) if !c.is_chf() => return Err(Conflict::NotAChf(chf)),
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    pub fn device_row(&self, id: u64) -> Option<&DevRow> {
        self.devices[self.device_buckets.range(id)]
            .iter()
            .find(|d| d.id == id)
    }

    /// The rows for `mpxn` are the ones in this slice whose `mpxn` matches.
    pub fn reg_bucket(&self, mpxn: u64) -> &[RegRow] {
        &self.regs[self.reg_buckets.range(mpxn)]
    }

    pub fn devices_with_mpxn(&self, mpxn: u64) -> impl Iterator<Item = &DevRow> + '_ {
        self.by_mpxn[self.by_mpxn_buckets.range(mpxn)]
            .iter()
            .map(|&i| &self.devices[i as usize])
            .filter(move |d| d.mpxn() == mpxn)
    }

    pub fn devices_with_chf(&self, chf: u64) -> impl Iterator<Item = &DevRow> + '_ {
        self.by_chf[self.by_chf_buckets.range(chf)]
            .iter()
            .map(|&i| &self.devices[i as usize])
            .filter(move |d| d.chf() == Some(chf))
    }

    /// Bytes held by the columns and tables (not counting allocator slack).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.devices.len() * size_of::<DevRow>()
            + self.regs.len() * size_of::<RegRow>()
            + (self.by_mpxn.len() + self.by_chf.len()) * 4
            + (self.device_buckets.starts.len()
                + self.by_mpxn_buckets.starts.len()
                + self.by_chf_buckets.starts.len()
                + self.reg_buckets.starts.len())
                * 4
            + self.users.len() * 8
            + self
                .models
                .iter()
                .map(|m| m.manufacturer.len() + m.model.len() + 64)
                .sum::<usize>()
    }
}

/// An index over the devices that have a `key`.
fn secondary(devices: &[DevRow], key: impl Fn(&DevRow) -> Option<u64>) -> (Vec<u32>, Buckets) {
    let mut keyed: Vec<(u64, u64, u64, u32)> = devices
        .iter()
        .zip(0u32..)
        .filter_map(|(d, i)| key(d).map(|k| (mix(k), k, d.id, i)))
        .collect();
    keyed.sort_unstable();
    let buckets = Buckets::build(keyed.len(), keyed.iter().map(|k| k.0));
    (keyed.into_iter().map(|k| k.3).collect(), buckets)
}
