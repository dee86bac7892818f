//! Samples, push intake, targeted sampling, findings, prevalence and the
//! event log.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use url::Url;

use super::auth::Operator;
use super::body::{ApiJson, OptionalJson};
use super::error::blocking;
use super::tenants::tenant_path;
use super::{ApiError, AppState};
use crate::domain::limits::{within, MAX_ID_BYTES, MAX_URL_BYTES};
use crate::sampling::Item;

/// Registers the sampling routes under `/v1`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.post("/v1/tenants/{tenant}/content", push_content);
    e.post("/v1/tenants/{tenant}/sample", sample_now);
    e.get("/v1/tenants/{tenant}/samples", list_samples);
    e.get("/v1/tenants/{tenant}/findings", list_findings);
    e.get("/v1/tenants/{tenant}/prevalence", get_prevalence);
    e.delete(
        "/v1/tenants/{tenant}/thresholds/{category}",
        clear_threshold,
    );
}

/// Largest text of one pushed item, in bytes.
pub const MAX_ITEM_BYTES: usize = 64 * 1024;
/// Most URLs one targeted sampling request may fetch.
pub const MAX_TARGET_URLS: usize = 50;

/// One pushed item.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushedItem {
    text: String,
    id: Option<String>,
    url: Option<String>,
}

/// Body of `POST /v1/tenants/{id}/content`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [{"text": "we must storm the capitol tomorrow", "id": "p-1001", "url": "https://parlor.example/p/1001"}]}))]
pub struct PushContentRequest {
    items: Vec<PushedItem>,
}

/// One source visited by `POST /v1/tenants/{id}/sample` without a body.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SourceVisit {
    /// The source.
    pub source: crate::domain::SourceId,
    /// What the visit did.
    pub run: crate::sampling::worker::SourceRun,
}

/// Reply of `POST /v1/tenants/{id}/sample`: every source visited now (no
/// body), or what was found at each URL asked for.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum SampleNowReply {
    /// No body: each source visited, and the newest samples.
    Sources {
        /// The visits.
        sources: Vec<SourceVisit>,
        /// The tenant's newest samples (at most 100).
        recent_samples: Vec<crate::domain::Sample>,
    },
    /// URLs asked for: what each gave.
    Targeted {
        /// One result per URL.
        results: Vec<crate::sampling::TargetedResult>,
    },
}

/// Reply of `GET /v1/tenants/{id}/samples`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SampleList {
    /// Newest first.
    pub samples: Vec<crate::domain::Sample>,
}

/// Reply of `GET /v1/tenants/{id}/findings`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FindingList {
    /// Newest first.
    pub findings: Vec<crate::domain::Finding>,
}

/// Reply of `GET /v1/tenants/{id}/prevalence`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PrevalenceReply {
    /// The tenant.
    pub tenant: crate::domain::TenantId,
    /// The window the model's count covers, in seconds.
    pub window_secs: u64,
    /// The policy version in force.
    pub policy_version: String,
    /// Per category: the model's count, its rule, and the review figures.
    pub categories: Vec<super::review::PrevalenceWithLabels>,
}

/// Reply of `GET /v1/events`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventList {
    /// Events after the cursor, oldest first.
    pub events: Vec<crate::store::EventRecord>,
}

/// A pushed batch, validated against the configured batch limit.
#[derive(Debug)]
pub struct PushedBatch(pub Vec<Item>);

impl TryFrom<(PushContentRequest, usize)> for PushedBatch {
    type Error = ApiError;

