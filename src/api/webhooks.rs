//! Webhook endpoints, deliveries, action receipts and operator alerts.

use actix_web::{web, HttpResponse};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::auth::{Operator, Service};
use super::body::ApiJson;
use super::{ApiError, AppState};
use crate::delivery::endpoints::{
    parse_description, parse_event_types, parse_url, DeliveryFilter, EndpointPatch, NewEndpoint,
};
use crate::delivery::receipts::{outcome_str, NewReceipt, ReceiptResult};
use crate::delivery::{WebhookError, Webhooks};
use crate::domain::limits::{TooLong, MAX_DETAILS_BYTES};
use crate::domain::{Attempt, Delivery, DeliveryStatus, Endpoint, OperatorAlert, ReceiptOutcome};

/// Registers the delivery routes under `/v1`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.post("/v1/webhooks", create_webhook);
    e.get("/v1/webhooks", list_webhooks);
    e.get("/v1/webhooks/{id}", get_webhook);
    e.patch("/v1/webhooks/{id}", update_webhook);
    e.delete("/v1/webhooks/{id}", delete_webhook);
    e.post("/v1/webhooks/{id}/rotate", rotate_webhook_secret);
    e.post("/v1/webhooks/{id}/test", send_test_message);
    e.get("/v1/deliveries", list_deliveries);
    e.post("/v1/deliveries/replay", replay_deliveries);
    e.get("/v1/deliveries/{id}", get_delivery);
    e.post("/v1/deliveries/{id}/replay", replay_delivery);
    e.post("/v1/actions/{key}/receipt", submit_receipt);
    e.get("/v1/alerts", list_alerts);
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::NotFound(what) => ApiError::NotFound(what),
            WebhookError::Invalid { code, message } => ApiError::BadRequest { code, message },
            WebhookError::Conflict { code, message } => ApiError::Conflict { code, message },
            WebhookError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// Body of `POST /v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://workflow.example/aupd", "event_types": ["enforcement.suspend", "case.notice_sent"], "description": "provider workflow"}))]
pub struct CreateWebhookRequest {
    url: String,
    #[serde(default)]
    event_types: Vec<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    dry_run: bool,
}

impl CreateWebhookRequest {
    fn parse(self, webhooks: &Webhooks) -> Result<NewEndpoint, WebhookError> {
        Ok(NewEndpoint {
            url: parse_url(webhooks, &self.url)?,
            event_types: parse_event_types(self.event_types)?,
            description: parse_description(self.description)?,
            dry_run: self.dry_run,
        })
    }
}

/// Body of `PATCH /v1/webhooks/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct UpdateWebhookRequest {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    description: Option<String>,
    dry_run: Option<bool>,
    enabled: Option<bool>,
}

impl UpdateWebhookRequest {
    fn parse(self, webhooks: &Webhooks) -> Result<EndpointPatch, WebhookError> {
        let patch = EndpointPatch {
            url: self.url.map(|u| parse_url(webhooks, &u)).transpose()?,
            event_types: self.event_types.map(parse_event_types).transpose()?,
            description: self.description.map(parse_description).transpose()?,
            dry_run: self.dry_run,
            enabled: self.enabled,
        };
        if patch == EndpointPatch::default() {
            return Err(WebhookError::invalid(
                "empty_patch",
                "give at least one field to change",
            ));
        }
        Ok(patch)
    }
}

