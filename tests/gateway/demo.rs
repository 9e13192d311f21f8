//! The README's run command, end to end: `dccgw demo` starts, prints a `dccgw sign | curl` line,
//! and that line, run by a shell with the real `curl`, gets an `I99`. SIGTERM then stops it cleanly.

use std::io::{BufRead, BufReader};
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
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let curl = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the demo printed no curl line");
        if line.contains(" sign ") && line.contains("| curl ") {
            break line;
        }
    };
    let out = Command::new("sh").arg("-c").arg(&curl).output().unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{curl}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
