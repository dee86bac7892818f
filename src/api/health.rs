//! Liveness, readiness and metrics. Public: no token needed. `/metrics`
//! says how much work aupd does, not whose; still, keep it off the public
//! internet (the chart's Service is cluster-internal).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::readiness::Readiness;

/// Liveness: the process answers. No I/O.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "success", body = Object)),
    security(())
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the store answers a read, a policy is loaded, every
/// background worker has beaten recently, and shutdown has not begun.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "success", body = Object)),
    security(())
)]
pub async fn readyz(
    state: web::Data<AppState>,
    readiness: Option<web::Data<Readiness>>,
) -> HttpResponse {
    let engine = state.policy.current();
    let mut problems: Vec<String> = Vec::new();
    let store = state.cases.store().clone();
    match web::block(move || crate::store::meta::probe(&store)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store read failed");
            problems.push("store: read failed".into());
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store task failed");
            problems.push("store: read task failed".into());
        }
    }
    if let Some(readiness) = &readiness {
        for (worker, age) in readiness.stale() {
            problems.push(format!(
                "worker {worker}: no heartbeat for {}s",
                age.as_secs()
            ));
        }
        if readiness.is_draining() {
            problems.push("shutting down".into());
        }
    }
    if problems.is_empty() {
        HttpResponse::Ok().json(json!({
            "status": "ready",
            "policy_version": engine.version(),
        }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "status": "not_ready",
            "policy_version": engine.version(),
            "problems": problems,
        }))
    }
}

/// Prometheus text format. Store gauges are read at scrape time, off the
/// reactor.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")),
    security(())
)]
pub async fn metrics(
    state: web::Data<AppState>,
    readiness: Option<web::Data<Readiness>>,
) -> HttpResponse {
    let store = state.cases.store().clone();
    let gauges = match web::block(move || crate::metrics::store_gauges(store.as_ref())).await {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: reading store gauges failed");
            Default::default()
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: store task failed");
            Default::default()
        }
    };
    let ages = readiness.map(|r| r.ages()).unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(&gauges, &ages))
}
