//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations, and a small reference page that renders it (no CDN: the page
//! is embedded in the binary).
//!
//! To describe a new route: annotate its handler with `#[utoipa::path(...)]`
//! (method, path, tag, responses, `security(("bearer" = [roles]))`) and add
//! the handler to `paths(...)` below. The common error responses (400, 401,
//! 403, 404, 413, 415, 503) and the roles are added to every operation here.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::HttpResponse;
use serde_json::{json, Value};
use utoipa::OpenApi;

use super::{
    audit, cases, health, portal, reports, review, samples, score, statements, tenants, tokens,
    transparency, webhooks,
};

/// The body of every error reply.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "not_found", "message": "case not found"}))]
pub struct ErrorResponse {
    /// Stable machine-readable code, e.g. `invalid_body`, `not_found`.
    pub code: String,
    /// What is wrong, in words.
    pub message: String,
    /// Further structured detail, on some codes (e.g. every policy error).
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// The handlers the document describes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "aupd",
        description = "Acceptable-use policy enforcement for a cloud provider's tenants.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(
        ErrorResponse,
        crate::domain::EvidenceKind,
        crate::domain::SampleOutcome,
        crate::domain::SourceKind
    )),
    tags(
        (name = "tenants", description = "Tenants and their content sources (operators)"),
        (name = "sampling", description = "Pushed content, samples, findings, prevalence"),
        (name = "cases", description = "Cases and every action on them (operators, approvers)"),
        (name = "reports", description = "Employee reports (reporters)"),
        (name = "tenant portal", description = "A tenant's own cases, plans and appeals (tenant tokens)"),
        (name = "webhooks", description = "Webhook endpoints, deliveries, action receipts, alerts"),
        (name = "tokens", description = "API tokens (admins)"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "policy", description = "Scoring and the policy in force"),
        (name = "review", description = "Reviewers label sampled items; agreement (reviewers, operators)"),
        (name = "health", description = "Liveness, readiness, metrics (public)"),
    ),
    paths(
        tenants::create_tenant,
        tenants::list_tenants,
        tenants::get_tenant,
        tenants::update_tenant,
        tenants::create_source,
        tenants::list_sources,
        tenants::get_source,
        tenants::update_source,
        tenants::delete_source,
        cases::list_cases,
        cases::open_case,
        cases::get_case,
        cases::act_on_case,
        reports::file_report,
        reports::list_own_reports,
        reports::get_own_report,
        portal::list_my_cases,
        portal::get_my_case,
        portal::submit_remediation_plan,
        portal::submit_appeal,
        audit::list_audit,
        audit::get_audit_head,
        tokens::create_token,
        tokens::list_tokens,
        tokens::get_own_token,
        tokens::revoke_token,
        samples::push_content,
        samples::sample_now,
        samples::list_samples,
        samples::list_findings,
        samples::get_prevalence,
        samples::clear_threshold,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::get_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::rotate_webhook_secret,
        webhooks::send_test_message,
        webhooks::list_deliveries,
        webhooks::replay_deliveries,
        webhooks::get_delivery,
        webhooks::replay_delivery,
        webhooks::submit_receipt,
        webhooks::list_alerts,
        statements::list_case_statements,
        statements::list_my_statements,
        statements::get_my_statement,
        transparency::get_transparency_report,
        review::next_item,
        review::label_item,
        review::list_labels,
        review::get_agreement,
        score::score_text,
        score::get_policy,
        score::reload_policy,
        samples::list_events,
        health::healthz,
        health::readyz,
        health::metrics,
        get_openapi,
        get_docs
    )
)]
pub struct ApiDoc;

/// The document as JSON, with the parts every operation shares filled in.
pub fn document() -> Value {
    let mut doc = match serde_json::to_value(ApiDoc::openapi()) {
        Ok(v) => v,
        Err(_) => return json!({}),
    };
    doc["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An aupd API token (`aupd token create` or `POST /v1/tokens`).                 The roles listed in each operation's `security` may call it."
        }
    });
    for (method, path, status, example) in RESPONSE_EXAMPLES {
        let content =
            &mut doc["paths"][*path][*method]["responses"][*status]["content"]["application/json"];
        if content.is_object() {
            if let Ok(example) = serde_json::from_str::<Value>(example) {
                content["example"] = example;
            }
        }
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if let Some(ops) = item.as_object_mut() {
                for (method, op) in ops.iter_mut() {
                    complete_operation(method, path, op);
                }
            }
        }
    }
    doc
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    })
}

