//! The decision: a request against the thresholds in force and the counts before it. An
//! attribute limit breached quarantines first (the request is wrong whatever the counts), then a
//! User threshold, then a DCC threshold. A request quarantined is not counted; one that passes
//! is counted in every window a threshold covers it by. A warning is raised by the request that
//! takes a count past its warning tier (once per crossing, not by every request above it; with
//! counts that jump — other instances' requests read in — by the first request after the jump).

use crate::domain::{Srv, UserId, UserRole};
use crate::duis::outbound::QuarantineBreach;

use super::{Attribute, Scope, Thresholds, Window};

/// What the decision reads of a request.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub user: UserId,
    /// The role access control chose.
    pub role: UserRole,
    pub srv: Srv,
    /// The body's values of the attributes the thresholds bound.
    pub values: &'a [(Attribute, Option<i64>)],
}

/// The counts before this request.
pub trait Counted {
    /// Requests counted in `scope` over `window`: of `user` (every User's when `None`), in
    /// `role` (any role when `None`).
    fn count(
        &self,
        user: Option<UserId>,
        role: Option<UserRole>,
        scope: Scope,
        window: Window,
    ) -> u64;

    /// The same count as it stood after the last decision these counts took part in, if they
    /// know it. Between two decisions a count only grows by one when every request is counted
    /// where it is decided; counts that also take in other instances' requests can jump, and
    /// with this the decision still raises a warning tier the jump passed over (once).
    fn last_decided(
        &self,
        _user: Option<UserId>,
        _role: Option<UserRole>,
        _scope: Scope,
        _window: Window,
    ) -> Option<u64> {
        None
    }
}

/// Which threshold a request breached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreachKind {
    UserThreshold,
    DccThreshold,
    AttributeLimits,
}

impl BreachKind {
    /// The `QuarantinedRequest` element the `AD1` carries.
    pub const fn duis(self) -> QuarantineBreach {
        match self {
            Self::UserThreshold => QuarantineBreach::UserThreshold,
            Self::DccThreshold => QuarantineBreach::DccThreshold,
            Self::AttributeLimits => QuarantineBreach::AttributeLimits,
        }
    }

    /// The closed-set label of metrics, the audit trail and the admin API.
    pub const fn label(self) -> &'static str {
        match self {
            Self::UserThreshold => "user_threshold",
            Self::DccThreshold => "dcc_threshold",
            Self::AttributeLimits => "attribute_limits",
        }
    }

    pub fn from_label(s: &str) -> Option<Self> {
        [
            Self::UserThreshold,
            Self::DccThreshold,
            Self::AttributeLimits,
        ]
        .into_iter()
        .find(|k| k.label() == s)
    }
}

/// A breach: its kind, and what was passed (for the log and the audit trail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    pub kind: BreachKind,
    pub detail: Detail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// The count before the request, and the tier it would have passed.
    Count {
        scope: Scope,
        window: Window,
        count: u64,
        limit: u64,
    },
    /// The value (`None`: not an integer) outside the range.
    Value {
        attribute: Attribute,
        value: Option<i64>,
    },
}

/// A count this request took past a warning tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub kind: BreachKind,
    pub scope: Scope,
    pub window: Window,
    pub tier: u64,
}

/// What to do with the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Quarantine it (and count it nowhere).
    pub quarantine: Option<Breach>,
    /// Send it, and raise these warnings.
    pub warnings: Vec<Warning>,
}

/// The decision on `facts` under `thresholds`, on the counts before the request.
pub fn decide(thresholds: &Thresholds, facts: &Facts<'_>, counts: &impl Counted) -> Verdict {
    if let Some(breach) = attribute_breach(thresholds, facts) {
        return Verdict {
            quarantine: Some(breach),
            warnings: Vec::new(),
        };
    }
    let mut warnings = Vec::new();
    let mut by_dcc = None;
    for t in thresholds.covering(facts.user, facts.role, facts.srv) {
        let kind = match t.user {
            Some(_) => BreachKind::UserThreshold,
            None => BreachKind::DccThreshold,
        };
        let count = counts.count(t.user, t.role, t.scope, t.window);
        if let Some(limit) = t.quarantine.filter(|q| count >= *q) {
            let breach = Breach {
                kind,
                detail: Detail::Count {
                    scope: t.scope,
                    window: t.window,
                    count,
                    limit,
                },
            };
            if kind == BreachKind::UserThreshold {
                return Verdict {
                    quarantine: Some(breach),
                    warnings: Vec::new(),
                };
            }
            by_dcc.get_or_insert(breach);
            continue;
        }
        let last = counts.last_decided(t.user, t.role, t.scope, t.window);
        // This request takes the count past the tier: it stands at the tier, or it jumped past
        // it since the last decision (which left it at most at the tier).
        let crosses = |w: &u64| count == *w || last.is_some_and(|l| l <= *w && count > *w);
        if let Some(tier) = t.warning.filter(crosses) {
            warnings.push(Warning {
                kind,
                scope: t.scope,
                window: t.window,
                tier,
            });
        }
    }
    match by_dcc {
        Some(breach) => Verdict {
            quarantine: Some(breach),
            warnings: Vec::new(),
        },
        None => Verdict {
            quarantine: None,
            warnings,
        },
    }
}

fn attribute_breach(thresholds: &Thresholds, facts: &Facts<'_>) -> Option<Breach> {
    for limit in &thresholds.attributes {
        if limit.srv.is_some_and(|s| s != facts.srv) {
            continue;
        }
        for &(attribute, value) in facts.values.iter().filter(|(a, _)| *a == limit.attribute) {
            let inside = value.is_some_and(|v| {
                limit.min.is_none_or(|lo| v >= lo) && limit.max.is_none_or(|hi| v <= hi)
            });
            if !inside {
                return Some(Breach {
                    kind: BreachKind::AttributeLimits,
                    detail: Detail::Value { attribute, value },
                });
            }
        }
    }
    None
}
