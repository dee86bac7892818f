//! Tests of the case state machine: the stories the issue tells, a table of
//! every state against every command, and random command sequences checked
//! against the invariants.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::domain::*;

fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn at(offset: SignedDuration) -> Timestamp {
    t0().checked_add(offset).unwrap()
}

fn h(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

fn m(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

fn op(id: &str) -> Actor {
    Actor::new(ActorKind::Operator, id)
}

fn approver(id: &str) -> Actor {
    Actor::new(ActorKind::Approver, id)
}

fn reporter(id: &str) -> Actor {
    Actor::new(ActorKind::Reporter, id)
}

fn tenant(id: &str) -> Actor {
    Actor::new(ActorKind::Tenant, id)
}

fn service() -> Actor {
    Actor::new(ActorKind::Service, "sampler")
}

fn ticker() -> Actor {
    Actor::system()
}

fn url() -> String {
    "https://parlor.example/p/1".to_string()
}

fn open_cmd(severity: Severity, report: Option<ReportRef>) -> Command {
    Command::Open {
        case_id: CaseId(uuid::Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0001,
        )),
        tenant: TenantId::try_from("parlor").unwrap(),
        categories: vec!["violent-incitement".into()],
        severity,
        evidence: vec![EvidenceRef {
            kind: EvidenceKind::Finding {
                finding_id: "f1".into(),
                score: 0.97,
            },
            category: "violent-incitement".into(),
            url: Some(url()),
            policy_version: Some("abc123".into()),
        }],
        report,
    }
}

fn plan() -> PlanDetails {
    PlanDetails::new(
        "we removed the thread and banned the account",
        "a keyword filter and two more moderators",
        at(h(24 * 14)),
    )
    .unwrap()
}

fn reason(text: &str) -> String {
    text.to_string()
}

/// Applies a command that must be accepted.
fn ok(case: &Case, actor: &Actor, cmd: Command, now: Timestamp) -> Transition {
    ok_with(case, actor, cmd, &Ladders::default(), now)
}

fn ok_with(
    case: &Case,
    actor: &Actor,
    cmd: Command,
    ladders: &Ladders,
    now: Timestamp,
) -> Transition {
    match decide(Some(case), actor, &cmd, ladders, now) {
        Ok(t) => {
            assert_eq!(t.case.version, case.version + 1);
            assert!(!t.events.is_empty(), "{} left no audit event", cmd.name());
            t
        }
        Err(e) => panic!("{} in {} refused: {e}", cmd.name(), case.state),
    }
}

fn refused(case: &Case, actor: &Actor, cmd: Command, now: Timestamp) -> DecisionError {
    decide(Some(case), actor, &cmd, &Ladders::default(), now)
        .map(|t| {
            panic!(
                "{} in {} accepted: {:?}",
                cmd.name(),
                case.state,
                t.case.state
            )
        })
        .unwrap_err()
}

fn opened_by_operator(severity: Severity) -> Case {
    decide(
        None,
        &op("olga"),
        &open_cmd(severity, None),
        &Ladders::default(),
        t0(),
    )
    .unwrap()
    .case
}

fn noticed(severity: Severity) -> Case {
    ok(
        &opened_by_operator(severity),
        &op("olga"),
        Command::SendNotice,
        t0(),
    )
    .case
}

fn cure_id(case: &Case) -> DeadlineId {
    let d = case.deadline.as_ref().unwrap();
    assert_eq!(d.kind, DeadlineKind::CureDeadline);
    d.id.clone()
}

fn fire(id: &DeadlineId) -> Command {
    Command::DeadlineFired {
        deadline_id: id.clone(),
    }
}

fn event_types(t: &Transition) -> Vec<&str> {
    t.outbox.iter().map(|m| m.event_type.as_str()).collect()
}

fn escalated(severity: Severity) -> Case {
    ok(
        &noticed(severity),
        &op("olga"),
        Command::Escalate {
            reason: reason("repeat offender"),
        },
        at(m(1)),
    )
    .case
}

fn proposed(scope: SuspensionScope) -> Case {
    ok(
        &escalated(Severity::Critical),
        &op("olga"),
        Command::ProposeSuspension {
            reason: reason("no response"),
            scope,
        },
        at(m(2)),
    )
    .case
}

fn approve(case: &Case, who: &str, now: Timestamp) -> Transition {
    ok(
        case,
        &approver(who),
        Command::ApproveSuspension {
            reason: reason("evidence is clear"),
        },
        now,
    )
}

fn ordered(scope: SuspensionScope) -> Case {
    let c = proposed(scope);
    let c = approve(&c, "ana", at(m(3))).case;
    approve(&c, "ben", at(m(4))).case
}

fn suspended() -> Case {
    ok(
        &ordered(SuspensionScope::Tenant),
        &service(),
        Command::ReceiptExecuted {
            receipt_id: "r-1".into(),
        },
        at(m(5)),
    )
    .case
}

fn plan_submitted(severity: Severity) -> Case {
    ok(
        &noticed(severity),
        &tenant("parlor"),
        Command::SubmitPlan { plan: plan() },
        at(m(20)),
    )
    .case
}

fn verifying() -> Case {
    ok(
        &plan_submitted(Severity::High),
        &op("olga"),
        Command::AcceptPlan {
            reason: reason("plan covers it"),
        },
        at(m(30)),
    )
    .case
}

fn removed_all() -> Command {
    Command::VerificationResult {
        removed: BTreeMap::from([(url(), true)]),
    }
}

fn case_in(state: CaseState) -> Case {
    let c = match state {
        CaseState::Open => opened_by_operator(Severity::Critical),
        CaseState::Noticed => noticed(Severity::Critical),
        CaseState::PlanSubmitted => plan_submitted(Severity::Critical),
        CaseState::Verifying => verifying(),
        CaseState::Escalated => escalated(Severity::Critical),
        CaseState::SuspensionProposed => proposed(SuspensionScope::Tenant),
        CaseState::SuspensionOrdered => ordered(SuspensionScope::Tenant),
        CaseState::Suspended => suspended(),
        CaseState::Reinstated => {
            ok(
                &suspended(),
                &op("olga"),
                Command::Reinstate {
                    reason: reason("appeal upheld"),
                },
                at(m(50)),
            )
            .case
        }
        CaseState::Cured => ok(&verifying(), &service(), removed_all(), at(m(40))).case,
        CaseState::Dismissed => {
            ok(
                &opened_by_operator(Severity::Critical),
                &op("olga"),
                Command::Dismiss {
                    reason: reason("satire"),
                },
                at(m(1)),
            )
            .case
        }
    };
    assert_eq!(c.state, state);
    c
}

#[test]
fn sampler_evidence_opens_a_critical_case_and_starts_the_clock() {
    let t = decide(
        None,
        &service(),
        &open_cmd(Severity::Critical, None),
        &Ladders::default(),
        t0(),
    )
    .unwrap();
    assert_eq!(t.case.state, CaseState::Noticed);
    assert_eq!(t.case.version, 1);
    assert_eq!(event_types(&t), vec!["case.opened", "case.notice_sent"]);
    let kinds: Vec<_> = t.schedule.iter().map(|d| (d.kind, d.due_at)).collect();
    assert_eq!(
        kinds,
        vec![
            (DeadlineKind::CureDeadline, at(h(1))),
            (DeadlineKind::Reminder, at(m(30))),
            (DeadlineKind::Reminder, at(m(50))),
        ]
    );
    for msg in &t.outbox {
        assert_eq!(msg.payload["version"], 1);
        assert_eq!(msg.payload["tenant"], "parlor");
    }
}

#[test]
fn sampler_may_not_open_a_case_the_ladder_leaves_to_operators() {
    let err = decide(
        None,
        &service(),
        &open_cmd(Severity::Medium, None),
        &Ladders::default(),
        t0(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "not_allowed");
}

#[test]
fn operator_opened_cases_wait_in_triage() {
    let c = opened_by_operator(Severity::Critical);
    assert_eq!(c.state, CaseState::Open);
    assert!(c.deadline.is_none());
}

#[test]
fn missed_deadline_proposes_suspension_and_two_approvals_order_it() {
    let t = decide(
        None,
        &service(),
        &open_cmd(Severity::Critical, None),
        &Ladders::default(),
        t0(),
    )
    .unwrap();
    let case = t.case;
    let reminder_30 = case.reminders[0].id.clone();
    let reminder_10 = case.reminders[1].id.clone();

    let t = ok(&case, &ticker(), fire(&reminder_30), at(m(30)));
    assert_eq!(event_types(&t), vec!["case.deadline_approaching"]);
    assert_eq!(t.case.state, CaseState::Noticed);
    let case = t.case;

    let t = ok(&case, &ticker(), fire(&cure_id(&case)), at(h(1)));
    assert_eq!(t.case.state, CaseState::SuspensionProposed);
    assert_eq!(
        event_types(&t),
        vec!["case.deadline_missed", "suspension.proposed"]
    );
    assert_eq!(t.cancel, vec![reminder_10], "the late reminder is dropped");
    assert!(t.case.deadline.is_none());
    let case = t.case;

    let t = approve(&case, "ana", at(h(2)));
    assert_eq!(t.case.state, CaseState::SuspensionProposed);
    assert!(
        t.outbox.is_empty(),
        "one approval is not enough for critical"
    );
    let case = t.case;

    let t = approve(&case, "ben", at(h(3)));
    assert_eq!(t.case.state, CaseState::SuspensionOrdered);
    assert_eq!(
        event_types(&t),
        vec!["suspension.approved", "enforcement.suspend"]
    );
    let order = &t.outbox[1];
    assert_eq!(
        order.payload["scope"],
        serde_json::json!({ "kind": "tenant" })
    );
    assert_eq!(
        order.payload["approvers"],
        serde_json::json!(["ana", "ben"])
    );
    assert_eq!(
        order.idempotency_key,
        format!("{}:enforcement.suspend:v{}", case.id, t.case.version)
    );
    let receipt = t.case.deadline.clone().unwrap();
    assert_eq!(receipt.kind, DeadlineKind::ReceiptTimeout);
    assert_eq!(t.schedule, vec![receipt.clone()]);
    let case = t.case;

    let t = ok(
        &case,
        &service(),
        Command::ReceiptExecuted {
            receipt_id: "rcpt-9".into(),
        },
        at(h(3) + m(1)),
    );
    assert_eq!(t.case.state, CaseState::Suspended);
    assert_eq!(t.cancel, vec![receipt.id]);
    assert!(t.case.deadline.is_none());
}

#[test]
fn medium_deadline_miss_returns_the_case_to_an_operator() {
    let case = noticed(Severity::Medium);
    let t = ok(&case, &ticker(), fire(&cure_id(&case)), at(h(72)));
    assert_eq!(t.case.state, CaseState::Escalated);
    assert_eq!(event_types(&t), vec!["case.deadline_missed"]);
    assert!(t.case.suspension.is_none());
}

#[test]
fn with_zero_approvals_a_missed_deadline_goes_straight_to_the_suspension_order() {
    let mut ladders = Ladders::default();
    ladders.critical.approvals = 0;
    let case = noticed(Severity::Critical);
    let t = ok_with(&case, &ticker(), fire(&cure_id(&case)), &ladders, at(h(1)));
    assert_eq!(t.case.state, CaseState::SuspensionOrdered);
    assert_eq!(
        event_types(&t),
        vec![
            "case.deadline_missed",
            "suspension.proposed",
            "suspension.approved",
            "enforcement.suspend"
        ]
    );
}

#[test]
fn cure_path_pauses_the_clock_verifies_and_cancels_the_consequence() {
    let case = noticed(Severity::High);
    let cure = cure_id(&case);
    let mut pending: Vec<DeadlineId> = vec![cure.clone()];
    pending.extend(case.reminders.iter().map(|r| r.id.clone()));

    let t = ok(
        &case,
        &tenant("parlor"),
        Command::SubmitPlan { plan: plan() },
        at(h(2)),
    );
    assert_eq!(t.case.state, CaseState::PlanSubmitted);
    assert_eq!(t.cancel, pending, "the pending deadline and reminders go");
    assert!(t.schedule.is_empty());
    assert_eq!(t.case.paused_remaining, Some(h(22)));
    let case = t.case;

    let t = ok(
        &case,
        &op("olga"),
        Command::AcceptPlan {
            reason: reason("credible"),
        },
        at(h(3)),
    );
    assert_eq!(t.case.state, CaseState::Verifying);
    assert_eq!(
        t.effects,
        vec![Effect::RefetchEvidence {
            case: case.id,
            urls: vec![url()]
        }]
    );
    let case = t.case;

    let t = ok(&case, &service(), removed_all(), at(h(4)));
    assert_eq!(t.case.state, CaseState::Cured);
    assert_eq!(event_types(&t), vec!["case.closed"]);
    assert!(t.case.deadline.is_none() && t.case.reminders.is_empty());
    let case = t.case;

    // The ticker may still hold the old deadline: it changes nothing.
    let err = refused(&case, &ticker(), fire(&cure), at(h(24)));
    assert_eq!(err.code(), "stale_deadline");
}

#[test]
fn failed_verification_resumes_the_clock_with_the_time_that_was_left() {
    let case = verifying();
    let t = ok(
        &case,
        &service(),
        Command::VerificationResult {
            removed: BTreeMap::from([(url(), false)]),
        },
        at(h(5)),
    );
    assert_eq!(t.case.state, CaseState::Noticed);
    // Plan came 20 minutes into a 24h window: 23h40m were left.
    assert_eq!(
        t.case.deadline.as_ref().unwrap().due_at,
        at(h(5) + h(23) + m(40))
    );
    assert_eq!(event_types(&t), vec!["case.notice_sent"]);

    let missing = ok(
        &case,
        &service(),
        Command::VerificationResult {
            removed: BTreeMap::new(),
        },
        at(h(5)),
    );
    assert_eq!(
        missing.case.state,
        CaseState::Noticed,
        "unverified is not removed"
    );
}

#[test]
fn operator_can_override_a_cure_with_a_reason() {
    let case = verifying();
    let err = refused(
        &case,
        &op("olga"),
        Command::OverrideCure { reason: " ".into() },
        at(h(1)),
    );
    assert_eq!(err.code(), "invalid_command");
    let t = ok(
        &case,
        &op("olga"),
        Command::OverrideCure {
            reason: reason("fetch blocked by geo-fence; checked by hand"),
        },
        at(h(1)),
    );
    assert_eq!(t.case.state, CaseState::Cured);
    assert_eq!(
        t.events[0].reason.as_deref(),
        Some("fetch blocked by geo-fence; checked by hand")
    );
}

#[test]
fn rejected_plan_resumes_the_clock_with_the_remaining_time() {
    let case = noticed(Severity::High);
    let t = ok(
        &case,
        &tenant("parlor"),
        Command::SubmitPlan { plan: plan() },
        at(h(2)),
    );
    let t = ok(
        &t.case,
        &op("olga"),
        Command::RejectPlan {
            reason: reason("too vague"),
        },
        at(h(5)),
    );
    assert_eq!(t.case.state, CaseState::Noticed);
    let due = at(h(5) + h(22));
    assert_eq!(t.case.deadline.as_ref().unwrap().due_at, due);
    let reminders: Vec<_> = t.case.reminders.iter().map(|r| r.due_at).collect();
    assert_eq!(reminders, vec![at(h(23)), at(h(26))]);
    assert_eq!(t.case.paused_remaining, None);
    assert_eq!(event_types(&t), vec!["case.notice_sent"]);
}

#[test]
fn operator_extends_a_running_deadline_with_a_reason() {
    let case = noticed(Severity::Critical);
    let old = cure_id(&case);
    let t = ok(
        &case,
        &op("olga"),
        Command::Extend {
            by: h(2),
            reason: reason("tenant on a call with us"),
        },
        at(m(20)),
    );
    assert_eq!(t.case.deadline.as_ref().unwrap().due_at, at(h(3)));
    assert_ne!(cure_id(&t.case), old);
    assert!(t.cancel.contains(&old));
    assert_eq!(t.case.reminders.len(), 2);
    assert_eq!(t.events[0].kind, "deadline_extended");
    assert_eq!(
        t.events[0].reason.as_deref(),
        Some("tenant on a call with us")
    );
    // The replaced deadline is stale now.
    let err = refused(&t.case, &ticker(), fire(&old), at(h(1)));
    assert_eq!(err.code(), "stale_deadline");

    let no_reason = refused(
        &case,
        &op("olga"),
        Command::Extend {
            by: h(2),
            reason: String::new(),
        },
        at(m(20)),
    );
    assert_eq!(no_reason.code(), "invalid_command");
    let tenant_try = refused(
        &case,
        &tenant("parlor"),
        Command::Extend {
            by: h(2),
            reason: reason("please"),
        },
        at(m(20)),
    );
    assert_eq!(tenant_try.code(), "not_allowed");
}

#[test]
fn extending_a_paused_clock_lengthens_the_remaining_time() {
    let case = plan_submitted(Severity::Critical);
    assert_eq!(case.paused_remaining, Some(m(40)));
    let t = ok(
        &case,
        &op("olga"),
        Command::Extend {
            by: h(1),
            reason: reason("plan needs a vendor"),
        },
        at(h(3)),
    );
    assert_eq!(t.case.paused_remaining, Some(m(100)));
    assert!(t.schedule.is_empty() && t.cancel.is_empty());
}

#[test]
fn a_deadline_fires_once_and_not_before_its_time() {
    let case = noticed(Severity::Medium);
    let cure = cure_id(&case);
    let early = refused(&case, &ticker(), fire(&cure), at(h(71)));
    assert_eq!(early.code(), "deadline_not_due");
    let t = ok(&case, &ticker(), fire(&cure), at(h(72)));
    let again = refused(&t.case, &ticker(), fire(&cure), at(h(73)));
    assert_eq!(again, DecisionError::StaleDeadline(cure.clone()));
    let unknown = refused(
        &case,
        &ticker(),
        fire(&DeadlineId("nope".into())),
        at(h(73)),
    );
    assert_eq!(unknown.code(), "stale_deadline");
    let not_ticker = refused(&case, &op("olga"), fire(&cure), at(h(73)));
    assert_eq!(not_ticker.code(), "not_allowed");
}

#[test]
fn a_reminder_tells_the_tenant_the_deadline_approaches_once() {
    let case = noticed(Severity::Medium);
    let reminder = case.reminders[0].clone();
    assert_eq!(reminder.due_at, at(h(48)));
    let t = ok(&case, &ticker(), fire(&reminder.id), at(h(48)));
    assert_eq!(event_types(&t), vec!["case.deadline_approaching"]);
    assert_eq!(t.outbox[0].payload["due_at"], serde_json::json!(at(h(72))));
    assert!(t.case.reminders.is_empty());
    assert_eq!(t.case.deadline, case.deadline, "the cure deadline stands");
    let again = refused(&t.case, &ticker(), fire(&reminder.id), at(h(49)));
    assert_eq!(again.code(), "stale_deadline");
}

#[test]
fn plans_after_the_deadline_passed_are_refused() {
    let case = noticed(Severity::Critical);
    let err = refused(
        &case,
        &tenant("parlor"),
        Command::SubmitPlan { plan: plan() },
        at(h(1)),
    );
    assert_eq!(err.code(), "deadline_passed");
}

#[test]
fn reporters_never_approve_a_case_they_reported() {
    let report = ReportRef {
        report_id: "rep-1".into(),
        reporter: "rita".into(),
    };
    let t = decide(
        None,
        &reporter("rita"),
        &open_cmd(Severity::Critical, Some(report)),
        &Ladders::default(),
        t0(),
    )
    .unwrap();
    assert_eq!(t.case.state, CaseState::Open);
    let mut case = t.case;
    for cmd in [
        Command::SendNotice,
        Command::Escalate {
            reason: reason("urgent"),
        },
        Command::ProposeSuspension {
            reason: reason("urgent"),
            scope: SuspensionScope::Tenant,
        },
    ] {
        case = ok(&case, &op("olga"), cmd, t0()).case;
    }
    let err = refused(
        &case,
        &approver("rita"),
        Command::ApproveSuspension {
            reason: reason("I saw it"),
        },
        t0(),
    );
    assert_eq!(err.code(), "separation_of_duties");
}

#[test]
fn a_report_joined_after_approving_withdraws_that_approval() {
    let case = proposed(SuspensionScope::Tenant);
    let case = approve(&case, "ana", at(m(3))).case;
    let t = ok(
        &case,
        &reporter("ana"),
        Command::AttachReport {
            report_id: "rep-7".into(),
            reporter: "ana".into(),
        },
        at(m(4)),
    );
    assert!(t.case.approvals.is_empty());
    assert_eq!(t.events[0].data["approval_withdrawn"], true);
    let case = approve(&t.case, "ben", at(m(5))).case;
    assert_eq!(
        case.state,
        CaseState::SuspensionProposed,
        "ana no longer counts"
    );
    let dup = refused(
        &case,
        &op("olga"),
        Command::AttachReport {
            report_id: "rep-7".into(),
            reporter: "ana".into(),
        },
        at(m(6)),
    );
    assert_eq!(dup.code(), "duplicate_report");
}

#[test]
fn four_eyes_the_proposer_and_repeat_approvers_do_not_count() {
    let case = proposed(SuspensionScope::Tenant);
    let own = refused(
        &case,
        &approver("olga"),
        Command::ApproveSuspension {
            reason: reason("mine"),
        },
        at(m(3)),
    );
    assert_eq!(own.code(), "separation_of_duties");
    let case = approve(&case, "ana", at(m(3))).case;
    let twice = refused(
        &case,
        &approver("ana"),
        Command::ApproveSuspension {
            reason: reason("again"),
        },
        at(m(4)),
    );
    assert_eq!(twice, DecisionError::AlreadyApproved("ana".into()));
    let operator = refused(
        &case,
        &op("oscar"),
        Command::ApproveSuspension {
            reason: reason("me too"),
        },
        at(m(4)),
    );
    assert_eq!(operator.code(), "not_allowed");
    assert_eq!(case.state, CaseState::SuspensionProposed);
}

#[test]
fn one_approval_suffices_where_the_ladder_asks_for_one() {
    let case = escalated(Severity::Medium);
    let case = ok(
        &case,
        &op("olga"),
        Command::ProposeSuspension {
            reason: reason("ignored three notices"),
            scope: SuspensionScope::Tenant,
        },
        at(h(1)),
    )
    .case;
    let t = approve(&case, "ana", at(h(2)));
    assert_eq!(t.case.state, CaseState::SuspensionOrdered);
}

#[test]
fn reinstatement_lifts_exactly_the_suspended_scope() {
    let scope = SuspensionScope::Resources {
        ids: vec![
            "bucket:parlor-media".into(),
            "host:forum.parlor.example".into(),
        ],
    };
    let case = ordered(scope.clone());
    let suspend = serde_json::json!(scope);
    let case = ok(
        &case,
        &service(),
        Command::ReceiptExecuted {
            receipt_id: "r1".into(),
        },
        at(h(1)),
    )
    .case;
    let t = ok(
        &case,
        &op("olga"),
        Command::Reinstate {
            reason: reason("content removed, appeal upheld"),
        },
        at(h(30)),
    );
    assert_eq!(t.case.state, CaseState::Reinstated);
    assert_eq!(
        event_types(&t),
        vec!["enforcement.reinstate", "case.closed"]
    );
    assert_eq!(t.outbox[0].payload["scope"], suspend);
}

#[test]
fn tenants_act_only_on_their_own_case_and_only_with_plans_and_appeals() {
    let case = noticed(Severity::High);
    let other = refused(
        &case,
        &tenant("other"),
        Command::SubmitPlan { plan: plan() },
        at(h(1)),
    );
    assert_eq!(other.code(), "not_allowed");
    let dismiss = refused(
        &case,
        &tenant("parlor"),
        Command::Dismiss {
            reason: reason("we disagree"),
        },
        at(h(1)),
    );
    assert_eq!(dismiss.code(), "not_allowed");
    let case = suspended();
    let t = ok(
        &case,
        &tenant("parlor"),
        Command::Appeal {
            text: "the post was satire".into(),
        },
        at(h(2)),
    );
    assert_eq!(t.case.state, CaseState::Suspended);
    assert_eq!(t.case.appeals.len(), 1);
}

fn appealed(case: &Case, now: Timestamp) -> Case {
    ok(
        case,
        &tenant("parlor"),
        Command::Appeal {
            text: "the post quotes a film".into(),
        },
        now,
    )
    .case
}

fn decide_appeal(outcome: AppealOutcome) -> Command {
    Command::DecideAppeal {
        outcome,
        reason: reason("read the thread"),
    }
}

#[test]
fn a_tenant_appeals_the_finding_once_noticed_but_not_in_triage() {
    let triage = opened_by_operator(Severity::Critical);
    let e = refused(
        &triage,
        &tenant("parlor"),
        Command::Appeal { text: "t".into() },
        at(m(1)),
    );
    assert_eq!(e.to_string(), "cannot appeal a case that is open");
    let case = appealed(&noticed(Severity::Critical), at(m(5)));
    assert_eq!(case.state, CaseState::Noticed);
    assert!(case.deadline.is_some(), "an appeal does not stop the clock");
    assert!(case.pending_appeal().is_some());
    let again = refused(
        &case,
        &tenant("parlor"),
        Command::Appeal { text: "t".into() },
        at(m(6)),
    );
    assert_eq!(again.code(), "appeal_pending");
}

#[test]
fn only_an_approver_who_took_no_part_decides_an_appeal() {
    let case = noticed(Severity::Critical);
    let case = ok(
        &case,
        &op("ben"),
        Command::Assign {
            owner: "carl".into(),
        },
        at(m(2)),
    )
    .case;
    let case = appealed(&case, at(m(5)));
    let e = refused(
        &case,
        &op("olga"),
        decide_appeal(AppealOutcome::Granted),
        at(m(6)),
    );
    assert_eq!(e.code(), "not_allowed");
    // olga opened and noticed it, ben assigned it, carl owns it.
    for who in ["olga", "ben", "carl"] {
        let e = refused(
            &case,
            &approver(who),
            decide_appeal(AppealOutcome::Granted),
            at(m(6)),
        );
        assert_eq!(e.code(), "separation_of_duties", "{who}");
    }
    let t = ok(
        &case,
        &approver("zoe"),
        decide_appeal(AppealOutcome::Granted),
        at(m(6)),
    );
    assert_eq!(t.case.state, CaseState::Dismissed);
    assert_eq!(t.case.appeals[0].outcome, Some(AppealOutcome::Granted));
    assert_eq!(t.case.appeals[0].decided_by.as_deref(), Some("zoe"));
    assert!(t.case.deadline.is_none() && t.case.reminders.is_empty());
    let kinds: Vec<&str> = t.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["appeal_granted"]);
    assert_eq!(t.events[0].data["outcome"], "granted");
    assert_eq!(t.outbox[0].event_type, "case.closed");
}

#[test]
fn a_denied_appeal_changes_only_the_appeal() {
    let case = appealed(&noticed(Severity::Critical), at(m(5)));
    let t = ok(
        &case,
        &approver("zoe"),
        decide_appeal(AppealOutcome::Denied),
        at(m(6)),
    );
    assert_eq!(t.case.state, CaseState::Noticed);
    assert_eq!(t.case.deadline, case.deadline);
    assert_eq!(t.case.appeals[0].outcome, Some(AppealOutcome::Denied));
    let kinds: Vec<&str> = t.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["appeal_denied"]);
    assert!(t.outbox.is_empty());
    let e = refused(
        &t.case,
        &approver("yan"),
        decide_appeal(AppealOutcome::Granted),
        at(m(7)),
    );
    assert_eq!(e.code(), "no_pending_appeal");
}

