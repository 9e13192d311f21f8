use super::*;

fn id(counter: u64) -> RequestId {
    format!("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}")
        .parse()
        .unwrap()
}

fn held(counter: u64, due: i64, bytes: usize) -> Held {
    Held {
        request_id: id(counter),
        srv: "4.1.1".parse().unwrap(),
        due,
        request: Arc::from(vec![b'x'; bytes]),
    }
}

#[tokio::test]
async fn holds_wait_for_their_time_and_survive_reopening_until_done() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("holds.journal");
    let holds = Holds::open(&path, HoldLimits::default()).unwrap();
    holds.hold(held(1, 300, 10)).await.unwrap();
    holds.hold(held(2, 100, 20)).await.unwrap();
    holds.hold(held(3, 200, 30)).await.unwrap();
    // The same RequestID again is not a second hold.
    holds.hold(held(2, 100, 20)).await.unwrap();
    assert_eq!(holds.len(), 3);
    assert_eq!(holds.next_due(), Some(100));
    assert!(holds.take_due(99).is_empty());
    let due = holds.take_due(200);
    assert_eq!(due, [held(2, 100, 20), held(3, 200, 30)]);
    // Taken but not done: still held, no longer waiting.
    assert_eq!(holds.len(), 3);
    assert_eq!(holds.next_due(), Some(300));
    holds.done(&id(2)).await.unwrap();
    drop(holds);

    // After a restart: 3 was taken but never done, so it waits again; 2 is gone.
    let holds = Holds::open(&path, HoldLimits::default()).unwrap();
    assert_eq!(holds.len(), 2);
    assert_eq!(
        holds.take_due(i64::MAX),
        [held(3, 200, 30), held(1, 300, 10)]
    );
    holds.done(&id(3)).await.unwrap();
    holds.done(&id(1)).await.unwrap();
    assert!(holds.is_empty());
    drop(holds);
    assert!(Holds::open(&path, HoldLimits::default())
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn holds_past_their_bounds_are_refused_and_room_comes_back_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let limits = HoldLimits {
        max_held: 2,
        max_bytes: 100,
    };
    let holds = Holds::open(&dir.path().join("h"), limits).unwrap();
    holds.hold(held(1, 10, 60)).await.unwrap();
    assert!(matches!(
        holds.hold(held(2, 10, 41)).await,
        Err(HoldError::TooLarge(100))
    ));
    holds.hold(held(2, 10, 40)).await.unwrap();
    assert!(matches!(
        holds.hold(held(3, 10, 0)).await,
        Err(HoldError::TooMany(2))
    ));
    // Taken, the holds still count; done, they do not.
    holds.take_due(10);
    assert!(holds.hold(held(3, 10, 0)).await.is_err());
    holds.done(&id(1)).await.unwrap();
    holds.hold(held(3, 10, 60)).await.unwrap();
}

#[tokio::test]
async fn a_journal_of_mostly_done_holds_is_rewritten_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h");
    let holds = Holds::open(&path, HoldLimits::default()).unwrap();
    // Together, so that the journal's group commit writes them with few fsyncs.
    let added = futures_util::future::join_all((1..=2000).map(|c| holds.hold(held(c, 5, 100))));
    assert!(added.await.iter().all(Result::is_ok));
    holds.take_due(5);
    let ids: Vec<_> = (2..=2000).map(id).collect();
    let done = futures_util::future::join_all(ids.iter().map(|i| holds.done(i)));
    assert!(done.await.iter().all(Result::is_ok));
    drop(holds);
    let before = std::fs::metadata(&path).unwrap().len();
    let holds = Holds::open(&path, HoldLimits::default()).unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(after * 100 < before, "{before} → {after}");
    assert_eq!(holds.len(), 1);
    assert_eq!(holds.take_due(5)[0].request_id, id(1));
}

#[tokio::test]
async fn a_timer_waiting_on_holds_is_told_of_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let holds = Arc::new(Holds::open(&dir.path().join("h"), HoldLimits::default()).unwrap());
    let waiting = tokio::spawn({
        let holds = holds.clone();
        async move { holds.added().await }
    });
    holds.hold(held(1, 5, 1)).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("told")
        .unwrap();
}

#[tokio::test]
async fn holds_from_the_request_log_are_reserved_admitted_checkpointed_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("holds.journal");
    let limits = HoldLimits {
        max_held: 3,
        max_bytes: 1_000,
    };
    let holds = Holds::open(&path, limits).unwrap();
    // Reserved against the bounds before the commit; the same RequestID once.
    assert!(holds.reserve(&held(1, 100, 10)).unwrap());
    assert!(!holds.reserve(&held(1, 100, 10)).unwrap());
    assert!(holds.reserve(&held(2, 200, 10)).unwrap());
    assert!(holds.reserve(&held(3, 300, 10)).unwrap());
    assert!(matches!(
        holds.reserve(&held(4, 400, 10)),
        Err(HoldError::TooMany(3))
    ));
    // A failed commit gives its room back.
    holds.unreserve(&id(3));
    assert!(holds.reserve(&held(4, 400, 10)).unwrap());
    for h in [held(1, 100, 10), held(2, 200, 10), held(4, 400, 10)] {
        holds.admit(h);
    }
    assert_eq!(holds.next_due(), Some(100));
    let due = holds.take_due(100);
    holds.done(&due[0].request_id).await.unwrap();
    // The checkpoint copies what is still held.
    holds
        .checkpoint(&[held(1, 100, 10), held(2, 200, 10)])
        .await
        .unwrap();
    drop(holds);
    let holds = Holds::open(&path, limits).unwrap();
    assert_eq!(
        holds.len(),
        1,
        "2 was checkpointed; 1 was done; 4 only in the log"
    );
    drop(holds);
    // A start with the log's holds: those not done come back, and are in the journal after.
    let holds = Holds::open_with(&path, limits, vec![held(1, 100, 10), held(4, 400, 10)]).unwrap();
    assert_eq!(holds.len(), 2);
    assert_eq!(holds.take_due(1_000), [held(2, 200, 10), held(4, 400, 10)]);
    drop(holds);
    assert_eq!(Holds::open(&path, limits).unwrap().len(), 2);
    // The log still holds them at the next start (its segment not yet released, a crash): 1
    // stays done, its mark kept through the rewrite.
    let holds = Holds::open_with(&path, limits, vec![held(1, 100, 10), held(4, 400, 10)]).unwrap();
    assert_eq!(holds.take_due(1_000), [held(2, 200, 10), held(4, 400, 10)]);
}
