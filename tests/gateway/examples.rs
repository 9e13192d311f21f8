//! `examples/requests/`: there is an example for every SRV a demo User may send (so a new SRV
//! without one fails here), and each, signed by the User its RequestID names, validates against
//! the DUIS 5.4 XSD, is accepted by a gateway with the demo register at the URL the index gives
//! it (`I0` or `I99`), and brings what it promises: every `I99` its final message with `I0`
//! (the device's Service Response, the command for local delivery, the DCC's answer); every
//! Transform (Command Variant 4) its pre-command, which, signed back as Command Variant 5, is
//! acknowledged and brings the device's Service Response. The DCC's own services that change
//! the demo's data go last, in the order the index gives.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dccgw::audit::{read_trail, AuditEvent};
use dccgw::catalogue::Catalogue;
use dccgw::demo::DEMO_USERS;
use dccgw::duis::testing::DuisXsd;
use dccgw::gbcs::usecase::response_to;
use dccgw::gbcs::DlmsDateTime;
use time::format_description::well_known::Rfc3339;

use crate::conformance::flows::LAST;
use crate::conformance::run::{path_for, Clients, Inbox};
use crate::critical::{counter, routed, signed_back};
use crate::local::{local_command, return_response};
use crate::support::{element, xmlsec1_verifies, TestGateway};

/// The placeholder `ExecutionDateTime` of the future-dated examples (`tools/gen_examples.py`).
const LATER: &str = "2027-01-01T00:00:00Z";

/// How long the final messages may take (the devices answer in 10 ms; a held request is sent
/// five seconds after it is made).
const BOUND: Duration = Duration::from_secs(60);

/// One row of the index.
#[derive(Clone, Debug)]
struct Example {
    file: String,
    srv: String,
    cv: u8,
    url: String,
    /// The demo User (directory name under `certs/users`).
    user: &'static str,
    xml: String,
}

impl Example {
    /// Whether this is the SRV's own example (not a variant).
    fn main(&self) -> bool {
        self.file == format!("{}.xml", self.srv)
    }
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests")
}

/// The demo User directory for an originator.
fn user_dir(originator: &str) -> &'static str {
    DEMO_USERS
        .iter()
        .find(|(_, id, ..)| id.eq_ignore_ascii_case(originator))
        .map(|(dir, ..)| *dir)
        .unwrap_or_else(|| panic!("{originator} is not a demo User"))
}

/// The index's rows, in its order.
fn index() -> Vec<Example> {
    let text = std::fs::read_to_string(dir().join("README.md")).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| ["))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let file = cells[1].split("](").nth(1).unwrap().trim_end_matches(')');
            let xml =
                std::fs::read_to_string(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let originator = element(&xml, "RequestID")
                .and_then(|id| id.split(':').next())
                .unwrap();
            let example = Example {
                file: file.to_owned(),
                srv: cells[2].to_owned(),
                cv: cells[4].parse().unwrap(),
                url: cells[5].trim_matches('`').to_owned(),
                user: user_dir(originator),
                xml: xml.clone(),
            };
            assert_eq!(
                element(&xml, "ServiceReferenceVariant"),
                Some(&*example.srv)
            );
            let cv = element(&xml, "CommandVariant")
                .unwrap()
                .parse::<u8>()
                .unwrap();
            assert_eq!(cv, example.cv, "{file}");
            assert_eq!(
                path_for(cv),
                example.url,
                "{file}: the URL for Command Variant {cv}"
            );
            example
        })
        .collect()
}

/// The SRVs a demo User may send: those whose catalogue entry admits a role a demo User holds.
fn requestable() -> BTreeSet<String> {
    let roles: BTreeSet<&str> = DEMO_USERS.iter().flat_map(|u| u.3.split('|')).collect();
    Catalogue::builtin()
        .iter()
        .filter(|e| e.roles.iter().any(|r| roles.contains(r.code())))
        .map(|e| e.srv.to_string())
        .collect()
}

