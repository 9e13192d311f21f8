//! The DCC's own services (Command Variant 8) end to end, over mTLS, to their last message:
//! 12.2, 8.14.x, 8.3 and 8.4 change the registration cache (8.2 reads it back, a device request
//! meets it) and their DCC Alerts reach exactly the Users entitled to them; 11.1 and 11.4
//! distribute through the simulated hub network and report to the originator; 12.1 answers with
//! the WAN matrix; each refusal gets its documented code. Every synchronous answer and every
//! delivered message is valid against the DUIS 5.4 XSD, and xmlsec1 verifies the DCC's
//! signature on them; the audit trail records a final message to follow exactly for `I99`.

use std::collections::BTreeSet;
use std::time::Duration;

use dccgw::config::Config;
use dccgw::demo::{self, DEMO_ESME, DEMO_MPAN, DEMO_MPRN};
use dccgw::duis::testing::DuisXsd;
use dccgw::receiver::Received;
use dccgw::server;
use tokio::sync::mpsc;

use super::round_trip::{next, pki_and_receiver, routed_dir, SUPPLIER};
use super::support::{self, element, set, TestGateway};

const DCC_ID: &str = "90-B3-D5-1F-30-00-00-02";
const NETWORK_OPERATOR: &str = "90-B3-D5-1F-30-02-00-00";
const SUPPLIER2: &str = "90-B3-D5-1F-30-03-00-00";
const GSME: &str = "00-DB-12-34-56-78-90-A1";
const HUB: &str = "00-DB-12-34-56-78-90-A2";
const GPF: &str = "00-DB-12-34-56-78-90-A3";
const PPMID: &str = "00-DB-12-34-56-78-90-A4";
const HCALCS: &str = "00-DB-12-34-56-78-90-A5";
const APC: &str = "00-DB-12-34-56-78-90-A6";
const NEW_HUB: &str = "00-DB-12-34-56-78-90-B2";
const NEW_GPF: &str = "00-DB-12-34-56-78-90-B3";
const UNKNOWN: &str = "00-DB-12-34-56-78-90-FF";

/// A gateway routing to the in-process hub network configured by `hub` and delivering to a
/// receiver (on a PKI both trust), and the receiver's messages.
struct Env {
    gw: TestGateway,
    rx: mpsc::Receiver<Received>,
    receiver: dccgw::receiver::Receiver,
    _pki: tempfile::TempDir,
}

async fn start(hub: &str) -> Env {
    let (pki, receiver, rx) = pki_and_receiver().await;
    let (dir, path) = routed_dir(pki.path(), receiver.local_addr().port(), hub, "");
    let config = Config::load(&path, Vec::new()).unwrap();
    let running = server::start(&config).await.unwrap();
    Env {
        gw: TestGateway { running, dir },
        rx,
        receiver,
        _pki: pki,
    }
}

impl Env {
    async fn stop(self) {
        self.gw.running.shutdown().await;
        self.receiver.stop().await;
    }
}

/// A Command Variant 8 request from `originator` for `srv`.
fn request(originator: &str, srv: &str, counter: u64, body: &str) -> String {
    let reference = srv.split('.').take(2).collect::<Vec<_>>().join(".");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{originator}:{DCC_ID}:{counter}</sr:RequestID><sr:CommandVariant>8</sr:CommandVariant><sr:ServiceReference>{reference}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header><sr:Body>{body}</sr:Body></sr:Request>"#
    )
}

/// A public template with `counter` stamped in, or `None` (skipped) without the anchors.
fn template(name: &str, counter: u64) -> Option<String> {
    let dir = support::anchors()?;
    let xml = std::fs::read_to_string(dir.join("duis-samples/templates").join(name)).unwrap();
    dccgw::tools::stamp_counter(&xml, counter)
}

/// What the test sent and got back synchronously, for the XSD and xmlsec1 at the end.
#[derive(Default)]
struct Answers(Vec<(String, String)>);

