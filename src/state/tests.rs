//! The compaction trigger and hand-over (`Compaction`).

use super::*;
use crate::domain::DeviceStatus;
use crate::registry::{Change, Snapshot};
use crate::state::generate::Synthetic;

fn small() -> (Synthetic, Snapshot) {
    crate::testing::fixture::synthetic(40, 40, 3)
}

/// The compaction trigger: starts once past the bound, records the batches applied while it
/// runs, and hands back the compacted snapshot with them applied again.
#[test]
fn compaction_keeps_the_changes_made_while_it_runs() {
    let (spec, live) = small();
    let status = |i: u64, status| Change::SetDeviceStatus {
        device: spec.device(i).id,
        status,
    };
    let compaction = Compaction::new(2);
    let mut watch = compaction.subscribe();
    let one = live.apply(&status(1, DeviceStatus::Suspended)).unwrap();
    assert!(
        !compaction.after_change(&one, &[]),
        "overlay of 1: below the bound"
    );
    let batch = [
        status(2, DeviceStatus::Suspended),
        status(3, DeviceStatus::Withdrawn),
    ];
    let three = one.apply_all(&batch).unwrap();
    assert!(
        compaction.after_change(&three, &batch),
        "overlay of 3: start"
    );
    // Running: later batches are recorded, and no second compaction starts.
    let later = [status(1, DeviceStatus::Recovered)];
    let four = three.apply_all(&later).unwrap();
    assert!(!compaction.after_change(&four, &later));
    let compacted = compaction.finish(three.compact()).unwrap();
    assert!(watch.has_changed().unwrap());
    assert_eq!(watch.borrow_and_update().to_owned(), 1);
    assert_eq!(
        compacted.overlay_len(),
        1,
        "only the later batch is in the overlay"
    );
    for i in 0..spec.devices {
        let id = spec.device(i).id;
        assert_eq!(compacted.device(id), four.device(id), "device {i}");
    }
    // Finished: the next change past the bound starts a new one.
    assert!(!compaction.after_change(&compacted, &[]));
    compaction.set_bound(0);
    assert!(compaction.after_change(&compacted, &[]));
    compaction.abandon();
    assert_eq!(*watch.borrow(), 2);
}