#[test]
fn there_is_an_example_for_every_srv_a_demo_user_may_send() {
    let examples = index();
    let mains: Vec<String> = examples
        .iter()
        .filter(|e| e.main())
        .map(|e| e.srv.clone())
        .collect();
    let srvs: BTreeSet<String> = mains.iter().cloned().collect();
    assert_eq!(srvs.len(), mains.len(), "an SRV with two main examples");
    let wanted = requestable();
    assert_eq!(
        srvs, wanted,
        "the examples' SRVs (left) and the ones a demo User may send (right) differ: run \
         python3 tools/gen_examples.py"
    );
    assert_eq!(srvs.len(), 124);
    // The variants: Command Variants 2 and 3, a request the DSP holds and one the device holds.
    let variants: Vec<&str> = examples
        .iter()
        .filter(|e| !e.main())
        .map(|e| e.file.as_str())
        .collect();
    assert_eq!(
        variants,
        [
            "4.1.1-cv2.xml",
            "4.1.1-cv3.xml",
            "4.1.1-future.xml",
            "1.6-future.xml"
        ]
    );
    let files = std::fs::read_dir(dir())
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "xml")
        })
        .count();
    assert_eq!(files, examples.len(), "an example the index does not list");
}

/// The committed examples are what the generator writes from today's catalogue.
#[test]
fn the_examples_are_what_the_generator_writes() {
    if !crate::support::have_tool("python3") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("python3")
        .arg("tools/gen_examples.py")
        .arg("--out")
        .arg(out.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success());
    let names = |d: &Path| -> BTreeSet<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(out.path()), names(&dir()));
    for name in names(&dir()) {
        let written = std::fs::read_to_string(out.path().join(&name)).unwrap();
        let committed = std::fs::read_to_string(dir().join(&name)).unwrap();
        assert!(
            written == committed,
            "examples/requests/{name} differs from what python3 tools/gen_examples.py writes"
        );
    }
}

/// What was sent: the example, its RequestID and its synchronous answer.
struct Sent {
    example: Example,
    request_id: String,
    signed: String,
    answer: String,
}

impl Sent {
    fn code(&self) -> &str {
        element(&self.answer, "ResponseCode").unwrap_or("none")
    }
}

