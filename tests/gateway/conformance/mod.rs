//! Conformance end to end: for every SRV of the catalogue and every Command Variant it allows, a
//! request (a public template's body, or our own where none exists) sent over mTLS by the demo
//! User that may send it, followed to its last DUIS message — the synchronous answer, the
//! Transform's pre-command signed back for Command Variants 5–7, and every message at the
//! User's Receive Response Service. Every answer and message validates against the DUIS 5.4
//! XSD and carries the DCC's signature (xmlsec1); no `I99` goes without its final message
//! (waited for, bounded) except the rows listed in [`NO_FINAL_MESSAGE`]; the audit trail's
//! `response_follows` agrees with what arrived. The observed outcomes are rendered as
//! `docs/conformance.md` and compared with the committed file.

pub(crate) mod flows;
pub(crate) mod run;
mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dccgw::audit::{read_trail, AuditEvent, RequestRecord};
use dccgw::demo::DEMO_ESME;
use dccgw::duis::testing::DuisXsd;
use dccgw::gbcs::usecase::response_to;
use dccgw::gbcs::DlmsDateTime;
use dccgw::receiver::Received;

use crate::critical::{counter, routed};
use crate::local::{local_command, request as local_request, return_response};
use crate::support::{self, element, xmlsec1_verifies, TestGateway};
use flows::{Flow, Phase};
use run::{send_flow, send_step, Clients, Inbox, Step};
use table::Row;

/// The rows acknowledged `I99` with no final message: promises not kept (SRV, Command Variant;
/// none today). The test fails when the observed list differs.
const NO_FINAL_MESSAGE: &[(&str, u8)] = &[];

/// How long a flow's final messages may take (the devices answer in 10 ms), and how long
/// nothing must arrive before a phase (or a flow of the last phase) counts as finished.
const BOUND: Duration = Duration::from_secs(60);
const QUIET: Duration = Duration::from_secs(1);

/// Whether `messages` hold what a request of Command Variant `cv` that promises a final
/// message brings: the command for local delivery (2, 3, 6, 7), something else — the device's
/// Service Response, or the DCC's answer — (1, 3, 5, 7, 8).
fn all_in(cv: u8, messages: &[Received]) -> bool {
    let local = |m: &Received| String::from_utf8_lossy(&m.body).contains("<sr:LocalCommand>");
    let wants_local = matches!(cv, 2 | 3 | 6 | 7);
    let wants_other = matches!(cv, 1 | 3 | 5 | 7 | 8);
    (!wants_local || messages.iter().any(local))
        && (!wants_other || messages.iter().any(|m| !local(m)))
}

/// What one User's flows share as they run in order: the schedule 5.1 created (read and
/// deleted by 5.2 and 5.3), and the RequestIDs of requests sent only to make a row possible.
#[derive(Default)]
struct Context {
    schedule: Option<String>,
    helpers: Vec<String>,
}

/// A flow as sent: the flow, its steps, and a note on how its request was made.
type Sent<'f> = (&'f Flow, Vec<Step>, Option<&'static str>);