#[test]
fn a_granted_appeal_against_a_suspension_lifts_exactly_what_was_suspended() {
    let scope = SuspensionScope::Resources {
        ids: vec!["host:a".into()],
    };
    let case = appealed(&ordered(scope.clone()), at(m(40)));
    let t = ok(
        &case,
        &approver("zoe"),
        decide_appeal(AppealOutcome::Granted),
        at(m(41)),
    );
    assert_eq!(t.case.state, CaseState::Reinstated);
    let lift = t
        .outbox
        .iter()
        .find(|m| m.event_type == "enforcement.reinstate")
        .unwrap();
    assert_eq!(lift.payload["scope"], serde_json::json!(scope));
}

#[test]
fn a_plan_that_completes_more_than_a_year_after_submission_is_refused() {
    let case = noticed(Severity::High);
    let far = PlanDetails::new("the thread", "a filter", at(h(24 * 366))).unwrap();
    let e = refused(
        &case,
        &tenant("parlor"),
        Command::SubmitPlan { plan: far },
        at(m(1)),
    );
    assert_eq!(
        e.to_string(),
        "complete_by is at most 365 days after the plan is submitted"
    );
    let t = ok(
        &case,
        &tenant("parlor"),
        Command::SubmitPlan { plan: plan() },
        at(m(1)),
    );
    let stored = t.case.plan.unwrap();
    assert_eq!(
        stored.removed,
        "we removed the thread and banned the account"
    );
    assert_eq!(stored.complete_by, Some(at(h(24 * 14))));
}

