//! The review loop over real HTTP: who may review, the order of the queue,
//! labels and their audit events, agreement and second opinions, and the
//! prevalence from labels.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{clean, spawn_app_with, violating, Options, TestApp, TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

const CATEGORY: &str = "violent-incitement";

/// A tenant `parlor` with `bad` violating and `good` clean pushed items,
/// every one sampled.
async fn app(bad: usize, good: usize) -> TestApp {
    let app = spawn_app_with(Options {
        configure: Box::new(|s| {
            s.sampling.enabled = false;
            s.sampling.intake_sample_rate = 1.0;
        }),
        ..Options::default()
    })
    .await;
    app.create_tenant("parlor", "standard").await;
    app.create_tenant("other", "standard").await;
    let mut items: Vec<Value> = (0..bad).map(|i| json!({"text": violating(i)})).collect();
    items.extend((0..good).map(|i| json!({"text": clean(i)})));
    let (status, body) = app
        .post("/v1/tenants/parlor/content", &json!({"items": items}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.samples("parlor").await.len(), bad + good);
    app
}

async fn next(app: &TestApp, token: &str, query: &str) -> Value {
    let (status, body) = app
        .call_as(
            token,
            Method::GET,
            &format!("/v1/review/next?{query}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn label(app: &TestApp, token: &str, item: &str, labels: Value) -> (u16, Value) {
    app.call_as(
        token,
        Method::POST,
        &format!("/v1/review/{item}/label?tenant=parlor"),
        Some(&json!({ "labels": labels })),
    )
    .await
}

/// The true answer for an item served by the queue: the test's texts say
/// which they are.
fn truth(item: &Value) -> &'static str {
    if item["excerpt"]
        .as_str()
        .unwrap()
        .contains("storm the capitol")
    {
        "violates"
    } else {
        "does_not"
    }
}

async fn prevalence(app: &TestApp) -> Value {
    let (status, body) = app.get("/v1/tenants/parlor/prevalence").await;
    assert_eq!(status, 200, "{body}");
    body["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == CATEGORY)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn reviewers_review_and_nothing_more_and_tenants_may_not_review() {
    let app = app(1, 1).await;
    let ann = app.token("reviewer", "ann").await;
    let tenant = app.token("tenant:parlor", "parlor dashboard").await;
    let operator = app.token("operator", "olga").await;

    let body = next(&app, &ann, "tenant=parlor").await;
    assert!(body["item"]["excerpt"].is_string(), "{body}");
    assert_eq!(
        next(&app, &operator, "tenant=parlor").await["item"],
        body["item"]
    );

    for path in [
        "/v1/review/next?tenant=parlor",
        "/v1/review/labels",
        "/v1/review/agreement",
    ] {
        let (status, body) = app.call_as(&tenant, Method::GET, path, None).await;
        assert_eq!(
            (status, body),
            (
                403,
                json!({"code": "forbidden", "message": "this token's role may not review sampled items"})
            ),
            "{path}"
        );
    }
    let (status, _) = app
        .anonymous()
        .get(format!("{}/v1/review/next?tenant=parlor", app.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401);
    // A reviewer sees texts through the review routes only, and does no
    // operator work.
    for (method, path) in [
        (Method::GET, "/v1/tenants/parlor/samples"),
        (Method::GET, "/v1/tenants/parlor/findings"),
        (Method::GET, "/v1/tenants/parlor/prevalence"),
        (Method::GET, "/v1/cases"),
        (Method::GET, "/v1/events"),
        (Method::POST, "/v1/tenants/parlor/sample"),
    ] {
        let (status, body) = app.call_as(&ann, method, path, Some(&json!({}))).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["code"], "forbidden", "{path}");
    }
}

#[tokio::test]
async fn the_queue_starts_with_the_highest_band_and_then_evens_the_bands_out() {
    let app = app(3, 3).await;
    let ann = app.token("reviewer", "ann").await;
    let first = next(&app, &ann, "tenant=parlor").await;
    let population = first["population"].as_array().unwrap().clone();
    assert_eq!(
        population.iter().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        6
    );
    let top = population.iter().rposition(|n| n != 0).unwrap();
    let low = population.iter().position(|n| n != 0).unwrap();
    assert!(top > low, "{population:?}");
    assert_eq!(first["item"]["band"], top);
    assert_eq!(first["targets"], json!(population));
    // The same item until someone labels it.
    assert_eq!(
        next(&app, &ann, "tenant=parlor").await["item"],
        first["item"]
    );

    let mut bands = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let body = next(&app, &ann, "tenant=parlor").await;
        if body["item"].is_null() {
            break;
        }
        let item = &body["item"];
        assert!(seen.insert(item["item"].as_str().unwrap().to_string()));
        bands.push(item["band"].as_u64().unwrap() as usize);
        let (status, body) = label(
            &app,
            &ann,
            item["item"].as_str().unwrap(),
            json!({ CATEGORY: truth(item) }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // Every item once; after the top band's first item the low band is
    // further below its target, and the bands alternate from there.
    assert_eq!(bands.len(), 6);
    assert_eq!(bands[0], top);
    assert_eq!(bands[1], low);
    assert_eq!(bands.iter().filter(|b| **b == top).count(), 3);
    let done = next(&app, &ann, "tenant=parlor").await;
    assert_eq!(done["reviewed"], json!(population));
}

/// `sampling.review_sample_size` bounds the sample: with 10 of 40 items,
/// the targets sum to 10 and the queue is empty after ten labels.
#[tokio::test]
async fn the_review_sample_holds_as_many_items_as_configured() {
    let app = spawn_app_with(Options {
        configure: Box::new(|s| {
            s.sampling.enabled = false;
            s.sampling.intake_sample_rate = 1.0;
            s.sampling.review_sample_size = 10;
        }),
        ..Options::default()
    })
    .await;
    app.create_tenant("parlor", "standard").await;
    let mut items: Vec<Value> = (0..10).map(|i| json!({"text": violating(i)})).collect();
    items.extend((0..30).map(|i| json!({"text": clean(i)})));
    let (status, body) = app
        .post("/v1/tenants/parlor/content", &json!({"items": items}))
        .await;
    assert_eq!(status, 200, "{body}");
    let ann = app.token("reviewer", "ann").await;
    let first = next(&app, &ann, "tenant=parlor").await;
    let sum = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum(&first["population"]), 40);
    assert_eq!(sum(&first["targets"]), 10, "{first}");
    // Asked for one more than the sample, the queue serves exactly ten.
    assert_eq!(review(&app, &ann, 11, None).await, 10);
}

#[tokio::test]
async fn bad_labels_are_refused_with_a_clear_error_and_change_nothing() {
    let app = app(1, 1).await;
    let ann = app.token("reviewer", "ann").await;
    let item = next(&app, &ann, "tenant=parlor").await["item"]["item"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/review/{item}/label?tenant=parlor");
    let post = |body: Value, path: String| {
        let ann = ann.clone();
        let app = &app;
        async move { app.call_as(&ann, Method::POST, &path, Some(&body)).await }
    };

    let (status, body) = post(json!({"labels": {"nope": "violates"}}), path.clone()).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "unknown_category");
    assert!(
        body["message"].as_str().unwrap().contains("\"nope\""),
        "{body}"
    );
    let (status, body) = post(json!({"labels": {}}), path.clone()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("no_labels")));
    let (status, body) = post(json!({"labels": {CATEGORY: "maybe"}}), path.clone()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    assert!(
        body["message"].as_str().unwrap().contains("maybe"),
        "{body}"
    );
    let (status, body) = post(
        json!({"labels": {CATEGORY: "violates"}, "reviewer": "bob"}),
        path.clone(),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    let (status, body) = post(
        json!({"labels": {CATEGORY: "violates"}, "note": "x".repeat(2001)}),
        path.clone(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("note_too_large"))
    );
    let (status, body) = app.call_as(&ann, Method::POST, &path, None).await;
    assert_eq!(status, 415, "{body}");
    // Bad ids, unknown tenants, and an item of another tenant.
    let ok = json!({"labels": {CATEGORY: "violates"}});
    let (status, body) = post(
        ok.clone(),
        "/v1/review/not-an-id/label?tenant=parlor".into(),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "review item not found"})
        )
    );
    let (status, body) = post(ok.clone(), format!("/v1/review/{item}/label?tenant=other")).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "review item not found"})
        )
    );
    let (status, body) = post(ok.clone(), format!("/v1/review/{item}/label?tenant=nobody")).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "tenant not found"})
        )
    );
    let (status, body) = post(ok.clone(), format!("/v1/review/{item}/label")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );

    let (_, labels) = app.get("/v1/review/labels").await;
    assert_eq!(labels, json!({"labels": []}));
    assert!(app.events("review.labelled").await.is_empty());
}

