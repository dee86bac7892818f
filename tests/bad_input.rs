//! Bad input over real HTTP: over-long fields, oversize bodies, wrong
//! types, wrong methods and roles. Every refusal is a 4xx with a
//! `{"code", "message"}` JSON body that names what is wrong, and changes
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{eventually, spawn_app_with, violating, Options, TestApp, TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

async fn app() -> TestApp {
    let app = spawn_app_with(Options {
        configure: Box::new(|s| {
            s.sampling.enabled = false;
            s.sampling.intake_sample_rate = 1.0;
            s.delivery.allow_cidrs = vec!["127.0.0.0/8".into()];
        }),
        ..Options::default()
    })
    .await;
    app.create_tenant("parlor", "standard").await;
    app
}

/// A URL of `n` bytes or so, well-formed otherwise.
fn long_url(n: usize) -> String {
    format!("https://parlor.example/{}", "a".repeat(n))
}

fn too_long(field: &str, limit: usize) -> Value {
    json!({
        "code": "too_long",
        "message": format!("`{field}` is longer than {limit} bytes"),
    })
}

#[tokio::test]
async fn a_hundred_thousand_character_webhook_or_source_url_is_refused_naming_the_field() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/v1/webhooks",
            &json!({"url": long_url(100_000), "description": "long"}),
        )
        .await;
    assert_eq!((status, body), (400, too_long("url", 2048)));
    let (_, list) = app.get("/v1/webhooks").await;
    assert_eq!(list["webhooks"], json!([]));

    let (status, body) = app
        .post(
            "/v1/tenants/parlor/sources",
            &json!({"kind": "html", "url": long_url(100_000), "budget_per_hour": 5}),
        )
        .await;
    assert_eq!((status, body), (400, too_long("url", 2048)));
    let (_, list) = app.get("/v1/tenants/parlor/sources").await;
    assert_eq!(list["sources"], json!([]));

    // At the limit it is still a URL like any other.
    let url = long_url(2048 - "https://parlor.example/".len());
    assert_eq!(url.len(), 2048);
    let (status, body) = app
        .post(
            "/v1/tenants/parlor/sources",
            &json!({"kind": "html", "url": url, "budget_per_hour": 5}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_report_with_a_hundred_thousand_character_url_opens_no_case() {
    let app = app().await;
    let rita = app.token("reporter", "rita").await;
    let (status, body) = app
        .call_as(
            &rita,
            Method::POST,
            "/v1/reports",
            Some(
                &json!({"tenant": "parlor", "category": "violent-incitement",
                "urls": ["https://parlor.example/p/1", long_url(100_000)],
                "description": "armed march"}),
            ),
        )
        .await;
    assert_eq!((status, body), (400, too_long("urls[1]", 2048)));
    let (_, cases) = app.get("/v1/cases?tenant=parlor&scope=all").await;
    assert_eq!(cases["cases"], json!([]));

    let (status, body) = app
        .call_as(
            &rita,
            Method::POST,
            "/v1/reports",
            Some(
                &json!({"tenant": "parlor", "category": "violent-incitement",
                "urls": ["https://parlor.example/p/1"],
                "description": "x".repeat(10_001)}),
            ),
        )
        .await;
    assert_eq!((status, body), (400, too_long("description", 10_000)));
}

#[tokio::test]
async fn pushed_items_with_over_long_ids_or_urls_are_refused_and_nothing_is_sampled() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/v1/tenants/parlor/content",
            &json!({"items": [{"text": "hello", "id": "1"}, {"text": "hello again", "id": "i".repeat(100_000)}]}),
        )
        .await;
    assert_eq!((status, body), (400, too_long("items[1].id", 256)));
    let (status, body) = app
        .post(
            "/v1/tenants/parlor/content",
            &json!({"items": [{"text": "hello", "url": long_url(3000)}]}),
        )
        .await;
    assert_eq!((status, body), (400, too_long("items[0].url", 2048)));
    assert!(app.samples("parlor").await.is_empty());
}

