//! Reference (a): the ceiling for TLS + HTTP on this machine — a bare hyper + rustls server with
//! the same mTLS requirement as the gateway (a client certificate chained to the CA) that reads
//! each request body and answers a fixed body. No parsing, no signatures, no state. Runs as its
//! own process (`dccgw-load ref-server`) so that its CPU time is accounted like the gateway's.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Largest request body read, as the gateway's default limit; larger ones get 413.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Binds `addr` and returns the bound address and a future that serves until the process ends.
pub async fn bind(
    addr: SocketAddr,
    tls: Arc<ServerConfig>,
    body: Bytes,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(tls);
    let serve = async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                // Out of descriptors, say: back off rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        let read = Limited::new(req.into_body(), MAX_BODY_BYTES)
                            .collect()
                            .await
                            .is_ok();
                        let mut answer =
                            hyper::Response::new(Full::new(if read { body } else { Bytes::new() }));
                        if read {
                            answer.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static("application/xml"),
                            );
                        } else {
                            *answer.status_mut() = hyper::StatusCode::PAYLOAD_TOO_LARGE;
                        }
                        Ok::<_, std::convert::Infallible>(answer)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    };
    Ok((bound, serve))
}
