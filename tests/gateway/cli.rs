//! The `dccgw` command as an operator meets it: help texts, configuration errors that say where
//! the mistake is, `config defaults` and `config check`, a busy port found before anything
//! loads, logs without colour codes off a terminal, the demo's secret kept private and its
//! listeners reachable from outside when asked, and `sign serve`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::support;

fn dccgw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args(args)
        .env_remove("DCCGW_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_argument_has_help_and_none_names_a_rust_type() {
    for (args, wanted) in [
        (&["serve", "--help"][..], "The configuration file"),
        (
            &["pki", "init", "--help"][..],
            "The directory to write them to",
        ),
        (&["audit", "verify", "--help"][..], "The audit directory"),
        (&["report", "usage", "--help"][..], "JSON for programs"),
        (&["commshub", "--help"][..], "configuration (TOML)"),
        (&["config", "check", "--help"][..], "without starting"),
        (&["sign", "serve", "--help"][..], "POST /sign"),
    ] {
        let out = dccgw(args);
        let help = text(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(help.contains(wanted), "{args:?}:\n{help}");
        assert!(!help.contains("::"), "{args:?} names a Rust path:\n{help}");
    }
}

/// A configuration on ports 0 with the dev PKI and the demo registers; returns its directory.
fn configured(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    support::prepare_dir(extra, |_| {})
}

#[test]
fn a_misspelt_key_is_named_with_its_line_and_an_override_with_its_variable() {
    let (dir, path) = configured("");
    let good = std::fs::read_to_string(&path).unwrap();
    let bad = good.replace("admin_addr", "admin_adr");
    let line = bad
        .lines()
        .position(|l| l.starts_with("admin_adr"))
        .unwrap()
        + 1;
    let misspelt = dir.path().join("misspelt.toml");
    std::fs::write(&misspelt, bad).unwrap();
    let out = dccgw(&["config", "check", misspelt.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("line {line}, column 1")) && err.contains("admin_adr"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args(["config", "check", path.to_str().unwrap()])
        .env("DCCGW_LIMITS__MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("environment variable DCCGW_LIMITS__MAX_BODY_BYTES"),
        "{err}"
    );
    assert!(!err.contains("configuration file"), "{err}");

    let out = dccgw(&["config", "check", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("is valid"));

    // A key that names a missing file is found by the check, not by a start.
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        good.replace("certs/dcc-acb.key.pem", "certs/missing.pem"),
    )
    .unwrap();
    let out = dccgw(&["config", "check", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("routing.acb_key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_defaults_prints_every_key_with_its_default() {
    let out = dccgw(&["config", "defaults"]);
    let toml = text(&out.stdout);
    assert!(out.status.success());
    for wanted in [
        "[limits]",
        "max_body_bytes = 1048576",
        "[delivery.outbox]",
        "# Bound: 1 to 300000.",
        "# addr = …  (required",
        "[alerts.throttle]",
    ] {
        assert!(toml.contains(wanted), "{wanted}:\n{toml}");
    }
    let out = dccgw(&["config", "defaults", "--markdown"]);
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    assert_eq!(text(&out.stdout), docs);
}

#[test]
fn a_port_in_use_is_reported_before_the_registers_are_read() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let (dir, path) = configured("");
    // The registers are missing: a start that read them first would report that instead.
    std::fs::remove_file(dir.path().join("devices.csv")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("DCCGW_LISTEN__ADDR", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!err.contains("devices"), "{err}");
}

fn wait_for(rx: &std::sync::mpsc::Receiver<String>, what: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no line with {what:?}; saw:\n{}", seen.join("\n")));
        seen.push(line.clone());
        if line.contains(what) {
            return line;
        }
    }
}

#[test]
fn the_demo_logs_plainly_to_a_pipe_keeps_its_token_private_and_binds_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args([
            "demo",
            "--port",
            "0",
            "--admin-port",
            "0",
            "--receiver-port",
            "0",
        ])
        .args(["--bind", "0.0.0.0", "--certs"])
        .arg(dir.path().join("certs"))
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .env_remove("DCCGW_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = support::lines(demo.stdout.take().unwrap());
    let err = support::lines(demo.stderr.take().unwrap());
    let mut seen = Vec::new();
    let listening = wait_for(&err, "Gateway listening", &mut seen);
    let base = wait_for(&out, "DUIS base URL", &mut Vec::new());
    let _ = demo.kill();
    let _ = demo.wait();
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in a piped log:\n{}",
        seen.join("\n")
    );
    assert!(listening.contains("0.0.0.0:"), "{listening}");
    assert!(base.contains("https://127.0.0.1:"), "{base}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let token = dir.path().join("demo").join("admin.token");
        let mode = std::fs::metadata(token).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "admin.token is readable by others: {mode:o}"
        );
    }
}

/// One HTTP/1.1 POST of a JSON body; the status and the body.
fn post_json(port: u16, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(json).unwrap())
}

#[test]
fn sign_serve_signs_and_verifies_over_http_as_the_signing_tool_does() {
    let (dir, _) = configured("");
    let user = dir.path().join("certs/users/supplier");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args(["sign", "serve", "--listen", "127.0.0.1:0", "--key"])
        .arg(user.join("xml-sign.key.pem"))
        .arg("--cert")
        .arg(user.join("xml-sign.pem"))
        .arg("--certs")
        .arg(dir.path().join("user-certs"))
        .arg("--trust")
        .arg(dir.path().join("certs/ca.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = support::lines(serve.stdout.take().unwrap());
    let banner = wait_for(&out, "listening on http://", &mut Vec::new());
    let port: u16 = banner
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap()
        .parse()
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let request =
        dccgw::demo::example_request_xml(dccgw::demo::DEMO_USERS[0].1, dccgw::demo::DEMO_ESME, 1);
    let body = serde_json::json!({ "message": b64.encode(&request) }).to_string();
    let (status, signed) = post_json(port, "/sign", &body);
    assert_eq!(status, 200, "{signed}");
    let signed = b64.decode(signed["message"].as_str().unwrap()).unwrap();

    // An independent reader of the signature: `dccgw verify` (and xmlsec1 where present).
    let file = dir.path().join("signed.xml");
    std::fs::write(&file, &signed).unwrap();
    let v = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args(["verify", "--certs"])
        .arg(dir.path().join("user-certs"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", text(&v.stderr));
    if support::have_tool("xmlsec1") {
        let x = Command::new("xmlsec1")
            .args([
                "--verify",
                "--enabled-key-data",
                "x509",
                "--pubkey-cert-pem",
            ])
            .arg(user.join("xml-sign.pem"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(x.status.success(), "xmlsec1: {}", text(&x.stderr));
    }

    let body = serde_json::json!({ "message": b64.encode(&signed) }).to_string();
    let (status, verified) = post_json(port, "/verify", &body);
    assert_eq!(status, 200, "{verified}");
    let plain = text(&b64.decode(verified["message"].as_str().unwrap()).unwrap());
    assert!(!plain.contains("Signature"), "{plain}");
    assert!(
        plain.contains("ReadInstantaneousImportRegisters"),
        "{plain}"
    );

    let tampered = text(&signed).replace(
        "4.1.1</sr:ServiceReferenceVariant>",
        "4.1.2</sr:ServiceReferenceVariant>",
    );
    let body = serde_json::json!({ "message": b64.encode(tampered) }).to_string();
    let (status, refused) = post_json(port, "/verify", &body);
    assert_eq!(status, 400);
    assert_eq!(refused["errorCode"], "InvalidSignature", "{refused}");
    let (status, refused) = post_json(port, "/sign", "{\"msg\": 1}");
    assert_eq!(status, 400, "{refused}");
    let _ = serve.kill();
    let _ = serve.wait();
}

/// A gateway whose Users' Receive Response Services are not there (the demo's configuration run
/// by `dccgw serve`, without the demo's receiver) says so at WARN on the first failed delivery,
/// not only at DEBUG.
#[tokio::test]
async fn serve_warns_when_a_users_endpoint_does_not_take_a_delivery() {
    let routing =
        "[routing]\nacb_key = \"certs/dcc-acb.key.pem\"\nacb_cert = \"certs/dcc-acb.pem\"\n\
        hub = \"in_process\"\n[delivery.transport]\nclient_cert = \"certs/dcc-acb.pem\"\n\
        client_key = \"certs/dcc-acb.key.pem\"\ntrust_anchors = [\"certs/ca.pem\"]\n";
    let (dir, path) = configured(routing);
    // The supplier's endpoint: a port nobody listens on.
    let closed = support::free_port();
    let users = dir.path().join("users.csv");
    let text = std::fs::read_to_string(&users).unwrap().replacen(
        "Demo Supplier,IS|GS,active,",
        &format!("Demo Supplier,IS|GS,active,https://localhost:{closed}/duis"),
        1,
    );
    std::fs::write(&users, text).unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env_remove("DCCGW_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = support::lines(serve.stderr.take().unwrap());
    let mut seen = Vec::new();
    let listening = wait_for(&err, "Gateway listening", &mut seen);
    let port = listening
        .split(" addr=127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let certs = dir.path().join("certs");
    let pem = std::fs::read(certs.join("users/supplier/client.pem")).unwrap();
    let client = support::client_with(&certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let request =
        dccgw::demo::example_request_xml(dccgw::demo::DEMO_USERS[0].1, dccgw::demo::DEMO_ESME, 7);
    let user = certs.join("users/supplier");
    let signed = dccgw::tools::sign(
        request.as_bytes(),
        &user.join("xml-sign.key.pem"),
        &user.join("xml-sign.pem"),
        None,
    )
    .unwrap();
    let (status, body) = support::post(
        &client,
        &format!("https://localhost:{port}/api/v1/serviceS"),
        signed,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let warn = tokio::task::spawn_blocking(move || {
        let line = wait_for(&err, "did not take a delivery", &mut seen);
        (line, seen)
    })
    .await
    .unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(warn.0.contains("WARN"), "{}", warn.1.join("\n"));
    assert!(warn.0.contains("reason=\"connect\""), "{}", warn.0);
}

/// Long operations say how long they took: on a log (standard error not a terminal) a closing
/// line, and `audit verify` in its own sentence.
#[test]
fn audit_verify_reports_its_progress_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = dccgw(&["audit", "verify", dir.path().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("(checked in "), "{stdout}");
    assert!(
        stderr.contains("Reading the audit trail: done, 0 bytes in "),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}