#[test]
fn decisions_are_deterministic_so_replays_are_idempotent() {
    let case = proposed(SuspensionScope::Tenant);
    let case = approve(&case, "ana", at(m(3))).case;
    let cmd = Command::ApproveSuspension {
        reason: reason("clear"),
    };
    let a = decide(
        Some(&case),
        &approver("ben"),
        &cmd,
        &Ladders::default(),
        at(m(9)),
    )
    .unwrap();
    let b = decide(
        Some(&case),
        &approver("ben"),
        &cmd,
        &Ladders::default(),
        at(m(9)),
    )
    .unwrap();
    assert_eq!(a, b);
}

#[test]
fn opening_needs_grounds_and_an_existing_case_cannot_be_reopened() {
    let mut cmd = open_cmd(Severity::Low, None);
    if let Command::Open { evidence, .. } = &mut cmd {
        evidence.clear();
    }
    let err = decide(None, &op("olga"), &cmd, &Ladders::default(), t0()).unwrap_err();
    assert_eq!(err.code(), "invalid_command");
    let case = opened_by_operator(Severity::Low);
    let again = refused(&case, &op("olga"), open_cmd(Severity::Low, None), t0());
    assert_eq!(again.code(), "case_exists");
    let none = decide(
        None,
        &op("olga"),
        &Command::SendNotice,
        &Ladders::default(),
        t0(),
    );
    assert_eq!(none.unwrap_err().code(), "case_not_found");
}

