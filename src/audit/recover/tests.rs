use std::path::Path;

use crate::audit::tests::request;
use crate::audit::{logged, read_trail, Audit, AuditEvent, Rotation};

/// 2024-05-01T10:00:00Z.
const MAY_1: i64 = 1_714_557_600_000;

fn events(dir: &Path) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    read_trail(dir, |_, e| out.push(e)).unwrap();
    out
}

#[test]
fn logged_records_the_trail_lacks_are_copied_once_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<_> = (1..=8).map(|n| request(MAY_1 + n as i64, n)).collect();
    let audit = Audit::open(dir.path(), Rotation::default()).unwrap();
    for e in &all[..5] {
        audit.record(e).durable_blocking().unwrap();
    }
    drop(audit);
    // The log still holds 3..=8 (1 and 2 were checkpointed): 6, 7 and 8 never reached the trail.
    let log: Vec<_> = all[2..].iter().map(|e| logged(e).unwrap()).collect();
    drop(Audit::open_after(dir.path(), Rotation::default(), &log).unwrap());
    assert_eq!(events(dir.path()), all);
    // A second start with the same log copies nothing more.
    drop(Audit::open_after(dir.path(), Rotation::default(), &log).unwrap());
    assert_eq!(events(dir.path()), all);
}

#[test]
fn equal_records_are_counted_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let twin = request(MAY_1, 7);
    let audit = Audit::open(dir.path(), Rotation::default()).unwrap();
    audit.record(&twin).durable_blocking().unwrap();
    drop(audit);
    let log = vec![logged(&twin).unwrap(), logged(&twin).unwrap()];
    drop(Audit::open_after(dir.path(), Rotation::default(), &log).unwrap());
    assert_eq!(events(dir.path()), [twin.clone(), twin]);
}

#[test]
fn copies_are_written_without_a_waiter_and_fsynced_by_a_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<_> = (1..=20).map(|n| request(MAY_1 + n as i64, n)).collect();
    let audit = Audit::open(dir.path(), Rotation::default()).unwrap();
    for e in &all {
        audit.copy_logged(&logged(e).unwrap());
    }
    audit.sync().durable_blocking().unwrap();
    assert_eq!(events(dir.path()), all);
    assert!(!audit.is_failing());
    // An entry that does not read is skipped, and the trail goes on.
    audit.copy_logged(b"short");
    audit
        .record(&request(MAY_1 + 50, 50))
        .durable_blocking()
        .unwrap();
    assert_eq!(events(dir.path()).len(), 21);
}
