//! The timer on virtual time (`tokio::time::pause`): what it hands its executor, and at which
//! time by its clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::macros::date;
use tokio::sync::{mpsc, watch};

use super::*;
use crate::domain::{RequestId, UserId};
use crate::duis::schedule::{ClockTime, Frequency, ScheduleSpec, ScheduledRead};
use crate::store::{Held, Schedule};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
const ESME: &str = "00-DB-12-34-56-78-90-A0";

/// The paused tokio clock, read as unix milliseconds from `base_ms` at the test's start.
struct VirtualClock {
    base_ms: i64,
    start: tokio::time::Instant,
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        self.base_ms + i64::try_from(self.start.elapsed().as_millis()).unwrap()
    }
}

/// What the executor was asked to do, and the clock's time (ms) when it was.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Release(u64, i64),
    Expire(u64, i64),
    Run(u64, u32, i64),
    Missed(u64, u32, i64),
}

struct Recorder {
    clock: Arc<VirtualClock>,
    calls: Mutex<Vec<Call>>,
    told: mpsc::UnboundedSender<Call>,
}

impl Recorder {
    fn record(&self, call: impl FnOnce(i64) -> Call) {
        let call = call(self.clock.now_ms());
        self.calls.lock().unwrap().push(call.clone());
        let _ = self.told.send(call);
    }
}

impl Executor for Recorder {
    async fn release(&self, held: &Held, _now: i64) {
        self.record(|t| Call::Release(held.request_id.counter, t));
    }
    async fn expire(&self, held: &Held, _now: i64) {
        self.record(|t| Call::Expire(held.request_id.counter, t));
    }
    async fn run(&self, schedule: &Schedule, k: u32, _now: i64) {
        self.record(|t| Call::Run(schedule.id.get(), k, t));
    }
    async fn missed(&self, schedule: &Schedule, k: u32, _now: i64) {
        self.record(|t| Call::Missed(schedule.id.get(), k, t));
    }
}

struct Rig {
    holds: Arc<Holds>,
    schedules: Arc<Schedules>,
    told: mpsc::UnboundedReceiver<Call>,
    stop: watch::Sender<bool>,
    timer: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// The next call. No timeout: virtual time jumps to the next timer whenever the runtime
    /// idles, also while a journal write is on its way to disk, so a timeout here would fire
    /// early; while the timer sleeps, its own wake-up is the next timer.
    async fn next(&mut self) -> Call {
        self.told.recv().await.unwrap()
    }
}

/// Stores (prepared by `prepare`), and a timer over them whose clock reads `start` (unix
/// seconds) now, with schedule days of `day_secs` and a late window of `late_secs`.
async fn rig(start: i64, day_secs: i64, late_secs: i64, prepare: impl AsyncPrepare) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let holds = Arc::new(Holds::open(&dir.path().join("h"), HoldLimits::default()).unwrap());
    let schedules =
        Arc::new(Schedules::open(&dir.path().join("s"), 100, day_secs, |_| false).unwrap());
    prepare.run(&holds, &schedules).await;
    let clock = Arc::new(VirtualClock {
        base_ms: start * 1000,
        start: tokio::time::Instant::now(),
    });
    let (tx, told) = mpsc::unbounded_channel();
    let executor = Arc::new(Recorder {
        clock: clock.clone(),
        calls: Mutex::new(Vec::new()),
        told: tx,
    });
    let timer = Timer {
        holds: holds.clone(),
        schedules: schedules.clone(),
        executor,
        clock,
        late_secs,
    };
    let (stop, stop_rx) = watch::channel(false);
    let timer = tokio::spawn(timer.run(stop_rx));
    Rig {
        holds,
        schedules,
        told,
        stop,
        timer,
        _dir: dir,
    }
}

/// Runs `work` (journal writes) on a blocking thread: while a blocking task runs, paused time
/// does not jump ahead on its own (it would, while the timer naps, for as long as the write
/// takes on the real disk).
async fn stationary<F>(work: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work))
        .await
        .unwrap();
}

/// Work on the stores before the timer starts.
trait AsyncPrepare {
    async fn run(self, holds: &Holds, schedules: &Schedules);
}

struct Nothing;
impl AsyncPrepare for Nothing {
    async fn run(self, _: &Holds, _: &Schedules) {}
}

struct Prepared(Vec<Held>, Vec<ScheduleSpec>);
impl AsyncPrepare for Prepared {
    async fn run(self, holds: &Holds, schedules: &Schedules) {
        for h in self.0 {
            holds.hold(h).await.unwrap();
        }
        for spec in self.1 {
            let id = schedules.allocate_id().unwrap();
            schedules.create(id, user(), spec, 0).await.unwrap();
        }
    }
}

fn user() -> UserId {
    SUPPLIER.parse().unwrap()
}

