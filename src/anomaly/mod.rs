//! Threshold anomaly detection, the pure half: thresholds as data (`schemas/anomaly.md`), read
//! and checked once from the JSON the admin API takes; the named values a request body carries
//! (`attributes.rs`); and the decision (`decide.rs`) — a function of the counts, the thresholds
//! and the request — that says whether a request passes, raises a warning, or is quarantined.
//!
//! Three kinds of threshold:
//! - a **User** threshold: one User's requests of one Service Reference Variant (or of a group,
//!   the variants whose first number is the group's), optionally only in one role, counted over
//!   a sliding window of an hour or a day, with a warning tier and a quarantine tier;
//! - a **DCC** threshold: the same over all Users' requests of a variant or group;
//! - an **attribute limit**: a named value in the request body (a prepayment credit amount, a
//!   tariff price) outside `[min, max]`, whatever the counts.

mod attributes;
mod decide;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalogue::Catalogue;
use crate::domain::{Srv, UserId, UserRole};

pub use attributes::{attribute_values, Attribute};
pub use decide::{decide, Breach, BreachKind, Counted, Detail, Facts, Verdict, Warning};

/// At most this many entries in one threshold set; a longer one is refused. With at most 129
/// variants per User, this bounds the counters kept (`schemas/anomaly.md`).
pub const MAX_ENTRIES: usize = 10_000;

/// A sliding window counts are kept over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    /// The last hour, in one-minute steps.
    Hour,
    /// The last day, in one-hour steps.
    Day,
}

impl Window {
    pub const fn seconds(self) -> u32 {
        match self {
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    fn from_seconds(s: u32) -> Option<Self> {
        match s {
            3_600 => Some(Self::Hour),
            86_400 => Some(Self::Day),
            _ => None,
        }
    }
}

/// What a count threshold counts: one variant, or a group of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Srv(Srv),
    /// Every variant whose first number is this (`4`: 4.1.1, 4.2, …).
    Group(u8),
}

impl Scope {
    pub fn covers(self, srv: Srv) -> bool {
        match self {
            Self::Srv(s) => s == srv,
            Self::Group(g) => srv.group() == g,
        }
    }
}

/// A count threshold: a User's (or, with no `user`, every User's) requests in `scope` over
/// `window`. A request that would make the count pass `quarantine` is quarantined; one that
/// makes it pass `warning` raises a warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountThreshold {
    /// `None`: a DCC threshold, over all Users.
    pub user: Option<UserId>,
    /// Only requests made in this role (User thresholds only).
    pub role: Option<UserRole>,
    pub scope: Scope,
    pub window: Window,
    pub warning: Option<u64>,
    pub quarantine: Option<u64>,
}

/// A named value's range; a request carrying the value outside it is quarantined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeLimit {
    pub attribute: Attribute,
    /// Only in requests of this variant (any variant that carries the value otherwise).
    pub srv: Option<Srv>,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// The thresholds in force: checked, numbered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Thresholds {
    /// 0 before any set was submitted; each accepted set takes the next number.
    pub version: u64,
    pub counts: Vec<CountThreshold>,
    pub attributes: Vec<AttributeLimit>,
    /// The set as submitted, to list it again.
    pub entries: Vec<Entry>,
    /// Where in `counts` each User's thresholds are, and the DCC's (under `None`): a request
    /// looks at its own User's and the DCC's only, however many Users have thresholds.
    by_user: HashMap<Option<UserId>, Vec<usize>>,
}

/// Which kind of threshold an entry is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    User,
    Dcc,
    Attribute,
}

/// One threshold as the admin API takes it (`schemas/anomaly.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    #[serde(default)]
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<UserRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

/// Why a threshold set was refused; `usize` is the entry's position (from 0).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    #[error("more than {MAX_ENTRIES} entries")]
    TooMany,
    #[error("entry {0}: User {1} is not in the party register")]
    UnknownUser(usize, UserId),
    #[error("entry {0}: {1:?} is not a Service Reference Variant in the catalogue")]
    UnknownSrv(usize, String),
    #[error("entry {0}: no variant in the catalogue is in group {1}")]
    UnknownGroup(usize, u8),
    #[error("entry {0}: exactly one of srv and group is needed")]
    Scope(usize),
    #[error("entry {0}: window_s must be 3600 or 86400")]
    Window(usize),
    #[error("entry {0}: warning must be below quarantine, and one of them given")]
    Tiers(usize),
    #[error("entry {0}: {1:?} is not an attribute the gateway reads (schemas/anomaly.md)")]
    UnknownAttribute(usize, String),
    #[error("entry {0}: an attribute limit needs min or max, and min not above max")]
    Range(usize),
    #[error("entry {0}: field {1} does not belong to a threshold of this kind")]
    Field(usize, &'static str),
    #[error("entry {0}: a User threshold needs user")]
    NoUser(usize),
}

