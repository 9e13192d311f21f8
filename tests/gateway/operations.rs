//! The operators' view end to end: `/metrics` after mixed traffic, the dashboard and alerting
//! rules naming only metrics that exist, the audit trail (`dccgw audit verify` on an intact trail,
//! a flipped byte, a SIGKILL mid-write) and the reports read from it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dccgw::config::Config;
use dccgw::demo::{example_request_xml, DEMO_ESME};
use time::OffsetDateTime;

use crate::support::{self, element, post, TestGateway};

const BIN: &str = env!("CARGO_BIN_EXE_dccgw");
const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
const OPERATOR: &str = "90-B3-D5-1F-30-02-00-00";
const SUPPLIER2: &str = "90-B3-D5-1F-30-03-00-00";

/// Counters that rise across the whole test binary (microseconds since 1970, then +1 each).
fn counter() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 / 1000;
    NEXT.fetch_max(now, Ordering::SeqCst);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// A signed 4.1.1 read of the demo meter as `originator`, from the demo User `user`.
fn signed_read(certs: &Path, user: &str, originator: &str) -> Vec<u8> {
    let xml = example_request_xml(originator, DEMO_ESME, counter());
    let dir = certs.join("users").join(user);
    dccgw::tools::sign(
        xml.as_bytes(),
        &dir.join("xml-sign.key.pem"),
        &dir.join("xml-sign.pem"),
        None,
    )
    .unwrap()
    .into_bytes()
}

async fn read(gw: &TestGateway, user: &str, originator: &str) -> String {
    let body = signed_read(&gw.certs(), user, originator);
    let url = format!("{}/api/v1/serviceS", gw.base());
    let (_, answer) = post(&gw.client(user), &url, body).await;
    element(&answer, "ResponseCode")
        .unwrap_or("none")
        .to_owned()
}