impl Answers {
    /// Sends `xml` as the demo User `name` to `serviceD`, signed; checks the answer's code and
    /// keeps the answer.
    async fn send(&mut self, gw: &TestGateway, name: &str, xml: &str, code: &str) -> String {
        let body = gw.signed(name, xml.as_bytes());
        let url = format!("{}/api/v1/serviceD", gw.base());
        let (_, answer) = support::post(&gw.client(name), &url, body).await;
        let what = element(xml, "ServiceReferenceVariant").unwrap_or_default();
        assert_eq!(
            element(&answer, "ResponseCode"),
            Some(code),
            "{what} by {name}: {answer}"
        );
        self.0
            .push((format!("{what} by {name} ({code})"), answer.clone()));
        answer
    }

    /// Every answer kept, and `more`, valid against the XSD and verified by xmlsec1.
    fn check(&self, gw: &TestGateway, more: &[String]) {
        let docs: Vec<&str> = self
            .0
            .iter()
            .map(|(_, a)| a.as_str())
            .chain(more.iter().map(String::as_str))
            .collect();
        if let Some(xsd) = DuisXsd::prepare() {
            if let Err(report) = xsd.validate_all(&docs) {
                panic!("schema-invalid messages:\n{report}");
            }
        }
        for doc in &docs {
            support::xmlsec1_verifies(gw, doc.as_bytes());
        }
    }
}

/// The 8.2 inventory of the premises of `device`, by the supplier.
async fn inventory(gw: &TestGateway, answers: &mut Answers, counter: u64, device: &str) -> String {
    let body = format!("<sr:ReadInventory><sr:DeviceID>{device}</sr:DeviceID></sr:ReadInventory>");
    let xml = request(SUPPLIER, "8.2", counter, &body);
    answers.send(gw, "supplier", &xml, "I0").await
}

/// The `sr:Device` of `device` in an 8.2 answer: its status, manufacturer and model.
fn device_in(answer: &str, device: &str) -> (String, String, String) {
    let at = answer
        .find(&format!("<sr:DeviceID>{device}</sr:DeviceID>"))
        .unwrap_or_else(|| panic!("{device} is not in {answer}"));
    let rest = &answer[at..];
    let field = |name: &str| element(rest, name).unwrap_or_default().to_owned();
    (
        field("DeviceStatus"),
        field("DeviceManufacturer"),
        field("DeviceModel"),
    )
}

/// The next `n` messages, as (User, code) with their bodies; the User from the RequestID for a
/// Service Response, from the ResponseID for an alert.
async fn messages(
    rx: &mut mpsc::Receiver<Received>,
    n: usize,
) -> (BTreeSet<(String, String)>, Vec<String>) {
    let (mut got, mut bodies) = (BTreeSet::new(), Vec::new());
    for _ in 0..n {
        let m = next(rx).await;
        let d = &m.description;
        let nth = |id: &Option<String>, i: usize| {
            id.as_deref()
                .and_then(|id| id.split(':').nth(i))
                .unwrap_or_default()
                .to_owned()
        };
        let key = match &d.alert_code {
            Some(code) => (nth(&d.response_id, 1), code.clone()),
            None => (
                nth(&d.request_id, 0),
                d.response_code.clone().unwrap_or_default(),
            ),
        };
        got.insert(key);
        bodies.push(String::from_utf8_lossy(&m.body).into_owned());
    }
    (got, bodies)
}

/// Nothing more arrives within a second.
async fn nothing_more(rx: &mut mpsc::Receiver<Received>) {
    if let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
        panic!("an unexpected message: {:?}", m.description);
    }
}

/// The audit records of accepted requests for `srv`: (code, response_follows).
async fn audited(gw: &TestGateway, srv: &str) -> Vec<(String, bool)> {
    gw.running.gateway.audit.sync().durable().await.unwrap();
    use dccgw::audit::{read_trail, AuditEvent};
    let mut out = Vec::new();
    read_trail(gw.running.gateway.audit.dir(), |_, e| {
        if let AuditEvent::Request(r) = e {
            if r.accepted() && r.srv.is_some_and(|s| s.to_string() == srv) {
                out.push((r.code.clone(), r.response_follows));
            }
        }
    })
    .unwrap();
    out
}

mod firmware;
mod inventory;
