//! Test support: a real gateway on port 0 with a generated PKI, and real mTLS clients.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use time::OffsetDateTime;

use dccgw::config::Config;
use dccgw::server::{self, Running};
use dccgw::{demo, pki, tools};

pub struct TestGateway {
    pub running: Running,
    pub dir: TempDir,
}

impl TestGateway {
    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    pub fn base(&self) -> String {
        format!("https://localhost:{}", self.running.addr.port())
    }

    pub fn admin(&self) -> String {
        format!("http://{}", self.running.admin_addr)
    }

    /// An mTLS client presenting `users/<user>/client.pem`.
    pub fn client(&self, user: &str) -> reqwest::Client {
        let pem = std::fs::read(self.certs().join("users").join(user).join("client.pem")).unwrap();
        client_with(
            &self.certs(),
            Some(reqwest::Identity::from_pem(&pem).unwrap()),
        )
    }

    /// `xml` with any signature replaced by one from `user`'s XML-signing key.
    pub fn signed(&self, user: &str, xml: &[u8]) -> Vec<u8> {
        let dir = self.certs().join("users").join(user);
        tools::sign(
            xml,
            &dir.join("xml-sign.key.pem"),
            &dir.join("xml-sign.pem"),
            None,
        )
        .unwrap()
        .into_bytes()
    }

