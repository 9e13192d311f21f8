use std::collections::HashMap;

use dccgw::auth::{self, AccessRequest};
use dccgw::catalogue::Catalogue;
use dccgw::register::PartyRegister;
use time::OffsetDateTime;

use super::*;
use crate::scenario::{Scenario, Step};

fn scenario() -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/steady-state.toml");
    Scenario::load(&path).unwrap()
}

#[test]
fn arrivals_are_evenly_spaced_at_each_steps_rate() {
    let load = Load::Steps {
        steps: vec![
            Step {
                rate: 10.0,
                duration_s: 2.0,
            },
            Step {
                rate: 100.0,
                duration_s: 1.0,
            },
        ],
    };
    let (times, steps) = arrivals(&load).unwrap();
    assert_eq!(times.len(), 120);
    assert_eq!(times[0], (0, 0));
    assert_eq!(times[1], (100_000_000, 0));
    assert_eq!(times[20], (2_000_000_000, 1));
    assert_eq!(times[21], (2_010_000_000, 1));
    assert!(times.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(steps[1].start_ns, 2_000_000_000);
    assert_eq!(steps[1].end_ns, 3_000_000_000);
}

#[test]
fn refuses_plans_too_big_to_sign_in_memory() {
    let load = Load::constant(100_000.0, 3_600.0);
    assert!(matches!(arrivals(&load), Err(PlanError::TooMany(_))));
}

#[test]
fn counters_rise_per_user_and_name_their_request() {
    let s = scenario();
    let pop = Population::new(s.population.devices, s.population.other_users);
    let plan = build(&Load::constant(500.0, 4.0), &s.mix, &pop, 7, 1_000).unwrap();
    assert_eq!(plan.items.len(), 2000);
    for lane in plan.lanes(pop.users.len()) {
        // Plan order is due order, so each lane's counters (base + index) rise.
        assert!(lane.windows(2).all(|w| w[0] < w[1]));
        assert!(lane
            .windows(2)
            .all(|w| plan.items[w[0] as usize].at_ns <= plan.items[w[1] as usize].at_ns));
    }
    assert_eq!(plan.index_of_counter(1_000), Some(0));
    assert_eq!(plan.index_of_counter(2_999), Some(1999));
    assert_eq!(plan.index_of_counter(3_000), None);
    assert_eq!(plan.index_of_counter(999), None);
}

#[test]
fn plans_are_reproducible_and_follow_the_mix() {
    let s = scenario();
    let pop = Population::new(s.population.devices, s.population.other_users);
    let load = Load::constant(1000.0, 10.0);
    let a = build(&load, &s.mix, &pop, 3, 0).unwrap();
    let b = build(&load, &s.mix, &pop, 3, 0).unwrap();
    assert_eq!(a.items, b.items);
    let c = build(&load, &s.mix, &pop, 4, 0).unwrap();
    assert_ne!(a.items, c.items);
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for item in &a.items {
        *by_name
            .entry(s.mix[item.class as usize].name.as_str())
            .or_default() += 1;
    }
    let share = |n: &str| by_name[n] as f64 / a.items.len() as f64;
    assert!((share("meter-read") - 0.60).abs() < 0.03, "{by_name:?}");
    assert!((share("non-device") - 0.15).abs() < 0.03, "{by_name:?}");
    // Many Users take part, each its own lane.
    let lanes = a
        .lanes(pop.users.len())
        .iter()
        .filter(|l| !l.is_empty())
        .count();
    assert!(lanes > 100, "{lanes}");
}

/// The gateway's own access control permits every planned request: the plan offers load, not
/// refusals (the registry and party register are the ones `setup` writes). A critical pair's
/// two requests name the same SRV, User and device, so one check covers both.
#[test]
fn the_gateway_would_permit_every_planned_request() {
    let s = scenario();
    let pop = Population::new(2_000, 4);
    let dir = tempfile::tempdir().unwrap();
    let files = dccgw::state::generate::generate(dir.path(), &pop.spec).unwrap();
    let snapshot = dccgw::state::load::registry(&files.devices, &files.registrations).unwrap();
    let wd = crate::setup::Workdir::new(dir.path());
    crate::setup::write_users(&wd, &pop, "https://localhost:1/").unwrap();
    let register =
        PartyRegister::parse(&std::fs::read_to_string(dir.path().join("users.csv")).unwrap())
            .unwrap();
    let plan = build(&Load::constant(400.0, 5.0), &s.mix, &pop, 11, 0).unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let critical = plan
        .items
        .iter()
        .filter(|i| s.mix[i.class as usize].critical().is_some())
        .count();
    assert!(critical > 20, "{critical} critical requests planned");
    for item in &plan.items {
        let entry = &s.mix[item.class as usize];
        let request = AccessRequest {
            originator: pop.users[item.user as usize].id,
            target: item.target,
            service: Catalogue::builtin().get(&entry.srv).unwrap(),
            at: now,
        };
        if let Err(denial) = auth::authorize(&request, &register, &snapshot) {
            panic!("{} ({}) refused: {denial:?}", entry.srv, entry.role);
        }
    }
}