/// An endpoint as operators see it (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookResponse {
    id: String,
    url: String,
    event_types: Vec<String>,
    description: String,
    dry_run: bool,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<Timestamp>,
    previous_secret_valid_until: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl From<Endpoint> for WebhookResponse {
    fn from(e: Endpoint) -> Self {
        WebhookResponse {
            previous_secret_valid_until: e.previous.as_ref().map(|p| p.until),
            id: e.id,
            url: e.url,
            event_types: e.event_types,
            description: e.description,
            dry_run: e.dry_run,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since,
            created_at: e.created_at,
            updated_at: e.updated_at,
            secret: None,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    request_body(content = CreateWebhookRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 201, description = "the endpoint, with its signing secret shown this once", body = WebhookResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn create_webhook(
    _op: Operator,
    state: web::Data<AppState>,
    body: ApiJson<CreateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().parse(&state.webhooks)?;
    let (endpoint, secret) = state.webhooks.create_endpoint(new).await?;
    let mut response = WebhookResponse::from(endpoint);
    // Shown once; aupd keeps it only to sign.
    response.secret = Some(secret.expose());
    Ok(HttpResponse::Created().json(response))
}

#[derive(Serialize, utoipa::ToSchema)]
struct WebhookList {
    webhooks: Vec<WebhookResponse>,
}

#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    responses((status = 200, description = "every endpoint (no secrets)", body = WebhookList)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn list_webhooks(
    _op: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let list = state.webhooks.list_endpoints().await?;
    Ok(HttpResponse::Ok().json(WebhookList {
        webhooks: list.into_iter().map(WebhookResponse::from).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 200, description = "the endpoint (no secret)", body = WebhookResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn get_webhook(
    _op: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let e = state.webhooks.get_endpoint(&id).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(e)))
}

#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "id of the resource")),
    request_body(content = UpdateWebhookRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "the endpoint as changed", body = WebhookResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn update_webhook(
    _op: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: ApiJson<UpdateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner().parse(&state.webhooks)?;
    let e = state.webhooks.update_endpoint(&id, patch).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(e)))
}

#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 204, description = "done, no body")),
    security(("bearer" = ["admin", "operator"]))
)]
async fn delete_webhook(
    _op: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.webhooks.delete_endpoint(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate",
    tag = "webhooks",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 200, description = "the endpoint with its new secret, shown this once; the old one signs too until it lapses", body = WebhookResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn rotate_webhook_secret(
    _op: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (endpoint, secret) = state.webhooks.rotate_secret(&id).await?;
    let mut response = WebhookResponse::from(endpoint);
    response.secret = Some(secret.expose());
    Ok(HttpResponse::Ok().json(response))
}

#[derive(Serialize, utoipa::ToSchema)]
struct TestMessageResponse {
    message_id: String,
}

#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/test",
    tag = "webhooks",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 202, description = "the test message, queued", body = TestMessageResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn send_test_message(
    _op: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let m = state.webhooks.send_test(&id).await?;
    Ok(HttpResponse::Accepted().json(TestMessageResponse { message_id: m.id }))
}

/// Query of `GET /v1/deliveries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    #[param(value_type = Option<String>)]
    status: Option<DeliveryStatus>,
    endpoint: Option<String>,
    case: Option<String>,
    limit: Option<usize>,
}

/// A delivery as operators see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryResponse {
    id: String,
    message_id: String,
    endpoint_id: String,
    event_type: String,
    dry_run: bool,
    status: &'static str,
    attempts: Vec<Attempt>,
    next_attempt_at: Option<Timestamp>,
    /// Present while a replica attempts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    sending: Option<Sending>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// Which replica is attempting a delivery, and when another takes it over
/// if that replica dies first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Sending {
    replica: String,
    lease_until: Timestamp,
}

impl From<Delivery> for DeliveryResponse {
    fn from(d: Delivery) -> Self {
        DeliveryResponse {
            status: d.status.as_str(),
            id: d.id,
            message_id: d.message_id,
            endpoint_id: d.endpoint_id,
            event_type: d.event_type,
            dry_run: d.dry_run,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            sending: d.lease.map(|l| Sending {
                replica: l.holder,
                lease_until: l.until,
            }),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeliveryList {
    deliveries: Vec<DeliveryResponse>,
}

#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "webhooks",
    params(DeliveryQuery),
    responses((status = 200, description = "deliveries that match", body = DeliveryList)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn list_deliveries(
    _op: Operator,
    state: web::Data<AppState>,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`limit` must be between 1 and 1000",
        ));
    }
    let list = state
        .webhooks
        .list_deliveries(
            DeliveryFilter {
                status: q.status,
                endpoint: q.endpoint,
                case: q.case,
            },
            limit,
        )
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryList {
        deliveries: list.into_iter().map(DeliveryResponse::from).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/deliveries/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 200, description = "the delivery with its attempts", body = DeliveryResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn get_delivery(
    _op: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let d = state.webhooks.get_delivery(&id).await?;
    Ok(HttpResponse::Ok().json(DeliveryResponse::from(d)))
}

#[utoipa::path(
    post,
    path = "/v1/deliveries/{id}/replay",
    tag = "webhooks",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 202, description = "the delivery, queued again", body = DeliveryResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn replay_delivery(
    _op: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let d = state.webhooks.replay(&id).await?;
    Ok(HttpResponse::Accepted().json(DeliveryResponse::from(d)))
}

/// Body of `POST /v1/deliveries/replay`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "dead"}))]
pub struct ReplayRequest {
    status: Option<DeliveryStatus>,
    endpoint: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ReplayResponse {
    replayed: usize,
}

#[utoipa::path(
    post,
    path = "/v1/deliveries/replay",
    tag = "webhooks",
    request_body(content = ReplayRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 202, description = "how many deliveries were queued again", body = ReplayResponse)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn replay_deliveries(
    _op: Operator,
    state: web::Data<AppState>,
    body: ApiJson<ReplayRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner();
    let replayed = state
        .webhooks
        .replay_matching(DeliveryFilter {
            status: r.status,
            endpoint: r.endpoint,
            case: None,
        })
        .await?;
    Ok(HttpResponse::Accepted().json(ReplayResponse { replayed }))
}

/// Body of `POST /v1/actions/{key}/receipt`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"outcome": "executed", "details": {"ticket": "OPS-4821"}}))]
pub struct ReceiptRequest {
    outcome: ReceiptOutcome,
    /// Anything the workflow system wants kept with the receipt.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

impl TryFrom<ReceiptRequest> for NewReceipt {
    type Error = ApiError;

    fn try_from(r: ReceiptRequest) -> Result<Self, ApiError> {
        let details = r
            .details
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        if !details.is_object() {
            return Err(ApiError::bad_request(
                "invalid_details",
                "`details` must be a JSON object",
            ));
        }
        let size = serde_json::to_vec(&details)
            .map_err(|e| ApiError::Internal(e.into()))?
            .len();
        if size > MAX_DETAILS_BYTES {
            return Err(TooLong {
                field: "details".into(),
                limit: MAX_DETAILS_BYTES,
            }
            .into());
        }
        Ok(NewReceipt {
            outcome: r.outcome,
            details,
        })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct ReceiptResponse {
    idempotency_key: String,
    case_id: String,
    event_type: String,
    outcome: &'static str,
    details: serde_json::Value,
    received_at: Timestamp,
    case_state: Option<&'static str>,
}

impl From<ReceiptResult> for ReceiptResponse {
    fn from(r: ReceiptResult) -> Self {
        ReceiptResponse {
            outcome: outcome_str(r.receipt.outcome),
            idempotency_key: r.receipt.idempotency_key,
            case_id: r.receipt.case_id,
            event_type: r.receipt.event_type,
            details: r.receipt.details,
            received_at: r.receipt.received_at,
            case_state: r.case_state.map(|s| s.as_str()),
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/actions/{key}/receipt",
    tag = "webhooks",
    params(("key" = String, Path, description = "the action's idempotency key (from the webhook)")),
    request_body(content = ReceiptRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "what the receipt did", body = ReceiptResponse)),
    security(("bearer" = ["admin", "service"]))
)]
async fn submit_receipt(
    caller: Service,
    state: web::Data<AppState>,
    key: web::Path<String>,
    body: ApiJson<ReceiptRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = NewReceipt::try_from(body.into_inner())?;
    let result = state
        .webhooks
        .record_receipt(&key, &caller.0.name, new)
        .await?;
    Ok(HttpResponse::Ok().json(ReceiptResponse::from(result)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct AlertList {
    alerts: Vec<OperatorAlert>,
}

#[utoipa::path(
    get,
    path = "/v1/alerts",
    tag = "webhooks",
    responses((status = 200, description = "open operator alerts", body = AlertList)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn list_alerts(_op: Operator, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let alerts = state.webhooks.list_alerts(200).await?;
    Ok(HttpResponse::Ok().json(AlertList { alerts }))
}
