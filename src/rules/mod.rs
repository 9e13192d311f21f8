//! Dated rule sets: the catalogue's eligibility and flags and the alert-routing rules as
//! versioned data, each version in force from its effective instant (SEC modifications go live
//! on dated release days). A version is written as changes to the one before it
//! (`schemas/rules.md`); it is checked against the book before it is added, and it may only be
//! added ahead of its date. Which version is in force at an instant is a pure question: the
//! instant is an argument.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::alerts::{RouteRule, RoutingTable};
use crate::catalogue::{Catalogue, CatalogueError};
use crate::domain::{CommandVariant, Srv, UserRole};

mod diff;

pub use diff::{diff, RuleChange};

#[cfg(test)]
mod tests;

/// The version in force before any dated one: the built-in catalogue and the configured alert
/// routes.
pub const BASE_VERSION: &str = "base";

/// Versions a book holds at most, the base included (each is a whole catalogue): one more is
/// refused, nothing changes.
pub const MAX_VERSIONS: usize = 1000;

/// One version of the rules, complete.
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub version: String,
    /// Unix seconds; `i64::MIN` for the base version.
    pub effective_from: i64,
    pub catalogue: Catalogue,
    /// The alert-routing rules over the built-in ones, in order (later rules win).
    pub alert_routes: Vec<RouteRule>,
    /// The routing table those rules make.
    pub alert_table: RoutingTable,
}

/// A new version, as written: changes to the version before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// A name no other version has (e.g. `2027-06-release`).
    pub version: String,
    /// RFC 3339: the instant from which requests executing (and alerts raised) use it.
    pub effective_from: String,
    /// Per SRV: the fields that change.
    #[serde(default)]
    pub srvs: BTreeMap<Srv, SrvPatch>,
    /// When present, the whole list of configured alert-routing rules from this version on.
    #[serde(default)]
    pub alert_routes: Option<Vec<RouteRule>>,
}

/// The catalogue fields a version may change for one SRV.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrvPatch {
    pub roles: Option<Vec<UserRole>>,
    pub command_variants: Option<Vec<CommandVariant>>,
    pub critical: Option<bool>,
    pub on_demand: Option<bool>,
    pub dcc_scheduled: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("the rule file is not valid JSON of the documented shape")]
    Json(#[source] serde_json::Error),
    #[error("effective_from {0:?} is not an RFC 3339 instant")]
    EffectiveFrom(String),
    #[error("version {0:?} is empty, too long (over 64 characters) or already in the book")]
    Version(String),
    #[error("version {version} takes effect at {at}, not after {latest} (the latest version's)")]
    NotAfterLatest {
        version: String,
        at: i64,
        latest: i64,
    },
    #[error("version {version} takes effect at {at}, which is not ahead of now ({now})")]
    NotAhead { version: String, at: i64, now: i64 },
    #[error("{0} is not in the catalogue")]
    UnknownSrv(Srv),
    #[error("{srv}: {source}")]
    Entry {
        srv: Srv,
        #[source]
        source: CatalogueError,
    },
    #[error("a version changes nothing")]
    Empty,
    #[error("the book holds {MAX_VERSIONS} versions already")]
    TooMany,
}

impl RuleFile {
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        serde_json::from_str(text).map_err(RulesError::Json)
    }

    /// The effective instant, in unix seconds.
    pub fn effective_at(&self) -> Result<i64, RulesError> {
        OffsetDateTime::parse(&self.effective_from, &Rfc3339)
            .map(|t| t.unix_timestamp())
            .map_err(|_| RulesError::EffectiveFrom(self.effective_from.clone()))
    }
}

impl RuleSet {
    /// The base version.
    pub fn base(catalogue: Catalogue, alert_routes: Vec<RouteRule>) -> Self {
        Self {
            version: BASE_VERSION.to_owned(),
            effective_from: i64::MIN,
            catalogue,
            alert_table: RoutingTable::with_rules(&alert_routes),
            alert_routes,
        }
    }

    /// This version with `file`'s changes applied: the next version.
    pub fn apply(&self, file: &RuleFile) -> Result<Self, RulesError> {
        if file.srvs.is_empty() && file.alert_routes.is_none() {
            return Err(RulesError::Empty);
        }
        let mut catalogue = self.catalogue.clone();
        for (srv, patch) in &file.srvs {
            let mut entry = catalogue
                .get(srv)
                .cloned()
                .ok_or(RulesError::UnknownSrv(*srv))?;
            if let Some(roles) = &patch.roles {
                entry.roles = roles.clone();
            }
            if let Some(cvs) = &patch.command_variants {
                entry.command_variants = cvs.clone();
            }
            entry.critical = patch.critical.unwrap_or(entry.critical);
            entry.on_demand = patch.on_demand.unwrap_or(entry.on_demand);
            entry.dcc_scheduled = patch.dcc_scheduled.unwrap_or(entry.dcc_scheduled);
            catalogue = catalogue
                .with_entry(entry)
                .map_err(|source| RulesError::Entry { srv: *srv, source })?;
        }
        let alert_routes = file
            .alert_routes
            .clone()
            .unwrap_or_else(|| self.alert_routes.clone());
        Ok(Self {
            version: file.version.clone(),
            effective_from: file.effective_at()?,
            catalogue,
            alert_table: RoutingTable::with_rules(&alert_routes),
            alert_routes,
        })
    }
}

/// Every version, in effective order; the first is the base.
#[derive(Clone, Debug)]
pub struct RuleBook {
    sets: Vec<Arc<RuleSet>>,
}

impl RuleBook {
    pub fn new(base: RuleSet) -> Self {
        Self {
            sets: vec![Arc::new(base)],
        }
    }

    /// The version in force at `at` (unix seconds): the last one effective at or before it.
    pub fn in_force(&self, at: i64) -> &Arc<RuleSet> {
        let after = self.sets.partition_point(|s| s.effective_from <= at);
        // The base is effective from i64::MIN, so at least one set precedes any instant.
        &self.sets[after.saturating_sub(1)]
    }

    /// The latest version (in force from its instant on).
    pub fn latest(&self) -> &Arc<RuleSet> {
        // A book always holds its base.
        &self.sets[self.sets.len() - 1]
    }

    pub fn versions(&self) -> impl Iterator<Item = &Arc<RuleSet>> {
        self.sets.iter()
    }

    /// Checks `file` as the next version at `now` (unix seconds): a new name, effective after
    /// the latest version and ahead of `now`, changes that apply. With `replaying`, the
    /// ahead-of-now rule is not applied (a journalled version replayed at start).
    pub fn check(&self, file: &RuleFile, now: i64, replaying: bool) -> Result<RuleSet, RulesError> {
        if self.sets.len() >= MAX_VERSIONS {
            return Err(RulesError::TooMany);
        }
        let name = file.version.trim();
        if name.is_empty() || name.len() > 64 || self.sets.iter().any(|s| s.version == name) {
            return Err(RulesError::Version(file.version.clone()));
        }
        let at = file.effective_at()?;
        let latest = self.latest();
        if at <= latest.effective_from {
            return Err(RulesError::NotAfterLatest {
                version: file.version.clone(),
                at,
                latest: latest.effective_from,
            });
        }
        if !replaying && at <= now {
            return Err(RulesError::NotAhead {
                version: file.version.clone(),
                at,
                now,
            });
        }
        latest.apply(file)
    }

    /// The book with `set` (from [`RuleBook::check`]) added.
    pub fn with(&self, set: RuleSet) -> Self {
        let mut sets = self.sets.clone();
        sets.push(Arc::new(set));
        Self { sets }
    }
}
