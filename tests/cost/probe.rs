//! The request path's cost, for `tests/cost/main.rs`: a gateway started in this process (dev PKI,
//! the demo registers, the simulated hub network in-process with devices that answer after an
//! hour, so no asynchronous work runs), then N signed 4.1.1 reads through `Gateway::handle`. Under
//! `valgrind --tool=callgrind --toggle-collect=cost_probe::measured_requests` the instructions
//! counted are those of the requests themselves: parse, signature, access control, the signed
//! command, the journals, the answer and its audit record.
//!
//! `cost-probe N critical` sends N critical pairs instead: a 7.1 Enable Supply Transform
//! (Command Variant 4: the pre-command made, remembered, answered) and its pre-command signed
//! with the demo supplier's Digital Signing key, sent back as Command Variant 5 (both XML
//! signatures and the User's GBCS signature checked, the pre-command used, the command signed
//! and routed). Under `--toggle-collect='cost_probe::measured_critical_*'` only the two requests
//! are counted, not the User's signing between them (`measured_critical_transform` or
//! `measured_critical_signed` alone: one of the two).

use std::path::Path;

use dccgw::config::Config;
use dccgw::demo::{self, DEMO_ESME, DEMO_USERS};
use dccgw::domain::{CommandVariant, DuisService, ResponseCode, SmkiRole};
use dccgw::pipeline::{Answer, Gateway};
use dccgw::tls::PeerIdentity;
use dccgw::tools::PreCommandKeys;
use dccgw::{pki, server, tools};
use time::OffsetDateTime;

