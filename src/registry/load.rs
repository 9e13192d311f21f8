//! Loading `devices.csv` and `registrations.csv` (formats in `schemas/`). Each file is cut at line
//! ends into one chunk per core and the chunks are parsed in parallel (std threads: two sorts and
//! a parse do not need a work-stealing pool) as bytes, one reused `ByteRecord` per chunk. Any bad
//! row stops the load with its line number; nothing is half-loaded. Cross-row faults (duplicates,
//! unknown hubs, overlaps) are found on the sorted base and then located by a second, sequential
//! read — the slow path runs only when the load is already failing.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::thread;

use csv::ByteRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::domain::{Mpxn, UserId};

use super::base::{mpxn_code, role_index, Base, DevRow, RegRow};
use super::locate::{line_at, locate};
use super::models::{DeviceModel, ModelTable};
use super::source::Source;
use super::{
    check_device, check_registration, DeviceRecord, FileKind, Registration, RegistryError,
    RowProblem, Snapshot,
};

pub const DEVICE_COLUMNS: [&str; 6] = [
    "device_id",
    "device_type",
    "status",
    "mpxn",
    "chf_id",
    "csp_region",
];
/// Optional columns after the six of `devices.csv`, for 8.2 Read Inventory.
pub(super) const MODEL_COLUMNS: [&str; 2] = ["manufacturer", "model"];
pub const REGISTRATION_COLUMNS: [&str; 5] =
    ["mpxn", "role", "user_id", "effective_from", "effective_to"];

/// Files smaller than this are read by one thread.
pub(super) const PARALLEL_FROM_BYTES: u64 = 1 << 20;

/// Loads both files into a snapshot with an empty overlay. Blocking and CPU-heavy: run it off the
/// async workers.
pub fn load(devices: &dyn Source, registrations: &dyn Source) -> Result<Snapshot, RegistryError> {
    let threads = thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let chunks = read_file(
        devices,
        FileKind::Devices,
        threads,
        |models: &mut ModelTable, r| {
            let (d, model) = parse_device(r)?;
            let slot = match model {
                Some(m) => models
                    .intern(&Arc::new(m))
                    .ok_or(RowProblem::TooManyModels)?,
                None => 0,
            };
            Ok(DevRow::encode(&d).with_model_slot(slot))
        },
    )?;
    // Each chunk numbered its own models; renumber them into one table.
    let mut models = ModelTable::default();
    let mut parts = Vec::with_capacity(chunks.len());
    for (mut rows, table) in chunks {
        let remap = table
            .list
            .iter()
            .map(|m| models.intern(m).ok_or(RegistryError::TooManyModels))
            .collect::<Result<Vec<u8>, _>>()?;
        for r in rows.iter_mut().filter(|r| r.model_slot() != 0) {
            // In range: the chunk's table gave out this slot, and `remap` has one per entry.
            let slot = remap[usize::from(r.model_slot()) - 1];
            *r = r.with_model_slot(slot);
        }
        parts.push(rows);
    }
    let devs = concat(FileKind::Devices, parts.into_iter())?;

    let chunks = read_file(
        registrations,
        FileKind::Registrations,
        threads,
        |users: &mut UserTable, r| {
            let (mpxn, reg) = parse_registration(r)?;
            Ok(RegRow {
                mpxn: mpxn_code(Some(mpxn)),
                from: reg.from,
                to: reg.to.unwrap_or(i64::MAX),
                user: users.intern(reg.user),
                role: role_index(reg.role),
            })
        },
    )?;
    // Each chunk numbered its own users; shift them into one table (Base::build dedups it).
    let mut users: Vec<UserId> = Vec::new();
    let mut parts = Vec::with_capacity(chunks.len());
    for (mut rows, table) in chunks {
        let offset = users.len() as u32; // below the row count, checked by `concat`
        rows.iter_mut().for_each(|r| r.user += offset);
        users.extend(table.ids);
        parts.push(rows);
    }
    let regs = concat(FileKind::Registrations, parts.into_iter())?;

    let mut base = Base::build(devs, regs, users);
    base.models = models.list;
    if let Err(conflict) = base.check() {
        return Err(locate(conflict, devices, registrations));
    }
    Ok(Snapshot {
        base: Arc::new(base),
        overlay: Arc::default(),
    })
}

fn concat<T>(
    file: FileKind,
    parts: impl Iterator<Item = Vec<T>> + Clone,
) -> Result<Vec<T>, RegistryError> {
    let total: usize = parts.clone().map(|p| p.len()).sum();
    if total > u32::MAX as usize {
        return Err(RegistryError::TooManyRows { file });
    }
    let mut all = Vec::with_capacity(total);
    for mut p in parts {
        all.append(&mut p);
    }
    Ok(all)
}

