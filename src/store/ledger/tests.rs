//! The ledger: issued once, used once, expired after its time, bounded per User, and all of it
//! read back after a reopen; old segments are deleted whole.

use super::*;

const DAY: u64 = 86_400;
const T0: i64 = 1_800_000_000;

fn id(user: u8, counter: u64) -> RequestId {
    format!("90-B3-D5-1F-30-0{user}-00-00:00-DB-12-34-56-78-90-A0:{counter}")
        .parse()
        .unwrap()
}

fn limits(max_per_user: usize) -> LedgerLimits {
    LedgerLimits {
        expiry_secs: DAY,
        max_per_user,
    }
}

fn open(dir: &Path, max: usize, now: i64) -> Ledger<Vec<u8>> {
    Ledger::open(dir, limits(max), now).unwrap()
}

#[tokio::test]
async fn an_entry_is_used_once_and_a_second_use_is_told_apart_from_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), 10, T0);
    ledger.issue(id(1, 1), vec![1, 2], T0).await.unwrap();
    assert!(matches!(
        ledger.issue(id(1, 1), vec![9], T0).await,
        Err(IssueError::Duplicate)
    ));
    assert_eq!(ledger.peek(&id(1, 1), T0 + 5).unwrap(), vec![1, 2]);
    assert_eq!(ledger.take(&id(1, 1), T0 + 5).await.unwrap(), vec![1, 2]);
    assert!(matches!(
        ledger.take(&id(1, 1), T0 + 6).await,
        Err(UseError::Used)
    ));
    assert!(matches!(
        ledger.peek(&id(1, 1), T0 + 6),
        Err(UseError::Used)
    ));
    assert!(matches!(ledger.peek(&id(1, 2), T0), Err(UseError::Unknown)));
    assert!(matches!(
        ledger.take(&id(1, 2), T0).await,
        Err(UseError::Unknown)
    ));
}

#[tokio::test]
async fn an_entry_expires_then_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), 10, T0);
    ledger.issue(id(1, 1), vec![1], T0).await.unwrap();
    let day = DAY as i64;
    assert!(ledger.peek(&id(1, 1), T0 + day - 1).is_ok());
    assert!(matches!(
        ledger.peek(&id(1, 1), T0 + day),
        Err(UseError::Expired)
    ));
    assert!(matches!(
        ledger.take(&id(1, 1), T0 + day).await,
        Err(UseError::Expired)
    ));
    // Known as expired for the grace (an hour here), then forgotten (the next issue sweeps).
    let hour = 3_600;
    ledger
        .issue(id(1, 2), vec![2], T0 + day + hour - 1)
        .await
        .unwrap();
    assert!(matches!(
        ledger.peek(&id(1, 1), T0 + day + hour - 1),
        Err(UseError::Expired)
    ));
    ledger
        .issue(id(1, 3), vec![3], T0 + day + hour + 60)
        .await
        .unwrap();
    assert!(matches!(
        ledger.peek(&id(1, 1), T0 + day + hour + 60),
        Err(UseError::Unknown)
    ));
    assert_eq!(ledger.len(), 2);
}

#[tokio::test]
async fn a_user_holds_at_most_its_bound_and_others_are_not_affected() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), 2, T0);
    ledger.issue(id(1, 1), vec![], T0).await.unwrap();
    ledger.issue(id(1, 2), vec![], T0).await.unwrap();
    assert!(matches!(
        ledger.issue(id(1, 3), vec![], T0).await,
        Err(IssueError::Full { max: 2 })
    ));
    ledger.issue(id(2, 1), vec![], T0).await.unwrap();
    // Using one frees its place (the bound is on open entries), though it is still known.
    ledger.take(&id(1, 1), T0).await.unwrap();
    ledger.issue(id(1, 3), vec![], T0).await.unwrap();
    assert!(matches!(
        ledger.take(&id(1, 1), T0).await,
        Err(UseError::Used)
    ));
    assert!(ledger.issue(id(1, 4), vec![], T0).await.is_err());
    // An expired one frees its place too (at the sweep after its expiry).
    let later = T0 + DAY as i64 + 60;
    ledger.issue(id(1, 4), vec![], later).await.unwrap();
}

#[tokio::test]
async fn a_used_entry_is_forgotten_an_hour_after_its_use_so_memory_holds_what_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), 10, T0);
    for k in 1..=5 {
        ledger.issue(id(1, k), vec![], T0).await.unwrap();
        ledger.take(&id(1, k), T0 + 10).await.unwrap();
    }
    ledger.issue(id(1, 9), vec![], T0).await.unwrap();
    assert_eq!(ledger.len(), 6);
    // Within the hour a repeated use is told apart; after it, the used ones are forgotten and
    // a repeat is refused as unknown, while the open one is kept until its expiry.
    assert!(matches!(
        ledger.take(&id(1, 1), T0 + 3_600).await,
        Err(UseError::Used)
    ));
    ledger.issue(id(2, 1), vec![], T0 + 3_700).await.unwrap();
    assert_eq!(ledger.len(), 2);
    assert!(matches!(
        ledger.take(&id(1, 1), T0 + 3_700).await,
        Err(UseError::Unknown)
    ));
    assert!(ledger.peek(&id(1, 9), T0 + 3_700).is_ok());
    // An entry used again after an undone use is open again, counted once.
    let (value, _) = ledger.take_in_memory(&id(1, 9), T0 + 3_701).unwrap();
    ledger.untake(&id(1, 9), value);
    assert!(ledger.peek(&id(1, 9), T0 + 3_702).is_ok());
}

