//! HTTP for one request: the route, method, content type and body bounds, then the pipeline.
//! Only this file knows hyper's request and response types.

use std::time::Duration;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use time::OffsetDateTime;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::admission::Bounds;
use crate::domain::{DuisService, ResponseCode};
use crate::error::Error;
use crate::pipeline::{Answer, Gateway};
use crate::tls::PeerIdentity;

pub(super) async fn handle(
    gateway: &Arc<Gateway>,
    bounds: &Bounds,
    peer: &PeerIdentity,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let limits = &bounds.limits;
    let Some(service) = DuisService::from_path(req.uri().path()) else {
        return plain(StatusCode::NOT_FOUND, "Not a DUIS service path.\n");
    };
    if req.method() != Method::POST {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "DUIS services take POST.\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let now = OffsetDateTime::now_utc();
    let timeout = Duration::from_millis(limits.request_timeout_ms);
    let answer = match tokio::time::timeout(
        timeout,
        read_and_process(gateway, bounds, service, peer, req, now),
    )
    .await
    {
        Ok(answer) => answer,
        Err(_) => {
            gateway
                .refuse_early(service, peer, Error::Timeout, now)
                .await
        }
    };
    xml(answer)
}

async fn read_and_process(
    gateway: &Arc<Gateway>,
    bounds: &Bounds,
    service: DuisService,
    peer: &PeerIdentity,
    req: Request<Incoming>,
    now: OffsetDateTime,
) -> Answer {
    if !is_xml(req.headers().get(CONTENT_TYPE)) {
        return gateway
            .refuse_early(service, peer, Error::ContentType, now)
            .await;
    }
    let max = bounds.limits.max_body_bytes;
    // A declared length over the bound is refused before a byte of the body is read.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        let too_large = Error::BodyTooLarge { limit: max };
        return gateway.refuse_early(service, peer, too_large, now).await;
    }
    // The body's bytes stay counted against the budget until the request is answered.
    let (body, _held) = match read_body(req.into_body(), max, &bounds.bodies).await {
        Ok(read) => read,
        Err(error) => return gateway.refuse_early(service, peer, error, now).await,
    };
    gateway.serve(service, peer, body, now).await
}

/// Reads a body up to `max` bytes, each chunk counted against the shared `budget` as it
/// arrives; the bytes and the budget they hold. Past `max` the body is too large; past the
/// budget the gateway is too busy (neither reads further); a body cut off mid-way is unreadable.
async fn read_body(
    mut body: Incoming,
    max: usize,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Error> {
    let mut bytes = BytesMut::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            // The peer went away or broke the framing mid-body; nobody is left to answer.
            tracing::debug!(error = %e, "Request body could not be read.");
            Error::BodyUnreadable
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if bytes.len() + data.len() > max {
            return Err(Error::BodyTooLarge { limit: max });
        }
        // A chunk is at most `max` bytes, which fits a u32 (the configuration's bound).
        let n = u32::try_from(data.len()).map_err(|_| Error::BodyTooLarge { limit: max })?;
        let permit = Arc::clone(budget)
            .try_acquire_many_owned(n)
            .map_err(|_| Error::Busy)?;
        match held.as_mut() {
            Some(h) => h.merge(permit),
            None => held = Some(permit),
        }
        bytes.extend_from_slice(&data);
    }
    Ok((bytes.freeze(), held))
}

/// `application/xml` or `text/xml`, parameters (charset) allowed.
fn is_xml(value: Option<&HeaderValue>) -> bool {
    let Some(v) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = v.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/xml") || mime.eq_ignore_ascii_case("text/xml")
}

fn xml(answer: Answer) -> Response<Full<Bytes>> {
    if !answer.recorded {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "The gateway could not record its answer, so it gives none. Retry later.\n",
        );
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = Response::new(Full::new(Bytes::from(answer.body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    if let Ok(code) = HeaderValue::from_str(answer.code.as_str()) {
        r.headers_mut().insert("x-duis-response-code", code);
    }
    // A request refused for the gateway's load (E60) or its User's own admission bound (E61)
    // may be sent again: after a second, the time the limits adapt and buckets refill in.
    if matches!(answer.code, ResponseCode::E60 | ResponseCode::E61) {
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    r
}

/// The `Retry-After` of an `E60` or `E61` answer, in seconds.
pub const RETRY_AFTER_SECS: &str = "1";

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let cases = [
            (Some("application/xml"), true),
            (Some("application/xml; charset=UTF-8"), true),
            (Some("Text/XML"), true),
            (Some("application/x-www-form-urlencoded"), false),
            (Some("application/xmlfoo"), false),
            (None, false),
        ];
        for (v, want) in cases {
            let hv = v.map(|v| HeaderValue::from_str(v).unwrap());
            assert_eq!(is_xml(hv.as_ref()), want, "{v:?}");
        }
    }
}