/// Adds the roles (`x-roles` and a sentence) and the error replies any
/// route of its kind can give.
fn complete_operation(method: &str, path: &str, op: &mut Value) {
    let roles: Vec<String> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["bearer"].as_array())
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    let public = roles.is_empty();
    if public {
        op["security"] = json!([]);
    }
    let who = if public {
        "Public: no token needed.".to_string()
    } else {
        format!("Roles: {}.", roles.join(", "))
    };
    let description = match op["description"].as_str() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{who}"),
        _ => who,
    };
    op["description"] = json!(description);
    op["x-roles"] = json!(roles);

    let has_body = op.get("requestBody").is_some();
    let mut errors = vec![
        (
            "400",
            "bad input: malformed query, path or body (`code` names the problem)",
        ),
        ("404", "no such route, or nothing this caller may see"),
        ("503", "not ready, or busy (retry after `Retry-After`)"),
    ];
    if !public {
        errors.push(("401", "no token, or one aupd does not know"));
        errors.push(("403", "this token's role may not call this route"));
    }
    if has_body || method == "post" {
        errors.push(("413", "the body is larger than the limit"));
        errors.push(("415", "the body is not JSON"));
    }
    if method != "get" && !public {
        errors.push((
            "409",
            "conflicts with what exists, or the case's state refuses it",
        ));
        errors.push(("422", "well-formed, but cannot be carried out as asked"));
        errors.push(("429", "too many requests from this caller"));
    }
    if let Some(responses) = op["responses"].as_object_mut() {
        for (code, description) in errors {
            responses
                .entry(code)
                .or_insert_with(|| error_response(description));
        }
    }
    // Each error status names the `code` values this route can give.
    let has_query = op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
    let mut codes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    codes.entry("404").or_default().push("not_found");
    codes.entry("503").or_default().push("unavailable");
    if !public {
        codes.entry("401").or_default().push("unauthenticated");
        codes.entry("403").or_default().push("forbidden");
    }
    if has_query {
        codes.entry("400").or_default().push("invalid_query");
    }
    if has_body || method == "post" {
        codes
            .entry("400")
            .or_default()
            .extend(["malformed_json", "invalid_body"]);
        codes.entry("413").or_default().push("payload_too_large");
        codes
            .entry("415")
            .or_default()
            .push("unsupported_media_type");
    }
    for (m, p, status, own) in ROUTE_CODES {
        if *m == method && *p == path {
            codes.entry(status).or_default().extend(own.iter().copied());
        }
    }
    let mut listed = serde_json::Map::new();
    if let Some(responses) = op["responses"].as_object_mut() {
        for (status, list) in &codes {
            let Some(response) = responses.get_mut(*status) else {
                continue;
            };
            let mut list = list.clone();
            list.dedup();
            let named: Vec<String> = list.iter().map(|c| format!("`{c}`")).collect();
            let description = response["description"].as_str().unwrap_or_default();
            response["description"] = json!(format!("{description}. Codes: {}.", named.join(", ")));
            listed.insert((*status).to_string(), json!(list));
        }
    }
    op["x-error-codes"] = Value::Object(listed);
}

/// Answers of the main routes as aupd really gave them (captured from a
/// served aupd running the README story, then shortened), shown as each
/// reply's example; `tests/openapi.rs` checks each still matches its schema.
const RESPONSE_EXAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "post",
        "/v1/tenants",
        "201",
        include_str!("../../docs/api/examples/tenant.json"),
    ),
    (
        "get",
        "/v1/tenants/{tenant}",
        "200",
        include_str!("../../docs/api/examples/tenant.json"),
    ),
    (
        "post",
        "/v1/tenants/{tenant}/content",
        "200",
        include_str!("../../docs/api/examples/intake_outcome.json"),
    ),
    (
        "get",
        "/v1/tenants/{tenant}/prevalence",
        "200",
        include_str!("../../docs/api/examples/prevalence.json"),
    ),
    (
        "get",
        "/v1/cases",
        "200",
        include_str!("../../docs/api/examples/case_list.json"),
    ),
    (
        "get",
        "/v1/cases/{id}",
        "200",
        include_str!("../../docs/api/examples/case_view.json"),
    ),
    (
        "get",
        "/v1/tenant/cases/{id}",
        "200",
        include_str!("../../docs/api/examples/tenant_case_view.json"),
    ),
    (
        "post",
        "/v1/score",
        "200",
        include_str!("../../docs/api/examples/verdict.json"),
    ),
    (
        "post",
        "/v1/tokens",
        "201",
        include_str!("../../docs/api/examples/new_token.json"),
    ),
    (
        "get",
        "/v1/tokens/self",
        "200",
        include_str!("../../docs/api/examples/own_token.json"),
    ),
];

