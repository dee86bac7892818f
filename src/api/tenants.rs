//! Operator routes for tenants and their sources.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use url::Url;

// Operator routes take the bootstrap admin for now; when roles arrive, this
// import becomes the `Operator` extractor and nothing else changes.
use super::auth::Operator;
use super::body::ApiJson;
use super::{ApiError, AppState};
use crate::domain::limits::{within, MAX_URL_BYTES};
use crate::domain::{
    Contact, JsonPointers, RiskTier, SourceId, SourceKind, Tenant, TenantId, TenantStatus,
};
use crate::sampling::registry::{NewSource, NewTenant, SourcePatch, SourceView, TenantPatch};

/// Registers the tenant and source routes under `/v1`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.post("/v1/tenants", create_tenant);
    e.get("/v1/tenants", list_tenants);
    e.get("/v1/tenants/{tenant}", get_tenant);
    e.patch("/v1/tenants/{tenant}", update_tenant);
    e.post("/v1/tenants/{tenant}/sources", create_source);
    e.get("/v1/tenants/{tenant}/sources", list_sources);
    e.get("/v1/tenants/{tenant}/sources/{source}", get_source);
    e.patch("/v1/tenants/{tenant}/sources/{source}", update_source);
    e.delete("/v1/tenants/{tenant}/sources/{source}", delete_source);
}

/// Most contacts per tenant.
const MAX_CONTACTS: usize = 20;
/// Default push-intake budget per hour.
const DEFAULT_INTAKE_BUDGET: u32 = 1000;
/// Default seconds between fetches of a source.
const DEFAULT_INTERVAL_SECS: u64 = 900;

/// A tenant id from the path; one that cannot exist is simply not found.
pub fn tenant_path(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::try_from(raw.to_string()).map_err(|_| ApiError::NotFound("tenant"))
}

fn source_path(raw: &str) -> Result<SourceId, ApiError> {
    raw.parse()
        .map(SourceId)
        .map_err(|_| ApiError::NotFound("source"))
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "`name` must be 1-200 characters",
        ));
    }
    Ok(name.to_string())
}