#[test]
fn error_codes_are_distinct() {
    let errors = [
        DecisionError::NotAllowed {
            command: "x",
            actor: "y",
        },
        DecisionError::IllegalInState {
            state: CaseState::Open,
            command: "x",
        },
        DecisionError::NoSuchCase,
        DecisionError::AlreadyExists,
        DecisionError::SeparationOfDuties(String::new()),
        DecisionError::AlreadyApproved(String::new()),
        DecisionError::StaleDeadline(DeadlineId(String::new())),
        DecisionError::DeadlineNotDue {
            id: DeadlineId(String::new()),
            due_at: t0(),
        },
        DecisionError::DeadlinePassed(t0()),
        DecisionError::DuplicateReport(String::new()),
        DecisionError::Invalid(String::new()),
    ];
    let codes: BTreeSet<_> = errors.iter().map(DecisionError::code).collect();
    assert_eq!(codes.len(), errors.len());
}

/// A command and an actor entitled to issue it, so that only the state decides.
fn every_command() -> Vec<(Actor, Command)> {
    vec![
        (op("olga"), open_cmd(Severity::Critical, None)),
        (
            op("olga"),
            Command::Assign {
                owner: "olga".into(),
            },
        ),
        (op("olga"), Command::SendNotice),
        (
            op("olga"),
            Command::Extend {
                by: h(1),
                reason: reason("r"),
            },
        ),
        (tenant("parlor"), Command::SubmitPlan { plan: plan() }),
        (
            op("olga"),
            Command::AcceptPlan {
                reason: reason("r"),
            },
        ),
        (
            op("olga"),
            Command::RejectPlan {
                reason: reason("r"),
            },
        ),
        (service(), removed_all()),
        (
            op("olga"),
            Command::OverrideCure {
                reason: reason("r"),
            },
        ),
        (
            op("olga"),
            Command::Dismiss {
                reason: reason("r"),
            },
        ),
        (
            op("olga"),
            Command::Escalate {
                reason: reason("r"),
            },
        ),
        (
            op("olga"),
            Command::ProposeSuspension {
                reason: reason("r"),
                scope: SuspensionScope::Tenant,
            },
        ),
        (
            approver("zoe"),
            Command::ApproveSuspension {
                reason: reason("r"),
            },
        ),
        (
            service(),
            Command::ReceiptExecuted {
                receipt_id: "r".into(),
            },
        ),
        (
            op("olga"),
            Command::Reinstate {
                reason: reason("r"),
            },
        ),
        (tenant("parlor"), Command::Appeal { text: "t".into() }),
        (
            approver("zoe"),
            Command::DecideAppeal {
                outcome: AppealOutcome::Granted,
                reason: reason("r"),
            },
        ),
        (
            op("olga"),
            Command::AttachReport {
                report_id: "rep-x".into(),
                reporter: "rita".into(),
            },
        ),
        (ticker(), fire(&DeadlineId("not-pending".into()))),
    ]
}

