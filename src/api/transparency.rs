//! Transparency counts over a window, for operators and admins, as JSON or
//! CSV (`?format=csv` or `Accept: text/csv`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::auth::Operator;
use super::error::blocking;
use super::{ApiError, AppState};
use crate::domain::transparency::{count, to_csv, Window};

/// Routes under `/v1`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.get("/v1/reports/transparency", get_transparency_report);
}

/// Query of `GET /v1/reports/transparency`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TransparencyQuery {
    /// First instant counted: `YYYY-MM-DD` or RFC 3339.
    from: String,
    /// First instant no longer counted.
    to: String,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/reports/transparency",
    tag = "reports",
    params(TransparencyQuery),
    responses((status = 200, description = "the counts: JSON, or CSV (`section,key,value`) with `format=csv` or `Accept: text/csv`", content((crate::domain::transparency::TransparencyReport = "application/json"), (String = "text/csv")))),
    security(("bearer" = ["admin", "operator"]))
)]
async fn get_transparency_report(
    _caller: Operator,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<TransparencyQuery>,
) -> Result<HttpResponse, ApiError> {
    let window = Window::parse(&query.from, &query.to)
        .map_err(|m| ApiError::bad_request("invalid_window", m))?;
    let accepts_csv = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    let csv = match query.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        None => accepts_csv,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_format",
                format!(
                    "format is `json` or `csv`, not `{}`",
                    other.chars().take(40).collect::<String>()
                ),
            ))
        }
    };
    let cases = state.cases.all().await?;
    let store = state.sampling.store().clone();
    let reports = blocking("reports", move || store.reports()).await?;
    let report = count(window, &cases, &reports);
    if csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(to_csv(&report)));
    }
    Ok(HttpResponse::Ok().json(report))
}