/// 5 reads accepted as IS (class A), 3 as ED (class B), 2 refused E4, one refused for its content
/// type (before parsing), and one TLS handshake without a client certificate: 11 audit records.
async fn mixed_traffic(gw: &TestGateway) {
    for _ in 0..5 {
        assert_eq!(read(gw, "supplier", SUPPLIER).await, "I99");
    }
    for _ in 0..3 {
        assert_eq!(read(gw, "network-operator", OPERATOR).await, "I99");
    }
    for _ in 0..2 {
        assert_eq!(read(gw, "supplier2", SUPPLIER2).await, "E4");
    }
    let r = gw
        .client("supplier2")
        .post(format!("{}/api/v1/serviceS", gw.base()))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let anonymous = support::client_with(&gw.certs(), None);
    assert!(anonymous
        .post(format!("{}/api/v1/serviceS", gw.base()))
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn metrics_after_mixed_traffic_count_every_family() {
    let gw = support::start("").await;
    mixed_traffic(&gw).await;
    let m = gw.metrics().await;
    let expected = [
        r#"dccgw_requests_total{class="A",code="I99",role="IS",service="send",srv="4.1.1"} 5"#,
        r#"dccgw_requests_total{class="B",code="I99",role="ED",service="send",srv="4.1.1"} 3"#,
        r#"dccgw_requests_total{class="none",code="E4",role="none",service="send",srv="4.1.1"} 2"#,
        r#"dccgw_requests_total{class="none",code="E40",role="none",service="send",srv="unknown"} 1"#,
        r#"dccgw_request_duration_seconds_count{outcome="accepted",service="send"} 8"#,
        r#"dccgw_request_duration_seconds_count{outcome="refused",service="send"} 3"#,
        r#"dccgw_delivery_failed_attempts_total{reason="connect"} "#,
        r#"process_resident_memory_bytes "#,
        r#"dccgw_request_refusals_total{reason="not_registered"} 2"#,
        r#"dccgw_request_refusals_total{reason="content_type"} 1"#,
        r#"dccgw_request_stage_duration_seconds_count{stage="parse"} 10"#,
        r#"dccgw_request_stage_duration_seconds_count{stage="verify"} 10"#,
        r#"dccgw_request_stage_duration_seconds_count{stage="authorize"} 8"#,
        r#"dccgw_request_stage_duration_seconds_count{stage="replay"} 8"#,
        r#"dccgw_request_stage_duration_seconds_count{stage="sign"} 11"#,
        r#"dccgw_request_stage_duration_seconds_count{stage="dispatch"} 8"#,
        // Every answer waits for its audit record, the one refused before the parser (415) too.
        r#"dccgw_request_stage_duration_seconds_count{stage="audit"} 11"#,
        r#"dccgw_tls_handshake_failures_total{reason="no_client_certificate"} 1"#,
        r#"dccgw_cache_entries{cache="users"} 4"#,
        r#"dccgw_cache_entries{cache="devices"} 7"#,
        r#"dccgw_cache_entries{cache="registrations"} 4"#,
        r#"dccgw_cache_entries{cache="user_certs"} 4"#,
        r#"dccgw_cache_reloads_total{cache="devices"} 0"#,
        r#"dccgw_audit_write_failures_total 0"#,
        r#"dccgw_delivery_queue_messages 0"#,
        r#"dccgw_delivery_oldest_undelivered_age_seconds 0"#,
        r#"dccgw_delivery_attempts_total{kind="response",outcome="delivered"} 0"#,
        r#"dccgw_delivery_retries_total 0"#,
        r#"dccgw_delivery_dead_letters_total 0"#,
        r#"dccgw_alerts_received_total{kind="device"} 0"#,
        r#"dccgw_alerts_sent_total{kind="dcc"} 0"#,
        r#"dccgw_alerts_throttled_total{kind="device"} 0"#,
        r#"dccgw_connections_open "#,
        r#"dccgw_build_info{version=""#,
    ];
    for line in expected {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }
    let ok = m
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"dccgw_tls_handshake_duration_seconds_count{outcome="ok"} "#)
        })
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(ok >= 3, "one connection per client at least: {ok}");
    let now = OffsetDateTime::now_utc().unix_timestamp() as f64;
    for cert in dccgw::metrics::CERTIFICATES {
        let prefix =
            format!(r#"dccgw_certificate_expiry_timestamp_seconds{{certificate="{cert}"}} "#);
        let at: f64 = m
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no expiry for {cert}"));
        assert!(at > now, "{cert} expired?");
    }
    // No User ID, device ID or RequestID reaches a label.
    for id in [SUPPLIER, OPERATOR, DEMO_ESME] {
        assert!(!m.contains(id), "{id} in a label");
    }
    gw.running.shutdown().await;
}

/// Every `dccgw_` series name the alerting rules and the dashboard use.
fn names_in_deploy() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let files = [
        root.join("prometheus/dccgw-rules.yml"),
        root.join("grafana/dccgw-dashboard.json"),
    ];
    let mut names = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("dccgw_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            // The bare prefix is prose ("every dccgw_ metric"), not a name.
            if end > "dccgw_".len() {
                names.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

#[tokio::test]
async fn every_metric_the_rules_and_dashboard_name_exists_after_traffic() {
    let names = names_in_deploy();
    assert!(names.len() > 15, "{names:?}");
    let gw = support::start("").await;
    mixed_traffic(&gw).await;
    let m = gw.metrics().await;
    let series: BTreeSet<&str> = m
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !series.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "not on /metrics: {missing:?}");
    gw.running.shutdown().await;
}

#[test]
fn the_alerting_rules_load_in_promtool() {
    if !support::have_tool("promtool") {
        return;
    }
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/dccgw-rules.yml");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dccgw audit verify DIR`: exit code and standard output.
fn verify(dir: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

/// The record count `verify` printed for an intact trail.
fn records(verify_output: &str) -> u64 {
    verify_output
        .split("intact: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an intact trail: {verify_output}"))
}

fn audit_files(dir: &Path) -> Vec<PathBuf> {
    let mut f: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    f.sort();
    f
}

#[tokio::test]
async fn the_trail_verifies_a_flipped_byte_is_named_and_reports_count_the_traffic() {
    let gw = support::start("").await;
    mixed_traffic(&gw).await;
    gw.running.shutdown().await;
    let dir = gw.dir.path().join("state/audit");
    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
    assert_eq!(records(&out), 11, "{out}");

    // The usage and performance reports for this month, from the trail alone.
    let month = OffsetDateTime::now_utc();
    let month = format!("{}-{:02}", month.year(), u8::from(month.month()));
    let report = |kind: &str| -> serde_json::Value {
        let out = Command::new(BIN)
            .args([
                "report", kind, "--format", "json", "--month", &month, "--config",
            ])
            .arg(gw.dir.path().join("dccgw.toml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let usage = report("usage");
    assert_eq!(usage["users"][SUPPLIER]["requests"], 5);
    assert_eq!(usage["users"][OPERATOR]["by_srv"]["4.1.1"]["accepted"], 3);
    assert_eq!(usage["users"][SUPPLIER2]["requests"], 3);
    assert_eq!(usage["users"][SUPPLIER2]["accepted"], 0);
    assert_eq!(
        usage["users"][SUPPLIER2]["by_srv"]["unknown"]["requests"],
        1
    );
    let performance = report("performance");
    // Eight accepted on-demand device reads, whose Service Responses are not delivered (yet).
    assert_eq!(performance["families"]["4"]["responses"], 8);
    assert_eq!(performance["total"]["undelivered"], 8);
    assert_eq!(performance["refused"], 3);

    // One byte flipped in the sixth record (line 7, after the file's opening line).
    let file = audit_files(&dir).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let at = starts[6] + (starts[7] - starts[6]) / 2;
    bytes[at] ^= 0x04;
    std::fs::write(&file, bytes).unwrap();
    let (code, out) = verify(&dir);
    assert_eq!(code, 1, "{out}");
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(out.contains("BROKEN") && out.contains(&name), "{out}");
    assert!(
        out.contains(&format!("line 7 (byte offset {}, sequence 6)", starts[6])),
        "{out}"
    );
}

/// A gateway process killed (SIGKILL) while requests are being answered leaves a trail that
/// verifies, holding a record for every answer that left; restarted, it carries the chain on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_write_leaves_a_trail_that_verifies() {
    let (dir, config) = support::prepare_dir("", |_| {});
    let port = support::free_port();
    let admin = support::free_port();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("DCCGW_LISTEN__ADDR", format!("127.0.0.1:{port}"))
        .env("DCCGW_LISTEN__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("http://127.0.0.1:{admin}/readyz"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let certs = dir.path().join("certs");
    let answered = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for (user, originator) in [("supplier", SUPPLIER), ("network-operator", OPERATOR)] {
        for _ in 0..3 {
            let pem = std::fs::read(certs.join("users").join(user).join("client.pem")).unwrap();
            let client =
                support::client_with(&certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
            let (certs, answered) = (certs.clone(), answered.clone());
            let url = format!("https://localhost:{port}/api/v1/serviceS");
            senders.push(tokio::spawn(async move {
                loop {
                    let body = signed_read(&certs, user, originator);
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/xml")
                        .body(body)
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    if response.bytes().await.is_err() {
                        break;
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::SeqCst) < 60 {
        assert!(Instant::now() < deadline, "too few answers");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let answered = answered.load(Ordering::SeqCst);

    // The chain verifies as the kill left it; the records of answers whose copy had not yet
    // reached the trail are in the request log, and the next start copies them.
    let trail = dir.path().join("state/audit");
    let (code, out) = verify(&trail);
    assert_eq!(code, 0, "{out}");
    let before = records(&out);

    // Started again: the torn tail (if any) is cut, and the chain goes on.
    let config = Config::load(&config, Vec::new()).unwrap();
    let gw = TestGateway {
        running: dccgw::server::start(&config).await.unwrap(),
        dir,
    };
    assert_eq!(read(&gw, "supplier", SUPPLIER).await, "I99");
    gw.running.shutdown().await;
    let (code, out) = verify(&trail);
    assert_eq!(code, 0, "{out}");
    // One more request record; the commands pending at the kill are answered and delivered now,
    // so delivery attempts may add records of their own.
    assert!(records(&out) > before, "{out}");
    // Every answer before the kill has its record now, and the one after it.
    let requests = request_records(&trail);
    assert!(
        requests > answered,
        "{answered} answers before the kill and one after, but {requests} request records: {out}"
    );
    assert!(!out.contains("Torn tail"), "{out}");
}

/// The request decisions a trail records.
fn request_records(dir: &Path) -> u64 {
    let mut n = 0;
    dccgw::audit::read_trail(dir, |_, e| {
        n += u64::from(matches!(e, dccgw::audit::AuditEvent::Request(_)));
    })
    .unwrap();
    n
}
