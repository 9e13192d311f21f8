use std::io::Write as _;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::domain::RequestId;

/// 2024-05-01T10:00:00Z.
const MAY_1: i64 = 1_714_557_600_000;
const DAY_MS: i64 = 86_400_000;

pub(crate) fn request(at_ms: i64, counter: u64) -> AuditEvent {
    let id: RequestId = format!("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}")
        .parse()
        .unwrap();
    AuditEvent::Request(RequestRecord {
        at_ms,
        service: "send".into(),
        tls_user: id.originator,
        tls_role: "02".into(),
        request_id: Some(id),
        srv: Some("4.1.1".parse().unwrap()),
        role: Some(crate::domain::UserRole::ImportSupplier),
        class: Some("A".into()),
        device: Some(id.target),
        on_demand: true,
        rules: Some("base".into()),
        decision: ACCEPTED.into(),
        code: "I99".into(),
        response_follows: true,
        timings: Timings {
            parse_us: Some(40),
            total_us: 900,
            ..Timings::default()
        },
        bytes_in: 1800,
        bytes_out: 1500,
    })
}

fn delivery(at_ms: i64, counter: u64) -> AuditEvent {
    AuditEvent::Delivery(DeliveryRecord {
        at_ms,
        message_id: format!("m{counter}"),
        user: "90-B3-D5-1F-30-01-00-00".parse().unwrap(),
        message: Message::Response {
            request_id: format!("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}")
                .parse()
                .unwrap(),
            code: "I0".into(),
        },
        attempt: 1,
        outcome: DeliveryOutcome::Delivered,
        http_status: Some(200),
        raised_at_ms: at_ms - 10,
        bytes: 2100,
    })
}

fn write_all(dir: &Path, rotation: Rotation, events: &[AuditEvent]) {
    let audit = Audit::open(dir, rotation).unwrap();
    let receipts: Vec<_> = events.iter().map(|e| audit.record(e)).collect();
    for r in receipts {
        r.durable_blocking().unwrap();
    }
}

fn read_events(dir: &Path) -> (Verified, Vec<(u64, AuditEvent)>) {
    let mut seen = Vec::new();
    let v = read_trail(dir, |seq, e| seen.push((seq, e))).unwrap();
    (v, seen)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut f: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    f.sort();
    f
}

fn broken(dir: &Path) -> Broken {
    match verify_dir(dir) {
        Err(AuditError::Broken(b)) => b,
        other => panic!("expected a broken record, got {other:?}"),
    }
}

#[test]
fn records_read_back_in_order_and_the_chain_continues_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let first: Vec<_> = (0..50).map(|i| request(MAY_1 + i, i as u64)).collect();
    write_all(dir.path(), Rotation::default(), &first);
    let second: Vec<_> = (50..60).map(|i| delivery(MAY_1 + i, i as u64)).collect();
    write_all(dir.path(), Rotation::default(), &second);

    let (v, seen) = read_events(dir.path());
    assert_eq!(v.records, 60);
    assert_eq!(v.files, 1);
    assert!(v.from_genesis);
    assert_eq!(v.torn_tail, None);
    // Sequence 0 is the file's opening.
    assert_eq!((v.first_seq, v.last_seq), (Some(0), Some(60)));
    let events: Vec<_> = seen.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(events, [first, second].concat());
    assert_eq!(seen[0].0, 1);
}

/// The DSP's decision on a held request, under a dated rule set, refused.
fn execution(at_ms: i64, counter: u64) -> AuditEvent {
    AuditEvent::Execution(ExecutionRecord {
        at_ms,
        source: "held".into(),
        request_id: format!("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}")
            .parse::<RequestId>()
            .unwrap(),
        srv: "4.1.1".parse().unwrap(),
        role: None,
        rules: "2027-release".into(),
        decision: "refused".into(),
        code: Some("E2".into()),
    })
}

