//! Running a flow: its requests over mTLS (one client per User, kept), and every message the
//! Users' Receive Response Service gets, collected as it comes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dccgw::receiver::Received;
use tokio::sync::{mpsc, Notify};

use super::flows::{self, Flow};
use crate::critical::{counter, signed_back, DCC, SEND, TRANSFORM};
use crate::support::{element, post, TestGateway};

/// One request of a flow and its synchronous answer.
#[derive(Clone, Debug)]
pub struct Step {
    pub request_id: String,
    /// The request as sent, before its signature.
    pub request: String,
    pub status: u16,
    pub answer: String,
}

impl Step {
    pub fn code(&self) -> &str {
        element(&self.answer, "ResponseCode").unwrap_or("none")
    }
}

/// The URL path for a Command Variant.
pub fn path_for(cv: u8) -> &'static str {
    match cv {
        4 => TRANSFORM,
        2 | 6 | 8 => DCC,
        _ => SEND,
    }
}

/// The demo Users' mTLS clients, made once.
pub struct Clients(HashMap<&'static str, reqwest::Client>);

impl Clients {
    pub fn new(gw: &TestGateway, users: &[&'static str]) -> Self {
        Self(users.iter().map(|u| (*u, gw.client(u))).collect())
    }

    /// `xml` signed by `user` and posted by `user`'s client to `path`.
    pub async fn send(&self, gw: &TestGateway, user: &str, path: &str, xml: &str) -> (u16, String) {
        let body = gw.signed(user, xml.as_bytes());
        post(&self.0[user], &format!("{}{path}", gw.base()), body).await
    }
}

/// Sends `flow`: its request as its Command Variant; for 5, 6 and 7 first the Transform, whose
/// pre-command `user` signs and sends back. The steps, in order (one, or two for 5–7).
pub async fn send_flow(gw: &TestGateway, clients: &Clients, flow: &Flow) -> Vec<Step> {
    let counter = counter();
    let first = if matches!(flow.cv, 5..=7) { 4 } else { flow.cv };
    let request = flows::request(flow, first, counter);
    let step = send_step(gw, clients, flow.user, first, request).await;
    if first == flow.cv || step.code() != "I0" {
        return vec![step];
    }
    let back = signed_back(&gw.certs(), flow.user, &step.answer, flow.cv);
    let second = send_step(gw, clients, flow.user, flow.cv, back).await;
    vec![step, second]
}

/// Sends `request` (unsigned XML) as `user`, as Command Variant `cv`.
pub async fn send_step(
    gw: &TestGateway,
    clients: &Clients,
    user: &str,
    cv: u8,
    request: String,
) -> Step {
    let (status, answer) = clients.send(gw, user, path_for(cv), &request).await;
    Step {
        request_id: element(&request, "RequestID").unwrap().to_ascii_uppercase(),
        request,
        status,
        answer,
    }
}

/// Every message delivered, in arrival order.
#[derive(Default)]
pub struct Inbox {
    pub messages: Mutex<Vec<Received>>,
    pub arrived: Notify,
}

impl Inbox {
    /// Drains `rx` into a shared inbox, in the background.
    pub fn collect(mut rx: mpsc::Receiver<Received>) -> Arc<Self> {
        let inbox = Arc::new(Self::default());
        let sink = Arc::clone(&inbox);
        tokio::spawn(async move {
            while let Some(got) = rx.recv().await {
                sink.messages.lock().unwrap().push(got);
                sink.arrived.notify_waiters();
            }
        });
        inbox
    }

    pub fn len(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// The messages for `request_id` (upper case) so far.
    pub fn for_request(&self, request_id: &str) -> Vec<Received> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| {
                m.description
                    .request_id
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(request_id))
            })
            .cloned()
            .collect()
    }

    /// The messages from index `from` on.
    pub fn since(&self, from: usize) -> Vec<Received> {
        let all = self.messages.lock().unwrap();
        all.iter().skip(from).cloned().collect()
    }

    /// Waits until `done` holds (checked on each arrival), for at most `bound`; whether it held.
    pub async fn wait_for(&self, bound: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.arrived.notified();
            if done(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(self);
            }
        }
    }

    /// Waits until nothing has arrived for `quiet`, for at most `bound`.
    pub async fn settle(&self, quiet: Duration, bound: Duration) {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let before = self.len();
            tokio::time::sleep(quiet).await;
            if self.len() == before || tokio::time::Instant::now() >= deadline {
                return;
            }
        }
    }
}
