use std::sync::Arc;

use dccgw::domain::UserRole;

use super::*;
use crate::outcome::{Code, Outcome};
use crate::plan::{Planned, PlannedStep};

fn mix() -> Vec<MixEntry> {
    let entry = |name: &str, srv: &str, cv: u8| MixEntry {
        name: name.into(),
        weight: 1,
        srv: srv.parse().unwrap(),
        cv: cv.try_into().unwrap(),
        role: UserRole::ImportSupplier,
        body: String::new(),
        signed_cv: None,
    };
    vec![
        entry("meter-read", "4.1.1", 1),
        entry("non-device", "8.2", 8),
        MixEntry {
            signed_cv: Some(5.try_into().unwrap()),
            ..entry("critical", "7.1", 4)
        },
    ]
}

fn plan(n: u64) -> Plan {
    Plan {
        items: (0..n)
            .map(|i| Planned {
                at_ns: i * 10_000_000,
                step: u16::from(i >= n / 2),
                class: (i % 2) as u16,
                user: 0,
                target: dccgw::domain::DCC_ID,
            })
            .collect(),
        steps: vec![
            PlannedStep {
                rate: 100.0,
                start_ns: 0,
                end_ns: n * 5_000_000,
            },
            PlannedStep {
                rate: 100.0,
                start_ns: n * 5_000_000,
                end_ns: n * 10_000_000,
            },
        ],
        counter_base: 0,
    }
}

fn result(idx: u32, ms: u64, outcome: Outcome) -> SyncResult {
    SyncResult {
        idx,
        latency_ns: ms * 1_000_000,
        service_ns: ms * 1_000_000 / 2,
        lag_ns: 0,
        outcome,
        pair: None,
    }
}

#[test]
fn percentiles_throughput_and_codes() {
    let plan = plan(100);
    let i99 = Outcome::Duis(Code::new("I99").unwrap());
    let i0 = Outcome::Duis(Code::new("I0").unwrap());
    let e4 = Outcome::Duis(Code::new("E4").unwrap());
    let mut results: Vec<SyncResult> = (0..98)
        .map(|i| result(i, u64::from(i) + 1, if i % 2 == 0 { i99 } else { i0 }))
        .collect();
    results.push(result(98, 1_000, e4));
    results.push(result(99, 5, Outcome::Timeout));
    let s = summarise(&plan, &mix(), &results, 1.0, None);
    assert_eq!(s.requests, 100);
    assert_eq!(s.accepted, 98);
    assert!((s.error_ratio - 0.02).abs() < 1e-12);
    assert!((s.throughput_rps - 98.0).abs() < 1e-9);
    assert!((s.offered_rps - 100.0).abs() < 1e-9);
    assert_eq!(s.codes.get("E4"), Some(&1));
    assert_eq!(s.codes.get("timeout"), Some(&1));
    assert_eq!(s.codes.get("I99"), Some(&49));
    // 1..=98 ms, 5 ms and 1 s: the 50th of 100 is 49 ms (HdrHistogram keeps three digits).
    assert!((48_900..=49_100).contains(&s.sync.p50_us), "{:?}", s.sync);
    assert!(s.sync.max_us >= 999_000);
    assert!(s.service.p50_us < s.sync.p50_us);
    assert_eq!(s.steps.len(), 2);
    assert_eq!(s.steps[0].requests, 50);
    assert_eq!(s.by_class.len(), 2);
    // Only device requests acknowledged I99 expect a Service Response; none was tracked.
    assert_eq!(s.async_.expected, 0);
    assert_eq!(s.async_.received, 0);
}

#[test]
fn empty_runs_have_empty_figures() {
    let s = summarise(&plan(10), &mix(), &[], 1.0, None);
    assert_eq!(s.sync, Percentiles::default());
    assert_eq!(s.accepted, 0);
    assert_eq!(s.error_ratio, 0.0);
}

