//! The enforcement story over real HTTP: evidence opens a case, the tenant
//! is noticed, the deadline passes, two approvers order a suspension; the
//! cure path; a restart in the middle of a running deadline; tenant
//! isolation; reporters' separation of duties. Tests move a manual clock;
//! none sleeps for a real deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use aupd::clock::{Clock, ManualClock};
use common::{case_from_evidence, spawn_app_with, wait_for_state, FakeSite, Options, TestApp};
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{json, Value};

fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        configure: Box::new(|s| {
            s.enforcement.tick_ms = 20;
            s.sampling.intake_sample_rate = 1.0;
        }),
        clock: Some(clock.clone()),
        ..Options::default()
    }
}

async fn new_app() -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let app = spawn_app_with(options(&clock)).await;
    (app, clock)
}

async fn act(app: &TestApp, token: &str, id: &str, body: Value) -> (u16, Value) {
    app.call_as(
        token,
        Method::POST,
        &format!("/v1/cases/{id}/actions"),
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn missed_deadline_leads_to_a_suspension_order_after_two_approvals() {
    let (app, clock) = new_app().await;
    app.create_tenant("parlor", "standard").await;
    let alice = app.token("approver", "alice").await;
    let bob = app.token("approver", "bob").await;

    let case = case_from_evidence(&app, "parlor").await;
    let id = case["id"].as_str().unwrap().to_string();
    // Critical ladder: opened automatically and noticed at once, 1 h to cure.
    assert_eq!(case["state"], "noticed");
    assert_eq!(case["severity"], "critical");
    assert!(case["seconds_to_deadline"].as_i64().unwrap() > 3500);
    let evidence = case["evidence"].as_array().unwrap();
    assert!(
        evidence.iter().any(|e| e["kind"] == "finding"
            && e["policy_version"].as_str().is_some_and(|v| v.len() == 64)),
        "{case}"
    );

    clock.advance(SignedDuration::from_mins(61));
    let case = wait_for_state(&app, &id, "suspension_proposed").await;
    let kinds: Vec<&str> = case["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "case.deadline_missed")
            .count(),
        1,
        "{kinds:?}"
    );

    let (status, body) = act(
        &app,
        &alice,
        &id,
        json!({"action": "approve_suspension", "reason": "evidence is clear"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["case"]["state"], "suspension_proposed");
    let (status, body) = act(
        &app,
        &alice,
        &id,
        json!({"action": "approve_suspension", "reason": "again"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "already_approved");

    let (status, body) = act(
        &app,
        &bob,
        &id,
        json!({"action": "approve_suspension", "reason": "agree"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["case"]["state"], "suspension_ordered");
    let approvers: Vec<&str> = body["case"]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["approver"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(approvers, vec!["alice", "bob"], "{body}");
    // The order went into the outbox in the same transaction: its audit
    // event names the order's idempotency key.
    let events = app.events("case.suspension_approved").await;
    assert!(!events.is_empty());
}

#[tokio::test]
async fn an_illegal_action_is_refused_and_changes_nothing() {
    let (app, _clock) = new_app().await;
    app.create_tenant("parlor", "standard").await;
    let alice = app.token("approver", "alice").await;
    let case = case_from_evidence(&app, "parlor").await;
    let id = case["id"].as_str().unwrap();
    let (status, body) = act(
        &app,
        &alice,
        id,
        json!({"action": "approve_suspension", "reason": "nobody proposed it"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "illegal_in_state");
    let (_, after) = app.get(&format!("/v1/cases/{id}")).await;
    assert_eq!(after["version"], case["version"]);
    assert_eq!(after["state"], "noticed");

    let (status, body) = act(
        &app,
        common::TOKEN,
        id,
        json!({"action": "dismiss", "reason": ""}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (400, "reason_required")
    );
    let (status, body) = act(
        &app,
        common::TOKEN,
        id,
        json!({"action": "explode", "reason": "x"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_body");
}

#[tokio::test]
async fn an_accepted_plan_with_evidence_gone_cures_the_case() {
    let (app, clock) = new_app().await;
    let site = FakeSite::start(
        vec!["we must storm the capitol tomorrow, bring your guns".into()],
        std::time::Duration::ZERO,
    )
    .await;
    app.create_tenant("forum", "standard").await;
    let parlor = app.token("tenant:forum", "forum dashboard").await;
    let rita = app.token("reporter", "rita").await;
    let url = format!("{}/p/0", site.base);

    let (status, report) = app
        .call_as(&rita, Method::POST, "/v1/reports", Some(&json!({
            "tenant": "forum", "category": "violent-incitement", "urls": [url], "description": "calls to storm the capitol"
        })))
        .await;
    assert_eq!(status, 202, "{report}");
    let id = report["case"].as_str().unwrap().to_string();
    assert_eq!(report["case_state"], "open");

    let (status, body) = act(
        &app,
        common::TOKEN,
        &id,
        json!({"action": "send_notice", "reason": "report confirmed"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["case"]["state"], "noticed");

    clock.advance(SignedDuration::from_mins(20));
    let complete_by = clock
        .now()
        .checked_add(SignedDuration::from_hours(24 * 7))
        .unwrap();
    let plan = json!({"removed": "the post", "moderation_changes": "keyword filter and 2 more moderators", "complete_by": complete_by});
    let (status, body) = app
        .call_as(
            &parlor,
            Method::POST,
            &format!("/v1/tenant/cases/{id}/plan"),
            Some(&plan),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "plan_submitted");
    assert!(body["paused_remaining_seconds"].as_i64().unwrap() > 2000);

    // While the plan is reviewed the clock is paused: time passing fires nothing.
    clock.advance(SignedDuration::from_hours(3));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (_, c) = app.get(&format!("/v1/cases/{id}")).await;
    assert_eq!(c["state"], "plan_submitted");

    site.remove_all_posts();
    let (status, body) = act(
        &app,
        common::TOKEN,
        &id,
        json!({"action": "accept_plan", "reason": "plan is credible"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["case"]["state"], "verifying");
    wait_for_state(&app, &id, "cured").await;
}

#[tokio::test]
async fn a_deadline_running_over_a_restart_fires_once_after_it() {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let app = spawn_app_with(options(&clock)).await;
    app.create_tenant("parlor", "standard").await;
    let case = case_from_evidence(&app, "parlor").await;
    let id = case["id"].as_str().unwrap().to_string();
    assert_eq!(case["state"], "noticed");
    let store = app.stop().await;

    clock.advance(SignedDuration::from_hours(2));
    let mut opts = options(&clock);
    opts.store_dir = Some(store);
    let app = spawn_app_with(opts).await;
    let case = wait_for_state(&app, &id, "suspension_proposed").await;
    // Let the ticker run a few more times: still exactly one miss.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_, case2) = app.get(&format!("/v1/cases/{id}")).await;
    let misses = |c: &Value| {
        c["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "case.deadline_missed")
            .count()
    };
    assert_eq!(misses(&case), 1);
    assert_eq!(misses(&case2), 1);
}

#[tokio::test]
async fn a_tenant_token_reaches_its_own_cases_and_nothing_else() {
    let (app, _clock) = new_app().await;
    app.create_tenant("parlor", "standard").await;
    app.create_tenant("forum", "standard").await;
    let parlor_case = case_from_evidence(&app, "parlor").await;
    let forum_case = case_from_evidence(&app, "forum").await;
    let parlor = app.token("tenant:parlor", "parlor dashboard").await;
    let forum_id = forum_case["id"].as_str().unwrap();
    let parlor_id = parlor_case["id"].as_str().unwrap();

    let (status, body) = app
        .call_as(&parlor, Method::GET, "/v1/tenant/cases", None)
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![parlor_id]);
    let (status, own) = app
        .call_as(
            &parlor,
            Method::GET,
            &format!("/v1/tenant/cases/{parlor_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(own["deadline"]["seconds_remaining"].as_i64().unwrap() > 0);
    assert!(own["policy"][0]["aup"]
        .as_str()
        .unwrap()
        .contains("violence"));
    assert!(
        own.get("reports").is_none()
            && own.get("owner").is_none()
            && own.get("approvals").is_none()
    );
    // The evidence package carries the sampled text and what matched in it.
    let item = own["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "sampled_item")
        .unwrap();
    assert!(
        item["excerpt"]
            .as_str()
            .unwrap()
            .contains("storm the capitol"),
        "{item}"
    );
    assert!(
        item["matched"].as_array().is_some_and(|m| !m.is_empty()),
        "{item}"
    );

    // Another tenant's case: 404 on every tenant route.
    let not_found = json!({"code": "not_found", "message": "case not found"});
    for (method, path, body) in [
        (Method::GET, format!("/v1/tenant/cases/{forum_id}"), None),
        (
            Method::POST,
            format!("/v1/tenant/cases/{forum_id}/plan"),
            Some(
                json!({"removed": "x", "moderation_changes": "y", "complete_by": "2030-01-01T00:00:00Z"}),
            ),
        ),
        (
            Method::POST,
            format!("/v1/tenant/cases/{forum_id}/appeal"),
            Some(json!({"text": "unfair"})),
        ),
    ] {
        let (status, b) = app.call_as(&parlor, method, &path, body.as_ref()).await;
        assert_eq!((status, &b), (404, &not_found), "{path}");
    }
    // Operator routes are not for tenants at all.
    for path in [
        "/v1/cases",
        &format!("/v1/cases/{parlor_id}"),
        "/v1/tenants",
        "/v1/tenants/forum",
        "/v1/audit",
        "/v1/tokens",
        "/v1/reports",
        "/v1/tenants/forum/findings",
    ] {
        let (status, b) = app.call_as(&parlor, Method::GET, path, None).await;
        assert_eq!(status, 403, "{path}: {b}");
    }
    let (status, _) = app
        .call_as(
            &parlor,
            Method::POST,
            &format!("/v1/cases/{forum_id}/actions"),
            Some(&json!({"action": "dismiss", "reason": "x"})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_reporter_never_approves_a_suspension_on_a_case_they_reported() {
    let (app, clock) = new_app().await;
    app.create_tenant("parlor", "standard").await;
    let case = case_from_evidence(&app, "parlor").await;
    let id = case["id"].as_str().unwrap().to_string();
    let rita_reports = app.token("reporter", "rita").await;
    let rita_approves = app.token("approver", "rita").await;
    let (status, report) = app
        .call_as(
            &rita_reports,
            Method::POST,
            "/v1/reports",
            Some(&json!({
                "tenant": "parlor", "category": "violent-incitement",
                "urls": ["https://parlor.example/p/1"], "description": "more of the same"
            })),
        )
        .await;
    assert_eq!(status, 202, "{report}");
    assert_eq!(
        report["case"],
        id.as_str(),
        "the report joins the open case"
    );

    clock.advance(SignedDuration::from_mins(61));
    wait_for_state(&app, &id, "suspension_proposed").await;
    let (status, body) = act(
        &app,
        &rita_approves,
        &id,
        json!({"action": "approve_suspension", "reason": "I saw it myself"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "separation_of_duties");

    // The reporter sees their own report and nothing else.
    let (status, mine) = app
        .call_as(&rita_reports, Method::GET, "/v1/reports", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(mine["reports"].as_array().unwrap().len(), 1);
    let other = app.token("reporter", "sam").await;
    let rid = report["id"].as_str().unwrap();
    let (status, _) = app
        .call_as(&other, Method::GET, &format!("/v1/reports/{rid}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call_as(&rita_reports, Method::GET, &format!("/v1/cases/{id}"), None)
        .await;
    assert_eq!(status, 403);
    // Approvers read the evidence they approve on, and change nothing else.
    for path in [
        "/v1/tenants/parlor",
        "/v1/tenants/parlor/prevalence",
        "/v1/tenants/parlor/findings",
    ] {
        let (status, b) = app.call_as(&rita_approves, Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {b}");
    }
    let (status, _) = app
        .call_as(
            &rita_approves,
            Method::POST,
            "/v1/tenants",
            Some(&json!({"id": "other", "name": "Other"})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn reports_are_rate_limited_per_reporter() {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let mut opts = options(&clock);
    opts.configure = Box::new(|s| {
        s.enforcement.tick_ms = 20;
        s.sampling.intake_sample_rate = 1.0;
        s.enforcement.reports_per_hour = 2;
    });
    let app = spawn_app_with(opts).await;
    app.create_tenant("parlor", "standard").await;
    let rita = app.token("reporter", "rita").await;
    let body = json!({"tenant": "parlor", "category": "harassment", "urls": ["https://parlor.example/u/1"], "description": "dogpile"});
    for _ in 0..2 {
        let (status, b) = app
            .call_as(&rita, Method::POST, "/v1/reports", Some(&body))
            .await;
        assert_eq!(status, 202, "{b}");
    }
    let (status, b) = app
        .call_as(&rita, Method::POST, "/v1/reports", Some(&body))
        .await;
    assert_eq!(status, 429, "{b}");
    assert_eq!(b["code"], "rate_limited");
}

#[tokio::test]
async fn unknown_or_revoked_tokens_are_401_and_wrong_roles_403() {
    let (app, _clock) = new_app().await;
    let rita = app.token("reporter", "rita").await;
    let (status, body) = app.call_as(&rita, Method::GET, "/v1/cases", None).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (403, "forbidden"));
    let (_, list) = app.get("/v1/tokens").await;
    let tid = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "rita")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !list.to_string().contains(&rita),
        "a token list must never show secrets"
    );
    let (status, _) = app
        .send(Method::DELETE, &format!("/v1/tokens/{tid}"), &json!(null))
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.call_as(&rita, Method::GET, "/v1/reports", None).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (401, "unauthenticated")
    );
    let (status, _) = app
        .call_as("aupd_made-up", Method::GET, "/v1/reports", None)
        .await;
    assert_eq!(status, 401);
    let (status, body) = app
        .call_as(
            &app.token("operator", "olivia").await,
            Method::POST,
            "/v1/tokens",
            Some(&json!({"role": "admin", "name": "x"})),
        )
        .await;
    assert_eq!((status, body["code"].as_str().unwrap()), (403, "forbidden"));
}

#[tokio::test]
async fn the_audit_route_serves_the_floats_of_a_record_exactly_as_stored() {
    let (app, _clock) = new_app().await;
    let mut batch = aupd::store::Batch::new();
    batch
        .event(
            "evidence.threshold_crossed",
            Some("parlor"),
            json!({"rate": 0.4545454545454546, "lower": 0.018477023791270378}),
        )
        .unwrap();
    let seqs = app.cases.store().commit(batch).unwrap();
    // The bytes on disk, read past the repositories on purpose: the route
    // must serve exactly these.
    let stored = aupd::store::tamper::get(app.cases.store(), "events", &seqs[0].to_be_bytes())
        .unwrap()
        .unwrap();
    let stored = String::from_utf8(stored).unwrap();
    // Compared as text: parsing the reply with the default float parser
    // would alter the very digits this test is about.
    let text = app
        .client
        .get(format!("{}/v1/audit?after={}", app.base, seqs[0] - 1))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#""data":{"lower":0.018477023791270378,"rate":0.4545454545454546}"#),
        "{text}"
    );
    assert_eq!(
        text,
        format!(r#"{{"records":[{stored}],"next_after":{}}}"#, seqs[0])
    );
}

#[tokio::test]
async fn the_audit_head_route_serves_the_head_that_audit_verify_takes() {
    let (app, _clock) = new_app().await;
    let mut batch = aupd::store::Batch::new();
    batch
        .event("tenant.created", Some("parlor"), json!({"id": "parlor"}))
        .unwrap();
    let seq = app.cases.store().commit(batch).unwrap()[0];
    let last = app
        .cases
        .store()
        .events_after(seq - 1, 1)
        .unwrap()
        .remove(0);
    let (status, body) = app.get("/v1/audit/head").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"seq": seq, "hash": last.hash, "head": format!("{}@{seq}", last.hash)})
    );
}

/// Opens a case from rita's report against `tenant` and has olivia notice it.
async fn noticed_case_from_report(app: &TestApp, tenant: &str, olivia: &str) -> String {
    app.create_tenant(tenant, "standard").await;
    let rita = app.token("reporter", "rita").await;
    let (status, report) = app
        .call_as(&rita, Method::POST, "/v1/reports", Some(&json!({
            "tenant": tenant, "category": "violent-incitement",
            "urls": [format!("https://{tenant}.example/p/1")], "description": "calls to storm the capitol"
        })))
        .await;
    assert_eq!(status, 202, "{report}");
    let id = report["case"].as_str().unwrap().to_string();
    let (status, body) = act(
        app,
        olivia,
        &id,
        json!({"action": "send_notice", "reason": "report confirmed"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    id
}

#[tokio::test]
async fn a_tenant_appeals_a_noticed_case_and_an_approver_who_took_no_part_grants_it() {
    let (app, _clock) = new_app().await;
    let olivia = app.token("operator", "olivia").await;
    let olivia_approves = app.token("approver", "olivia").await;
    let rita_approves = app.token("approver", "rita").await;
    let alice = app.token("approver", "alice").await;
    let id = noticed_case_from_report(&app, "forum", &olivia).await;
    let forum = app.token("tenant:forum", "forum dashboard").await;

    // The tenant disputes the finding itself while the cure clock runs.
    let (status, body) = app
        .call_as(
            &forum,
            Method::POST,
            &format!("/v1/tenant/cases/{id}/appeal"),
            Some(&json!({"text": "the post quotes a film; it calls for nothing"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "noticed");
    assert_eq!(body["appeals"][0]["outcome"], Value::Null);

    // A second appeal waits for the first to be decided.
    let (status, body) = app
        .call_as(
            &forum,
            Method::POST,
            &format!("/v1/tenant/cases/{id}/appeal"),
            Some(&json!({"text": "again"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"code": "appeal_pending", "message": "an appeal on this case is waiting for a decision"})
        )
    );

    // Operators do not decide appeals; nor does anyone who worked or reported the case.
    let decide = json!({"action": "decide_appeal", "outcome": "granted", "reason": "a film quote, not a call"});
    let (status, body) = act(&app, &olivia, &id, decide.clone()).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"code": "not_allowed", "message": "an operator may not decide_appeal on this case"})
        )
    );
    for token in [&olivia_approves, &rita_approves] {
        let (status, body) = act(&app, token, &id, decide.clone()).await;
        assert_eq!(
            (status, body),
            (
                403,
                json!({"code": "separation_of_duties", "message": "an approver who took part in this case may not decide its appeal"})
            )
        );
    }

    let (status, body) = act(&app, &alice, &id, decide).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["case"]["state"], "dismissed");
    let appeal = &body["case"]["appeals"][0];
    assert_eq!(appeal["outcome"], "granted");
    assert_eq!(appeal["decided_by"], "alice");
    assert_eq!(appeal["decision_reason"], "a film quote, not a call");

    // The tenant sees the outcome; the audit log holds who decided and why.
    let (status, mine) = app
        .call_as(&forum, Method::GET, &format!("/v1/tenant/cases/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(mine["state"], "dismissed");
    assert_eq!(mine["appeals"][0]["outcome"], "granted");
    let (_, audit) = app.get("/v1/audit?limit=1000").await;
    let granted: Vec<&Value> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "case.appeal_granted")
        .collect();
    assert_eq!(granted.len(), 1, "{audit}");
    assert_eq!(granted[0]["data"]["actor"]["id"], "alice");
    assert_eq!(granted[0]["data"]["reason"], "a film quote, not a call");
    assert_eq!(granted[0]["data"]["data"]["to"], "dismissed");
}

#[tokio::test]
async fn a_denied_appeal_leaves_the_case_where_it_was_and_is_recorded() {
    let (app, _clock) = new_app().await;
    let olivia = app.token("operator", "olivia").await;
    let alice = app.token("approver", "alice").await;
    let id = noticed_case_from_report(&app, "forum", &olivia).await;
    let forum = app.token("tenant:forum", "forum dashboard").await;
    let (status, body) = app
        .call_as(
            &forum,
            Method::POST,
            &format!("/v1/tenant/cases/{id}/appeal"),
            Some(&json!({"text": "we disagree"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = act(
        &app,
        &alice,
        &id,
        json!({"action": "decide_appeal", "outcome": "denied", "reason": "a call to violence"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["case"]["state"], "noticed");
    assert_eq!(body["case"]["appeals"][0]["outcome"], "denied");
    let (status, body) = act(
        &app,
        &alice,
        &id,
        json!({"action": "decide_appeal", "outcome": "granted", "reason": "changed my mind"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"code": "no_pending_appeal", "message": "this case has no appeal waiting for a decision"})
        )
    );
    let (_, audit) = app.get("/v1/audit?limit=1000").await;
    assert!(audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["kind"] == "case.appeal_denied" && r["data"]["actor"]["id"] == "alice"));
}

#[tokio::test]
async fn a_remediation_plan_is_kept_as_fields_and_one_past_its_limits_is_refused() {
    let (app, clock) = new_app().await;
    let olivia = app.token("operator", "olivia").await;
    let id = noticed_case_from_report(&app, "forum", &olivia).await;
    let forum = app.token("tenant:forum", "forum dashboard").await;
    let path = format!("/v1/tenant/cases/{id}/plan");
    let now = clock.now();

    let too_late = now
        .checked_add(SignedDuration::from_hours(24 * 400))
        .unwrap();
    let (status, body) = app
        .call_as(&forum, Method::POST, &path, Some(&json!({
            "removed": "the post", "moderation_changes": "a keyword filter", "complete_by": too_late
        })))
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"code": "invalid_command", "message": "complete_by is at most 365 days after the plan is submitted"})
        )
    );
    let (status, body) = app
        .call_as(
            &forum,
            Method::POST,
            &path,
            Some(&json!({
                "removed": "the post", "moderation_changes": " ", "complete_by": now
            })),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"code": "invalid_body", "message": "`moderation_changes` is 1 to 20000 bytes"})
        )
    );
    let (_, c) = app.get(&format!("/v1/cases/{id}")).await;
    assert_eq!(c["state"], "noticed", "a refused plan changes nothing");

    let complete_by = now
        .checked_add(SignedDuration::from_hours(24 * 14))
        .unwrap();
    let (status, body) = app
        .call_as(&forum, Method::POST, &path, Some(&json!({
            "removed": "posts p/1 to p/9", "moderation_changes": "a keyword filter and two more moderators",
            "complete_by": complete_by
        })))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plan"]["removed"], "posts p/1 to p/9");
    let (_, c) = app.get(&format!("/v1/cases/{id}")).await;
    let plan = &c["plan"];
    assert_eq!(plan["removed"], "posts p/1 to p/9");
    assert_eq!(
        plan["moderation_changes"],
        "a keyword filter and two more moderators"
    );
    assert_eq!(plan["complete_by"], json!(complete_by));
    assert_eq!(
        plan["submitted_by"],
        json!({"kind": "tenant", "id": "forum"})
    );
    assert!(plan.get("text").is_none(), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_filed_at_once_for_one_tenant_and_category_open_one_case() {
    let (app, _clock) = new_app().await;
    app.create_tenant("forum", "standard").await;
    let mut tokens = Vec::new();
    for i in 0..8 {
        tokens.push(app.token("reporter", &format!("reporter {i}")).await);
    }
    let bodies: Vec<Value> = (0..8)
        .map(|i| {
            json!({
                "tenant": "forum", "category": "violent-incitement",
                "urls": [format!("https://forum.example/p/{i}")],
                "description": "calls to storm the capitol"
            })
        })
        .collect();
    let answers = futures_util::future::join_all(
        tokens
            .iter()
            .zip(&bodies)
            .map(|(t, b)| app.call_as(t, Method::POST, "/v1/reports", Some(b))),
    )
    .await;
    let mut joined = std::collections::BTreeSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, 202, "{body}");
        joined.insert(body["case"].as_str().unwrap().to_string());
    }
    assert_eq!(joined.len(), 1, "the reports opened {joined:?}");
    let cases = app.cases.of_tenant("forum").await.unwrap();
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0].reports.len(), 8, "every report joined it");
}
