//! Bounds on what a peer controls: body size (declared or streamed), XML depth, DOCTYPE. Each
//! is refused with its code, and repeating them does not grow the process.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{self, element, post};

const SEND: &str = "/api/v1/serviceS";

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

/// The gateway runs as its own process (`dccgw serve`), so that its resident set is measured
/// apart from the test's.
#[tokio::test]
async fn oversized_deep_and_doctype_requests_are_refused_without_growth() {
    let (dir, config) = support::prepare_dir("", |_| {});
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("DCCGW_LISTEN__ADDR", format!("127.0.0.1:{port}"))
        .env("DCCGW_LISTEN__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("DCCGW_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let ready = format!("http://127.0.0.1:{admin}/readyz");
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(&ready)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the gateway did not become ready");
    let pem = std::fs::read(dir.path().join("certs/users/supplier/client.pem")).unwrap();
    let client = support::client_with(
        &dir.path().join("certs"),
        Some(reqwest::Identity::from_pem(&pem).unwrap()),
    );
    let url = format!("https://localhost:{port}{SEND}");
    let ten_mb = vec![b' '; 10 * 1024 * 1024];

    // Warm up once, so that first-use allocations do not count as growth.
    let (status, _) = post(&client, &url, ten_mb.clone()).await;
    assert_eq!(status, 413);
    let before = support::rss_kib(child.id());
    for _ in 0..10 {
        let (status, answer) = post(&client, &url, ten_mb.clone()).await;
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
        let (status, answer) = post(&client, &url, deep(10_000)).await;
        assert_eq!(
            (status, element(&answer, "ResponseCode")),
            (400, Some("E42")),
            "{answer}"
        );
        let doctype = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">&lol2;</sr:Request>"#;
        let (status, answer) = post(&client, &url, doctype.to_vec()).await;
        assert_eq!(
            (status, element(&answer, "ResponseCode")),
            (400, Some("E41"))
        );
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        let (status, answer) = post(&client, &url, xxe.to_vec()).await;
        assert_eq!(
            (status, element(&answer, "ResponseCode")),
            (400, Some("E41"))
        );
        assert!(!answer.contains("root:"), "{answer}");
    }
    let grown = support::rss_kib(child.id()).saturating_sub(before);
    // Keeping the refused bodies would cost 200 MB; reading even one whole would cost 10 MB.
    // The gateway reads at most its 1 MiB bound per request and keeps nothing.
    assert!(
        grown < 16 * 1024,
        "the gateway's resident set grew by {grown} KiB"
    );
    let _ = child.kill();
    let _ = child.wait();
}
