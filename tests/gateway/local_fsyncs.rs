//! A measurement, not a check (`--ignored`): the fsyncs a gateway process makes per command
//! for local delivery (Command Variant 2, answered `I99`), counted by `strace -f -c` attached
//! to the process while 50 are sent one after another (so no two share a group commit). The
//! count covers everything the process syncs meanwhile, the message's delivery to the User
//! and its audit record among it. `DCCGW_MEASURE_BIN` runs another build of the binary.
//!
//! `cargo test --test gateway local_fsyncs -- --ignored --nocapture`

use std::process::{Command, Stdio};
use std::time::Duration;

use dccgw::demo::DEMO_ESME;

use super::crash::wait_ready;
use super::critical::{code, DCC};
use super::local::request;
use super::round_trip::pki_and_receiver;
use super::support;

const REQUESTS: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: strace attached to the gateway"]
async fn local_fsyncs_per_local_command() {
    let (pki, rx_server, _rx) = pki_and_receiver().await;
    let (dir, config) = super::round_trip::routed_dir(
        pki.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n",
        "",
    );
    let bin = std::env::var("DCCGW_MEASURE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_dccgw").to_owned());
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = Command::new(&bin)
        .args(["serve", "--config"])
        .arg(&config)
        .env("DCCGW_LISTEN__ADDR", format!("127.0.0.1:{port}"))
        .env("DCCGW_LISTEN__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("DCCGW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(admin).await;
    let out = dir.path().join("fsyncs.txt");
    let mut strace = Command::new("strace")
        .args(["-f", "-c", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&out)
        .args(["-p", &child.id().to_string()])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let certs = dir.path().join("certs");
    let user = certs.join("users/supplier");
    let client = support::client_with(
        &certs,
        Some(
            reqwest::Identity::from_pem(&std::fs::read(user.join("client.pem")).unwrap()).unwrap(),
        ),
    );
    for n in 0..REQUESTS {
        let xml = request(
            DEMO_ESME,
            1_000 + n,
            2,
            "4.1.1",
            "<sr:ReadInstantaneousImportRegisters/>",
        );
        let body = dccgw::tools::sign(
            xml.as_bytes(),
            &user.join("xml-sign.key.pem"),
            &user.join("xml-sign.pem"),
            None,
        )
        .unwrap();
        let url = format!("https://localhost:{port}{DCC}");
        let (status, answer) = support::post(&client, &url, body).await;
        assert_eq!((status, code(&answer)), (200, "I99"), "{answer}");
    }
    // The deliveries and their records.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let _ = child.kill();
    let _ = child.wait();
    let table = std::fs::read_to_string(&out).unwrap();
    let calls: u64 = table
        .lines()
        .filter(|l| l.ends_with("fsync") || l.ends_with("fdatasync"))
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .sum();
    eprintln!("{bin}\n{table}");
    eprintln!(
        "{calls} fsyncs for {REQUESTS} local commands: {:.2} per answer",
        calls as f64 / REQUESTS as f64
    );
    rx_server.stop().await;
}
