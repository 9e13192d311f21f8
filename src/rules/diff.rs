//! What one version changes against another, for `dccgw rules check`.

use std::fmt;

use super::RuleSet;
use crate::alerts::{Audience, RouteRule};
use crate::catalogue::SrvEntry;
use crate::domain::Srv;

/// One difference between two versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleChange {
    /// A field of one SRV's catalogue entry: its name, and the values before and after.
    Srv {
        srv: Srv,
        field: &'static str,
        before: String,
        after: String,
    },
    /// The configured alert-routing rules.
    AlertRoutes { before: String, after: String },
}

impl fmt::Display for RuleChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Srv {
                srv,
                field,
                before,
                after,
            } => write!(f, "{srv} {field}: {before} -> {after}"),
            Self::AlertRoutes { before, after } => {
                write!(f, "alert routes: {before} -> {after}")
            }
        }
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

fn fields(e: &SrvEntry) -> [(&'static str, String); 5] {
    [
        ("roles", list(&e.roles)),
        ("command_variants", list(&e.command_variants)),
        ("critical", e.critical.to_string()),
        ("on_demand", e.on_demand.to_string()),
        ("dcc_scheduled", e.dcc_scheduled.to_string()),
    ]
}

/// Every change from `old` to `new`, SRVs in catalogue order, then the alert routes.
pub fn diff(old: &RuleSet, new: &RuleSet) -> Vec<RuleChange> {
    let mut out = Vec::new();
    for after in new.catalogue.iter() {
        let Some(before) = old.catalogue.get(&after.srv) else {
            continue;
        };
        for ((field, b), (_, a)) in fields(before).into_iter().zip(fields(after)) {
            if a != b {
                out.push(RuleChange::Srv {
                    srv: after.srv,
                    field,
                    before: b,
                    after: a,
                });
            }
        }
    }
    if old.alert_routes != new.alert_routes {
        let show = |rules: &[RouteRule]| {
            let parts: Vec<String> = rules
                .iter()
                .map(|r| {
                    let to = match r.to {
                        Audience::Supplier => "supplier",
                        Audience::NetworkOperator => "network_operator",
                        Audience::Both => "both",
                    };
                    match (r.codes.first(), r.codes.last()) {
                        (a, b) if a == b => format!("{a:04X} to {to}"),
                        (a, b) => format!("{a:04X}-{b:04X} to {to}"),
                    }
                })
                .collect();
            format!("[{}]", parts.join(", "))
        };
        out.push(RuleChange::AlertRoutes {
            before: show(&old.alert_routes),
            after: show(&new.alert_routes),
        });
    }
    out
}
