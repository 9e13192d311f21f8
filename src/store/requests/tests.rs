use std::io::Write;
use std::sync::Arc;

use super::*;
use crate::domain::DeviceId;

fn user(n: u8) -> UserId {
    Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, n, 0, 0])
}

fn decision(n: u64) -> Decision {
    let target: DeviceId = Eui64::from_bytes([0, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0]);
    Decision {
        mark: Some(MarkEntry {
            originator: user(1),
            mark: Mark {
                counter: n,
                pre_command_for: (n % 3 == 0).then_some(target),
            },
            reset: n % 5 == 0,
            twin_of: None,
        }),
        entries: vec![
            Entry {
                kind: EntryKind::Pending,
                bytes: n.to_be_bytes().to_vec(),
            },
            Entry {
                kind: EntryKind::Hold,
                bytes: vec![b'H'; n as usize % 7],
            },
            Entry {
                kind: EntryKind::PreCommand,
                bytes: format!("{{\"r\":\"used\",\"id\":\"{n}\"}}").into_bytes(),
            },
            Entry {
                kind: EntryKind::Audit,
                bytes: format!("audit {n}").into_bytes(),
            },
            Entry {
                kind: EntryKind::Count,
                bytes: format!("{{\"n\":{n}}}").into_bytes(),
            },
        ],
    }
}

fn counters(decisions: &[Decision]) -> Vec<u64> {
    decisions
        .iter()
        .map(|d| d.mark.map_or(0, |m| m.mark.counter))
        .collect()
}

fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn a_decision_reads_back_as_written() {
    for n in 0..20 {
        let d = decision(n);
        assert_eq!(decode(&encode(&d)), Some(d));
    }
    let bare = Decision::default();
    assert!(bare.is_empty());
    assert_eq!(decode(&encode(&bare)), Some(bare));
    // Not a decision, a newer version, an unknown entry kind, a cut entry: none read.
    let good = encode(&decision(4));
    assert_eq!(decode(b"P123"), None);
    let mut newer = good.clone();
    newer[1] = 2;
    assert_eq!(decode(&newer), None);
    let mut unknown = encode(&Decision::default());
    unknown.extend_from_slice(&[b'?', 0, 0, 0, 0]);
    assert_eq!(decode(&unknown), None);
    assert_eq!(decode(&good[..good.len() - 1]), None);
}

#[test]
fn marks_fold_to_the_highest_and_a_reset_sets() {
    let advance = |counter| MarkEntry {
        originator: user(1),
        mark: Mark {
            counter,
            pre_command_for: None,
        },
        reset: false,
        twin_of: None,
    };
    let m = fold_mark(None, &advance(7));
    let m = fold_mark(Some(m), &advance(5));
    assert_eq!(m.counter, 7);
    let reset = MarkEntry {
        reset: true,
        twin_of: None,
        ..advance(2)
    };
    assert_eq!(fold_mark(Some(m), &reset).counter, 2);
}

#[tokio::test]
async fn decisions_survive_a_restart_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let (log, recovered) = FileRequestLog::open(dir.path(), 1000).unwrap();
    assert!(recovered.decisions.is_empty());
    for n in 1..=10 {
        log.commit(decision(n)).await.unwrap();
    }
    drop(log);
    let (log, recovered) = FileRequestLog::open(dir.path(), 1000).unwrap();
    assert_eq!(counters(&recovered.decisions), (1..=10).collect::<Vec<_>>());
    assert_eq!(recovered.decisions[3], decision(4));
    log.commit(decision(11)).await.unwrap();
    log.release_recovered(recovered).unwrap();
    drop(log);
    let (_, recovered) = FileRequestLog::open(dir.path(), 1000).unwrap();
    assert_eq!(counters(&recovered.decisions), [11]);
}

