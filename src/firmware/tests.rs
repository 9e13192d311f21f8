//! The distribution journal: what is in progress survives a reopen (hubs owed, hubs answered,
//! finished but not reported), a reported distribution does not, outcomes count once, and the
//! bound holds.

use super::*;
use crate::duis::services::FirmwareWarning;

fn id(s: &str) -> DeviceId {
    s.parse().unwrap()
}

const HUB1: &str = "00-DB-12-34-56-78-90-A2";
const HUB2: &str = "00-DB-12-34-56-78-91-A2";
const M1: &str = "00-DB-12-34-56-78-90-A0";
const M2: &str = "00-DB-12-34-56-78-91-A0";

fn distribution(counter: u64) -> Distribution {
    Distribution {
        request_id: format!("90-B3-D5-1F-30-01-00-00:90-B3-D5-1F-30-00-00-02:{counter}")
            .parse()
            .unwrap(),
        srv: "11.1".parse().unwrap(),
        version: "0102".into(),
        warning: FirmwareWarning {
            not_commissioned: vec![id("00-DB-12-34-56-78-92-A0")],
            ..FirmwareWarning::default()
        },
        hubs: vec![
            HubTransfer {
                hub: id(HUB1),
                devices: vec![id(M1)],
                delivered: None,
            },
            HubTransfer {
                hub: id(HUB2),
                devices: vec![id(M2)],
                delivered: None,
            },
        ],
        at: 1_700_000_000,
    }
}

#[tokio::test]
async fn progress_survives_a_reopen_and_ends_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = distribution(7);
    let rid = d.request_id;
    {
        let fw = Distributions::open(dir.path()).unwrap();
        fw.start(d.clone()).await.unwrap();
        assert!(fw.in_progress(id(M1)) && fw.in_progress(id(M2)));
        assert!(!fw.in_progress(id(HUB1)));
        // The first hub fails; its outcome counts once.
        let h1 = hub_request_id(&rid, id(HUB1));
        assert_eq!(h1.target, id(HUB1));
        assert_eq!(distribution_id(&h1), rid);
        assert_eq!(fw.hub_done(&h1, false).await.unwrap(), None);
        assert_eq!(fw.hub_done(&h1, true).await.unwrap(), None);
        assert!(fw.finished().is_empty());
    }
    // Reopened: one hub owed, nothing finished.
    let fw = Distributions::open(dir.path()).unwrap();
    assert_eq!(fw.len(), 1);
    assert!(fw.finished().is_empty());
    let h2 = hub_request_id(&rid, id(HUB2));
    let finished = fw.hub_done(&h2, true).await.unwrap().unwrap();
    assert!(finished.is_finished());
    assert_eq!(finished.undelivered(), vec![id(M1)]);
    assert_eq!(finished.warning, d.warning);
    drop(fw);
    // Reopened before the report: finished, to be reported again.
    let fw = Distributions::open(dir.path()).unwrap();
    assert_eq!(fw.finished(), vec![finished.clone()]);
    fw.reported(&rid).await.unwrap();
    assert!(fw.is_empty() && !fw.in_progress(id(M1)));
    drop(fw);
    // Reported: gone for good, and outcomes for it change nothing.
    let fw = Distributions::open(dir.path()).unwrap();
    assert!(fw.is_empty());
    assert_eq!(fw.hub_done(&h2, true).await.unwrap(), None);
}

#[tokio::test]
async fn at_most_max_live_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fw = Distributions::open(dir.path()).unwrap();
    for counter in 0..MAX_LIVE as u64 {
        fw.start(distribution(counter)).await.unwrap();
    }
    assert!(!fw.has_room());
    assert!(matches!(
        fw.start(distribution(u64::MAX)).await,
        Err(StartError::Full)
    ));
    fw.reported(&distribution(0).request_id).await.unwrap();
    assert!(fw.has_room());
    // A device in two distributions stays busy until both end.
    assert!(fw.in_progress(id(M1)));
}

#[test]
fn a_record_that_does_not_read_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firmware.journal");
    crate::store::rewrite(&path, std::iter::once(b"{\"record\":\"other\"}".to_vec())).unwrap();
    assert!(matches!(
        Distributions::open(dir.path()),
        Err(OpenError::Record { .. })
    ));
}
