//! DCC Alerts of a batch of registration changes, and how far they have got
//! ([`ChangeProgress`]): the change log's mark never passes a batch with a copy still to go.

use proptest::prelude::*;

use crate::alerts::{apply_batch, events_for_change, ChangeProgress, DccEvent, Mark};
use crate::registry::{Change, ChangeError};

use super::*;

fn change_of_supplier(at: i64) -> Vec<Change> {
    vec![
        Change::EndRegistration {
            mpxn: mpan(),
            role: UserRole::ImportSupplier,
            user: user(SUPPLIER),
            at,
        },
        registration(mpan(), UserRole::ImportSupplier, SUPPLIER2, at),
    ]
}

#[test]
fn a_batch_applies_change_by_change_and_each_change_is_judged_against_the_state_before_it() {
    let at = T0 + 1000;
    let before = registry();
    let batch = change_of_supplier(at);
    let (after, events) = apply_batch(&before, &batch).unwrap();
    assert_eq!(
        events,
        vec![DccEvent::ChangeOfSupplier {
            device: device_id(ESME),
            mpxn: mpan(),
            role: UserRole::ImportSupplier,
            outgoing: vec![user(SUPPLIER)],
            incoming: user(SUPPLIER2),
        }]
    );
    // Judged as a whole against `before`, the new registration would see no outgoing
    // supplier change: the end comes first and the add is judged after it.
    assert_eq!(events_for_change(&before, &batch[0]), vec![]);
    let registered: Vec<_> = after
        .registered_at(mpan(), UserRole::ImportSupplier, at)
        .collect();
    assert_eq!(registered, vec![user(SUPPLIER2)]);
    let expected: Vec<_> = after_change_of_supplier(at)
        .registered_at(mpan(), UserRole::ImportSupplier, at)
        .collect();
    assert_eq!(registered, expected);
}

#[test]
fn a_batch_with_a_change_that_does_not_apply_gives_its_error_and_nothing_else() {
    let mut batch = change_of_supplier(T0 + 1000);
    batch.push(Change::SetDeviceStatus {
        device: device_id("00-DB-12-34-56-78-90-FF"),
        status: DeviceStatus::Suspended,
    });
    assert_eq!(
        apply_batch(&registry(), &batch).err(),
        Some(ChangeError::UnknownDevice(device_id(
            "00-DB-12-34-56-78-90-FF"
        )))
    );
}

#[test]
fn the_mark_waits_for_the_oldest_batch_with_a_copy_to_go() {
    let mut p = ChangeProgress::default();
    assert_eq!(p.mark(), None);
    // Batch 1: alert 10 with two copies, one held by the throttle.
    p.begin(1);
    p.owe(1, 10, 2);
    p.sent(10);
    p.end(1);
    assert_eq!(p.mark(), None);
    // Batch 2: alert 20, one copy, out at once; batch 3 raised nothing routable.
    p.begin(2);
    p.owe(2, 20, 1);
    p.sent(20);
    p.end(2);
    p.begin(3);
    p.owe(3, 30, 0);
    p.end(3);
    assert_eq!(p.mark(), None, "batch 1 still has a held copy");
    p.sent(99); // another kind of alert: no effect
    assert_eq!(p.mark(), None);
    // The summary covering alert 10 goes: batches 1 to 3 are done.
    p.sent(10);
    assert_eq!(p.mark(), Some(Mark { seq: 3, batches: 3 }));
    assert_eq!(p.mark(), None, "a mark is handed out once");
    // A batch being raised holds the mark back even before it owes anything.
    p.begin(5);
    assert_eq!(p.mark(), None);
    p.end(5);
    assert_eq!(p.mark(), Some(Mark { seq: 5, batches: 1 }));
}

proptest! {
    /// Batches with alerts of some copies each, the copies sent in any order: every mark
    /// handed out covers only batches with nothing left to go, marks rise, and once everything
    /// is sent the mark reaches the last batch and has counted every batch once.
    #[test]
    fn the_mark_never_passes_a_batch_with_copies_to_go(
        batches in prop::collection::vec(prop::collection::vec(0..4usize, 0..4), 1..8),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..64),
    ) {
        let mut p = ChangeProgress::default();
        // Copies still to go, per (batch, alert).
        let mut left: Vec<(u64, u64, usize)> = Vec::new();
        let mut next_alert = 0u64;
        let (mut last_mark, mut counted) = (0u64, 0usize);
        let mut check = |p: &mut ChangeProgress, left: &[(u64, u64, usize)]| -> Result<(), TestCaseError> {
            if let Some(m) = p.mark() {
                prop_assert!(m.seq > last_mark);
                prop_assert!(left.iter().all(|(b, _, n)| *n == 0 || *b > m.seq));
                last_mark = m.seq;
                counted += m.batches;
            }
            Ok(())
        };
        let mut order = order.into_iter();
        for (i, alerts) in batches.iter().enumerate() {
            let seq = i as u64 + 1;
            p.begin(seq);
            for copies in alerts {
                next_alert += 1;
                p.owe(seq, next_alert, *copies);
                left.push((seq, next_alert, *copies));
            }
            p.end(seq);
            // Some copies go now, in an arbitrary order; the rest later.
            if let Some(ix) = order.next() {
                let open: Vec<usize> = (0..left.len()).filter(|k| left[*k].2 > 0).collect();
                if !open.is_empty() {
                    let k = open[ix.index(open.len())];
                    left[k].2 -= 1;
                    p.sent(left[k].1);
                }
            }
            check(&mut p, &left)?;
        }
        for ix in order {
            let open: Vec<usize> = (0..left.len()).filter(|k| left[*k].2 > 0).collect();
            if open.is_empty() {
                break;
            }
            let k = open[ix.index(open.len())];
            left[k].2 -= 1;
            p.sent(left[k].1);
            check(&mut p, &left)?;
        }
        for k in 0..left.len() {
            while left[k].2 > 0 {
                left[k].2 -= 1;
                p.sent(left[k].1);
                check(&mut p, &left)?;
            }
        }
        check(&mut p, &left)?;
        prop_assert_eq!(last_mark, batches.len() as u64);
        prop_assert_eq!(counted, batches.len());
    }
}
