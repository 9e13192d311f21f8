//! The events the hub process offers its gateways: a bounded log of unacknowledged events, filled
//! from the simulator (recording each in the raised-events log first, if there is one) and handed
//! out to the gateways' event streams so that each event is held by one stream at a time.
//!
//! An event is *free* until a stream takes it; the stream then *holds* it until a gateway
//! acknowledges it (it is forgotten), the stream ends (its held events are free again, for any
//! stream), or its lease ends (free again: a gateway that went silent without its connection
//! breaking does not keep an event for longer than [`LEASE`]). Whichever gateway acknowledges an
//! event, it is forgotten: an acknowledgement says a gateway holds it durably. So nothing is lost
//! while any gateway reads, and an event may be delivered twice (to a second gateway after the
//! first one's stream broke or its lease ended, when the first had already passed it on).

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::commshub::{Raised, RaisedLog};
use crate::dispatch::wire::encode;
use crate::dispatch::{unix_millis, Inbound};

/// An empty line goes to an idle stream this often.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a stream holds an event it took without its being acknowledged before the event is
/// offered again (to any stream, this one included).
pub(super) const LEASE: Duration = Duration::from_secs(60);
/// Events one stream takes at a time.
const TAKE: usize = 256;

/// A reader of the log: one event stream.
pub(super) type ReaderId = u64;

/// Unacknowledged events, in sequence order, each free or held by one reader.
pub(super) struct EventLog {
    epoch: u64,
    bound: usize,
    lease: Duration,
    state: Mutex<LogState>,
    /// Events became free (appended, or let go by a reader).
    appended: Notify,
    /// Room made by an acknowledgement.
    freed: Notify,
}

struct Slot {
    line: Bytes,
    /// The reader holding the event, and the take that gave it (its lease's entry).
    holder: Option<(ReaderId, u64)>,
}

/// The log's events in sequence order, from the oldest unacknowledged one (one gateway alone
/// takes them in order and acknowledges runs of them: a push, a take and an acknowledgement
/// each touch the ends of a queue).
struct LogState {
    /// The sequence number of `slots`' first entry.
    first: u64,
    /// The events from `first` on; `None` once acknowledged (the front is dropped as soon as
    /// it is). Its length is what the log's bound counts.
    slots: VecDeque<Option<Slot>>,
    /// The first event never taken: it and every later one are free.
    fresh: u64,
    /// Events taken before and free again (let go, or their lease lapsed), oldest first.
    returned: BTreeSet<u64>,
    next_reader: ReaderId,
    next_take: u64,
    /// Every take in the order made: when its lease ends, the event, the take's number (a
    /// lease whose event was acknowledged or taken again since is passed over).
    leases: VecDeque<(Instant, u64, u64)>,
}

impl EventLog {
    /// An empty log holding at most `bound` events from the oldest unacknowledged one on, each
    /// held by a reader for at most `lease` unacknowledged.
    pub(super) fn new(bound: usize, lease: Duration) -> Self {
        Self {
            // Milliseconds at start: a restarted hub has a later epoch.
            epoch: u64::try_from(unix_millis()).unwrap_or(1),
            bound,
            lease,
            state: Mutex::new(LogState {
                first: 1,
                slots: VecDeque::new(),
                fresh: 1,
                returned: BTreeSet::new(),
                next_reader: 0,
                next_take: 0,
                leases: VecDeque::new(),
            }),
            appended: Notify::new(),
            freed: Notify::new(),
        }
    }

    /// This hub instance's epoch.
    #[cfg(test)]
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        // Every critical section moves an event from one state to another in one step:
        // consistent whenever a panic could strike.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the events in `ranges` (inclusive, ascending, not overlapping) of `epoch`,
    /// whoever holds them; an acknowledgement of another epoch is ignored. Returns how many
    /// were forgotten.
    pub(super) fn ack(&self, epoch: u64, ranges: &[(u64, u64)]) -> usize {
        if epoch != self.epoch {
            return 0;
        }
        let forgotten = self.lock().ack(ranges);
        if forgotten > 0 {
            self.freed.notify_waiters();
        }
        forgotten
    }

    /// A new reader's identity.
    pub(super) fn reader(&self) -> ReaderId {
        let mut s = self.lock();
        s.next_reader += 1;
        s.next_reader
    }

    /// Takes up to `max` free events, oldest first, for `reader` to hold until `now` plus the
    /// lease; first frees the events whose lease ended by `now`.
    pub(super) fn take(&self, reader: ReaderId, max: usize, now: Instant) -> Vec<(u64, Bytes)> {
        let (taken, expired) = {
            let mut s = self.lock();
            let expired = s.expire(now);
            (s.take(reader, max, now + self.lease), expired)
        };
        if expired > 0 {
            tracing::warn!(
                events = expired,
                "Events held past their lease are offered again."
            );
            self.appended.notify_waiters();
        }
        taken
    }

    /// Lets go of every event `reader` holds (its stream ended): free again, for any reader.
    pub(super) fn release(&self, reader: ReaderId) {
        let released = self.lock().release(reader);
        if released > 0 {
            tracing::info!(
                events = released,
                "A gateway's event stream ended; the events it held are offered again."
            );
            self.appended.notify_waiters();
        }
    }

