//! The events the hub process offers the gateway: a bounded log of unacknowledged events, filled
//! from the simulator (recording each in the raised-events log first, if there is one) and read,
//! and re-read after a reconnect, by the event stream until the gateway acknowledges them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::{mpsc, Notify};

use crate::commshub::{Raised, RaisedLog};
use crate::dispatch::wire::encode;
use crate::dispatch::{unix_millis, Inbound};

/// An empty line goes to an idle stream this often.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Unacknowledged events, in sequence order, for the gateway to read (and re-read after a
/// reconnect) until it acknowledges them.
pub(super) struct EventLog {
    epoch: u64,
    bound: usize,
    state: Mutex<LogState>,
    /// New events appended.
    appended: Notify,
    /// Room made by an acknowledgement.
    freed: Notify,
}

struct LogState {
    next_seq: u64,
    lines: VecDeque<(u64, Bytes)>,
}

impl EventLog {
    /// An empty log holding at most `bound` unacknowledged events.
    pub(super) fn new(bound: usize) -> Self {
        Self {
            // Milliseconds at start: a restarted hub has a later epoch.
            epoch: u64::try_from(unix_millis()).unwrap_or(1),
            bound,
            state: Mutex::new(LogState {
                next_seq: 1,
                lines: VecDeque::new(),
            }),
            appended: Notify::new(),
            freed: Notify::new(),
        }
    }

    /// This hub instance's epoch.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        // Push and pop only: consistent whenever a panic could strike.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the events up to `upto` of `epoch` (an acknowledgement of another epoch is
    /// ignored).
    pub(super) fn ack(&self, epoch: u64, upto: u64) {
        if epoch != self.epoch {
            return;
        }
        let mut s = self.lock();
        let before = s.lines.len();
        while s.lines.front().is_some_and(|(seq, _)| *seq <= upto) {
            s.lines.pop_front();
        }
        if s.lines.len() < before {
            self.freed.notify_waiters();
        }
    }

    /// Waits until the log has room; the next sequence number and how many lines fit.
    async fn room(&self) -> (u64, usize) {
        loop {
            let freed = self.freed.notified();
            {
                let s = self.lock();
                if s.lines.len() < self.bound {
                    return (s.next_seq, self.bound - s.lines.len());
                }
            }
            freed.await;
        }
    }

    /// Appends `lines` (sequence numbers from [`Self::room`], at most the room it gave).
    fn push(&self, lines: Vec<(u64, Bytes)>) {
        {
            let mut s = self.lock();
            for (seq, line) in lines {
                s.next_seq = seq + 1;
                s.lines.push_back((seq, line));
            }
        }
        self.appended.notify_waiters();
    }

    /// Lines after `after`, at most `max`.
    fn after(&self, after: u64, max: usize) -> Vec<(u64, Bytes)> {
        let s = self.lock();
        let start = s.lines.partition_point(|(seq, _)| *seq <= after);
        s.lines.range(start..).take(max).cloned().collect()
    }
}

/// Events taken from the simulator at once (and recorded in one write).
const RETAIN_BATCH: usize = 256;

/// Moves the simulator's events into the log, waiting while it is full; records each in
/// `raised` (if given) before it is offered.
pub(super) async fn retain(
    mut events: mpsc::Receiver<Inbound>,
    log: Arc<EventLog>,
    mut raised: Option<RaisedLog>,
) {
    let mut batch = Vec::with_capacity(RETAIN_BATCH);
    while events.recv_many(&mut batch, RETAIN_BATCH).await > 0 {
        let mut rest = &batch[..];
        while !rest.is_empty() {
            // This task is the log's only writer: the sequence numbers reserved here are the
            // ones `push` gives, and the room only grows meanwhile.
            let (first_seq, room) = log.room().await;
            let (now, later) = rest.split_at(room.min(rest.len()));
            let lines: Vec<(u64, Bytes)> = (first_seq..)
                .zip(now)
                .map(|(seq, i)| (seq, Bytes::from(encode(log.epoch, seq, &i.event))))
                .collect();
            if let Some(file) = raised.as_mut() {
                let records: Vec<Raised> = (first_seq..)
                    .zip(now)
                    .map(|(seq, i)| Raised::of(log.epoch, seq, &i.event))
                    .collect();
                if let Err(e) = file.append(&records).await {
                    tracing::error!(error = %e, events = records.len(), "Raised events could not be recorded; they are offered all the same.");
                }
            }
            log.push(lines);
            rest = later;
        }
        batch.clear();
    }
}

/// The log from `after` on, then as it grows, as a response body.
pub(super) fn follow(log: Arc<EventLog>, after: u64) -> LineStream {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(feed(log, after, tx));
    LineStream(rx)
}

/// Streams the log to one reader from `after`, then follows it.
async fn feed(log: Arc<EventLog>, mut after: u64, tx: mpsc::Sender<Bytes>) {
    loop {
        let appended = log.appended.notified();
        let batch = log.after(after, 256);
        if batch.is_empty() {
            match tokio::time::timeout(HEARTBEAT, appended).await {
                Ok(()) => continue,
                Err(_) => {
                    if tx.send(Bytes::from_static(b"\n")).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        for (seq, line) in batch {
            if tx.send(line).await.is_err() {
                return;
            }
            after = seq;
        }
    }
}

/// A response body fed from a channel.
pub(super) struct LineStream(mpsc::Receiver<Bytes>);

impl hyper::body::Body for LineStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