/// Where a tenant may appeal: once told, until the case is final.
const APPEALABLE: &[CaseState] = &[
    CaseState::Noticed,
    CaseState::PlanSubmitted,
    CaseState::Verifying,
    CaseState::Escalated,
    CaseState::SuspensionProposed,
    CaseState::SuspensionOrdered,
    CaseState::Suspended,
];

/// Where each command is legal, written out independently of `decide`.
fn legal_in(command: &str) -> &'static [CaseState] {
    use CaseState::*;
    const OPEN_STATES: &[CaseState] = &[
        Open,
        Noticed,
        PlanSubmitted,
        Verifying,
        Escalated,
        SuspensionProposed,
    ];
    match command {
        "assign" | "dismiss" | "attach_report" => OPEN_STATES,
        "send_notice" => &[Open, Escalated],
        "extend" => &[Noticed, PlanSubmitted],
        "submit_plan" => &[Noticed],
        "accept_plan" | "reject_plan" => &[PlanSubmitted],
        "verification_result" | "override_cure" => &[Verifying],
        "escalate" => &[Open, Noticed, PlanSubmitted, Verifying],
        "propose_suspension" => &[Escalated],
        "approve_suspension" => &[SuspensionProposed],
        "receipt_executed" => &[SuspensionOrdered],
        "reinstate" => &[SuspensionOrdered, Suspended],
        "appeal" => APPEALABLE,
        // Only with an appeal pending, which no case of the table has.
        "decide_appeal" => &[],
        // Never on an existing case / never for an id that is not pending.
        "open" | "deadline_fired" => &[],
        other => panic!("no legality row for {other}"),
    }
}

