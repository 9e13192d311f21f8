//! `dccgw sign serve`: `sign` and `verify` as a small local HTTP service, in the DCC signing
//! tool's HTTP form, so client tooling written against that tool (the DCC's Node-RED flows)
//! can point at it.
//!
//! `POST /sign` and `POST /verify` take `{"message": "<base64 XML>"}`. `/sign` answers 200 with
//! `{"message": "<base64 signed XML>"}`, signed with the key whose certificate's User ID is the
//! RequestID's originator (or the only key, when one is loaded); `/verify` answers 200 with
//! `{"message": "<base64 XML without its signature>"}` when the signature is valid. Refusals are
//! 400 with `{"error": "<sentence>", "errorCode": "<kind>"}`; other paths 404, other methods 405.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections (more are closed at once), headers within
//! [`HEADER_TIMEOUT`], request bodies at most [`MAX_BODY_BYTES`] (larger: 413). It has no
//! authentication of its own: bind it to the loopback interface.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::net::TcpListener;

use super::{ToolError, VerifyExit};
use crate::domain::{RequestId, UserId};
use crate::signer::Signer;
use crate::xmldsig::{self, c14n::C14nLimits};

const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A DUIS message of up to 1 MiB, base64-encoded in JSON.
const MAX_BODY_BYTES: usize = 1_500_000;

/// What the service signs with and verifies against.
pub struct SignService {
    signers: Vec<Signer>,
    certs: PathBuf,
    trust: Vec<PathBuf>,
}

impl SignService {
    /// Loads each `(key, certificate)` pair; `certs` and `trust` are `dccgw verify`'s.
    pub fn load(
        pairs: &[(PathBuf, PathBuf)],
        certs: &Path,
        trust: &[PathBuf],
    ) -> Result<Self, ToolError> {
        let signers = pairs
            .iter()
            .map(|(key, cert)| Signer::load(key, cert, None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            signers,
            certs: certs.to_owned(),
            trust: trust.to_vec(),
        })
    }

    /// The User IDs it signs for.
    pub fn users(&self) -> Vec<UserId> {
        self.signers.iter().map(|s| s.identity().user_id).collect()
    }
}

#[derive(Deserialize)]
struct Message {
    message: String,
}

#[derive(Serialize)]
struct Refusal<'a> {
    error: String,
    #[serde(rename = "errorCode")]
    error_code: &'a str,
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, service: Arc<SignService>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let service = service.clone();
        tokio::spawn(async move {
            let handler = service_fn(move |req| {
                let service = service.clone();
                async move { Ok::<_, Infallible>(route(req, &service).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), handler)
                .await;
            drop(permit);
        });
    }
}

async fn route(req: Request<Incoming>, service: &SignService) -> Response<Full<Bytes>> {
    let sign = match (req.method(), req.uri().path()) {
        (&Method::POST, "/sign") => true,
        (&Method::POST, "/verify") => false,
        (_, "/sign" | "/verify") => {
            return refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "use POST",
                "MethodNotAllowed",
            )
        }
        _ => return refuse(StatusCode::NOT_FOUND, "no such endpoint", "NotFound"),
    };
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than the service takes",
                "TooLarge",
            )
        }
    };
    let xml = match serde_json::from_slice::<Message>(&body)
        .map(|m| base64::engine::general_purpose::STANDARD.decode(m.message.trim().as_bytes()))
    {
        Ok(Ok(xml)) => xml,
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "expected {\"message\": \"<base64 XML>\"}",
                "BadRequest",
            )
        }
    };
    let result = if sign {
        service.sign(&xml)
    } else {
        service.verify(&xml)
    };
    match result {
        Ok(out) => json(
            StatusCode::OK,
            &serde_json::json!({ "message": base64::engine::general_purpose::STANDARD.encode(out) }),
        ),
        Err((sentence, code)) => refuse(StatusCode::BAD_REQUEST, &sentence, code),
    }
}

impl SignService {
    fn sign(&self, xml: &[u8]) -> Result<String, (String, &'static str)> {
        let signer = self.signer_for(xml)?;
        let text = std::str::from_utf8(xml).map_err(|_| ("not UTF-8".to_owned(), "NotText"))?;
        let limits = C14nLimits::default();
        let doc = xmldsig::strip_signature(text, &limits)
            .map_err(|e| (format!("not XML that can be signed: {e}"), "NotXml"))?;
        xmldsig::sign_document(&doc, signer, &limits)
            .map_err(|e| (format!("signing failed: {e}"), "SignFailed"))
    }

    /// The signer for the message's originator; the only one when there is one.
    fn signer_for(&self, xml: &[u8]) -> Result<&Signer, (String, &'static str)> {
        if let [only] = self.signers.as_slice() {
            return Ok(only);
        }
        let originator = originator(xml).ok_or_else(|| {
            (
                "the message has no RequestID naming its originator".to_owned(),
                "NoRequestId",
            )
        })?;
        self.signers
            .iter()
            .find(|s| s.identity().user_id == originator)
            .ok_or_else(|| {
                (
                    format!("no key is loaded for User {originator}"),
                    "UnknownOriginator",
                )
            })
    }

    fn verify(&self, xml: &[u8]) -> Result<String, (String, &'static str)> {
        let (exit, sentence) =
            super::verify(xml, &self.certs, &self.trust, OffsetDateTime::now_utc())
                .map_err(|e| (e.to_string(), "Unavailable"))?;
        let code = match exit {
            VerifyExit::Valid => {
                let text =
                    std::str::from_utf8(xml).map_err(|_| ("not UTF-8".to_owned(), "NotText"))?;
                return xmldsig::strip_signature(text, &C14nLimits::default())
                    .map_err(|e| (format!("malformed: {e}"), "Malformed"));
            }
            VerifyExit::InvalidSignature => "InvalidSignature",
            VerifyExit::UnknownCertificate => "UnknownCertificate",
            VerifyExit::Malformed => "Malformed",
            VerifyExit::CertificateNotAcceptable => "CertificateNotAcceptable",
            VerifyExit::CannotRead => "Unavailable",
        };
        Err((sentence, code))
    }
}

/// The originator of the first `RequestID` in `xml`.
fn originator(xml: &[u8]) -> Option<UserId> {
    let text = std::str::from_utf8(xml).ok()?;
    let open = text.find("RequestID>")? + "RequestID>".len();
    let close = open + text[open..].find('<')?;
    let id: RequestId = text[open..close].trim().parse().ok()?;
    Some(id.originator)
}

fn refuse(status: StatusCode, error: &str, code: &str) -> Response<Full<Bytes>> {
    json(
        status,
        &Refusal {
            error: error.to_owned(),
            error_code: code,
        },
    )
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
