//! The case state machine: `decide` turns a case and a command into a
//! transition, or refuses. Pure and deterministic: no clock but `now`, no
//! randomness, no I/O, so replaying a command yields the same transition
//! (same deadline ids, same webhook idempotency keys).
//!
//! Who may act is decided before what the case's state allows: a role that
//! may never issue a command is refused (403) whatever state the case is in,
//! so a refusal never tells a caller more about the case than its role may
//! know.
//!
//! Separation of duties, as enforced here:
//! - only an `Approver` approves, and never twice for the same proposal;
//! - no one who reported the case (started it or joined a report to it)
//!   approves a suspension on it; a report joined after someone approved
//!   withdraws that person's approval;
//! - the person who proposed a suspension never approves it, whatever the
//!   ladder asks, so 1 approval means two people and 2 means three. With 0
//!   approvals the order goes out with the proposal.

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

use super::ladder::{Ladder, Ladders, OnMiss, Opening};
use crate::domain::{
    Actor, ActorKind, Appeal, AppealOutcome, Approval, Case, CaseEvent, CaseState, Command,
    Deadline, DeadlineId, DeadlineKind, Effect, OutboundMessage, RemediationPlan, ReportRef,
    Suspension, SuspensionScope, Transition,
};

/// Result of a decision.
pub type Result<T, E = DecisionError> = std::result::Result<T, E>;

/// Why a command was refused. A refused command changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The actor's role may not issue this command on this case.
    #[error("{actor} may not {command} on this case")]
    NotAllowed {
        /// The command.
        command: &'static str,
        /// The refused actor's role.
        actor: &'static str,
    },
    /// The command makes no sense in the case's state.
    #[error("cannot {command} a case that is {state}")]
    IllegalInState {
        /// Where the case stands.
        state: CaseState,
        /// The command.
        command: &'static str,
    },
    /// Only `open` applies to a case that does not exist.
    #[error("no such case")]
    NoSuchCase,
    /// `open` on a case that already exists.
    #[error("the case already exists")]
    AlreadyExists,
    /// The actor is barred from this step by separation of duties.
    #[error("{0}")]
    SeparationOfDuties(String),
    /// The approver already approved this suspension.
    #[error("{0} has already approved this suspension")]
    AlreadyApproved(String),
    /// The deadline is cancelled, already fired or not this case's.
    #[error("deadline {0} is not pending on this case")]
    StaleDeadline(DeadlineId),
    /// The ticker fired a deadline early.
    #[error("deadline {id} is not due until {due_at}")]
    DeadlineNotDue {
        /// The deadline.
        id: DeadlineId,
        /// When it is due.
        due_at: Timestamp,
    },
    /// The cure deadline has passed; the ticker will apply the consequence.
    #[error("the cure deadline passed at {0}")]
    DeadlinePassed(Timestamp),
    /// The report is already joined to the case.
    #[error("report {0} is already attached to this case")]
    DuplicateReport(String),
    /// The tenant appealed already and that appeal is not decided yet.
    #[error("an appeal on this case is waiting for a decision")]
    AppealPending,
    /// `decide_appeal` on a case whose appeals are all decided.
    #[error("this case has no appeal waiting for a decision")]
    NoPendingAppeal,
    /// A field of the command is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The policy rests the case's categories on reviewers' labels and no
    /// item has two reviewers agreeing it violates them.
    #[error("{0}")]
    NoLabelledEvidence(String),
}

impl DecisionError {
    /// Stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            DecisionError::NotAllowed { .. } => "not_allowed",
            DecisionError::IllegalInState { .. } => "illegal_in_state",
            DecisionError::NoSuchCase => "case_not_found",
            DecisionError::AlreadyExists => "case_exists",
            DecisionError::SeparationOfDuties(_) => "separation_of_duties",
            DecisionError::AlreadyApproved(_) => "already_approved",
            DecisionError::StaleDeadline(_) => "stale_deadline",
            DecisionError::DeadlineNotDue { .. } => "deadline_not_due",
            DecisionError::DeadlinePassed(_) => "deadline_passed",
            DecisionError::DuplicateReport(_) => "duplicate_report",
            DecisionError::AppealPending => "appeal_pending",
            DecisionError::NoPendingAppeal => "no_pending_appeal",
            DecisionError::Invalid(_) => "invalid_command",
            DecisionError::NoLabelledEvidence(_) => "no_labelled_evidence",
        }
    }
}

