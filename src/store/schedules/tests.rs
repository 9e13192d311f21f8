use time::macros::date;

use super::*;
use crate::duis::schedule::{ClockTime, Frequency, ScheduledRead};

const DAY: i64 = 86_400;
const ESME: &str = "00-DB-12-34-56-78-90-A0";
const GSME: &str = "00-DB-12-34-56-78-90-A1";
const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
const OTHER: &str = "90-B3-D5-1F-30-03-00-00";

fn user(s: &str) -> UserId {
    s.parse().unwrap()
}

/// A daily schedule from 2026-01-01 at 00:00 UTC on `device`.
fn daily(device: &str) -> ScheduleSpec {
    ScheduleSpec {
        frequency: Frequency::Daily,
        start: date!(2026 - 01 - 01),
        end: Some(date!(2026 - 12 - 31)),
        time: Some(ClockTime {
            time: time::Time::MIDNIGHT,
            offset: None,
        }),
        ka_credential: None,
        srv: "4.12.1".parse().unwrap(),
        device: device.parse().unwrap(),
        read: ScheduledRead::Data,
    }
}

fn t0() -> i64 {
    time::macros::datetime!(2026-01-01 00:00 UTC).unix_timestamp()
}

fn open(path: &Path, owed: impl Fn(u64) -> bool) -> Schedules {
    Schedules::open(path, 1000, DAY, owed).unwrap()
}

async fn create(store: &Schedules, owner: &str, device: &str) -> ScheduleId {
    let id = store.allocate_id().unwrap();
    store
        .create(id, user(owner), daily(device), 0)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn schedules_are_read_by_their_owner_run_in_turn_and_resume_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schedules.journal");
    let store = open(&path, |_| false);
    let a = create(&store, SUPPLIER, ESME).await;
    let b = create(&store, SUPPLIER, GSME).await;
    let c = create(&store, OTHER, ESME).await;
    assert_eq!((a.get(), b.get(), c.get()), (1, 2, 3));
    let ids = |v: Vec<Schedule>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.read(user(SUPPLIER), ScheduleSelector::Id(a))),
        [a]
    );
    // Another User's schedule is not there for this one.
    assert!(store
        .read(user(SUPPLIER), ScheduleSelector::Id(c))
        .is_empty());
    let esme = ScheduleSelector::Device(ESME.parse().unwrap());
    assert_eq!(ids(store.read(user(SUPPLIER), esme)), [a]);
    assert_eq!(ids(store.read(user(OTHER), esme)), [c]);

    // Two days and an hour in: executions 0 to 2 of each are due.
    assert_eq!(store.next_due(), Some(t0()));
    let now = t0() + 2 * DAY + 3600;
    let due = store.due(now);
    assert_eq!(due.len(), 3);
    assert!(due.iter().all(|d| (d.from, d.to) == (0, 2)));
    store.ran(a, 2).await.unwrap();
    store.ran(b, 0).await.unwrap();
    // Earliest execution first.
    let due = store.due(now);
    let left: Vec<_> = due.iter().map(|d| (d.schedule.id, d.from, d.to)).collect();
    assert_eq!(left, [(c, 0, 2), (b, 1, 2)]);
    drop(store);

    // A restart resumes each where it stopped; new IDs follow the old ones.
    let store = open(&path, |_| false);
    let mut due: Vec<_> = store
        .due(now)
        .iter()
        .map(|d| (d.schedule.id, d.from, d.to))
        .collect();
    due.sort();
    assert_eq!(due, [(b, 1, 2), (c, 0, 2)]);
    assert_eq!(store.next_due(), Some(t0()));
    assert_eq!(store.allocate_id().unwrap().get(), 4);
    store.ran(c, 2).await.unwrap();
    store.ran(b, 2).await.unwrap();
    assert_eq!(store.next_due(), Some(t0() + 3 * DAY));
}