fn check_contacts(contacts: Vec<Contact>) -> Result<Vec<Contact>, ApiError> {
    if contacts.len() > MAX_CONTACTS {
        return Err(ApiError::bad_request(
            "invalid_contact",
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    for c in &contacts {
        c.validate()
            .map_err(|m| ApiError::bad_request("invalid_contact", m))?;
    }
    Ok(contacts)
}

fn check_budget(field: &str, v: u32) -> Result<u32, ApiError> {
    if !(1..=1_000_000).contains(&v) {
        return Err(ApiError::bad_request(
            "invalid_budget",
            format!("`{field}` must be between 1 and 1000000 items per hour"),
        ));
    }
    Ok(v)
}

/// Body of `POST /v1/tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "parlor", "name": "Parlor Social", "risk_tier": "elevated", "contacts": [{"name": "Trust and safety", "email": "abuse@parlor.example"}]}))]
pub struct CreateTenantRequest {
    /// 3-63 characters of a-z, 0-9 and single hyphens, starting with a letter.
    #[schema(
        pattern = "^[a-z](-?[a-z0-9])+$",
        min_length = 3,
        max_length = 63,
        example = "parlor"
    )]
    id: String,
    /// 1-200 characters, not only spaces.
    #[schema(pattern = "\\S", min_length = 1, max_length = 200)]
    name: String,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    risk_tier: RiskTier,
    #[serde(default)]
    status: TenantStatus,
    /// Items per hour the tenant may push (1-1,000,000).
    #[schema(minimum = 1, maximum = 1000000)]
    intake_budget_per_hour: Option<u32>,
}

/// A status an operator may set; `suspended` only ever comes from a case.
fn check_status(status: TenantStatus) -> Result<TenantStatus, ApiError> {
    if status == TenantStatus::Suspended {
        return Err(ApiError::bad_request(
            "invalid_status",
            "`status` may be active, paused or offboarded; a tenant is suspended by its case",
        ));
    }
    Ok(status)
}

impl TryFrom<CreateTenantRequest> for NewTenant {
    type Error = ApiError;

    fn try_from(r: CreateTenantRequest) -> Result<Self, ApiError> {
        Ok(NewTenant {
            id: TenantId::try_from(r.id)
                .map_err(|m| ApiError::bad_request("invalid_tenant_id", m))?,
            name: check_name(&r.name)?,
            contacts: check_contacts(r.contacts)?,
            risk_tier: r.risk_tier,
            status: check_status(r.status)?,
            intake_budget_per_hour: check_budget(
                "intake_budget_per_hour",
                r.intake_budget_per_hour.unwrap_or(DEFAULT_INTAKE_BUDGET),
            )?,
        })
    }
}

/// Body of `PATCH /v1/tenants/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"risk_tier": "high"}))]
pub struct UpdateTenantRequest {
    /// 1-200 characters, not only spaces.
    #[schema(pattern = "\\S", min_length = 1, max_length = 200)]
    name: Option<String>,
    contacts: Option<Vec<Contact>>,
    risk_tier: Option<RiskTier>,
    status: Option<TenantStatus>,
    /// Items per hour the tenant may push (1-1,000,000).
    #[schema(minimum = 1, maximum = 1000000)]
    intake_budget_per_hour: Option<u32>,
}

impl TryFrom<UpdateTenantRequest> for TenantPatch {
    type Error = ApiError;

    fn try_from(r: UpdateTenantRequest) -> Result<Self, ApiError> {
        let patch = TenantPatch {
            name: r.name.as_deref().map(check_name).transpose()?,
            contacts: r.contacts.map(check_contacts).transpose()?,
            risk_tier: r.risk_tier,
            status: r.status.map(check_status).transpose()?,
            intake_budget_per_hour: r
                .intake_budget_per_hour
                .map(|v| check_budget("intake_budget_per_hour", v))
                .transpose()?,
        };
        if patch == TenantPatch::default() {
            return Err(ApiError::bad_request(
                "empty_patch",
                "give at least one field to change",
            ));
        }
        Ok(patch)
    }
}

fn check_url(raw: &str) -> Result<Url, ApiError> {
    within("url", raw, MAX_URL_BYTES)?;
    let url = Url::parse(raw)
        .map_err(|e| ApiError::bad_request("invalid_url", format!("`{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::bad_request(
            "invalid_url",
            format!("`{raw}` must be http or https"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::bad_request(
            "invalid_url",
            "URLs with credentials are not accepted",
        ));
    }
    if url.host().is_none() {
        return Err(ApiError::bad_request(
            "invalid_url",
            format!("`{raw}` has no host"),
        ));
    }
    Ok(url)
}

fn check_pointer(field: &str, p: &str) -> Result<String, ApiError> {
    if !(p.is_empty() || p.starts_with('/')) || p.len() > 256 {
        return Err(ApiError::bad_request(
            "invalid_pointer",
            format!("`{field}` must be a JSON pointer: empty or starting with `/`"),
        ));
    }
    Ok(p.to_string())
}

fn check_interval(v: u64) -> Result<u64, ApiError> {
    if !(1..=7 * 24 * 3600).contains(&v) {
        return Err(ApiError::bad_request(
            "invalid_interval",
            "`interval_secs` must be between 1 and 604800",
        ));
    }
    Ok(v)
}

/// Body of `POST /v1/tenants/{id}/sources`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "rss", "url": "https://parlor.example/feed.xml", "budget_per_hour": 120, "interval_secs": 600}))]
pub struct CreateSourceRequest {
    kind: String,
    url: String,
    budget_per_hour: u32,
    interval_secs: Option<u64>,
    enabled: Option<bool>,
    items_pointer: Option<String>,
    text_pointer: Option<String>,
    url_pointer: Option<String>,
    id_pointer: Option<String>,
}

impl TryFrom<CreateSourceRequest> for NewSource {
    type Error = ApiError;

    fn try_from(r: CreateSourceRequest) -> Result<Self, ApiError> {
        let has_pointers = r.items_pointer.is_some()
            || r.text_pointer.is_some()
            || r.url_pointer.is_some()
            || r.id_pointer.is_some();
        let kind = match r.kind.as_str() {
            "json_feed" => {
                let (Some(items), Some(text)) = (&r.items_pointer, &r.text_pointer) else {
                    return Err(ApiError::bad_request(
                        "invalid_pointer",
                        "a json_feed needs `items_pointer` and `text_pointer`",
                    ));
                };
                SourceKind::JsonFeed {
                    pointers: JsonPointers {
                        items: check_pointer("items_pointer", items)?,
                        text: check_pointer("text_pointer", text)?,
                        url: r
                            .url_pointer
                            .as_deref()
                            .map(|p| check_pointer("url_pointer", p))
                            .transpose()?,
                        id: r
                            .id_pointer
                            .as_deref()
                            .map(|p| check_pointer("id_pointer", p))
                            .transpose()?,
                    },
                }
            }
            other => {
                let kind = match other {
                    "rss" => SourceKind::Rss,
                    "atom" => SourceKind::Atom,
                    "html" => SourceKind::Html,
                    "sitemap" => SourceKind::Sitemap,
                    _ => {
                        return Err(ApiError::bad_request(
                            "invalid_kind",
                            format!(
                            "`kind` must be json_feed, rss, atom, html or sitemap, not `{other}`"
                        ),
                        ))
                    }
                };
                if has_pointers {
                    return Err(ApiError::bad_request(
                        "invalid_pointer",
                        "JSON pointers apply to json_feed sources only",
                    ));
                }
                kind
            }
        };
        Ok(NewSource {
            kind,
            url: check_url(&r.url)?,
            budget_per_hour: check_budget("budget_per_hour", r.budget_per_hour)?,
            interval_secs: check_interval(r.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS))?,
            enabled: r.enabled.unwrap_or(true),
        })
    }
}

/// Body of `PATCH /v1/tenants/{id}/sources/{source}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct UpdateSourceRequest {
    url: Option<String>,
    budget_per_hour: Option<u32>,
    interval_secs: Option<u64>,
    enabled: Option<bool>,
}

impl TryFrom<UpdateSourceRequest> for SourcePatch {
    type Error = ApiError;

    fn try_from(r: UpdateSourceRequest) -> Result<Self, ApiError> {
        let patch = SourcePatch {
            url: r.url.as_deref().map(check_url).transpose()?,
            budget_per_hour: r
                .budget_per_hour
                .map(|v| check_budget("budget_per_hour", v))
                .transpose()?,
            interval_secs: r.interval_secs.map(check_interval).transpose()?,
            enabled: r.enabled,
        };
        if patch == SourcePatch::default() {
            return Err(ApiError::bad_request(
                "empty_patch",
                "give at least one field to change",
            ));
        }
        Ok(patch)
    }
}

/// Reply of `GET /v1/tenants`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TenantList {
    /// Every tenant, by id.
    pub tenants: Vec<Tenant>,
}

