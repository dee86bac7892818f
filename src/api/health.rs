//! Liveness, readiness and metrics. Public: no token needed. `/metrics`
//! says how much work aupd does, not whose; still, keep it off the public
//! internet (the chart's Service is cluster-internal).

use actix_web::{web, HttpResponse};

use super::AppState;
use crate::readiness::Readiness;

/// Reply of `GET /healthz`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Alive {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Reply of `GET /readyz`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready` (200) or `not_ready` (503).
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The policy version in force.
    pub policy_version: String,
    /// What keeps it from being ready (absent when ready).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Liveness: the process answers. No I/O.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "the process answers", body = Alive)),
    security(())
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Alive { status: "ok" })
}

/// Readiness: the store answers a read, a policy is loaded, every
/// background worker has beaten recently, and shutdown has not begun.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "ready to serve", body = Ready), (status = 503, description = "not ready: `problems` says why", body = Ready)),
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
        HttpResponse::Ok().json(Ready {
            status: "ready",
            policy_version: engine.version().to_string(),
            problems: Vec::new(),
        })
    } else {
        HttpResponse::ServiceUnavailable().json(Ready {
            status: "not_ready",
            policy_version: engine.version().to_string(),
            problems,
        })
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
