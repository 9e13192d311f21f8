//! The commands sent to the hub network and waiting for their outcome, each with the timer that
//! ends it with E21. A command is taken out once: by the device's answer, a failure or its
//! timer, whichever comes first; the others find nothing.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::task::AbortHandle;

use crate::domain::{DeviceId, RequestId, Srv};

/// One command in flight.
pub(super) struct Flight {
    pub srv: Srv,
    pub device: DeviceId,
    timer: AbortHandle,
}

impl Flight {
    /// Stops the command's timer (its outcome came another way).
    pub fn stop_timer(&self) {
        self.timer.abort();
    }
}

#[derive(Default)]
pub(super) struct InFlight {
    flights: Mutex<HashMap<RequestId, Flight>>,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<RequestId, Flight>> {
        // Inserts and removes only: nothing half-done survives a panic.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `id` in flight with the timer `start_timer` starts, unless it is in flight already
    /// (then no timer is started). Says whether it was put in flight. The table stays locked
    /// while the timer starts, so the timer cannot fire before its command is in the table.
    pub fn start(
        &self,
        id: RequestId,
        srv: Srv,
        device: DeviceId,
        start_timer: impl FnOnce() -> AbortHandle,
    ) -> bool {
        let mut flights = self.lock();
        if flights.contains_key(&id) {
            return false;
        }
        let timer = start_timer();
        flights.insert(id, Flight { srv, device, timer });
        true
    }

    /// Takes `id` out of flight, if it is in flight.
    pub fn take(&self, id: &RequestId) -> Option<Flight> {
        self.lock().remove(id)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }
}