/// The `code` values a route gives beyond those of its kind (a body, a
/// query, a token), by method, path and status: read from the handler and
/// what it calls.
const ROUTE_CODES: &[(&str, &str, &str, &[&str])] = &[
    (
        "post",
        "/v1/tenants",
        "400",
        &["invalid_tenant_id", "invalid_contact", "too_long"],
    ),
    ("post", "/v1/tenants", "409", &["tenant_exists"]),
    (
        "patch",
        "/v1/tenants/{tenant}",
        "400",
        &["invalid_contact", "too_long"],
    ),
    (
        "patch",
        "/v1/tenants/{tenant}",
        "409",
        &["tenant_suspended"],
    ),
    (
        "post",
        "/v1/tenants/{tenant}/sources",
        "400",
        &["invalid_url", "too_long"],
    ),
    (
        "patch",
        "/v1/tenants/{tenant}/sources/{source}",
        "400",
        &["invalid_url", "too_long"],
    ),
    (
        "post",
        "/v1/tenants/{tenant}/content",
        "400",
        &["empty_batch", "too_long"],
    ),
    (
        "post",
        "/v1/tenants/{tenant}/content",
        "413",
        &["batch_too_large", "item_too_large"],
    ),
    (
        "post",
        "/v1/tenants/{tenant}/sample",
        "400",
        &["invalid_url", "too_long"],
    ),
    (
        "post",
        "/v1/cases",
        "400",
        &["invalid_tenant_id", "unknown_category", "too_long"],
    ),
    ("post", "/v1/cases", "409", &["case_exists"]),
    (
        "post",
        "/v1/cases/{id}/actions",
        "400",
        &["reason_required", "invalid_command", "too_long"],
    ),
    (
        "post",
        "/v1/cases/{id}/actions",
        "403",
        &["not_allowed", "separation_of_duties"],
    ),
    (
        "post",
        "/v1/cases/{id}/actions",
        "409",
        &[
            "illegal_in_state",
            "already_approved",
            "appeal_pending",
            "no_pending_appeal",
            "deadline_passed",
            "no_labelled_evidence",
        ],
    ),
    (
        "get",
        "/v1/cases/{id}/statements",
        "400",
        &["invalid_format"],
    ),
    (
        "post",
        "/v1/tenant/cases/{id}/plan",
        "409",
        &["illegal_in_state", "deadline_passed"],
    ),
    ("post", "/v1/tenant/cases/{id}/appeal", "400", &["too_long"]),
    (
        "post",
        "/v1/tenant/cases/{id}/appeal",
        "409",
        &["illegal_in_state", "appeal_pending"],
    ),
    (
        "post",
        "/v1/reports",
        "400",
        &[
            "invalid_tenant_id",
            "invalid_url",
            "unknown_category",
            "too_long",
        ],
    ),
    ("post", "/v1/reports", "409", &["duplicate_report"]),
    ("post", "/v1/reports", "429", &["rate_limited"]),
    (
        "get",
        "/v1/reports/transparency",
        "400",
        &["invalid_window"],
    ),
    (
        "post",
        "/v1/review/{item}/label",
        "400",
        &["no_labels", "unknown_category"],
    ),
    ("post", "/v1/review/{item}/label", "409", &["not_scored"]),
    (
        "post",
        "/v1/review/{item}/label",
        "413",
        &["note_too_large"],
    ),
    (
        "post",
        "/v1/tokens",
        "400",
        &["invalid_role", "invalid_name"],
    ),
    ("post", "/v1/policy/reload", "422", &["invalid_policy"]),
    (
        "post",
        "/v1/webhooks",
        "400",
        &["invalid_url", "invalid_event_type"],
    ),
    (
        "patch",
        "/v1/webhooks/{id}",
        "400",
        &["invalid_url", "invalid_event_type"],
    ),
    (
        "post",
        "/v1/webhooks/{id}/test",
        "409",
        &["endpoint_disabled"],
    ),
    (
        "post",
        "/v1/deliveries/{id}/replay",
        "409",
        &["delivery_pending"],
    ),
    (
        "post",
        "/v1/actions/{key}/receipt",
        "409",
        &["receipt_conflict"],
    ),
];

/// `GET /openapi.json`: the OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "the OpenAPI 3.1 document", body = Object)),
    security(())
)]
pub async fn get_openapi() -> HttpResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(|| document().to_string());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.as_str())
}

/// `GET /docs`: a reference page that renders `/openapi.json`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "health",
    responses((status = 200, description = "the API reference page", body = String, content_type = "text/html")),
    security(())
)]
pub async fn get_docs() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline';              connect-src 'self'; frame-ancestors 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(include_str!("docs/index.html"))
}
