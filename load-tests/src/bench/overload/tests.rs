//! The overload figures from a made-up plan and made-up results: goodput, sheds by admission
//! class, shed latency and the seconds until the recovery phase is normal.

use std::path::Path;

use dccgw::domain::DCC_ID;

use super::*;
use crate::client::SyncResult;
use crate::outcome::{Code, Outcome};
use crate::plan::{Plan, Planned, PlannedStep};
use crate::scenario::Scenario;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn scenario() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/overload-2x.toml");
    Scenario::load(&path).unwrap()
}

fn duis(code: &str) -> Outcome {
    Outcome::Duis(Code::new(code).unwrap())
}

fn baseline(p99_us: u64) -> RunSummary {
    RunSummary {
        offered_rps: 10.0,
        duration_s: 10.0,
        requests: 100,
        accepted: 100,
        throughput_rps: 10.0,
        error_ratio: 0.0,
        sync: Percentiles {
            count: 100,
            p99_us,
            ..Percentiles::default()
        },
        service: Percentiles::default(),
        send_lag: Percentiles::default(),
        codes: BTreeMap::new(),
        by_class: BTreeMap::new(),
        critical: BTreeMap::new(),
        steps: Vec::new(),
        async_: Default::default(),
    }
}

#[test]
fn goodput_sheds_by_class_and_the_time_back_to_normal() {
    let scenario = scenario();
    let mix = &scenario.mix;
    let bulk = mix
        .iter()
        .position(|m| m.srv.to_string() == "4.1.1")
        .unwrap() as u16;
    let critical = mix.iter().position(|m| m.name == "critical").unwrap() as u16;
    // 10 s of overload at 20/s, then 10 s of recovery at 10/s; every fifth request critical.
    let mut items = Vec::new();
    for i in 0..200 {
        items.push((i * S / 20, 0));
    }
    for i in 0..100 {
        items.push((10 * S + i * S / 10, 1));
    }
    let items: Vec<Planned> = items
        .into_iter()
        .enumerate()
        .map(|(n, (at_ns, step))| Planned {
            at_ns,
            step,
            class: if n % 5 == 0 { critical } else { bulk },
            user: 0,
            target: DCC_ID,
        })
        .collect();
    let plan = Plan {
        steps: vec![
            PlannedStep {
                rate: 20.0,
                start_ns: 0,
                end_ns: 10 * S,
            },
            PlannedStep {
                rate: 10.0,
                start_ns: 10 * S,
                end_ns: 20 * S,
            },
        ],
        items,
        counter_base: 1,
    };
    // During the overload half the bulk reads are shed (in 1 ms), everything else accepted in
    // 4 ms; seconds 10 and 11 still shed one read each and second 12 is slow; from 13 on, normal.
    let results: Vec<SyncResult> = plan
        .items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let second = item.at_ns / S;
            let is_bulk = item.class == bulk;
            let shed = (second < 10 && is_bulk && n % 2 == 0)
                || ((second == 10 || second == 11) && n % 10 == 1);
            let latency_ns = match (shed, second) {
                (true, _) => MS,
                (false, 12) => 50 * MS,
                _ => 4 * MS,
            };
            SyncResult {
                idx: n as u32,
                latency_ns,
                service_ns: latency_ns,
                lag_ns: 0,
                outcome: if shed { duis("E60") } else { duis("I99") },
                pair: None,
            }
        })
        .collect();
    let spec = OverloadSpec {
        run_s: 10.0,
        ..OverloadSpec::default()
    };
    let o = analyse(&plan, mix, &results, &baseline(5_000), &spec, 15.0);
    let critical_figures = &o.overload_classes["critical"];
    let bulk_figures = &o.overload_classes["bulk"];
    assert_eq!(
        (critical_figures.requests, critical_figures.shed),
        (40, 0),
        "every fifth of 200 is critical, none shed"
    );
    assert_eq!((bulk_figures.requests, bulk_figures.shed), (160, 80));
    // 120 accepted over 10 s against a saturation of 15/s.
    assert_eq!(o.goodput_rps, 12.0);
    assert!((o.goodput_ratio - 0.8).abs() < 1e-9);
    assert_eq!(o.shed_sync.count, 82);
    assert!(o.shed_sync.p99_us <= 1_001, "{:?}", o.shed_sync);
    assert_eq!(o.back_to_normal_s, Some(3), "{:?}", o.seconds);
    assert_eq!(o.seconds.len(), 20);
}
