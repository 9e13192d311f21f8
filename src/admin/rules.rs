//! The dated rule sets on the admin listener (same token): `GET /admin/v1/rules` lists the
//! versions with their effective instants and which is in force now; `POST /admin/v1/rules`
//! adds a version (`schemas/rules.md`), checked against the latest one and ahead of its date,
//! journalled before the answer, in force from its instant without a restart.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use time::OffsetDateTime;

use super::{authorized_json, json, refusal, text, Admin};
use crate::rules::{diff, RuleFile};
use crate::state::rules::AddError;

/// `GET /admin/v1/rules`.
pub(super) fn list<B>(req: &Request<B>, admin: &Admin) -> Response<Full<Bytes>> {
    if let Some(refused) = refusal(req, admin) {
        return refused;
    }
    let book = admin.rules.book();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let versions: Vec<_> = book
        .versions()
        .map(|s| {
            json!({
                "version": s.version,
                "effective_from": (s.effective_from != i64::MIN).then_some(s.effective_from),
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &json!({ "in_force": book.in_force(now).version, "versions": versions }),
    )
}

/// `POST /admin/v1/rules` with one version.
pub(super) async fn add(req: Request<Incoming>, admin: &Admin) -> Response<Full<Bytes>> {
    let file: RuleFile = match authorized_json(req, admin).await {
        Ok(file) => file,
        Err(refused) => return refused,
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    match admin.rules.add(&file, now).await {
        Ok((before, added)) => {
            let changes: Vec<String> = diff(&before, &added)
                .iter()
                .map(ToString::to_string)
                .collect();
            tracing::info!(
                version = %added.version, effective_from = added.effective_from,
                changes = changes.len(), "Rule version added."
            );
            json(
                StatusCode::OK,
                &json!({
                    "version": added.version,
                    "effective_from": added.effective_from,
                    "changes": changes,
                }),
            )
        }
        Err(AddError::Invalid(e)) => text(StatusCode::CONFLICT, format!("not added: {e}\n")),
        Err(e @ AddError::Journal(_)) => {
            tracing::error!(error = %e, "A rule version could not be journalled.");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not added: the rules journal is unavailable\n".into(),
            )
        }
    }
}
