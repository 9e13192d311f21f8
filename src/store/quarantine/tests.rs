use super::*;

fn id(counter: u64) -> RequestId {
    format!("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}")
        .parse()
        .unwrap()
}

fn entry(q: &Quarantine, counter: u64, breach: BreachKind, bytes: usize) -> Quarantined {
    Quarantined {
        reference: q.next_reference(),
        request_id: id(counter),
        srv: "4.1.1".parse().unwrap(),
        at: 1_700_000_000 + counter as i64,
        breach,
        request: Arc::from(vec![b'x'; bytes]),
    }
}

#[tokio::test]
async fn quarantined_requests_survive_reopening_until_released_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quarantine.journal");
    let q = Quarantine::open(&path, 10, 1 << 20).unwrap();
    let a = entry(&q, 1, BreachKind::UserThreshold, 10);
    let b = entry(&q, 2, BreachKind::DccThreshold, 20);
    let c = entry(&q, 3, BreachKind::AttributeLimits, 30);
    for e in [&a, &b, &c] {
        q.add(e.clone()).await.unwrap();
    }
    assert_eq!(q.list(), [a.clone(), b.clone(), c.clone()]);
    // One claim at a time: a second release of the same reference finds nothing.
    assert_eq!(q.claim(a.reference), Some(a.clone()));
    assert_eq!(q.claim(a.reference), None);
    q.end(a.reference, Ending::Released).await.unwrap();
    assert!(q.claim(b.reference).is_some());
    q.end(b.reference, Ending::Deleted).await.unwrap();
    // A claim given back can be taken again.
    assert!(q.claim(c.reference).is_some());
    q.unclaim(c.reference);
    let last = c.reference;
    drop(q);

    let q = Quarantine::open(&path, 10, 1 << 20).unwrap();
    assert_eq!(q.list(), std::slice::from_ref(&c));
    // References are never reused, even of ended entries.
    assert!(q.next_reference() > last);
    assert_eq!(q.claim(a.reference), None);
}

#[tokio::test]
async fn the_bounds_refuse_more_and_keep_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quarantine.journal");
    let q = Quarantine::open(&path, 2, 100).unwrap();
    q.add(entry(&q, 1, BreachKind::UserThreshold, 40))
        .await
        .unwrap();
    assert!(q.room_for(60));
    assert!(!q.room_for(61));
    let too_large = q.add(entry(&q, 2, BreachKind::UserThreshold, 61)).await;
    assert!(matches!(too_large, Err(QuarantineError::TooLarge(100))));
    q.add(entry(&q, 3, BreachKind::UserThreshold, 10))
        .await
        .unwrap();
    let too_many = q.add(entry(&q, 4, BreachKind::UserThreshold, 1)).await;
    assert!(matches!(too_many, Err(QuarantineError::TooMany(2))));
    assert_eq!(q.len(), 2);
    drop(q);
    assert_eq!(Quarantine::open(&path, 2, 100).unwrap().len(), 2);
}

#[tokio::test]
async fn a_journal_of_mostly_ended_entries_is_rewritten_and_keeps_its_references_unique() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quarantine.journal");
    let q = Quarantine::open(&path, 10_000, 1 << 24).unwrap();
    let mut kept = None;
    for n in 0..1_100 {
        let e = entry(&q, n, BreachKind::UserThreshold, 8);
        q.add(e.clone()).await.unwrap();
        if n == 500 {
            kept = Some(e);
            continue;
        }
        assert!(q.claim(e.reference).is_some());
        q.end(e.reference, Ending::Deleted).await.unwrap();
    }
    let before = std::fs::metadata(&path).unwrap().len();
    drop(q);
    let q = Quarantine::open(&path, 10_000, 1 << 24).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < before / 10);
    assert_eq!(q.list(), [kept.unwrap()]);
    assert!(q.next_reference() >= 1_100);
    drop(q);
    // And again after the rewrite.
    let q = Quarantine::open(&path, 10_000, 1 << 24).unwrap();
    assert!(q.next_reference() >= 1_100);
}

#[tokio::test]
async fn a_reserved_quarantine_is_kept_by_its_commit_and_recovered_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quarantine.journal");
    let q = Quarantine::open(&path, 2, 1 << 20).unwrap();
    let a = entry(&q, 1, BreachKind::UserThreshold, 10);
    let b = entry(&q, 2, BreachKind::DccThreshold, 20);
    let c = entry(&q, 3, BreachKind::DccThreshold, 20);
    q.reserve(&a).unwrap();
    q.reserve(&b).unwrap();
    // Counted while its commit is on the way: the bounds hold, and nobody releases it yet.
    assert!(matches!(q.reserve(&c), Err(QuarantineError::TooMany(2))));
    assert_eq!(q.claim(a.reference), None);
    q.admit(a.reference);
    // A commit that failed: forgotten, its room given back.
    q.unreserve(b.reference);
    q.reserve(&c).unwrap();
    q.admit(c.reference);
    assert_eq!(q.list(), [a.clone(), c.clone()]);
    assert_eq!(Quarantined::from_record(&a.to_record()), Some(a.clone()));
    assert_eq!(Quarantined::from_record(b"X"), None);
    // `a` is checkpointed and then released, which the journal says after it; `c` is still
    // only in the request log when the process dies.
    q.checkpoint(std::slice::from_ref(&a)).await.unwrap();
    assert!(q.claim(a.reference).is_some());
    q.end(a.reference, Ending::Released).await.unwrap();
    // A checkpoint late for an ended one writes nothing back.
    q.checkpoint(std::slice::from_ref(&a)).await.unwrap();
    drop(q);

    // The log hands back both: the ended one stays ended, the other is kept (and written).
    let q = Quarantine::open_with(&path, 2, 1 << 20, vec![a.clone(), c.clone()]).unwrap();
    assert_eq!(q.list(), std::slice::from_ref(&c));
    assert!(q.next_reference() > c.reference);
    drop(q);
    // A crash before the log's segments were released: read again, the same.
    let q = Quarantine::open_with(&path, 2, 1 << 20, vec![a.clone(), c.clone()]).unwrap();
    assert_eq!(q.list(), std::slice::from_ref(&c));
    drop(q);
    let q = Quarantine::open(&path, 2, 1 << 20).unwrap();
    assert_eq!(q.list(), std::slice::from_ref(&c));
}

#[tokio::test]
async fn a_quarantine_record_after_its_end_does_not_bring_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quarantine.journal");
    let q = Quarantine::open(&path, 10, 1 << 20).unwrap();
    let a = entry(&q, 1, BreachKind::UserThreshold, 10);
    q.add(a.clone()).await.unwrap();
    assert!(q.claim(a.reference).is_some());
    q.end(a.reference, Ending::Deleted).await.unwrap();
    // As a checkpoint racing the delete may write it.
    q.journal.append(a.to_record()).await.unwrap();
    drop(q);
    let q = Quarantine::open(&path, 10, 1 << 20).unwrap();
    assert!(q.list().is_empty());
}
