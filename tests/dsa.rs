//! Statements of reasons and transparency counts over real HTTP: a case
//! taken from sampled evidence through its notice, a missed deadline and a
//! suspension; the tenant reads its statements and another tenant cannot;
//! the webhooks carry them; every export validates against the schema kept
//! in `docs/dsa/`; the counts match what was done.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use aupd::clock::{Clock, ManualClock};
use common::receiver::Receiver;
use common::{case_from_evidence, eventually, spawn_app_with, wait_for_state, Options, TestApp};
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{json, Value};

fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        configure: Box::new(|s| {
            s.enforcement.tick_ms = 20;
            s.sampling.intake_sample_rate = 1.0;
            s.delivery.allow_cidrs = vec!["127.0.0.0/8".into()];
            s.delivery.retry_scale = 0.00001;
            s.delivery.poll_ms = 20;
        }),
        clock: Some(clock.clone()),
        ..Options::default()
    }
}

async fn act(app: &TestApp, token: &str, id: &str, body: Value) -> Value {
    let (status, body) = app
        .call_as(
            token,
            Method::POST,
            &format!("/v1/cases/{id}/actions"),
            Some(&body),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/dsa/statement-submission.schema.json"
    ))
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// The case's export, each statement checked against the schema.
async fn export_validates(app: &TestApp, id: &str, schema: &jsonschema::Validator) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/v1/cases/{id}/statements?format=transparency-db"))
        .await;
    assert_eq!(status, 200, "{body}");
    let statements = body["statements"].as_array().unwrap().clone();
    for s in &statements {
        let errors: Vec<String> = schema.iter_errors(s).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?} in {s}");
    }
    statements
}

