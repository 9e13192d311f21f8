//! CPU-heavy work off the async workers: the ECDSA verify of a request and the signatures the
//! gateway makes (its answers, hub commands, Service Responses, alerts, outbox messages), with the
//! phases around them. A job runs through [`Offload::run`] on the thread that asks, once it has
//! handed that async worker's other tasks to another thread (`tokio::task::block_in_place`): the
//! connections, timers and writers that worker was serving go on while the job computes.
//!
//! Why `block_in_place` and not `spawn_blocking`: a job borrows the request (its body, its
//! parsed form, the trace), so running it in place needs no copy of anything and no `'static`
//! closure, and it costs one thread hand-off where `spawn_blocking` costs two (the job's thread
//! woken, then the waiting task's worker); `benches/offload.rs` measures both.
//!
//! Bounded: at most `threads` jobs run at once (a semaphore). When all are taken a caller waits
//! for one, holding nothing but its task: work does not pile up in a queue of its own, and how
//! many requests wait at all is bounded by admission control (`docs/admission.md`). A job is
//! meant to take at most about half a millisecond; callers with more (a batch of messages to
//! sign) cut it into pieces of [`CHUNK`] and run each as a job.

use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Semaphore;

/// Messages signed per job when a batch is cut up: one signature with its c14n and XML is
/// ~40 µs of a release build on this project's 2-core development VM, so a chunk of 8 keeps a
/// job near 0.3 ms.
pub const CHUNK: usize = 8;

/// The cores this process may use: `taskset`, cpusets and CPU quotas are honoured
/// (`std::thread::available_parallelism`); 1 when they cannot be read.
pub fn cores() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// Where CPU-heavy jobs run, and how many at once.
#[derive(Clone, Debug)]
pub struct Offload {
    /// `None`: every job runs inline on the async worker that asks (no offload).
    permits: Option<Arc<Semaphore>>,
}

impl Offload {
    /// At most `threads` jobs at once; 0 runs every job inline on its async worker.
    pub fn new(threads: usize) -> Self {
        Self {
            permits: (threads > 0).then(|| Arc::new(Semaphore::new(threads))),
        }
    }

    /// No offload: each job inline where it is asked for (unit tests, tools).
    pub fn inline() -> Self {
        Self { permits: None }
    }

    /// Runs `job` once a permit is free, with the async worker handed on meanwhile. Inline
    /// without a pool, on a current-thread runtime (where there is no other worker to hand on
    /// to) and outside a runtime.
    pub async fn run<R>(&self, job: impl FnOnce() -> R) -> R {
        let Some(permits) = &self.permits else {
            return job();
        };
        // The semaphore is never closed, so the permit is always granted.
        let _permit = permits.acquire().await.ok();
        if on_multi_thread_runtime() {
            tokio::task::block_in_place(job)
        } else {
            job()
        }
    }
}

fn on_multi_thread_runtime() -> bool {
    Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
}

#[cfg(test)]
mod tests;
