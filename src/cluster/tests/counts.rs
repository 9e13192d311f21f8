//! Anomaly counts shared through PostgreSQL: what one instance's request log commits reaches
//! every other instance's feed once — exactly once, however the writers' transactions
//! interleave with the looks — and never its own; a start reads every instance's; and a DCC
//! threshold trips on the sum of every instance's Users.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{cluster, id};
use crate::anomaly::{BreachKind, Entry as ThresholdEntry, Facts, Kind, Thresholds};
use crate::antireplay::Mark;
use crate::catalogue::Catalogue;
use crate::cluster::{Cluster, PgRequestLog};
use crate::domain::{Srv, UserId, UserRole};
use crate::store::{Decision, Entry, EntryKind, MarkEntry, RequestLog, Tallied};
use crate::tally::{Counts, LocalCounts};

const NOW: i64 = 1_800_000_000;

fn user(n: u32) -> UserId {
    id(n, 0).originator
}

fn srv() -> Srv {
    "4.1.1".parse().unwrap()
}

/// `originator`'s counter `counter`, counted once for its 4.1.1 at `NOW`.
fn counted(originator: u32, counter: u64) -> Decision {
    let t = Tallied::one(user(originator), UserRole::ImportSupplier, srv(), NOW);
    Decision {
        mark: Some(MarkEntry {
            originator: user(originator),
            mark: Mark {
                counter,
                pre_command_for: None,
            },
            reset: false,
            twin_of: None,
        }),
        entries: vec![Entry {
            kind: EntryKind::Count,
            bytes: t.to_record(),
        }],
    }
}

async fn log(url: &str, name: &str) -> Arc<PgRequestLog> {
    let cluster = Cluster::connect(url, name).unwrap();
    PgRequestLog::open(cluster, |_| None).await.unwrap().log
}