/// Decides what `command` from `actor` does to `case` (`None` when the case
/// does not exist yet) at `now`, under `ladders`.
#[tracing::instrument(skip_all, fields(case = ?case.map(|c| c.id), command = command.name()))]
pub fn decide(
    case: Option<&Case>,
    actor: &Actor,
    command: &Command,
    ladders: &Ladders,
    now: Timestamp,
) -> Result<Transition> {
    let case = match (case, command) {
        (None, Command::Open { .. }) => return open(actor, command, ladders, now),
        (Some(_), Command::Open { .. }) => return Err(DecisionError::AlreadyExists),
        (None, _) => return Err(DecisionError::NoSuchCase),
        (Some(case), _) => case,
    };
    let ladder = ladders.get(case.severity);
    let name = command.name();
    let mut step = Step::new(case, actor, name, now);
    use CaseState as S;
    match command {
        Command::Open { .. } => return Err(DecisionError::AlreadyExists),
        Command::Assign { owner } => {
            step.require_role(&[ActorKind::Operator])?;
            step.require_state(case.state.is_open())?;
            let owner = non_empty(owner, "owner")?;
            step.case.owner = Some(owner.to_string());
            step.event("assigned", None, json!({ "owner": owner }));
        }
        Command::SendNotice => {
            step.require_role(&[ActorKind::Operator])?;
            step.require_state(matches!(case.state, S::Open | S::Escalated))?;
            step.case.state = S::Noticed;
            step.start_clock(ladder, ladder.cure_window)?;
            step.notice_sent(None);
        }
        Command::Extend { by, reason } => {
            step.require_role(&[ActorKind::Operator])?;
            step.require_state(matches!(case.state, S::Noticed | S::PlanSubmitted))?;
            let reason = non_empty(reason, "reason")?;
            if !by.is_positive() {
                return Err(DecisionError::Invalid(
                    "an extension must be positive".into(),
                ));
            }
            if case.state == S::PlanSubmitted {
                // The clock is paused: lengthen what will be left when it resumes.
                let left = case.paused_remaining.unwrap_or(ladder.cure_window);
                let left = left
                    .checked_add(*by)
                    .ok_or_else(|| DecisionError::Invalid("extension too long".into()))?;
                step.case.paused_remaining = Some(left);
                step.event(
                    "deadline_extended",
                    Some(reason),
                    json!({ "by": by, "paused_remaining": left }),
                );
            } else {
                let due = step.pending_cure_due()?;
                let new_due = add(due, *by)?;
                let left = new_due.duration_since(now);
                if !left.is_positive() {
                    return Err(DecisionError::Invalid(
                        "the extended deadline would still be in the past".into(),
                    ));
                }
                step.cancel_clock();
                step.start_clock(ladder, left)?;
                step.event(
                    "deadline_extended",
                    Some(reason),
                    json!({ "by": by, "due_at": new_due }),
                );
            }
        }
        Command::SubmitPlan { plan } => {
            step.require_tenant_or(&[ActorKind::Operator])?;
            step.require_state(case.state == S::Noticed)?;
            if plan.complete_by() > add(now, PLAN_HORIZON)? {
                return Err(DecisionError::Invalid(
                    "complete_by is at most 365 days after the plan is submitted".into(),
                ));
            }
            let due = step.pending_cure_due()?;
            let left = due.duration_since(now);
            if !left.is_positive() {
                return Err(DecisionError::DeadlinePassed(due));
            }
            // Pause: the pending deadline goes, the time left is remembered.
            step.cancel_clock();
            step.case.paused_remaining = Some(left);
            step.case.plan = Some(RemediationPlan {
                removed: plan.removed().to_string(),
                moderation_changes: plan.moderation_changes().to_string(),
                complete_by: Some(plan.complete_by()),
                submitted_by: actor.clone(),
                submitted_at: now,
            });
            step.case.state = S::PlanSubmitted;
            step.event("plan_submitted", None, json!({ "paused_remaining": left }));
        }
        Command::AcceptPlan { reason } => {
            step.require_role(&[ActorKind::Operator])?;
            step.require_state(case.state == S::PlanSubmitted)?;
            let reason = non_empty(reason, "reason")?;
            let urls = case.evidence_urls();
            step.case.state = S::Verifying;
            step.event("plan_accepted", Some(reason), json!({ "verify": urls }));
            if urls.is_empty() {
                // Nothing to re-fetch: the accepted plan is the cure.
                step.cure("cured", None, json!({ "verified": "nothing_to_fetch" }));
            } else {
                step.effects.push(Effect::RefetchEvidence {
                    case: case.id,
                    urls,
                });
            }
        }
        Command::RejectPlan { reason } => {
            step.require_role(&[ActorKind::Operator])?;
            step.require_state(case.state == S::PlanSubmitted)?;
            let reason = non_empty(reason, "reason")?;
            step.resume_clock(ladder)?;
            step.event(
                "plan_rejected",
                Some(reason),
                json!({ "due_at": step.due_at() }),
            );
            step.notice_sent(Some("plan_rejected"));
        }
        Command::VerificationResult { removed } => {
            step.require_role(&[ActorKind::Service])?;
            step.require_state(case.state == S::Verifying)?;
            let still_up: Vec<String> = case
                .evidence_urls()
                .into_iter()
                .filter(|u| removed.get(u) != Some(&true))
                .collect();
            if still_up.is_empty() {
                step.cure("cured", None, json!({ "verified": removed }));
            } else {
                step.resume_clock(ladder)?;
                step.event(
                    "verification_failed",
                    None,
                    json!({ "still_up": still_up, "due_at": step.due_at() }),
                );
                step.notice_sent(Some("verification_failed"));
            }
        }
        Command::OverrideCure { reason } => {
            step.require_role(&[ActorKind::Operator])?;
            step.require_state(case.state == S::Verifying)?;
            let reason = non_empty(reason, "reason")?;
            step.cure("cure_overridden", Some(reason), json!({}));
        }
        Command::Dismiss { reason } => {
            step.require_role(&[ActorKind::Operator])?;
            step.require_state(case.state.is_open())?;
            let reason = non_empty(reason, "reason")?;
            step.close(S::Dismissed, "dismissed", Some(reason));
        }
        Command::Escalate { reason } => {
            step.require_role(&[ActorKind::Operator])?;
            step.require_state(matches!(
                case.state,
                S::Open | S::Noticed | S::PlanSubmitted | S::Verifying
            ))?;
            let reason = non_empty(reason, "reason")?;
            step.cancel_clock();
            step.case.paused_remaining = None;
            step.case.state = S::Escalated;
            step.event("escalated", Some(reason), json!({}));
        }
        Command::ProposeSuspension { reason, scope } => {
            step.require_role(&[ActorKind::Operator])?;
            step.require_state(case.state == S::Escalated)?;
            let reason = non_empty(reason, "reason")?;
            if let SuspensionScope::Resources { ids } = scope {
                if ids.is_empty() || ids.iter().any(|i| i.trim().is_empty()) {
                    return Err(DecisionError::Invalid(
                        "a resource scope names at least one resource".into(),
                    ));
                }
            }
            step.propose(ladder, ladders, reason, scope.clone())?;
        }
        Command::ApproveSuspension { reason } => {
            step.require_role(&[ActorKind::Approver])?;
            step.require_state(case.state == S::SuspensionProposed)?;
            let reason = non_empty(reason, "reason")?;
            if case.is_reporter(&actor.id) {
                return Err(DecisionError::SeparationOfDuties(
                    "a reporter of this case may not approve its suspension".into(),
                ));
            }
            if let Some(s) = &case.suspension {
                if is_person(s.proposed_by.kind) && s.proposed_by.id == actor.id {
                    return Err(DecisionError::SeparationOfDuties(
                        "the proposer of a suspension may not approve it".into(),
                    ));
                }
            }
            if case.approvals.iter().any(|a| a.approver == actor.id) {
                return Err(DecisionError::AlreadyApproved(actor.id.clone()));
            }
            step.case.approvals.push(Approval {
                approver: actor.id.clone(),
                reason: reason.to_string(),
                at: now,
            });
            let have = step.case.approvals.len();
            let need = usize::from(ladder.approvals);
            step.event(
                "suspension_approved",
                Some(reason),
                json!({ "approvals": have, "required": need }),
            );
            if have >= need {
                step.order(ladders)?;
            }
        }
        Command::ReceiptExecuted { receipt_id } => {
            step.require_role(&[ActorKind::Service])?;
            step.require_state(case.state == S::SuspensionOrdered)?;
            let receipt_id = non_empty(receipt_id, "receipt_id")?;
            step.cancel_clock();
            step.case.state = S::Suspended;
            step.event("suspended", None, json!({ "receipt_id": receipt_id }));
        }
        Command::Reinstate { reason } => {
            step.require_role(&[ActorKind::Operator, ActorKind::Approver])?;
            step.require_state(matches!(case.state, S::SuspensionOrdered | S::Suspended))?;
            let reason = non_empty(reason, "reason")?;
            step.order_reinstatement(reason);
            step.close(S::Reinstated, "reinstated", Some(reason));
        }
        Command::Appeal { text } => {
            step.require_tenant_or(&[])?;
            step.require_state(appealable(case.state))?;
            let text = non_empty(text, "text")?;
            if case.pending_appeal().is_some() {
                return Err(DecisionError::AppealPending);
            }
            step.case.appeals.push(Appeal {
                text: text.to_string(),
                at: now,
                outcome: None,
                decided_by: None,
                decision_reason: None,
                decided_at: None,
            });
            step.event(
                "appealed",
                None,
                json!({ "appeal": case.appeals.len(), "text": text }),
            );
        }
        Command::DecideAppeal { outcome, reason } => {
            step.require_role(&[ActorKind::Approver])?;
            step.require_state(appealable(case.state))?;
            let reason = non_empty(reason, "reason")?;
            let Some(index) = case.appeals.iter().position(|a| a.outcome.is_none()) else {
                return Err(DecisionError::NoPendingAppeal);
            };
            if case.took_part(&actor.id) {
                return Err(DecisionError::SeparationOfDuties(
                    "an approver who took part in this case may not decide its appeal".into(),
                ));
            }
            if let Some(appeal) = step.case.appeals.get_mut(index) {
                appeal.outcome = Some(*outcome);
                appeal.decided_by = Some(actor.id.clone());
                appeal.decision_reason = Some(reason.to_string());
                appeal.decided_at = Some(now);
            }
            let data = json!({ "appeal": index, "outcome": outcome });
            match outcome {
                AppealOutcome::Denied => step.event("appeal_denied", Some(reason), data),
                AppealOutcome::Granted => {
                    let to = if matches!(case.state, S::SuspensionOrdered | S::Suspended) {
                        step.order_reinstatement(reason);
                        S::Reinstated
                    } else {
                        S::Dismissed
                    };
                    step.close(to, "appeal_granted", Some(reason));
                    if let Some(last) = step.events.last_mut() {
                        if let (Value::Object(body), Value::Object(extra)) = (&mut last.data, data)
                        {
                            body.extend(extra);
                        }
                    }
                }
            }
        }
        Command::AttachReport {
            report_id,
            reporter,
        } => {
            step.require_role(&[ActorKind::Operator, ActorKind::Reporter, ActorKind::Service])?;
            step.require_state(case.state.is_open())?;
            if actor.kind == ActorKind::Reporter && actor.id != *reporter {
                return Err(DecisionError::NotAllowed {
                    command: name,
                    actor: "a reporter filing for someone else",
                });
            }
            let report_id = non_empty(report_id, "report_id")?;
            let reporter = non_empty(reporter, "reporter")?;
            if case.reports.iter().any(|r| r.report_id == report_id) {
                return Err(DecisionError::DuplicateReport(report_id.to_string()));
            }
            step.case.reports.push(ReportRef {
                report_id: report_id.to_string(),
                reporter: reporter.to_string(),
            });
            let before = step.case.approvals.len();
            step.case.approvals.retain(|a| a.approver != reporter);
            let withdrawn = before != step.case.approvals.len();
            step.event(
                "report_attached",
                None,
                json!({
                    "report_id": report_id,
                    "reporter": reporter,
                    "approval_withdrawn": withdrawn,
                }),
            );
        }
        Command::DeadlineFired { deadline_id } => {
            step.require_role(&[ActorKind::System])?;
            step.deadline_fired(deadline_id, ladder, ladders)?;
        }
    }
    Ok(step.finish())
}

