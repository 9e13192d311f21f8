//! The admin listener's connections. Health checks must get through whatever else is going on,
//! so no slot is taken until a request's head has been read: up to [`MAX_CONNECTIONS`] may be
//! open (past it a new one is closed at once), each must send its head within
//! [`HEADER_TIMEOUT`] (a silent one is dropped then), and none lives past
//! [`CONNECTION_DEADLINE`]. `/livez`, `/readyz` and `/metrics` are then answered at once; every
//! other request needs one of [`WORK_SLOTS`] for as long as it runs, and gets 503 when all are
//! taken.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::{is_health, route, text, Admin};

/// Open admin connections, at most.
const MAX_CONNECTIONS: usize = 1024;
/// Time to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// No admin connection lives longer than this (a change batch included); past it, it is closed.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(60);
/// Requests other than health checks running at once.
const WORK_SLOTS: usize = 16;

/// Serves until `stopped`. Registers and keys are loaded before this starts, so the gateway is
/// ready while it serves; once shutdown begins (`draining`) `/readyz` answers 503 so that load
/// balancers stop sending while connections drain.
pub async fn serve(
    listener: TcpListener,
    admin: Admin,
    draining: watch::Receiver<bool>,
    mut stopped: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let work = Arc::new(Semaphore::new(WORK_SLOTS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => break,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(open) = Arc::clone(&connections).try_acquire_owned() else {
            continue; // At the bound: closed at once.
        };
        let (admin, draining, work) = (admin.clone(), draining.clone(), Arc::clone(&work));
        tokio::spawn(async move {
            connection(stream, admin, draining, work).await;
            drop(open);
        });
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    admin: Admin,
    draining: watch::Receiver<bool>,
    work: Arc<Semaphore>,
) {
    let service = service_fn(move |req| {
        let admin = admin.clone();
        let draining = *draining.borrow();
        let work = Arc::clone(&work);
        async move {
            if is_health(req.uri().path()) {
                return Ok::<_, Infallible>(route(req, &admin, draining).await);
            }
            let Ok(_slot) = work.try_acquire_owned() else {
                let busy = "the admin listener is busy; only health checks are answered now\n";
                return Ok(text(StatusCode::SERVICE_UNAVAILABLE, busy.into()));
            };
            Ok(route(req, &admin, draining).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(CONNECTION_DEADLINE, conn).await;
}
