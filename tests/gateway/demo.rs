//! The README's run command, end to end: `dccgw demo` starts, prints a `dccgw sign | curl` line,
//! and that line, run by a shell with the real `curl`, gets an `I99`; so do its two printed steps
//! of a critical request (a Transform answered `I0` with the pre-command, then `dccgw
//! sign-precommand | curl`). SIGTERM then stops it cleanly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;

#[test]
fn the_printed_curl_gets_an_acknowledgement() {
    if !support::have_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args(["demo", "--port", "0", "--admin-port", "0", "--certs"])
        .arg(dir.path().join("certs"))
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let rx = support::lines(stdout);
    // A bound against a hang, not a speed check: a start under a loaded CI suite (keys, the
    // registers, the hub) can take tens of seconds.
    let deadline = Instant::now() + Duration::from_secs(180);
    let next_line = |what: &str, wanted: &dyn Fn(&str) -> bool| loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the demo printed no {what} line"));
        if wanted(&line) {
            break line;
        }
    };
    let curl = next_line("curl", &|l| l.contains(" sign ") && l.contains("| curl "));
    let transform = next_line("Transform", &|l| l.contains("/api/v1/serviceT"));
    let signed = next_line("sign-precommand", &|l| l.contains(" sign-precommand "));
    let run = |line: &str| {
        let out = Command::new("sh").arg("-c").arg(line).output().unwrap();
        assert!(
            out.status.success(),
            "{line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let body = run(&curl);
    assert!(
        body.contains("<sr:ResponseCode>I99</sr:ResponseCode>"),
        "{body}"
    );
    // The Transform's answer goes to a file the next line reads.
    run(&transform);
    let file = transform.rsplit("> ").next().unwrap().trim();
    let answer = std::fs::read_to_string(file).unwrap();
    assert!(
        answer.contains("<sr:ResponseCode>I0</sr:ResponseCode>"),
        "{answer}"
    );
    assert!(answer.contains("<sr:PreCommand>"), "{answer}");
    let body = run(&signed);
    assert!(
        body.contains("<sr:ResponseCode>I99</sr:ResponseCode>"),
        "{body}"
    );
    let pid = demo.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

/// `dccgw demo --instances 3`: the banner gives HAProxy's URL first, and a signed read sent
/// there is acknowledged by one of the instances behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_demo_answers_through_haproxy() {
    let servers = [("haproxy", "-v"), ("nats-server", "--version")];
    let initdb =
        std::path::Path::new("/usr/lib/postgresql").is_dir() || support::have_tool("initdb");
    if !initdb || !servers.iter().all(|(t, v)| dccgw::testing::have_tool(t, v)) {
        assert!(
            !dccgw::testing::in_ci(),
            "CI=true but a cluster server is missing"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args([
            "demo",
            "--instances",
            "3",
            "--port",
            "0",
            "--admin-port",
            "0",
        ])
        .args(["--receiver-port", "0", "--certs"])
        .arg(&certs)
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = support::lines(demo.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(90);
    let port: u16 = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the demo printed no HAProxy line");
        if let Some(rest) = line.trim_start().strip_prefix("HAProxy") {
            let url = rest.split_whitespace().next().unwrap();
            break url.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    let counter = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    let supplier = "90-B3-D5-1F-30-01-00-00";
    let xml = dccgw::demo::example_request_xml(supplier, dccgw::demo::DEMO_ESME, counter);
    let user = certs.join("users/supplier");
    let body = dccgw::tools::sign(
        xml.as_bytes(),
        &user.join("xml-sign.key.pem"),
        &user.join("xml-sign.pem"),
        None,
    )
    .unwrap();
    let pem = std::fs::read(user.join("client.pem")).unwrap();
    let client = support::client_with(&certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let url = format!("https://localhost:{port}/api/v1/serviceS");
    let (_, answer) = support::post(&client, &url, body.into_bytes()).await;
    assert_eq!(
        support::element(&answer, "ResponseCode"),
        Some("I99"),
        "{answer}"
    );
    let pid = demo.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let stopped = Instant::now() + Duration::from_secs(30);
    while demo.try_wait().unwrap().is_none() {
        assert!(Instant::now() < stopped, "the demo did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}
