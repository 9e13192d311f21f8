//! `docs/conformance.md`: the observed outcome of every flow, one row per SRV × Command
//! Variant, rendered here and compared with the committed file (`DCCGW_UPDATE_CONFORMANCE=1`
//! writes it instead).

use std::fmt::Write as _;
use std::path::PathBuf;

use dccgw::receiver::Received;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::flows::{Flow, Source};
use super::run::Step;

/// What one flow did.
pub struct Row<'a> {
    pub flow: &'a Flow,
    pub steps: Vec<Step>,
    /// Every message the flow brought to its User, in arrival order.
    pub messages: Vec<Received>,
    /// How the request was made, when the flow needs something first.
    pub note: Option<&'static str>,
}

impl Row<'_> {
    pub fn last(&self) -> &Step {
        self.steps.last().unwrap()
    }

    /// Acknowledged with `I99`, and no message answering the request followed (the DCC Alerts
    /// a change raises name no request).
    pub fn broken(&self) -> bool {
        self.last().code() == "I99"
            && self
                .messages
                .iter()
                .all(|m| m.description.request_id.is_none())
    }
}

/// What a message's body carries: the local name of `sr:Body`'s child, then (`a/b`) those of
/// that child's children other than the ones that repeat the header (`ServiceReference`,
/// `ServiceReferenceVariant`); empty for an empty or absent body.
pub fn shape(xml: &str) -> String {
    const REPEATED: [&str; 2] = ["ServiceReference", "ServiceReferenceVariant"];
    let mut reader = Reader::from_str(xml);
    // The depth below `sr:Body`, once inside it.
    let mut depth: Option<usize> = None;
    let mut top = String::new();
    let mut inner: Vec<String> = Vec::new();
    loop {
        let (local, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (
                String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                false,
            ),
            Ok(Event::Empty(e)) => (
                String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                true,
            ),
            Ok(Event::End(_)) => {
                match depth {
                    Some(0) => break,
                    Some(d) => depth = Some(d - 1),
                    None => {}
                }
                continue;
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => continue,
        };
        match depth {
            None if local == "Body" && !empty => depth = Some(0),
            None => {}
            Some(d) => {
                if d == 0 && top.is_empty() {
                    top = local.clone();
                } else if d == 1 && !REPEATED.contains(&local.as_str()) {
                    inner.push(local.clone());
                }
                if !empty {
                    depth = Some(d + 1);
                }
            }
        }
    }
    match (top.is_empty(), inner.is_empty()) {
        (true, _) => String::new(),
        (false, true) => top,
        (false, false) => format!("{top}/{}", inner.join("+")),
    }
}

/// One message, as the table names it: its kind and code (and a Service Response's body).
pub fn describe(m: &Received) -> String {
    let body = String::from_utf8_lossy(&m.body);
    let code = m.description.response_code.as_deref().unwrap_or("none");
    let alert = m.description.alert_code.as_deref().unwrap_or("none");
    if body.contains("DCCAlertCode") {
        format!("DCC Alert `{alert}`")
    } else if m.description.alert_code.is_some() {
        format!("Device Alert `{alert}`")
    } else if body.contains("<sr:LocalCommand>") {
        format!("LocalCommand `{code}`")
    } else {
        match shape(&body) {
            s if s.is_empty() || s == "ResponseMessage" => format!("Service Response `{code}`"),
            s => format!("Service Response `{code}` ({s})"),
        }
    }
}

fn synchronous(row: &Row<'_>) -> String {
    let one = |s: &Step| {
        let shape = shape(&s.answer);
        let shape = if shape.is_empty() || shape == "ResponseMessage" {
            String::new()
        } else {
            format!(" {shape}")
        };
        format!("`{}`{shape} (HTTP {})", s.code(), s.status)
    };
    match row.steps.as_slice() {
        [transform, signed] => format!("Transform: {}; then {}", one(transform), one(signed)),
        [step] if matches!(row.flow.cv, 5..=7) => format!("Transform: {}", one(step)),
        [step] => one(step),
        _ => unreachable!("a flow has one or two steps"),
    }
}

fn asynchronous(row: &Row<'_>) -> String {
    if row.broken() {
        return "**none: acknowledged, no final message**".into();
    }
    let mut kinds: Vec<String> = row.messages.iter().map(describe).collect();
    if kinds.is_empty() {
        return "—".into();
    }
    kinds.sort();
    let mut out: Vec<String> = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        if i > 0 && kinds[i - 1] == *k {
            continue;
        }
        match kinds.iter().filter(|x| *x == k).count() {
            1 => out.push(k.clone()),
            n => out.push(format!("{k} ×{n}")),
        }
    }
    out.join("; ")
}