fn open(actor: &Actor, command: &Command, ladders: &Ladders, now: Timestamp) -> Result<Transition> {
    let Command::Open {
        case_id,
        tenant,
        categories,
        severity,
        evidence,
        report,
    } = command
    else {
        return Err(DecisionError::Invalid("not an open command".into()));
    };
    let ladder = ladders.get(*severity);
    let automatic = match actor.kind {
        ActorKind::Operator => false,
        ActorKind::Reporter => {
            if report.as_ref().map(|r| r.reporter.as_str()) != Some(actor.id.as_str()) {
                return Err(DecisionError::Invalid(
                    "a reporter opens a case with their own report".into(),
                ));
            }
            false
        }
        ActorKind::Service if ladder.opens == Opening::Automatically => true,
        _ => {
            return Err(DecisionError::NotAllowed {
                command: "open",
                actor: kind_name(actor.kind),
            })
        }
    };
    let mut categories: Vec<String> = categories
        .iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    categories.sort();
    categories.dedup();
    if categories.is_empty() {
        return Err(DecisionError::Invalid(
            "a case names at least one category".into(),
        ));
    }
    if evidence.is_empty() && report.is_none() {
        return Err(DecisionError::Invalid(
            "a case needs evidence or a report".into(),
        ));
    }
    if let Some(r) = report {
        non_empty(&r.report_id, "report.report_id")?;
        non_empty(&r.reporter, "report.reporter")?;
    }
    // `Step` bumps the version, so the base is 0 and the new case is version 1.
    let base = Case {
        id: *case_id,
        tenant: tenant.clone(),
        categories,
        severity: *severity,
        state: CaseState::Open,
        owner: None,
        evidence: evidence.clone(),
        reports: report.iter().cloned().collect(),
        plan: None,
        suspension: None,
        approvals: Vec::new(),
        deadline: None,
        reminders: Vec::new(),
        paused_remaining: None,
        appeals: Vec::new(),
        participants: Vec::new(),
        statements: Vec::new(),
        version: 0,
        created_at: now,
        updated_at: now,
    };
    let mut step = Step::new(&base, actor, "open", now);
    step.event(
        "opened",
        None,
        json!({ "report": report, "evidence": evidence.len() }),
    );
    step.message("case.opened", json!({}));
    if automatic {
        step.case.state = CaseState::Noticed;
        step.start_clock(ladder, ladder.cure_window)?;
        step.notice_sent(None);
    }
    Ok(step.finish())
}

