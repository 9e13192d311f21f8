//! The audit trail: an answer never leaves without its record, made durable in the request log
//! with the request's decision and copied into the trail after. With the trail's disk full the
//! copies fail: the gateway takes no further request's effects (refused `E100`), and `/readyz`
//! says why; once the disk takes writes again it is ready by itself. A directory
//! that cannot be written at all stops the start.

use std::path::Path;
use std::time::Duration;

use crate::support::{self, TestGateway};
use crate::{counter, read_with, start};

/// The audit file the writer opens next (today's, index 0, and tomorrow's in case the day
/// turns), made a link to `/dev/full`: every write to it fails as on a full disk. The writer
/// removes a file it could not start, so this is done again after each failure.
fn fill_disk(audit: &Path) {
    let today = time::OffsetDateTime::now_utc();
    for day in [today, today + time::Duration::days(1)] {
        let ms = day.unix_timestamp() * 1000;
        let name = dccgw::audit::chain::file_name(0, dccgw::audit::chain::day_of(ms));
        let _ = std::os::unix::fs::symlink("/dev/full", audit.join(name));
    }
}

/// Removes the links `fill_disk` made (and only links: a real audit file stays).
fn free_disk(audit: &Path) {
    for entry in std::fs::read_dir(audit).unwrap().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            // The writer may remove a link it failed on meanwhile.
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{e}"),
                _ => {}
            }
        }
    }
}

async fn readyz(gw: &TestGateway) -> (u16, String) {
    let r = reqwest::get(format!("{}/readyz", gw.admin()))
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn no_answer_leaves_without_its_record() {
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIPPED: no /dev/full");
        return;
    }
    let gw = start("", |_| {}).await;
    let audit = gw.dir.path().join("state/audit");
    assert_eq!(readyz(&gw).await.0, 200);
    fill_disk(&audit);
    let client = gw.client("supplier");
    // The answer waits for its record's commit in the request log (with its decision, one
    // fsync), not for the trail's copy of it: it leaves. The copy fails, and that makes the
    // gateway not ready, saying why.
    assert_eq!(
        read_with(&gw, &client, "supplier", counter()).await,
        (200, "I99".into())
    );
    let mut failing = false;
    for _ in 0..100 {
        fill_disk(&audit);
        let (status, why) = readyz(&gw).await;
        if status == 503 {
            assert!(why.contains("audit"), "{why}");
            failing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failing, "still ready with the trail's copies failing");
    // Nothing is taken while the trail fails: the next request is refused (its refusal
    // recorded in the log) and its counter is not burned.
    fill_disk(&audit);
    let next = counter();
    let (status, code) = read_with(&gw, &client, "supplier", next).await;
    assert_eq!(status, 503);
    assert_eq!(code, "E100");
    free_disk(&audit);
    let mut ready = false;
    for _ in 0..50 {
        if readyz(&gw).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "not ready again after the disk came back");
    // The counter refused while the trail failed is still free.
    assert_eq!(read_with(&gw, &client, "supplier", next).await.1, "I99");
    gw.running.shutdown().await;
    // Every answer that left is in the trail, whole.
    let verified = dccgw::audit::verify_dir(&audit).unwrap();
    let files: Vec<_> = std::fs::read_dir(&audit)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(verified.records >= 1, "{verified:?} {files:?}");
}

#[tokio::test]
async fn an_audit_directory_that_cannot_be_written_stops_the_start() {
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIPPED: no /dev/full");
        return;
    }
    let (dir, path) = support::prepare_dir("[audit]\ndir = \"audit\"\n", |dir| {
        std::fs::create_dir_all(dir.join("audit")).unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.join("audit/.dccgw-probe")).unwrap();
    });
    let config = dccgw::config::Config::load(&path, Vec::new()).unwrap();
    match dccgw::server::start(&config).await {
        Ok(_) => panic!("started with an audit directory that cannot be written"),
        Err(e) => assert!(e.to_string().contains("audit"), "{e}"),
    }
    drop(dir);
}
