//! What the API shows about enforcement as it happens: the tenant's status
//! follows its suspension and reinstatement, an order takes its receipt
//! from the commit that orders it, and every documented metric is exported
//! once a webhook has been delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aupd::domain::{
    Actor, ActorKind, CaseId, Command, EvidenceKind, EvidenceRef, Severity, SuspensionScope,
    TenantId,
};
use common::receiver::Receiver;
use common::{eventually, spawn_app_with, violating, FakeSite, Options, TestApp};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn operator() -> Actor {
    Actor::new(ActorKind::Operator, "olga")
}

async fn app(dispatch: bool) -> TestApp {
    spawn_app_with(Options {
        configure: Box::new(move |s| {
            s.sampling.enabled = false;
            s.delivery.enabled = dispatch;
            s.delivery.allow_cidrs = vec!["127.0.0.0/8".into()];
            s.delivery.retry_scale = 0.00001;
            s.delivery.poll_ms = 20;
        }),
        ..Options::default()
    })
    .await
}

/// Opens a case against `parlor` and drives it to `suspension_ordered`
/// through the command path; returns it and the order's idempotency key.
async fn order_suspension(app: &TestApp) -> (CaseId, String) {
    let id = CaseId::new();
    let open = Command::Open {
        case_id: id,
        tenant: TenantId::try_from("parlor").unwrap(),
        categories: vec!["harassment".into()],
        severity: Severity::Low,
        evidence: vec![EvidenceRef {
            kind: EvidenceKind::Report {
                report_id: "rep_1".into(),
            },
            category: "harassment".into(),
            url: None,
            policy_version: None,
        }],
        report: None,
    };
    app.cases
        .execute(None, &operator(), open, None)
        .await
        .unwrap();
    let steps = [
        (
            operator(),
            Command::Escalate {
                reason: "repeated".into(),
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
    let mut key = None;
    for (actor, command) in steps {
        let t = app
            .cases
            .execute(Some(&id), &actor, command, None)
            .await
            .unwrap();
        if let Some(m) = t
            .outbox
            .iter()
            .find(|m| m.event_type == "enforcement.suspend")
        {
            key = Some(m.idempotency_key.clone());
        }
    }
    (id, key.expect("the approval ordered the suspension"))
}

#[tokio::test]
async fn an_ordered_suspension_takes_its_receipt_before_the_order_is_sent() {
    // No dispatcher: the order is committed and never sent.
    let app = app(false).await;
    app.create_tenant("parlor", "standard").await;
    let (case, key) = order_suspension(&app).await;
    let (status, body) = app
        .post(
            &format!("/v1/actions/{key}/receipt"),
            &json!({"outcome": "executed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["case_state"], json!("suspended"));
    assert_eq!(body["case_id"], json!(case.to_string()));
}

#[tokio::test]
async fn a_tenant_shows_the_suspension_of_its_case_and_is_active_again_after_reinstatement() {
    let app = app(false).await;
    let created = app.create_tenant("parlor", "standard").await;
    assert_eq!(created["status"], json!("active"));
    let (case, key) = order_suspension(&app).await;
    let (_, tenant) = app.get("/v1/tenants/parlor").await;
    assert_eq!(
        tenant["status"],
        json!("active"),
        "ordered is not yet suspended"
    );

    let (status, _) = app
        .post(
            &format!("/v1/actions/{key}/receipt"),
            &json!({"outcome": "executed"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, tenant) = app.get("/v1/tenants/parlor").await;
    assert_eq!(tenant["status"], json!("suspended"), "{tenant}");
    assert_eq!(tenant["enforcement"]["case"], json!(case.to_string()));
    assert_eq!(tenant["enforcement"]["state"], json!("suspended"));
    // The operator cannot lift it by editing the tenant: only the case can.
    let (status, body) = app
        .send(
            reqwest::Method::PATCH,
            "/v1/tenants/parlor",
            &json!({"status": "active"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"code": "tenant_suspended", "message": format!("the tenant is suspended by case {case}; reinstate it through that case")})
        )
    );

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
    let (_, tenant) = app.get("/v1/tenants/parlor").await;
    assert_eq!(tenant["status"], json!("active"), "{tenant}");
    assert_eq!(tenant["enforcement"]["case"], json!(case.to_string()));
    assert_eq!(tenant["enforcement"]["state"], json!("reinstated"));
    let (_, list) = app.get("/v1/tenants").await;
    assert_eq!(list["tenants"][0]["status"], json!("active"));
}

/// Every metric name in the table of docs/configuration.md.
fn documented_metrics() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    let names: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `aupd_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("aupd_{n}"))
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    names
}

#[tokio::test]
async fn every_metric_the_docs_name_is_exported_after_a_delivery() {
    let app = spawn_app_with(Options {
        configure: Box::new(|s| {
            s.sampling.intake_sample_rate = 1.0;
            s.delivery.allow_cidrs = vec!["127.0.0.0/8".into()];
            s.delivery.poll_ms = 20;
        }),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    let (status, created) = app
        .post(
            "/v1/webhooks",
            &json!({"url": receiver.url("orch"), "description": "orchestrator"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    receiver.trust("orch", &[created["secret"].as_str().unwrap()]);
    app.create_tenant("parlor", "standard").await;
    // A source the sampler visits, and pushed posts that open a case.
    let site = FakeSite::start(vec![violating(1)], Duration::ZERO).await;
    app.create_source(
        "parlor",
        json!({"kind": "json_feed", "url": format!("{}/posts.json", site.base), "budget_per_hour": 10,
               "interval_secs": 3600, "items_pointer": "/data/posts", "text_pointer": "/body"}),
    )
    .await;
    let items: Vec<Value> = (0..5).map(|i| json!({"text": violating(i)})).collect();
    let (status, body) = app
        .post("/v1/tenants/parlor/content", &json!({"items": items}))
        .await;
    assert_eq!(status, 200, "{body}");
    receiver.wait_for("orch", 1, WAIT).await;

    let text = eventually("every documented metric", || async {
        let text = app
            .anonymous()
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let delivered = text
            .lines()
            .any(|l| l.starts_with("aupd_webhook_delivery_attempts_total{outcome=\"delivered\"}"));
        let fetched = text.contains("aupd_source_fetches_total{");
        (delivered && fetched).then_some(text)
    })
    .await;
    let missing: Vec<String> = documented_metrics()
        .into_iter()
        .filter(|name| {
            !text
                .lines()
                .any(|l| l.starts_with(&format!("# TYPE {name} ")))
        })
        .collect();
    assert_eq!(missing, Vec::<String>::new(), "not exported:\n{text}");
}