/// The examples in two phases: the ones that change nothing (8.13 and 5.3, which need an
/// earlier answer, after the request they need; future-dated ones due five seconds after they
/// are made), then the DCC's own services that change the demo's data, in [`LAST`]'s order.
fn phases(examples: Vec<Example>) -> [Vec<Example>; 2] {
    let last = |e: &Example| LAST.iter().position(|s| *s == e.srv && e.main());
    let (mut changing, mut first): (Vec<Example>, Vec<Example>) =
        examples.into_iter().partition(|e| last(e).is_some());
    first.sort_by_key(|e| e.srv == "8.13");
    changing.sort_by_key(last);
    [first, changing]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_is_accepted_and_brings_its_final_message() {
    let xsd = DuisXsd::prepare();
    let (gw, _pki, rx_server, rx) = routed("").await;
    let inbox = Inbox::collect(rx);
    let clients = Clients::new(&gw, &["supplier", "network-operator", "other-user"]);
    let mut sent: Vec<Sent> = Vec::new();
    for phase in phases(index()) {
        for example in phase {
            let one = send(&gw, &clients, &inbox, example, &sent).await;
            sent.extend(one);
        }
        // Every final message of the phase before the next changes the demo's data.
        assert_final_messages(&sent, &inbox).await;
    }
    let promised: Vec<&Sent> = sent.iter().filter(|s| s.code() == "I99").collect();
    assert!(promised.len() >= 100, "{} acknowledged", promised.len());
    if let Some(xsd) = &xsd {
        let docs: Vec<&str> = sent
            .iter()
            .flat_map(|s| [s.signed.as_str(), s.answer.as_str()])
            .collect();
        xsd.validate_all(&docs)
            .unwrap_or_else(|report| panic!("schema-invalid examples or answers:\n{report}"));
    }
    assert_decisions_name_their_rules(&gw, &sent).await;
    // A sample of the final messages carries the DCC's signature (xmlsec1).
    for s in promised.iter().step_by(16) {
        let message = final_message(&inbox, s).unwrap();
        xmlsec1_verifies(&gw, &message);
    }
    gw.running.shutdown().await;
    rx_server.stop().await;
}

/// Sends `example` (signed by its User, with a fresh counter) and checks its answer; a
/// Transform's pre-command is signed back and sent as Command Variant 5. What was sent.
async fn send(
    gw: &TestGateway,
    clients: &Clients,
    inbox: &Inbox,
    example: Example,
    sent: &[Sent],
) -> Vec<Sent> {
    let xml = fill_in(&example, sent, inbox).await;
    let xml = dccgw::tools::stamp_counter(&xml, counter()).unwrap();
    let signed = String::from_utf8(gw.signed(example.user, xml.as_bytes())).unwrap();
    let (status, answer) = clients.send(gw, example.user, &example.url, &signed).await;
    let one = Sent {
        request_id: element(&xml, "RequestID").unwrap().to_ascii_uppercase(),
        example,
        signed,
        answer,
    };
    let code = one.code();
    assert!(
        status == 200 && (code == "I99" || code == "I0"),
        "{} at {}: HTTP {status}, {code}\n{}",
        one.example.file,
        one.example.url,
        one.answer
    );
    if one.example.cv != 4 {
        return vec![one];
    }
    assert!(one.answer.contains("<sr:PreCommand>"), "{}", one.answer);
    let user = one.example.user;
    let back = signed_back(&gw.certs(), user, &one.answer, 5);
    let signed = String::from_utf8(gw.signed(user, back.as_bytes())).unwrap();
    let (status, answer) = clients.send(gw, user, path_for(5), &signed).await;
    let mut example = one.example.clone();
    example.cv = 5;
    let again = Sent {
        request_id: one.request_id.clone(),
        example,
        signed,
        answer,
    };
    assert_eq!(
        (status, again.code()),
        (200, "I99"),
        "{} signed back: {}",
        again.example.file,
        again.answer
    );
    vec![one, again]
}

/// Waits (bounded) for the final message of every request `sent` acknowledged `I99`, and fails
/// naming the ones that did not come.
async fn assert_final_messages(sent: &[Sent], inbox: &Inbox) {
    let promised: Vec<&Sent> = sent.iter().filter(|s| s.code() == "I99").collect();
    inbox
        .wait_for(BOUND, |i| {
            promised.iter().all(|s| final_message(i, s).is_some())
        })
        .await;
    let missing: Vec<String> = promised
        .iter()
        .filter(|s| final_message(inbox, s).is_none())
        .map(|s| {
            let got: Vec<_> = inbox
                .for_request(&s.request_id)
                .into_iter()
                .map(|m| m.description)
                .collect();
            format!("{} (CV{}): {got:?}", s.example.file, s.example.cv)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged, and no final message with I0:\n{}",
        missing.join("\n")
    );
}

/// Every decision in the audit trail names the rule-set version it used: each request's, each
/// alert's routing, and the DSP's release of the held one (4.1.1-future) at its time.
async fn assert_decisions_name_their_rules(gw: &TestGateway, sent: &[Sent]) {
    gw.running.gateway.audit.sync().durable().await.unwrap();
    let mut requests = Vec::new();
    let mut executions = Vec::new();
    read_trail(gw.running.gateway.audit.dir(), |_, e| match e {
        AuditEvent::Request(r) => requests.push(r.clone()),
        AuditEvent::Execution(x) => executions.push(x.clone()),
        AuditEvent::Routing(r) => assert_eq!(r.rules, "base", "{r:?}"),
        // No anomaly thresholds are in force here: no anomaly decision is made.
        AuditEvent::Delivery(_) | AuditEvent::Anomaly(_) => {}
    })
    .unwrap();
    assert!(
        requests.len() >= sent.len(),
        "{} request records",
        requests.len()
    );
    for r in &requests {
        assert_eq!(r.rules.as_deref(), Some("base"), "{r:?}");
    }
    let held = &sent
        .iter()
        .find(|s| s.example.file == "4.1.1-future.xml")
        .unwrap()
        .request_id;
    let release = executions
        .iter()
        .find(|x| x.request_id.to_string().eq_ignore_ascii_case(held))
        .unwrap_or_else(|| panic!("the held {held} was released unaudited: {executions:?}"));
    assert_eq!(
        (release.source.as_str(), release.decision.as_str()),
        ("held", "sent")
    );
    assert_eq!(release.rules, "base");
    assert_eq!(release.role.map(|r| r.code()), Some("IS"));
}

/// The final message `s` promised: for a command returned for local delivery, the
/// `LocalCommand`; otherwise a Service Response; with `I0`.
fn final_message(inbox: &Inbox, s: &Sent) -> Option<Vec<u8>> {
    let local = matches!(s.example.cv, 2 | 6);
    inbox
        .for_request(&s.request_id)
        .into_iter()
        .find(|m| {
            let body = String::from_utf8_lossy(&m.body);
            m.description.response_code.as_deref() == Some("I0")
                && body.contains("<sr:LocalCommand>") == local
        })
        .map(|m| m.body.to_vec())
}

/// The example as it is sent: a future-dated one due five seconds from now (time enough to
/// arrive ahead of it on a busy machine); 5.3 naming the schedule 5.1 created; 8.13 reporting
/// the device's answer to the command 4.1.1-cv2 returned for local delivery.
async fn fill_in(example: &Example, sent: &[Sent], inbox: &Inbox) -> String {
    let earlier = |file: &str| {
        sent.iter()
            .find(|s| s.example.file == file)
            .unwrap_or_else(|| panic!("{} needs {file} first", example.file))
    };
    let xml = example.xml.clone();
    if xml.contains(LATER) {
        let due = time::OffsetDateTime::now_utc() + Duration::from_secs(5);
        let due = due.replace_nanosecond(0).unwrap().format(&Rfc3339).unwrap();
        return xml.replace(LATER, &due);
    }
    match example.srv.as_str() {
        "5.3" => {
            let id = element(&earlier("5.1.xml").answer, "DSPScheduleID").unwrap();
            replace_element(&xml, "DSPScheduleID", id)
        }
        "8.13" => {
            let original = &earlier("4.1.1-cv2.xml").request_id;
            let came = inbox
                .wait_for(BOUND, |i| !i.for_request(original).is_empty())
                .await;
            assert!(came, "no LocalCommand for {original}");
            let message = inbox.for_request(original).remove(0);
            let command = local_command(&String::from_utf8_lossy(&message.body));
            let now = DlmsDateTime::from_utc(time::OffsetDateTime::now_utc());
            let answer = response_to(&command, Some(now), vec![0x0C, 0x01, 0x00]);
            // The body as the example has it, with the RequestID and the answer filled in.
            let report = return_response(original, &answer);
            let filled = element(&report, "DeviceGBCSResponse").unwrap();
            let xml = replace_element(&xml, "OriginalRequestID", original);
            replace_element(&xml, "DeviceGBCSResponse", filled)
        }
        _ => xml,
    }
}

/// `xml` with the text of its first `sr:<name>` replaced.
fn replace_element(xml: &str, name: &str, text: &str) -> String {
    let open = format!("<sr:{name}>");
    let start = xml.find(&open).unwrap() + open.len();
    let end = start + xml[start..].find('<').unwrap();
    format!("{}{text}{}", &xml[..start], &xml[end..])
}

/// The URL map in `docs/integrators.md` is the gateway's: each row's Command Variants are the
/// ones its service accepts.
#[test]
fn the_url_map_in_the_integrators_guide_is_the_gateways() {
    use dccgw::domain::{CommandVariant, DuisService};
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/integrators.md"))
            .unwrap();
    let mut rows = 0;
    for service in DuisService::ALL {
        let row = guide
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", service.path())))
            .unwrap_or_else(|| panic!("{} is not in the URL map", service.path()));
        let listed: Vec<u8> = row
            .rsplit('|')
            .nth(1)
            .unwrap()
            .split(',')
            .map(|v| v.trim().parse().unwrap())
            .collect();
        let accepted: Vec<u8> = (1..=8u8)
            .filter(|v| service.accepts(CommandVariant::try_from(*v).unwrap()))
            .collect();
        assert_eq!(listed, accepted, "{}", service.path());
        rows += 1;
    }
    assert_eq!(rows, 3);
}