#[tokio::test]
async fn deleted_schedules_are_gone_and_run_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = open(&path, |_| false);
    let a = create(&store, SUPPLIER, ESME).await;
    let b = create(&store, SUPPLIER, ESME).await;
    store.delete(&[a]).await.unwrap();
    let esme = ScheduleSelector::Device(ESME.parse().unwrap());
    let left: Vec<_> = store
        .read(user(SUPPLIER), esme)
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, [b]);
    assert!(store.due(t0() + DAY).iter().all(|d| d.schedule.id == b));
    // Its answers still in flight are known for what they are.
    assert!(store.knows(a));
    assert_eq!(store.len(), 1);
    drop(store);
    let store = open(&path, |_| false);
    assert!(store
        .read(user(SUPPLIER), ScheduleSelector::Id(a))
        .is_empty());
    assert!(!store.knows(a));
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_user_keeps_at_most_99_schedules_on_a_device_and_the_store_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = Schedules::open(&dir.path().join("s"), 100, DAY, |_| false).unwrap();
    for _ in 0..99 {
        create(&store, SUPPLIER, ESME).await;
    }
    let id = store.allocate_id().unwrap();
    assert!(matches!(
        store.create(id, user(SUPPLIER), daily(ESME), 0).await,
        Err(ScheduleStoreError::TooManyForDevice)
    ));
    create(&store, OTHER, ESME).await;
    let id = store.allocate_id().unwrap();
    assert!(matches!(
        store.create(id, user(OTHER), daily(GSME), 0).await,
        Err(ScheduleStoreError::TooMany(100))
    ));
}

#[tokio::test]
async fn a_change_of_supplier_removes_the_outgoing_suppliers_schedules_once_and_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = open(&path, |_| false);
    let a = create(&store, SUPPLIER, ESME).await;
    let b = create(&store, SUPPLIER, GSME).await;
    let c = create(&store, OTHER, ESME).await;
    let esme: DeviceId = ESME.parse().unwrap();
    let removed = store
        .remove_for_change(7, esme, &[user(SUPPLIER)])
        .await
        .unwrap();
    assert_eq!(removed, [(a, user(SUPPLIER))]);
    assert!(store
        .read(user(SUPPLIER), ScheduleSelector::Id(a))
        .is_empty());
    assert!(store.due(t0()).iter().all(|d| d.schedule.id != a));
    assert_eq!(store.len(), 2);
    // The same batch raised again finds the same schedules; another batch finds none.
    let again = store.remove_for_change(7, esme, &[user(SUPPLIER)]).await;
    assert_eq!(again.unwrap(), removed);
    let other = store.remove_for_change(8, esme, &[user(SUPPLIER)]).await;
    assert!(other.unwrap().is_empty());
    drop(store);

    // While batch 7's alerts are owed, a start keeps what it removed.
    let store = open(&path, |seq| seq == 7);
    let again = store.remove_for_change(7, esme, &[user(SUPPLIER)]).await;
    assert_eq!(again.unwrap(), removed);
    assert_eq!(store.len(), 2);
    drop(store);
    // Once they are out, it is forgotten.
    let store = open(&path, |_| false);
    let again = store.remove_for_change(7, esme, &[user(SUPPLIER)]).await;
    assert!(again.unwrap().is_empty());
    assert_eq!(store.read(user(SUPPLIER), ScheduleSelector::Id(b)).len(), 1);
    assert_eq!(store.read(user(OTHER), ScheduleSelector::Id(c)).len(), 1);
}

#[tokio::test]
async fn a_long_journal_is_rewritten_at_open_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = open(&path, |_| false);
    let a = create(&store, SUPPLIER, ESME).await;
    let b = create(&store, SUPPLIER, ESME).await;
    store.delete(&[b]).await.unwrap();
    // Together, so that the journal's group commit writes them with few fsyncs.
    let runs = (0..5000).map(|k| store.ran(a, k));
    for r in futures_util::future::join_all(runs).await {
        r.unwrap();
    }
    drop(store);
    let before = std::fs::metadata(&path).unwrap().len();
    let store = open(&path, |_| false);
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(after * 50 < before, "{before} → {after}");
    let read = store.read(user(SUPPLIER), ScheduleSelector::Id(a));
    assert_eq!(read[0].next, 5000);
    assert_eq!(*read[0].spec, daily(ESME));
    // The deleted schedule's ID is not given out again, before or after another rewrite.
    assert_eq!(store.allocate_id().unwrap().get(), 3);
    drop(store);
    let store = open(&path, |_| false);
    assert_eq!(store.allocate_id().unwrap().get(), 3);
}
