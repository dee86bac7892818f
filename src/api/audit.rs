//! Paging through the audit log, and its head for operators to export.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::auth::Operator;
use super::error::blocking;
use super::{ApiError, AppState};

/// Routes under `/v1/audit`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.get("/v1/audit", list_audit);
    e.get("/v1/audit/head", get_audit_head);
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Records after this sequence number.
    after: Option<u64>,
    /// At most this many (1–1000, default 100).
    limit: Option<usize>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPageResponse {
    /// The records exactly as stored (the bytes their hashes cover), oldest
    /// first: each an event record (`seq`, `at`, `kind`, `tenant`, `data`,
    /// `prev`, `hash`).
    #[schema(value_type = Vec<crate::store::EventRecord>)]
    records: Vec<Box<RawValue>>,
    /// The `after` of the next page; `null` when this one is empty.
    next_after: Option<u64>,
}

/// The head of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditHeadResponse {
    /// Sequence number of the last record (0 for an empty log).
    seq: u64,
    /// Its hash.
    hash: String,
    /// `<hash>@<seq>`, what `aupd audit verify --expect-head` takes.
    head: String,
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "a page of the audit log", body = AuditPageResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn list_audit(
    _caller: Operator,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let store = state.sampling.store().clone();
    let page = blocking("audit", move || {
        crate::store::events::stored_after(&store, after, limit)
    })
    .await?;
    let next_after = page.last().map(|(seq, _)| *seq);
    Ok(HttpResponse::Ok().json(AuditPageResponse {
        records: page.into_iter().map(|(_, raw)| raw).collect(),
        next_after,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/audit/head",
    tag = "audit",
    responses((status = 200, description = "the head of the audit chain", body = AuditHeadResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn get_audit_head(
    _caller: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = state.sampling.store().clone();
    let head = blocking("audit head", move || crate::store::audit::head(&store)).await?;
    Ok(HttpResponse::Ok().json(AuditHeadResponse {
        seq: head.seq,
        head: head.to_string(),
        hash: head.hash,
    }))
}
