//! Liveness and readiness. Public: no token needed.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// Liveness: the process answers. No I/O.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: a policy is loaded.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let engine = state.policy.current();
    HttpResponse::Ok().json(json!({
        "status": "ready",
        "policy_version": engine.version(),
    }))
}