/// The tests that prove a flow beyond this one (`module::function` under `tests/gateway/`).
fn proofs(row: &Row<'_>) -> Vec<&'static str> {
    let flow = row.flow;
    let srv = flow.entry.srv.to_string();
    let cv = flow.cv;
    let mut out = Vec::new();
    // The public-template test sends each template as published, as its own Command Variant.
    if flow.as_published && row.note.is_none() && flow.template_cv == Some(cv) {
        out.push("requests::every_public_template_gets_a_schema_valid_answer");
    }
    if flow.eligible && flow.as_published && flow.template_cv == Some(4) && matches!(cv, 4 | 5) {
        out.push(
            "critical::every_critical_template_goes_transform_signed_pre_command_and_device_response",
        );
    }
    match (srv.as_str(), cv) {
        ("4.1.1", 1) => out
            .push("round_trip::a_read_reaches_the_device_and_its_signed_response_reaches_the_user"),
        ("4.1.1", 2 | 3) | ("8.13", _) => out.push(
            "local::commands_for_local_delivery_reach_the_user_and_their_answers_come_back_by_8_13",
        ),
        ("7.1", 4 | 5) => {
            out.push("critical::wrong_signed_pre_commands_are_refused_with_their_codes")
        }
        ("7.1", 6 | 7) => {
            out.push("local::a_signed_pre_command_for_local_delivery_reaches_the_user_signed")
        }
        ("8.2", _) => out.push("access::read_inventory_answers_from_the_cache"),
        ("11.1" | "11.4" | "12.1", _) => out.push(
            "dcc_services::firmware::firmware_reaches_the_hubs_and_the_originator_hears_how_it_went",
        ),
        ("8.3" | "8.4" | "8.14.1" | "8.14.2" | "8.14.3" | "8.14.4" | "12.2", _) => out.push(
            "dcc_services::inventory::inventory_services_change_the_cache_and_tell_the_users",
        ),
        ("5.1" | "5.2" | "5.3", _) => {
            out.push("dsp::a_schedule_runs_at_its_times_reads_back_and_once_deleted_runs_no_more")
        }
        _ => {}
    }
    out
}

/// Panics unless each test [`proofs`] names is a function in its file under `tests/gateway/`.
pub fn assert_proofs_exist(rows: &[Row<'_>]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/gateway");
    let names: std::collections::BTreeSet<&str> = rows.iter().flat_map(proofs).collect();
    for name in names {
        let (module, function) = name.rsplit_once("::").unwrap();
        let module = module.replace("::", "/");
        let text = std::fs::read_to_string(dir.join(format!("{module}.rs")))
            .or_else(|_| std::fs::read_to_string(dir.join(module).join("mod.rs")))
            .unwrap_or_default();
        assert!(
            text.contains(&format!("async fn {function}("))
                || text.contains(&format!("fn {function}(")),
            "docs/conformance.md would name {name}, which is no test"
        );
    }
}

fn sent_as(row: &Row<'_>) -> String {
    let f = row.flow;
    let source = match &f.source {
        Source::Template(file) => format!("template `{file}`"),
        Source::Own => "our body".into(),
    };
    let note: String = [f.adapted, row.note]
        .iter()
        .flatten()
        .map(|n| format!("; {n}"))
        .collect();
    format!("{} → `{}`, {source}{note}", f.user, f.target)
}

const HEADER: &str = "# Conformance: every SRV × Command Variant

What the gateway does with each Service Reference Variant and each Command Variant the
catalogue (`schemas/catalogue.json`) allows it: what the User gets synchronously, what reaches
its Receive Response Service asynchronously, and the tests that prove it.

**Generated, not written.** The end-to-end test `conformance`
(`tests/gateway/conformance/`, `every_srv_and_command_variant_end_to_end`)
sends every row over mTLS to a gateway routing to the in-process simulated hub network (devices
answering in 10 ms), follows each flow to its last message, and renders this table from what it
observed; it fails when the table differs from this file. After a change of behaviour:

```sh
DCCGW_UPDATE_CONFORMANCE=1 cargo test --test gateway conformance
```

How each row is made and checked:

- **Sent as**: the demo User that sends it (one that may: `supplier` is IS and GS,
  `network-operator` ED and GT, `other-user` OU; a row no demo User may send is sent by the
  supplier and refused), the target, and the body: a public template's, or our own (valid
  against the DUIS 5.4 XSD) where no template exists. A template is given the row's Command
  Variant, the User's RequestID with a fresh counter, and loses an optional
  `ExecutionDateTime` (each row is the immediate form of its service; the future-dated forms
  have tests of their own); where the demo data needs it, a device or meter point in it is
  replaced, as the row says.
- **Order**: the flows of one User run one after another (its counters rise), the Users side
  by side; the DCC's own services that change the registration data or raise DCC Alerts run
  last, one at a time, in the order their changes need (a comms hub pre-notified, installed,
  returned; the demo meter decommissioned at the very end).
- **Synchronous**: the answer's `ResponseCode`, its body (`ResponseMessage/PreCommand` and so
  on) and HTTP status. Command Variants 5, 6 and 7 first send the Transform (Command Variant 4)
  and sign its pre-command with the User's Digital Signing key.