#[tokio::test]
async fn a_label_is_stored_with_its_audit_event() {
    let app = app(1, 0).await;
    let ann = app.token("reviewer", "ann").await;
    let item = next(&app, &ann, "tenant=parlor").await["item"].clone();
    let id = item["item"].as_str().unwrap();
    assert_eq!(item["flagged"], json!([CATEGORY]));
    assert!(!item["evidence"].as_array().unwrap().is_empty());
    let (status, body) = app
        .call_as(
            &ann,
            Method::POST,
            &format!("/v1/review/{id}/label?tenant=parlor"),
            Some(&json!({"labels": {CATEGORY: "violates", "violent-threat": "unsure"}, "note": "a call to arms"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["labels"].as_array().unwrap().len(), 2);
    let events = app.events("review.labelled").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["tenant"], "parlor");
    assert_eq!(events[0]["data"]["item"], id);
    assert_eq!(events[0]["data"]["reviewer"], "ann");
    assert_eq!(events[0]["data"]["labels"][CATEGORY], "violates");
    assert_eq!(events[0]["data"]["note"], "a call to arms");
    let (_, labels) = app
        .get("/v1/review/labels?tenant=parlor&category=violent-threat")
        .await;
    assert_eq!(labels["labels"].as_array().unwrap().len(), 1);
    assert_eq!(labels["labels"][0]["answer"], "unsure");
    assert_eq!(labels["labels"][0]["reviewer"], "ann");
}

#[tokio::test]
async fn a_disagreement_goes_to_a_second_reviewer_and_two_agreeing_make_evidence() {
    let app = app(1, 0).await;
    let ann = app.token("reviewer", "ann").await;
    let bob = app.token("reviewer", "bob").await;
    let cat = app.token("reviewer", "cat").await;
    let id = next(&app, &ann, "tenant=parlor").await["item"]["item"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, body) = label(&app, &ann, &id, json!({CATEGORY: "violates"})).await;
    assert_eq!(body["categories"][0]["evidence"], false);
    // One "violates" waits for a second reviewer, never the first one.
    assert!(next(&app, &ann, "tenant=parlor&queue=second").await["item"].is_null());
    assert_eq!(
        next(&app, &bob, "tenant=parlor&queue=second").await["item"]["item"],
        id
    );
    let (_, body) = label(&app, &bob, &id, json!({CATEGORY: "does_not"})).await;
    assert_eq!(body["categories"][0]["consensus"], "disputed");

    let (_, disputed) = app.get("/v1/review/labels?disagreement=true").await;
    assert_eq!(disputed["labels"].as_array().unwrap().len(), 2);
    for who in [&ann, &bob] {
        assert!(next(&app, who, "tenant=parlor&queue=second").await["item"].is_null());
    }
    let second = next(&app, &cat, "tenant=parlor&queue=second").await;
    assert_eq!(second["item"]["item"], id);
    let (_, body) = label(&app, &cat, &id, json!({CATEGORY: "violates"})).await;
    assert_eq!(
        body["categories"][0],
        json!({"category": CATEGORY, "violates": 2, "does_not": 1, "consensus": "violates", "evidence": true})
    );
    assert!(next(&app, &cat, "tenant=parlor&queue=second").await["item"].is_null());
    let (_, disputed) = app.get("/v1/review/labels?disagreement=true").await;
    assert_eq!(disputed, json!({"labels": []}));

    let (status, body) = app.get("/v1/review/agreement?tenant=parlor").await;
    assert_eq!(status, 200);
    let rate = |who: &str| {
        body["agreement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reviewer"] == who && r["category"] == CATEGORY)
            .unwrap()
            .clone()
    };
    assert_eq!(rate("ann")["rate"], 0.5);
    assert_eq!(rate("bob")["rate"], 0.0);
    assert_eq!(rate("cat")["compared"], 2);
    assert_eq!(prevalence(&app).await["labelled_evidence"], 1);
}

#[tokio::test]
async fn prevalence_shows_the_label_estimate_and_the_corrected_count_beside_the_model() {
    let app = app(4, 4).await;
    let ann = app.token("reviewer", "ann").await;
    let before = prevalence(&app).await;
    assert_eq!(before["sampled"], 8);
    assert_eq!(before["flagged"], 4);
    assert_eq!(before["reviewed"], 0);
    assert_eq!(before["estimate"], "model");
    assert!(before["labelled"].is_null() && before["corrected"].is_null());

    // The reviewer finds one flagged item is not incitement after all.
    let mut overruled = false;
    loop {
        let item = next(&app, &ann, "tenant=parlor").await["item"].clone();
        if item.is_null() {
            break;
        }
        let mut answer = truth(&item);
        if answer == "violates" && !overruled {
            overruled = true;
            answer = "does_not";
        }
        let (status, _) = label(
            &app,
            &ann,
            item["item"].as_str().unwrap(),
            json!({CATEGORY: answer}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let after = prevalence(&app).await;
    assert_eq!(after["rate"], 0.5, "the model's count stays as it was");
    assert_eq!(after["reviewed"], 8);
    assert_eq!(after["labelled"]["reviewed"], 8);
    // Every item was reviewed: the label estimate is the labels' share.
    assert_eq!(after["labelled"]["rate"], 3.0 / 8.0);
    let corrected = after["corrected"]["rate"].as_f64().unwrap();
    assert!((corrected - 3.0 / 8.0).abs() < 1e-9, "{after}");
    let (lo, hi) = (
        after["corrected"]["lower"].as_f64().unwrap(),
        after["corrected"]["upper"].as_f64().unwrap(),
    );
    assert!(lo <= corrected && corrected <= hi, "{after}");
    // Categories nobody labelled have no estimate.
    let (_, body) = app.get("/v1/tenants/parlor/prevalence").await;
    let threat = body["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "violent-threat")
        .unwrap()
        .clone();
    assert_eq!(threat["reviewed"], 0);
    assert!(threat["labelled"].is_null());
}

#[tokio::test]
async fn feedback_labels_count_for_evidence_but_not_in_the_stratified_estimate() {
    let app = app(3, 3).await;
    let ann = app.token("reviewer", "ann").await;
    // Feedback on the clean item the queue would serve last.
    let mut order = Vec::new();
    let samples = app.samples("parlor").await;
    for s in &samples {
        order.push(s["id"].as_str().unwrap().to_string());
    }
    let first = next(&app, &ann, "tenant=parlor").await["item"]["item"]
        .as_str()
        .unwrap()
        .to_string();
    let other = order.iter().find(|id| **id != first).unwrap().clone();
    let (status, body) = app
        .call_as(
            &ann,
            Method::POST,
            &format!("/v1/review/{other}/label?tenant=parlor"),
            Some(&json!({"labels": {CATEGORY: "violates"}, "origin": "feedback"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["labels"][0]["origin"], "feedback");
    let p = prevalence(&app).await;
    assert_eq!(p["labelled_items"], 1);
    // Unless it happens to be first in its band's draw order, it is not
    // part of the stratified sample yet.
    let served_next = next(&app, &ann, "tenant=parlor").await["reviewed"].clone();
    let in_sample = served_next
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_u64().unwrap() > 0);
    assert_eq!(p["reviewed"].as_u64().unwrap(), u64::from(in_sample));
    assert_eq!(p["feedback"].as_u64().unwrap(), u64::from(!in_sample));
}

#[tokio::test]
async fn reviewers_see_no_tenant_routes_and_tenants_see_no_reviewers() {
    let app = app(1, 0).await;
    let ann = app.token("reviewer", "ann").await;
    let id = next(&app, &ann, "tenant=parlor").await["item"]["item"]
        .as_str()
        .unwrap()
        .to_string();
    label(&app, &ann, &id, json!({CATEGORY: "violates"})).await;
    let tenant = app.token("tenant:parlor", "parlor dashboard").await;
    for path in [
        "/v1/review/labels?tenant=parlor",
        "/v1/review/agreement?tenant=parlor",
    ] {
        let (status, _) = app.call_as(&tenant, Method::GET, path, None).await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, body) = app
        .call_as(&tenant, Method::GET, "/v1/tenant/cases", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("ann"), "{body}");
    // The admin token reads labels across tenants; a reviewer too.
    let (status, body) = app
        .call_as(TOKEN, Method::GET, "/v1/review/labels?tenant=other", None)
        .await;
    assert_eq!((status, body), (200, json!({"labels": []})));
    let (status, body) = app
        .call_as(&ann, Method::GET, "/v1/review/next?tenant=nobody", None)
        .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "tenant not found"})
        )
    );
    let (status, body) = app
        .call_as(
            &ann,
            Method::GET,
            "/v1/review/next?tenant=parlor&queue=third",
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );
}

#[tokio::test]
async fn a_policy_resting_on_labels_refuses_a_proposal_without_two_agreeing_reviewers() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    common::copy_dir(&common::shipped_policies(), &policies);
    let file = policies.join("default.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replacen(
        "[category.case]\ntolerance = 0.005\n",
        "[category.case]\nestimate = \"labelled\"\ntolerance = 0.005\n",
        1,
    );
    assert!(text.contains("estimate = \"labelled\""));
    std::fs::write(&file, text).unwrap();
    let app = spawn_app_with(Options {
        configure: Box::new(move |s| {
            s.sampling.enabled = false;
            s.sampling.intake_sample_rate = 1.0;
            s.policy.dir = policies;
        }),
        ..Options::default()
    })
    .await;
    app.create_tenant("parlor", "standard").await;
    let items: Vec<Value> = (0..3).map(|i| json!({"text": violating(i)})).collect();
    let (status, body) = app
        .post("/v1/tenants/parlor/content", &json!({"items": items}))
        .await;
    assert_eq!(status, 200, "{body}");
    let case = common::eventually("a case opened from pushed evidence", || async {
        let (_, cases) = app.get("/v1/cases?tenant=parlor").await;
        let c = cases["cases"][0].clone();
        c.is_object().then_some(c)
    })
    .await;
    let id = case["id"].as_str().unwrap().to_string();
    let act = |action: &'static str| {
        let path = format!("/v1/cases/{id}/actions");
        let app = &app;
        async move {
            app.post(
                &path,
                &json!({"action": action, "reason": "repeat offender"}),
            )
            .await
        }
    };
    assert_eq!(act("escalate").await.0, 200);
    let (status, body) = act("propose_suspension").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "no_labelled_evidence");
    assert!(
        body["message"].as_str().unwrap().contains(CATEGORY),
        "{body}"
    );
    let (_, unchanged) = app.get(&format!("/v1/cases/{id}")).await;
    assert_eq!(unchanged["state"], "escalated");

    // One reviewer is not enough; two who agree are.
    let ann = app.token("reviewer", "ann").await;
    let bob = app.token("reviewer", "bob").await;
    let item = next(&app, &ann, "tenant=parlor").await["item"]["item"]
        .as_str()
        .unwrap()
        .to_string();
    label(&app, &ann, &item, json!({CATEGORY: "violates"})).await;
    assert_eq!(act("propose_suspension").await.0, 409);
    label(&app, &bob, &item, json!({CATEGORY: "violates"})).await;
    let (status, body) = act("propose_suspension").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(prevalence(&app).await["estimate"], "labelled");
    // The tenant's evidence package says what the rule rests on and how
    // many items people reviewed, never who.
    let dashboard = app.token("tenant:parlor", "parlor dashboard").await;
    let (status, view) = app
        .call_as(
            &dashboard,
            Method::GET,
            &format!("/v1/tenant/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    let rule = view["policy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["category"] == CATEGORY)
        .unwrap()
        .clone();
    assert_eq!(rule["estimate"], "labelled");
    assert_eq!(rule["reviewed_items"], 1);
    assert_eq!(rule["labelled_evidence"], 1);
    let text = view.to_string();
    assert!(
        !text.contains("\"ann\"") && !text.contains("\"bob\""),
        "{text}"
    );
    let proposed = app.events("case.suspension_proposed").await;
    assert_eq!(proposed.len(), 1);
    assert_eq!(proposed[0]["data"]["data"]["labelled_evidence"], 1);
    assert_eq!(
        proposed[0]["data"]["data"]["estimates"][CATEGORY],
        "labelled"
    );
}

#[tokio::test]
async fn the_export_holds_the_agreed_answer_once_in_the_format_training_reads() {
    let app = app(1, 1).await;
    let ann = app.token("reviewer", "ann").await;
    let bob = app.token("reviewer", "bob").await;
    let mut ids = Vec::new();
    loop {
        let item = next(&app, &ann, "tenant=parlor").await["item"].clone();
        if item.is_null() {
            break;
        }
        let id = item["item"].as_str().unwrap().to_string();
        label(&app, &ann, &id, json!({CATEGORY: truth(&item)})).await;
        ids.push((id, truth(&item)));
    }
    // Bob disagrees on the violating item: it is exported as unsure.
    let (bad, _) = ids.iter().find(|(_, t)| *t == "violates").unwrap().clone();
    label(&app, &bob, &bad, json!({CATEGORY: "does_not"})).await;
    let dir = app.stop().await;
    let store = common::open_test_store(&dir.path().join("store"));
    let tenant = aupd::domain::TenantId::try_from("parlor").unwrap();
    let mut out = Vec::new();
    let rows = aupd::review::export::export(&store, &tenant, &mut out).unwrap();
    assert_eq!(rows, 2);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.starts_with("sample_id,tenant,category,label,origin,text\n"),
        "{text}"
    );
    let file =
        aupd::policy::labels::parse_labels(&out, std::path::Path::new("labels.csv")).unwrap();
    assert_eq!(file.rows.len(), 2);
    let answers: Vec<String> = file
        .rows
        .iter()
        .map(|r| format!("{:?}", r.answer))
        .collect();
    assert!(answers.contains(&"Unsure".to_string()), "{answers:?}");
    assert!(answers.contains(&"DoesNot".to_string()), "{answers:?}");
    assert!(file.rows.iter().all(|r| r.category == CATEGORY));
    assert!(file.rows.iter().any(|r| r.text.contains("picnic")));
}

