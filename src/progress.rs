//! Progress of long operations (the registry load at start, audit verification, reports, the
//! load tool's file generation): a bar on a terminal, and on a log a line every
//! [`LOG_EVERY`] with the share done and the time taken, then one when it ends.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a log line reports progress when standard error is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Records,
}

/// One long operation's progress; cheap to clone and to count from several threads.
#[derive(Clone)]
pub struct Progress {
    shared: Arc<Shared>,
}

struct Shared {
    what: String,
    unit: Unit,
    total: Option<u64>,
    done: AtomicU64,
    started: Instant,
    bar: Option<ProgressBar>,
    ticker: std::sync::Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl Progress {
    /// Starts reporting `what` (a phrase: "Loading the registry"); `total` when known.
    pub fn start(what: &str, total: Option<u64>, unit: Unit) -> Self {
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| bar(total, unit, what));
        let shared = Arc::new(Shared {
            what: what.to_owned(),
            unit,
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            bar,
            ticker: std::sync::Mutex::new(None),
        });
        if shared.bar.is_none() {
            let (stop, stopped) = mpsc::channel::<()>();
            let weak = Arc::downgrade(&shared);
            let handle = std::thread::spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(LOG_EVERY) {
                    let Some(s) = weak.upgrade() else { break };
                    let done = s.done.load(Ordering::Relaxed);
                    tracing::info!(
                        "{}",
                        line(&s.what, done, s.total, s.unit, s.started.elapsed())
                    );
                }
            });
            if let Ok(mut t) = shared.ticker.lock() {
                *t = Some((stop, handle));
            }
        }
        Self { shared }
    }

    /// Counts `n` more done.
    pub fn inc(&self, n: u64) {
        self.shared.done.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.shared.bar {
            bar.inc(n);
        }
    }

    /// Ends the report: the bar is cleared, and one line says how much took how long.
    pub fn finish(&self) -> Duration {
        let s = &self.shared;
        let elapsed = s.started.elapsed();
        if let Some(bar) = &s.bar {
            bar.finish_and_clear();
        }
        let ticker = s.ticker.lock().ok().and_then(|mut t| t.take());
        if let Some((stop, handle)) = ticker {
            let _ = stop.send(());
            let _ = handle.join();
        }
        let done = s.done.load(Ordering::Relaxed);
        tracing::info!(
            elapsed_ms = elapsed.as_millis() as u64,
            "{}",
            finished(&s.what, done, s.unit, elapsed)
        );
        elapsed
    }
}

fn bar(total: Option<u64>, unit: Unit, what: &str) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let count = match unit {
        Unit::Bytes => "{bytes}/{total_bytes}",
        Unit::Records => "{human_pos}/{human_len}",
    };
    let template = format!("{{msg}} [{{elapsed_precise}}] {{wide_bar}} {count} ({{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A progress line: `Loading the registry: 42% (1.1 GB of 2.6 GB), 12.0 s elapsed.`
pub fn line(what: &str, done: u64, total: Option<u64>, unit: Unit, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    match total.filter(|t| *t > 0) {
        Some(t) => format!(
            "{what}: {}% ({} of {}), {secs:.1} s elapsed.",
            (done.min(t) * 100) / t,
            amount(done, unit),
            amount(t, unit)
        ),
        None => format!(
            "{what}: {} so far, {secs:.1} s elapsed.",
            amount(done, unit)
        ),
    }
}

/// The closing line: `Loading the registry: done, 2.6 GB in 31.2 s.`
pub fn finished(what: &str, done: u64, unit: Unit, elapsed: Duration) -> String {
    format!(
        "{what}: done, {} in {:.1} s.",
        amount(done, unit),
        elapsed.as_secs_f64()
    )
}

fn amount(n: u64, unit: Unit) -> String {
    match unit {
        Unit::Records => format!("{n} records"),
        Unit::Bytes if n >= 1 << 30 => format!("{:.1} GB", n as f64 / (1u64 << 30) as f64),
        Unit::Bytes if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        Unit::Bytes if n >= 1 << 10 => format!("{:.1} KB", n as f64 / 1024.0),
        Unit::Bytes => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests;