/// The gateway under test, its Users' clients, and what reached their Receive Response Service.
struct Bench {
    gw: TestGateway,
    clients: Clients,
    inbox: std::sync::Arc<Inbox>,
    /// RequestIDs sent only to make a row possible.
    helpers: Vec<String>,
    /// The messages naming no request (DCC Alerts) that arrived while a last-phase flow ran.
    unnamed: BTreeMap<String, Vec<Received>>,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_srv_and_command_variant_end_to_end() {
    let Some(anchors) = support::anchors() else {
        return;
    };
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let flows = flows::all(&anchors.join("duis-samples/templates"));
    let srvs: BTreeSet<String> = flows.iter().map(|f| f.entry.srv.to_string()).collect();
    assert_eq!((srvs.len(), flows.len()), (129, 388));
    let (gw, _pki, rx_server, rx) = routed("").await;
    let mut bench = Bench {
        clients: Clients::new(&gw, &["supplier", "network-operator", "other-user"]),
        gw,
        inbox: Inbox::collect(rx),
        helpers: Vec::new(),
        unnamed: BTreeMap::new(),
    };
    let mut sent = bench.main_phase(&flows).await;
    let before_last = bench.inbox.len();
    sent.extend(bench.last_phase(&flows).await);
    bench.assert_nothing_stray(&sent, before_last);
    let rows = bench.rows(sent);

    let audit = audit_records(&bench.gw);
    let mut problems = Vec::new();
    for row in &rows {
        check_row(row, &audit, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "{} flows break a promise:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let broken: BTreeSet<(String, u8)> = rows
        .iter()
        .filter(|r| r.broken())
        .map(|r| (r.flow.entry.srv.to_string(), r.flow.cv))
        .collect();
    let known: BTreeSet<(String, u8)> = NO_FINAL_MESSAGE
        .iter()
        .map(|(s, cv)| ((*s).to_owned(), *cv))
        .collect();
    assert_eq!(broken, known, "the rows acknowledged with no final message");
    check_documents(&bench.gw, &xsd, &rows);
    table::assert_proofs_exist(&rows);
    table::check(&table::render(&rows));
    rx_server.stop().await;
}

impl Bench {
    /// The flows of each User in order (a User's counters rise), the Users side by side; then
    /// every final message the audit trail promises (bounded), then quiet.
    async fn main_phase<'f>(&mut self, flows: &'f [Flow]) -> Vec<Sent<'f>> {
        let main: Vec<&Flow> = flows.iter().filter(|f| f.phase == Phase::Main).collect();
        let users: BTreeSet<&str> = main.iter().map(|f| f.user).collect();
        let (gw, clients, inbox) = (&self.gw, &self.clients, &*self.inbox);
        let per_user = futures_util::future::join_all(users.iter().map(|user| {
            let mine: Vec<&Flow> = main.iter().copied().filter(|f| f.user == *user).collect();
            async move {
                let mut context = Context::default();
                let mut done = Vec::new();
                for flow in mine {
                    done.push(run_flow(gw, clients, inbox, flow, &mut context).await);
                }
                (done, context.helpers)
            }
        }))
        .await;
        let mut sent = Vec::new();
        for (done, helpers) in per_user {
            sent.extend(done);
            self.helpers.extend(helpers);
        }
        let audit = audit_records(&self.gw);
        let promised: Vec<(u8, &str)> = sent
            .iter()
            .map(|(flow, steps, _)| (flow.cv, steps.last().unwrap()))
            .filter(|(_, s)| last_record(&audit, s).is_some_and(|r| r.response_follows))
            .map(|(cv, s)| (cv, s.request_id.as_str()))
            .collect();
        // (A flow whose promised message never comes is named by the checks.)
        self.inbox
            .wait_for(BOUND, |i| {
                promised
                    .iter()
                    .all(|(cv, id)| all_in(*cv, &i.for_request(id)))
            })
            .await;
        self.inbox.settle(QUIET, BOUND).await;
        sent
    }

    /// The DCC's own services, one at a time, each waited for; the messages naming no request
    /// (DCC Alerts) that arrive meanwhile are that flow's.
    async fn last_phase<'f>(&mut self, flows: &'f [Flow]) -> Vec<Sent<'f>> {
        let mut context = Context::default();
        let mut sent = Vec::new();
        for flow in flows.iter().filter(|f| f.phase == Phase::Last) {
            let from = self.inbox.len();
            let done = run_flow(&self.gw, &self.clients, &self.inbox, flow, &mut context).await;
            let last = done.1.last().unwrap();
            let id = last.request_id.clone();
            let audit = audit_records(&self.gw);
            if last_record(&audit, last).is_some_and(|r| r.response_follows) {
                self.inbox
                    .wait_for(BOUND, |i| all_in(flow.cv, &i.for_request(&id)))
                    .await;
            }
            self.inbox.settle(QUIET, BOUND).await;
            let unnamed = self.inbox.since(from);
            let unnamed = unnamed
                .into_iter()
                .filter(|m| m.description.request_id.is_none());
            self.unnamed.insert(id, unnamed.collect());
            sent.push(done);
        }
        self.helpers.extend(context.helpers);
        sent
    }

    /// Every message names a request some flow sent, or arrived while a last-phase flow ran.
    fn assert_nothing_stray(&self, sent: &[Sent<'_>], before_last: usize) {
        let ids: BTreeSet<String> = sent
            .iter()
            .flat_map(|(_, steps, _)| steps.iter().map(|s| s.request_id.clone()))
            .chain(self.helpers.iter().cloned())
            .collect();
        let stray: Vec<String> = self
            .inbox
            .since(0)
            .iter()
            .enumerate()
            .filter(|(i, m)| match &m.description.request_id {
                Some(id) => !ids.contains(&id.to_ascii_uppercase()),
                None => *i < before_last,
            })
            .map(|(_, m)| format!("{:?}", m.description))
            .collect();
        assert!(
            stray.is_empty(),
            "messages no flow accounts for: {stray:#?}"
        );
    }

    /// The rows, in catalogue order, each with its messages.
    fn rows<'f>(&self, mut sent: Vec<Sent<'f>>) -> Vec<Row<'f>> {
        let catalogue: Vec<_> = dccgw::catalogue::Catalogue::builtin().iter().collect();
        sent.sort_by_key(|(f, ..)| {
            let srv = catalogue.iter().position(|e| e.srv == f.entry.srv);
            (srv, f.cv)
        });
        sent.into_iter()
            .map(|(flow, steps, note)| {
                let id = &steps.last().unwrap().request_id;
                let mut messages = self.inbox.for_request(id);
                messages.extend(self.unnamed.get(id).cloned().unwrap_or_default());
                Row {
                    flow,
                    steps,
                    messages,
                    note,
                }
            })
            .collect()
    }
}

