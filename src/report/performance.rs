//! The performance report: on-demand Service Responses within their Target Response Time.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Month, Report, Targets};
use crate::audit::{AuditEvent, DeliveryOutcome, Message};
use crate::domain::RequestId;

/// Counts for one SRV family (the SRV's first number), or for all of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FamilyPerformance {
    /// Accepted on-demand requests received in the month.
    pub responses: u64,
    /// Of those, answered (synchronously) or delivered (asynchronously) within target.
    pub within_target: u64,
    /// Answered or delivered, but after the target.
    pub late: u64,
    /// Asynchronous responses not delivered by the end of the trail.
    pub undelivered: u64,
    /// `within_target / responses` as a percentage; 100 when there were none.
    pub percent_within_target: f64,
}

impl FamilyPerformance {
    fn count(&mut self, within: Option<bool>) {
        self.responses += 1;
        match within {
            Some(true) => self.within_target += 1,
            Some(false) => self.late += 1,
            None => self.undelivered += 1,
        }
    }

    fn close(&mut self) {
        self.percent_within_target = if self.responses == 0 {
            100.0
        } else {
            self.within_target as f64 * 100.0 / self.responses as f64
        };
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerformanceReport {
    pub month: Month,
    pub targets: Targets,
    /// By SRV family (`"4"`: reads, …).
    pub families: BTreeMap<u8, FamilyPerformance>,
    pub total: FamilyPerformance,
    /// Requests in the month that were refused (not counted above), for context.
    pub refused: u64,
}

/// An accepted request whose asynchronous response has not been seen delivered yet.
struct Waiting {
    family: u8,
    at_ms: i64,
    target_ms: u64,
}

pub struct Performance {
    month: Month,
    targets: Targets,
    families: BTreeMap<u8, FamilyPerformance>,
    /// By RequestID; a list because the critical CV4→CV5 flow reuses one RequestID.
    waiting: HashMap<RequestId, Vec<Waiting>>,
    refused: u64,
}

impl Performance {
    pub fn new(month: Month, targets: Targets) -> Self {
        Self {
            month,
            targets,
            families: BTreeMap::new(),
            waiting: HashMap::new(),
            refused: 0,
        }
    }
}

impl Report for Performance {
    type Output = PerformanceReport;

    fn add(&mut self, event: &AuditEvent) {
        match event {
            AuditEvent::Request(r) if self.month.contains(r.at_ms) => {
                if !r.accepted() {
                    self.refused += 1;
                    return;
                }
                let Some(srv) = r.srv.filter(|_| r.on_demand) else {
                    return;
                };
                let family = srv.service_reference().family();
                let target_ms = self.targets.target_ms(&srv);
                match (r.response_follows, r.request_id) {
                    (true, Some(id)) => self.waiting.entry(id).or_default().push(Waiting {
                        family,
                        at_ms: r.at_ms,
                        target_ms,
                    }),
                    _ => {
                        let within = r.timings.total_us <= target_ms.saturating_mul(1000);
                        self.families.entry(family).or_default().count(Some(within));
                    }
                }
            }
            // Counted when the request arrived; its release decides nothing the report counts.
            AuditEvent::Request(_) | AuditEvent::Execution(_) | AuditEvent::Routing(_) => {}
            AuditEvent::Delivery(d) => {
                let Message::Response { request_id, .. } = &d.message else {
                    return;
                };
                if d.outcome != DeliveryOutcome::Delivered {
                    return;
                }
                let Some(list) = self.waiting.get_mut(request_id) else {
                    return;
                };
                // The earliest request with this RequestID is the one answered first.
                let w = list.remove(0);
                if list.is_empty() {
                    self.waiting.remove(request_id);
                }
                let elapsed = u64::try_from(d.at_ms.saturating_sub(w.at_ms)).unwrap_or(0);
                self.families
                    .entry(w.family)
                    .or_default()
                    .count(Some(elapsed <= w.target_ms));
            }
        }
    }

    fn finish(mut self) -> PerformanceReport {
        for w in self.waiting.into_values().flatten() {
            self.families.entry(w.family).or_default().count(None);
        }
        let mut total = FamilyPerformance::default();
        for f in self.families.values_mut() {
            f.close();
            total.responses += f.responses;
            total.within_target += f.within_target;
            total.late += f.late;
            total.undelivered += f.undelivered;
        }
        total.close();
        PerformanceReport {
            month: self.month,
            targets: self.targets,
            families: self.families,
            total,
            refused: self.refused,
        }
    }
}