#[tokio::test]
async fn what_was_issued_and_used_is_read_back_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = open(dir.path(), 10, T0);
        ledger.issue(id(1, 1), vec![1], T0).await.unwrap();
        ledger.issue(id(1, 2), vec![2], T0).await.unwrap();
        ledger.take(&id(1, 1), T0 + 1).await.unwrap();
    }
    let ledger = open(dir.path(), 10, T0 + 2);
    assert!(matches!(
        ledger.peek(&id(1, 1), T0 + 2),
        Err(UseError::Used)
    ));
    assert_eq!(ledger.take(&id(1, 2), T0 + 2).await.unwrap(), vec![2]);
    assert_eq!(ledger.len(), 2);
}

#[tokio::test]
async fn segments_roll_over_and_old_ones_are_deleted_whole() {
    let dir = tempfile::tempdir().unwrap();
    let day = DAY as i64;
    let ledger = open(dir.path(), 10, T0);
    for d in 0..5 {
        ledger
            .issue(id(1, d as u64 + 1), vec![], T0 + d * day)
            .await
            .unwrap();
    }
    let files = segments(dir.path()).unwrap();
    assert!(files.len() <= 3, "{files:?}");
    drop(ledger);
    // The last issue is still open after a reopen.
    let ledger = open(dir.path(), 10, T0 + 4 * day + 1);
    assert!(ledger.peek(&id(1, 5), T0 + 4 * day + 1).is_ok());
    assert!(matches!(
        ledger.peek(&id(1, 1), T0 + 4 * day + 1),
        Err(UseError::Unknown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_uses_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = std::sync::Arc::new(open(dir.path(), 100, T0));
    for n in 0..20 {
        ledger.issue(id(1, n), vec![n as u8], T0).await.unwrap();
    }
    for n in 0..20 {
        let (a, b) = (ledger.clone(), ledger.clone());
        let (x, y) = tokio::join!(
            tokio::spawn(async move { a.take(&id(1, n), T0).await.is_ok() }),
            tokio::spawn(async move { b.take(&id(1, n), T0).await.is_ok() })
        );
        assert!(x.unwrap() ^ y.unwrap(), "entry {n}");
    }
}

#[tokio::test]
async fn records_made_durable_elsewhere_are_undone_recovered_and_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let (issued, used) = {
        let ledger = open(dir.path(), 10, T0);
        // In memory only: an issue and a use whose commit failed are undone.
        ledger.issue_in_memory(id(1, 9), vec![9], T0).unwrap();
        ledger.unissue(&id(1, 9));
        assert!(matches!(ledger.peek(&id(1, 9), T0), Err(UseError::Unknown)));
        let issued = ledger.issue_in_memory(id(1, 1), vec![1], T0).unwrap();
        let (value, _) = ledger.take_in_memory(&id(1, 1), T0 + 1).unwrap();
        assert_eq!(value, vec![1]);
        ledger.untake(&id(1, 1), value);
        assert_eq!(ledger.peek(&id(1, 1), T0 + 1).unwrap(), vec![1]);
        (issued, ledger.take_in_memory(&id(1, 1), T0 + 1).unwrap().1)
    };
    // Nothing of it reached the ledger's own files: a reopen knows nothing.
    let ledger = open(dir.path(), 10, T0 + 2);
    assert!(matches!(
        ledger.peek(&id(1, 1), T0 + 2),
        Err(UseError::Unknown)
    ));
    // Read back from the request log: the issue alone, then the use; twice is harmless.
    let records = vec![issued.clone(), issued, used];
    ledger.recover(&records[..1]);
    assert_eq!(ledger.peek(&id(1, 1), T0 + 2).unwrap(), vec![1]);
    ledger.recover(&records);
    assert!(matches!(
        ledger.peek(&id(1, 1), T0 + 2),
        Err(UseError::Used)
    ));
    ledger.checkpoint(&records, T0 + 2).await.unwrap();
    drop(ledger);
    let ledger = open(dir.path(), 10, T0 + 3);
    assert!(matches!(
        ledger.peek(&id(1, 1), T0 + 3),
        Err(UseError::Used)
    ));
    assert!(matches!(
        ledger.issue_in_memory(id(1, 1), vec![1], T0 + 3),
        Err(IssueError::Duplicate)
    ));
    assert_eq!(ledger.len(), 1);
}
