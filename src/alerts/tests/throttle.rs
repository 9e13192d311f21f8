//! The throttle as a state machine: scripted storms step by step, the bounds, and a property
//! test that every offered alert is accounted for exactly once.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::alerts::{AlertsError, Released, Throttle, ThrottleConfig};
use crate::duis::outbound::Throttled;

fn config(window_secs: u32, burst: u32, max_held: u32, max_keys: usize) -> ThrottleConfig {
    ThrottleConfig {
        window_secs,
        burst,
        max_held,
        max_keys,
    }
}

fn throttle(window: u32, burst: u32) -> Throttle<&'static str, u64> {
    Throttle::new(config(window, burst, 1000, 100), 7).unwrap()
}

fn plain(id: u64) -> Released<u64> {
    Released {
        item: id,
        covers: vec![id],
        throttled: None,
    }
}

fn summary(covers: &[u64], sequence_id: u32) -> Released<u64> {
    Released {
        item: *covers.last().unwrap(),
        covers: covers.to_vec(),
        throttled: Some(Throttled {
            sequence_id,
            count: covers.len() as u32,
        }),
    }
}

#[test]
fn a_storm_is_released_as_a_burst_and_one_summary() {
    let mut t = throttle(10, 2);
    // (time, id, released now, held in)
    type Step = (i64, u64, Vec<Released<u64>>, Option<u32>);
    let script: [Step; 5] = [
        (100, 1, vec![plain(1)], None),
        (101, 2, vec![plain(2)], None),
        (102, 3, vec![], Some(7)),
        (103, 4, vec![], Some(7)),
        (109, 5, vec![], Some(7)),
    ];
    for (now, id, release, held_in) in script {
        let offer = t.offer("ed/8002", id, id, now);
        assert_eq!(
            (offer.release, offer.held_in),
            (release, held_in),
            "id {id}"
        );
    }
    assert_eq!(t.held(), 3);
    assert_eq!(t.next_deadline(), Some(110));
    assert!(t.tick(109).is_empty());
    // The window ends: the last held alert goes, standing for all three.
    assert_eq!(t.tick(110), vec![summary(&[3, 4, 5], 7)]);
    assert_eq!((t.held(), t.keys(), t.next_deadline()), (0, 0, None));
    // A new window: a new burst, and the next summary gets the next number.
    for id in 6..=8 {
        t.offer("ed/8002", id, id, 200);
    }
    assert_eq!(t.flush(), vec![summary(&[8], 8)]);
}

#[test]
fn keys_are_throttled_apart() {
    let mut t = throttle(10, 1);
    assert_eq!(t.offer("a", 1, 1, 0).release, vec![plain(1)]);
    assert_eq!(t.offer("b", 2, 2, 0).release, vec![plain(2)]);
    assert_eq!(t.offer("a", 3, 3, 1).held_in, Some(7));
    assert_eq!(t.offer("b", 4, 4, 1).held_in, Some(8));
    assert_eq!(t.offer("a", 5, 5, 2).held_in, Some(7));
    assert_eq!(
        t.tick(10),
        vec![summary(&[3, 5], 7), summary(&[4], 8)],
        "both windows end at 10, released in key order"
    );
}

#[test]
fn the_next_alert_closes_an_ended_window_before_tick_does() {
    let mut t = throttle(10, 1);
    t.offer("a", 1, 1, 0);
    assert_eq!(t.offer("a", 2, 2, 5).held_in, Some(7));
    // Past the window's end, with no tick in between: the summary, then the new alert.
    let offer = t.offer("a", 3, 3, 15);
    assert_eq!(offer.release, vec![summary(&[2], 7), plain(3)]);
    assert_eq!(offer.held_in, None);
    assert_eq!(t.next_deadline(), Some(25));
    assert!(t.tick(20).is_empty());
}

#[test]
fn a_full_summary_goes_at_once() {
    let mut t: Throttle<&str, u64> = Throttle::new(config(60, 1, 3, 10), 0).unwrap();
    t.offer("a", 0, 0, 0);
    let mut released = Vec::new();
    for id in 1..=7 {
        released.extend(t.offer("a", id, id, 1).release);
    }
    assert_eq!(
        released,
        vec![summary(&[1, 2, 3], 0), summary(&[4, 5, 6], 1)]
    );
    assert_eq!(t.held(), 1);
    assert_eq!(t.tick(60), vec![summary(&[7], 2)]);
}

#[test]
fn past_max_keys_alerts_pass_untouched() {
    let mut t: Throttle<u32, u64> = Throttle::new(config(60, 1, 10, 2), 0).unwrap();
    for key in 0..2 {
        t.offer(key, 0, 0, 0);
    }
    for id in 1..=3 {
        assert_eq!(t.offer(9, id, id, 0).release, vec![plain(id)]);
    }
    assert_eq!((t.keys(), t.untracked()), (2, 3));
    // Once windows close, keys are forgotten and room is made.
    t.tick(60);
    assert_eq!(t.keys(), 0);
    t.offer(9, 4, 4, 61);
    assert_eq!(t.offer(9, 5, 5, 61).held_in, Some(0));
}

#[test]
fn zero_bounds_are_refused() {
    for (c, name) in [
        (config(0, 1, 1, 1), "window_secs"),
        (config(1, 0, 1, 1), "burst"),
        (config(1, 1, 0, 1), "max_held"),
        (config(1, 1, 1, 0), "max_keys"),
    ] {
        assert_eq!(
            Throttle::<u8, u8>::new(c, 0).err(),
            Some(AlertsError::ZeroThrottleBound(name))
        );
    }
    assert!(ThrottleConfig::default().check().is_ok());
}

proptest! {
    /// Whatever the arrivals: every alert is released once, either alone or inside exactly one
    /// summary; a summary carries its last alert and counts what it covers; and no key sends more
    /// than `burst` + 1 messages in a window when summaries never fill.
    #[test]
    fn every_alert_is_accounted_for_once(
        arrivals in proptest::collection::vec((0u8..4, 0i64..5), 1..200),
        window in 1u32..20,
        burst in 1u32..5,
        max_held in 1u32..50,
    ) {
        let mut t: Throttle<u8, u64> = Throttle::new(config(window, burst, max_held, 3), 0).unwrap();
        let mut now = 0i64;
        let mut out: Vec<(i64, u8, Released<u64>)> = Vec::new();
        let mut key_of = BTreeMap::new();
        for (id, (key, step)) in arrivals.iter().enumerate() {
            let id = id as u64;
            now += step;
            key_of.insert(id, *key);
            out.extend(t.tick(now).into_iter().map(|r| (now, key_of[&r.item], r)));
            out.extend(t.offer(*key, id, id, now).release.into_iter().map(|r| (now, *key, r)));
        }
        out.extend(t.flush().into_iter().map(|r| (now, key_of[&r.item], r)));

        let mut seen: Vec<u64> = out.iter().flat_map(|(_, _, r)| r.covers.clone()).collect();
        seen.sort();
        prop_assert_eq!(seen, (0..arrivals.len() as u64).collect::<Vec<_>>());
        for (_, key, r) in &out {
            prop_assert_eq!(Some(&r.item), r.covers.last());
            prop_assert!(r.covers.iter().all(|id| key_of[id] == *key));
            match r.throttled {
                None => prop_assert_eq!(r.covers.len(), 1),
                Some(th) => {
                    prop_assert_eq!(th.count as usize, r.covers.len());
                    prop_assert!(th.count <= max_held);
                }
            }
        }
        prop_assert_eq!(t.held(), 0);
    }
}
