use super::*;

const HOUR: i64 = 3_600;
const T0: i64 = 1_800_000_000 - 1_800_000_000 % HOUR;

fn one(at: i64) -> Tallied {
    Tallied::one(
        "90-B3-D5-1F-30-01-00-00".parse().unwrap(),
        "IS".parse().unwrap(),
        "4.1.1".parse().unwrap(),
        at,
    )
}

#[tokio::test]
async fn records_come_back_merged_per_minute_and_old_hours_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counts");
    let (log, read) = CountLog::open(&path, T0).unwrap();
    assert!(read.is_empty());
    // Three in the first minute, one a minute later, one in the next hour.
    for at in [T0, T0 + 10, T0 + 59, T0 + 60, T0 + HOUR] {
        log.append(&one(at)).await.unwrap();
    }
    drop(log);

    let (_log, read) = CountLog::open(&path, T0 + HOUR + 1).unwrap();
    let got: Vec<(i64, u32)> = read.iter().map(|t| (t.at(), t.n)).collect();
    assert_eq!(got, [(T0, 3), (T0 + 60, 1), (T0 + HOUR, 1)]);
    // The first hour was rewritten as two records.
    let first = path.join(format!("{}.journal", T0 / HOUR));
    assert_eq!(read_records(&first).unwrap().len(), 2);

    // A day and an hour later the first hour is gone, the second is still in the day's window.
    let (_log, read) = CountLog::open(&path, T0 + 25 * HOUR).unwrap();
    let got: Vec<(i64, u32)> = read.iter().map(|t| (t.at(), t.n)).collect();
    assert_eq!(got, [(T0 + HOUR, 1)]);
    assert!(!first.exists());
}