/// Runs one flow; the row's flow, its steps and a note on how it was made.
async fn run_flow<'f>(
    gw: &TestGateway,
    clients: &Clients,
    inbox: &Inbox,
    flow: &'f Flow,
    context: &mut Context,
) -> Sent<'f> {
    let srv = flow.entry.srv.to_string();
    if srv == "8.13" && flow.eligible {
        let steps = return_local_command(gw, clients, inbox, context).await;
        let note = "reporting the device's answer to a 4.1.1 sent first as Command Variant 2";
        return (flow, steps, Some(note));
    }
    if let (Some(id), "5.2" | "5.3") = (context.schedule.as_deref(), srv.as_str()) {
        let mut adapted = flow.clone();
        adapted.body = with_schedule_id(&flow.body, id);
        let steps = send_flow(gw, clients, &adapted).await;
        return (flow, steps, Some("for the schedule the 5.1 row created"));
    }
    let steps = send_flow(gw, clients, flow).await;
    if srv == "5.1" {
        context.schedule = element(&steps[0].answer, "DSPScheduleID").map(str::to_owned);
    }
    (flow, steps, None)
}

/// 8.13: a 4.1.1 read of the demo meter sent as Command Variant 2, its `LocalCommand` awaited,
/// and the device's answer to it reported back. The 8.13's step.
async fn return_local_command(
    gw: &TestGateway,
    clients: &Clients,
    inbox: &Inbox,
    context: &mut Context,
) -> Vec<Step> {
    let body = "<sr:ReadInstantaneousImportRegisters/>";
    let read = local_request(DEMO_ESME, counter(), 2, "4.1.1", body);
    let step = send_step(gw, clients, "supplier", 2, read).await;
    assert_eq!(step.code(), "I99", "{}", step.answer);
    let id = step.request_id.clone();
    context.helpers.push(id.clone());
    let arrived = inbox
        .wait_for(BOUND, |i| !i.for_request(&id).is_empty())
        .await;
    assert!(arrived, "no LocalCommand for {id}");
    let message = inbox.for_request(&id).remove(0);
    let command = local_command(&String::from_utf8_lossy(&message.body));
    let now = DlmsDateTime::from_utc(time::OffsetDateTime::now_utc());
    let answer = response_to(&command, Some(now), vec![0x0C, 0x01, 0x00]);
    let report = return_response(&id, &answer);
    vec![send_step(gw, clients, "supplier", 8, report).await]
}

fn with_schedule_id(body: &str, id: &str) -> String {
    const OPEN: &str = "<sr:DSPScheduleID>";
    let (Some(a), Some(b)) = (body.find(OPEN), body.find("</sr:DSPScheduleID>")) else {
        return body.to_owned();
    };
    format!("{}{id}{}", &body[..a + OPEN.len()], &body[b..])
}

/// The audit trail's request records, in order.
fn audit_records(gw: &TestGateway) -> Vec<RequestRecord> {
    let mut out = Vec::new();
    read_trail(gw.running.gateway.audit.dir(), |_, e| {
        if let AuditEvent::Request(r) = e {
            out.push(r.clone());
        }
    })
    .unwrap();
    out
}

/// The record of `step` (the last one with its RequestID: a signed pre-command shares its
/// Transform's).
fn last_record<'a>(audit: &'a [RequestRecord], step: &Step) -> Option<&'a RequestRecord> {
    audit.iter().rev().find(|r| {
        r.request_id
            .is_some_and(|id| id.to_string().eq_ignore_ascii_case(&step.request_id))
    })
}

