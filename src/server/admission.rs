//! Who may hold what on the DUIS port, before and after the handshake: every open connection
//! holds a connection slot (at the bound, new connections wait in the kernel's backlog); one
//! still handshaking also holds a handshake slot, and every connection counts against its
//! source address. At the handshake or the per-source bound a new connection is closed at once
//! (and counted), so that silent or slow peers cannot make authenticated Users wait behind
//! them. Request bodies in flight, over all connections, share one memory budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::config::Limits;

/// Why a new connection was closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// The handshake slots were all taken.
    Handshakes,
    /// Its source address already had its bound of open connections.
    PerSource,
}

impl Shed {
    pub const fn label(self) -> &'static str {
        match self {
            Self::Handshakes => "handshakes",
            Self::PerSource => "per_source",
        }
    }
}

/// What every connection and request on the DUIS port is bounded by.
pub struct Bounds {
    pub limits: Limits,
    /// Bytes of request bodies held in memory by all requests at once.
    pub bodies: Arc<Semaphore>,
}

/// The slots a connection holds; each is given back when dropped.
pub struct Admitted {
    _connection: OwnedSemaphorePermit,
    _source: SourceSlot,
    /// Given back as soon as the handshake ends, either way.
    pub handshake: Option<OwnedSemaphorePermit>,
}

/// The DUIS port's admission: handshake slots and per-source counts.
pub struct Admission {
    handshakes: Arc<Semaphore>,
    sources: Arc<Sources>,
}

impl Bounds {
    pub fn new(limits: Limits) -> Self {
        let budget = limits
            .max_body_bytes_in_flight
            .clamp(limits.max_body_bytes, Semaphore::MAX_PERMITS);
        Self {
            bodies: Arc::new(Semaphore::new(budget)),
            limits,
        }
    }
}

impl Admission {
    pub fn new(limits: &Limits) -> Self {
        Self {
            handshakes: Arc::new(Semaphore::new(limits.max_handshakes.max(1))),
            sources: Arc::new(Sources {
                counts: Mutex::new(HashMap::new()),
                max: limits.max_connections_per_source.max(1),
            }),
        }
    }

    /// Admits a connection from `source` that holds `connection`, or says why not.
    pub fn admit(
        &self,
        connection: OwnedSemaphorePermit,
        source: IpAddr,
    ) -> Result<Admitted, Shed> {
        let source = Sources::admit(&self.sources, source).ok_or(Shed::PerSource)?;
        let handshake = match Arc::clone(&self.handshakes).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                return Err(Shed::Handshakes)
            }
        };
        Ok(Admitted {
            _connection: connection,
            _source: source,
            handshake: Some(handshake),
        })
    }
}

/// Open connections per source address. An address is in the map only while it has one, so
/// the map holds at most as many entries as there are connections.
struct Sources {
    counts: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

impl Sources {
    fn admit(this: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let mut counts = this.lock();
        let n = counts.entry(ip).or_insert(0);
        if *n >= this.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            sources: Arc::clone(this),
            ip,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Counting cannot leave the map inconsistent.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection counted against its source; uncounted when dropped.
struct SourceSlot {
    sources: Arc<Sources>,
    ip: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut counts = self.sources.lock();
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_source: usize, handshakes: usize) -> Limits {
        Limits {
            max_connections_per_source: per_source,
            max_handshakes: handshakes,
            ..Limits::default()
        }
    }

    fn slot() -> OwnedSemaphorePermit {
        Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap()
    }

    #[test]
    fn one_source_cannot_take_more_than_its_bound() {
        let a = Admission::new(&limits(2, 100));
        let (x, y): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = a.admit(slot(), x).unwrap();
        let _second = a.admit(slot(), x).unwrap();
        assert_eq!(a.admit(slot(), x).err(), Some(Shed::PerSource));
        assert!(a.admit(slot(), y).is_ok(), "another source is not affected");
        drop(first);
        assert!(
            a.admit(slot(), x).is_ok(),
            "a closed connection frees its count"
        );
    }

    #[test]
    fn handshakes_have_their_own_bound_and_end_with_the_handshake() {
        let a = Admission::new(&limits(100, 2));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut first = a.admit(slot(), ip).unwrap();
        let _second = a.admit(slot(), ip).unwrap();
        assert_eq!(a.admit(slot(), ip).err(), Some(Shed::Handshakes));
        // The first finishes its handshake: its connection stays, its handshake slot is free.
        first.handshake = None;
        let third = a.admit(slot(), ip);
        assert!(third.is_ok());
        // A refused connection is not counted against its source.
        assert_eq!(a.sources.lock().get(&ip), Some(&3));
    }
}