#[test]
fn every_state_and_command_pair_is_accepted_or_refused_as_designed() {
    let commands = every_command();
    assert_eq!(commands.len(), 19, "a command is missing from the table");
    for state in CaseState::ALL {
        let case = case_in(state);
        for (actor, cmd) in &commands {
            let before = case.clone();
            let result = decide(Some(&case), actor, cmd, &Ladders::default(), at(m(45)));
            let legal = legal_in(cmd.name()).contains(&state);
            match result {
                Ok(t) => {
                    assert!(legal, "{} accepted in {state}", cmd.name());
                    assert_eq!(t.case.version, case.version + 1);
                    assert!(!t.events.is_empty());
                    assert!(t
                        .events
                        .iter()
                        .all(|e| e.actor == *actor && e.version == t.case.version));
                }
                Err(e) => {
                    assert!(!legal, "{} refused in {state}: {e}", cmd.name());
                    let expected = match cmd.name() {
                        "open" => "case_exists",
                        "deadline_fired" => "stale_deadline",
                        "decide_appeal" if APPEALABLE.contains(&state) => "no_pending_appeal",
                        _ => "illegal_in_state",
                    };
                    assert_eq!(e.code(), expected, "{} in {state}", cmd.name());
                }
            }
            assert_eq!(case, before, "decide changed its input");
        }
    }
}

