//! The simulator driven inside the gateway's process (demo, tests): each accepted command's
//! events are played out by one task on tokio's clock (so tests can pause time), spontaneous
//! alerts and storms by background tasks. Events carry no receipt to honour: in-process events
//! die with the process, simulator and all.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::dispatch::{unix_millis, HubError, HubFuture, HubNetwork, Inbound, Receipt};
use crate::routing::SignedCommand;

use super::config::Storm;
use super::sim::{Scheduled, Simulator};

pub struct InProcessHub {
    shared: Arc<Shared>,
    background: Vec<AbortHandle>,
}

struct Shared {
    sim: Mutex<Simulator>,
    events: mpsc::Sender<Inbound>,
    /// Commands whose events are still being played out: bounded by the configuration.
    in_flight: Arc<Semaphore>,
}

impl InProcessHub {
    /// Starts the network: spontaneous alerts and the configured storms begin now; every event
    /// goes to `events` (when it is full, the simulated devices wait: nothing is dropped).
    /// Must be called inside a tokio runtime.
    pub fn start(sim: Simulator, events: mpsc::Sender<Inbound>) -> Self {
        let storms = sim.config().storms.clone();
        let in_flight = Arc::new(Semaphore::new(sim.config().max_in_flight));
        let shared = Arc::new(Shared {
            sim: Mutex::new(sim),
            events,
            in_flight,
        });
        let mut background = vec![tokio::spawn(alert_loop(shared.clone())).abort_handle()];
        for storm in storms {
            let shared = shared.clone();
            background.push(
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(storm.after_secs)).await;
                    shared.storm(&storm).await;
                })
                .abort_handle(),
            );
        }
        Self { shared, background }
    }

    /// Raises a storm now (an operator's or a test's, beside the configured ones). Returns once
    /// its events are scheduled.
    pub fn storm_now(&self, storm: Storm) {
        let shared = self.shared.clone();
        tokio::spawn(async move { shared.storm(&storm).await });
    }
}

impl Drop for InProcessHub {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

impl HubNetwork for InProcessHub {
    fn send(&self, cmd: SignedCommand) -> HubFuture<'_> {
        Box::pin(async move {
            let permit = self
                .shared
                .in_flight
                .clone()
                .try_acquire_owned()
                .map_err(|_| HubError::Overloaded)?;
            let plan = self
                .shared
                .lock()
                .accept(cmd.as_bytes(), unix_millis())
                .map_err(HubError::Refused)?;
            tokio::spawn(play(self.shared.events.clone(), plan, Some(permit)));
            Ok(())
        })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Simulator> {
        // The simulator holds no invariant a panic elsewhere could have broken half-way.
        self.sim.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn storm(&self, storm: &Storm) {
        let plan = self.lock().storm(storm, unix_millis());
        tracing::info!(
            hubs = storm.hubs,
            alerts = plan.len(),
            code = format_args!("{:04X}", storm.code),
            "Simulated power outage storm starts."
        );
        play(self.events.clone(), plan, None).await;
    }
}

/// Sends each event of `plan` at its time, in time order.
async fn play(
    events: mpsc::Sender<Inbound>,
    mut plan: Vec<Scheduled>,
    _permit: Option<OwnedSemaphorePermit>,
) {
    plan.sort_by_key(|s| s.after);
    let start = Instant::now();
    for s in plan {
        tokio::time::sleep_until(start + s.after).await;
        let inbound = Inbound {
            event: s.event,
            receipt: Receipt::none(),
        };
        if events.send(inbound).await.is_err() {
            return; // the gateway has gone
        }
    }
}

/// Spontaneous alerts: each due at the previous one's time plus an exponential gap, so the rate
/// holds even when gaps are shorter than the timer's resolution.
async fn alert_loop(shared: Arc<Shared>) {
    let mut due = Instant::now();
    loop {
        let Some(next) = shared.lock().next_alert(unix_millis()) else {
            return;
        };
        due += next.after;
        tokio::time::sleep_until(due).await;
        let inbound = Inbound {
            event: next.event,
            receipt: Receipt::none(),
        };
        if shared.events.send(inbound).await.is_err() {
            return;
        }
    }
}
