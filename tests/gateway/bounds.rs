//! Bounds on what a peer controls: body size (declared or streamed), XML depth, DOCTYPE. Each
//! is refused with its code, and repeating them does not grow the process.

use crate::support::{self, element};

const SEND: &str = "/api/v1/serviceS";

async fn post(client: &reqwest::Client, url: &str, body: reqwest::Body) -> (u16, String) {
    let r = client
        .post(url)
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn deep(levels: usize) -> Vec<u8> {
    let mut s = String::from(
        r#"<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">"#,
    );
    s.push_str(&"<a>".repeat(levels));
    s.push_str(&"</a>".repeat(levels));
    s.push_str("</sr:Request>");
    s.into_bytes()
}

fn streamed(total: usize) -> reqwest::Body {
    // 64 KiB chunks with no Content-Length: the server must stop reading at its bound.
    let chunk = vec![b'<'; 64 * 1024];
    let chunks = (0..total / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn oversized_deep_and_doctype_requests_are_refused_without_growth() {
    let gw = support::start("").await;
    let client = gw.client("supplier");
    let url = format!("{}{SEND}", gw.base());
    let ten_mb = vec![b' '; 10 * 1024 * 1024];

    // Warm up once, so that first-use allocations do not count as growth.
    let (status, _) = post(&client, &url, ten_mb.clone().into()).await;
    assert_eq!(status, 413);
    let before = support::rss_kib();
    for _ in 0..10 {
        let (status, answer) = post(&client, &url, ten_mb.clone().into()).await;
        assert_eq!(
            (status, element(&answer, "ResponseCode")),
            (413, Some("E42"))
        );
        let (status, answer) = post(&client, &url, streamed(10 * 1024 * 1024)).await;
        assert_eq!(
            (status, element(&answer, "ResponseCode")),
            (413, Some("E42")),
            "{answer}"
        );
        let (status, answer) = post(&client, &url, deep(10_000).into()).await;
        assert_eq!(
            (status, element(&answer, "ResponseCode")),
            (400, Some("E42")),
            "{answer}"
        );
        let doctype = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">&lol2;</sr:Request>"#;
        let (status, answer) = post(&client, &url, doctype.to_vec().into()).await;
        assert_eq!(
            (status, element(&answer, "ResponseCode")),
            (400, Some("E41"))
        );
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        let (status, answer) = post(&client, &url, xxe.to_vec().into()).await;
        assert_eq!(
            (status, element(&answer, "ResponseCode")),
            (400, Some("E41"))
        );
        assert!(!answer.contains("root:"), "{answer}");
    }
    let grown = support::rss_kib().saturating_sub(before);
    // The test client itself holds 10 MB bodies while sending them; the gateway must not keep
    // any. 64 MiB is far below what keeping even the refused bodies (200 MB) would cost.
    assert!(grown < 64 * 1024, "resident set grew by {grown} KiB");
    gw.running.shutdown().await;
}