#[tokio::test]
async fn a_log_cut_mid_record_recovers_every_whole_decision_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = FileRequestLog::open(dir.path(), 1000).unwrap();
    for n in 1..=10 {
        log.commit(decision(n)).await.unwrap();
    }
    drop(log);
    let [segment] = &segment_files(dir.path())[..] else {
        panic!("one segment");
    };
    // The last decision's record, cut in its middle (a crash mid-write).
    let len = std::fs::metadata(segment).unwrap().len();
    let last = 8 + encode(&decision(10)).len() as u64;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap();
    file.set_len(len - last / 2).unwrap();
    drop(file);
    let (log, recovered) = FileRequestLog::open(dir.path(), 1000).unwrap();
    assert_eq!(counters(&recovered.decisions), (1..=9).collect::<Vec<_>>());
    // A torn header after whole records: cut too.
    drop(log);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(segment)
        .unwrap();
    f.write_all(&[200, 0, 0]).unwrap();
    drop(f);
    let (log, recovered) = FileRequestLog::open(dir.path(), 1000).unwrap();
    assert_eq!(recovered.decisions.len(), 9);
    // The log goes on in a fresh segment, never behind the tear.
    log.commit(decision(12)).await.unwrap();
    log.release_recovered(recovered).unwrap();
    drop(log);
    let (_, recovered) = FileRequestLog::open(dir.path(), 1000).unwrap();
    assert_eq!(counters(&recovered.decisions), [12]);
}

#[tokio::test]
async fn full_segments_are_sealed_for_the_checkpoint_and_released_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = FileRequestLog::open(dir.path(), 3).unwrap();
    for n in 1..=10 {
        log.commit(decision(n)).await.unwrap();
    }
    // 1–3, 4–6, 7–9 sealed; 10 in the current segment.
    assert_eq!(log.sealed(), 3);
    let sealed = log.next_sealed().await;
    assert_eq!(counters(&sealed.decisions().await.unwrap()), [1, 2, 3]);
    log.release(&sealed).unwrap();
    assert_eq!(log.sealed(), 2);
    assert_eq!(segment_files(dir.path()).len(), 3);
    drop(sealed);
    drop(log);
    // What was not checkpointed is recovered, in order.
    let (_, recovered) = FileRequestLog::open(dir.path(), 3).unwrap();
    assert_eq!(counters(&recovered.decisions), (4..=10).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_across_segment_rotations_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = FileRequestLog::open(dir.path(), 7).unwrap();
    let log = Arc::new(log);
    // A checkpoint reading and releasing sealed segments meanwhile: each is read only after its
    // last write, so what it read and what a restart recovers are every decision, once.
    let checkpointed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = tokio::spawn({
        let (log, checkpointed) = (Arc::clone(&log), Arc::clone(&checkpointed));
        async move {
            loop {
                let sealed = log.next_sealed().await;
                let got = counters(&sealed.decisions().await.unwrap());
                assert_eq!(got.len(), 7, "a sealed segment holds its decisions whole");
                checkpointed.lock().unwrap().extend(got);
                log.release(&sealed).unwrap();
            }
        }
    });
    let commits: Vec<_> = (1..=200)
        .map(|n| {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.commit(decision(n)).await })
        })
        .collect();
    for c in commits {
        c.await.unwrap().unwrap();
    }
    while log.sealed() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Idle, waiting for a segment that will not come.
    reader.abort();
    let _ = reader.await;
    drop(log);
    let (_, recovered) = FileRequestLog::open(dir.path(), 7).unwrap();
    let mut got = counters(&recovered.decisions);
    got.extend(checkpointed.lock().unwrap().iter());
    got.sort_unstable();
    assert_eq!(got, (1..=200).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_durable_decisions_audit_entries_go_to_the_trail_and_stay_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = FileRequestLog::open(dir.path(), 1000).unwrap();
    // Before a trail is set, entries stay in the log only.
    log.commit(decision(1)).await.unwrap();
    let copied = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&copied);
    log.set_trail(Box::new(move |e| sink.lock().unwrap().push(e.to_vec())));
    for n in 2..=4 {
        log.commit(decision(n)).await.unwrap();
    }
    let refusal = Decision {
        mark: None,
        entries: vec![Entry {
            kind: EntryKind::Audit,
            bytes: b"refused".to_vec(),
        }],
    };
    log.commit(refusal.clone()).await.unwrap();
    assert_eq!(
        *copied.lock().unwrap(),
        [&b"audit 2"[..], b"audit 3", b"audit 4", b"refused"]
    );
    drop(log);
    let (_, recovered) = FileRequestLog::open(dir.path(), 1000).unwrap();
    assert_eq!(recovered.decisions.len(), 5);
    assert_eq!(recovered.decisions[4], refusal);
}
