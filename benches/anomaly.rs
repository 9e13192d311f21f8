//! Anomaly detection's cost per screened request: the decision and the count (one lock, the
//! User's and the DCC's thresholds only) with a threshold set of 1, 1,000 and 10,000 User
//! entries (one per User, on 4.1.1), for a request of a User that has one.
//!
//! `cargo bench --bench anomaly`.
//!
//! Measured on the 2-core development VM, shared with other builds (`cargo bench --profile dev
//! --bench anomaly -- --warm-up-time 1 --measurement-time 3`: the gateway's crate unoptimised,
//! its dependencies at opt-level 2): 8.5 µs per screen with 1 entry, 8.2 µs with 1,000, 9.4 µs
//! with 10,000 — flat, as the set is indexed by User; a release build is faster still.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dccgw::anomaly::{Entry, Facts, Thresholds};
use dccgw::catalogue::Catalogue;
use dccgw::domain::{UserId, UserRole};
use dccgw::tally::{Counts, LocalCounts};

fn user(n: u32) -> UserId {
    let b = n.to_be_bytes();
    format!(
        "90-B3-D5-1F-{:02X}-{:02X}-{:02X}-{:02X}",
        b[0], b[1], b[2], b[3]
    )
    .parse()
    .expect("a valid User ID")
}

fn set(users: u32) -> Thresholds {
    let entries = (0..users)
        .map(|n| Entry {
            user: Some(user(n)),
            srv: Some("4.1.1".into()),
            window_s: Some(3_600),
            warning: Some(u64::MAX - 1),
            quarantine: Some(u64::MAX),
            ..Entry::default()
        })
        .collect();
    Thresholds::parse(entries, 1, Catalogue::builtin(), |_| true).expect("a valid set")
}

fn screen(c: &mut Criterion) {
    let mut group = c.benchmark_group("anomaly_screen");
    for users in [1u32, 1_000, 10_000] {
        let thresholds = set(users);
        let counts = LocalCounts::new();
        let facts = Facts {
            user: user(0),
            role: UserRole::ImportSupplier,
            srv: "4.1.1".parse().expect("a variant"),
            values: &[],
        };
        let mut now = 1_700_000_000;
        group.bench_with_input(BenchmarkId::from_parameter(users), &users, |b, _| {
            b.iter(|| {
                now += 1;
                counts.screen(&thresholds, &facts, now)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, screen);
criterion_main!(benches);
