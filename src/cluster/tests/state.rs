//! Instances sharing their state through the cluster's PostgreSQL: `cluster init`, snapshots,
//! a change made on one instance applied (and enforced) on the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::alerts::ChangeAlerts;
use crate::cluster::{Cluster, ClusterError};
use crate::metrics::Metrics;
use crate::register::{UserChange, UserStatus};
use crate::registry::Change;
use crate::state::snapshot::{self, ClusterLoadError};
use crate::state::tests::demo_files;
use crate::state::State;

const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";

/// One instance: its state from the cluster's snapshot, following the log.
struct Instance {
    state: Arc<State>,
    /// The DCC Alerts its changes call for (nobody raises them here: they stay owed).
    raised: mpsc::Receiver<ChangeAlerts>,
}

async fn instance(url: &str, name: &str, shutdown: &watch::Receiver<bool>) -> Instance {
    let cluster = Cluster::connect(url, name).unwrap();
    let wake = cluster.listen();
    let (loaded, owed) = snapshot::open(cluster, &[], &[]).await.unwrap();
    assert!(owed.is_empty());
    let (raised, receiver) = mpsc::channel(16);
    let state = State::new(loaded, Metrics::new(), raised);
    tokio::spawn(Arc::clone(&state).follow(wake, shutdown.clone()));
    Instance {
        state,
        raised: receiver,
    }
}

fn suspended(state: &State) -> bool {
    let register = state.register();
    let user = register.get(&SUPPLIER.parse().unwrap()).unwrap();
    matches!(user.status, UserStatus::Suspended(_))
}

