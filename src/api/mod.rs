//! The HTTP API (actix-web). Routes per audience; extractors authenticate;
//! handlers stay thin and call one domain function per step.

mod audit;
pub mod auth;
pub mod body;
mod cases;
mod console;
pub mod error;
pub mod head;
mod health;
pub mod observe;
pub mod openapi;
mod portal;
mod reports;
mod review;
pub mod routes;
mod samples;
mod score;
mod statements;
mod tenants;
mod tokens;
mod transparency;
mod webhooks;

use std::sync::Arc;

use actix_web::web;

use crate::policy::PolicyHandle;
pub use error::ApiError;

/// Shared state behind every route.
#[derive(Debug)]
pub struct AppState {
    /// The policy in force.
    pub policy: Arc<PolicyHandle>,
    /// Known tokens (hashes only).
    pub tokens: auth::TokenRegistry,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// The sampling room: tenants, sources, samples, prevalence.
    pub sampling: Arc<crate::sampling::Sampling>,
    /// The enforcement command path.
    pub cases: crate::service::cases::CaseService,
    /// Recording reviewers' labels.
    pub labels: crate::service::labels::Labels,
    /// Filing employee reports.
    pub reports: crate::service::reports::Reports,
    /// Carries out a transition's effects (cure verification) off the request.
    pub workers: crate::workers::Workers,
    /// Webhook endpoints, deliveries and action receipts.
    pub webhooks: crate::delivery::Webhooks,
    /// Tells the other replicas about a reload here.
    pub policy_sync: Arc<crate::policy::sync::PolicySync>,
}

/// Registers every route on an actix `ServiceConfig`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let limit = state.max_body_bytes;
        cfg.app_data(state)
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(move |err, _req| error::json_error(err, limit)),
            )
            .app_data(web::PayloadConfig::default().limit(limit))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .configure(console::routes)
            .configure(|cfg| routes::all().register(cfg))
            .default_service(web::to(not_found));
    }
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}
