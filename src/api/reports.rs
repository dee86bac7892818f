//! Employee reports: file one, see the status of one's own.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Reporter;
use super::body::ApiJson;
use super::{ApiError, AppState};
use crate::domain::limits::{within, MAX_DESCRIPTION_BYTES, MAX_ID_BYTES, MAX_URL_BYTES};
use crate::domain::{Case, Report, TenantId};
use crate::service::reports::NewReport;

/// Routes under `/v1/reports`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.post("/v1/reports", file_report);
    e.get("/v1/reports", list_own_reports);
    e.get("/v1/reports/{id}", get_own_report);
}

/// Most URLs one report may name.
pub const MAX_REPORT_URLS: usize = 20;

/// Body of `POST /v1/reports`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tenant": "parlor", "category": "violent-incitement", "urls": ["https://parlor.example/p/3"], "description": "armed march being organised"}))]
pub struct ReportRequest {
    tenant: String,
    category: String,
    urls: Vec<String>,
    description: String,
}

impl TryFrom<ReportRequest> for NewReport {
    type Error = ApiError;

    fn try_from(r: ReportRequest) -> Result<Self, ApiError> {
        let tenant = TenantId::try_from(r.tenant)
            .map_err(|m| ApiError::bad_request("invalid_tenant_id", m))?;
        if r.urls.is_empty() || r.urls.len() > MAX_REPORT_URLS {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("a report names 1 to {MAX_REPORT_URLS} URLs"),
            ));
        }
        within("category", &r.category, MAX_ID_BYTES)?;
        let mut urls = Vec::new();
        for (i, u) in r.urls.iter().enumerate() {
            within(format!("urls[{i}]"), u, MAX_URL_BYTES)?;
            let parsed = url::Url::parse(u)
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_url", format!("`{u}` is not an http(s) URL"))
                })?;
            urls.push(parsed);
        }
        let description =
            within("description", r.description.trim(), MAX_DESCRIPTION_BYTES)?.to_string();
        if description.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_body",
                "a description is 1 to 10000 bytes",
            ));
        }
        Ok(NewReport {
            tenant,
            category: r.category,
            urls,
            description,
        })
    }
}

/// Files a report: stores it, joins the tenant's open case for the category
/// or opens one, and samples the URLs in the background.
#[utoipa::path(
    post,
    path = "/v1/reports",
    tag = "reports",
    request_body(content = ReportRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 202, description = "the report, joined to a case or opening one", body = ReportView)),
    security(("bearer" = ["reporter"]))
)]
async fn file_report(
    Reporter(caller): Reporter,
    state: web::Data<AppState>,
    body: ApiJson<ReportRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = NewReport::try_from(body.into_inner())?;
    let filed = state
        .reports
        .file(&caller.actor(), &caller.name, new)
        .await?;
    Ok(HttpResponse::Accepted().json(report_view(&filed.report, Some(&filed.case))))
}

/// What a reporter sees of their report: never anything about other reports.
fn report_view(r: &Report, case: Option<&Case>) -> ReportView {
    ReportView {
        id: r.id.clone(),
        tenant: r.tenant.clone(),
        category: r.category.clone(),
        urls: r.urls.clone(),
        description: r.description.clone(),
        created_at: r.created_at,
        case: r.case.clone(),
        case_state: case.map(|c| c.state),
    }
}

/// A report as its reporter sees it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReportView {
    /// The report's id.
    pub id: String,
    /// The tenant reported.
    pub tenant: crate::domain::TenantId,
    /// The policy category reported.
    pub category: String,
    /// Where the content is.
    pub urls: Vec<String>,
    /// What the reporter saw.
    pub description: String,
    /// When it was filed.
    pub created_at: jiff::Timestamp,
    /// The case it joined or opened.
    pub case: Option<String>,
    /// Where that case stands now.
    pub case_state: Option<crate::domain::CaseState>,
}

/// Reply of `GET /v1/reports`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReportList {
    /// The caller's own reports.
    pub reports: Vec<ReportView>,
}

#[utoipa::path(
    get,
    path = "/v1/reports",
    tag = "reports",
    responses((status = 200, description = "the caller's own reports", body = ReportList)),
    security(("bearer" = ["reporter"]))
)]
async fn list_own_reports(
    Reporter(caller): Reporter,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reports = state
        .reports
        .of_reporter(&caller.name)
        .await?
        .iter()
        .map(|(r, case)| report_view(r, case.as_ref()))
        .collect();
    Ok(HttpResponse::Ok().json(ReportList { reports }))
}

#[utoipa::path(
    get,
    path = "/v1/reports/{id}",
    tag = "reports",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 200, description = "one of the caller's reports", body = ReportView)),
    security(("bearer" = ["reporter"]))
)]
async fn get_own_report(
    Reporter(caller): Reporter,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (r, case) = state
        .reports
        .of_reporter(&caller.name)
        .await?
        .into_iter()
        .find(|(r, _)| r.id == id)
        .ok_or(ApiError::NotFound("report"))?;
    Ok(HttpResponse::Ok().json(report_view(&r, case.as_ref())))
}