fn held(counter: u64, due: i64) -> Held {
    Held {
        request_id: RequestId {
            originator: user(),
            target: ESME.parse().unwrap(),
            counter,
        },
        srv: "4.1.1".parse().unwrap(),
        due,
        request: Arc::from(&b"<request/>"[..]),
    }
}

/// A daily schedule from 2026-01-01 at `secs` past midnight UTC, ending on `end`.
fn daily(secs: u32, end: Option<time::Date>) -> ScheduleSpec {
    ScheduleSpec {
        frequency: Frequency::Daily,
        start: date!(2026 - 01 - 01),
        end,
        time: Some(ClockTime {
            time: time::Time::from_hms(0, 0, 0).unwrap() + time::Duration::seconds(secs.into()),
            offset: None,
        }),
        ka_credential: None,
        srv: "4.12.1".parse().unwrap(),
        device: ESME.parse().unwrap(),
        read: ScheduledRead::Data,
    }
}

#[tokio::test(start_paused = true)]
async fn held_requests_are_released_at_their_time_and_no_sooner() {
    let mut rig = rig(
        T0,
        86_400,
        3600,
        Prepared(vec![held(2, T0 + 60), held(1, T0 + 30)], vec![]),
    )
    .await;
    assert_eq!(rig.next().await, Call::Release(1, (T0 + 30) * 1000));
    assert_eq!(rig.next().await, Call::Release(2, (T0 + 60) * 1000));
    // A hold added while the timer sleeps, due before anything else, wakes it.
    let holds = rig.holds.clone();
    stationary(async move {
        holds.hold(held(3, T0 + 5_000)).await.unwrap();
        holds.hold(held(4, T0 + 90)).await.unwrap();
    })
    .await;
    assert_eq!(rig.next().await, Call::Release(4, (T0 + 90) * 1000));
    assert_eq!(rig.next().await, Call::Release(3, (T0 + 5_000) * 1000));
    // Each is done once released.
    tokio::time::sleep(Duration::from_secs(1)).await;
    while !rig.holds.is_empty() {
        tokio::task::yield_now().await;
    }
    rig.stop.send(true).unwrap();
    rig.timer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_daily_schedule_runs_each_day_until_its_end() {
    // Days of 10 s: executions at T0 + 5, + 15, + 25 (the end date is the third day).
    let spec = daily(5, Some(date!(2026 - 01 - 03)));
    assert_eq!(spec.execution_time(0, 10), Some(T0 + 5));
    let mut rig = rig(T0, 10, 3600, Prepared(vec![], vec![spec])).await;
    for k in 0..3 {
        assert_eq!(
            rig.next().await,
            Call::Run(1, k, (T0 + 5 + 10 * i64::from(k)) * 1000)
        );
    }
    // Once the last execution is recorded, nothing is due any more.
    while rig.schedules.next_due().is_some() {
        tokio::task::yield_now().await;
    }
    // Nothing more: a virtual day passes without a call (nothing is due, so the timer only
    // naps, and writes nothing).
    tokio::time::sleep(Duration::from_secs(86_400)).await;
    assert!(rig.told.try_recv().is_err());
    rig.stop.send(true).unwrap();
    rig.timer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn after_a_stop_what_is_late_within_the_window_runs_and_the_rest_is_reported() {
    // The clock starts 10 days and 30 minutes after the first execution, with a late window
    // of an hour: executions 0 to 9 are reported (by the last, 9), execution 10 runs at once,
    // execution 11 at its time. A hold 30 minutes late is released; one two hours late expires.
    let start = T0 + 10 * 86_400 + 1_800;
    let prepared = Prepared(
        vec![held(1, start - 1_800), held(2, start - 7_200)],
        vec![daily(0, None)],
    );
    let mut rig = rig(start, 86_400, 3600, prepared).await;
    let mut first: Vec<Call> = Vec::new();
    for _ in 0..4 {
        first.push(rig.next().await);
    }
    let at = start * 1000;
    assert_eq!(
        first,
        [
            Call::Expire(2, at),
            Call::Release(1, at),
            Call::Missed(1, 9, at),
            Call::Run(1, 10, at),
        ]
    );
    assert_eq!(
        rig.next().await,
        Call::Run(1, 11, (T0 + 11 * 86_400) * 1000)
    );
    rig.stop.send(true).unwrap();
    rig.timer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_schedule_created_while_the_timer_sleeps_runs_at_its_time() {
    let mut rig = rig(T0 + 100, 86_400, 3600, Nothing).await;
    let schedules = rig.schedules.clone();
    stationary(async move {
        let id = schedules.allocate_id().unwrap();
        schedules
            .create(id, user(), daily(3_600, None), 0)
            .await
            .unwrap();
    })
    .await;
    assert_eq!(rig.next().await, Call::Run(1, 0, (T0 + 3_600) * 1000));
    // Stopping ends the timer between two ticks.
    rig.stop.send(true).unwrap();
    rig.timer.await.unwrap();
}