    /// Stops the gateway and starts it again from the same directory and configuration.
    pub async fn restart(self) -> TestGateway {
        self.running.shutdown().await;
        let config = Config::load(&self.dir.path().join("dccgw.toml"), Vec::new()).unwrap();
        let running = server::start(&config).await.unwrap();
        TestGateway {
            running,
            dir: self.dir,
        }
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// A client trusting the test CA, with the given identity (or none).
pub fn client_with(certs: &Path, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let ca = std::fs::read(certs.join("ca.pem")).unwrap();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
    if let Some(id) = identity {
        b = b.identity(id);
    }
    b.build().unwrap()
}

/// Routing to the simulated hub network in the gateway's process, and delivery with the broker's
/// certificate to Users' endpoints chained to the dev CA. The devices answer after an hour (and
/// the gateway waits that long), so that no asynchronous traffic runs in a test that is not about
/// it; tests of the asynchronous half bring their own `[routing]`.
const ROUTING: &str = "[routing]\nacb_key = \"certs/dcc-acb.key.pem\"\nacb_cert = \"certs/dcc-acb.pem\"\n\
    hub = \"in_process\"\nhub_config = \"hub.toml\"\n\
    [routing.dispatch]\ntimeout_ms = 3600000\n\
    [delivery.transport]\nclient_cert = \"certs/dcc-acb.pem\"\nclient_key = \"certs/dcc-acb.key.pem\"\n\
    trust_anchors = [\"certs/ca.pem\"]\n";

/// Starts a gateway with the demo Users, ports 0, and `extra` TOML appended (e.g. `[limits]`).
pub async fn start(extra: &str) -> TestGateway {
    start_with(extra, |_| {}).await
}

/// As [`start`], with `prepare` run on the directory (PKI made) before the gateway starts: to
/// add certificates to `user-certs/`, say.
pub async fn start_with(extra: &str, prepare: impl FnOnce(&Path)) -> TestGateway {
    let (dir, path) = prepare_dir(extra, prepare);
    let config = Config::load(&path, Vec::new()).unwrap();
    let running = server::start(&config).await.unwrap();
    TestGateway { running, dir }
}

/// A directory with a dev PKI, the demo Users' register and signing certificates, and a
/// configuration on ports 0 with `extra` appended; returns it and the configuration's path.
pub fn prepare_dir(extra: &str, prepare: impl FnOnce(&Path)) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    pki::init(&certs, OffsetDateTime::now_utc()).unwrap();
    demo::write_registers(dir.path(), None).unwrap();
    let user_certs = dir.path().join("user-certs");
    std::fs::create_dir_all(&user_certs).unwrap();
    for (name, ..) in demo::DEMO_USERS {
        let from = certs.join("users").join(name).join("xml-sign.pem");
        std::fs::copy(from, user_certs.join(format!("{name}.pem"))).unwrap();
    }
    // Every gateway routes and delivers: the simulated hub network in the process, unless the
    // test brings its own `[routing]` (and `[delivery]`).
    let routing = if extra.contains("[routing]") {
        ""
    } else {
        let hub = "[default]\nlatency = { kind = \"fixed\", ms = 3600000 }\n";
        std::fs::write(dir.path().join("hub.toml"), hub).unwrap();
        ROUTING
    };
    let config = format!(
        "[listen]\naddr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"\n\
         [tls]\ncert = \"certs/server.pem\"\nkey = \"certs/server.key.pem\"\nclient_ca = [\"certs/ca.pem\"]\n\
         [registration]\nusers = \"users.csv\"\ndevices = \"devices.csv\"\nregistrations = \"registrations.csv\"\n\
         [signatures]\ndcc_key = \"certs/dcc-xml-sign.key.pem\"\ndcc_cert = \"certs/dcc-xml-sign.pem\"\n\
         user_certs = \"user-certs\"\ntrust_anchors = [\"certs/ca.pem\"]\n\
         digital_signing_certs = \"certs/users\"\n\
         [state]\ndir = \"state\"\n{routing}{extra}"
    );
    prepare(dir.path());
    let path = dir.path().join("dccgw.toml");
    std::fs::write(&path, config).unwrap();
    (dir, path)
}

/// A free port on 127.0.0.1 (bound and released; another process could take it meanwhile,
/// which on a test machine it does not).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Resident set size of a process in KiB (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

pub use dccgw::testing::anchors;

/// POSTs `body` as `application/xml`; the HTTP status and the answer's text.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let r = client
        .post(url)
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `xml` signed by `xmlsec1` (not our code) with `key` and `cert`, working in `dir`.
pub fn xmlsec1_sign(dir: &Path, key: &Path, cert: &Path, xml: &str) -> Vec<u8> {
    std::fs::write(dir.join("template.xml"), xmlsec1_template(xml)).unwrap();
    let out = std::process::Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!("{},{}", key.display(), cert.display()))
        .arg("--output")
        .arg(dir.join("signed.xml"))
        .arg(dir.join("template.xml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "xmlsec1 --sign: {stderr}");
    std::fs::read(dir.join("signed.xml")).unwrap()
}

/// `xml` (a request without a signature) with the profile's `ds:Signature` template appended as
/// the root's last child: empty values and an empty `X509IssuerSerial`, for `xmlsec1 --sign` to
/// fill in.
fn xmlsec1_template(xml: &str) -> String {
    xml.replacen(
        "</sr:Request>",
        r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/><ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial/></ds:X509Data></ds:KeyInfo></ds:Signature></sr:Request>"#,
        1,
    )
}

/// `xmlsec1 --verify` of `doc` with the DCC's XML-signing certificate (each document in a file of
/// its own under the gateway's directory); `Err` with what xmlsec1 said when it refuses.
pub fn xmlsec1_dcc_verify(gw: &TestGateway, doc: &[u8]) -> Result<(), String> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = gw.dir.path().join(format!("xmlsec1-verify-{n}.xml"));
    std::fs::write(&file, doc).unwrap();
    let out = std::process::Command::new("xmlsec1")
        .args(["--verify", "--pubkey-cert-pem"])
        .arg(gw.certs().join("dcc-xml-sign.pem"))
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `xmlsec1` verifies `doc` with the DCC's XML-signing certificate (outside CI, nothing is
/// checked when xmlsec1 is missing).
pub fn xmlsec1_verifies(gw: &TestGateway, doc: &[u8]) {
    if !have_tool("xmlsec1") {
        return;
    }
    if let Err(said) = xmlsec1_dcc_verify(gw, doc) {
        panic!(
            "xmlsec1: {said}
{}",
            String::from_utf8_lossy(doc)
        );
    }
}

/// Whether `name --version` runs; outside CI a missing tool skips the test (said on stderr).
pub fn have_tool(name: &str) -> bool {
    dccgw::testing::have_tool(name, "--version")
}

/// The text of one element in a response (first occurrence), e.g. `ResponseCode`.
pub fn element<'a>(xml: &'a str, local: &str) -> Option<&'a str> {
    let open = format!("<sr:{local}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find('<')? + start;
    Some(&xml[start..end])
}

/// Reads lines from `r` on a thread; the receiver gets them as they come.
pub fn lines(r: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(r)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Posts `xml`, signed by the demo supplier (keys under `certs`), to `service` of the gateway
/// process on `port`; the whole answer.
pub async fn send_as_supplier(
    certs: &std::path::Path,
    port: u16,
    service: &str,
    xml: &str,
) -> String {
    let dir = certs.join("users/supplier");
    let body = dccgw::tools::sign(
        xml.as_bytes(),
        &dir.join("xml-sign.key.pem"),
        &dir.join("xml-sign.pem"),
        None,
    )
    .unwrap();
    let pem = std::fs::read(dir.join("client.pem")).unwrap();
    let client = client_with(certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let url = format!("https://localhost:{port}/api/v1/{service}");
    let (_, answer) = post(&client, &url, body).await;
    answer
}

/// The (User, code) pairs as the set the delivery tests compare with.
pub fn set(items: &[(&str, &str)]) -> std::collections::BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(u, c)| ((*u).to_owned(), (*c).to_owned()))
        .collect()
}

/// The RequestIDs of every message the receiver gets, collected in the background for as long
/// as the test runs (deliveries of one gateway run may land during the next).
pub fn request_ids(
    mut rx: tokio::sync::mpsc::Receiver<dccgw::receiver::Received>,
) -> (
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    tokio::task::JoinHandle<()>,
) {
    let received = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let collector = tokio::spawn({
        let received = received.clone();
        async move {
            while let Some(m) = rx.recv().await {
                if let Some(id) = m.description.request_id {
                    received.lock().unwrap().insert(id);
                }
            }
        }
    });
    (received, collector)
}
