//! Replay: a counter of 0 is taken once (also across a restart); a counter at the top of the
//! range is refused (it would lock its User out), and an operator can set a mark back.

use crate::support::TestGateway;
use crate::{admin_post, counter, read_with, start, SUPPLIER};

async fn read(gw: &TestGateway, n: u64) -> String {
    read_with(gw, &gw.client("supplier"), "supplier", n).await.1
}

#[tokio::test]
async fn a_counter_of_zero_is_not_a_free_pass() {
    let gw = start("", |_| {}).await;
    assert_eq!(read(&gw, 0).await, "I99");
    assert_eq!(read(&gw, 0).await, "E57");
    assert_eq!(read(&gw, 0).await, "E57");
    let gw = gw.restart().await;
    assert_eq!(read(&gw, 0).await, "E57");
    assert_eq!(read(&gw, 1).await, "I99");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_counter_at_the_top_cannot_lock_a_user_out() {
    let gw = start("", |_| {}).await;
    for top in [u64::MAX, u64::MAX - 1, 18_000_000_000_000_000_000] {
        assert_eq!(read(&gw, top).await, "E43", "{top}");
    }
    // The User carries on with its own counters.
    assert_eq!(read(&gw, counter()).await, "I99");

    // A careless client that stamped nanoseconds once, then went back to microseconds: the
    // operator sets the mark back.
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    assert_eq!(read(&gw, nanos).await, "I99");
    assert_eq!(read(&gw, counter()).await, "E57");
    let (status, text) = admin_post(
        &gw,
        "/admin/v1/replay/reset",
        format!(r#"{{"user":"{SUPPLIER}","counter":0}}"#),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(read(&gw, counter()).await, "I99");
    // Without the token nothing changes.
    let r = reqwest::Client::new()
        .post(format!("{}/admin/v1/replay/reset", gw.admin()))
        .body(format!(r#"{{"user":"{SUPPLIER}","counter":0}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    gw.running.shutdown().await;
}
