//! Two gateways in cluster mode on one throwaway PostgreSQL: `dccgw cluster init` loads the
//! registers and certificates, both serve from them, and a User change made through one
//! instance's admin API is enforced by the other.

use std::path::Path;
use std::time::{Duration, Instant};

use dccgw::config::Config;
use dccgw::server::{self, Running};
use dccgw::tools;
use time::OffsetDateTime;

use crate::support::{self, element, post};

const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
const TOKEN: &str = "test-admin-token-cluster";

/// An 8.2 Read Inventory (answered from the cache, `I0`) by the supplier, sent to `gateway`
/// with the client material under `dir`; its response code.
async fn inventory(dir: &Path, gateway: &Running) -> String {
    let counter = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{SUPPLIER}:90-B3-D5-1F-30-00-00-02:{counter}</sr:RequestID><sr:CommandVariant>8</sr:CommandVariant><sr:ServiceReference>8.2</sr:ServiceReference><sr:ServiceReferenceVariant>8.2</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:ReadInventory><sr:DeviceID>00-DB-12-34-56-78-90-A0</sr:DeviceID></sr:ReadInventory></sr:Body></sr:Request>"#
    );
    let certs = dir.join("certs");
    let user = certs.join("users/supplier");
    let body = tools::sign(
        xml.as_bytes(),
        &user.join("xml-sign.key.pem"),
        &user.join("xml-sign.pem"),
        None,
    )
    .unwrap();
    let pem = std::fs::read(user.join("client.pem")).unwrap();
    let client = support::client_with(&certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let url = format!("https://localhost:{}/api/v1/serviceD", gateway.addr.port());
    let (_, answer) = post(&client, &url, body.into_bytes()).await;
    element(&answer, "ResponseCode")
        .unwrap_or("none")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_change_through_one_instance_is_enforced_by_the_other() {
    let servers = tempfile::tempdir().unwrap();
    let Some(pg) = dccgw::testing::servers::postgres(servers.path()) else {
        return;
    };
    // The outbox is JetStream's in cluster mode.
    let Some(nats) = dccgw::testing::servers::nats(servers.path()) else {
        return;
    };
    let cluster = format!(
        "[admin]\ntoken_file = \"admin.token\"\n\
         [delivery.outbox]\nhold_secs = 1\nfirst_retry_ms = 200\n\
         [cluster]\npostgres_url = \"{}\"\nnats_url = \"{}\"\ninstance = \"a\"\n",
        pg.url(),
        nats.url()
    );
    let (dir, path_a) = support::prepare_dir(&cluster, |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
    });
    // B: the same files, its own state directory and name.
    let path_b = dir.path().join("dccgw-b.toml");
    let text = std::fs::read_to_string(&path_a).unwrap();
    let text_b = text
        .replace("dir = \"state\"", "dir = \"state-b\"")
        .replace("instance = \"a\"", "instance = \"b\"");
    assert_ne!(text, text_b);
    std::fs::write(&path_b, text_b).unwrap();
    // A short request timeout: JetStream's `ack_wait` follows it, and nats-server 2.9.10 makes
    // a refused message wait for that timer whatever shorter delay it was refused with.
    let quick = || {
        [(
            "DCCGW_DELIVERY__TRANSPORT__REQUEST_TIMEOUT_MS".to_owned(),
            "2000".to_owned(),
        )]
    };
    let config_a = Config::load(&path_a, quick()).unwrap();
    let config_b = Config::load(&path_b, quick()).unwrap();
    assert_eq!(config_a.delivery.transport.request_timeout_ms, 2000);
    let loaded = tools::cluster_init::run(&config_a).await.unwrap();
    assert_eq!(loaded.users, dccgw::demo::DEMO_USERS.len() as u64);
    assert!(loaded.certificates > 0);
    // The registers now come from PostgreSQL: the files could go.
    std::fs::remove_file(dir.path().join("users.csv")).unwrap();

    let a = server::start(&config_a).await.unwrap();
    let b = server::start(&config_b).await.unwrap();
    assert_eq!(inventory(dir.path(), &a).await, "I0");
    assert_eq!(inventory(dir.path(), &b).await, "I0");

    let suspend = format!(r#"[{{"change":"suspend_user","user":"{SUPPLIER}"}}]"#);
    let r = reqwest::Client::new()
        .post(format!("http://{}/admin/v1/users/changes", a.admin_addr))
        .bearer_auth(TOKEN)
        .body(suspend)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let refused = inventory(dir.path(), &a).await;
    assert_ne!(refused, "I0");
    // B refuses it the same way once it has followed the change (the bound only stops a hung
    // test; the figure is in docs/cluster.md).
    let start = Instant::now();
    loop {
        let code = inventory(dir.path(), &b).await;
        if code == refused {
            break;
        }
        assert_eq!(code, "I0");
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "B never followed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dead_letter_through_either_admin_api(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// The dead letters' admin API of either instance.
async fn admin(gateway: &Running, method: reqwest::Method, path: &str, body: String) -> String {
    let r = reqwest::Client::new()
        .request(
            method,
            format!("http://{}/admin/v1/dead-letters{path}", gateway.admin_addr),
        )
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

/// Waits until `gateway` lists `id` as a dead letter.
async fn until_dead(gateway: &Running, id: &str) {
    let start = Instant::now();
    while !admin(gateway, reqwest::Method::GET, "", String::new())
        .await
        .contains(id)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{id} never listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A message put in the shared outbox through A, whose User's endpoint is down (the demo's
/// receiver is not running), is a dead letter after the 1 s hold: listed and replayed through
/// B's admin API, dead again, and discarded through A's.
async fn dead_letter_through_either_admin_api(a: &Running, b: &Running) {
    use dccgw::outbox::{Outbound, OutboundKind};
    let id = a.outbox.next_id();
    let message = Outbound {
        id,
        user: SUPPLIER.parse().unwrap(),
        kind: OutboundKind::DccAlert {
            code: "N1".parse().unwrap(),
        },
        body: b"<dead-letter-test/>".to_vec(),
        raised_at: 0,
    };
    a.outbox.enqueue(vec![message]).await.unwrap();
    let id = id.to_string();
    until_dead(b, &id).await;
    let ids = format!("[\"{id}\"]");
    let replayed = admin(b, reqwest::Method::POST, "/replay", ids.clone()).await;
    assert!(replayed.contains("\"replayed\":1"), "{replayed}");
    until_dead(a, &id).await;
    let discarded = admin(a, reqwest::Method::POST, "/discard", ids).await;
    assert!(discarded.contains("\"discarded\":1"), "{discarded}");
    assert!(!admin(b, reqwest::Method::GET, "", String::new())
        .await
        .contains(&id));
}
