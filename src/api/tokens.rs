//! Token management (admin only).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::{Admin, Caller};
use super::body::ApiJson;
use super::error::blocking;
use super::{ApiError, AppState};
use crate::domain::Role;
use crate::service::tokens::{self, TokenError};

/// Routes under `/v1/tokens`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.post("/v1/tokens", create_token);
    e.get("/v1/tokens", list_tokens);
    e.get("/v1/tokens/self", get_own_token);
    e.delete("/v1/tokens/{id}", revoke_token);
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "tenant:parlor", "name": "parlor-dashboard"}))]
pub struct CreateTokenRequest {
    role: String,
    name: String,
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::BadName => ApiError::bad_request("invalid_name", e.to_string()),
            TokenError::NotFound(_) => ApiError::NotFound("token"),
            TokenError::Store(e) => ApiError::Internal(e.into()),
        }
    }
}

/// A token as lists show it: never its secret or hash.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenView {
    /// Public id.
    pub id: String,
    /// Who or what holds it.
    pub name: String,
    /// What it may do.
    #[schema(example = "tenant:parlor")]
    pub role: String,
    /// When it was made.
    pub created_at: jiff::Timestamp,
    /// When it was revoked; null while it is valid.
    pub revoked_at: Option<jiff::Timestamp>,
}

/// Reply of `GET /v1/tokens`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenList {
    /// Every token, revoked ones included.
    pub tokens: Vec<TokenView>,
}

/// Reply of `GET /v1/tokens/self`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OwnToken {
    /// Public id of the presented token.
    pub id: String,
    /// Who holds it.
    pub name: String,
    /// What it may do.
    #[schema(example = "reviewer")]
    pub role: String,
}

/// Reply of `DELETE /v1/tokens/{id}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RevokedToken {
    /// The token's id.
    pub id: String,
    /// When it was revoked.
    pub revoked_at: Option<jiff::Timestamp>,
}

#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "tokens",
    request_body(content = CreateTokenRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 201, description = "the token; its secret is shown this once", body = crate::service::tokens::NewToken)),
    security(("bearer" = ["admin"]))
)]
async fn create_token(
    Admin(caller): Admin,
    state: web::Data<AppState>,
    body: ApiJson<CreateTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let role: Role = body
        .role
        .parse()
        .map_err(|e: crate::domain::token::InvalidRole| {
            ApiError::bad_request("invalid_role", e.to_string())
        })?;
    let store = state.sampling.store().clone();
    let made = blocking("token", move || {
        tokens::create(&store, role, &body.name, &caller.name)
    })
    .await?;
    Ok(HttpResponse::Created().json(made))
}

#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "tokens",
    responses((status = 200, description = "every token, without secrets", body = TokenList)),
    security(("bearer" = ["admin"]))
)]
async fn list_tokens(_caller: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.sampling.store().clone();
    let all = blocking("token", move || store.tokens()).await?;
    let tokens: Vec<TokenView> = all
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            name: t.name,
            role: t.role.to_string(),
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(TokenList { tokens }))
}

/// Who the presented token stands for, so a client (the console) can show
/// what its holder may do. Any valid token may ask about itself.
#[utoipa::path(
    get,
    path = "/v1/tokens/self",
    tag = "tokens",
    responses((status = 200, description = "who the presented token stands for", body = OwnToken)),
    security(("bearer" = ["admin", "operator", "approver", "reporter", "service", "tenant"]))
)]
async fn get_own_token(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(OwnToken {
        id: caller.token_id,
        name: caller.name,
        role: caller.role.to_string(),
    })
}

#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 200, description = "the token, revoked", body = RevokedToken)),
    security(("bearer" = ["admin"]))
)]
async fn revoke_token(
    Admin(caller): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let store = state.sampling.store().clone();
    let id = path.into_inner();
    let t = blocking("token", move || tokens::revoke(&store, &id, &caller.name)).await?;
    Ok(HttpResponse::Ok().json(RevokedToken {
        id: t.id,
        revoked_at: t.revoked_at,
    }))
}
