//! The global concurrency limit, adapted to measured latency: Netflix's Gradient2 algorithm
//! (`Gradient2Limit` in github.com/Netflix/concurrency-limits, as wrapped by its
//! `WindowedLimit`), chosen because it needs no target latency to be configured: it compares a
//! short-term latency (one window's mean) with a long-term one (an exponential average over
//! `LONG_WINDOWS` windows), and shrinks the limit in proportion when the short one exceeds the
//! long one by more than the tolerance — a queue is forming — and grows it by a small "queue
//! size" otherwise. Vegas-style limits need a clean minimum RTT, which a gateway whose latency
//! includes group-commit fsyncs never sees twice alike; CoDel-style queue timeouts need a queue,
//! and the gateway keeps none (a request over the limit is answered at once).
//!
//! Per window (`window_ns` long and at least `MIN_WINDOW_SAMPLES` samples; the mean latency of
//! the window is the short RTT, the most requests in flight during it the load):
//!
//! ```text
//! long    = ewma(long, short)            ; then if long > 2 × short: long × 0.95
//! if inflight < limit / 2: keep limit    ; not using the limit: no evidence to grow it
//! gradient = clamp(tolerance × long / short, 0.5, 1.0)
//! new      = limit × gradient + queue_size
//! limit    = clamp(limit × (1 − smoothing) + new × smoothing, min, max)
//! ```
//!
//! Pure: the caller passes the time of every sample; nothing here reads a clock.

/// Windows in the long-term average (Gradient2's default `longWindow`).
pub const LONG_WINDOWS: f64 = 600.0;
/// Samples a window needs before it closes: a handful of requests say nothing.
pub const MIN_WINDOW_SAMPLES: u32 = 10;
/// How much longer than the long-term latency the short-term one may be before the limit
/// shrinks (Gradient2's default `rttTolerance`).
pub const TOLERANCE: f64 = 1.5;
/// The weight of a new estimate (Gradient2's default `smoothing`).
pub const SMOOTHING: f64 = 0.2;
/// What the limit grows by per window while latency holds (Gradient2's default `queueSize`).
pub const QUEUE_SIZE: f64 = 4.0;

/// The adaptive limit and the window it is gathering.
#[derive(Debug, Clone)]
pub struct Gradient2 {
    limit: f64,
    min: f64,
    max: f64,
    window_ns: u64,
    /// The long-term latency (ns); `None` before the first window closes.
    long: Option<f64>,
    window: Window,
}

#[derive(Debug, Clone, Default)]
struct Window {
    start_ns: u64,
    sum_ns: u128,
    samples: u32,
    max_inflight: usize,
}

impl Gradient2 {
    /// A limit starting at `initial`, kept within `min..=max`, adapting once per `window_ns`.
    pub fn new(initial: usize, min: usize, max: usize, window_ns: u64) -> Self {
        let (min, max) = (min.max(1) as f64, max.max(min.max(1)) as f64);
        Self {
            limit: (initial as f64).clamp(min, max),
            min,
            max,
            window_ns,
            long: None,
            window: Window::default(),
        }
    }

    /// The limit now, in requests in flight.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// The long-term latency the limit is judged against (ns), once there is one.
    pub fn long_rtt_ns(&self) -> Option<f64> {
        self.long
    }

    /// One finished request: it took `rtt_ns` and `inflight` were in flight when it started.
    /// Returns the new limit when this sample closed a window.
    pub fn sample(&mut self, now_ns: u64, rtt_ns: u64, inflight: usize) -> Option<usize> {
        let w = &mut self.window;
        if w.samples == 0 {
            w.start_ns = now_ns;
        }
        w.sum_ns += u128::from(rtt_ns);
        w.samples += 1;
        w.max_inflight = w.max_inflight.max(inflight);
        let elapsed = now_ns.saturating_sub(w.start_ns);
        if w.samples < MIN_WINDOW_SAMPLES || elapsed < self.window_ns {
            return None;
        }
        let short = (w.sum_ns / u128::from(w.samples)) as f64;
        let inflight = w.max_inflight;
        self.window = Window::default();
        self.update(short.max(1.0), inflight);
        Some(self.limit())
    }

    fn update(&mut self, short: f64, inflight: usize) {
        let alpha = 2.0 / (LONG_WINDOWS + 1.0);
        let mut long = match self.long {
            Some(long) => long * (1.0 - alpha) + short * alpha,
            None => short,
        };
        // After a long overload the average is high; coming down faster than the average would
        // brings the limit back to its steady state sooner.
        if long / short > 2.0 {
            long *= 0.95;
        }
        self.long = Some(long);
        if (inflight as f64) < self.limit / 2.0 {
            return;
        }
        let gradient = (TOLERANCE * long / short).clamp(0.5, 1.0);
        let new = self.limit * gradient + QUEUE_SIZE;
        self.limit = (self.limit * (1.0 - SMOOTHING) + new * SMOOTHING).clamp(self.min, self.max);
    }
}