/// Requests counted per User in `tallied`.
fn per_user(tallied: &[Tallied]) -> std::collections::BTreeMap<UserId, u64> {
    let mut out = std::collections::BTreeMap::new();
    for t in tallied {
        *out.entry(t.user).or_default() += u64::from(t.n);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_committed_by_one_instance_reach_the_others_once_and_a_start() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, _)) = cluster(dir.path()).await else {
        return;
    };
    let a = log(&pg.url(), "a").await;
    let (start, mut b) = Cluster::connect(&pg.url(), "b")
        .unwrap()
        .counts(NOW)
        .await
        .unwrap();
    assert!(start.is_empty());
    let (_, mut own) = Cluster::connect(&pg.url(), "a")
        .unwrap()
        .counts(NOW)
        .await
        .unwrap();
    for counter in 1..=3 {
        a.commit(counted(1, counter)).await.unwrap();
    }
    a.commit(counted(2, 1)).await.unwrap();
    let got = per_user(&b.next(NOW).await.unwrap());
    assert_eq!(got, [(user(1), 3), (user(2), 1)].into());
    // Nothing twice; a row written again counts by its difference.
    assert!(b.next(NOW).await.unwrap().is_empty());
    a.commit(counted(1, 4)).await.unwrap();
    a.commit(counted(1, 5)).await.unwrap();
    assert_eq!(per_user(&b.next(NOW).await.unwrap()), [(user(1), 2)].into());
    // An instance's own counts are in its memory already: its feed leaves them out.
    assert!(own.next(NOW).await.unwrap().is_empty());
    // A start reads every instance's, the starting instance's own included.
    let (all, _) = Cluster::connect(&pg.url(), "a")
        .unwrap()
        .counts(NOW + 60)
        .await
        .unwrap();
    assert_eq!(per_user(&all), [(user(1), 5), (user(2), 1)].into());
    // A day and an hour later, nothing is left in the window.
    let (later, _) = Cluster::connect(&pg.url(), "c")
        .unwrap()
        .counts(NOW + 25 * 3_600 + 60)
        .await
        .unwrap();
    assert!(later.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_looking_while_two_instances_commit_misses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, _)) = cluster(dir.path()).await else {
        return;
    };
    let (a, b) = (log(&pg.url(), "a").await, log(&pg.url(), "b").await);
    let (_, mut feed) = Cluster::connect(&pg.url(), "c")
        .unwrap()
        .counts(NOW)
        .await
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // The feed looks as often as it can while the writers' batches commit.
    let looking = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                seen.extend(feed.next(NOW).await.unwrap());
            }
            seen.extend(feed.next(NOW).await.unwrap());
            seen
        })
    };
    // 16 originators on each instance (the same Users on both: rows of both instances), 50
    // counters each, committed concurrently.
    let writers = [a, b].into_iter().enumerate().flat_map(|(i, log)| {
        (0..16u32).map(move |o| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                for counter in 1..=50u64 {
                    // Each instance its own counters (a marks row per originator and instance).
                    let originator = 100 + o + 1000 * i as u32;
                    let mut d = counted(originator, counter);
                    d.entries[0].bytes =
                        Tallied::one(user(o), UserRole::ImportSupplier, srv(), NOW).to_record();
                    log.commit(d).await.unwrap();
                }
            })
        })
    });
    futures_util::future::join_all(writers.collect::<Vec<_>>()).await;
    done.store(true, Ordering::Relaxed);
    let seen = looking.await.unwrap();
    let got = per_user(&seen);
    assert_eq!(got.len(), 16);
    for (u, n) in got {
        assert_eq!(n, 100, "{u}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dcc_threshold_trips_on_every_instance_s_users_together() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, _)) = cluster(dir.path()).await else {
        return;
    };
    let (a, b) = (log(&pg.url(), "a").await, log(&pg.url(), "b").await);
    let entries = vec![ThresholdEntry {
        kind: Kind::Dcc,
        srv: Some("4.1.1".into()),
        window_s: Some(3_600),
        quarantine: Some(6),
        ..ThresholdEntry::default()
    }];
    let thresholds = Thresholds::parse(entries, 1, Catalogue::builtin(), |_| true).unwrap();
    let (_, mut feed) = Cluster::connect(&pg.url(), "c")
        .unwrap()
        .counts(NOW)
        .await
        .unwrap();
    // Three Users' requests through a, three through b: none alone near the tier.
    for (o, log) in [(1, &a), (2, &a), (3, &a), (4, &b), (5, &b), (6, &b)] {
        log.commit(counted(o, 1)).await.unwrap();
    }
    let counts = LocalCounts::new();
    let screen = |counts: &LocalCounts| {
        let facts = Facts {
            user: user(7),
            role: UserRole::ImportSupplier,
            srv: srv(),
            values: &[],
        };
        counts.screen(&thresholds, &facts, NOW + 1).quarantine
    };
    for t in feed.next(NOW).await.unwrap() {
        counts.restore(&thresholds, t.user, t.role, t.srv, t.at(), t.n);
    }
    let breach = screen(&counts).expect("the seventh request over all Users is quarantined");
    assert_eq!(breach.kind, BreachKind::DccThreshold);
}

/// `originator`'s counter `counter` with a pending entry, and (`count`) its request counted.
fn with_pending(originator: u32, counter: u64, count: bool) -> Decision {
    let mut d = counted(originator, counter);
    let pending = Entry {
        kind: EntryKind::Pending,
        bytes: format!("{originator}-{counter}").into_bytes(),
    };
    match count {
        true => d.entries.push(pending),
        false => d.entries = vec![pending],
    }
    d
}

/// The request log's commits with each request counted next to the same without: 64
/// originators at once through one instance's writers, 200 decisions each, four runs
/// alternating without and with, on a PostgreSQL with `fsync` on:
/// `cargo test --lib cluster::tests::counts::measure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_commits_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = crate::testing::servers::postgres_durable(dir.path()) else {
        return;
    };
    Cluster::connect(&pg.url(), "m")
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let a = log(&pg.url(), "a").await;
    for (run, count) in [false, true, false, true].into_iter().enumerate() {
        let start = std::time::Instant::now();
        let tasks = (0..64u32).map(|o| {
            let log = Arc::clone(&a);
            tokio::spawn(async move {
                let mut took = Vec::new();
                for counter in 1..=200 {
                    let t = std::time::Instant::now();
                    let originator = 1000 * (run as u32 + 1) + o;
                    log.commit(with_pending(originator, counter, count))
                        .await
                        .unwrap();
                    took.push(t.elapsed());
                }
                took
            })
        });
        let what = format!("commits (run {run}, counted {count})");
        super::print_latencies(&what, start, tasks).await;
    }
}
