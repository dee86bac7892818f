//! Statements of reasons: the tenant reads its own in the portal; the
//! abuse team reads a case's, or exports them for the DSA Transparency
//! Database (`?format=transparency-db`).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::{CaseReader, TenantCaller};
use super::cases::parse_case_id;
use super::{ApiError, AppState};
use crate::domain::statement::{
    transparency_submission, StatementOfReasons, TransparencySubmission,
};
use crate::domain::CaseId;

/// Routes under `/v1`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.get("/v1/cases/{id}/statements", list_case_statements)
        .get("/v1/tenant/statements", list_my_statements)
        .get("/v1/tenant/statements/{id}", get_my_statement);
}

/// Query of `GET /v1/cases/{id}/statements`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatementsQuery {
    /// `aupd` (default) or `transparency-db`.
    #[param(pattern = "^(aupd|transparency-db)$")]
    format: Option<String>,
}

/// Reply of `GET /v1/cases/{id}/statements`: aupd's statements, or with
/// `format=transparency-db` the Transparency Database's submission body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum CaseStatementsReply {
    /// `format=aupd` (the default).
    Aupd(CaseStatementsResponse),
    /// `format=transparency-db`.
    TransparencyDb(TransparencyExportResponse),
}

/// A case's statements of reasons, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaseStatementsResponse {
    /// The case.
    case_id: CaseId,
    /// Its statements.
    statements: Vec<StatementOfReasons>,
}

/// A case's statements as the Transparency Database's multiple-statement
/// submission body (`{"statements": [...]}`). It has no other member, and
/// the document says so (`additionalProperties: false`), so that a reply
/// with `case_id` is told apart from it even when both lists are empty.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransparencyExportResponse {
    /// One submission per statement.
    statements: Vec<TransparencySubmission>,
}

/// The tenant's statements of reasons, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantStatementsResponse {
    /// Its statements.
    statements: Vec<StatementOfReasons>,
}

#[utoipa::path(
    get,
    path = "/v1/cases/{id}/statements",
    tag = "cases",
    params(("id" = String, Path, description = "id of the resource"), StatementsQuery),
    responses((status = 200, description = "the case's statements of reasons, or the Transparency Database body", body = CaseStatementsReply)),
    security(("bearer" = ["admin", "operator", "approver"]))
)]
async fn list_case_statements(
    _caller: CaseReader,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<StatementsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_case_id(&path)?;
    let export = match query.format.as_deref() {
        None | Some("aupd") => false,
        Some("transparency-db") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_format",
                format!(
                    "format is `aupd` or `transparency-db`, not `{}`",
                    other.chars().take(40).collect::<String>()
                ),
            ))
        }
    };
    let case = state
        .cases
        .get(&id)
        .await?
        .ok_or(ApiError::NotFound("case"))?;
    if export {
        let statements = case
            .statements
            .iter()
            .map(|s| transparency_submission(s, &case))
            .collect();
        return Ok(HttpResponse::Ok().json(CaseStatementsReply::TransparencyDb(
            TransparencyExportResponse { statements },
        )));
    }
    Ok(
        HttpResponse::Ok().json(CaseStatementsReply::Aupd(CaseStatementsResponse {
            case_id: case.id,
            statements: case.statements,
        })),
    )
}

async fn my_statements(
    state: &AppState,
    tenant: &crate::domain::TenantId,
) -> Result<Vec<StatementOfReasons>, ApiError> {
    let cases = state.cases.of_tenant(tenant.as_str()).await?;
    let mut statements: Vec<StatementOfReasons> = cases
        .into_iter()
        .filter(|c| &c.tenant == tenant)
        .flat_map(|c| c.statements)
        .collect();
    statements.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(b.id.cmp(&a.id)));
    Ok(statements)
}

#[utoipa::path(
    get,
    path = "/v1/tenant/statements",
    tag = "tenant portal",
    responses((status = 200, description = "the tenant's statements of reasons, newest first", body = TenantStatementsResponse)),
    security(("bearer" = ["tenant"]))
)]
async fn list_my_statements(
    TenantCaller(tenant, _): TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let statements = my_statements(&state, &tenant).await?;
    Ok(HttpResponse::Ok().json(TenantStatementsResponse { statements }))
}

#[utoipa::path(
    get,
    path = "/v1/tenant/statements/{id}",
    tag = "tenant portal",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 200, description = "one statement of reasons", body = crate::domain::statement::StatementOfReasons)),
    security(("bearer" = ["tenant"]))
)]
async fn get_my_statement(
    TenantCaller(tenant, _): TenantCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // The id starts with the case id: read that case only, and only if it is the tenant's.
    let raw = path.into_inner();
    let case_id = raw.get(..36).ok_or(ApiError::NotFound("statement"))?;
    let case_id = parse_case_id(case_id).map_err(|_| ApiError::NotFound("statement"))?;
    let case = state.cases.get(&case_id).await?;
    let statement = case
        .filter(|c| c.tenant == tenant)
        .and_then(|c| c.statements.into_iter().find(|s| s.id == raw))
        .ok_or(ApiError::NotFound("statement"))?;
    Ok(HttpResponse::Ok().json(statement))
}