/// Who may issue each command, written out independently of `decide`.
fn allowed_kinds(command: &str) -> &'static [ActorKind] {
    use ActorKind::*;
    match command {
        "submit_plan" => &[Tenant, Operator],
        "verification_result" | "receipt_executed" => &[Service],
        "approve_suspension" | "decide_appeal" => &[Approver],
        "reinstate" => &[Operator, Approver],
        "appeal" => &[Tenant],
        "attach_report" => &[Operator, Reporter, Service],
        "deadline_fired" => &[System],
        _ => &[Operator],
    }
}

#[test]
fn a_role_that_may_never_issue_a_command_is_refused_as_such_in_every_state() {
    let kinds = [
        ActorKind::Operator,
        ActorKind::Approver,
        ActorKind::Reporter,
        ActorKind::Tenant,
        ActorKind::System,
        ActorKind::Service,
    ];
    for state in CaseState::ALL {
        let case = case_in(state);
        for (_, cmd) in every_command() {
            if cmd.name() == "open" {
                continue;
            }
            for kind in kinds {
                if allowed_kinds(cmd.name()).contains(&kind) {
                    continue;
                }
                let who = if kind == ActorKind::Tenant {
                    "parlor"
                } else {
                    "zed"
                };
                let actor = Actor::new(kind, who);
                let e = decide(Some(&case), &actor, &cmd, &Ladders::default(), at(m(45)))
                    .expect_err("a role that may not act was let through");
                assert_eq!(
                    e.code(),
                    "not_allowed",
                    "{kind:?} {} in {state}: {e}",
                    cmd.name()
                );
            }
        }
    }
}

#[test]
fn final_states_are_final_and_suspension_yields_only_to_reinstatement_and_appeal() {
    for state in CaseState::ALL {
        let accepted: Vec<&str> = every_command()
            .iter()
            .filter(|(_, cmd)| legal_in(cmd.name()).contains(&state))
            .map(|(_, cmd)| cmd.name())
            .collect();
        if state.is_final() {
            assert!(accepted.is_empty(), "{state} accepts {accepted:?}");
            assert!(!state.is_reversible() && !state.is_open());
        }
        if state == CaseState::Suspended {
            assert_eq!(accepted, vec!["reinstate", "appeal"]);
            assert!(state.is_reversible() && !state.is_open());
        }
    }
}

use crate::test_rng::Rng;

fn random_actor(rng: &mut Rng) -> Actor {
    let people = ["olga", "ana", "ben", "rita"];
    match rng.below(8) {
        0 | 1 => op(rng.pick::<&str>(&people)),
        2 | 3 => approver(rng.pick::<&str>(&people)),
        4 => reporter(rng.pick::<&str>(&people)),
        5 => tenant(rng.pick::<&str>(&["parlor", "other"])),
        6 => service(),
        _ => ticker(),
    }
}

/// A person or worker whose role may issue `cmd`, so the walk gets past role
/// checks often enough to reach deep states; identities still collide.
fn fitting_actor(rng: &mut Rng, cmd: &Command) -> Actor {
    let people = ["olga", "ana", "ben", "rita"];
    let who = *rng.pick::<&str>(&people);
    match cmd {
        Command::SubmitPlan { .. } | Command::Appeal { .. } => tenant("parlor"),
        Command::ApproveSuspension { .. } | Command::DecideAppeal { .. } => approver(who),
        Command::AttachReport { reporter: r, .. } => reporter(r),
        Command::VerificationResult { .. } | Command::ReceiptExecuted { .. } => service(),
        Command::DeadlineFired { .. } => ticker(),
        _ => op(who),
    }
}

fn random_command(
    rng: &mut Rng,
    pending: &BTreeMap<DeadlineId, Deadline>,
    seen: &[DeadlineId],
) -> Command {
    let people = ["olga", "ana", "ben", "rita"];
    match rng.below(20) {
        0 => open_cmd(Severity::High, None),
        1 => Command::Assign {
            owner: rng.pick::<&str>(&people).to_string(),
        },
        2 => Command::SendNotice,
        3 => Command::Extend {
            by: m(1 + rng.below(600) as i64),
            reason: reason("r"),
        },
        4 => Command::SubmitPlan { plan: plan() },
        5 => Command::AcceptPlan {
            reason: reason("r"),
        },
        6 => Command::RejectPlan {
            reason: reason("r"),
        },
        7 => Command::VerificationResult {
            removed: BTreeMap::from([(url(), rng.below(2) == 0)]),
        },
        8 => Command::OverrideCure {
            reason: reason("r"),
        },
        9 => Command::Dismiss {
            reason: reason("r"),
        },
        10 => Command::Escalate {
            reason: reason("r"),
        },
        11 => Command::ProposeSuspension {
            reason: reason("r"),
            scope: if rng.below(2) == 0 {
                SuspensionScope::Tenant
            } else {
                SuspensionScope::Resources {
                    ids: vec!["host:a".into()],
                }
            },
        },
        12 | 13 => Command::ApproveSuspension {
            reason: reason("r"),
        },
        14 => Command::ReceiptExecuted {
            receipt_id: "r".into(),
        },
        15 => Command::Reinstate {
            reason: reason("r"),
        },
        16 => Command::Appeal { text: "t".into() },
        18 => Command::DecideAppeal {
            outcome: if rng.below(2) == 0 {
                AppealOutcome::Granted
            } else {
                AppealOutcome::Denied
            },
            reason: reason("r"),
        },
        17 => Command::AttachReport {
            report_id: format!("rep-{}", rng.below(4)),
            reporter: rng.pick::<&str>(&people).to_string(),
        },
        _ => {
            let ids: Vec<DeadlineId> = pending.keys().cloned().collect();
            let id = if !ids.is_empty() && rng.below(3) > 0 {
                rng.pick(&ids).clone()
            } else if !seen.is_empty() {
                rng.pick(seen).clone()
            } else {
                DeadlineId("bogus".into())
            };
            fire(&id)
        }
    }
}

