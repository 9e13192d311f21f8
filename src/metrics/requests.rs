//! The request families. The latency histogram carries only labels of a few values each
//! (service and outcome: 6 children of 19 series); the breakdown by SRV, role, class and
//! response code is a counter (one series per combination seen), so that the series count grows
//! with the combinations in use, not 19 times that.

use prometheus::{HistogramVec, IntCounterVec};

use super::{Builder, LATENCY_BUCKETS};
use crate::domain::DuisService;

/// How a request ended, for the latency histogram.
pub const OUTCOMES: [&str; 2] = ["accepted", "refused"];

/// `dccgw_request_duration_seconds{service, outcome}` and
/// `dccgw_requests_total{service, srv, role, class, code}`, listed from the start.
pub(super) fn families(b: &Builder) -> (HistogramVec, IntCounterVec) {
    let duration = b.histogram(
        "dccgw_request_duration_seconds",
        "Time from a request's body being read to its synchronous answer being written, by service and outcome (accepted or refused).",
        LATENCY_BUCKETS,
        &["service", "outcome"],
    );
    let requests = b.counters(
        "dccgw_requests_total",
        "Requests answered, by service, SRV (unknown when not in the catalogue), the role and class access control used (none when refused before), and DUIS response code.",
        &["service", "srv", "role", "class", "code"],
    );
    for service in DuisService::ALL {
        for outcome in OUTCOMES {
            duration.with_label_values(&[service.label(), outcome]);
        }
        // One child per service at zero, so the family is listed before the first request.
        requests.with_label_values(&[service.label(), "unknown", "none", "none", "I0"]);
    }
    (duration, requests)
}