    /// Unacknowledged events: `(free, held)`.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        let live = s.slots.iter().flatten();
        let held = live.clone().filter(|slot| slot.holder.is_some()).count();
        (live.count() - held, held)
    }

    /// Leases kept (held events, and lapsed entries not yet passed over).
    #[cfg(test)]
    pub(super) fn leases(&self) -> usize {
        self.lock().leases.len()
    }

    /// Waits until the log has room; the next sequence number and how many lines fit.
    async fn room(&self) -> (u64, usize) {
        loop {
            let freed = self.freed.notified();
            {
                let s = self.lock();
                if s.slots.len() < self.bound {
                    return (s.next_seq(), self.bound - s.slots.len());
                }
            }
            freed.await;
        }
    }

    /// Appends `lines` (sequence numbers from [`Self::room`], at most the room it gave), free.
    pub(super) fn push(&self, lines: Vec<(u64, Bytes)>) {
        {
            let mut s = self.lock();
            for (seq, line) in lines {
                if s.slots.is_empty() {
                    s.first = seq;
                    s.fresh = s.fresh.max(seq);
                }
                s.slots.push_back(Some(Slot { line, holder: None }));
            }
        }
        self.appended.notify_waiters();
    }
}

impl LogState {
    fn next_seq(&self) -> u64 {
        self.first + self.slots.len() as u64
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        let index = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.slots.get_mut(index)?.as_mut()
    }

    fn take(&mut self, reader: ReaderId, max: usize, until: Instant) -> Vec<(u64, Bytes)> {
        let mut taken = Vec::new();
        self.fresh = self.fresh.max(self.first);
        while taken.len() < max {
            let seq = match self.returned.pop_first() {
                Some(seq) => seq,
                None if self.fresh < self.next_seq() => {
                    self.fresh += 1;
                    self.fresh - 1
                }
                None => break,
            };
            self.next_take += 1;
            let take = self.next_take;
            let Some(slot) = self.slot_mut(seq) else {
                continue;
            };
            slot.holder = Some((reader, take));
            taken.push((seq, slot.line.clone()));
            self.leases.push_back((until, seq, take));
        }
        taken
    }

    fn ack(&mut self, ranges: &[(u64, u64)]) -> usize {
        let mut forgotten = 0;
        let mut after = 0;
        for &(first, last) in ranges {
            // Ascending, so the events visited are at most the log's.
            let from = first.max(self.first).max(after);
            let to = last.min(self.next_seq().saturating_sub(1));
            let mut seq = from;
            while seq <= to {
                let index = (seq - self.first) as usize;
                if let Some(slot) = self.slots[index].take() {
                    if slot.holder.is_none() {
                        self.returned.remove(&seq);
                    }
                    forgotten += 1;
                }
                seq += 1;
            }
            after = after.max(to.saturating_add(1));
        }
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.first += 1;
        }
        forgotten
    }

    fn release(&mut self, reader: ReaderId) -> usize {
        let first = self.first;
        let mut released = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(slot) = slot
                .as_mut()
                .filter(|s| s.holder.is_some_and(|(r, _)| r == reader))
            {
                slot.holder = None;
                released.push(first + index as u64);
            }
        }
        let n = released.len();
        self.returned.extend(released);
        n
    }

    /// Frees the events whose lease ended by `now`; how many.
    fn expire(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        while let Some(&(deadline, seq, take)) = self.leases.front() {
            let slot = self
                .slot_mut(seq)
                .filter(|slot| slot.holder.is_some_and(|(_, t)| t == take));
            match slot {
                // Acknowledged, let go or taken again since: a stale lease, passed over at
                // once (so the queue holds about the events held, not every take of a lease).
                None => {}
                Some(_) if deadline > now => break,
                Some(slot) => {
                    slot.holder = None;
                    self.returned.insert(seq);
                    expired += 1;
                }
            }
            self.leases.pop_front();
        }
        expired
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

/// A new reader of the log, as a response body: the free events, then new ones as they come.
/// The events it took are let go when the body is dropped (the stream ended).
pub(super) fn follow(log: Arc<EventLog>) -> LineStream {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(feed(log, tx));
    LineStream(rx)
}

/// Lets go of a reader's events when its feed ends, however it ends.
struct Reading {
    log: Arc<EventLog>,
    reader: ReaderId,
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.log.release(self.reader);
    }
}

/// Feeds one reader the events it takes, with a heartbeat while there are none, until its
/// stream is gone.
async fn feed(log: Arc<EventLog>, tx: mpsc::Sender<Bytes>) {
    let reading = Reading {
        reader: log.reader(),
        log,
    };
    let log = &reading.log;
    let mut quiet_since = Instant::now();
    loop {
        let appended = log.appended.notified();
        let batch = log.take(reading.reader, TAKE, Instant::now());
        if batch.is_empty() {
            // Woken by new events, by a lease to look at (at most a second late), or by the
            // stream's end.
            tokio::select! {
                () = appended => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = tx.closed() => return,
            }
            if quiet_since.elapsed() >= HEARTBEAT {
                if tx.send(Bytes::from_static(b"\n")).await.is_err() {
                    return;
                }
                quiet_since = Instant::now();
            }
            continue;
        }
        for (_, line) in batch {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        quiet_since = Instant::now();
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