#[test]
fn random_command_sequences_keep_the_invariants() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut zero = Ladders::default();
    zero.critical.approvals = 0;
    zero.high.approvals = 1;
    let severities = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];
    let mut accepted_total = 0usize;
    let mut suspend_orders = 0usize;
    let mut states_seen = BTreeSet::new();
    for run in 0..3000 {
        let ladders = if run % 3 == 0 {
            zero.clone()
        } else {
            Ladders::default()
        };
        let severity = *rng.pick(&severities);
        let opener = if severity <= Severity::High && rng.below(2) == 0 {
            service()
        } else {
            op("olga")
        };
        let t = decide(None, &opener, &open_cmd(severity, None), &ladders, t0()).unwrap();
        let mut case = t.case;
        let mut pending: BTreeMap<DeadlineId, Deadline> =
            t.schedule.into_iter().map(|d| (d.id.clone(), d)).collect();
        let mut seen: Vec<DeadlineId> = pending.keys().cloned().collect();
        let mut keys: BTreeSet<String> =
            t.outbox.iter().map(|m| m.idempotency_key.clone()).collect();
        let mut now = t0();
        for _ in 0..60 {
            // Time moves on; sometimes straight to the next due deadline, as the ticker would.
            now = match (rng.below(4), pending.values().map(|d| d.due_at).min()) {
                (0, Some(due)) if due > now => due,
                _ => now.checked_add(m(rng.below(90) as i64)).unwrap(),
            };
            let cmd = random_command(&mut rng, &pending, &seen);
            let actor = if rng.below(3) == 0 {
                random_actor(&mut rng)
            } else {
                fitting_actor(&mut rng, &cmd)
            };
            let before = case.clone();
            let result = decide(Some(&case), &actor, &cmd, &ladders, now);
            assert_eq!(
                result,
                decide(Some(&case), &actor, &cmd, &ladders, now),
                "decide is not deterministic"
            );
            assert_eq!(case, before, "decide changed its input");
            let Ok(t) = result else { continue };
            accepted_total += 1;
            let ladder = ladders.get(case.severity);

            assert_eq!(t.case.version, case.version + 1, "version must step by one");
            assert!(
                !t.events.is_empty(),
                "{} changed the case without an audit event",
                cmd.name()
            );
            assert!(
                !case.state.is_final(),
                "{} accepted in final state {}",
                cmd.name(),
                case.state
            );
            if case.state == CaseState::Suspended {
                assert!(
                    matches!(
                        cmd,
                        Command::Reinstate { .. }
                            | Command::Appeal { .. }
                            | Command::DecideAppeal { .. }
                    ),
                    "{} in suspended",
                    cmd.name()
                );
            }
            for msg in &t.outbox {
                assert!(
                    keys.insert(msg.idempotency_key.clone()),
                    "duplicate key {}",
                    msg.idempotency_key
                );
                assert_eq!(msg.payload["version"], 1);
                if msg.event_type == "enforcement.suspend" {
                    suspend_orders += 1;
                    let s = t
                        .case
                        .suspension
                        .as_ref()
                        .expect("an order has a suspension");
                    let approvers: BTreeSet<&str> = t
                        .case
                        .approvals
                        .iter()
                        .map(|a| a.approver.as_str())
                        .collect();
                    assert_eq!(
                        approvers.len(),
                        t.case.approvals.len(),
                        "an approver counted twice"
                    );
                    assert!(
                        approvers.len() >= usize::from(ladder.approvals),
                        "order without enough approvals"
                    );
                    for a in &approvers {
                        assert!(!t.case.is_reporter(a), "reporter {a} approved");
                        assert!(
                            s.proposed_by.id != *a || s.proposed_by.kind == ActorKind::System,
                            "proposer {a} approved"
                        );
                    }
                }
            }

            // Apply to a model of the store's deadline table.
            if let Command::DeadlineFired { deadline_id } = &cmd {
                assert!(
                    pending.remove(deadline_id).is_some(),
                    "fired a deadline that was not pending"
                );
            }
            for id in &t.cancel {
                assert!(
                    pending.remove(id).is_some(),
                    "cancelled {id} which was not pending"
                );
            }
            for d in &t.schedule {
                assert!(
                    pending.insert(d.id.clone(), d.clone()).is_none(),
                    "scheduled {} twice",
                    d.id
                );
                seen.push(d.id.clone());
            }
            let consequences = pending
                .values()
                .filter(|d| d.kind != DeadlineKind::Reminder)
                .count();
            assert!(
                consequences <= 1,
                "{consequences} consequence deadlines pending"
            );
            let mut on_case: Vec<&Deadline> =
                t.case.deadline.iter().chain(&t.case.reminders).collect();
            on_case.sort_by(|a, b| a.id.cmp(&b.id));
            let in_store: Vec<&Deadline> = pending.values().collect();
            assert_eq!(
                on_case, in_store,
                "case and store disagree on pending deadlines"
            );
            if t.case.state.is_final() || t.case.state == CaseState::Suspended {
                assert!(pending.is_empty(), "{} keeps deadlines", t.case.state);
            }
            if t.case
                .deadline
                .as_ref()
                .is_some_and(|d| d.kind == DeadlineKind::CureDeadline)
            {
                assert_eq!(t.case.state, CaseState::Noticed);
            }
            states_seen.insert(t.case.state.as_str());
            case = t.case;
        }
    }
    // The walk must actually reach the interesting places.
    assert!(accepted_total > 10_000, "only {accepted_total} accepted");
    assert!(
        suspend_orders > 100,
        "only {suspend_orders} suspension orders"
    );
    assert_eq!(
        states_seen.len(),
        CaseState::ALL.len(),
        "unreached states: {states_seen:?}"
    );
}
