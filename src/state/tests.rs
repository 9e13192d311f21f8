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

/// The demo's register and registration files in `dir`, and where they are.
pub(crate) fn demo_files(dir: &std::path::Path) -> Files {
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    crate::demo::write_registers(dir, None).unwrap();
    Files {
        users: dir.join("users.csv"),
        devices: dir.join("devices.csv"),
        registrations: dir.join("registrations.csv"),
        user_certs: dir.join("certs"),
        digital_signing: None,
        trust_anchors: Vec::new(),
        crls: Vec::new(),
        changes: dir.join("changes.journal"),
        user_changes: dir.join("user-changes.journal"),
    }
}

const STRANGER: &str = "90-B3-D5-1F-30-09-00-00";

#[tokio::test]
async fn registrations_naming_a_user_not_in_the_register_stop_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let files = demo_files(dir.path());
    let mut regs = std::fs::read_to_string(&files.registrations).unwrap();
    regs.push_str(&format!(
        "{},IS,{STRANGER},2020-01-01T00:00:00Z,\n",
        crate::demo::DEMO_MPAN
    ));
    std::fs::write(&files.registrations, regs).unwrap();
    match load::open(&files).await {
        Err(LoadError::UnregisteredUser { user, .. }) => assert_eq!(user.to_string(), STRANGER),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a registration of a User not in the register was taken"),
    }
}

#[tokio::test]
async fn a_registration_change_naming_a_user_not_in_the_register_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = demo_files(dir.path());
    let (loaded, _) = load::open(&files).await.unwrap();
    // The replies task's end of the DCC-Alert channel: a registration adds none.
    let (raised, _replies) = tokio::sync::mpsc::channel(4);
    let state = State::new(loaded, Metrics::new(), raised);
    let add = |user: &str| Change::AddRegistration {
        mpxn: crate::demo::DEMO_MPAN.parse().unwrap(),
        registration: crate::registry::Registration {
            role: crate::domain::UserRole::ImportSupplier,
            user: user.parse().unwrap(),
            from: 2_000_000_000,
            to: None,
        },
    };
    let before = state.registry().registration_count();
    match state.apply_changes(&[add(STRANGER)]).await {
        Err(ApplyError::UnregisteredUser(user)) => assert_eq!(user.to_string(), STRANGER),
        other => panic!("{:?}", other.err()),
    }
    assert_eq!(state.registry().registration_count(), before);
    // A User in the register is taken.
    state
        .apply_changes(&[add("90-B3-D5-1F-30-03-00-00")])
        .await
        .unwrap();
    assert_eq!(state.registry().registration_count(), before + 1);
}

/// The dated rule sets' journal: versions added are back after a reopen, in order; a torn last
/// line (a write that never finished, so never acknowledged) is passed over; a whole line that
/// is not a version stops the start, named by its line.
#[tokio::test]
async fn journalled_rule_versions_are_back_after_a_reopen_and_a_torn_tail_is_passed_over() {
    use crate::rules::{RuleFile, RuleSet};
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join(rules::JOURNAL_FILE);
    let base = || RuleSet::base(crate::catalogue::Catalogue::builtin().clone(), Vec::new());
    let version = |name: &str, at: &str| {
        RuleFile::parse(&format!(
            r#"{{"version": "{name}", "effective_from": "{at}",
                "srvs": {{"4.1.1": {{"on_demand": false}}}}}}"#
        ))
        .unwrap()
    };
    let now = 1_800_000_000; // 2027-01-15
    let open = Rules::open(base(), &[], &journal).unwrap();
    open.add(&version("june", "2027-06-01T00:00:00Z"), now)
        .await
        .unwrap();
    open.add(&version("july", "2027-07-01T00:00:00Z"), now)
        .await
        .unwrap();
    // Not after the latest: refused, and not journalled.
    assert!(open
        .add(&version("may", "2027-05-01T00:00:00Z"), now)
        .await
        .is_err());

    // A write that stopped half-way.
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str(r#"{"version": "aug", "effective_fr"#);
    std::fs::write(&journal, &text).unwrap();
    let reopened = Rules::open(base(), &[], &journal).unwrap();
    let names: Vec<String> = reopened
        .book()
        .versions()
        .map(|s| s.version.clone())
        .collect();
    assert_eq!(names, ["base", "june", "july"]);
    // 2027-05-22, 2027-06-03, 2027-07-07.
    assert_eq!(reopened.book().in_force(1_811_000_000).version, "base");
    assert_eq!(reopened.book().in_force(1_812_000_000).version, "june");
    assert_eq!(reopened.book().in_force(1_815_000_000).version, "july");

    // A complete line that is not a version: the start stops, naming the line.
    text.push_str("\n{\"version\": 7}\n");
    std::fs::write(&journal, &text).unwrap();
    assert!(matches!(
        Rules::open(base(), &[], &journal),
        Err(rules::RulesLoadError::Invalid { .. })
    ));
}
