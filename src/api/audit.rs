//! Paging through the audit log.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Operator;
use super::error::blocking;
use super::{ApiError, AppState};

/// Routes under `/v1/audit`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit").route(web::get().to(list_audit)));
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Records after this sequence number.
    after: Option<u64>,
    /// At most this many (1–1000, default 100).
    limit: Option<usize>,
}

async fn list_audit(
    _caller: Operator,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let store = state.sampling.store().clone();
    let records = blocking("audit", move || store.events_after(after, limit)).await?;
    let next = records.last().map(|r| r.seq);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "records": records, "next_after": next })))
}
