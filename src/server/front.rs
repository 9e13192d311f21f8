//! The DUIS port's front lane: a runtime of its own for the listener and its connections (TLS,
//! HTTP, the parse and the admission decision, shed answers). An admitted request's further
//! phases run on the gateway's main runtime (`pipeline::Gate`), beside the hub link, the
//! outbox and the writers. With one runtime for everything, a request that is to be shed waits
//! its turn behind every admitted request's verification, signing and delivery work queued
//! there before it (one core saturated: tens of milliseconds); here it waits only behind other
//! connections' parses, and the operating system shares the core between the two runtimes'
//! threads, waking the front lane's as soon as a request arrives.

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::runtime::{Builder, Handle};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::{accept_loop, StartError};
use crate::config::Limits;
use crate::pipeline::Gateway;
use crate::tls;

/// The front lane's runtime. Its owner thread drops it (its tasks with it, so the connections
/// it still held are closed) once this is dropped: a runtime may not be dropped in an async
/// context, where the gateway's shutdown runs.
pub struct Front {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl Front {
    /// A runtime of `threads` worker threads, or none for 0 (everything on the main runtime).
    pub fn start(threads: usize) -> io::Result<Option<Self>> {
        if threads == 0 {
            return Ok(None);
        }
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("dccgw-front")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("dccgw-front-owner".into())
            .spawn(move || runtime.block_on(async move { stopped.await.unwrap_or(()) }))?;
        Ok(Some(Self {
            handle,
            _stop: stop,
        }))
    }

    /// `listener`, registered with this runtime's reactor instead of the caller's.
    pub fn adopt(&self, listener: TcpListener) -> io::Result<TcpListener> {
        let std = listener.into_std()?;
        let _inside = self.handle.enter();
        TcpListener::from_std(std)
    }

    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

/// Runs the accept loop on the front lane when there is one (the listener moves to its
/// reactor, and its connections with it), else on the caller's runtime.
pub(super) fn accept_on(
    front: Option<&Front>,
    listener: TcpListener,
    acceptor: Arc<tls::Acceptor>,
    gateway: &Arc<Gateway>,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, StartError> {
    let gateway = Arc::clone(gateway);
    Ok(match front {
        Some(front) => {
            let listener = front.adopt(listener).map_err(StartError::Front)?;
            front.spawn(accept_loop(listener, acceptor, gateway, limits, shutdown))
        }
        None => tokio::spawn(accept_loop(listener, acceptor, gateway, limits, shutdown)),
    })
}
