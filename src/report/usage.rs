//! The usage report: per User, what it asked for and how many bytes moved.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Month, Report};
use crate::audit::{AuditEvent, DeliveryOutcome};
use crate::domain::UserId;

/// One SRV's requests from one User (`unknown` for requests refused before an SRV was read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SrvUsage {
    pub requests: u64,
    pub accepted: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserUsage {
    /// Totals of `by_srv`.
    pub requests: u64,
    pub accepted: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Asynchronous messages (responses, alerts) the User's endpoint accepted, and their bytes.
    pub delivered_messages: u64,
    pub delivered_bytes: u64,
    pub by_srv: BTreeMap<String, SrvUsage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub month: super::Month,
    pub users: BTreeMap<UserId, UserUsage>,
}

pub struct Usage {
    month: Month,
    users: BTreeMap<UserId, UserUsage>,
}

impl Usage {
    pub fn new(month: Month) -> Self {
        Self {
            month,
            users: BTreeMap::new(),
        }
    }
}

impl Report for Usage {
    type Output = UsageReport;

    fn add(&mut self, event: &AuditEvent) {
        if !self.month.contains(event.at_ms()) {
            return;
        }
        match event {
            AuditEvent::Request(r) => {
                let user = self.users.entry(r.user()).or_default();
                let srv = r
                    .srv
                    .map_or_else(|| "unknown".to_owned(), |s| s.to_string());
                let accepted = u64::from(r.accepted());
                let per_srv = user.by_srv.entry(srv).or_default();
                per_srv.requests += 1;
                per_srv.accepted += accepted;
                per_srv.bytes_in += r.bytes_in;
                per_srv.bytes_out += r.bytes_out;
                user.requests += 1;
                user.accepted += accepted;
                user.bytes_in += r.bytes_in;
                user.bytes_out += r.bytes_out;
            }
            AuditEvent::Delivery(d) if d.outcome == DeliveryOutcome::Delivered => {
                let user = self.users.entry(d.user).or_default();
                user.delivered_messages += 1;
                user.delivered_bytes += d.bytes;
            }
            // The User was charged when the request arrived (a schedule, when it was created); an
            // alert's routing charges no one.
            AuditEvent::Delivery(_) | AuditEvent::Execution(_) | AuditEvent::Routing(_) => {}
        }
    }

    fn finish(self) -> UsageReport {
        UsageReport {
            month: self.month,
            users: self.users,
        }
    }
}
