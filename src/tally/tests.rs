use super::*;
use crate::anomaly::{CountThreshold, Entry};
use crate::catalogue::Catalogue;
use crate::domain::Srv;

const USER: &str = "90-B3-D5-1F-30-01-00-00";
const OTHER: &str = "90-B3-D5-1F-30-03-00-00";

fn srv(s: &str) -> Srv {
    s.parse().unwrap()
}

fn user_threshold(user: &str, s: &str, window_s: u32, warning: u64, quarantine: u64) -> Entry {
    Entry {
        user: Some(user.parse().unwrap()),
        srv: Some(s.into()),
        window_s: Some(window_s),
        warning: Some(warning),
        quarantine: Some(quarantine),
        ..Entry::default()
    }
}

fn set(entries: Vec<Entry>) -> Thresholds {
    Thresholds::parse(entries, 1, Catalogue::builtin(), |_| true).unwrap()
}

fn facts(user: &str, s: &str) -> Facts<'static> {
    Facts {
        user: user.parse().unwrap(),
        role: UserRole::ImportSupplier,
        srv: srv(s),
        values: &[],
    }
}

#[test]
fn the_request_after_n_is_quarantined_and_not_counted() {
    let t = set(vec![user_threshold(USER, "4.1.1", 3_600, 2, 3)]);
    let counts = LocalCounts::new();
    let now = 1_700_000_000;
    let verdicts: Vec<Verdict> = (0..5)
        .map(|i| counts.screen(&t, &facts(USER, "4.1.1"), now + i))
        .collect();
    assert!(verdicts[..3].iter().all(|v| v.quarantine.is_none()));
    // The third request takes the count past the warning tier of 2.
    assert_eq!(verdicts[2].warnings.len(), 1);
    assert!(verdicts[0].warnings.is_empty() && verdicts[1].warnings.is_empty());
    assert!(verdicts[3].quarantine.is_some() && verdicts[4].quarantine.is_some());
    // Another User, another variant: not counted by this threshold.
    assert!(counts
        .screen(&t, &facts(OTHER, "4.1.1"), now)
        .quarantine
        .is_none());
    assert!(counts
        .screen(&t, &facts(USER, "4.1.2"), now)
        .quarantine
        .is_none());
    // One counter: the threshold's.
    assert_eq!(counts.len(), 1);
}

#[test]
fn the_hour_slides_by_the_minute_and_the_day_by_the_hour() {
    let t = set(vec![
        user_threshold(USER, "4.1.1", 3_600, 0, 1),
        user_threshold(USER, "4.1.2", 86_400, 0, 1),
    ]);
    let counts = LocalCounts::new();
    let start = 1_700_000_000 - 1_700_000_000 % 3_600;
    for s in ["4.1.1", "4.1.2"] {
        assert!(counts
            .screen(&t, &facts(USER, s), start)
            .quarantine
            .is_none());
        assert!(counts
            .screen(&t, &facts(USER, s), start + 1)
            .quarantine
            .is_some());
    }
    // 59 minutes on, the hour still holds the first; an hour on, it does not.
    assert!(counts
        .screen(&t, &facts(USER, "4.1.1"), start + 59 * 60)
        .quarantine
        .is_some());
    assert!(counts
        .screen(&t, &facts(USER, "4.1.1"), start + 3_600)
        .quarantine
        .is_none());
    // The day holds it for 23 hours more, then lets the next one through.
    let day = |at| counts.screen(&t, &facts(USER, "4.1.2"), at).quarantine;
    assert!(day(start + 23 * 3_600).is_some());
    assert!(day(start + 24 * 3_600).is_none());
    // A clock set back counts in the latest step: still breached.
    assert!(day(start).is_some());
}

#[test]
fn retain_keeps_the_counts_of_thresholds_still_named() {
    let a = user_threshold(USER, "4.1.1", 3_600, 0, 1);
    let b = user_threshold(OTHER, "4.1.1", 3_600, 0, 1);
    let counts = LocalCounts::new();
    let both = set(vec![a.clone(), b]);
    counts.screen(&both, &facts(USER, "4.1.1"), 0);
    counts.screen(&both, &facts(OTHER, "4.1.1"), 0);
    assert_eq!(counts.len(), 2);
    let only_a = set(vec![a]);
    counts.retain(&only_a);
    assert_eq!(counts.len(), 1);
    assert!(counts
        .screen(&only_a, &facts(USER, "4.1.1"), 1)
        .quarantine
        .is_some());
}