#[tokio::test]
async fn case_actions_refuse_over_long_free_text_naming_the_field() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/v1/cases",
            &json!({"tenant": "parlor", "categories": ["harassment"], "reason": "r".repeat(5_000)}),
        )
        .await;
    assert_eq!((status, body), (400, too_long("reason", 4_000)));
    let (_, cases) = app.get("/v1/cases?tenant=parlor&scope=all").await;
    assert_eq!(cases["cases"], json!([]));
}

#[tokio::test]
async fn a_well_formed_body_with_a_wrong_type_is_invalid_body_naming_the_field() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/v1/tenants",
            &json!({"id": "quill", "name": "Quill", "risk_tier": 5}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({"code": "invalid_body", "message": "`risk_tier`: not one of the accepted values"})
    );
    let (status, body) = app
        .post(
            "/v1/tenants/parlor/content",
            &json!({"items": [{"text": 5}]}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"code": "invalid_body", "message": "`items[0].text`: invalid type: integer `5`, expected a string"})
        )
    );
    // Broken JSON is still malformed.
    let (status, body) = app.post_raw("/v1/tenants", r#"{"id": "quill", "#).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, _) = app.get("/v1/tenants/quill").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_oversize_body_to_sample_now_is_413_in_json() {
    let app = spawn_app_with(Options {
        configure: Box::new(|s| {
            s.sampling.enabled = false;
            s.server.max_body_bytes = 64 * 1024;
        }),
        ..Options::default()
    })
    .await;
    app.create_tenant("parlor", "standard").await;
    let r = app
        .client
        .post(format!("{}/v1/tenants/parlor/sample", app.base))
        .header("content-type", "application/json")
        .body(format!("{{\"urls\": [\"{}\"]}}", "a".repeat(200 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": "payload_too_large", "message": "request body is larger than the limit of 65536 bytes"})
    );
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_and_a_json_body() {
    let app = app().await;
    let r = app
        .client
        .delete(format!("{}/v1/tenants", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"].to_str().unwrap(), "POST, GET");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": "method_not_allowed", "message": "DELETE is not allowed here; use POST, GET"})
    );
    let r = app
        .client
        .put(format!("{}/v1/tenants/parlor/sources", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"].to_str().unwrap(), "POST, GET");
    // A very long path that reaches aupd is a JSON 404 like any other.
    let (status, body) = app
        .get(&format!("/v1/tenants/{}", "a".repeat(20_000)))
        .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "tenant not found"})
        )
    );
    // An unknown path is still a JSON 404.
    let (status, body) = app.get("/v1/nowhere").await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "route not found"})
        )
    );
}

#[tokio::test]
async fn an_approver_attempting_an_operator_action_is_always_403() {
    let app = app().await;
    let alice = app.token("approver", "alice").await;
    let items: Vec<Value> = (0..5).map(|i| json!({"text": violating(i)})).collect();
    let (status, body) = app
        .post("/v1/tenants/parlor/content", &json!({"items": items}))
        .await;
    assert_eq!(status, 200, "{body}");
    let case = eventually("a case opened from pushed evidence", || async {
        let (_, cases) = app.get("/v1/cases?tenant=parlor").await;
        let c = cases["cases"][0].clone();
        c.is_object().then_some(c)
    })
    .await;
    let id = case["id"].as_str().unwrap();
    // `accept_plan` is illegal on a noticed case, and an approver may never
    // do it: the role is decided first.
    for action in ["accept_plan", "escalate", "dismiss"] {
        let (status, body) = app
            .call_as(
                &alice,
                Method::POST,
                &format!("/v1/cases/{id}/actions"),
                Some(&json!({"action": action, "reason": "why not"})),
            )
            .await;
        assert_eq!(
            (status, body),
            (
                403,
                json!({"code": "not_allowed", "message": format!("an approver may not {action} on this case")})
            ),
            "{action}"
        );
    }
    let (_, after) = app.get(&format!("/v1/cases/{id}")).await;
    assert_eq!(after["version"], case["version"]);
    // With the operator's role the state decides.
    let (status, body) = app
        .call_as(
            TOKEN,
            Method::POST,
            &format!("/v1/cases/{id}/actions"),
            Some(&json!({"action": "accept_plan", "reason": "fine"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("illegal_in_state"))
    );
}
