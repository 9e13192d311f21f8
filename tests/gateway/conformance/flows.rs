//! The flows: every SRV of the catalogue × every Command Variant it allows, each with the demo
//! User that sends it, its target and its body — a public template's (the first by file name
//! whose originator is that User, one without an `ExecutionDateTime` if there is one) or our
//! own (the body of the SRV's example in `examples/requests/`), valid against the DUIS 5.4 XSD
//! (the test checks).
//!
//! A row is about the immediate form of its service: a template's `ExecutionDateTime` is taken
//! out where the XSD makes it optional (the future-dated forms have their own tests).

use std::path::Path;

use dccgw::catalogue::{Catalogue, SrvEntry};
use dccgw::demo::{DEMO_DEVICES, DEMO_USERS};
use dccgw::domain::DCC_ID;

use crate::support::element;

/// Where a flow's body comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A public template, by file name.
    Template(String),
    /// Our own body (the SRV's example's, or an empty body element).
    Own,
}

/// What runs before a flow, or around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// With the others, concurrently across Users.
    Main,
    /// After every other flow has finished, one at a time: the DCC's own services, which change
    /// the registration data other flows rely on (a device's status or details) or raise DCC
    /// Alerts that name no request.
    Last,
}

/// One row: an SRV × Command Variant, and what is sent for it.
#[derive(Clone, Debug)]
pub struct Flow {
    pub entry: &'static SrvEntry,
    pub cv: u8,
    /// The demo User (directory name under `certs/users`).
    pub user: &'static str,
    pub originator: &'static str,
    pub target: String,
    /// The `sr:Body` child, as XML.
    pub body: String,
    pub source: Source,
    /// Whether the User holds a role the SRV admits (otherwise the flow is a refusal row).
    pub eligible: bool,
    /// The Command Variant of the template the body comes from.
    pub template_cv: Option<u8>,
    /// How the template was adapted to the demo data.
    pub adapted: Option<&'static str>,
    /// Whether the body is the template's as published (nothing taken out or replaced).
    pub as_published: bool,
    pub phase: Phase,
}

/// The demo Users that act: each is registered for the demo meter points in its roles. The
/// second supplier is registered for nothing, so it acts in no row.
const ACTING: [&str; 3] = ["supplier", "network-operator", "other-user"];

/// The one body of ours no example carries: 4.6.2 admits only the Export Supplier role, which
/// no demo User holds, so it has no example (the row is a refusal). The content of the body
/// element: a day of the log.
const READ_LOG_4_6_2: &str = "<sr:ReadLogPeriod><sr:StartDateTime>2026-01-01T00:00:00Z</sr:StartDateTime><sr:EndDateTime>2026-01-02T00:00:00Z</sr:EndDateTime></sr:ReadLogPeriod>";

/// The DCC's own services other than 8.2 and 8.13: run last, one at a time, in this order (the
/// decommissioning of the demo meter at the very end).
pub const LAST: &[&str] = &[
    "12.1", "5.1", "5.2", "5.3", "11.1", "11.4", "8.4", "12.2", "8.14.2", "8.14.1", "8.14.3",
    "8.14.4", "8.3",
];

/// The comms hub the last flows bring in: pre-notified (12.2), installed without and then with
/// the SM WAN (8.14.2, 8.14.1), returned (8.14.4).
pub const NEW_HUB: &str = "00-DB-12-34-56-78-90-B0";

/// Text to replace, and its replacement.
type Replacements = &'static [(&'static str, &'static str)];

/// Templates whose devices or meter points the demo data does not have as they need: the text
/// replaced, and what the row says of it.
const ADAPTED: &[(&str, Replacements, &str)] = &[
    (
        "8.14.2",
        &[
            ("00-DB-12-34-56-78-90-A2", NEW_HUB),
            ("1000999888", "3453612"),
        ],
        "for the hub the 12.2 row pre-notified, at the demo gas meter point",
    ),
    (
        "8.14.4",
        &[("00-DB-12-34-56-78-90-A2", NEW_HUB)],
        "for the hub the 12.2 row pre-notified",
    ),
];

/// The SRVs whose body must carry an `ExecutionDateTime` (the XSD requires it).
const EXECUTION_DATE_TIME_REQUIRED: &[&str] = &["8.5"];

/// A public template, read.
struct Template {
    file: String,
    srv: String,
    originator: String,
    target: String,
    cv: u8,
    /// The `sr:Body` child, without any `ExecutionDateTime`.
    body: String,
    future_dated: bool,
}

fn read_templates(dir: &Path) -> Vec<Template> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let id = element(&text, "RequestID").unwrap();
            let mut parts = id.split(':');
            let start = text.find("<sr:Body>").unwrap() + "<sr:Body>".len();
            let end = text.find("</sr:Body>").unwrap();
            let body = text[start..end].trim();
            Template {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                srv: element(&text, "ServiceReferenceVariant")
                    .unwrap()
                    .to_owned(),
                originator: parts.next().unwrap().to_owned(),
                target: parts.next().unwrap().to_owned(),
                cv: element(&text, "CommandVariant").unwrap().parse().unwrap(),
                body: body.to_owned(),
                future_dated: body.contains("ExecutionDateTime"),
            }
        })
        .collect()
}

fn without_execution_date_time(body: &str) -> String {
    const OPEN: &str = "<sr:ExecutionDateTime>";
    const CLOSE: &str = "</sr:ExecutionDateTime>";
    match (body.find(OPEN), body.find(CLOSE)) {
        (Some(a), Some(b)) => {
            let rest = body[b + CLOSE.len()..].trim_start();
            format!("{}{rest}", body[..a].trim_end())
        }
        _ => body.to_owned(),
    }
}