#[test]
fn concurrent_requests_cannot_pass_a_threshold_together() {
    let t = std::sync::Arc::new(set(vec![user_threshold(USER, "4.1.1", 3_600, 0, 100)]));
    let counts = std::sync::Arc::new(LocalCounts::new());
    let passed: usize = (0..8)
        .map(|_| {
            let (t, counts) = (t.clone(), counts.clone());
            std::thread::spawn(move || {
                (0..50)
                    .filter(|_| {
                        counts
                            .screen(&t, &facts(USER, "4.1.1"), 0)
                            .quarantine
                            .is_none()
                    })
                    .count()
            })
        })
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(passed, 100);
}

#[test]
fn a_dcc_threshold_counts_every_user() {
    let t = set(vec![Entry {
        kind: crate::anomaly::Kind::Dcc,
        group: Some(4),
        window_s: Some(3_600),
        quarantine: Some(2),
        ..Entry::default()
    }]);
    assert!(matches!(t.counts[..], [CountThreshold { user: None, .. }]));
    let counts = LocalCounts::new();
    assert!(counts
        .screen(&t, &facts(USER, "4.1.1"), 0)
        .quarantine
        .is_none());
    assert!(counts
        .screen(&t, &facts(OTHER, "4.4.2"), 0)
        .quarantine
        .is_none());
    let third = counts.screen(&t, &facts(OTHER, "4.1.1"), 0);
    assert_eq!(
        third.quarantine.map(|b| b.kind),
        Some(crate::anomaly::BreachKind::DccThreshold)
    );
}

#[test]
fn rebuild_replaces_every_count_with_the_ones_given() {
    let t = set(vec![user_threshold(USER, "4.1.1", 3_600, 1, 3)]);
    let counts = LocalCounts::new();
    let now = 1_800_000_000;
    // Two counted here, then the counts read again whole: three (here and elsewhere).
    for _ in 0..2 {
        assert!(counts
            .screen(&t, &facts(USER, "4.1.1"), now)
            .quarantine
            .is_none());
    }
    let user: UserId = USER.parse().unwrap();
    let counted = [
        (user, UserRole::ImportSupplier, srv("4.1.1"), now - 120, 2),
        (user, UserRole::ImportSupplier, srv("4.1.1"), now - 60, 1),
    ];
    counts.rebuild(&t, &counted);
    assert!(counts
        .screen(&t, &facts(USER, "4.1.1"), now)
        .quarantine
        .is_some());
    // Nothing of the earlier counts is left: one counted elsewhere, and two more pass.
    counts.rebuild(&t, &counted[1..]);
    for _ in 0..2 {
        assert!(counts
            .screen(&t, &facts(USER, "4.1.1"), now)
            .quarantine
            .is_none());
    }
    assert!(counts
        .screen(&t, &facts(USER, "4.1.1"), now)
        .quarantine
        .is_some());
    assert_eq!(counts.len(), 1);
}

#[test]
fn a_warning_tier_that_counts_read_in_jump_past_is_raised_by_the_next_request_once() {
    let t = set(vec![user_threshold(USER, "4.1.1", 3_600, 3, 10)]);
    let counts = LocalCounts::new();
    let now = 1_800_000_000;
    let user: UserId = USER.parse().unwrap();
    // One here (the count is 1), then four counted elsewhere read in: 5, past the tier of 3
    // without a request here standing at it.
    assert!(counts
        .screen(&t, &facts(USER, "4.1.1"), now)
        .warnings
        .is_empty());
    counts.restore(&t, user, UserRole::ImportSupplier, srv("4.1.1"), now, 4);
    let warned = |counts: &LocalCounts| {
        !counts
            .screen(&t, &facts(USER, "4.1.1"), now)
            .warnings
            .is_empty()
    };
    assert!(warned(&counts));
    assert!(!warned(&counts));
    assert!(!warned(&counts));
}
