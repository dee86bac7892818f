//! Push intake: a provider system mirrors tenant content into aupd, which
//! counts it, keeps a Bernoulli sample within budget and scores what it keeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{clean, spawn_app_with, violating, Options, TestApp};
use serde_json::{json, Value};

fn items(range: std::ops::Range<usize>, bad_every: usize) -> Value {
    let items: Vec<Value> = range
        .map(|i| {
            let text = if i % bad_every == 0 {
                violating(i)
            } else {
                clean(i)
            };
            json!({"id": i.to_string(), "text": text})
        })
        .collect();
    json!({ "items": items })
}

async fn app_keeping(rate: f64) -> TestApp {
    let app = spawn_app_with(Options {
        configure: Box::new(move |s| {
            s.sampling.intake_sample_rate = rate;
            s.sampling.max_batch_items = 100;
        }),
        ..Default::default()
    })
    .await;
    app.create_tenant("parlor", "standard").await;
    app
}

#[tokio::test]
async fn a_pushed_batch_is_counted_sampled_and_scored() {
    let app = app_keeping(1.0).await;
    let (status, body) = app
        .post("/v1/tenants/parlor/content", &items(0..100, 10))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["received"], 100);
    assert_eq!(body["sampled"], 100);
    assert_eq!(body["flagged"], 10);
    assert_eq!(body["seen_total"], 100);
    let samples = app.samples("parlor").await;
    assert_eq!(samples.len(), 100);
    assert!(samples.iter().all(|s| s["origin"]["type"] == "intake"));
}

#[tokio::test]
async fn the_same_content_pushed_twice_is_sampled_once() {
    let app = app_keeping(1.0).await;
    app.post("/v1/tenants/parlor/content", &items(0..50, 10))
        .await;
    let (_, body) = app
        .post("/v1/tenants/parlor/content", &items(0..50, 10))
        .await;
    assert_eq!(body["sampled"], 0);
    assert_eq!(body["duplicates"], 50);
    assert_eq!(body["seen_total"], 100);
    assert_eq!(app.samples("parlor").await.len(), 50);
}

#[tokio::test]
async fn intake_keeps_no_more_than_the_tenants_hourly_budget() {
    let app = app_keeping(1.0).await;
    let (status, _) = app
        .send(
            reqwest::Method::PATCH,
            "/v1/tenants/parlor",
            &json!({"intake_budget_per_hour": 30}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, first) = app
        .post("/v1/tenants/parlor/content", &items(0..100, 10))
        .await;
    let (_, second) = app
        .post("/v1/tenants/parlor/content", &items(100..200, 10))
        .await;
    assert_eq!(first["sampled"], 30);
    assert_eq!(second["sampled"], 0);
    assert_eq!(second["seen_total"], 200);
    assert_eq!(app.samples("parlor").await.len(), 30);
}

#[tokio::test]
async fn a_bernoulli_sample_of_pushed_content_estimates_its_prevalence() {
    let app = app_keeping(0.3).await;
    for start in (0..2000).step_by(100) {
        let (status, _) = app
            .post("/v1/tenants/parlor/content", &items(start..start + 100, 20))
            .await;
        assert_eq!(status, 200);
    }
    let (_, p) = app.get("/v1/tenants/parlor/prevalence").await;
    let c = p["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "violent-incitement")
        .unwrap();
    let n = c["sampled"].as_u64().unwrap();
    assert!((450..=750).contains(&n), "about 30% of 2000 kept, got {n}");
    let (lower, upper) = (c["lower"].as_f64().unwrap(), c["upper"].as_f64().unwrap());
    assert!(
        lower <= 0.05 && 0.05 <= upper,
        "true share 0.05 outside [{lower}, {upper}]"
    );
    assert_eq!(app.events("evidence.threshold_crossed").await.len(), 1);
}

async fn nothing_changed(app: &TestApp) {
    assert!(app.samples("parlor").await.is_empty());
    assert!(app.events("intake.received").await.is_empty());
}

#[tokio::test]
async fn an_oversize_batch_is_refused_with_413_and_changes_nothing() {
    let app = app_keeping(1.0).await;
    let (status, body) = app
        .post("/v1/tenants/parlor/content", &items(0..101, 10))
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "batch_too_large");
    assert_eq!(
        body["message"],
        "the batch holds 101 items; the limit is 100"
    );
    nothing_changed(&app).await;
}

#[tokio::test]
async fn malformed_or_unknown_intake_bodies_are_refused_and_change_nothing() {
    let app = app_keeping(1.0).await;
    let (status, body) = app
        .post_raw("/v1/tenants/parlor/content", "{\"items\": [{\"text\": ")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, body) = app
        .post(
            "/v1/tenants/parlor/content",
            &json!({"items": [{"text": "hi", "author": "x"}]}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    let (status, body) = app
        .post("/v1/tenants/parlor/content", &json!({"items": []}))
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("empty_batch")));
    let (status, body) = app
        .post(
            "/v1/tenants/parlor/content",
            &json!({"items": [{"text": "   "}]}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_item")));
    nothing_changed(&app).await;
}
