//! The request log in PostgreSQL: marks decided across instances inside batches, entries kept,
//! read back, settled and claimed, and PostgreSQL away as a refusal, never a hang.

use std::time::{Duration, Instant};

use super::{cluster, id};
use crate::antireplay::{Mark, Replay};
use crate::cluster::requests::{Opened, LEASE};
use crate::cluster::{Cluster, PgRequestLog};
use crate::store::{CommitError, Decision, Entry, EntryKind, MarkEntry, RequestLog};

/// Test entries are keyed by their bytes.
fn key_of(e: &Entry) -> Option<String> {
    Some(String::from_utf8_lossy(&e.bytes).into_owned())
}

/// A decision: `originator`'s counter `counter`, with a pending entry named `entry`.
fn decision(originator: u32, counter: u64, entry: &str) -> Decision {
    Decision {
        mark: Some(MarkEntry {
            originator: id(originator, 0).originator,
            mark: Mark {
                counter,
                pre_command_for: None,
            },
            reset: false,
            twin_of: None,
        }),
        entries: vec![Entry {
            kind: EntryKind::Pending,
            bytes: entry.as_bytes().to_vec(),
        }],
    }
}

async fn open(url: &str, name: &str) -> Opened {
    let cluster = Cluster::connect(url, name).unwrap();
    PgRequestLog::open(cluster, key_of).await.unwrap()
}

/// (owner, key) of every open entry.
async fn entries(c: &Cluster) -> Vec<(String, String)> {
    let client = c.client().await.unwrap();
    let rows = client
        .query("SELECT owner, key FROM request_entries ORDER BY key", &[])
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_decision_sent_to_three_instances_at_once_commits_once_and_spares_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, admin)) = cluster(dir.path()).await else {
        return;
    };
    let logs = [
        open(&pg.url(), "a").await,
        open(&pg.url(), "b").await,
        open(&pg.url(), "c").await,
    ];
    for round in 1..=20u64 {
        let counter = 1_000 + round;
        // Each instance commits the contested decision and, at the same time (so in the same
        // batch or the next), one of its own originator that nobody contests.
        let tries = logs.iter().enumerate().map(|(i, o)| {
            let log = o.log.clone();
            let own = decision(10 + i as u32, round, &format!("own-{i}-{round}"));
            tokio::spawn(async move {
                let contested = decision(1, counter, &format!("contested-{round}"));
                let (c, own) = tokio::join!(log.commit(contested), log.commit(own));
                own.unwrap();
                c
            })
        });
        let results: Vec<_> = futures_util::future::join_all(tries)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "round {round}: {results:?}");
        for r in &results {
            match r {
                Ok(()) => {}
                Err(CommitError::Refused(Replay::NotIncreasing { counter: c, last })) => {
                    assert_eq!((*c, *last), (counter, counter));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    let all = entries(&admin).await;
    // One contested entry a round (the winner's), and every instance's own.
    let contested = all
        .iter()
        .filter(|(_, k)| k.starts_with("contested-"))
        .count();
    assert_eq!(contested, 20);
    assert_eq!(all.len(), 20 + 3 * 20);
    for (owner, key) in &all {
        if let Some(i) = key.strip_prefix("own-").and_then(|k| k.split('-').next()) {
            assert_eq!(owner, ["a", "b", "c"][i.parse::<usize>().unwrap()]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn entries_are_read_back_settled_and_claimed_from_a_gone_instance() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, admin)) = cluster(dir.path()).await else {
        return;
    };
    let a = open(&pg.url(), "a").await;
    a.log.commit(decision(1, 1, "one")).await.unwrap();
    a.log.commit(decision(1, 2, "two")).await.unwrap();
    a.log.commit(decision(2, 1, "three")).await.unwrap();
    // Settled: gone with the next batch.
    a.log.settle(EntryKind::Pending, "two".into());
    a.log.commit(decision(2, 2, "four")).await.unwrap();
    let keys = |d: &[Decision]| -> Vec<String> {
        d.iter()
            .flat_map(|d| &d.entries)
            .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
            .collect()
    };
    // A restart of `a` reads back its open entries, oldest first.
    drop(a);
    let a = open(&pg.url(), "a").await;
    assert_eq!(keys(&a.recovered), ["one", "three", "four"]);
    // `a` goes (its heartbeat stops with its receiver); `b` claims once the lease is over.
    drop(a);
    // A heartbeat already under way when it went ends before the lease is cut short below.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = open(&pg.url(), "b").await;
    assert!(admin.claim(LEASE).await.unwrap().is_empty());
    let client = admin.client().await.unwrap();
    client
        .execute(
            "UPDATE instances SET last_seen = now() - interval '1 hour' WHERE name = 'a'",
            &[],
        )
        .await
        .unwrap();
    let mut claimed = b.claimed;
    let got = tokio::time::timeout(Duration::from_secs(20), claimed.recv())
        .await
        .expect("claimed within a few heartbeats")
        .unwrap();
    assert_eq!(keys(&got.entries), ["one", "three", "four"]);
    assert!(got.alerts.is_empty());
    assert!(entries(&admin).await.iter().all(|(owner, _)| owner == "b"));
    let gone: i64 = client
        .query_one("SELECT count(*) FROM instances WHERE name = 'a'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(gone, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_fails_commits_within_the_bound_then_they_work_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, _admin)) = cluster(dir.path()).await else {
        return;
    };
    let a = open(&pg.url(), "a").await;
    a.log.commit(decision(3, 1, "before")).await.unwrap();
    assert!(!a.log.is_failing());
    pg.stop().unwrap();
    // The bound stops a hung test only; the log's own bound is BATCH_TIMEOUT.
    let failed = tokio::time::timeout(Duration::from_secs(30), a.log.commit(decision(3, 2, "x")))
        .await
        .expect("an answer, not a hang");
    assert!(
        matches!(failed, Err(CommitError::Database(_))),
        "{failed:?}"
    );
    assert!(a.log.is_failing());
    pg.restart().unwrap();
    let start = Instant::now();
    // The pool makes new connections once the server is back.
    // Counter 2 again: the failed decision left nothing, its counter is free.
    loop {
        match a.log.commit(decision(3, 2, "after")).await {
            Ok(()) => break,
            Err(CommitError::Database(_)) if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(!a.log.is_failing());
}

/// Commits per second through one instance's log, and the latency of each (its batch's
/// commit), with 64 originators at once, on a PostgreSQL with `fsync` on:
/// `cargo test --lib cluster::tests::requests::measure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_commits() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = crate::testing::servers::postgres_durable(dir.path()) else {
        return;
    };
    Cluster::connect(&pg.url(), "m")
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let a = open(&pg.url(), "a").await;
    let start = Instant::now();
    let tasks = (0..64u32).map(|o| {
        let log = a.log.clone();
        tokio::spawn(async move {
            let mut took = Vec::new();
            for counter in 1..=200 {
                let t = Instant::now();
                log.commit(decision(1000 + o, counter, &format!("{o}-{counter}")))
                    .await
                    .unwrap();
                took.push(t.elapsed());
            }
            took
        })
    });
    super::print_latencies("commits (mark + entry) by 64 originators", start, tasks).await;
}