    fn try_from((r, max): (PushContentRequest, usize)) -> Result<Self, ApiError> {
        if r.items.len() > max {
            return Err(ApiError::TooLarge {
                code: "batch_too_large",
                message: format!(
                    "the batch holds {} items; the limit is {max}",
                    r.items.len()
                ),
            });
        }
        if r.items.is_empty() {
            return Err(ApiError::bad_request("empty_batch", "`items` is empty"));
        }
        let mut items = Vec::with_capacity(r.items.len());
        for (i, it) in r.items.into_iter().enumerate() {
            if it.text.len() > MAX_ITEM_BYTES {
                return Err(ApiError::TooLarge {
                    code: "item_too_large",
                    message: format!("item {i} holds more than {MAX_ITEM_BYTES} bytes of text"),
                });
            }
            if let Some(id) = &it.id {
                within(format!("items[{i}].id"), id, MAX_ID_BYTES)?;
            }
            if let Some(url) = &it.url {
                within(format!("items[{i}].url"), url, MAX_URL_BYTES)?;
            }
            if it.text.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "invalid_item",
                    format!("item {i} has no text"),
                ));
            }
            items.push(Item {
                id: it.id,
                url: it.url,
                text: it.text,
            });
        }
        Ok(PushedBatch(items))
    }
}

/// Body of `POST /v1/tenants/{id}/sample`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"urls": ["https://parlor.example/p/3"]}))]
pub struct SampleNowRequest {
    #[serde(default)]
    urls: Vec<String>,
}

/// URLs to fetch now; none means every source of the tenant.
#[derive(Debug, PartialEq)]
pub struct SampleTargets(pub Vec<Url>);

impl TryFrom<SampleNowRequest> for SampleTargets {
    type Error = ApiError;

    fn try_from(r: SampleNowRequest) -> Result<Self, ApiError> {
        if r.urls.len() > MAX_TARGET_URLS {
            return Err(ApiError::bad_request(
                "too_many_urls",
                format!("at most {MAX_TARGET_URLS} URLs per request"),
            ));
        }
        let urls = r
            .urls
            .iter()
            .enumerate()
            .map(|(i, u)| {
                within(format!("urls[{i}]"), u, MAX_URL_BYTES)?;
                Url::parse(u).map_err(|e| {
                    ApiError::bad_request("invalid_url", format!("`{u}` is not a URL: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SampleTargets(urls))
    }
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/content",
    tag = "sampling",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body(content = PushContentRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "what was received, sampled and flagged", body = crate::sampling::IntakeOutcome)),
    security(("bearer" = ["admin", "operator", "service"]))
)]
async fn push_content(
    _caller: super::auth::Intake,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<PushContentRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path)?;
    let max = state.sampling.settings().max_batch_items;
    let batch = PushedBatch::try_from((body.into_inner(), max))?;
    let outcome = state.sampling.intake(&id, batch.0).await?;
    Ok(HttpResponse::Ok().json(outcome))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/sample",
    tag = "sampling",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body(content = Option<SampleNowRequest>, content_type = "application/json", description = "optional JSON body"),
    responses((status = 200, description = "the sources visited, or what each URL gave", body = SampleNowReply)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn sample_now(
    _caller: Operator,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: OptionalJson<SampleNowRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path)?;
    // An empty body means "every source"; a malformed one is an error,
    // never "every source".
    let request = body.into_inner();
    let targets = SampleTargets::try_from(request)?;
    if targets.0.is_empty() {
        let mut runs = Vec::new();
        for view in state.sampling.list_sources(&id).await? {
            let run = state.sampling.run_source(&id, view.source.id, true).await?;
            runs.push(SourceVisit {
                source: view.source.id,
                run,
            });
        }
        let samples = state.sampling.samples(&id, 100).await?;
        return Ok(HttpResponse::Ok().json(SampleNowReply::Sources {
            sources: runs,
            recent_samples: samples,
        }));
    }
    let results = state.sampling.targeted(&id, targets.0).await?;
    Ok(HttpResponse::Ok().json(SampleNowReply::Targeted { results }))
}

/// `?limit=` of list routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
    category: Option<String>,
}

fn limit(q: &ListQuery) -> Result<usize, ApiError> {
    match q.limit {
        None => Ok(100),
        Some(n @ 1..=10_000) => Ok(n),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            "`limit` must be between 1 and 10000",
        )),
    }
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/samples",
    tag = "sampling",
    params(("tenant" = String, Path, description = "tenant id"), ListQuery),
    responses((status = 200, description = "the tenant's samples", body = SampleList)),
    security(("bearer" = ["admin", "operator", "approver"]))
)]
async fn list_samples(
    _caller: super::auth::CaseReader,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path)?;
    let samples = state.sampling.samples(&id, limit(&query)?).await?;
    Ok(HttpResponse::Ok().json(SampleList { samples }))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/findings",
    tag = "sampling",
    params(("tenant" = String, Path, description = "tenant id"), ListQuery),
    responses((status = 200, description = "the tenant's findings", body = FindingList)),
    security(("bearer" = ["admin", "operator", "approver"]))
)]
async fn list_findings(
    _caller: super::auth::CaseReader,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path)?;
    let n = limit(&query)?;
    let findings = state
        .sampling
        .findings(&id, query.into_inner().category, n)
        .await?;
    Ok(HttpResponse::Ok().json(FindingList { findings }))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/prevalence",
    tag = "sampling",
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, description = "per category: the model's count, the rule, the label estimate and the corrected count", body = PrevalenceReply)),
    security(("bearer" = ["admin", "operator", "approver"]))
)]
async fn get_prevalence(
    _caller: super::auth::CaseReader,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path)?;
    let categories = state.sampling.prevalence(&id).await?;
    let categories = super::review::with_labels(&state, &id, categories).await?;
    Ok(HttpResponse::Ok().json(PrevalenceReply {
        tenant: id,
        window_secs: state.sampling.settings().window_secs,
        policy_version: state.policy.current().version().to_string(),
        categories,
    }))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/thresholds/{category}",
    tag = "sampling",
    params(("tenant" = String, Path, description = "tenant id"), ("category" = String, Path, description = "policy category")),
    responses((status = 204, description = "done, no body")),
    security(("bearer" = ["admin", "operator"]))
)]
async fn clear_threshold(
    _caller: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_path(&path.0)?;
    if state.sampling.clear_threshold(&id, &path.1).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("raised threshold"))
    }
}

