//! The admin listener's connections. Health checks must get through whatever else is going on:
//! a connection first takes one of the general slots; when those are full it may take one of a
//! few health slots instead, where only `/livez`, `/readyz` and `/metrics` are answered (others
//! get 503) and the request head must arrive within a quarter of a second — a monitor sends it at
//! once, a silent peer is dropped and its slot freed. When both are full a new connection is
//! closed at once. Every connection has a header-read bound and an overall deadline.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::{is_health, route, text, Admin};

/// Connections on the general slots, and their header-read bound.
const GENERAL_SLOTS: usize = 64;
const GENERAL_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections on the health slots, and their header-read bound.
const HEALTH_SLOTS: usize = 16;
const HEALTH_HEADER_TIMEOUT: Duration = Duration::from_millis(250);
/// No admin connection lives longer than this (a change batch included); past it, it is closed.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(60);

/// Serves until `stopped`. Registers and keys are loaded before this starts, so the gateway is
/// ready while it serves; once shutdown begins (`draining`) `/readyz` answers 503 so that load
/// balancers stop sending while connections drain.
pub async fn serve(
    listener: TcpListener,
    admin: Admin,
    draining: watch::Receiver<bool>,
    mut stopped: watch::Receiver<bool>,
) {
    let general = Arc::new(Semaphore::new(GENERAL_SLOTS));
    let health = Arc::new(Semaphore::new(HEALTH_SLOTS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => break,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let slot = match Arc::clone(&general).try_acquire_owned() {
            Ok(permit) => Slot::General(permit),
            Err(_) => match Arc::clone(&health).try_acquire_owned() {
                Ok(permit) => Slot::Health(permit),
                // Both full: closed at once.
                Err(_) => continue,
            },
        };
        tokio::spawn(connection(stream, admin.clone(), draining.clone(), slot));
    }
}

/// The slot a connection holds until it closes (the permit is given back when dropped).
enum Slot {
    General(#[allow(dead_code)] OwnedSemaphorePermit),
    Health(#[allow(dead_code)] OwnedSemaphorePermit),
}

async fn connection(
    stream: tokio::net::TcpStream,
    admin: Admin,
    draining: watch::Receiver<bool>,
    slot: Slot,
) {
    let health_only = matches!(slot, Slot::Health(_));
    let service = service_fn(move |req| {
        let admin = admin.clone();
        let draining = *draining.borrow();
        async move {
            if health_only && !is_health(req.uri().path()) {
                let busy = "the admin listener is busy; only health checks are answered\n";
                return Ok::<_, Infallible>(text(StatusCode::SERVICE_UNAVAILABLE, busy.into()));
            }
            Ok(route(req, &admin, draining).await)
        }
    });
    let header_timeout = if health_only {
        HEALTH_HEADER_TIMEOUT
    } else {
        GENERAL_HEADER_TIMEOUT
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    // The head must come within its bound whether or not a byte has arrived; the whole
    // connection within the deadline.
    let _ = tokio::time::timeout(CONNECTION_DEADLINE, conn).await;
    drop(slot);
}
