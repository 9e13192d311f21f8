//! What the fan-out bench counts, from its two vantage points: the gateway's front edge (each hub
//! event as it arrives, and the Users its code family names) and the Users' Receive Response
//! Service (each message as it is kept). Matched by the alert's GBCS payload, which the simulator
//! makes unique (its frame counter) and the message carries base64-encoded.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use base64::Engine as _;

/// Counts and latency samples (microseconds).
#[derive(Default)]
pub struct Counts {
    /// Alerts that reached the gateway.
    pub alerts: u64,
    /// Copies their code families owe (one per User to tell).
    pub owed: u64,
    /// The most seconds an alert waited upstream (raised → reached the gateway), at the
    /// simulator's 1 s resolution: what open-loop queueing the gateway pushed back onto the hub.
    pub upstream_lag_secs: i64,
    /// Distinct messages delivered; summaries among them; copies they account for (a summary
    /// stands for `ThrottledAlertCount` copies); messages delivered twice (retries).
    pub messages: u64,
    pub summaries: u64,
    pub copies: u64,
    pub duplicates: u64,
    /// Messages matching no alert seen (should stay 0).
    pub unmatched: u64,
    /// Alert reached the gateway → its message kept by the User: alone, and as a summary.
    pub latency: Vec<u64>,
    pub summary_latency: Vec<u64>,
    /// Alert reached the gateway → the hub confirmed its receipt's acknowledgement.
    pub ack_latency: Vec<u64>,
    /// Alerts whose acknowledgement the hub has confirmed (its sequence numbers up to here).
    pub acked: u64,
}

#[derive(Default)]
struct State {
    counts: Counts,
    /// When each alert arrived, by hub sequence number − 1.
    arrivals: Vec<Instant>,
    /// When each alert arrived, by payload.
    by_payload: HashMap<Vec<u8>, Instant>,
    seen: HashSet<String>,
}

#[derive(Default)]
pub struct Tally(Mutex<State>);

impl Tally {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An alert reached the gateway at `now`; its code family names `copies` Users.
    pub fn arrived(&self, payload: Vec<u8>, copies: usize, lag_secs: i64, now: Instant) {
        let mut s = self.lock();
        s.counts.alerts += 1;
        s.counts.owed += copies as u64;
        s.counts.upstream_lag_secs = s.counts.upstream_lag_secs.max(lag_secs);
        s.arrivals.push(now);
        s.by_payload.insert(payload, now);
    }

    /// The hub confirmed acknowledgements up to sequence number `upto`.
    pub fn acked(&self, upto: u64, now: Instant) {
        let mut s = self.lock();
        let upto = usize::try_from(upto)
            .unwrap_or(usize::MAX)
            .min(s.arrivals.len());
        let from = usize::try_from(s.counts.acked).unwrap_or(usize::MAX);
        for i in from..upto {
            let us = now.duration_since(s.arrivals[i]).as_micros() as u64;
            s.counts.ack_latency.push(us);
        }
        s.counts.acked = s.counts.acked.max(upto as u64);
    }

    /// The User's service kept `body` at `now`.
    pub fn delivered(&self, body: &[u8], now: Instant) {
        let text = String::from_utf8_lossy(body);
        let mut s = self.lock();
        let id = element(&text, "ResponseID").unwrap_or_default().to_owned();
        if !s.seen.insert(id) {
            s.counts.duplicates += 1;
            return;
        }
        s.counts.messages += 1;
        let count: Option<u64> = element(&text, "ThrottledAlertCount").and_then(|c| c.parse().ok());
        s.counts.copies += count.unwrap_or(1);
        let payload = element(&text, "GBCSPayload")
            .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok());
        let Some(at) = payload.and_then(|p| s.by_payload.get(&p).copied()) else {
            s.counts.unmatched += 1;
            return;
        };
        let us = now.duration_since(at).as_micros() as u64;
        if count.is_some() {
            s.counts.summaries += 1;
            s.counts.summary_latency.push(us);
        } else {
            s.counts.latency.push(us);
        }
    }

    /// (alerts in, copies owed, copies delivered, messages delivered, acked).
    pub fn progress(&self) -> (u64, u64, u64, u64, u64) {
        let s = self.lock();
        let c = &s.counts;
        (c.alerts, c.owed, c.copies, c.messages, c.acked)
    }

    /// Everything counted, leaving the tally empty.
    pub fn take(&self) -> Counts {
        std::mem::take(&mut self.lock().counts)
    }
}

/// The text of the first element named `local` (any prefix), when it has no child elements.
fn element<'a>(xml: &'a str, local: &str) -> Option<&'a str> {
    let open = format!(":{local}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find('<')?;
    Some(&xml[start..start + len])
}