fn user_id(name: &str) -> &'static str {
    DEMO_USERS.iter().find(|u| u.0 == name).unwrap().1
}

fn user_name(id: &str) -> Option<&'static str> {
    DEMO_USERS
        .iter()
        .find(|u| u.1.eq_ignore_ascii_case(id))
        .map(|u| u.0)
}

fn eligible(entry: &SrvEntry, user: &str) -> bool {
    let roles = DEMO_USERS.iter().find(|u| u.0 == user).unwrap().3;
    entry
        .roles
        .iter()
        .any(|r| roles.split('|').any(|x| x == r.code()))
}

/// The first demo device (in the order the demo lists meters first) the SRV may target.
fn device_for(entry: &SrvEntry) -> String {
    ["ESME", "GSME", "GPF", "CHF", "PPMID", "HCALCS"]
        .iter()
        .find_map(|kind| {
            let (id, ..) = DEMO_DEVICES.iter().find(|d| d.1 == *kind)?;
            entry
                .device_types
                .iter()
                .any(|t| t.to_string() == *kind)
                .then(|| (*id).to_owned())
        })
        .unwrap_or_else(|| DEMO_DEVICES[1].0.to_owned())
}

/// Every flow, in catalogue order (the inventory-changing ones in [`LAST`]).
pub fn all(templates: &Path) -> Vec<Flow> {
    let read = read_templates(templates);
    let mut flows = Vec::new();
    for entry in Catalogue::builtin().iter() {
        let srv = entry.srv.to_string();
        let mine: Vec<&Template> = read.iter().filter(|t| t.srv == srv).collect();
        // The User: a template's acting originator if it may send the SRV, else the first
        // acting demo User that may; a refusal row (sent by the supplier) when none may.
        let acting = |t: &Template| {
            user_name(&t.originator).is_some_and(|u| ACTING.contains(&u) && eligible(entry, u))
        };
        let template = mine
            .iter()
            .find(|t| acting(t) && !t.future_dated)
            .or_else(|| mine.iter().find(|t| acting(t)))
            .or_else(|| mine.iter().find(|t| !t.future_dated))
            .or_else(|| mine.first());
        let user = template
            .and_then(|t| user_name(&t.originator))
            .filter(|u| ACTING.contains(u) && eligible(entry, u))
            .or_else(|| ACTING.iter().copied().find(|u| eligible(entry, u)));
        let target = if entry.non_device {
            DCC_ID.to_string()
        } else {
            template.map_or_else(|| device_for(entry), |t| t.target.clone())
        };
        let (mut body, source) = match template {
            Some(t) if EXECUTION_DATE_TIME_REQUIRED.contains(&srv.as_str()) => {
                (t.body.clone(), Source::Template(t.file.clone()))
            }
            Some(t) => (
                without_execution_date_time(&t.body),
                Source::Template(t.file.clone()),
            ),
            None => (own_body(entry), Source::Own),
        };
        let adapted = ADAPTED.iter().find(|(s, ..)| *s == srv);
        for (from, to) in adapted.map_or(&[][..], |a| a.1) {
            body = body.replace(from, to);
        }
        let as_published = template.is_some_and(|t| t.body == body);
        let phase = if LAST.contains(&srv.as_str()) {
            Phase::Last
        } else {
            Phase::Main
        };
        for cv in &entry.command_variants {
            flows.push(Flow {
                entry,
                cv: cv.get(),
                user: user.unwrap_or("supplier"),
                originator: user_id(user.unwrap_or("supplier")),
                target: target.clone(),
                body: body.clone(),
                source: source.clone(),
                eligible: user.is_some(),
                template_cv: template.map(|t| t.cv),
                adapted: adapted.map(|a| a.2),
                as_published,
                phase,
            });
        }
    }
    let position = |f: &Flow| LAST.iter().position(|s| *s == f.entry.srv.to_string());
    flows.sort_by_key(|f| (f.phase == Phase::Last, position(f)));
    flows
}

/// Our body for an SRV without a template: the body of its example in `examples/requests/`
/// (`tools/gen_examples.py` writes them from the XSD; `tests/gateway/examples.rs` checks each is
/// accepted), or an empty element for an SRV without one.
fn own_body(entry: &SrvEntry) -> String {
    let srv = entry.srv.to_string();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/requests")
        .join(format!("{srv}.xml"));
    let name = &entry.body_element;
    match std::fs::read_to_string(file) {
        Ok(example) => {
            let start = example.find("<sr:Body>").unwrap() + "<sr:Body>".len();
            let end = example.find("</sr:Body>").unwrap();
            example[start..end].trim().to_owned()
        }
        Err(_) if srv == "4.6.2" => format!("<sr:{name}>{READ_LOG_4_6_2}</sr:{name}>"),
        Err(_) => format!("<sr:{name}/>"),
    }
}

/// The request a flow sends as Command Variant `cv` with `counter`.
pub fn request(flow: &Flow, cv: u8, counter: u64) -> String {
    let srv = flow.entry.srv;
    let sr = flow.entry.service_reference;
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{}:{}:{counter}</sr:RequestID><sr:CommandVariant>{cv}</sr:CommandVariant><sr:ServiceReference>{sr}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header><sr:Body>{}</sr:Body></sr:Request>"#,
        flow.originator, flow.target, flow.body
    )
}
