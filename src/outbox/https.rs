//! The production transport: an HTTPS POST to the User's Receive Response Service, the gateway
//! being the TLS client with its own client certificate (the DCC access-control broker, role
//! `04`), the User's server certificate checked against configured trust anchors (not the
//! public web roots). HTTP/2 or HTTP/1.1 by ALPN, connections pooled per host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use serde::Deserialize;

use super::message::Message;
use super::transport::{PostFuture, Transport, TransportError};
use crate::tls::{self, TlsError};

/// The header naming the outbox's message ID, so a receiver can tell a duplicate.
pub const MESSAGE_ID_HEADER: &str = "x-dccgw-message-id";
/// Bytes of a User's answer body read (and then dropped) so the connection can be reused.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// `[delivery]`: the gateway's client identity and the anchors User endpoints must chain to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransportConfig {
    /// The gateway's TLS client certificate chain (PEM): the DCC access-control broker, `OU=04`.
    pub client_cert: PathBuf,
    /// The private key of `client_cert` (PKCS#8 PEM).
    pub client_key: PathBuf,
    /// CA certificates (PEM) that User endpoints' server certificates must chain to.
    pub trust_anchors: Vec<PathBuf>,
    /// Time to open a TCP connection; past it the attempt fails (`connect`).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time for a whole attempt (connect, TLS, POST, answer); past it the attempt fails
    /// (`timeout`) and the connection is dropped.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Idle pooled connections kept per host.
    #[serde(default = "default_idle_per_host")]
    pub max_idle_per_host: usize,
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}

fn default_request_timeout_ms() -> u64 {
    30_000
}

fn default_idle_per_host() -> usize {
    16
}

impl TransportConfig {
    /// The defaults for everything but the files.
    pub fn new(client_cert: PathBuf, client_key: PathBuf, trust_anchors: Vec<PathBuf>) -> Self {
        Self {
            client_cert,
            client_key,
            trust_anchors,
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            max_idle_per_host: default_idle_per_host(),
        }
    }
}

pub struct HttpsTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    request_timeout: Duration,
}

impl HttpsTransport {
    pub fn new(config: &TransportConfig) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for path in &config.trust_anchors {
            add_anchors(&mut roots, path)?;
        }
        let chain = tls::load_certs(&config.client_cert)?;
        let key = tls::load_key(&config.client_key)?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(TlsError::Config)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(config.max_idle_per_host)
            .build(https);
        Ok(Self {
            client,
            request_timeout: Duration::from_millis(config.request_timeout_ms),
        })
    }

    async fn send(&self, url: &str, message: &Message) -> Result<(), TransportError> {
        let bad = || TransportError::BadEndpoint {
            url: url.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("https") || uri.host().is_none() {
            return Err(bad());
        }
        let mut request = Request::new(Full::new(message.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        // Sixteen hex digits are always a valid header value.
        if let Ok(v) = HeaderValue::from_str(&message.id.to_string()) {
            headers.insert(MESSAGE_ID_HEADER, v);
        }
        let response = self.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                TransportError::Connect(Box::new(e))
            } else {
                TransportError::Protocol(Box::new(e))
            }
        })?;
        let status = response.status();
        // Read a bounded amount of the answer so the connection can be reused; what it says
        // beyond its status does not matter.
        let _ = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await;
        if status.is_success() {
            Ok(())
        } else {
            Err(TransportError::Status(status.as_u16()))
        }
    }
}

impl Transport for HttpsTransport {
    fn post<'a>(&'a self, url: &'a str, message: &'a Message) -> PostFuture<'a> {
        Box::pin(async move {
            match tokio::time::timeout(self.request_timeout, self.send(url, message)).await {
                Ok(result) => result,
                Err(_) => Err(TransportError::Timeout {
                    ms: self.request_timeout.as_millis() as u64,
                }),
            }
        })
    }
}

fn add_anchors(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsError> {
    for ca in tls::load_certs(path)? {
        roots.add(ca).map_err(|source| TlsError::BadTrustAnchor {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(())
}
