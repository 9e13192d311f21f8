//! The request path's cost, for `tests/cost.rs`: a gateway started in this process (dev PKI, the
//! demo registers, the simulated hub network in-process with devices that answer after an hour,
//! so no asynchronous work runs), then N signed 4.1.1 reads through `Gateway::handle`. Under
//! `valgrind --tool=callgrind --toggle-collect=cost_probe::measured_requests` the instructions
//! counted are those of the requests themselves: parse, signature, access control, the signed
//! command, the journals, the answer and its audit record.

use std::path::Path;

use dccgw::config::Config;
use dccgw::demo::{self, DEMO_ESME, DEMO_USERS};
use dccgw::domain::{DuisService, SmkiRole};
use dccgw::pipeline::Gateway;
use dccgw::tls::PeerIdentity;
use dccgw::{pki, server, tools};
use time::OffsetDateTime;

const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let dir = std::env::temp_dir().join(format!("dccgw-cost-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let config = prepare(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let running = rt
        .block_on(server::start(&config))
        .expect("the gateway starts");
    let user = dir.join("certs/users").join(DEMO_USERS[0].0);
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
    let peer = PeerIdentity {
        user_id: SUPPLIER.parse().expect("an EUI-64"),
        role: SmkiRole::Supplier,
    };
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

/// A directory with a dev PKI, the demo registers and Users' certificates, and a configuration
/// on ports 0 with the hub network in-process.
fn prepare(dir: &Path) -> Config {
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
    let text = "[listen]\naddr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"\n\
         [tls]\ncert = \"certs/server.pem\"\nkey = \"certs/server.key.pem\"\nclient_ca = [\"certs/ca.pem\"]\n\
         [registration]\nusers = \"users.csv\"\ndevices = \"devices.csv\"\nregistrations = \"registrations.csv\"\n\
         [signatures]\ndcc_key = \"certs/dcc-xml-sign.key.pem\"\ndcc_cert = \"certs/dcc-xml-sign.pem\"\n\
         user_certs = \"user-certs\"\ntrust_anchors = [\"certs/ca.pem\"]\n\
         [state]\ndir = \"state\"\n\
         [routing]\nacb_key = \"certs/dcc-acb.key.pem\"\nacb_cert = \"certs/dcc-acb.pem\"\n\
         hub = \"in_process\"\nhub_config = \"hub.toml\"\n\
         [routing.dispatch]\ntimeout_ms = 3600000\n\
         [delivery.transport]\nclient_cert = \"certs/dcc-acb.pem\"\nclient_key = \"certs/dcc-acb.key.pem\"\n\
         trust_anchors = [\"certs/ca.pem\"]\n";
    let path = dir.join("dccgw.toml");
    std::fs::write(&path, text).expect("the configuration");
    Config::load(&path, Vec::new()).expect("the configuration loads")
}