/// Reply of `GET /v1/tenants/{tenant}/sources`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SourceList {
    /// The tenant's sources with their schedule and health.
    pub sources: Vec<SourceView>,
}

#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    request_body(content = CreateTenantRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 201, description = "the tenant, registered", body = Tenant)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn create_tenant(
    _caller: Operator,
    state: web::Data<AppState>,
    body: ApiJson<CreateTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = NewTenant::try_from(body.into_inner())?;
    let tenant = state.sampling.create_tenant(new).await?;
    Ok(HttpResponse::Created().json(tenant))
}

#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "tenants",
    responses((status = 200, description = "every tenant", body = TenantList)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn list_tenants(
    _caller: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenants = state.sampling.list_tenants().await?;
    Ok(HttpResponse::Ok().json(TenantList { tenants }))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, description = "the tenant", body = Tenant)),
    security(("bearer" = ["admin", "operator", "approver"]))
)]
async fn get_tenant(
    _caller: super::auth::CaseReader,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path)?;
    Ok(HttpResponse::Ok().json(state.sampling.get_tenant(&id)?))
}

#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body(content = UpdateTenantRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "the tenant as changed", body = Tenant)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn update_tenant(
    _caller: Operator,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<UpdateTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path)?;
    let patch = TenantPatch::try_from(body.into_inner())?;
    Ok(HttpResponse::Ok().json(state.sampling.update_tenant(&id, patch).await?))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/sources",
    tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body(content = CreateSourceRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 201, description = "the source, registered", body = SourceView)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn create_source(
    _caller: Operator,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<CreateSourceRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path)?;
    let new = NewSource::try_from(body.into_inner())?;
    let view = state.sampling.create_source(&id, new).await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/sources",
    tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, description = "the tenant's sources", body = SourceList)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn list_sources(
    _caller: Operator,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path)?;
    let sources = state.sampling.list_sources(&id).await?;
    Ok(HttpResponse::Ok().json(SourceList { sources }))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/sources/{source}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id"), ("source" = String, Path, description = "source id")),
    responses((status = 200, description = "the source with its schedule and health", body = SourceView)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn get_source(
    _caller: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path.0)?;
    let source = source_path(&path.1)?;
    Ok(HttpResponse::Ok().json(state.sampling.get_source(&id, source)?))
}