#[test]
fn execution_and_routing_records_keep_their_rule_set_version_in_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let routing = AuditEvent::Routing(RoutingRecord {
        at_ms: MAY_1 + 3,
        alert_id: 7,
        device: "00-DB-12-34-56-78-90-A0".parse().unwrap(),
        code: "8F35".into(),
        raised_at_ms: MAY_1,
        rules: "2027-release".into(),
        users: vec!["90-B3-D5-1F-30-01-00-00".parse().unwrap()],
    });
    let events = vec![
        request(MAY_1, 1),
        execution(MAY_1 + 1, 2),
        delivery(MAY_1 + 2, 3),
        routing,
    ];
    write_all(dir.path(), Rotation::default(), &events);
    let (v, seen) = read_events(dir.path());
    assert_eq!(v.records, 4);
    let read: Vec<_> = seen.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(read, events);
    let line = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        line.contains(r#""kind":"execution","at_ms":1714557600001,"source":"held""#),
        "{line}"
    );
    assert_eq!(
        line.matches(r#""rules":"2027-release""#).count(),
        2,
        "{line}"
    );
    assert!(line.contains(r#""kind":"routing","at_ms""#), "{line}");
}

#[test]
fn concurrent_records_are_all_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let audit = Audit::open(dir.path(), Rotation::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let audit = audit.clone();
            s.spawn(move || {
                for i in 0..200u64 {
                    let counter = t * 1000 + i;
                    audit
                        .record(&request(MAY_1, counter))
                        .durable_blocking()
                        .unwrap();
                }
            });
        }
    });
    let (v, seen) = read_events(dir.path());
    assert_eq!(v.records, 1600);
    let mut counters: Vec<u64> = seen
        .iter()
        .map(|(_, e)| match e {
            AuditEvent::Request(r) => r.request_id.unwrap().counter,
            AuditEvent::Delivery(_)
            | AuditEvent::Execution(_)
            | AuditEvent::Routing(_)
            | AuditEvent::Anomaly(_) => unreachable!(),
        })
        .collect();
    counters.sort();
    counters.dedup();
    assert_eq!(counters.len(), 1600);
}

#[test]
fn files_rotate_by_size_and_by_day_and_the_chain_runs_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let rotation = Rotation {
        max_file_bytes: 4096,
        daily: true,
    };
    let mut events: Vec<_> = (0..40).map(|i| request(MAY_1 + i, i as u64)).collect();
    events.extend((40..45).map(|i| request(MAY_1 + DAY_MS + i, i as u64)));
    // A record stamped a little earlier (another thread's clock read) does not go back a day.
    events.push(request(MAY_1 + 100, 45));
    write_all(dir.path(), rotation, &events);
    let names: Vec<String> = files(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 3, "{names:?}");
    assert!(names[0].starts_with("audit-000000-20240501"), "{names:?}");
    assert!(
        names.last().unwrap().ends_with("-20240502.log"),
        "{names:?}"
    );
    for p in files(dir.path()) {
        assert!(std::fs::metadata(&p).unwrap().len() < 4096 + 1024);
    }
    let (v, seen) = read_events(dir.path());
    assert_eq!(v.files, names.len());
    assert_eq!(seen.len(), events.len());

    // The trail proves itself from the first file present once old files are removed.
    std::fs::remove_file(dir.path().join(&names[0])).unwrap();
    let v = verify_dir(dir.path()).unwrap();
    assert!(!v.from_genesis);
    assert!(v.first_seq.unwrap() > 0);
}

