//! Operator API for tenants and sources: happy paths and every bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{spawn_app, TestApp};
use serde_json::json;

async fn tenant_count(app: &TestApp) -> usize {
    let (status, body) = app.get("/v1/tenants").await;
    assert_eq!(status, 200);
    body["tenants"].as_array().unwrap().len()
}

#[tokio::test]
async fn an_operator_registers_lists_reads_and_changes_a_tenant() {
    let app = spawn_app().await;
    let created = app.create_tenant("parlor", "elevated").await;
    assert_eq!(created["id"], "parlor");
    assert_eq!(created["risk_tier"], "elevated");
    assert_eq!(created["status"], "active");

    let (status, list) = app.get("/v1/tenants").await;
    assert_eq!(status, 200);
    assert_eq!(list["tenants"][0]["id"], "parlor");

    let (status, patched) = app
        .send(
            reqwest::Method::PATCH,
            "/v1/tenants/parlor",
            &json!({"risk_tier": "high", "status": "paused"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let (_, read) = app.get("/v1/tenants/parlor").await;
    assert_eq!(read["risk_tier"], "high");
    assert_eq!(read["status"], "paused");
    assert_eq!(read["name"], "Tenant parlor");

    let kinds: Vec<String> = app
        .events("tenant.created")
        .await
        .iter()
        .chain(app.events("tenant.updated").await.iter())
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["tenant.created", "tenant.updated"]);
}

#[tokio::test]
async fn a_taken_tenant_id_is_a_conflict_that_changes_nothing() {
    let app = spawn_app().await;
    app.create_tenant("parlor", "standard").await;
    let (status, body) = app
        .post("/v1/tenants", &json!({"id": "parlor", "name": "Other"}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "tenant_exists");
    let (_, read) = app.get("/v1/tenants/parlor").await;
    assert_eq!(read["name"], "Tenant parlor");
}

#[tokio::test]
async fn malformed_json_is_refused_with_its_code_and_creates_nothing() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_raw("/v1/tenants", r#"{"id": "parlor", "name": "#)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "malformed_json");
    assert_eq!(tenant_count(&app).await, 0);
}

#[tokio::test]
async fn an_unknown_field_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/v1/tenants",
            &json!({"id": "parlor", "name": "P", "tier": "high"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_body");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `tier`"),
        "{body}"
    );
    assert_eq!(tenant_count(&app).await, 0);
}

#[tokio::test]
async fn a_bad_slug_or_contact_is_refused_with_a_clear_code() {
    let app = spawn_app().await;
    let (status, body) = app
        .post("/v1/tenants", &json!({"id": "Bad Slug", "name": "P"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_tenant_id"))
    );
    let (status, body) = app
        .post(
            "/v1/tenants",
            &json!({"id": "parlor", "name": "P", "contacts": [{"name": "x", "email": "nope"}]}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_contact"))
    );
    assert_eq!(tenant_count(&app).await, 0);
}

#[tokio::test]
async fn unknown_tenants_are_not_found_on_every_route() {
    let app = spawn_app().await;
    for path in [
        "/v1/tenants/ghost",
        "/v1/tenants/ghost/sources",
        "/v1/tenants/ghost/prevalence",
        "/v1/tenants/ghost/findings",
        "/v1/tenants/ghost/samples",
        "/v1/tenants/Not_A_Slug",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["code"], "not_found", "{path}");
    }
    let (status, body) = app
        .post(
            "/v1/tenants/ghost/sources",
            &json!({"kind": "rss", "url": "https://x.example/rss", "budget_per_hour": 5}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, _) = app
        .post(
            "/v1/tenants/ghost/content",
            &json!({"items": [{"text": "hi"}]}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sources_are_added_read_changed_and_removed() {
    let app = spawn_app().await;
    app.create_tenant("parlor", "high").await;
    let id = app
        .create_source(
            "parlor",
            json!({"kind": "json_feed", "url": "http://127.0.0.1:9/posts.json", "budget_per_hour": 25,
                   "interval_secs": 3600, "enabled": false, "items_pointer": "/data/posts", "text_pointer": "/body"}),
        )
        .await;
    let source = app.source("parlor", &id).await;
    assert_eq!(source["kind"], "json_feed");
    assert_eq!(
        source["effective_budget_per_hour"], 100,
        "the high tier quadruples the budget"
    );
    assert_eq!(source["state"]["health"], "unknown");

    let path = format!("/v1/tenants/parlor/sources/{id}");
    let (status, body) = app
        .send(
            reqwest::Method::PATCH,
            &path,
            &json!({"budget_per_hour": 10}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["budget_per_hour"], 10);

    let (status, body) = app
        .send(
            reqwest::Method::PATCH,
            &path,
            &json!({"url": "gopher://x.example/"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_url")));
    assert_eq!(
        app.source("parlor", &id).await["url"],
        "http://127.0.0.1:9/posts.json"
    );

    let (_, list) = app.get("/v1/tenants/parlor/sources").await;
    assert_eq!(list["sources"].as_array().unwrap().len(), 1);
    let r = app
        .client
        .delete(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, _) = app.get(&path).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_sources_are_refused_and_nothing_is_added() {
    let app = spawn_app().await;
    app.create_tenant("parlor", "standard").await;
    let cases = [
        (
            json!({"kind": "json_feed", "url": "https://x.example/", "budget_per_hour": 5}),
            "invalid_pointer",
        ),
        (
            json!({"kind": "rss", "url": "file:///etc/passwd", "budget_per_hour": 5}),
            "invalid_url",
        ),
        (
            json!({"kind": "rss", "url": "https://u:p@x.example/", "budget_per_hour": 5}),
            "invalid_url",
        ),
        (
            json!({"kind": "podcast", "url": "https://x.example/", "budget_per_hour": 5}),
            "invalid_kind",
        ),
        (
            json!({"kind": "rss", "url": "https://x.example/", "budget_per_hour": 0}),
            "invalid_budget",
        ),
        (
            json!({"kind": "rss", "url": "https://x.example/", "budget_per_hour": 5, "interval_secs": 0}),
            "invalid_interval",
        ),
        (
            json!({"kind": "rss", "url": "https://x.example/", "budget_per_hour": 5, "colour": "red"}),
            "invalid_body",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = app.post("/v1/tenants/parlor/sources", &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["code"], code, "{body}");
    }
    let (_, list) = app.get("/v1/tenants/parlor/sources").await;
    assert!(list["sources"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_query_parameter_is_refused() {
    let app = spawn_app().await;
    app.create_tenant("parlor", "standard").await;
    let (status, body) = app.get("/v1/tenants/parlor/findings?limt=5").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = app.get("/v1/tenants/parlor/samples?limit=0").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );
}

#[tokio::test]
async fn routes_need_the_operator_token() {
    let app = spawn_app().await;
    let r = reqwest::Client::new()
        .get(format!("{}/v1/tenants", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
