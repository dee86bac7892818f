//! Webhook endpoints, signed delivery, retries, dead letters, receipts —
//! against the real server and a real receiver on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aupd::domain::{
    Actor, ActorKind, CaseId, Command, EvidenceKind, EvidenceRef, Severity, SuspensionScope,
    TenantId,
};
use common::receiver::{Behavior, Receiver};
use common::{spawn_app_configured as spawn_app_with, TestApp};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// The settings every test here runs with: no sampler, loopback receivers
/// allowed, fast retries.
fn webhook_settings(s: &mut aupd::config::Settings) {
    s.sampling.enabled = false;
    s.delivery.allow_cidrs = vec!["127.0.0.0/8".into()];
    s.delivery.retry_scale = 0.00001;
    s.delivery.poll_ms = 20;
}

async fn webhook_app(change: impl FnOnce(&mut aupd::config::Settings) + Send + 'static) -> TestApp {
    spawn_app_with(|s| {
        webhook_settings(s);
        change(s);
    })
    .await
}

/// Starts the app again on the store a stopped one left.
async fn restart_webhook_app(
    dir: std::sync::Arc<tempfile::TempDir>,
    change: impl FnOnce(&mut aupd::config::Settings) + Send + 'static,
) -> TestApp {
    common::spawn_app_with(common::Options {
        configure: Box::new(|s| {
            webhook_settings(s);
            change(s);
        }),
        store_dir: Some(dir),
        ..common::Options::default()
    })
    .await
}

/// Registers `receiver/name`; returns the endpoint id and its secret.
async fn register(
    app: &TestApp,
    receiver: &Receiver,
    name: &str,
    extra: Value,
) -> (String, String) {
    let mut body = json!({ "url": receiver.url(name), "description": name });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let (status, created) = app.post("/v1/webhooks", &body).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    receiver.trust(name, &[&secret]);
    (created["id"].as_str().unwrap().to_string(), secret)
}

fn operator() -> Actor {
    Actor::new(ActorKind::Operator, "olga")
}

async fn open_case(app: &TestApp) -> CaseId {
    let id = CaseId::new();
    app.cases
        .execute(
            None,
            &operator(),
            Command::Open {
                case_id: id,
                tenant: TenantId::try_from("parlor").unwrap(),
                categories: vec!["spam".into()],
                severity: Severity::Low,
                evidence: vec![EvidenceRef {
                    kind: EvidenceKind::Report {
                        report_id: "rep_1".into(),
                    },
                    category: "spam".into(),
                    url: None,
                    policy_version: None,
                }],
                report: None,
            },
            None,
        )
        .await
        .unwrap();
    id
}

