use std::time::Duration;

use super::*;
use crate::antireplay::Replay;
use crate::domain::{CommandVariant, RequestId};
use crate::registry::Change;

const NOW_NS: u64 = 1_800_000_000_000_000_000;

fn id(originator: u32, counter: u64) -> RequestId {
    format!(
        "90-B3-D5-1F-30-01-{:02X}-{:02X}:00-DB-12-34-56-78-90-A0:{counter}",
        originator >> 8,
        originator & 0xff
    )
    .parse()
    .unwrap()
}

fn cv(v: u8) -> CommandVariant {
    CommandVariant::try_from(v).unwrap()
}

/// A migrated cluster database on a throwaway server, or `None` when PostgreSQL is missing.
async fn cluster(dir: &std::path::Path) -> Option<(servers::Postgres, Cluster)> {
    let pg = crate::testing::servers::postgres(dir)?;
    let cluster = Cluster::connect(&pg.url(), "a").unwrap();
    assert_eq!(cluster.schema_version().await.unwrap(), 0);
    // Every migration, numbered 1, 2, … without a gap (a database applies only the versions
    // above its own), to the last one's version.
    let versions: Vec<i32> = crate::cluster::schema::MIGRATIONS
        .iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(versions, (1..=versions.len() as i32).collect::<Vec<_>>());
    let latest = *versions.last().unwrap();
    assert_eq!(cluster.migrate().await.unwrap(), latest);
    // Again: nothing more to apply.
    assert_eq!(cluster.migrate().await.unwrap(), latest);
    assert_eq!(cluster.schema_version().await.unwrap(), latest);
    Some((pg, cluster))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_counter_sent_to_three_instances_at_once_is_accepted_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, a)) = cluster(dir.path()).await else {
        return;
    };
    let instances: Vec<Cluster> = ["a", "b", "c"]
        .iter()
        .map(|name| Cluster::connect(&pg.url(), name).unwrap())
        .collect();
    for round in 1..=20u64 {
        let counter = 1_000 + round;
        let tries = instances.iter().map(|c| {
            let c = c.clone();
            tokio::spawn(async move { c.advance(&id(1, counter), cv(1), NOW_NS).await })
        });
        let results = futures_util::future::join_all(tries).await;
        let accepted = results.iter().filter(|r| matches!(r, Ok(Ok(())))).count();
        assert_eq!(accepted, 1, "round {round}: {results:?}");
        for r in results {
            match r.unwrap() {
                Ok(()) => {}
                Err(MarkError::Refused(Replay::NotIncreasing { counter: c, last })) => {
                    assert_eq!((c, last), (counter, counter));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    // Lower and equal counters are refused; the mark is the last accepted.
    assert!(a.advance(&id(1, 1_005), cv(1), NOW_NS).await.is_err());
    assert_eq!(a.mark(&id(1, 0).originator).await.unwrap(), Some(1_020));
    // Above the clock in nanoseconds: refused before PostgreSQL is asked.
    assert!(matches!(
        a.advance(&id(1, NOW_NS + 1), cv(1), NOW_NS).await,
        Err(MarkError::Refused(Replay::AheadOfClock { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cv5_reuses_its_cv4s_counter_once_across_instances() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, a)) = cluster(dir.path()).await else {
        return;
    };
    let b = Cluster::connect(&pg.url(), "b").unwrap();
    a.advance(&id(2, 50), cv(4), NOW_NS).await.unwrap();
    // A CV1 may not reuse it; the CV5 may, once, on any instance.
    assert!(b.advance(&id(2, 50), cv(1), NOW_NS).await.is_err());
    b.advance(&id(2, 50), cv(5), NOW_NS).await.unwrap();
    assert!(a.advance(&id(2, 50), cv(5), NOW_NS).await.is_err());
    // The CV5 of another target does not match the CV4.
    a.advance(&id(2, 60), cv(4), NOW_NS).await.unwrap();
    let other: RequestId = "90-B3-D5-1F-30-01-00-02:00-DB-12-34-56-78-90-A1:60"
        .parse()
        .unwrap();
    assert!(b.advance(&other, cv(5), NOW_NS).await.is_err());
    // An operator's reset lets a lower counter through.
    a.reset_mark(&id(2, 0).originator, 10).await.unwrap();
    b.advance(&id(2, 11), cv(1), NOW_NS).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_originators_advance_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_pg, a)) = cluster(dir.path()).await else {
        return;
    };
    let tasks = (0..64u32).map(|o| {
        let a = a.clone();
        tokio::spawn(async move {
            for counter in 1..=20 {
                a.advance(&id(100 + o, counter), cv(1), NOW_NS).await?;
            }
            Ok::<_, MarkError>(())
        })
    });
    for r in futures_util::future::join_all(tasks).await {
        r.unwrap().unwrap();
    }
    for o in [0u32, 31, 63] {
        let mark = a.mark(&id(100 + o, 0).originator).await.unwrap();
        assert_eq!(mark, Some(20));
    }
}

fn status(device: &str) -> LoggedBatch {
    LoggedBatch::Registry(vec![Change::SetDeviceStatus {
        device: device.parse().unwrap(),
        status: "Suspended".parse().unwrap(),
    }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_change_log_numbers_batches_in_commit_order_and_wakes_followers() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, a)) = cluster(dir.path()).await else {
        return;
    };
    let b = Cluster::connect(&pg.url(), "b").unwrap();
    let wake = b.listen();
    // The listener wakes once connected.
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .unwrap();
    assert_eq!(
        a.append(0, 100, &status("00-0D-6F-00-00-00-00-02"), true)
            .await
            .unwrap(),
        1
    );
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .expect("woken by the commit");
    // A writer that has not applied batch 1 is told where the log is, and writes nothing.
    match b
        .append(0, 101, &status("00-0D-6F-00-00-00-00-03"), false)
        .await
    {
        Err(AppendError::Behind { latest: 1 }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        b.append(1, 101, &status("00-0D-6F-00-00-00-00-03"), false)
            .await
            .unwrap(),
        2
    );
    let read = b.since(0).await.unwrap();
    assert_eq!(read.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!((read[0].origin.as_str(), read[0].owes_alerts), ("a", true));
    assert_eq!((read[1].origin.as_str(), read[1].owes_alerts), ("b", false));
    assert_eq!(read[0].batch, status("00-0D-6F-00-00-00-00-02"));
    // Only the writer's own mark settles its obligation.
    b.mark_alerted(2).await.unwrap();
    assert!(b.since(0).await.unwrap()[0].owes_alerts);
    a.mark_alerted(2).await.unwrap();
    assert!(!b.since(0).await.unwrap()[0].owes_alerts);
    // Concurrent writers that each saw batch 2: exactly one gets 3.
    let writers = [&a, &b].map(|c| {
        let c = (*c).clone();
        tokio::spawn(async move {
            c.append(2, 102, &status("00-0D-6F-00-00-00-00-04"), false)
                .await
        })
    });
    let results = futures_util::future::join_all(writers).await;
    let won: Vec<u64> = results
        .into_iter()
        .filter_map(|r| r.unwrap().ok())
        .collect();
    assert_eq!(won, [3]);
    assert_eq!(a.latest().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, a)) = cluster(dir.path()).await else {
        return;
    };
    pg.stop().unwrap();
    assert!(a.advance(&id(3, 1), cv(1), NOW_NS).await.is_err());
    assert!(a.latest().await.is_err());
    pg.restart().unwrap();
    a.advance(&id(3, 2), cv(1), NOW_NS).await.unwrap();
}

mod counts;
mod haproxy;
mod requests;
mod state;

/// Anti-replay advances per second, and their latency, with 64 originators at once through one
/// instance's pool, on a PostgreSQL with `fsync` on:
/// `cargo test --lib cluster::tests::measure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_advances() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = crate::testing::servers::postgres_durable(dir.path()) else {
        return;
    };
    let a = Cluster::connect(&pg.url(), "a").unwrap();
    a.migrate().await.unwrap();
    let start = std::time::Instant::now();
    let tasks = (0..64u32).map(|o| {
        let a = a.clone();
        tokio::spawn(async move {
            let mut took = Vec::new();
            for counter in 1..=200 {
                let t = std::time::Instant::now();
                a.advance(&id(1000 + o, counter), cv(1), NOW_NS)
                    .await
                    .unwrap();
                took.push(t.elapsed());
            }
            took
        })
    });
    print_latencies("advances by 64 originators", start, tasks).await;
}

/// The throwaway nats-server runs JetStream on its port and stops when dropped.
#[test]
fn a_throwaway_nats_server_speaks_nats_with_jetstream() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let Some(nats) = crate::testing::servers::nats(dir.path()) else {
        return;
    };
    let addr = nats.url().trim_start_matches("nats://").to_owned();
    let stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut info = String::new();
    BufReader::new(&stream).read_line(&mut info).unwrap();
    assert!(info.starts_with("INFO "), "{info}");
    assert!(info.contains("\"jetstream\":true"), "{info}");
    assert!(nats.store_dir().is_dir());
    drop(nats);
    assert!(std::net::TcpStream::connect(&addr).is_err());
}

/// Waits for `tasks` (each gives the latency of every operation it made) started at `start`,
/// and prints after `what` how many there were, their rate and their p50 and p99.
async fn print_latencies(
    what: &str,
    start: std::time::Instant,
    tasks: impl IntoIterator<Item = tokio::task::JoinHandle<Vec<Duration>>>,
) {
    let mut took: Vec<Duration> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    let elapsed = start.elapsed();
    took.sort();
    let at = |p: usize| took[(took.len() * p / 100).min(took.len() - 1)];
    println!(
        "{} {what} in {elapsed:?}: {:.0}/s, p50 {:?}, p99 {:?}",
        took.len(),
        took.len() as f64 / elapsed.as_secs_f64(),
        at(50),
        at(99)
    );
}
