//! A User's Receive Response Service, for the demo, the tests and the load tool: a real mTLS
//! HTTPS server that accepts only the DCC's client certificate (SMKI role `04` by default),
//! takes POSTed DUIS messages, writes each to a directory (one file each, named by its
//! RequestID or alert; temp file, fsync, rename, fsync of the directory) and/or hands it to a
//! channel, and only then answers 200 — so a 200 means the message is kept.

mod name;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub use name::{describe, file_stem, DescribeError, Description};

use crate::domain::{SmkiRole, UserId};
use crate::outbox::MESSAGE_ID_HEADER;
use crate::smki::Clients;
use crate::tls::{self, TlsError};

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub addr: SocketAddr,
    /// The server certificate chain and key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA certificates the DCC's client certificate must chain to.
    pub client_ca: Vec<PathBuf>,
    /// The SMKI role the client certificate must carry; others are dropped after the handshake.
    pub client_role: SmkiRole,
    /// Where to write each message; `None` writes nothing (the channel alone).
    pub dir: Option<PathBuf>,
    /// Larger bodies are answered 413 unread.
    pub max_body_bytes: usize,
    /// Open connections; at the bound new ones wait in the kernel's backlog.
    pub max_connections: usize,
}

impl ReceiverConfig {
    pub fn new(addr: SocketAddr, cert: PathBuf, key: PathBuf, client_ca: Vec<PathBuf>) -> Self {
        Self {
            addr,
            cert,
            key,
            client_ca,
            client_role: SmkiRole::AccessControlBroker,
            dir: None,
            max_body_bytes: 1024 * 1024,
            max_connections: 256,
        }
    }
}

/// One message as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The client certificate's User ID (the DCC's).
    pub peer: UserId,
    /// The outbox's message ID, when the sender named it.
    pub message_id: Option<String>,
    pub description: Description,
    /// The file stem (the file is `<stem>.xml` in the directory, when there is one).
    pub stem: String,
    pub file: Option<PathBuf>,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A running receiver; [`Receiver::stop`] ends it and every connection.
pub struct Receiver {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Ctx {
    dir: Option<PathBuf>,
    sink: Option<mpsc::Sender<Received>>,
    max_body_bytes: usize,
    temp_seq: AtomicU64,
}

impl Receiver {
    /// Binds and starts serving; messages go to `config.dir` and/or `sink`.
    pub async fn start(
        config: ReceiverConfig,
        sink: Option<mpsc::Sender<Received>>,
    ) -> Result<Self, ReceiverError> {
        let trust = Arc::new(tls::trust_from_files(&config.client_ca)?);
        let tls = tls::server_config(&config.cert, &config.key, trust, Clients::AnyRole)?;
        if let Some(dir) = &config.dir {
            std::fs::create_dir_all(dir).map_err(|source| ReceiverError::Dir {
                path: dir.clone(),
                source,
            })?;
        }
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| ReceiverError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ReceiverError::Bind {
                addr: config.addr,
                source,
            })?;
        let ctx = Arc::new(Ctx {
            dir: config.dir.clone(),
            sink,
            max_body_bytes: config.max_body_bytes,
            temp_seq: AtomicU64::new(0),
        });
        let (shutdown, stop) = watch::channel(false);
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let task = tokio::spawn(accept_loop(
            listener,
            acceptor,
            config.client_role,
            ctx,
            limit,
            stop,
        ));
        Ok(Self {
            addr,
            shutdown,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and drops every open connection (requests in flight are cut off).
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    role: SmkiRole,
    ctx: Arc<Ctx>,
    limit: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _remote)) = accepted else {
            continue;
        };
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        conns.spawn(async move {
            serve(stream, acceptor, role, ctx).await;
            drop(permit);
        });
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve(
    stream: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    role: SmkiRole,
    ctx: Arc<Ctx>,
) {
    let Ok(Ok(tls_stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
    else {
        return;
    };
    let Some(peer) = tls::peer_identity(tls_stream.get_ref().1) else {
        return;
    };
    if peer.role != role {
        tracing::info!(client = %peer.user_id, role = %peer.role, "Receiver refused a client of the wrong role.");
        return;
    }
    let service = hyper::service::service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&ctx, peer.user_id, req).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let _ = builder
        .serve_connection(TokioIo::new(tls_stream), service)
        .await;
}

async fn handle(ctx: &Ctx, peer: UserId, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let message_id = req
        .headers()
        .get(MESSAGE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map(str::to_owned);
    let body = match Limited::new(req.into_body(), ctx.max_body_bytes)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return status(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    let description = match describe(&body) {
        Ok(d) => d,
        Err(e) => {
            tracing::info!(error = %e, "Receiver refused a message it cannot read.");
            return status(StatusCode::BAD_REQUEST);
        }
    };
    let stem = file_stem(&description, message_id.as_deref(), &body);
    let file = match &ctx.dir {
        None => None,
        Some(dir) => {
            let seq = ctx.temp_seq.fetch_add(1, Ordering::Relaxed);
            let (dir, stem2, body2) = (dir.clone(), stem.clone(), body.clone());
            match tokio::task::spawn_blocking(move || write_atomically(&dir, &stem2, seq, &body2))
                .await
            {
                Ok(Ok(path)) => Some(path),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "Receiver could not write a message; answering 500.");
                    return status(StatusCode::INTERNAL_SERVER_ERROR);
                }
                Err(_) => return status(StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
    };
    if let Some(sink) = &ctx.sink {
        let received = Received {
            peer,
            message_id,
            description,
            stem,
            file,
            body,
        };
        // A consumer that has gone cannot keep the message: say so, so the sender retries.
        if sink.send(received).await.is_err() {
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
    }
    status(StatusCode::OK)
}

/// `<dir>/<stem>.xml`, written whole or not at all. Blocking.
fn write_atomically(dir: &Path, stem: &str, seq: u64, body: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let path = dir.join(format!("{stem}.xml"));
    let temp = dir.join(format!(".{stem}.{seq}.tmp"));
    let mut f = std::fs::File::create(&temp)?;
    f.write_all(body)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&temp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}

#[cfg(test)]
mod tests;