/// An app whose `violent-incitement` rule rests on reviewers' labels
/// (`estimate`), with no critical score so that only prevalence can open
/// a case, `min_samples = 10`; `bad` violating and `good` clean items
/// pushed for `parlor`, every one sampled.
async fn labels_rule_app(
    estimate: &str,
    clock: Option<std::sync::Arc<aupd::clock::ManualClock>>,
    bad: usize,
    good: usize,
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    common::copy_dir(&common::shipped_policies(), &policies);
    let file = policies.join("default.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replacen(
        "[category.case]\ntolerance = 0.005\ncritical_score = 0.85\nmin_samples = 30\n",
        &format!(
            "[category.case]\nestimate = \"{estimate}\"\ntolerance = 0.005\nmin_samples = 10\n"
        ),
        1,
    );
    assert!(text.contains(&format!("estimate = \"{estimate}\"")));
    std::fs::write(&file, text).unwrap();
    let app = spawn_app_with(Options {
        configure: Box::new(move |s| {
            s.sampling.enabled = false;
            s.sampling.intake_sample_rate = 1.0;
            s.policy.dir = policies;
            s.enforcement.tick_ms = 20;
        }),
        clock,
        ..Options::default()
    })
    .await;
    app.create_tenant("parlor", "standard").await;
    let mut items: Vec<Value> = (0..bad).map(|i| json!({"text": violating(i)})).collect();
    items.extend((0..good).map(|i| json!({"text": clean(i)})));
    let (status, body) = app
        .post("/v1/tenants/parlor/content", &json!({"items": items}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["flagged"], bad, "{body}");
    (app, dir)
}

/// Threshold crossings raised for the test's category.
async fn crossings(app: &TestApp) -> Vec<Value> {
    app.events("evidence.threshold_crossed")
        .await
        .into_iter()
        .filter(|e| e.to_string().contains(CATEGORY))
        .collect()
}

/// The reviewer labels up to `n` items from the queue, answering `answer`
/// (or the truth when `None`); returns how many were labelled.
async fn review(app: &TestApp, token: &str, n: usize, answer: Option<&str>) -> usize {
    let mut done = 0;
    while done < n {
        let item = next(app, token, "tenant=parlor").await["item"].clone();
        if item.is_null() {
            break;
        }
        let answer = answer.unwrap_or_else(|| truth(&item));
        let (status, body) = label(
            app,
            token,
            item["item"].as_str().unwrap(),
            json!({CATEGORY: answer}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        done += 1;
    }
    done
}

#[tokio::test]
async fn a_rule_resting_on_labels_opens_a_case_when_reviewers_confirm_and_not_on_the_model_alone() {
    let (app, _dir) = labels_rule_app("labelled", None, 10, 30).await;
    // The model flags a quarter of the sample, far above tolerance; the
    // rule waits for people.
    assert!(crossings(&app).await.is_empty());
    let (_, cases) = app.get("/v1/cases?tenant=parlor&scope=all").await;
    assert!(
        !cases.to_string().contains(CATEGORY),
        "no case before any label: {cases}"
    );
    let ann = app.token("reviewer", "ann").await;
    // Fewer reviewed items than min_samples: still nothing.
    assert_eq!(review(&app, &ann, 9, None).await, 9);
    assert!(crossings(&app).await.is_empty());
    // The tenth label reaches min_samples with a lower bound above tolerance.
    assert_eq!(review(&app, &ann, 1, None).await, 1);
    let crossed = crossings(&app).await;
    assert_eq!(crossed.len(), 1, "{crossed:?}");
    let data = &crossed[0]["data"];
    assert_eq!(data["estimate"], "labelled", "{data}");
    assert_eq!(data["reviewed"], 10, "{data}");
    assert!(data["lower"].as_f64().unwrap() > 0.005, "{data}");
    // The evidence worker opens the case, stating the estimate it rests on.
    let case = common::eventually("a case opened from reviewers' labels", || async {
        let c = common::case_of(&app, "parlor").await;
        c.is_object().then_some(c)
    })
    .await;
    let estimate = case["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "label_estimate")
        .cloned()
        .unwrap_or_else(|| panic!("no label estimate in {case}"));
    assert_eq!(estimate["estimate"], "labelled");
    assert_eq!(estimate["reviewed"], 10);
    assert_eq!(estimate["category"], CATEGORY);
    // Its findings are the items reviewers said violate.
    let findings = case["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "finding")
        .count();
    assert!(findings > 0, "{case}");
    // More labels raise nothing more: the threshold is raised once.
    review(&app, &ann, 5, None).await;
    assert_eq!(crossings(&app).await.len(), 1);
    // The tenant sees what the rule rested on, and no reviewer.
    let dashboard = app.token("tenant:parlor", "parlor dashboard").await;
    let id = case["id"].as_str().unwrap();
    let (status, view) = app
        .call_as(
            &dashboard,
            Method::GET,
            &format!("/v1/tenant/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    let shown = view["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "label_estimate")
        .cloned()
        .unwrap_or_else(|| panic!("{view}"));
    assert_eq!(shown["reviewed_items"], 10);
    assert!(!view.to_string().contains("\"ann\""), "{view}");
}

#[tokio::test]
async fn labels_that_say_the_model_is_wrong_open_no_case() {
    let (app, _dir) = labels_rule_app("corrected", None, 10, 30).await;
    let ann = app.token("reviewer", "ann").await;
    assert_eq!(review(&app, &ann, 40, Some("does_not")).await, 40);
    assert!(crossings(&app).await.is_empty());
    let (_, cases) = app.get("/v1/cases?tenant=parlor&scope=all").await;
    assert!(!cases.to_string().contains(CATEGORY), "{cases}");
    let p = prevalence(&app).await;
    assert_eq!(p["estimate"], "corrected");
    assert_eq!(p["reviewed"], 40);
}

#[tokio::test]
async fn approvals_wait_for_two_reviewers_when_the_ladder_proposed_without_them() {
    use aupd::clock::{Clock, ManualClock};
    let clock = std::sync::Arc::new(ManualClock::new(aupd::clock::SystemClock.now()));
    let (app, _dir) = labels_rule_app("labelled", Some(clock.clone()), 10, 30).await;
    let ann = app.token("reviewer", "ann").await;
    let bob = app.token("reviewer", "bob").await;
    // One reviewer's labels open the case; no item has two reviewers yet.
    review(&app, &ann, 10, None).await;
    let case = common::eventually("a case opened from labels", || async {
        let c = common::case_of(&app, "parlor").await;
        c.is_object().then_some(c)
    })
    .await;
    let id = case["id"].as_str().unwrap().to_string();
    common::wait_for_state(&app, &id, "noticed").await;
    clock.advance(jiff::SignedDuration::from_hours(25));
    common::wait_for_state(&app, &id, "suspension_proposed").await;
    let proposed = app.events("case.suspension_proposed").await;
    assert_eq!(proposed[0]["data"]["data"]["labelled_evidence"], 0);

    let alice = app.token("approver", "alice").await;
    let carol = app.token("approver", "carol").await;
    let approve = |token: String| {
        let path = format!("/v1/cases/{id}/actions");
        let app = &app;
        async move {
            app.call_as(
                &token,
                Method::POST,
                &path,
                Some(&json!({"action": "approve_suspension", "reason": "clear"})),
            )
            .await
        }
    };
    let (status, body) = approve(alice.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "no_labelled_evidence");
    assert!(
        body["message"].as_str().unwrap().contains(CATEGORY),
        "{body}"
    );
    let (_, unchanged) = app.get(&format!("/v1/cases/{id}")).await;
    assert_eq!(unchanged["state"], "suspension_proposed");
    assert!(
        unchanged["suspension"]["approvals"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{unchanged}"
    );

    // A second reviewer agrees on a violating item: approvals count.
    let violating_item = common::eventually("ann's violating label", || async {
        let (_, labels) = app
            .get(&format!(
                "/v1/review/labels?tenant=parlor&category={CATEGORY}"
            ))
            .await;
        labels["labels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["answer"] == "violates")
            .map(|l| l["item"].as_str().unwrap().to_string())
    })
    .await;
    let (status, body) = label(&app, &bob, &violating_item, json!({CATEGORY: "violates"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(approve(alice).await.0, 200);
    let (status, body) = approve(carol).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["case"]["state"], "suspension_ordered", "{body}");
}

#[tokio::test]
async fn labels_committed_without_a_look_still_raise_their_crossing() {
    use aupd::domain::{Label, LabelOrigin, SampleId, TenantId};
    use aupd::store::{reviews, Batch};
    let (app, _dir) = labels_rule_app("labelled", None, 10, 30).await;
    let ann = app.token("reviewer", "ann").await;
    let store = app.cases.store().clone();
    // Ten labels committed straight to the store, as a process that
    // stopped right after its commit leaves them: no one looked at the
    // rules resting on them.
    for _ in 0..10 {
        let item = next(&app, &ann, "tenant=parlor").await["item"].clone();
        let label = Label {
            tenant: TenantId::try_from("parlor").unwrap(),
            sample: SampleId(item["item"].as_str().unwrap().parse().unwrap()),
            category: CATEGORY.into(),
            reviewer: "ann".into(),
            answer: serde_json::from_value(json!(truth(&item))).unwrap(),
            origin: LabelOrigin::Queue,
            note: None,
            at: jiff::Timestamp::now(),
        };
        let mut batch = Batch::new();
        reviews::put_label(&mut batch, &label).unwrap();
        store.commit(batch).unwrap();
    }
    // The enforcement worker's sweep looks, raises the crossing once and
    // clears the mark.
    let crossed = common::eventually("the crossing raised by the sweep", || async {
        let c = crossings(&app).await;
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert_eq!(crossed.len(), 1, "{crossed:?}");
    assert_eq!(crossed[0]["data"]["reviewed"], 10, "{crossed:?}");
    common::eventually("the mark cleared", || async {
        reviews::pending_checks(&*store, 10)
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
}
