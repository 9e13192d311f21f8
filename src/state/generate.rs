//! Synthetic `devices.csv` and `registrations.csv` of any size, for the benchmark and load tests.
//! Deterministic for a seed, and every row is computable from its index, so a caller can pick a
//! random device or meter point and know what the cache must answer.
//!
//! Shape: premises `p` has five devices — a CHF and, behind it, an ESME on MPAN `p`, a GSME and a
//! GPF on MPRN `p`, and an IHD — and registrations dealt out round-robin over the premises: first
//! the current import and gas suppliers (from a date in 2024, open), then the distributor and
//! transporter (since 2014, open), then earlier suppliers a year at a time, back in time.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::domain::{DeviceId, DeviceStatus, DeviceType, Mpxn, UserId, UserRole};
use crate::progress::{Progress, Unit};

use crate::registry::{
    mix, CspRegion, DeviceRecord, Registration, RegistryError, DEVICE_COLUMNS, REGISTRATION_COLUMNS,
};

/// 2024-01-01T00:00:00Z.
pub const EPOCH: i64 = 1_704_067_200;
const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;
pub const DEVICES_PER_PREMISES: u64 = 5;
/// User IDs per role: import suppliers, gas suppliers, distributors, transporters.
const POOL: [(UserRole, u64); 4] = [
    (UserRole::ImportSupplier, 40),
    (UserRole::GasSupplier, 30),
    (UserRole::ElectricityDistributor, 14),
    (UserRole::GasTransporter, 8),
];

/// What to generate: `devices` devices and `registrations` registrations, varied by `seed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Synthetic {
    pub devices: u64,
    pub registrations: u64,
    pub seed: u64,
}

/// The two files written.
#[derive(Clone, Debug)]
pub struct Files {
    pub devices: PathBuf,
    pub registrations: PathBuf,
}

impl Synthetic {
    pub fn premises(&self) -> u64 {
        self.devices.div_ceil(DEVICES_PER_PREMISES).max(1)
    }

    /// The `k`th User ID of the pool for `role` (one of IS GS ED GT).
    pub fn user(role: UserRole, k: u64) -> UserId {
        let pool = POOL.iter().position(|(r, _)| *r == role).unwrap_or(0) as u64;
        UserId::from_bytes((0x90B3_D51F_3000_0000 | (pool + 1) << 16 | k).to_be_bytes())
    }

    pub fn mpan(p: u64) -> Mpxn {
        Mpxn::Mpan(1_000_000_000_000 + p)
    }

    pub fn mprn(p: u64) -> Mpxn {
        Mpxn::Mprn(100_000_000 + p)
    }

    fn device_u64(p: u64, kind: u64) -> DeviceId {
        DeviceId::from_bytes((0x000D_6F00_0000_0000 | p << 3 | kind).to_be_bytes())
    }

    /// Device `i` (`i < devices`).
    pub fn device(&self, i: u64) -> DeviceRecord {
        let (p, kind) = (i / DEVICES_PER_PREMISES, i % DEVICES_PER_PREMISES);
        let (device_type, mpxn) = match kind {
            0 => (DeviceType::Chf, None),
            1 => (DeviceType::Esme, Some(Self::mpan(p))),
            2 => (DeviceType::Gsme, Some(Self::mprn(p))),
            3 => (DeviceType::Gpf, Some(Self::mprn(p))),
            _ => (DeviceType::Ihd, None),
        };
        let status = match mix(self.seed ^ i) % 100 {
            0 => DeviceStatus::InstalledNotCommissioned,
            1 => DeviceStatus::Suspended,
            _ => DeviceStatus::Commissioned,
        };
        DeviceRecord {
            id: Self::device_u64(p, kind),
            device_type,
            status,
            mpxn,
            chf: (kind != 0).then(|| Self::device_u64(p, 0)),
            region: CspRegion::ALL[(p % 3) as usize],
        }
    }

    fn pick(&self, role: UserRole, p: u64, slot: u64) -> UserId {
        let size = POOL.iter().find(|(r, _)| *r == role).map_or(1, |(_, n)| *n);
        Self::user(role, mix(self.seed ^ p.rotate_left(20) ^ slot) % size)
    }