/// Waits (up to a bound that only stops a hung test) until `done` holds; returns how long.
async fn until(done: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "never happened");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_made_on_one_instance_is_enforced_on_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = crate::testing::servers::postgres(&dir.path().join("pg")) else {
        return;
    };
    let registers = dir.path().join("registers");
    let files = demo_files(&registers);
    let admin = Cluster::connect(&pg.url(), "init").unwrap();
    let loaded = snapshot::init(&admin, &files).await.unwrap();
    assert_eq!(loaded.users, crate::demo::DEMO_USERS.len() as u64);
    assert_eq!(loaded.devices, crate::demo::DEMO_DEVICES.len() as u64);
    match snapshot::init(&admin, &files).await {
        Err(ClusterLoadError::Cluster(ClusterError::AlreadyLoaded)) => {}
        other => panic!("a second init: {:?}", other.err()),
    }
    let (_stop, shutdown) = watch::channel(false);
    let a = instance(&pg.url(), "a", &shutdown).await;
    let b = instance(&pg.url(), "b", &shutdown).await;
    assert_eq!(
        b.state.registry().device_count(),
        crate::demo::DEMO_DEVICES.len()
    );
    assert!(!suspended(&b.state));

    // A User suspended through A is suspended on B.
    let suspend = UserChange::SuspendUser {
        user: SUPPLIER.parse().unwrap(),
        classes: Vec::new(),
    };
    a.state.apply_user_changes(&[suspend]).await.unwrap();
    assert!(suspended(&a.state));
    until(|| suspended(&b.state)).await;

    // B changes a device; A, which has not seen it yet when it writes, catches up first and
    // both end with both changes, in the same order.
    let esme: crate::domain::DeviceId = crate::demo::DEMO_ESME.parse().unwrap();
    let status = |s: &str| Change::SetDeviceStatus {
        device: esme,
        status: s.parse().unwrap(),
    };
    b.state.apply_changes(&[status("Suspended")]).await.unwrap();
    a.state
        .apply_changes(&[status("Commissioned")])
        .await
        .unwrap();
    until(|| b.state.applied() == 3).await;
    assert_eq!(a.state.applied(), 3);
    for s in [&a.state, &b.state] {
        let device = s.registry().device(esme).unwrap();
        assert_eq!(device.status.to_string(), "Commissioned");
    }

    // A change that does not apply to the state every instance has is refused, not logged.
    let unknown = Change::SetDeviceStatus {
        device: "00-0D-6F-00-00-00-99-99".parse().unwrap(),
        status: "Suspended".parse().unwrap(),
    };
    assert!(b.state.apply_changes(&[unknown]).await.is_err());

    // A third instance, started now, has all of it from the snapshot.
    let c = instance(&pg.url(), "c", &shutdown).await;
    assert_eq!(c.state.applied(), 3);
    assert!(suspended(&c.state));
    let device = c.state.registry().device(esme).unwrap();
    assert_eq!(device.status.to_string(), "Commissioned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dcc_alerts_a_gone_instance_owed_are_claimed_by_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = crate::testing::servers::postgres(&dir.path().join("pg")) else {
        return;
    };
    let files = demo_files(&dir.path().join("registers"));
    let admin = Cluster::connect(&pg.url(), "init").unwrap();
    snapshot::init(&admin, &files).await.unwrap();
    let (_stop, shutdown) = watch::channel(false);
    let mut a = instance(&pg.url(), "a", &shutdown).await;
    let esme: crate::domain::DeviceId = crate::demo::DEMO_ESME.parse().unwrap();
    let suspend = Change::SetDeviceStatus {
        device: esme,
        status: "Suspended".parse().unwrap(),
    };
    // A writes a change whose DCC Alerts it never sends (it dies first).
    a.state.apply_changes(&[suspend]).await.unwrap();
    let owed_by_a = a.raised.recv().await.unwrap();
    assert!(!owed_by_a.events.is_empty());
    let (cluster_a, cluster_b) = (
        Cluster::connect(&pg.url(), "a").unwrap(),
        Cluster::connect(&pg.url(), "b").unwrap(),
    );
    cluster_a.heartbeat().await.unwrap();
    cluster_b.heartbeat().await.unwrap();
    // Not yet gone: nothing to claim.
    assert!(cluster_b
        .claim(crate::cluster::requests::LEASE)
        .await
        .unwrap()
        .is_empty());
    admin
        .client()
        .await
        .unwrap()
        .execute(
            "UPDATE instances SET last_seen = now() - interval '1 hour' WHERE name = 'a'",
            &[],
        )
        .await
        .unwrap();
    let claimed = cluster_b
        .claim(crate::cluster::requests::LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.alerts, [owed_by_a.seq]);
    assert!(claimed.entries.is_empty());
    // B derives the same alerts A owed, judged against the registry before the change.
    let derived = snapshot::claimed_alerts(&cluster_b, claimed.alerts)
        .await
        .unwrap();
    assert_eq!(derived, std::slice::from_ref(&owed_by_a));
    // They are B's now: a restart of A owes nothing, one of B owes them; A's mark does not
    // settle them, B's does.
    let owed_at_start = |name: &str| {
        let url = pg.url();
        let name = name.to_owned();
        async move {
            let cluster = Cluster::connect(&url, &name).unwrap();
            snapshot::open(cluster, &[], &[]).await.unwrap().1
        }
    };
    assert!(owed_at_start("a").await.is_empty());
    assert_eq!(owed_at_start("b").await, std::slice::from_ref(&owed_by_a));
    cluster_a.mark_alerted(owed_by_a.seq).await.unwrap();
    assert_eq!(owed_at_start("b").await, std::slice::from_ref(&owed_by_a));
    cluster_b.mark_alerted(owed_by_a.seq).await.unwrap();
    assert!(owed_at_start("b").await.is_empty());
    // A second claim finds nothing.
    assert!(cluster_b
        .claim(crate::cluster::requests::LEASE)
        .await
        .unwrap()
        .is_empty());
}

/// The time from a change committed through one instance to its being in force on another, on a
/// PostgreSQL with `fsync` on:
/// `cargo test --lib cluster::tests::state::measure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, not a test"]
async fn measure_change_propagation() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = crate::testing::servers::postgres_durable(&dir.path().join("pg")) else {
        return;
    };
    let files = demo_files(&dir.path().join("registers"));
    snapshot::init(&Cluster::connect(&pg.url(), "init").unwrap(), &files)
        .await
        .unwrap();
    let (_stop, shutdown) = watch::channel(false);
    let a = instance(&pg.url(), "a", &shutdown).await;
    let b = instance(&pg.url(), "b", &shutdown).await;
    let user = SUPPLIER.parse().unwrap();
    let mut seen = Vec::new();
    for i in 0..200 {
        let change = if i % 2 == 0 {
            UserChange::SuspendUser {
                user,
                classes: Vec::new(),
            }
        } else {
            UserChange::ReinstateUser { user }
        };
        let start = Instant::now();
        a.state.apply_user_changes(&[change]).await.unwrap();
        let want = i % 2 == 0;
        until(|| suspended(&b.state) == want).await;
        seen.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen.sort();
    let at = |p: usize| seen[(seen.len() * p / 100).min(seen.len() - 1)];
    println!(
        "change on A → in force on B, {} changes: p50 {:?}, p99 {:?}, max {:?}",
        seen.len(),
        at(50),
        at(99),
        seen[seen.len() - 1]
    );
}