/// One flipped byte anywhere in a record — its hash, its sequence number, its JSON, its line
/// feed — is reported at that record.
#[test]
fn a_flipped_byte_names_its_record() {
    let events: Vec<_> = (0..20).map(|i| request(MAY_1 + i, i as u64)).collect();
    let reference = tempfile::tempdir().unwrap();
    write_all(reference.path(), Rotation::default(), &events);
    let file = files(reference.path()).remove(0);
    let bytes = std::fs::read(&file).unwrap();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    // Line 8 (sequence 7): each part of it.
    let line = 7;
    let (start, end) = (starts[line], starts[line + 1]);
    let json_at = start + 65 + bytes[start + 65..].iter().position(|b| *b == b' ').unwrap() + 1;
    let cases = [
        ("hash", start + 3),
        ("sequence", start + 65),
        ("record", json_at + 20),
        ("line feed", end - 1),
    ];
    for (what, at) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut copy = bytes.clone();
        copy[at] ^= 0x01;
        std::fs::write(dir.path().join(file.file_name().unwrap()), &copy).unwrap();
        let b = broken(dir.path());
        assert_eq!(b.line, line as u64 + 1, "{what}: {b}");
        assert_eq!(b.offset, start as u64, "{what}: {b}");
        assert_eq!(b.seq, Some(line as u64), "{what}: {b}");
        // A hex digit flipped to a non-digit makes the hash unreadable rather than wrong.
        assert!(
            matches!(b.fault, Fault::HashMismatch | Fault::MalformedHash),
            "{what}: {b}"
        );
    }
}

#[test]
fn removed_reordered_and_missing_pieces_are_broken() {
    let rotation = Rotation {
        max_file_bytes: 2048,
        daily: true,
    };
    let events: Vec<_> = (0..30).map(|i| request(MAY_1 + i, i as u64)).collect();
    let reference = tempfile::tempdir().unwrap();
    write_all(reference.path(), rotation, &events);
    let all = files(reference.path());
    assert!(all.len() >= 3);
    let copy = || {
        let dir = tempfile::tempdir().unwrap();
        for f in &all {
            std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
        dir
    };
    let lines = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| format!("{l}\n"))
            .collect()
    };

    // A line removed: the next one no longer chains.
    let dir = copy();
    let target = dir.path().join(all[1].file_name().unwrap());
    let mut l = lines(&target);
    l.remove(2);
    std::fs::write(&target, l.concat()).unwrap();
    let b = broken(dir.path());
    assert_eq!(
        (b.file.clone(), b.line, b.fault),
        (target, 3, Fault::HashMismatch)
    );

    // Two lines swapped.
    let dir = copy();
    let target = dir.path().join(all[0].file_name().unwrap());
    let mut l = lines(&target);
    l.swap(3, 4);
    std::fs::write(&target, l.concat()).unwrap();
    assert_eq!(broken(dir.path()).line, 4);

    // A middle file missing.
    let dir = copy();
    std::fs::remove_file(dir.path().join(all[1].file_name().unwrap())).unwrap();
    assert!(matches!(
        broken(dir.path()).fault,
        Fault::MissingFile {
            expected: 1,
            found: 2
        }
    ));

    // An incomplete line in a file that newer files follow is not a torn tail.
    let dir = copy();
    let target = dir.path().join(all[0].file_name().unwrap());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&target)
        .unwrap();
    f.write_all(b"0123abc").unwrap();
    assert_eq!(broken(dir.path()).fault, Fault::TornInside);
}

/// An interrupted write leaves bytes after the newest file's last line feed: the trail verifies
/// up to the last complete record and says so; reopening cuts the tail and carries on.
#[test]
fn a_torn_tail_is_reported_as_such_and_cut_on_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<_> = (0..10).map(|i| request(MAY_1 + i, i as u64)).collect();
    write_all(dir.path(), Rotation::default(), &events);
    let file = files(dir.path()).remove(0);
    let good = std::fs::metadata(&file).unwrap().len();
    let bytes = std::fs::read(&file).unwrap();
    // Half of the last record written again, as if the process died mid-write; then zeros, as a
    // filesystem may leave after power loss.
    for tail in [&bytes[bytes.len() - 200..bytes.len() - 50], &[0u8; 512][..]] {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(tail).unwrap();
        drop(f);
        let v = verify_dir(dir.path()).unwrap();
        assert_eq!(v.records, 10);
        let torn = v.torn_tail.unwrap();
        assert_eq!((torn.offset, torn.bytes), (good, tail.len() as u64));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(good)
            .unwrap();
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    f.write_all(&bytes[..100]).unwrap();
    drop(f);
    write_all(dir.path(), Rotation::default(), &[request(MAY_1 + 20, 20)]);
    let v = verify_dir(dir.path()).unwrap();
    assert_eq!((v.records, v.torn_tail), (11, None));
}