/// Drives a new case to `suspension_ordered` through the command path.
async fn order_suspension(app: &TestApp) -> CaseId {
    let id = open_case(app).await;
    let steps = [
        (
            operator(),
            Command::Escalate {
                reason: "repeated spam".into(),
            },
        ),
        (
            operator(),
            Command::ProposeSuspension {
                reason: "no response".into(),
                scope: SuspensionScope::Tenant,
            },
        ),
        (
            Actor::new(ActorKind::Approver, "ana"),
            Command::ApproveSuspension {
                reason: "agreed".into(),
            },
        ),
    ];
    for (actor, command) in steps {
        app.cases
            .execute(Some(&id), &actor, command, None)
            .await
            .unwrap();
    }
    id
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get_json(&format!("/v1/deliveries{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

async fn wait_until<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    let start = std::time::Instant::now();
    while !f().await {
        assert!(start.elapsed() < WAIT, "condition not met within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_registered_endpoint_gets_signed_case_messages_and_its_secret_is_shown_once() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    let (id, secret) = register(&app, &receiver, "ops", json!({})).await;
    assert!(secret.starts_with("whsec_"));

    let (status, listed) = app.get_json("/v1/webhooks").await;
    assert_eq!(status, 200);
    assert_eq!(listed["webhooks"][0]["id"], json!(id));
    assert_eq!(listed["webhooks"][0]["enabled"], json!(true));
    assert!(listed["webhooks"][0].get("secret").is_none());
    let (_, one) = app.get_json(&format!("/v1/webhooks/{id}")).await;
    assert!(one.get("secret").is_none());
    assert!(!listed.to_string().contains(&secret[6..]));

    let case = open_case(&app).await;
    let got = receiver.wait_for("ops", 1, WAIT).await;
    let m = &got[0];
    assert_eq!(
        m.verified,
        vec![true],
        "the signature verifies with the secret"
    );
    assert!(m.id.starts_with("msg_"));
    assert!(
        m.user_agent.starts_with("aupd-webhooks/"),
        "{}",
        m.user_agent
    );
    assert_eq!(m.content_type, "application/json");
    assert_eq!(m.body["type"], json!("case.opened"));
    assert_eq!(m.body["id"], json!(m.id));
    assert_eq!(m.body["dry_run"], json!(false));
    assert_eq!(m.body["tenant"], json!("parlor"));
    assert_eq!(m.body["data"]["version"], json!(1));
    assert_eq!(m.body["data"]["case_id"], json!(case.to_string()));
    assert_eq!(
        m.body["idempotency_key"],
        json!(format!("{case}:case.opened:v1"))
    );

    // The receiver answers before the dispatcher records the outcome: wait
    // for the record rather than read it at once.
    wait_until(|| async { deliveries(&app, "?status=delivered").await.len() == 1 }).await;
    let delivered = deliveries(&app, "?status=delivered").await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["message_id"], json!(m.id));
    assert_eq!(delivered[0]["attempts"][0]["status"], json!(204));
}

#[tokio::test]
async fn bad_registrations_get_clear_errors_and_change_nothing() {
    let app = webhook_app(|_| {}).await;
    let cases = [
        (
            json!({ "url": "ftp://example.com/hook" }),
            json!({ "code": "invalid_url", "message": "`ftp://example.com/hook`: scheme `ftp` is not allowed (only http and https)" }),
        ),
        (
            json!({ "url": "https://user:pw@example.com/hook" }),
            json!({ "code": "invalid_url", "message": "`https://user:pw@example.com/hook`: URLs with credentials are not allowed" }),
        ),
        (
            json!({ "url": "http://169.254.169.254/latest" }),
            json!({ "code": "invalid_url", "message": "`http://169.254.169.254/latest`: 169.254.169.254 is a cloud metadata address" }),
        ),
        (
            json!({ "url": "https://example.com/hook", "event_types": ["case.exploded"] }),
            json!({ "code": "invalid_event_type", "message": "unknown event type `case.exploded`; known: case.opened, case.notice_sent, case.deadline_approaching, case.deadline_missed, suspension.proposed, suspension.approved, enforcement.suspend, enforcement.reinstate, case.closed, webhook.test" }),
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = app.post("/v1/webhooks", &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error, expected);
    }
    let (_, listed) = app.get_json("/v1/webhooks").await;
    assert_eq!(listed, json!({ "webhooks": [] }));
    let (status, error) = app.get_json("/v1/webhooks/ep_nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        error,
        json!({ "code": "not_found", "message": "webhook endpoint not found" })
    );
    let r = app
        .anonymous()
        .post(format!("{}/v1/webhooks", app.base))
        .json(&json!({ "url": "https://example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_old_one_during_the_overlap() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    let (id, old) = register(&app, &receiver, "rot", json!({})).await;
    let (status, rotated) = app
        .post(&format!("/v1/webhooks/{id}/rotate"), &json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_valid_until"].is_string());
    receiver.trust("rot", &[&old, &new]);

    let (status, sent) = app
        .post(&format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for("rot", 1, WAIT).await;
    assert_eq!(got[0].id, sent["message_id"].as_str().unwrap());
    assert_eq!(got[0].signature.split(' ').count(), 2);
    assert_eq!(
        got[0].verified,
        vec![true, true],
        "old and new secret both verify"
    );
    assert_eq!(got[0].body["type"], json!("webhook.test"));
}

#[tokio::test]
async fn a_receiver_failing_three_times_gets_the_message_on_the_fourth_attempt_with_the_same_id() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.behave(
        "flaky",
        Behavior {
            fail_first: 3,
            ..Behavior::default()
        },
    );
    let (id, _) = register(&app, &receiver, "flaky", json!({})).await;
    app.post(&format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    receiver.wait_for("flaky", 1, WAIT).await;
    let all = receiver.received("flaky");
    assert_eq!(all.len(), 4);
    assert!(
        all.iter().all(|r| r.id == all[0].id),
        "one webhook-id across retries"
    );
    assert!(all.iter().all(|r| r.verified == vec![true]));
    wait_until(|| async { deliveries(&app, "?status=delivered").await.len() == 1 }).await;
    let d = &deliveries(&app, "").await[0];
    let statuses: Vec<Value> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![json!(500), json!(500), json!(500), json!(204)]
    );
    assert_eq!(d["attempts"][0]["error"], json!("HTTP 500"));
    assert!(d["attempts"][0]["latency_ms"].is_u64());
}

#[tokio::test]
async fn retry_after_on_a_429_is_honoured() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.behave(
        "busy",
        Behavior {
            fail_first: 1,
            fail_status: 429,
            retry_after: Some(1),
            ..Behavior::default()
        },
    );
    let (id, _) = register(&app, &receiver, "busy", json!({})).await;
    app.post(&format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    receiver.wait_for("busy", 1, WAIT).await;
    let all = receiver.received("busy");
    assert_eq!(all.len(), 2);
    let gap = all[1].at.duration_since(all[0].at);
    // The scaled schedule alone would retry after microseconds.
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
}

#[tokio::test]
async fn an_endpoint_answering_410_is_disabled_and_raises_an_alert() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.behave(
        "gone",
        Behavior {
            fail_first: usize::MAX,
            fail_status: 410,
            ..Behavior::default()
        },
    );
    let (id, _) = register(&app, &receiver, "gone", json!({})).await;
    app.post(&format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    wait_until(|| async {
        app.get_json(&format!("/v1/webhooks/{id}")).await.1["enabled"] == json!(false)
    })
    .await;
    let (_, e) = app.get_json(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(
        e["disabled_reason"],
        json!("the endpoint answered 410 Gone")
    );
    assert_eq!(receiver.received("gone").len(), 1, "no retry after a 410");
    let dead = deliveries(&app, "?status=dead").await;
    assert_eq!(dead.len(), 1);
    let (_, alerts) = app.get_json("/v1/alerts").await;
    assert_eq!(alerts["alerts"][0]["kind"], json!("endpoint_disabled"));
    assert_eq!(alerts["alerts"][0]["subject"], json!(id));
    let (status, error) = app
        .post(&format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        error,
        json!({ "code": "endpoint_disabled", "message": "the endpoint is disabled; enable it first" })
    );
}

#[tokio::test]
async fn an_endpoint_failing_longer_than_the_span_is_disabled() {
    let app = webhook_app(|s| {
        s.delivery.retry_scale = 0.0002;
        s.delivery.disable_after_failing_secs = 1;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.behave(
        "down",
        Behavior {
            fail_first: usize::MAX,
            ..Behavior::default()
        },
    );
    let (id, _) = register(&app, &receiver, "down", json!({})).await;
    app.post(&format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    wait_until(|| async {
        app.get_json(&format!("/v1/webhooks/{id}")).await.1["enabled"] == json!(false)
    })
    .await;
    let (_, e) = app.get_json(&format!("/v1/webhooks/{id}")).await;
    assert!(e["failing_since"].is_string());
    assert!(
        e["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("longer than 1s"),
        "{e}"
    );
}

#[tokio::test]
async fn a_message_out_of_attempts_is_dead_keeps_every_attempt_and_can_be_replayed() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.behave(
        "dl",
        Behavior {
            fail_first: 16,
            fail_status: 503,
            ..Behavior::default()
        },
    );
    let (id, _) = register(&app, &receiver, "dl", json!({})).await;
    app.post(&format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    app.post(&format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    wait_until(|| async {
        deliveries(&app, &format!("?status=dead&endpoint={id}"))
            .await
            .len()
            == 2
    })
    .await;
    let dead = deliveries(&app, "?status=dead").await;
    assert_eq!(dead[0]["attempts"].as_array().unwrap().len(), 8);
    assert_eq!(dead[0]["attempts"][7]["status"], json!(503));
    assert_eq!(receiver.received("dl").len(), 16);

    // One by one: the same webhook-id arrives.
    let first = dead[0]["id"].as_str().unwrap();
    let (status, replayed) = app
        .post(&format!("/v1/deliveries/{first}/replay"), &json!({}))
        .await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["status"], json!("pending"));
    let got = receiver.wait_for("dl", 1, WAIT).await;
    assert_eq!(got[0].id, dead[0]["message_id"].as_str().unwrap());
    // In bulk: the rest.
    let (status, bulk) = app
        .post(
            "/v1/deliveries/replay",
            &json!({ "status": "dead", "endpoint": id }),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(bulk, json!({ "replayed": 1 }));
    receiver.wait_for("dl", 2, WAIT).await;
    wait_until(|| async { deliveries(&app, "?status=delivered").await.len() == 2 }).await;
    let (status, error) = app.post("/v1/deliveries/dlv_nope/replay", &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(
        error,
        json!({ "code": "not_found", "message": "delivery not found" })
    );
    let (status, error) = app.get_json("/v1/deliveries?status=lost").await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], json!("invalid_query"));
}

#[tokio::test]
async fn a_slow_endpoint_does_not_hold_up_a_fast_one() {
    let app = webhook_app(|s| s.delivery.per_endpoint_concurrency = 2).await;
    let receiver = Receiver::start().await;
    receiver.behave(
        "slow",
        Behavior {
            delay: Duration::from_secs(2),
            ..Behavior::default()
        },
    );
    let (slow, _) = register(&app, &receiver, "slow", json!({})).await;
    let (fast, _) = register(&app, &receiver, "fast", json!({})).await;
    for _ in 0..10 {
        app.post(&format!("/v1/webhooks/{slow}/test"), &json!({}))
            .await;
    }
    for _ in 0..10 {
        app.post(&format!("/v1/webhooks/{fast}/test"), &json!({}))
            .await;
    }
    receiver.wait_for("fast", 10, WAIT).await;
    assert!(
        receiver.received("slow").len() <= 4,
        "the fast endpoint got all ten while the slow one had answered only a few"
    );
}

/// On PostgreSQL every replica sends, and `per_endpoint_concurrency` caps
/// an endpoint for the whole cluster: the replicas that send share it.
#[tokio::test]
async fn replicas_share_an_endpoints_concurrency_cap() {
    if common::test_database_admin().is_none() {
        // sled serves one process: its sender has the whole cap at once
        // and writes no beats.
        let app = webhook_app(|_| {}).await;
        let receiver = Receiver::start().await;
        let (id, _) = register(&app, &receiver, "one", json!({})).await;
        app.post(&format!("/v1/webhooks/{id}/test"), &json!({}))
            .await;
        receiver.wait_for("one", 1, WAIT).await;
        let dir = app.stop().await;
        let store = common::open_test_store(&dir.path().join("store"));
        assert!(aupd::store::delivery::senders(store.as_ref())
            .unwrap()
            .is_empty());
        return;
    }
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let cap = |s: &mut aupd::config::Settings| s.delivery.per_endpoint_concurrency = 2;
    let a = restart_webhook_app(dir.clone(), cap).await;
    let b = restart_webhook_app(dir.clone(), cap).await;
    let store = common::open_test_store(&dir.path().join("store"));
    // Both senders have beaten once. Neither sends before its second beat,
    // a second on, by when it has counted the other and the other it.
    wait_until(|| async {
        aupd::store::delivery::senders(store.as_ref())
            .unwrap()
            .len()
            == 2
    })
    .await;

    let receiver = Receiver::start().await;
    receiver.behave(
        "slow",
        Behavior {
            delay: Duration::from_millis(300),
            ..Behavior::default()
        },
    );
    let (slow, _) = register(&a, &receiver, "slow", json!({})).await;
    for _ in 0..16 {
        a.post(&format!("/v1/webhooks/{slow}/test"), &json!({}))
            .await;
    }
    let got = receiver.wait_for("slow", 16, WAIT).await;
    let senders: std::collections::BTreeSet<_> = deliveries(&a, "")
        .await
        .iter()
        .flat_map(|d| d["attempts"].as_array().unwrap().clone())
        .filter_map(|x| x["sender"].as_str().map(str::to_string))
        .collect();
    assert_eq!(got.len(), 16);
    assert_eq!(senders.len(), 2, "both replicas sent: {senders:?}");
    // Each replica alone allows two; together they keep to two.
    let most = receiver.most_at_once("slow");
    assert!((1..=2).contains(&most), "{most} at once");

    // A replica that stops takes its beat with it: the other takes up the
    // whole cap at its next beat.
    b.stop().await;
    wait_until(|| async {
        aupd::store::delivery::senders(store.as_ref())
            .unwrap()
            .len()
            == 1
    })
    .await;
}

#[tokio::test]
async fn an_executed_receipt_suspends_the_case_once_and_dry_run_marks_the_order() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    register(
        &app,
        &receiver,
        "executor",
        json!({ "event_types": ["enforcement.suspend"], "dry_run": true }),
    )
    .await;
    let case = order_suspension(&app).await;
    let got = receiver.wait_for("executor", 1, WAIT).await;
    let order = &got[0].body;
    assert_eq!(order["type"], json!("enforcement.suspend"));
    assert_eq!(order["dry_run"], json!(true));
    assert_eq!(order["data"]["scope"], json!({ "kind": "tenant" }));
    let key = order["idempotency_key"].as_str().unwrap().to_string();
    // The deliveries of this case, and none of another.
    let (status, mine) = app.get_json(&format!("/v1/deliveries?case={case}")).await;
    assert_eq!(status, 200, "{mine}");
    let mine = mine["deliveries"].as_array().unwrap();
    assert!(
        !mine.is_empty()
            && mine
                .iter()
                .all(|d| d["event_type"] == json!("enforcement.suspend")),
        "{mine:?}"
    );
    let (_, other) = app
        .get_json("/v1/deliveries?case=01a20000-0000-7000-8000-000000000000")
        .await;
    assert_eq!(other["deliveries"], json!([]));

    let receipt = json!({ "outcome": "executed", "details": { "ticket": "OPS-1" } });
    let (status, first) = app
        .post(&format!("/v1/actions/{key}/receipt"), &receipt)
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["case_state"], json!("suspended"));
    assert_eq!(first["case_id"], json!(case.to_string()));
    // The suspension and the receipt were committed together: their events
    // sit next to each other in the log, with the commit's one timestamp.
    let suspended = app.events("case.suspended").await;
    let recorded = app.events("action.receipt_recorded").await;
    assert_eq!((suspended.len(), recorded.len()), (1, 1));
    assert_eq!(
        recorded[0]["seq"].as_u64().unwrap(),
        suspended[0]["seq"].as_u64().unwrap() + 1,
        "{suspended:?} {recorded:?}"
    );
    assert_eq!(recorded[0]["at"], suspended[0]["at"]);
    let (status, again) = app
        .post(&format!("/v1/actions/{key}/receipt"), &receipt)
        .await;
    assert_eq!(status, 200);
    assert_eq!(again, first, "a repeated receipt gets the same answer");
    let c = app.cases.get(&case).await.unwrap().unwrap();
    assert_eq!(c.state.as_str(), "suspended");
    assert_eq!(c.version, 5, "the repeat changed nothing");

    let (status, error) = app
        .post(
            &format!("/v1/actions/{key}/receipt"),
            &json!({ "outcome": "failed" }),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        error,
        json!({ "code": "receipt_conflict", "message": "a receipt with outcome `executed` was already recorded for this action" })
    );
    let (status, error) = app
        .post(
            "/v1/actions/nobody:enforcement.suspend:v1/receipt",
            &receipt,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        error,
        json!({ "code": "not_found", "message": "action not found" })
    );
    let (status, error) = app
        .post(
            &format!("/v1/actions/{key}/receipt"),
            &json!({ "outcome": "done" }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], json!("invalid_body"));
}

#[tokio::test]
async fn a_failed_receipt_is_recorded_raises_an_alert_and_leaves_the_order_standing() {
    let app = webhook_app(|s| s.delivery.dry_run = true).await;
    let receiver = Receiver::start().await;
    register(
        &app,
        &receiver,
        "executor",
        json!({ "event_types": ["enforcement.suspend"] }),
    )
    .await;
    let case = order_suspension(&app).await;
    let got = receiver.wait_for("executor", 1, WAIT).await;
    assert_eq!(
        got[0].body["dry_run"],
        json!(true),
        "the global switch marks orders"
    );
    let key = got[0].body["idempotency_key"].as_str().unwrap().to_string();
    let (status, body) = app
        .post(
            &format!("/v1/actions/{key}/receipt"),
            &json!({ "outcome": "failed", "details": { "error": "tenant locked" } }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["case_state"], json!("suspension_ordered"));
    let (_, alerts) = app.get_json("/v1/alerts").await;
    assert_eq!(alerts["alerts"][0]["kind"], json!("receipt_failed"));
    assert_eq!(alerts["alerts"][0]["subject"], json!(case.to_string()));
}

#[tokio::test]
async fn an_order_without_a_receipt_in_time_raises_a_receipt_overdue_alert() {
    let app = webhook_app(|s| {
        s.enforcement.tick_ms = 20;
        // A private copy of the policy: this test shortens its receipt timeout.
        let dir = tempfile::tempdir().unwrap().keep().join("policies");
        common::copy_dir(&common::shipped_policies(), &dir);
        s.policy.dir = dir;
        let ladders = s.policy.dir.join("escalation/ladders.toml");
        let text = std::fs::read_to_string(&ladders).unwrap();
        std::fs::write(
            &ladders,
            text.replace("receipt_timeout = \"1h\"", "receipt_timeout = \"1s\""),
        )
        .unwrap();
    })
    .await;
    let case = order_suspension(&app).await;
    wait_until(|| async {
        let (_, alerts) = app.get_json("/v1/alerts").await;
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == json!("receipt_overdue"))
    })
    .await;
    let (_, alerts) = app.get_json("/v1/alerts").await;
    assert_eq!(alerts["alerts"][0]["subject"], json!(case.to_string()));
}

#[tokio::test]
async fn a_reinstatement_after_a_receipt_orders_the_suspension_lifted() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    register(
        &app,
        &receiver,
        "executor",
        json!({ "event_types": ["enforcement.suspend", "enforcement.reinstate"] }),
    )
    .await;
    let case = order_suspension(&app).await;
    let got = receiver.wait_for("executor", 1, WAIT).await;
    let key = got[0].body["idempotency_key"].as_str().unwrap().to_string();
    let (status, _) = app
        .post(
            &format!("/v1/actions/{key}/receipt"),
            &json!({ "outcome": "executed" }),
        )
        .await;
    assert_eq!(status, 200);
    app.cases
        .execute(
            Some(&case),
            &operator(),
            Command::Reinstate {
                reason: "appeal upheld".into(),
            },
            None,
        )
        .await
        .unwrap();
    let got = receiver.wait_for("executor", 2, WAIT).await;
    let lift = &got[1].body;
    assert_eq!(lift["type"], json!("enforcement.reinstate"));
    assert_eq!(lift["data"]["scope"], json!({ "kind": "tenant" }));
    assert_eq!(lift["data"]["reason"], json!("appeal upheld"));
    let key = lift["idempotency_key"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/v1/actions/{key}/receipt"),
            &json!({ "outcome": "executed" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["case_state"], json!("reinstated"));
}

#[tokio::test]
async fn an_operator_changes_and_removes_an_endpoint() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    let (id, _) = register(&app, &receiver, "ops", json!({})).await;
    let patch = |body: Value| {
        let app = &app;
        let id = id.clone();
        async move {
            let r = app
                .client
                .patch(format!("{}/v1/webhooks/{id}", app.base))
                .bearer_auth(common::ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, error) = patch(json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        json!({ "code": "empty_patch", "message": "give at least one field to change" })
    );
    let (status, changed) =
        patch(json!({ "event_types": ["case.closed"], "enabled": false })).await;
    assert_eq!(status, 200);
    assert_eq!(changed["event_types"], json!(["case.closed"]));
    assert_eq!(changed["enabled"], json!(false));
    assert!(changed.get("secret").is_none());
    open_case(&app).await;
    let r = app
        .client
        .delete(format!("{}/v1/webhooks/{id}", app.base))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, _) = app.get_json(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(status, 404);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        receiver.received("ops").is_empty(),
        "a disabled endpoint gets nothing"
    );
}

/// The raw endpoint records in a stopped app's store, as on disk (read past
/// the repositories on purpose: the test is about what is at rest).
fn stored_endpoints(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let store = common::open_test_store(&dir.join("store"));
    aupd::store::tamper::records(&store, "endpoints")
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

#[tokio::test]
async fn signing_secrets_are_sealed_at_rest_and_sign_only_with_their_key() {
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    let (_, secret) = register(&app, &receiver, "ops", json!({})).await;
    let dir = app.stop().await;

    // On disk: sealed, never the secret; the key beside the store, owner-only.
    let records = stored_endpoints(dir.path());
    assert_eq!(records.len(), 1);
    let raw = String::from_utf8_lossy(&records[0]);
    assert!(raw.contains("sealed:v1:"), "{raw}");
    assert!(
        !raw.contains(&secret[6..]),
        "the secret is on disk in plain text"
    );
    let key_file = dir.path().join("store").join("webhook-secrets.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Restarted with the same key file: it still signs.
    let app = restart_webhook_app(dir, |_| {}).await;
    open_case(&app).await;
    let got = receiver.wait_for("ops", 1, WAIT).await;
    assert_eq!(got[0].verified, vec![true]);
    let dir = app.stop().await;

    // On PostgreSQL, replicas share the store and so must share the key:
    // a process with another key is refused at start, naming the setting.
    if common::test_database_admin().is_some() {
        let mut s = aupd::config::Settings::default();
        webhook_settings(&mut s);
        s.server.bind = "127.0.0.1:0".into();
        s.policy.dir = common::shipped_policies();
        common::use_test_store(&mut s, &dir.path().join("store"));
        s.delivery.secret_key = Some(aupd::config::Secret::new("ab".repeat(32)));
        let refused = aupd::app::Application::build(&s).err().expect("refused");
        assert!(
            format!("{refused:#}").contains("delivery.secret_key"),
            "{refused:#}"
        );
        return;
    }

    // With another key the secret does not open: the delivery fails and
    // says why, and nothing is sent unsigned.
    let app = restart_webhook_app(dir, |s| {
        s.delivery.secret_key = Some(aupd::config::Secret::new("ab".repeat(32)));
    })
    .await;
    open_case(&app).await;
    wait_until(|| async {
        deliveries(&app, "").await.iter().any(|d| {
            d["attempts"].as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["error"].as_str().is_some_and(|e| {
                        e.starts_with("signing secret: the stored secret does not open")
                    })
                })
            })
        })
    })
    .await;
    assert_eq!(
        receiver.received("ops").len(),
        1,
        "only the delivery signed with the right key arrived"
    );
}

#[tokio::test]
async fn a_plain_secret_left_by_an_older_store_is_sealed_at_start_and_still_signs() {
    use aupd::domain::{Endpoint, SecretText};
    use aupd::store::meta::{self, Upgrade};
    use aupd::store::Batch;
    let app = webhook_app(|_| {}).await;
    let receiver = Receiver::start().await;
    let (id, secret) = register(&app, &receiver, "ops", json!({})).await;
    let dir = app.stop().await;
    {
        // What an aupd from before sealing wrote: a plain secret, and no
        // mark that the store's secrets were sealed.
        let store = common::open_test_store(&dir.path().join("store"));
        let mut e: Endpoint = store.endpoint(&id).unwrap().unwrap();
        e.secret = SecretText(secret.clone());
        let mut batch = Batch::new();
        batch.put(&e).unwrap();
        store.commit(batch).unwrap();
        meta::forget_upgrade(&store, Upgrade::WebhookSecretsSealed).unwrap();
    }
    assert!(String::from_utf8_lossy(&stored_endpoints(dir.path())[0]).contains(&secret[6..]));

    let app = restart_webhook_app(dir, |_| {}).await;
    open_case(&app).await;
    let got = receiver.wait_for("ops", 1, WAIT).await;
    assert_eq!(got[0].verified, vec![true]);
    let dir = app.stop().await;
    let raw = String::from_utf8_lossy(&stored_endpoints(dir.path())[0]).into_owned();
    assert!(
        raw.contains("sealed:v1:") && !raw.contains(&secret[6..]),
        "{raw}"
    );
}