#[tokio::test]
async fn a_case_through_notice_deadline_and_suspension_gives_the_tenant_its_statements() {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let started = clock.now();
    let app = spawn_app_with(options(&clock)).await;
    let receiver = Receiver::start().await;
    let (status, created) = app
        .post(
            "/v1/webhooks",
            &json!({"url": receiver.url("exec"), "description": "executor"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    receiver.trust("exec", &[created["secret"].as_str().unwrap()]);
    app.create_tenant("parlor", "standard").await;
    app.create_tenant("forum", "standard").await;
    let olivia = app.token("operator", "olivia").await;
    let alice = app.token("approver", "alice").await;
    let bob = app.token("approver", "bob").await;
    let carol = app.token("approver", "carol").await;
    let rita = app.token("reporter", "rita").await;
    let parlor = app.token("tenant:parlor", "parlor dashboard").await;
    let forum = app.token("tenant:forum", "forum dashboard").await;

    // A notice: rita reports forum; olivia notices it ten minutes later.
    let (status, report) = app
        .call_as(
            &rita,
            Method::POST,
            "/v1/reports",
            Some(&json!({
                "tenant": "forum", "category": "violent-incitement",
                "urls": ["https://forum.example/p/1"], "description": "calls to storm the town hall"
            })),
        )
        .await;
    assert_eq!(status, 202, "{report}");
    let forum_case = report["case"].as_str().unwrap().to_string();
    clock.advance(SignedDuration::from_mins(10));
    act(
        &app,
        &olivia,
        &forum_case,
        json!({"action": "send_notice", "reason": "report confirmed"}),
    )
    .await;

    // Own initiative: sampled evidence opens parlor's case and notices it at once.
    let id = case_from_evidence(&app, "parlor").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for_state(&app, &id, "noticed").await;
    clock.advance(SignedDuration::from_mins(61));
    wait_for_state(&app, &id, "suspension_proposed").await;
    act(
        &app,
        &alice,
        &id,
        json!({"action": "approve_suspension", "reason": "clear"}),
    )
    .await;
    let ordered = act(
        &app,
        &bob,
        &id,
        json!({"action": "approve_suspension", "reason": "agree"}),
    )
    .await;
    assert_eq!(ordered["case"]["state"], "suspension_ordered");

    // The tenant lists its statements, newest first: the suspension, then the notice.
    let (status, mine) = app
        .call_as(&parlor, Method::GET, "/v1/tenant/statements", None)
        .await;
    assert_eq!(status, 200, "{mine}");
    let mine = mine["statements"].as_array().unwrap().clone();
    let kinds: Vec<&str> = mine
        .iter()
        .map(|s| s["restriction"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["suspension", "removal_notice"]);
    let notice = &mine[1];
    assert_eq!(notice["case_id"], id.as_str());
    assert_eq!(notice["facts"]["source"], "own_initiative");
    assert!(
        notice["facts"]["findings"].as_u64().unwrap() > 0,
        "{notice}"
    );
    assert_eq!(notice["automation"]["detected_automatically"], true);
    assert_eq!(notice["automation"]["decided_automatically"], true);
    assert_eq!(notice["grounds"][0]["category"], "violent-incitement");
    assert_eq!(notice["grounds"][0]["title"], "Incitement to violence");
    assert!(
        notice["grounds"][0]["clause"].as_str().unwrap().len() > 20,
        "{notice}"
    );
    assert_eq!(
        notice["grounds"][0]["policy_version"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(notice["decision"]["deadline"].is_string(), "{notice}");
    assert_eq!(
        notice["redress"]["appeal_route"],
        format!("POST /v1/tenant/cases/{id}/appeal")
    );
    let suspension = &mine[0];
    assert_eq!(suspension["automation"]["decided_by"], "approvers");
    assert_eq!(suspension["automation"]["approvals"], 2);
    assert_eq!(
        suspension["decision"]["duration"],
        "indefinite: until reinstated (on appeal or by the abuse team)"
    );
    // The tenant's view of the case carries the same statements, oldest first.
    let (status, view) = app
        .call_as(
            &parlor,
            Method::GET,
            &format!("/v1/tenant/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    let on_case = view["statements"].as_array().unwrap();
    assert_eq!(on_case.len(), 2, "{view}");
    assert_eq!(&on_case[0], notice);
    assert_eq!(&on_case[1], suspension);
    // Names of approvers and reporters stay internal.
    let text = serde_json::to_string(&mine).unwrap();
    assert!(!text.contains("alice") && !text.contains("bob"), "{text}");

    // One statement by id; another tenant gets 404 for it and sees only its own.
    let sid = suspension["id"].as_str().unwrap();
    let (status, one) = app
        .call_as(
            &parlor,
            Method::GET,
            &format!("/v1/tenant/statements/{sid}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(&one, suspension);
    let (status, body) = app
        .call_as(
            &forum,
            Method::GET,
            &format!("/v1/tenant/statements/{sid}"),
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "statement not found"})
        )
    );
    let (_, theirs) = app
        .call_as(&forum, Method::GET, "/v1/tenant/statements", None)
        .await;
    let theirs = theirs["statements"].as_array().unwrap();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["case_id"], forum_case.as_str());
    assert_eq!(theirs[0]["facts"]["source"], "employee_report");
    // Operators' routes are not the tenant's.
    let (status, _) = app
        .call_as(
            &forum,
            Method::GET,
            &format!("/v1/cases/{id}/statements"),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // The webhooks that announce the restrictions carry the same statements.
    let got = eventually("the suspension order delivered", || async {
        let got = receiver.received("exec");
        got.iter()
            .any(|m| m.body["type"] == "enforcement.suspend")
            .then_some(got)
    })
    .await;
    let order = got
        .iter()
        .find(|m| m.body["type"] == "enforcement.suspend")
        .unwrap();
    assert_eq!(&order.body["data"]["statement"], suspension);
    assert_eq!(order.body["data"]["case_id"], id.as_str());
    assert!(order.body["data"]["approvers"].is_array(), "{}", order.body);
    let notices: Vec<&Value> = got
        .iter()
        .filter(|m| {
            m.body["type"] == "case.notice_sent" && m.body["data"]["case_id"] == id.as_str()
        })
        .map(|m| &m.body["data"])
        .collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(&notices[0]["statement"], notice);
    assert!(notices[0]["due_at"].is_string());

    // Every export validates against the schema derived from the database's rules.
    let schema = schema();
    let exported = export_validates(&app, &id, &schema).await;
    assert_eq!(exported.len(), 2);
    assert_eq!(
        exported[1]["decision_provision"],
        "DECISION_PROVISION_TOTAL_SUSPENSION"
    );
    assert_eq!(
        exported[1]["decision_account"],
        "DECISION_ACCOUNT_SUSPENDED"
    );
    assert_eq!(exported[1]["puid"], sid);
    assert_eq!(exported[0]["source_type"], "SOURCE_VOLUNTARY");
    assert_eq!(
        exported[0]["automated_decision"],
        "AUTOMATED_DECISION_FULLY"
    );
    assert_eq!(exported[0]["category"], "STATEMENT_CATEGORY_VIOLENCE");
    let from_report = export_validates(&app, &forum_case, &schema).await;
    assert_eq!(from_report.len(), 1);
    assert_eq!(
        from_report[0]["source_type"],
        "SOURCE_TYPE_OTHER_NOTIFICATION"
    );
    assert_eq!(from_report[0]["automated_detection"], "No");
    assert_eq!(
        from_report[0]["automated_decision"],
        "AUTOMATED_DECISION_NOT_AUTOMATED"
    );
    // The schema is no rubber stamp: a broken export fails it.
    let mut broken = exported[0].clone();
    broken["automated_detection"] = json!("Maybe");
    assert!(!schema.is_valid(&broken));

    // parlor appeals the suspension; carol, who took no part, grants it.
    let (status, body) = app
        .call_as(
            &parlor,
            Method::POST,
            &format!("/v1/tenant/cases/{id}/appeal"),
            Some(&json!({"text": "the posts were quotes"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let granted = act(
        &app,
        &carol,
        &id,
        json!({"action": "decide_appeal", "outcome": "granted", "reason": "quotes"}),
    )
    .await;
    assert_eq!(granted["case"]["state"], "reinstated");

    // The counts match what was done.
    let from = started - SignedDuration::from_hours(1);
    let to = clock.now() + SignedDuration::from_hours(1);
    let (status, counts) = app
        .get(&format!("/v1/reports/transparency?from={from}&to={to}"))
        .await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(
        counts["notices"],
        json!({"total": 1, "by_category": {"violent-incitement": 1}})
    );
    assert_eq!(counts["actions"]["total"], 3);
    assert_eq!(
        counts["actions"]["by_type"],
        json!({"removal_notice": 2, "suspension": 1})
    );
    assert_eq!(
        counts["actions"]["by_ground"],
        json!({"violent-incitement": 3})
    );
    assert_eq!(counts["automated"]["detected"], 2);
    assert_eq!(counts["automated"]["decided"], 1);
    assert_eq!(counts["actions_after_notice"], 1);
    assert_eq!(counts["median_seconds_notice_to_action"], 600);
    assert_eq!(
        counts["appeals"],
        json!({"received": 1, "granted": 1, "denied": 0, "pending": 0})
    );
    assert_eq!(counts["reinstatements"], 1);

    // The same as CSV, by Accept or by format.
    let r = app
        .client
        .get(format!(
            "{}/v1/reports/transparency?from={from}&to={to}",
            app.base
        ))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("section,key,value\n"), "{csv}");
    assert!(csv.contains("actions,total,3\n"), "{csv}");
    assert!(
        csv.contains("notice_to_action,median_seconds,600\n"),
        "{csv}"
    );
    let r = app
        .client
        .get(format!(
            "{}/v1/reports/transparency?from={from}&to={to}&format=csv",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), csv);

    // The command line reads the same store (the service stopped) and
    // prints the same counts.
    let (_, before) = app
        .get("/v1/reports/transparency?from=2020-01-01&to=2020-02-01")
        .await;
    let dir = app.stop().await;
    let store = dir.path().join("store");
    let report = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aupd"))
            .args(["report", "transparency"])
            .args(args)
            .envs(common::store_env(&store))
            .env_remove("AUPD_CONFIG")
            .output()
            .unwrap()
    };
    let (from, to) = (from.to_string(), to.to_string());
    let out = report(&["--from", &from, "--to", &to]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, counts);
    let out = report(&["--from", &from, "--to", &to, "--format", "csv"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), csv);
    let out = report(&["--from", "soon", "--to", &to]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "`from` must be a date (YYYY-MM-DD) or an RFC 3339 timestamp, not `soon`"
    );

    // A window before anything happened counts nothing.
    let empty = before;
    assert_eq!(empty["actions"]["total"], 0);
    assert_eq!(empty["median_seconds_notice_to_action"], Value::Null);
}

#[tokio::test]
async fn bad_windows_and_formats_get_a_clear_400_and_tenants_a_403() {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let app = spawn_app_with(options(&clock)).await;
    for (query, code, message) in [
        (
            "from=yesterday&to=2026-01-01",
            "invalid_window",
            "`from` must be a date (YYYY-MM-DD) or an RFC 3339 timestamp, not `yesterday`",
        ),
        (
            "from=2026-01-01&to=2026-13-01",
            "invalid_window",
            "`to` must be a date (YYYY-MM-DD) or an RFC 3339 timestamp, not `2026-13-01`",
        ),
        (
            "from=2026-02-01&to=2026-01-01",
            "invalid_window",
            "`from` (2026-02-01T00:00:00Z) must be before `to` (2026-01-01T00:00:00Z)",
        ),
        (
            "from=2026-01-01&to=2026-02-01&format=xml",
            "invalid_format",
            "format is `json` or `csv`, not `xml`",
        ),
    ] {
        let (status, body) = app.get(&format!("/v1/reports/transparency?{query}")).await;
        assert_eq!(
            (status, body),
            (400, json!({"code": code, "message": message})),
            "{query}"
        );
    }
    for query in [
        "from=2026-01-01",
        "from=2026-01-01&to=2026-02-01&colour=red",
    ] {
        let (status, body) = app.get(&format!("/v1/reports/transparency?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], "invalid_query", "{body}");
    }
    let parlor = {
        app.create_tenant("parlor", "standard").await;
        app.token("tenant:parlor", "dash").await
    };
    let (status, body) = app
        .call_as(
            &parlor,
            Method::GET,
            "/v1/reports/transparency?from=2026-01-01&to=2026-02-01",
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .get("/v1/cases/0190a1b2-0000-7000-8000-000000000000/statements?format=pdf")
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"code": "invalid_format", "message": "format is `aupd` or `transparency-db`, not `pdf`"})
        )
    );
    let (status, _) = app
        .get("/v1/cases/0190a1b2-0000-7000-8000-000000000000/statements")
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .call_as(
            &parlor,
            Method::GET,
            "/v1/tenant/statements/not-a-statement-id-at-all-not-at-all-x",
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "statement not found"})
        )
    );
}