/// What every row must show: its audit record agrees with its answer and with what arrived;
/// a row no demo User may send is refused with nothing following; an accepted one brings what
/// its Command Variant calls for.
fn check_row(row: &Row<'_>, audit: &[RequestRecord], problems: &mut Vec<String>) {
    let f = row.flow;
    let last = row.last();
    let name = format!("{} CV{} ({})", f.entry.srv, f.cv, last.request_id);
    let mut problem = |what: String| problems.push(format!("{name}: {what}"));
    let code = last.code();
    let accepted = code == "I0" || code == "I99";
    if accepted != (last.status == 200) {
        problem(format!("{code} with HTTP {}", last.status));
    }
    let Some(record) = last_record(audit, last) else {
        return problem("no audit record".into());
    };
    if record.code != code {
        problem(format!("audited {}, answered {code}", record.code));
    }
    // The messages that answer the request (the DCC Alerts a change raises name none).
    let answering = row
        .messages
        .iter()
        .filter(|m| m.description.request_id.is_some())
        .count();
    if record.response_follows != (answering > 0) {
        problem(format!(
            "audit response_follows = {}, {answering} messages answering it arrived",
            record.response_follows
        ));
    }
    let arrived = !row.messages.is_empty();
    if !f.eligible || !accepted {
        if f.eligible {
            problem(format!("refused {code}: {}", last.answer));
        }
        if arrived {
            problem("a refused request brought messages".into());
        }
        return;
    }
    let kinds: Vec<String> = row.messages.iter().map(table::describe).collect();
    let count = |prefix: &str| kinds.iter().filter(|k| k.starts_with(prefix)).count();
    let (locals, responses) = (count("LocalCommand `I0`"), count("Service Response `I0`"));
    let wanted = match f.cv {
        4 => (code == "I0" && table::shape(&last.answer) == "ResponseMessage/PreCommand")
            .then_some((0, 0)),
        1 | 5 => (code == "I99").then_some((0, 1)),
        2 | 6 => (code == "I99").then_some((1, 0)),
        3 | 7 => (code == "I99").then_some((1, 1)),
        _ => Some((locals, responses)),
    };
    if wanted != Some((locals, responses)) {
        problem(format!(
            "answered {code}, then {kinds:?}; wanted (LocalCommand, Service Response) {wanted:?}"
        ));
    }
    if row.broken() && !NO_FINAL_MESSAGE.contains(&(&*f.entry.srv.to_string(), f.cv)) {
        problem("acknowledged, and no final message came".into());
    }
}

/// Every request sent, answer and message validates against the DUIS 5.4 XSD (one xmllint
/// run); a sample verifies with the DCC's certificate (xmlsec1): the first message and answer
/// of each kind, and every eighth.
fn check_documents(gw: &TestGateway, xsd: &DuisXsd, rows: &[Row<'_>]) {
    let steps: Vec<&Step> = rows.iter().flat_map(|r| &r.steps).collect();
    let messages: Vec<(String, String)> = rows
        .iter()
        .flat_map(|r| &r.messages)
        .map(|m| {
            (
                table::describe(m),
                String::from_utf8(m.body.to_vec()).unwrap(),
            )
        })
        .collect();
    let docs: Vec<&str> = steps
        .iter()
        .flat_map(|s| [s.request.as_str(), s.answer.as_str()])
        .chain(messages.iter().map(|(_, m)| m.as_str()))
        .collect();
    if let Err(report) = xsd.validate_all(&docs) {
        panic!("schema-invalid requests, answers or messages:\n{report}");
    }
    let answers = steps.iter().map(|s| {
        (
            format!("{} {}", s.code(), table::shape(&s.answer)),
            s.answer.clone(),
        )
    });
    let mut kinds = BTreeSet::new();
    let sample: Vec<String> = messages
        .iter()
        .cloned()
        .chain(answers)
        .enumerate()
        .filter(|(i, (kind, _))| kinds.insert(kind.clone()) || i % 8 == 0)
        .map(|(_, (_, doc))| doc)
        .collect();
    std::thread::scope(|scope| {
        for half in sample.chunks(sample.len().div_ceil(2).max(1)) {
            scope.spawn(move || {
                for doc in half {
                    xmlsec1_verifies(gw, doc.as_bytes());
                }
            });
        }
    });
}