const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let critical = std::env::args().nth(2).as_deref() == Some("critical");
    let dir = std::env::temp_dir().join(format!("dccgw-cost-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let config = prepare(&dir, critical);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let running = rt
        .block_on(server::start(&config))
        .expect("the gateway starts");
    let user = dir.join("certs/users").join(DEMO_USERS[0].0);
    let peer = PeerIdentity {
        user_id: SUPPLIER.parse().expect("an EUI-64"),
        role: SmkiRole::Supplier,
    };
    if critical {
        let pairs = critical_pairs(&rt, &running.gateway, &peer, &user, n);
        assert_eq!(pairs, n, "every pair is accepted");
        rt.block_on(running.shutdown());
        let _ = std::fs::remove_dir_all(&dir);
        println!("{n} critical pairs");
        return;
    }
    let bodies: Vec<Vec<u8>> = (1..=n)
        .map(|counter| {
            let xml = demo::example_request_xml(SUPPLIER, DEMO_ESME, counter);
            let key = user.join("xml-sign.key.pem");
            let cert = user.join("xml-sign.pem");
            tools::sign(xml.as_bytes(), &key, &cert, None)
                .expect("signed")
                .into_bytes()
        })
        .collect();
    let accepted = measured_requests(&rt, &running.gateway, &peer, &bodies);
    assert_eq!(accepted, n, "every request is accepted");
    rt.block_on(running.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
    println!("{n} requests");
}

/// The requests, one after another: what callgrind counts.
#[inline(never)]
fn measured_requests(
    rt: &tokio::runtime::Runtime,
    gateway: &Gateway,
    peer: &PeerIdentity,
    bodies: &[Vec<u8>],
) -> u64 {
    let mut accepted = 0;
    for body in bodies {
        let now = OffsetDateTime::now_utc();
        let answer = rt.block_on(gateway.handle(DuisService::Send, peer, body, now));
        accepted += u64::from(answer.status == 200);
    }
    accepted
}

/// N critical pairs, one after another: each Transform and its signed pre-command measured, the
/// User's signing between them not. The pairs answered `I0` then `I99`.
fn critical_pairs(
    rt: &tokio::runtime::Runtime,
    gateway: &Gateway,
    peer: &PeerIdentity,
    user: &Path,
    n: u64,
) -> u64 {
    let (key, cert) = (user.join("xml-sign.key.pem"), user.join("xml-sign.pem"));
    let keys = PreCommandKeys {
        key: &user.join("digital-signing.key.pem"),
        cert: &user.join("digital-signing.pem"),
        xml: Some((&key, &cert)),
    };
    let cv5 = CommandVariant::try_from(5).expect("a Command Variant");
    let transforms: Vec<Vec<u8>> = (1..=n)
        .map(|counter| {
            let xml = demo::example_transform_xml(SUPPLIER, DEMO_ESME, counter);
            tools::sign(xml.as_bytes(), &key, &cert, None)
                .expect("signed")
                .into_bytes()
        })
        .collect();
    let mut accepted = 0;
    for transform in &transforms {
        let answer = measured_critical_transform(rt, gateway, peer, transform);
        assert_eq!(answer.code, ResponseCode::I0, "{}", answer.body);
        let signed = tools::sign_precommand(answer.body.as_bytes(), &keys, cv5).expect("signed");
        let ack = measured_critical_signed(rt, gateway, peer, signed.as_bytes());
        accepted += u64::from(ack.code == ResponseCode::I99);
    }
    accepted
}

/// A pair's Transform: what callgrind counts in the critical mode, with …
#[inline(never)]
fn measured_critical_transform(
    rt: &tokio::runtime::Runtime,
    gateway: &Gateway,
    peer: &PeerIdentity,
    body: &[u8],
) -> Answer {
    let now = OffsetDateTime::now_utc();
    rt.block_on(gateway.handle(DuisService::Transform, peer, body, now))
}

/// … the pair's signed pre-command.
#[inline(never)]
fn measured_critical_signed(
    rt: &tokio::runtime::Runtime,
    gateway: &Gateway,
    peer: &PeerIdentity,
    body: &[u8],
) -> Answer {
    let now = OffsetDateTime::now_utc();
    rt.block_on(gateway.handle(DuisService::Send, peer, body, now))
}

/// A directory with a dev PKI, the demo registers and Users' certificates, and a configuration
/// on ports 0 with the hub network in-process; for critical pairs, with the Users' Digital
/// Signing certificates too.
fn prepare(dir: &Path, critical: bool) -> Config {
    let certs = dir.join("certs");
    pki::init(&certs, OffsetDateTime::now_utc()).expect("a dev PKI");
    demo::write_registers(dir, None).expect("the demo registers");
    let user_certs = dir.join("user-certs");
    std::fs::create_dir_all(&user_certs).expect("a directory");
    for (name, ..) in DEMO_USERS {
        let from = certs.join("users").join(name).join("xml-sign.pem");
        std::fs::copy(from, user_certs.join(format!("{name}.pem"))).expect("a copy");
    }
    let hub = "[default]\nlatency = { kind = \"fixed\", ms = 3600000 }\n";
    std::fs::write(dir.join("hub.toml"), hub).expect("the hub configuration");
    let digital_signing = if critical {
        "digital_signing_certs = \"certs/users\"\n"
    } else {
        ""
    };
    let text = format!("[listen]\naddr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"\n\
         [tls]\ncert = \"certs/server.pem\"\nkey = \"certs/server.key.pem\"\nclient_ca = [\"certs/ca.pem\"]\n\
         [registration]\nusers = \"users.csv\"\ndevices = \"devices.csv\"\nregistrations = \"registrations.csv\"\n\
         [signatures]\ndcc_key = \"certs/dcc-xml-sign.key.pem\"\ndcc_cert = \"certs/dcc-xml-sign.pem\"\n\
         user_certs = \"user-certs\"\ntrust_anchors = [\"certs/ca.pem\"]\n{digital_signing}\
         [state]\ndir = \"state\"\n\
         [routing]\nacb_key = \"certs/dcc-acb.key.pem\"\nacb_cert = \"certs/dcc-acb.pem\"\n\
         hub = \"in_process\"\nhub_config = \"hub.toml\"\n\
         [routing.dispatch]\ntimeout_ms = 3600000\n\
         [delivery.transport]\nclient_cert = \"certs/dcc-acb.pem\"\nclient_key = \"certs/dcc-acb.key.pem\"\n\
         trust_anchors = [\"certs/ca.pem\"]\n");
    let path = dir.join("dccgw.toml");
    std::fs::write(&path, text).expect("the configuration");
    Config::load(&path, Vec::new()).expect("the configuration loads")
}