- **Asynchronous**: every message for the request at the User's Receive Response Service:
  Service Responses (with their body), `LocalCommand` messages, Device Alerts and DCC Alerts,
  with their codes. The DCC Alerts a registration change raises name no request: they are
  shown with the flow that raised them (to every User they reach), and are not its final
  message. The test waits (bounded) for every message the audit trail promises
  (`response_follows`), checks that nothing arrives for a request that promises none, and
  that every message and every answer validates against the DUIS 5.4 XSD (xmllint) and
  carries the DCC's signature (xmlsec1).
- **Proved by**: that test, and the more specific tests of the flow (`module::function` under
  `tests/gateway/`; the test checks that each one it names exists).
- A row reading **none: acknowledged, no final message** is an `I99` with no final message:
  a promise the gateway does not keep yet (the test lists these rows and fails if the list
  changes).

";

/// The whole document.
pub fn render(rows: &[Row<'_>]) -> String {
    let mut out = String::from(HEADER);
    out.push_str(
        "| SRV | Name | CV | Sent as | Synchronous | Asynchronous | Proved by |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let f = row.flow;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            f.entry.srv,
            f.entry.name.replace('|', "\\|"),
            f.cv,
            sent_as(row),
            synchronous(row),
            asynchronous(row),
            ["conformance"]
                .into_iter()
                .chain(proofs(row))
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    out
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/conformance.md")
}

/// Compares `rendered` with the committed document (or writes it, under
/// `DCCGW_UPDATE_CONFORMANCE=1`); panics with the lines that differ.
pub fn check(rendered: &str) {
    let path = path();
    if std::env::var_os("DCCGW_UPDATE_CONFORMANCE").is_some_and(|v| v == "1") {
        std::fs::write(&path, rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == rendered {
        return;
    }
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = rendered.lines().collect();
    let mut diff = String::new();
    for line in old.iter().filter(|l| !new.contains(l)).take(40) {
        let _ = writeln!(diff, "- {line}");
    }
    for line in new.iter().filter(|l| !old.contains(l)).take(40) {
        let _ = writeln!(diff, "+ {line}");
    }
    panic!(
        "docs/conformance.md does not say what the gateway does (- the file, + observed); \
         DCCGW_UPDATE_CONFORMANCE=1 rewrites it:\n{diff}"
    );
}