    /// Registration `j` (`j < registrations`) and its meter point.
    pub fn registration(&self, j: u64) -> (Mpxn, Registration) {
        let (p, slot) = (j % self.premises(), j / self.premises());
        let switched = EPOCH + (mix(self.seed ^ p) % 365) as i64 * DAY;
        let (role, from, to) = match slot {
            0 => (UserRole::ImportSupplier, switched, None),
            1 => (UserRole::GasSupplier, switched, None),
            2 => (UserRole::ElectricityDistributor, EPOCH - 10 * YEAR, None),
            3 => (UserRole::GasTransporter, EPOCH - 10 * YEAR, None),
            s => {
                let back = ((s - 4) / 2) as i64;
                let role = [UserRole::ImportSupplier, UserRole::GasSupplier][(s % 2) as usize];
                (
                    role,
                    switched - (back + 1) * YEAR,
                    Some(switched - back * YEAR),
                )
            }
        };
        let mpxn = match role {
            UserRole::ImportSupplier | UserRole::ElectricityDistributor => Self::mpan(p),
            _ => Self::mprn(p),
        };
        let user = self.pick(role, p, slot);
        (
            mpxn,
            Registration {
                role,
                user,
                from,
                to,
            },
        )
    }
}

/// Writes `devices.csv` and `registrations.csv` for `spec` into `dir`.
pub fn generate(dir: &Path, spec: &Synthetic) -> Result<Files, RegistryError> {
    let files = Files {
        devices: dir.join("devices.csv"),
        registrations: dir.join("registrations.csv"),
    };
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| RegistryError::Write { path, source }
    };
    let progress = Progress::start(
        "Generating the registry",
        Some(spec.devices + spec.registrations),
        Unit::Records,
    );
    let written = write_devices(&files.devices, spec, &progress)
        .map_err(failed(&files.devices))
        .and_then(|()| {
            write_registrations(&files.registrations, spec, &progress)
                .map_err(failed(&files.registrations))
        });
    progress.finish();
    written.map(|()| files)
}

fn create(path: &Path) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::with_capacity(1 << 20, File::create(path)?))
}

/// Rows between two progress counts.
const PROGRESS_EVERY: u64 = 1 << 16;

fn write_devices(path: &Path, spec: &Synthetic, progress: &Progress) -> io::Result<()> {
    let mut out = create(path)?;
    writeln!(out, "# synthetic devices, seed {}", spec.seed)?;
    writeln!(out, "{}", DEVICE_COLUMNS.join(","))?;
    for i in 0..spec.devices {
        let d = spec.device(i);
        write!(out, "{},{},{},", d.id, d.device_type, d.status)?;
        if let Some(m) = d.mpxn {
            write!(out, "{m}")?;
        }
        out.write_all(b",")?;
        if let Some(c) = d.chf {
            write!(out, "{c}")?;
        }
        writeln!(out, ",{}", d.region)?;
        if (i + 1) % PROGRESS_EVERY == 0 {
            progress.inc(PROGRESS_EVERY);
        }
    }
    progress.inc(spec.devices % PROGRESS_EVERY);
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()
}

fn write_registrations(path: &Path, spec: &Synthetic, progress: &Progress) -> io::Result<()> {
    let mut out = create(path)?;
    writeln!(out, "# synthetic registrations, seed {}", spec.seed)?;
    writeln!(out, "{}", REGISTRATION_COLUMNS.join(","))?;
    // A few hundred distinct instants: format each once.
    let mut instants: HashMap<i64, String> = HashMap::new();
    let mut rfc3339 = |t: i64| -> io::Result<String> {
        if let Some(s) = instants.get(&t) {
            return Ok(s.clone());
        }
        let s = OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .ok_or_else(|| io::Error::other("instant out of range"))?;
        instants.insert(t, s.clone());
        Ok(s)
    };
    for j in 0..spec.registrations {
        let (mpxn, r) = spec.registration(j);
        let from = rfc3339(r.from)?;
        let to = r.to.map(&mut rfc3339).transpose()?.unwrap_or_default();
        writeln!(out, "{mpxn},{},{},{from},{to}", r.role, r.user)?;
        if (j + 1) % PROGRESS_EVERY == 0 {
            progress.inc(PROGRESS_EVERY);
        }
    }
    progress.inc(spec.registrations % PROGRESS_EVERY);
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()
}