#[derive(Default)]
struct UserTable {
    index: HashMap<UserId, u32>,
    ids: Vec<UserId>,
}

impl UserTable {
    fn intern(&mut self, id: UserId) -> u32 {
        *self.index.entry(id).or_insert_with(|| {
            self.ids.push(id);
            (self.ids.len() - 1) as u32
        })
    }
}

/// Whether `found` is a header `file` accepts: its columns, and for devices optionally the
/// model columns after them.
fn header_matches<'a>(file: FileKind, found: impl Iterator<Item = &'a [u8]>) -> bool {
    let found: Vec<&[u8]> = found.collect();
    let is = |cols: &[&str]| found.iter().copied().eq(cols.iter().map(|c| c.as_bytes()));
    match file {
        FileKind::Devices => {
            let with_models: Vec<&str> = DEVICE_COLUMNS
                .iter()
                .chain(&MODEL_COLUMNS)
                .copied()
                .collect();
            is(&DEVICE_COLUMNS) || is(&with_models)
        }
        FileKind::Registrations => is(&REGISTRATION_COLUMNS),
    }
}

/// Field `i`, trimmed here rather than by the CSV reader (its trimming copies every record).
fn text(r: &ByteRecord, i: usize, problem: RowProblem) -> Result<&str, RowProblem> {
    r.get(i)
        .and_then(|f| std::str::from_utf8(f.trim_ascii()).ok())
        .ok_or(problem)
}

fn optional<T: std::str::FromStr>(s: &str, problem: RowProblem) -> Result<Option<T>, RowProblem> {
    match s {
        "" => Ok(None),
        s => s.parse().map(Some).map_err(|_| problem),
    }
}

/// One `devices.csv` row, with its manufacturer and model when the file has those columns and
/// they are not both empty.
pub(super) fn parse_device(
    r: &ByteRecord,
) -> Result<(DeviceRecord, Option<DeviceModel>), RowProblem> {
    use RowProblem as P;
    let model = match r.len() {
        6 => None,
        8 => match (text(r, 6, P::Model)?, text(r, 7, P::Model)?) {
            ("", "") => None,
            (manufacturer, model) => Some(DeviceModel::new(manufacturer, model)?),
        },
        _ => return Err(P::Shape),
    };
    let d = DeviceRecord {
        id: text(r, 0, P::DeviceId)?.parse().map_err(|_| P::DeviceId)?,
        device_type: text(r, 1, P::DeviceType)?
            .parse()
            .map_err(|_| P::DeviceType)?,
        status: text(r, 2, P::Status)?.parse().map_err(|_| P::Status)?,
        mpxn: optional(text(r, 3, P::Mpxn)?, P::Mpxn)?,
        chf: optional(text(r, 4, P::ChfId)?, P::ChfId)?,
        region: text(r, 5, P::Region)?.parse()?,
    };
    check_device(&d)?;
    Ok((d, model))
}

fn instant(s: &str, problem: RowProblem) -> Result<i64, RowProblem> {
    if let Some(t) = utc_seconds(s.as_bytes()) {
        return Ok(t);
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| problem)
}

/// The common form `YYYY-MM-DDTHH:MM:SSZ`, checked field by field, three times faster than the
/// general parser; `None` for anything else (which the general parser then decides).
pub(super) fn utc_seconds(s: &[u8]) -> Option<i64> {
    let shape = s.len() == 20
        && s[4] == b'-'
        && s[7] == b'-'
        && s[10] == b'T'
        && s[13] == b':'
        && s[16] == b':'
        && s[19] == b'Z';
    if !shape {
        return None;
    }
    let num = |a: usize, b: usize| {
        s[a..b].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if d < 1 || d > month_days || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm; years here are 0..=9999).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3_600 + mm * 60 + ss)
}

pub(super) fn parse_registration(r: &ByteRecord) -> Result<(Mpxn, Registration), RowProblem> {
    use RowProblem as P;
    if r.len() != REGISTRATION_COLUMNS.len() {
        return Err(P::Shape);
    }
    let mpxn = text(r, 0, P::Mpxn)?.parse().map_err(|_| P::Mpxn)?;
    let to = match text(r, 4, P::EffectiveTo)? {
        "" => None,
        s => Some(instant(s, P::EffectiveTo)?),
    };
    let reg = Registration {
        role: text(r, 1, P::Role)?.parse().map_err(|_| P::Role)?,
        user: text(r, 2, P::UserId)?.parse().map_err(|_| P::UserId)?,
        from: instant(text(r, 3, P::EffectiveFrom)?, P::EffectiveFrom)?,
        to,
    };
    check_registration(mpxn, &reg)?;
    Ok((mpxn, reg))
}

