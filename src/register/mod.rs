//! The party register: which party each User ID belongs to, in which roles, with which status.
//! Parsed from `users.csv` (format in `schemas/users.md`); changed at run time by journalled
//! [`UserChange`]s (suspension, withdrawal, reinstatement, a new XML-signing certificate).

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use crate::domain::{UserId, UserRole};

mod changes;
#[cfg(test)]
mod tests;

pub use changes::{apply_digital_signing_changes, apply_user_changes, UserChange, UserChangeError};

/// A SEC Party's identifier, as the register names it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PartyId(String);

impl PartyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The eligibility class a service falls in, the unit a suspension names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub enum EligibilityClass {
    /// Only the registered supplier (or its agent).
    A,
    /// Only the registered network operator.
    B,
    /// Any User.
    C,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum UserStatus {
    Active,
    /// Suspended for these classes of service only (all three when the file names none).
    Suspended(Vec<EligibilityClass>),
    /// Exited: every authorisation has ended.
    Withdrawn,
}

#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user_id: UserId,
    pub party_id: PartyId,
    pub party_name: String,
    pub roles: Vec<UserRole>,
    pub status: UserStatus,
    /// The User's Receive Response Service, where asynchronous messages are delivered.
    pub response_url: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct PartyRegister {
    users: HashMap<UserId, UserRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("users file line {line}{}: {problem}", column_text(problem))]
    Row { line: u64, problem: RowProblem },
    /// `found` is the header row as read.
    #[error("users file: the header row is {found:?}; it must be {:?}", COLUMNS.join(","))]
    Header { found: String },
    /// One of the above, in the file at `path`.
    #[error("{path}: {inner}")]
    InFile {
        path: PathBuf,
        inner: Box<RegisterError>,
    },
}

/// The columns of `users.csv`, in order.
pub const COLUMNS: [&str; 6] = [
    "user_id",
    "party_id",
    "party_name",
    "roles",
    "status",
    "response_url",
];

/// `, column 4 (roles)` for a problem in one column, else nothing.
fn column_text(problem: &RowProblem) -> String {
    let name = match problem {
        RowProblem::UserId | RowProblem::Duplicate => "user_id",
        RowProblem::PartyId => "party_id",
        RowProblem::Roles => "roles",
        RowProblem::Status => "status",
        RowProblem::Shape => return String::new(),
    };
    let at = COLUMNS.iter().position(|c| *c == name).map_or(0, |i| i + 1);
    format!(", column {at} ({name})")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowProblem {
    #[error(
        "not a CSV row with the six columns user_id,party_id,party_name,roles,status,response_url"
    )]
    Shape,
    #[error("user_id is not an EUI-64")]
    UserId,
    #[error("party_id is empty")]
    PartyId,
    #[error("roles is not a |-separated list of IS ES GS RSA ED GT OU")]
    Roles,
    #[error("status is not active, withdrawn, suspended or suspended:<A|B|C>")]
    Status,
    #[error("the User ID appears twice")]
    Duplicate,
}

impl FromStr for UserStatus {
    type Err = RowProblem;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use EligibilityClass::*;
        match s.split_once(':') {
            None if s == "active" => Ok(Self::Active),
            None if s == "withdrawn" => Ok(Self::Withdrawn),
            None if s == "suspended" => Ok(Self::Suspended(vec![A, B, C])),
            Some(("suspended", classes)) => classes
                .split('|')
                .map(|c| match c {
                    "A" => Ok(A),
                    "B" => Ok(B),
                    "C" => Ok(C),
                    _ => Err(RowProblem::Status),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Self::Suspended),
            _ => Err(RowProblem::Status),
        }
    }
}

impl PartyRegister {
    /// Parses the CSV text; the first row is the header and is checked.
    pub fn parse(text: &str) -> Result<Self, RegisterError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let found = reader
            .headers()
            .map(|h| h.iter().collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        if found != COLUMNS.join(",") {
            return Err(RegisterError::Header {
                found: found.chars().take(200).collect(),
            });
        }
        let mut users = HashMap::new();
        for row in reader.records() {
            let (line, record) = match row {
                Ok(r) => (r.position().map_or(0, |p| p.line()), parse_row(&r)),
                Err(e) => (e.position().map_or(0, |p| p.line()), Err(RowProblem::Shape)),
            };
            let record = record.map_err(|problem| RegisterError::Row { line, problem })?;
            if users.insert(record.user_id, record).is_some() {
                return Err(RegisterError::Row {
                    line,
                    problem: RowProblem::Duplicate,
                });
            }
        }
        Ok(Self { users })
    }

    pub fn get(&self, user: &UserId) -> Option<&UserRecord> {
        self.users.get(user)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

fn parse_row(r: &csv::StringRecord) -> Result<UserRecord, RowProblem> {
    let [user_id, party_id, party_name, roles, status, response_url] = r
        .iter()
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| RowProblem::Shape)?;
    if party_id.is_empty() {
        return Err(RowProblem::PartyId);
    }
    let roles = roles
        .split('|')
        .map(|r| r.parse::<UserRole>().map_err(|_| RowProblem::Roles))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UserRecord {
        user_id: user_id.parse().map_err(|_| RowProblem::UserId)?,
        party_id: PartyId(party_id.to_owned()),
        party_name: party_name.to_owned(),
        roles,
        status: status.parse()?,
        response_url: (!response_url.is_empty()).then(|| response_url.to_owned()),
    })
}
