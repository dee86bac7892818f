//! `/metrics` and `/readyz` over HTTP: public, labelled by route pattern,
//! and fed by the sampling and enforcement rooms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use aupd::clock::ManualClock;
use common::{eventually, spawn_app_with, violating, Options};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

async fn scrape(app: &common::TestApp) -> String {
    let r = app
        .anonymous()
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    r.text().await.unwrap()
}

/// The value of the first sample line starting with `prefix`.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_need_no_token_and_label_requests_by_route_pattern() {
    let app = spawn_app_with(Options::default()).await;
    app.create_tenant("metered", "standard").await;
    for _ in 0..2 {
        let (status, _) = app.get("/v1/tenants/metered").await;
        assert_eq!(status, 200);
    }
    let (status, _) = app.get("/no/such/route").await;
    assert_eq!(status, 404);

    let text = scrape(&app).await;

    let ok = value(
        &text,
        "aupd_http_requests_total{method=\"GET\",route=\"/v1/tenants/{tenant}\",status=\"200\"}",
    );
    assert!(ok.is_some_and(|n| n >= 2.0), "{text}");
    assert!(
        value(
            &text,
            "aupd_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        )
        .is_some(),
        "{text}"
    );
    assert!(
        !text.contains("/v1/tenants/metered") && !text.contains("/no/such/route"),
        "raw paths leak into labels:\n{text}"
    );
    assert!(text.contains(
        "aupd_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/tenants/{tenant}\""
    ));
    assert!(text.contains("aupd_worker_heartbeat_age_seconds{worker=\"sampler\"}"));
    assert!(text.contains("aupd_worker_heartbeat_age_seconds{worker=\"enforcement\"}"));
    app.stop().await;
}

#[tokio::test]
async fn pushed_evidence_shows_as_flagged_items_an_open_case_and_a_late_deadline() {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let app = spawn_app_with(Options {
        configure: Box::new(|s| {
            s.enforcement.tick_ms = 20;
            s.sampling.intake_sample_rate = 1.0;
        }),
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    app.create_tenant("loud", "standard").await;
    let items: Vec<Value> = (0..20)
        .map(|i| json!({"text": violating(i), "url": format!("https://loud.example/p/{i}")}))
        .collect();
    let (status, body) = app
        .post("/v1/tenants/loud/content", &json!({"items": items}))
        .await;
    assert_eq!(status, 200, "{body}");

    let text = eventually("an open case in the metrics", || async {
        let text = scrape(&app).await;
        text.lines()
            .any(|l| l.starts_with("aupd_cases_open{") && !l.ends_with(" 0"))
            .then_some(text)
    })
    .await;

    assert!(
        value(&text, "aupd_samples_recorded_total{origin=\"pushed\"}").is_some_and(|n| n >= 20.0),
        "{text}"
    );
    assert!(
        value(&text, "aupd_items_flagged_total{category=").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        value(&text, "aupd_items_scored_total{path=\"sampling\"}").is_some_and(|n| n >= 20.0),
        "{text}"
    );
    assert!(
        text.contains("aupd_scoring_duration_seconds_count"),
        "{text}"
    );
    // The critical ladder notices at once with an hour to cure.
    assert!(
        value(&text, "aupd_deadlines_pending ").is_some_and(|n| n >= 1.0),
        "{text}"
    );

    // A minute past the deadline it fires, a minute late; the reminders
    // (30 and 10 minutes before it) fire too, 31 and 11 minutes late.
    clock.advance(SignedDuration::from_mins(61));
    let text = eventually("the cure deadline's lag in the metrics", || async {
        let text = scrape(&app).await;
        value(&text, "aupd_deadline_fire_lag_seconds_bucket{le=\"120\"}")
            .is_some_and(|n| n >= 1.0)
            .then_some(text)
    })
    .await;
    assert_eq!(
        value(&text, "aupd_deadline_fire_lag_seconds_bucket{le=\"30\"}"),
        Some(0.0),
        "{text}"
    );
    assert!(
        value(&text, "aupd_deadlines_fired_total ").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn readyz_checks_the_store_policy_and_workers() {
    let app = spawn_app_with(Options::default()).await;
    let r = app
        .anonymous()
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["policy_version"].as_str().map(str::len), Some(64));
    app.stop().await;
}