pub(super) fn read_error(file: &dyn Source) -> impl Fn(io::Error) -> RegistryError + '_ {
    |source| RegistryError::Read {
        path: file.name().to_owned(),
        source,
    }
}

/// Checks the header (the first line that is neither blank nor a `#` comment) and returns the
/// offset just after it.
pub(super) fn read_header(source: &dyn Source, file: FileKind) -> Result<u64, RegistryError> {
    let len = source.size().map_err(read_error(source))?;
    let mut reader = BufReader::new(source.range(0, len).map_err(read_error(source))?);
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(read_error(source))?;
        if n == 0 {
            return Err(RegistryError::Header {
                path: source.name().to_owned(),
                file,
                found: String::new(),
            });
        }
        offset += n as u64;
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let found = trimmed.split(|&b| b == b',').map(<[u8]>::trim_ascii);
        return if header_matches(file, found) {
            Ok(offset)
        } else {
            Err(RegistryError::Header {
                path: source.name().to_owned(),
                file,
                found: String::from_utf8_lossy(trimmed).chars().take(200).collect(),
            })
        };
    }
}

/// Offsets cutting `[start, len)` into about `parts` pieces, each cut just after a line end.
fn cuts(source: &dyn Source, start: u64, len: u64, parts: usize) -> io::Result<Vec<u64>> {
    let mut out = vec![start];
    for k in 1..parts as u64 {
        let guess = (start + (len - start) * k / parts as u64).max(*out.last().unwrap_or(&start));
        let mut skipped = Vec::new();
        BufReader::new(source.range(guess, len)?).read_until(b'\n', &mut skipped)?;
        out.push((guess + skipped.len() as u64).min(len));
    }
    out.push(len);
    out.dedup();
    Ok(out)
}

pub(super) fn csv_reader<R: Read>(r: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true) // a short or long row is our `Shape` problem, with its line
        .comment(Some(b'#'))
        .buffer_capacity(1 << 16)
        .from_reader(r)
}

enum ChunkError {
    Io(io::Error),
    /// `byte` is where the row starts, counted from the chunk's start.
    Row {
        byte: u64,
        problem: RowProblem,
    },
}

fn read_chunk<T, S: Default>(
    source: &dyn Source,
    start: u64,
    end: u64,
    parse: &impl Fn(&mut S, &ByteRecord) -> Result<T, RowProblem>,
) -> Result<(Vec<T>, S), ChunkError> {
    let mut reader = csv_reader(source.range(start, end).map_err(ChunkError::Io)?);
    let mut record = ByteRecord::new();
    let mut state = S::default();
    let mut rows = Vec::new();
    loop {
        let byte = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(match e.into_kind() {
                    csv::ErrorKind::Io(e) => ChunkError::Io(e),
                    _ => ChunkError::Row {
                        byte,
                        problem: RowProblem::Shape,
                    },
                })
            }
        }
        let byte = record.position().map_or(byte, |p| p.byte());
        rows.push(parse(&mut state, &record).map_err(|problem| ChunkError::Row { byte, problem })?);
        if rows.len() == 4096 {
            // Size the vector once from the bytes the first rows took.
            let per_row = reader.position().byte().max(1) / 4096;
            let expected = (end - start) / per_row.max(1);
            rows.reserve((expected + expected / 32) as usize);
        }
    }
    Ok((rows, state))
}

fn read_file<T: Send, S: Default + Send>(
    path: &dyn Source,
    file: FileKind,
    threads: usize,
    parse: impl Fn(&mut S, &ByteRecord) -> Result<T, RowProblem> + Sync,
) -> Result<Vec<(Vec<T>, S)>, RegistryError> {
    let start = read_header(path, file)?;
    let len = path.size().map_err(read_error(path))?;
    let parts = if len < PARALLEL_FROM_BYTES {
        1
    } else {
        threads
    };
    let cuts = cuts(path, start, len, parts).map_err(read_error(path))?;
    let parse = &parse;
    let results: Vec<_> = thread::scope(|s| {
        let handles: Vec<_> = cuts
            .windows(2)
            .map(|w| (w[0], w[1]))
            .map(|(a, b)| (a, s.spawn(move || read_chunk(path, a, b, parse))))
            .collect();
        handles
            .into_iter()
            .map(|(a, h)| (a, h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))))
            .collect()
    });
    let mut out = Vec::with_capacity(results.len());
    for (chunk_start, result) in results {
        match result {
            Ok(chunk) => out.push(chunk),
            Err(ChunkError::Io(e)) => return Err(read_error(path)(e)),
            Err(ChunkError::Row { byte, problem }) => {
                let line = line_at(path, chunk_start + byte).map_err(read_error(path))?;
                return Err(RegistryError::Row {
                    path: path.name().to_owned(),
                    file,
                    line,
                    problem,
                });
            }
        }
    }
    Ok(out)
}
