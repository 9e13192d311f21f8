//! Where a bad row is: the line numbers a failed load reports. Only the failing path reads the
//! files a second time (`load`'s parallel chunks count bytes, not lines).

use std::io::{self, BufRead, BufReader};

use csv::ByteRecord;

use crate::domain::DeviceId;

use super::base::{mpxn_code, role_index, Conflict};
use super::load::{csv_reader, parse_device, parse_registration, read_error, read_header};
use super::source::Source;
use super::{FileKind, Registration, RegistryError, RowProblem};

/// Line ends in the first `upto` bytes of the file.
fn count_lines(source: &dyn Source, upto: u64) -> io::Result<u64> {
    let mut reader = BufReader::new(source.range(0, upto)?);
    let mut count = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(count);
        }
        count += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buf.len();
        reader.consume(n);
    }
}

/// The line of the row the CSV reader says starts at `byte`: the reader counts the blank and
/// comment lines it skipped before a row as part of it.
pub(super) fn line_at(source: &dyn Source, byte: u64) -> io::Result<u64> {
    let mut line = count_lines(source, byte)? + 1;
    let mut reader = BufReader::new(source.range(byte, source.size()?)?);
    let mut text = Vec::new();
    loop {
        text.clear();
        if reader.read_until(b'\n', &mut text)? == 0 {
            return Ok(line);
        }
        let blank = text.iter().all(|b| matches!(b, b'\r' | b'\n'));
        if !(blank || text.starts_with(b"#")) {
            return Ok(line);
        }
        line += 1;
    }
}

/// The line of the first row (in file order) that `hit` picks, reading the file again in order.
fn find_line(
    path: &dyn Source,
    file: FileKind,
    mut hit: impl FnMut(&ByteRecord) -> bool,
) -> Result<u64, RegistryError> {
    let start = read_header(path, file)?;
    let len = path.size().map_err(read_error(path))?;
    let mut reader = csv_reader(path.range(start, len).map_err(read_error(path))?);
    let mut record = ByteRecord::new();
    while reader.read_byte_record(&mut record).unwrap_or(false) {
        if hit(&record) {
            let byte = start + record.position().map_or(0, |p| p.byte());
            return line_at(path, byte).map_err(read_error(path));
        }
    }
    Ok(0) // the conflict came from these very rows; not reached
}

/// Turns a conflict found on the sorted base into the line that causes it.
pub(super) fn locate(
    conflict: Conflict,
    devices: &dyn Source,
    registrations: &dyn Source,
) -> RegistryError {
    let device = |r: &ByteRecord| parse_device(r).ok().map(|(d, _)| d);
    let (file, problem, line) = match conflict {
        Conflict::DuplicateDevice(id) => {
            let mut seen = 0;
            let line = find_line(devices, FileKind::Devices, |r| {
                seen += usize::from(device(r).is_some_and(|d| d.id.to_u64() == id));
                seen == 2
            });
            (FileKind::Devices, RowProblem::DuplicateDevice, line)
        }
        Conflict::UnknownChf(chf) | Conflict::NotAChf(chf) => {
            let chf = Some(DeviceId::from_bytes(chf.to_be_bytes()));
            let line = find_line(devices, FileKind::Devices, |r| {
                device(r).is_some_and(|d| d.chf == chf)
            });
            let problem = match conflict {
                Conflict::UnknownChf(_) => RowProblem::UnknownChf,
                _ => RowProblem::NotAChf,
            };
            (FileKind::Devices, problem, line)
        }
        Conflict::Overlap { mpxn, role, user } => {
            let mut seen: Vec<Registration> = Vec::new();
            let line = find_line(registrations, FileKind::Registrations, |r| {
                let Ok((m, reg)) = parse_registration(r) else {
                    return false;
                };
                if mpxn_code(Some(m)) != mpxn || role_index(reg.role) != role || reg.user != user {
                    return false;
                }
                let end = |r: &Registration| r.to.unwrap_or(i64::MAX);
                let clash = seen.iter().any(|s| s.from < end(&reg) && reg.from < end(s));
                seen.push(reg);
                clash
            });
            (FileKind::Registrations, RowProblem::Overlap, line)
        }
    };
    let source = match file {
        FileKind::Devices => devices,
        FileKind::Registrations => registrations,
    };
    match line {
        Ok(line) => RegistryError::Row {
            path: source.name().to_owned(),
            file,
            line,
            problem,
        },
        Err(e) => e,
    }
}