#[test]
fn opening_refuses_a_damaged_newest_file_and_removes_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), Rotation::default(), &[request(MAY_1, 1)]);
    // A file created but never written (a crash right after rotation) is removed.
    let empty = dir.path().join(chain::file_name(1, 20240502));
    std::fs::write(&empty, b"").unwrap();
    write_all(dir.path(), Rotation::default(), &[request(MAY_1 + 1, 2)]);
    assert!(!empty.exists());
    assert_eq!(verify_dir(dir.path()).unwrap().records, 2);

    let file = files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x20;
    std::fs::write(&file, bytes).unwrap();
    assert!(matches!(
        Audit::open(dir.path(), Rotation::default()),
        Err(AuditError::Broken(Broken { line: 3, .. }))
    ));
}

#[test]
fn lines_split_back_into_their_parts() {
    let mut out = Vec::new();
    let h = chain::append_line(&mut out, &chain::GENESIS, 42, br#"{"a":1}"#);
    let line = chain::split_line(&out[..out.len() - 1]).unwrap();
    assert_eq!(line.hash, h);
    assert_eq!(line.seq, 42);
    assert_eq!(line.record, br#"{"a":1}"#);
    assert_eq!(chain::hash(&chain::GENESIS, line.body), h);
    assert_eq!(chain::unhex(chain::hex(&h).as_bytes()), Some(h));
    for bad in [&b""[..], b"zz", &[b'a'; 70]] {
        assert!(chain::split_line(bad).is_err());
    }
    assert_eq!(
        chain::parse_file_name("audit-000012-20240501.log"),
        Some((12, 20240501))
    );
    for bad in [
        "audit-12.log",
        "audit-x-20240501.log",
        "audit-1-2024051.log",
        "x.log",
    ] {
        assert_eq!(chain::parse_file_name(bad), None, "{bad}");
    }
    assert_eq!(chain::day_of(MAY_1), 20240501);
    assert_eq!(chain::day_of(-1), 19691231);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a file holds, reading it ends in a verdict, never a panic.
    #[test]
    fn reading_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000),
                            splice in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut content = Vec::new();
        if splice {
            let mut prev = chain::GENESIS;
            let open = format!(r#"{{"kind":"open","file":"f","prev":"{}","at_ms":0}}"#, chain::hex(&prev));
            prev = chain::append_line(&mut content, &prev, 0, open.as_bytes());
            let _ = chain::append_line(&mut content, &prev, 1, &bytes);
        }
        content.extend_from_slice(&bytes);
        std::fs::write(dir.path().join(chain::file_name(0, 20240501)), content).unwrap();
        let _ = verify_dir(dir.path());
    }
}

#[test]
fn the_writers_queue_refuses_past_its_bound_and_counts_what_the_writer_takes() {
    let (queue, rx, waiting) = writer::Queue::new();
    let sync = || writer::Pending::Sync(tokio::sync::oneshot::channel().0);
    for _ in 0..QUEUE_BOUND {
        queue.send(sync()).unwrap();
    }
    assert!(matches!(queue.send(sync()), Err(AuditError::Backlog)));
    assert_eq!(waiting.load(Ordering::Relaxed), QUEUE_BOUND);
    // What the writer takes off frees its place (`Writer::run` counts a batch down at once).
    let taken = rx.try_iter().take(10).count();
    waiting.fetch_sub(taken, Ordering::AcqRel);
    for _ in 0..10 {
        queue.send(sync()).unwrap();
    }
    assert!(matches!(queue.send(sync()), Err(AuditError::Backlog)));
    drop(rx);
    waiting.store(0, Ordering::Relaxed);
    assert!(matches!(queue.send(sync()), Err(AuditError::Stopped)));
    assert_eq!(waiting.load(Ordering::Relaxed), 0);
}
