use super::*;
use crate::domain::{DeviceId, DeviceStatus};

fn status(last: u8, status: DeviceStatus) -> Change {
    Change::SetDeviceStatus {
        device: DeviceId::from_bytes([0, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, last]),
        status,
    }
}

#[tokio::test]
async fn batches_are_numbered_in_order_and_the_highest_mark_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changes.journal");
    let (log, replayed) = ChangeLog::open(&path).unwrap();
    assert!(replayed.batches.is_empty());
    assert_eq!(replayed.alerted, 0);
    let one = vec![status(0xA0, DeviceStatus::Suspended)];
    let two = vec![
        status(0xA1, DeviceStatus::Suspended),
        status(0xA0, DeviceStatus::Commissioned),
    ];
    assert_eq!(log.append(100, &one).await.unwrap(), 1);
    assert_eq!(log.append(200, &two).await.unwrap(), 2);
    log.mark_alerted(2).await.unwrap();
    log.mark_alerted(1).await.unwrap(); // a lower mark never moves it back
    drop(log);

    let (log, replayed) = ChangeLog::open(&path).unwrap();
    assert_eq!(
        replayed.batches,
        vec![
            Batch {
                seq: Some(1),
                at: Some(100),
                changes: one
            },
            Batch {
                seq: Some(2),
                at: Some(200),
                changes: two
            },
        ]
    );
    assert_eq!(replayed.alerted, 2);
    assert!(!replayed.batches[1].owes_alerts(replayed.alerted));
    assert!(replayed.batches[1].owes_alerts(1));
    // Numbers go on from the highest on disk, never reused.
    assert_eq!(log.append(300, &[]).await.unwrap(), 3);
}

#[tokio::test]
async fn a_batch_written_before_sequence_numbers_replays_and_owes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changes.journal");
    let legacy = vec![status(0xA0, DeviceStatus::Suspended)];
    {
        let (journal, _) = Journal::open(&path).unwrap();
        journal
            .append(serde_json::to_vec(&legacy).unwrap())
            .await
            .unwrap();
    }
    let (log, replayed) = ChangeLog::open(&path).unwrap();
    assert_eq!(
        replayed.batches,
        vec![Batch {
            seq: None,
            at: None,
            changes: legacy
        }]
    );
    assert!(!replayed.batches[0].owes_alerts(0));
    assert_eq!(log.append(5, &[]).await.unwrap(), 1);
    drop(log);
    let (_, replayed) = ChangeLog::open(&path).unwrap();
    assert_eq!(replayed.batches.len(), 2);
    assert!(replayed.batches[1].owes_alerts(0));
}

#[tokio::test]
async fn a_record_that_is_neither_a_batch_nor_a_mark_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changes.journal");
    let (log, _) = ChangeLog::open(&path).unwrap();
    log.append(1, &[]).await.unwrap();
    drop(log);
    let (journal, _) = Journal::open(&path).unwrap();
    journal
        .append(br#"{"alerted": "seven"}"#.to_vec())
        .await
        .unwrap();
    drop(journal);
    assert!(matches!(
        ChangeLog::open(&path),
        Err(ChangeLogError::Record { index: 1, .. })
    ));
}
