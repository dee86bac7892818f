//! What the API shows about enforcement as it happens: the tenant's status
//! follows its suspension and reinstatement, an order takes its receipt
//! from the commit that orders it, and every documented metric is exported
//! once a webhook has been delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aupd::domain::{
    Actor, ActorKind, CaseId, Command, EvidenceKind, EvidenceRef, Severity, SuspensionScope,
    TenantId,
};
use common::{spawn_app_with, Options, TestApp};
use serde_json::json;

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