#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}/sources/{source}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id"), ("source" = String, Path, description = "source id")),
    request_body(content = UpdateSourceRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "the source as changed", body = SourceView)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn update_source(
    _caller: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: ApiJson<UpdateSourceRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path.0)?;
    let source = source_path(&path.1)?;
    let patch = SourcePatch::try_from(body.into_inner())?;
    Ok(HttpResponse::Ok().json(state.sampling.update_source(&id, source, patch).await?))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/sources/{source}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id"), ("source" = String, Path, description = "source id")),
    responses((status = 204, description = "done, no body")),
    security(("bearer" = ["admin", "operator"]))
)]
async fn delete_source(
    _caller: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path.0)?;
    let source = source_path(&path.1)?;
    state.sampling.delete_source(&id, source).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(v: serde_json::Value) -> Result<NewTenant, ApiError> {
        NewTenant::try_from(serde_json::from_value::<CreateTenantRequest>(v).unwrap())
    }

    fn source(v: serde_json::Value) -> Result<NewSource, ApiError> {
        NewSource::try_from(serde_json::from_value::<CreateSourceRequest>(v).unwrap())
    }

    #[test]
    fn a_tenant_needs_a_slug_a_name_and_valid_contacts() {
        let ok = tenant(serde_json::json!({"id": "parlor", "name": " Parlor ",
            "contacts": [{"name": "Abuse", "email": "abuse@parlor.example"}], "risk_tier": "high"}))
        .unwrap();
        assert_eq!(ok.name, "Parlor");
        assert_eq!(ok.risk_tier, RiskTier::High);
        assert_eq!(ok.intake_budget_per_hour, DEFAULT_INTAKE_BUDGET);
        let code = |v| tenant(v).unwrap_err().code();
        assert_eq!(
            code(serde_json::json!({"id": "Parlor!", "name": "x"})),
            "invalid_tenant_id"
        );
        assert_eq!(
            code(serde_json::json!({"id": "parlor", "name": "  "})),
            "invalid_name"
        );
        assert_eq!(
            code(
                serde_json::json!({"id": "parlor", "name": "x", "contacts": [{"name": "a", "email": "nope"}]})
            ),
            "invalid_contact"
        );
        assert_eq!(
            code(serde_json::json!({"id": "parlor", "name": "x", "intake_budget_per_hour": 0})),
            "invalid_budget"
        );
    }

    #[test]
    fn unknown_fields_and_tiers_do_not_parse() {
        assert!(serde_json::from_value::<CreateTenantRequest>(
            serde_json::json!({"id": "parlor", "name": "x", "tier": "high"})
        )
        .is_err());
        assert!(serde_json::from_value::<CreateTenantRequest>(
            serde_json::json!({"id": "parlor", "name": "x", "risk_tier": "extreme"})
        )
        .is_err());
    }

    #[test]
    fn no_one_suspends_a_tenant_by_hand() {
        let code = tenant(serde_json::json!({"id": "parlor", "name": "x", "status": "suspended"}))
            .unwrap_err()
            .code();
        assert_eq!(code, "invalid_status");
        let patch = UpdateTenantRequest {
            status: Some(TenantStatus::Suspended),
            ..Default::default()
        };
        assert_eq!(
            TenantPatch::try_from(patch).unwrap_err().code(),
            "invalid_status"
        );
    }

    #[test]
    fn an_empty_tenant_patch_is_refused() {
        assert_eq!(
            TenantPatch::try_from(UpdateTenantRequest::default())
                .unwrap_err()
                .code(),
            "empty_patch"
        );
        let p = TenantPatch::try_from(UpdateTenantRequest {
            status: Some(TenantStatus::Paused),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.status, Some(TenantStatus::Paused));
    }

    #[test]
    fn json_feeds_need_pointers_and_other_kinds_refuse_them() {
        let feed = source(
            serde_json::json!({"kind": "json_feed", "url": "https://t.example/api/posts",
            "budget_per_hour": 50, "items_pointer": "/posts", "text_pointer": "/body"}),
        )
        .unwrap();
        assert!(matches!(feed.kind, SourceKind::JsonFeed { .. }));
        assert_eq!(feed.interval_secs, DEFAULT_INTERVAL_SECS);
        let code = |v| source(v).unwrap_err().code();
        assert_eq!(
            code(
                serde_json::json!({"kind": "json_feed", "url": "https://t.example/", "budget_per_hour": 5})
            ),
            "invalid_pointer"
        );
        assert_eq!(
            code(
                serde_json::json!({"kind": "json_feed", "url": "https://t.example/", "budget_per_hour": 5,
                "items_pointer": "posts", "text_pointer": "/body"})
            ),
            "invalid_pointer"
        );
        assert_eq!(
            code(
                serde_json::json!({"kind": "rss", "url": "https://t.example/", "budget_per_hour": 5, "text_pointer": "/x"})
            ),
            "invalid_pointer"
        );
        assert_eq!(
            code(
                serde_json::json!({"kind": "gopher", "url": "https://t.example/", "budget_per_hour": 5})
            ),
            "invalid_kind"
        );
    }

    #[test]
    fn source_urls_budgets_and_intervals_are_checked() {
        let code = |url: &str, budget: u32, interval: u64| {
            source(serde_json::json!({"kind": "html", "url": url, "budget_per_hour": budget, "interval_secs": interval}))
                .err()
                .map(|e| e.code())
        };
        assert_eq!(code("https://t.example/", 10, 60), None);
        assert_eq!(code("ftp://t.example/", 10, 60), Some("invalid_url"));
        assert_eq!(code("https://u:p@t.example/", 10, 60), Some("invalid_url"));
        assert_eq!(code("not a url", 10, 60), Some("invalid_url"));
        assert_eq!(code("https://t.example/", 0, 60), Some("invalid_budget"));
        assert_eq!(code("https://t.example/", 10, 0), Some("invalid_interval"));
    }

    #[test]
    fn source_patches_validate_what_they_change() {
        assert_eq!(
            SourcePatch::try_from(UpdateSourceRequest::default())
                .unwrap_err()
                .code(),
            "empty_patch"
        );
        let bad = UpdateSourceRequest {
            url: Some("file:///etc/passwd".into()),
            ..Default::default()
        };
        assert_eq!(
            SourcePatch::try_from(bad).unwrap_err().code(),
            "invalid_url"
        );
    }
}
