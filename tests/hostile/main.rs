//! The hostile client suite: what a hostile or careless peer, operator or pipe tried against the
//! gateway, each class with assertions on the answer's code, the connection's outcome, the
//! process's memory and its logs. A real gateway on port 0 (in this process, or as its own
//! `dccgw serve` process where its memory, logs, signals or exit are what is judged), real mTLS.

#[path = "../gateway/support.rs"]
#[allow(dead_code, unused_imports)]
mod support;

mod admission;
mod certs;
mod process;
mod records;
mod registrations;
mod replay;

use time::OffsetDateTime;

use crate::support::{element, post, TestGateway};

pub const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
pub const TOKEN: &str = "hostile-admin-token-7c1e";

/// A fresh counter: the time in microseconds, as the other suites stamp theirs.
pub fn counter() -> u64 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 / 1000
}

/// 4.1.1 on the demo ESME from the supplier with `counter`, signed by `signer` (a demo User
/// name), over `client`; the HTTP status and the answer's code.
pub async fn read_with(
    gw: &TestGateway,
    client: &reqwest::Client,
    signer: &str,
    counter: u64,
) -> (u16, String) {
    let xml = dccgw::demo::example_request_xml(SUPPLIER, dccgw::demo::DEMO_ESME, counter);
    let body = gw.signed(signer, xml.as_bytes());
    let url = format!("{}/api/v1/serviceS", gw.base());
    let (status, answer) = post(client, &url, body).await;
    let code = element(&answer, "ResponseCode")
        .unwrap_or("none")
        .to_owned();
    (status, code)
}

/// `POST` to the admin API with the token; the status and the text.
pub async fn admin_post(gw: &TestGateway, path: &str, body: String) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", gw.admin()))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A gateway with the admin token configured and `extra` TOML appended, `prepare` run on its
/// directory first.
pub async fn start(extra: &str, prepare: impl FnOnce(&std::path::Path)) -> TestGateway {
    start_with_crls(extra, false, prepare).await
}

/// As [`start`]; with `crls`, both trusts also read the CRLs in `crl.pem` (which `prepare`
/// must write).
pub async fn start_with_crls(
    extra: &str,
    crls: bool,
    prepare: impl FnOnce(&std::path::Path),
) -> TestGateway {
    let extra = format!("[admin]\ntoken_file = \"admin.token\"\n{extra}");
    let (dir, path) = support::prepare_dir(&extra, |dir| {
        std::fs::write(dir.join("admin.token"), TOKEN).unwrap();
        prepare(dir);
    });
    if crls {
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replace(
                "client_ca = [\"certs/ca.pem\"]\n",
                "client_ca = [\"certs/ca.pem\"]\ncrls = [\"crl.pem\"]\n",
            )
            .replace(
                "user_certs = \"user-certs\"\ntrust_anchors = [\"certs/ca.pem\"]\n",
                "user_certs = \"user-certs\"\ntrust_anchors = [\"certs/ca.pem\"]\ncrls = [\"crl.pem\"]\n",
            );
        std::fs::write(&path, text).unwrap();
    }
    let config = dccgw::config::Config::load(&path, Vec::new()).unwrap();
    let running = dccgw::server::start(&config).await.unwrap();
    TestGateway { running, dir }
}
