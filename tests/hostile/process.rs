//! The gateway as its own process (`dccgw serve`), where what is judged is its log, its exit,
//! its signals: early refusals do not grow the log lines of a connection; a log pipe whose
//! reader has gone neither panics the gateway nor stops it answering or shutting down; SIGHUP
//! reloads the certificates; the tools' exit codes tell an I/O error from a verdict.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::support::{self, client_with};
use crate::{counter, SUPPLIER};

const DCCGW: &str = env!("CARGO_BIN_EXE_dccgw");

/// A `dccgw serve` process on free ports, and where its configuration lives.
struct Served {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    admin: u16,
}

impl Served {
    /// Starts `dccgw serve` with `extra` TOML, its standard error going to `stderr`.
    async fn start(extra: &str, stderr: Stdio, prepare: impl FnOnce(&Path)) -> Self {
        let (dir, config) = support::prepare_dir(extra, prepare);
        let (port, admin) = (support::free_port(), support::free_port());
        let child = Command::new(DCCGW)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("DCCGW_LISTEN__ADDR", format!("127.0.0.1:{port}"))
            .env("DCCGW_LISTEN__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("DCCGW_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let served = Self {
            child,
            dir,
            port,
            admin,
        };
        served.wait_ready().await;
        served
    }

    async fn wait_ready(&self) {
        let ready = format!("http://127.0.0.1:{}/readyz", self.admin);
        for _ in 0..300 {
            if reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not become ready");
    }

    fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    fn client(&self, user: &str) -> reqwest::Client {
        let pem = std::fs::read(self.certs().join(format!("users/{user}/client.pem"))).unwrap();
        client_with(
            &self.certs(),
            Some(reqwest::Identity::from_pem(&pem).unwrap()),
        )
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/api/v1/serviceS", self.port)
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits up to 30 s for the process to exit.
    async fn exit(mut self) -> Option<ExitStatus> {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.kill();
        None
    }
}

/// A signed 4.1.1 from the supplier; the answer's code.
async fn read(served: &Served, client: &reqwest::Client) -> String {
    let xml = dccgw::demo::example_request_xml(SUPPLIER, dccgw::demo::DEMO_ESME, counter());
    let body = dccgw::tools::sign(
        xml.as_bytes(),
        &served.certs().join("users/supplier/xml-sign.key.pem"),
        &served.certs().join("users/supplier/xml-sign.pem"),
        None,
    )
    .unwrap();
    let (_, answer) = support::post(client, &served.url(), body).await;
    support::element(&answer, "ResponseCode")
        .unwrap_or("none")
        .to_owned()
}

#[tokio::test]
async fn early_refusals_do_not_grow_a_connections_log_lines() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let served = Served::start("", Stdio::from(log.reopen().unwrap()), |_| {}).await;
    // One HTTP/2 connection, many requests refused before the pipeline (content type).
    let client = served.client("supplier");
    for _ in 0..300 {
        let r = client
            .post(served.url())
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415);
    }
    served.signal("TERM");
    assert!(served.exit().await.is_some_and(|s| s.success()));
    let text = std::fs::read_to_string(log.path()).unwrap();
    let refused: Vec<usize> = text
        .lines()
        .filter(|l| l.contains("Request refused."))
        .map(str::len)
        .collect();
    assert_eq!(refused.len(), 300, "{text}");
    let (first, last) = (refused[0], refused[refused.len() - 1]);
    // The lines are alike: the last is no longer than the first (a growing span would add
    // `role="none"` on every request: 300 of them by the end).
    assert!(last <= first + 16, "first {first} bytes, last {last}");
    assert!(
        text.lines().all(|l| l.len() < 2048),
        "a log line over 2 KiB"
    );
}

#[tokio::test]
async fn a_log_pipe_whose_reader_has_gone_stops_nothing() {
    let served = Served::start("", Stdio::piped(), |_| {}).await;
    let mut served = served;
    // The reader goes away: every log line from now on meets a broken pipe.
    drop(served.child.stderr.take());
    let client = served.client("supplier");
    for _ in 0..20 {
        assert_eq!(read(&served, &client).await, "I99");
    }
    let fresh = served.client("supplier");
    assert_eq!(read(&served, &fresh).await, "I99");
    served.signal("TERM");
    let status = served.exit().await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the gateway did not stop cleanly on SIGTERM: {status:?}"
    );
}

#[tokio::test]
async fn sighup_reloads_the_certificates() {
    let served = Served::start("", Stdio::null(), |_| {}).await;
    let client = served.client("supplier");
    assert_eq!(read(&served, &client).await, "I99");
    // The supplier's XML-signing certificate leaves the store's directory.
    let store = served.dir.path().join("user-certs/supplier.pem");
    std::fs::remove_file(&store).unwrap();
    assert_eq!(
        read(&served, &client).await,
        "I99",
        "nothing changes before the signal"
    );
    served.signal("HUP");
    let ok = r#"dccgw_certificate_reloads_total{outcome="ok",trigger="signal"} 1"#;
    let mut reloaded = false;
    for _ in 0..100 {
        if served.metrics().await.lines().any(|l| l == ok) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded);
    // Over the same connection: the signature's certificate is no longer known.
    assert_eq!(read(&served, &client).await, "E52");
    served.signal("TERM");
    assert!(served.exit().await.is_some_and(|s| s.success()));
}

fn run(args: &[&str]) -> Option<i32> {
    Command::new(DCCGW)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .code()
}

#[test]
fn the_tools_exit_codes_tell_an_io_error_from_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let message = dir.path().join("m.xml");
    std::fs::write(&message, "<a/>").unwrap();
    let m = message.to_str().unwrap();
    let gone = missing.to_str().unwrap();
    // An unreadable certificate directory or message: 6, not "invalid signature" (1).
    assert_eq!(run(&["verify", "--certs", gone, m]), Some(6));
    assert_eq!(
        run(&["verify", "--certs", dir.path().to_str().unwrap(), gone]),
        Some(6)
    );
    // A malformed message is still a verdict.
    assert_eq!(
        run(&["verify", "--certs", dir.path().to_str().unwrap(), m]),
        Some(4)
    );
    // An unreadable audit directory: 6, not "broken" (1).
    assert_eq!(run(&["audit", "verify", gone]), Some(6));
}