#[test]
fn async_figures_come_from_the_receiver() {
    let plan = Arc::new(plan(4));
    let user: dccgw::domain::UserId = "90-B3-D5-1F-30-01-00-00".parse().unwrap();
    let start = std::time::Instant::now();
    let table = Deliveries::new(plan.clone(), Arc::new(vec![user]), start);
    let id = dccgw::domain::RequestId {
        originator: user,
        target: dccgw::domain::DCC_ID,
        counter: 2,
    };
    table.record(
        crate::receiver::Delivery::Response {
            request_id: id,
            code: Some("I0".into()),
        },
        start + std::time::Duration::from_millis(120),
    );
    let i99 = Outcome::Duis(Code::new("I99").unwrap());
    let results: Vec<SyncResult> = (0..4).map(|i| result(i, 1, i99)).collect();
    let s = summarise(&plan, &mix(), &results, 1.0, Some(&table));
    assert_eq!(s.async_.received, 1);
    // Item 2 was due at 20 ms: 100 ms later.
    assert!(
        (99_900..=100_100).contains(&s.async_.latency.p99_us),
        "{:?}",
        s.async_
    );
    // Items 0 and 2 are meter reads acknowledged I99: two Service Responses expected.
    assert_eq!(s.async_.expected, 2);
}

/// A critical pair is one request: its outcome and latency are the pair's; its parts, and the
/// device's Service Response, are in the class's critical summary.
#[test]
fn critical_pairs_are_summarised_part_by_part() {
    let mut plan = plan(4);
    for item in &mut plan.items {
        item.class = 2;
    }
    let plan = Arc::new(plan);
    let user: dccgw::domain::UserId = "90-B3-D5-1F-30-01-00-00".parse().unwrap();
    let start = std::time::Instant::now();
    let table = Deliveries::new(plan.clone(), Arc::new(vec![user]), start);
    table.record(
        crate::receiver::Delivery::Response {
            request_id: dccgw::domain::RequestId {
                originator: user,
                target: dccgw::domain::DCC_ID,
                counter: 1,
            },
            code: Some("I0".into()),
        },
        start + std::time::Duration::from_millis(410),
    );
    let i99 = Outcome::Duis(Code::new("I99").unwrap());
    let e1006 = Outcome::Duis(Code::new("E1006").unwrap());
    let signed = |idx, outcome| SyncResult {
        pair: Some(crate::client::PairTimes {
            transform_ns: 2_000_000,
            signing_ns: 500_000,
            signed_ns: 3_000_000,
        }),
        ..result(idx, 6, outcome)
    };
    let results = [
        signed(0, i99),
        signed(1, i99),
        signed(2, e1006),
        // The Transform refused: no second request.
        result(3, 1, Outcome::Duis(Code::new("E4").unwrap())),
    ];
    let s = summarise(&plan, &mix(), &results, 1.0, Some(&table));
    assert_eq!((s.requests, s.accepted), (4, 2));
    let c = &s.critical["critical"];
    assert_eq!((c.pairs, c.signed, c.accepted), (4, 3, 2));
    assert_eq!(c.transform.count, 3);
    assert!((1_995..=2_005).contains(&c.transform.p50_us), "{c:?}");
    assert!((499..=501).contains(&c.user_signing.p50_us), "{c:?}");
    assert!(
        (2_995..=3_005).contains(&c.signed_precommand.p50_us),
        "{c:?}"
    );
    assert!((5_995..=6_005).contains(&c.pair.p50_us), "{c:?}");
    // Item 1 was due at 10 ms: its Service Response 400 ms later.
    assert_eq!(c.device_response.count, 1);
    assert!(
        (399_000..=401_000).contains(&c.device_response.p50_us),
        "{c:?}"
    );
    // The two pairs acknowledged I99 each expect the device's Service Response.
    assert_eq!(s.async_.expected, 2);
    assert_eq!(s.async_.expected_local, 0);
    assert_eq!(s.codes.get("E1006"), Some(&1));
}