/// A transition under construction: a copy of the case one version on, and
/// everything the store must commit with it.
struct Step<'a> {
    before: &'a Case,
    actor: &'a Actor,
    now: Timestamp,
    command: &'static str,
    case: Case,
    events: Vec<CaseEvent>,
    schedule: Vec<Deadline>,
    cancel: Vec<DeadlineId>,
    outbox: Vec<OutboundMessage>,
    effects: Vec<Effect>,
}

impl<'a> Step<'a> {
    fn new(before: &'a Case, actor: &'a Actor, command: &'static str, now: Timestamp) -> Self {
        let mut case = before.clone();
        case.version = before.version.saturating_add(1);
        case.updated_at = now;
        Step {
            before,
            actor,
            now,
            command,
            case,
            events: Vec::new(),
            schedule: Vec::new(),
            cancel: Vec::new(),
            outbox: Vec::new(),
            effects: Vec::new(),
        }
    }

    fn require_state(&self, ok: bool) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(DecisionError::IllegalInState {
                state: self.before.state,
                command: self.command,
            })
        }
    }

    fn require_role(&self, kinds: &[ActorKind]) -> Result<()> {
        if kinds.contains(&self.actor.kind) {
            Ok(())
        } else {
            Err(DecisionError::NotAllowed {
                command: self.command,
                actor: kind_name(self.actor.kind),
            })
        }
    }

    /// The tenant itself (only on its own case) or one of `kinds`.
    fn require_tenant_or(&self, kinds: &[ActorKind]) -> Result<()> {
        if self.actor.kind == ActorKind::Tenant {
            if self.actor.id == self.before.tenant.as_str() {
                return Ok(());
            }
            return Err(DecisionError::NotAllowed {
                command: self.command,
                actor: "another tenant",
            });
        }
        self.require_role(kinds)
    }

    fn event(&mut self, kind: &str, reason: Option<&str>, data: Value) {
        let mut body = Map::new();
        if self.before.state != self.case.state || self.before.version == 0 {
            body.insert("from".into(), json!(self.before.state));
            body.insert("to".into(), json!(self.case.state));
        }
        if let Value::Object(extra) = data {
            body.extend(extra);
        }
        self.events.push(CaseEvent {
            case: self.case.id,
            version: self.case.version,
            kind: kind.to_string(),
            actor: self.actor.clone(),
            reason: reason.map(str::to_string),
            at: self.now,
            data: Value::Object(body),
        });
    }

    /// Queues a webhook. The key is the case, the action and the version, so
    /// a retried commit of the same transition queues the same message.
    /// Queues the order that lifts exactly what the case suspended.
    fn order_reinstatement(&mut self, reason: &str) {
        let scope = self
            .case
            .suspension
            .as_ref()
            .map(|s| s.scope.clone())
            .unwrap_or(SuspensionScope::Tenant);
        self.message(
            "enforcement.reinstate",
            json!({ "scope": scope, "reason": reason }),
        );
    }

    fn message(&mut self, event_type: &str, extra: Value) {
        let mut payload = Map::new();
        payload.insert("version".into(), json!(1));
        payload.insert("case_id".into(), json!(self.case.id));
        payload.insert("tenant".into(), json!(self.case.tenant));
        payload.insert("severity".into(), json!(self.case.severity));
        payload.insert("categories".into(), json!(self.case.categories));
        payload.insert("state".into(), json!(self.case.state));
        if let Value::Object(extra) = extra {
            payload.extend(extra);
        }
        self.outbox.push(OutboundMessage {
            event_type: event_type.to_string(),
            idempotency_key: format!("{}:{}:v{}", self.case.id, event_type, self.case.version),
            payload: Value::Object(payload),
        });
    }

    fn deadline_id(&self, kind: DeadlineKind, index: usize) -> DeadlineId {
        DeadlineId(format!(
            "{}:v{}:{}:{}",
            self.case.id,
            self.case.version,
            kind.as_str(),
            index
        ))
    }

    fn due_at(&self) -> Option<Timestamp> {
        self.case.deadline.as_ref().map(|d| d.due_at)
    }

    fn pending_cure_due(&self) -> Result<Timestamp> {
        match &self.case.deadline {
            Some(d) if d.kind == DeadlineKind::CureDeadline => Ok(d.due_at),
            _ => Err(DecisionError::IllegalInState {
                state: self.before.state,
                command: self.command,
            }),
        }
    }

    /// Schedules the cure deadline `left` from now and the ladder's reminders
    /// that still lie ahead.
    fn start_clock(&mut self, ladder: &Ladder, left: SignedDuration) -> Result<()> {
        let due_at = add(self.now, left)?;
        let deadline = Deadline {
            id: self.deadline_id(DeadlineKind::CureDeadline, 0),
            case: self.case.id,
            kind: DeadlineKind::CureDeadline,
            due_at,
        };
        self.schedule.push(deadline.clone());
        self.case.deadline = Some(deadline);
        for (i, before) in ladder.reminders.iter().enumerate() {
            if *before < left {
                let reminder = Deadline {
                    id: self.deadline_id(DeadlineKind::Reminder, i),
                    case: self.case.id,
                    kind: DeadlineKind::Reminder,
                    due_at: add(due_at, -*before)?,
                };
                self.schedule.push(reminder.clone());
                self.case.reminders.push(reminder);
            }
        }
        self.case.paused_remaining = None;
        Ok(())
    }

    /// Back to `noticed` with the time that was left when the plan paused the clock.
    fn resume_clock(&mut self, ladder: &Ladder) -> Result<()> {
        let left = self
            .case
            .paused_remaining
            .filter(|l| l.is_positive())
            .unwrap_or(ladder.cure_window);
        self.case.state = CaseState::Noticed;
        self.start_clock(ladder, left)
    }

    fn cancel_clock(&mut self) {
        if let Some(d) = self.case.deadline.take() {
            self.cancel.push(d.id);
        }
        for r in self.case.reminders.drain(..) {
            self.cancel.push(r.id);
        }
    }

    /// Tells the tenant the (new) deadline; `because` says why a notice is
    /// repeated (a rejected plan, a failed verification).
    fn notice_sent(&mut self, because: Option<&str>) {
        let due_at = self.due_at();
        if because.is_none() {
            self.event("notice_sent", None, json!({ "due_at": due_at }));
        }
        self.message(
            "case.notice_sent",
            json!({ "due_at": due_at, "because": because }),
        );
    }

    fn cure(&mut self, kind: &str, reason: Option<&str>, data: Value) {
        self.close(CaseState::Cured, kind, reason);
        if let Some(last) = self.events.last_mut() {
            if let (Value::Object(body), Value::Object(extra)) = (&mut last.data, data) {
                body.extend(extra);
            }
        }
    }

    /// Ends the case: nothing stays scheduled.
    fn close(&mut self, to: CaseState, kind: &str, reason: Option<&str>) {
        self.cancel_clock();
        self.case.paused_remaining = None;
        self.case.state = to;
        self.event(kind, reason, json!({}));
        self.message("case.closed", json!({ "outcome": to, "reason": reason }));
    }

    fn propose(
        &mut self,
        ladder: &Ladder,
        ladders: &Ladders,
        reason: &str,
        scope: SuspensionScope,
    ) -> Result<()> {
        self.case.suspension = Some(Suspension {
            scope: scope.clone(),
            proposed_by: self.actor.clone(),
            reason: reason.to_string(),
            proposed_at: self.now,
        });
        self.case.approvals.clear();
        self.case.state = CaseState::SuspensionProposed;
        self.event(
            "suspension_proposed",
            Some(reason),
            json!({ "scope": scope, "required_approvals": ladder.approvals }),
        );
        self.message(
            "suspension.proposed",
            json!({ "scope": scope, "required_approvals": ladder.approvals }),
        );
        if ladder.approvals == 0 {
            self.order(ladders)?;
        }
        Ok(())
    }

    /// The approvals are in: queue the suspension order and wait for its receipt.
    fn order(&mut self, ladders: &Ladders) -> Result<()> {
        let scope = self
            .case
            .suspension
            .as_ref()
            .map(|s| s.scope.clone())
            .unwrap_or(SuspensionScope::Tenant);
        let approvers: Vec<String> = self
            .case
            .approvals
            .iter()
            .map(|a| a.approver.clone())
            .collect();
        self.case.state = CaseState::SuspensionOrdered;
        let deadline = Deadline {
            id: self.deadline_id(DeadlineKind::ReceiptTimeout, 0),
            case: self.case.id,
            kind: DeadlineKind::ReceiptTimeout,
            due_at: add(self.now, ladders.receipt_timeout)?,
        };
        self.schedule.push(deadline.clone());
        self.case.deadline = Some(deadline);
        self.event(
            "suspension_ordered",
            None,
            json!({ "scope": scope, "approvers": approvers }),
        );
        self.message(
            "suspension.approved",
            json!({ "scope": scope, "approvers": approvers }),
        );
        self.message(
            "enforcement.suspend",
            json!({ "scope": scope, "approvers": approvers }),
        );
        Ok(())
    }

    fn deadline_fired(
        &mut self,
        id: &DeadlineId,
        ladder: &Ladder,
        ladders: &Ladders,
    ) -> Result<()> {
        let stale = || DecisionError::StaleDeadline(id.clone());
        let fired = if let Some(d) = self.case.deadline.as_ref().filter(|d| &d.id == id) {
            d.clone()
        } else if let Some(r) = self.case.reminders.iter().find(|r| &r.id == id) {
            r.clone()
        } else {
            return Err(stale());
        };
        if fired.due_at > self.now {
            return Err(DecisionError::DeadlineNotDue {
                id: fired.id,
                due_at: fired.due_at,
            });
        }
        match fired.kind {
            DeadlineKind::Reminder => {
                self.case.reminders.retain(|r| r.id != fired.id);
                let due_at = self.due_at();
                self.event(
                    "reminder_sent",
                    None,
                    json!({ "deadline_id": fired.id, "due_at": due_at }),
                );
                self.message("case.deadline_approaching", json!({ "due_at": due_at }));
            }
            DeadlineKind::CureDeadline => {
                if self.before.state != CaseState::Noticed {
                    return Err(stale());
                }
                // A late reminder is pointless once the deadline itself fired.
                self.cancel_clock();
                self.cancel.retain(|c| c != &fired.id);
                self.case.state = CaseState::Escalated;
                self.event(
                    "deadline_missed",
                    None,
                    json!({ "deadline_id": fired.id, "due_at": fired.due_at }),
                );
                self.message(
                    "case.deadline_missed",
                    json!({ "due_at": fired.due_at, "on_miss": match ladder.on_miss {
                        OnMiss::ProposeSuspension => "propose_suspension",
                        OnMiss::ReturnToOperator => "return_to_operator",
                    } }),
                );
                if ladder.on_miss == OnMiss::ProposeSuspension {
                    self.propose(
                        ladder,
                        ladders,
                        "cure deadline missed",
                        SuspensionScope::Tenant,
                    )?;
                }
            }
            DeadlineKind::ReceiptTimeout => {
                if self.before.state != CaseState::SuspensionOrdered {
                    return Err(stale());
                }
                self.case.deadline = None;
                // The order stays queued (delivery retries it); an operator
                // looks at why the executor is silent.
                self.event(
                    "receipt_overdue",
                    None,
                    json!({ "deadline_id": fired.id, "due_at": fired.due_at }),
                );
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Transition {
        // Remembered so an appeal goes to someone who took no part.
        if is_person(self.actor.kind) && !self.case.participants.contains(&self.actor.id) {
            self.case.participants.push(self.actor.id.clone());
        }
        Transition {
            case: self.case,
            events: self.events,
            schedule: self.schedule,
            cancel: self.cancel,
            outbox: self.outbox,
            effects: self.effects,
        }
    }
}

/// How far after its submission a plan's `complete_by` may lie: a plan
/// that ends further out is no plan to hold a tenant to.
const PLAN_HORIZON: SignedDuration = SignedDuration::from_hours(365 * 24);

/// Where a tenant may appeal: once it has been told (an appeal against the
/// finding itself) and until the case is final (an appeal against the
/// suspension). Triage (`open`) has told the tenant nothing yet.
fn appealable(state: CaseState) -> bool {
    state.is_reversible() && state != CaseState::Open
}

fn add(t: Timestamp, d: SignedDuration) -> Result<Timestamp> {
    t.checked_add(d)
        .map_err(|_| DecisionError::Invalid("time out of range".into()))
}

fn non_empty<'s>(value: &'s str, field: &str) -> Result<&'s str> {
    let value = value.trim();
    if value.is_empty() {
        Err(DecisionError::Invalid(format!("{field} must not be empty")))
    } else if value.chars().count() > 10_000 {
        Err(DecisionError::Invalid(format!(
            "{field} is longer than 10000 characters"
        )))
    } else {
        Ok(value)
    }
}

fn is_person(kind: ActorKind) -> bool {
    matches!(
        kind,
        ActorKind::Operator | ActorKind::Approver | ActorKind::Reporter
    )
}

fn kind_name(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Operator => "an operator",
        ActorKind::Approver => "an approver",
        ActorKind::Reporter => "a reporter",
        ActorKind::Tenant => "a tenant",
        ActorKind::System => "the ticker",
        ActorKind::Service => "a service",
    }
}