/// `?after=&limit=` of the event log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

/// The append-only event log, oldest first.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "sampling",
    params(EventsQuery),
    responses((status = 200, description = "events after the cursor", body = EventList)),
    security(("bearer" = ["admin", "operator"]))
)]
pub async fn list_events(
    _caller: Operator,
    state: web::Data<AppState>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    let store = state.sampling.store().clone();
    let after = query.after;
    let events = blocking("event scan", move || store.events_after(after, limit)).await?;
    Ok(HttpResponse::Ok().json(EventList { events }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize, max: usize) -> Result<PushedBatch, ApiError> {
        let items = (0..n)
            .map(|i| PushedItem {
                text: format!("post {i}"),
                id: None,
                url: None,
            })
            .collect();
        PushedBatch::try_from((PushContentRequest { items }, max))
    }

    #[test]
    fn batches_over_the_limit_or_empty_are_refused() {
        assert_eq!(batch(3, 3).unwrap().0.len(), 3);
        assert_eq!(batch(4, 3).unwrap_err().code(), "batch_too_large");
        assert_eq!(batch(0, 3).unwrap_err().code(), "empty_batch");
    }

    #[test]
    fn blank_or_huge_items_are_refused() {
        let one = |text: String| {
            PushedBatch::try_from((
                PushContentRequest {
                    items: vec![PushedItem {
                        text,
                        id: None,
                        url: None,
                    }],
                },
                10,
            ))
        };
        assert_eq!(one("  ".into()).unwrap_err().code(), "invalid_item");
        assert_eq!(
            one("x".repeat(MAX_ITEM_BYTES + 1)).unwrap_err().code(),
            "item_too_large"
        );
    }

    #[test]
    fn target_urls_must_parse_and_be_few() {
        let ok = SampleTargets::try_from(SampleNowRequest {
            urls: vec!["https://t.example/a".into()],
        })
        .unwrap();
        assert_eq!(ok.0.len(), 1);
        assert_eq!(
            SampleTargets::try_from(SampleNowRequest {
                urls: vec!["::".into()]
            })
            .unwrap_err()
            .code(),
            "invalid_url"
        );
        assert_eq!(
            SampleTargets::try_from(SampleNowRequest {
                urls: vec!["https://t.example/".into(); MAX_TARGET_URLS + 1]
            })
            .unwrap_err()
            .code(),
            "too_many_urls"
        );
    }
}
