//! Anomaly detection on the admin listener (same token): `GET`/`POST /admin/v1/anomaly/thresholds`
//! read and replace the threshold set (`schemas/anomaly.md`: checked against the catalogue and
//! the party register, journalled, then in force, audited); `GET /admin/v1/quarantine` lists the
//! quarantined requests; `POST /admin/v1/quarantine/release` and `…/delete` take a JSON array of
//! quarantine references and answer how each went (audited).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::{authorized_json, json, refusal, text, Admin};
use crate::anomaly::Entry;
use crate::pipeline::ThresholdsRefused;

/// At most this many references in one release or delete; more are refused (400).
const MAX_REFERENCES: usize = 10_000;

/// `GET /admin/v1/anomaly/thresholds`: the set in force.
pub(super) fn thresholds<B>(req: &Request<B>, admin: &Admin) -> Response<Full<Bytes>> {
    if let Some(refused) = refusal(req, admin) {
        return refused;
    }
    let set = admin.gateway.anomaly.thresholds.load();
    json(
        StatusCode::OK,
        &json!({ "version": set.version, "entries": set.entries }),
    )
}

/// `POST /admin/v1/anomaly/thresholds` with a JSON array of thresholds: the whole set replaced.
pub(super) async fn set_thresholds(req: Request<Incoming>, admin: &Admin) -> Response<Full<Bytes>> {
    let entries: Vec<Entry> = match authorized_json(req, admin).await {
        Ok(entries) => entries,
        Err(refused) => return refused,
    };
    match admin.gateway.set_thresholds(entries).await {
        Ok(set) => json(
            StatusCode::OK,
            &json!({ "version": set.version, "entries": set.entries.len() }),
        ),
        Err(ThresholdsRefused::Invalid(e)) => {
            text(StatusCode::CONFLICT, format!("not applied: {e}\n"))
        }
        Err(e @ ThresholdsRefused::Journal(_)) => {
            tracing::error!(error = %e, "A threshold set could not be journalled.");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not applied: the threshold journal is unavailable\n".into(),
            )
        }
    }
}

/// `GET /admin/v1/quarantine`: every quarantined request (in cluster mode, every instance's),
/// oldest reference first; 503 when the cluster's database cannot be read.
pub(super) async fn list<B>(req: &Request<B>, admin: &Admin) -> Response<Full<Bytes>> {
    if let Some(refused) = refusal(req, admin) {
        return refused;
    }
    let Ok(quarantined) = admin.gateway.list_quarantined().await else {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": "the cluster's quarantine cannot be read" }),
        );
    };
    let listed: Vec<_> = quarantined
        .iter()
        .map(|q| {
            json!({
                "reference": q.reference,
                "request_id": q.request_id.to_string(),
                "user": q.request_id.originator.to_string(),
                "srv": q.srv.to_string(),
                "breach": q.breach.label(),
                "quarantined_at": q.at,
            })
        })
        .collect();
    json(StatusCode::OK, &json!({ "quarantined": listed }))
}

/// What an operator does with quarantined requests.
#[derive(Clone, Copy)]
pub(super) enum Act {
    Release,
    Delete,
}

/// `POST /admin/v1/quarantine/release` or `…/delete` with a JSON array of references.
pub(super) async fn act(req: Request<Incoming>, admin: &Admin, act: Act) -> Response<Full<Bytes>> {
    let references: Vec<u64> = match authorized_json(req, admin).await {
        Ok(references) => references,
        Err(refused) => return refused,
    };
    if references.len() > MAX_REFERENCES {
        return text(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_REFERENCES} references at once\n"),
        );
    }
    let mut results = Vec::with_capacity(references.len());
    for reference in references {
        let gw = &admin.gateway;
        results.push(match act {
            Act::Release => gw.release_quarantined(reference).await,
            Act::Delete => gw.delete_quarantined(reference).await,
        });
    }
    json(StatusCode::OK, &json!({ "results": results }))
}