impl Thresholds {
    /// Checks `entries` against the catalogue and the party register (`known` says whether a
    /// User ID is in it) and numbers the set `version`.
    pub fn parse(
        entries: Vec<Entry>,
        version: u64,
        catalogue: &Catalogue,
        known: impl Fn(UserId) -> bool,
    ) -> Result<Self, ThresholdError> {
        if entries.len() > MAX_ENTRIES {
            return Err(ThresholdError::TooMany);
        }
        let mut set = Self {
            version,
            ..Self::default()
        };
        for (i, e) in entries.iter().enumerate() {
            match e.kind {
                Kind::User | Kind::Dcc => set.counts.push(count(i, e, catalogue, &known)?),
                Kind::Attribute => set.attributes.push(attribute(i, e, catalogue)?),
            }
        }
        set.entries = entries;
        for (i, t) in set.counts.iter().enumerate() {
            set.by_user.entry(t.user).or_default().push(i);
        }
        Ok(set)
    }

    /// The count thresholds that cover a request of `user` (in `role`) for `srv`: the User's
    /// own, then the DCC's.
    pub fn covering(
        &self,
        user: UserId,
        role: UserRole,
        srv: Srv,
    ) -> impl Iterator<Item = &CountThreshold> + '_ {
        let own = self.by_user.get(&Some(user)).into_iter().flatten();
        let dcc = self.by_user.get(&None).into_iter().flatten();
        own.chain(dcc)
            .filter_map(|i| self.counts.get(*i))
            .filter(move |t| t.scope.covers(srv) && t.role.is_none_or(|r| r == role))
    }

    /// The attributes bounded in requests of `srv`.
    pub fn bounded(&self, srv: Srv) -> Vec<Attribute> {
        let mut out: Vec<Attribute> = Vec::new();
        for a in self
            .attributes
            .iter()
            .filter(|a| a.srv.is_none_or(|s| s == srv))
        {
            if !out.contains(&a.attribute) {
                out.push(a.attribute);
            }
        }
        out
    }

    /// Whether any threshold could apply to a request of `user` for `srv`.
    pub fn concerns(&self, user: UserId, srv: Srv) -> bool {
        let counted = |u: Option<UserId>| {
            self.by_user
                .get(&u)
                .into_iter()
                .flatten()
                .filter_map(|i| self.counts.get(*i))
                .any(|c| c.scope.covers(srv))
        };
        counted(Some(user))
            || counted(None)
            || self
                .attributes
                .iter()
                .any(|a| a.srv.is_none_or(|s| s == srv))
    }
}

fn srv_of(i: usize, text: &str, catalogue: &Catalogue) -> Result<Srv, ThresholdError> {
    text.parse()
        .ok()
        .filter(|s| catalogue.get(s).is_some())
        .ok_or_else(|| ThresholdError::UnknownSrv(i, text.to_owned()))
}

fn count(
    i: usize,
    e: &Entry,
    catalogue: &Catalogue,
    known: &impl Fn(UserId) -> bool,
) -> Result<CountThreshold, ThresholdError> {
    if e.attribute.is_some() || e.min.is_some() || e.max.is_some() {
        return Err(ThresholdError::Field(i, "attribute/min/max"));
    }
    let user = match (e.kind, e.user) {
        (Kind::User, None) => return Err(ThresholdError::NoUser(i)),
        (Kind::User, Some(u)) if !known(u) => return Err(ThresholdError::UnknownUser(i, u)),
        (Kind::Dcc, Some(_)) => return Err(ThresholdError::Field(i, "user")),
        (Kind::Dcc, None) if e.role.is_some() => return Err(ThresholdError::Field(i, "role")),
        (_, user) => user,
    };
    let scope = match (&e.srv, e.group) {
        (Some(s), None) => Scope::Srv(srv_of(i, s, catalogue)?),
        (None, Some(g)) if catalogue.iter().any(|s| s.srv.group() == g) => Scope::Group(g),
        (None, Some(g)) => return Err(ThresholdError::UnknownGroup(i, g)),
        _ => return Err(ThresholdError::Scope(i)),
    };
    let window = e
        .window_s
        .and_then(Window::from_seconds)
        .ok_or(ThresholdError::Window(i))?;
    match (e.warning, e.quarantine) {
        (None, None) => return Err(ThresholdError::Tiers(i)),
        (Some(w), Some(q)) if w >= q => return Err(ThresholdError::Tiers(i)),
        _ => {}
    }
    Ok(CountThreshold {
        user,
        role: e.role,
        scope,
        window,
        warning: e.warning,
        quarantine: e.quarantine,
    })
}

fn attribute(i: usize, e: &Entry, catalogue: &Catalogue) -> Result<AttributeLimit, ThresholdError> {
    let stray = [
        (e.user.is_some(), "user"),
        (e.role.is_some(), "role"),
        (e.group.is_some(), "group"),
        (e.window_s.is_some(), "window_s"),
        (
            e.warning.is_some() || e.quarantine.is_some(),
            "warning/quarantine",
        ),
    ];
    if let Some((_, field)) = stray.iter().find(|(set, _)| *set) {
        return Err(ThresholdError::Field(i, field));
    }
    let name = e.attribute.as_deref().unwrap_or("");
    let attribute = name
        .parse()
        .map_err(|_| ThresholdError::UnknownAttribute(i, name.to_owned()))?;
    let srv = e
        .srv
        .as_deref()
        .map(|s| srv_of(i, s, catalogue))
        .transpose()?;
    match (e.min, e.max) {
        (None, None) => return Err(ThresholdError::Range(i)),
        (Some(lo), Some(hi)) if lo > hi => return Err(ThresholdError::Range(i)),
        _ => {}
    }
    Ok(AttributeLimit {
        attribute,
        srv,
        min: e.min,
        max: e.max,
    })
}
