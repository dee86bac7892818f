//! Cases: the record of one enforcement matter against one tenant, and the
//! commands, events, deadlines and outbound messages that move it.
//!
//! These are plain records. The rules that move a case live in
//! `enforcement::decide`; the store commits what it returns.

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::ids::TenantId;
use super::Severity;

/// A case's id: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseId(pub uuid::Uuid);

impl CaseId {
    /// A fresh id. Called by the runtime, never by `decide`, which stays
    /// deterministic.
    pub fn new() -> Self {
        CaseId(uuid::Uuid::now_v7())
    }
}

impl Default for CaseId {
    fn default() -> Self {
        CaseId::new()
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A deadline's id, derived from its case, the case version that scheduled it
/// and its kind, so replaying a command produces the same id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeadlineId(pub String);

impl fmt::Display for DeadlineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a case stands. Names say what has happened to the tenant.
///
/// Open states (`is_open`) are being worked and may be dismissed. `Suspended`
/// is closed but reversible by reinstatement; `Cured`, `Dismissed` and
/// `Reinstated` are final (a new violation opens a new case, so the history of
/// each stays readable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Triage: an operator decides whether this is a violation.
    Open,
    /// The tenant has been told; the cure clock is running.
    Noticed,
    /// The tenant sent a remediation plan; the clock is paused while it is reviewed.
    PlanSubmitted,
    /// The plan was accepted; waiting for a re-fetch to show the content is gone.
    Verifying,
    /// The deadline passed (or an operator escalated); an operator decides next.
    Escalated,
    /// Someone proposed a suspension; waiting for approvals.
    SuspensionProposed,
    /// The suspension order is queued; waiting for the executor's receipt.
    SuspensionOrdered,
    /// The executor confirmed the suspension.
    Suspended,
    /// A suspension was lifted. Final.
    Reinstated,
    /// The violation was removed and verified. Final.
    Cured,
    /// Not a violation. Final.
    Dismissed,
}

impl CaseState {
    /// Every state, for tables and tests.
    pub const ALL: [CaseState; 11] = [
        CaseState::Open,
        CaseState::Noticed,
        CaseState::PlanSubmitted,
        CaseState::Verifying,
        CaseState::Escalated,
        CaseState::SuspensionProposed,
        CaseState::SuspensionOrdered,
        CaseState::Suspended,
        CaseState::Reinstated,
        CaseState::Cured,
        CaseState::Dismissed,
    ];

    /// Being worked: reports can join, an operator can dismiss or reassign.
    /// Once a suspension order has gone out the case is no longer open; only
    /// reinstatement undoes it.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            CaseState::Open
                | CaseState::Noticed
                | CaseState::PlanSubmitted
                | CaseState::Verifying
                | CaseState::Escalated
                | CaseState::SuspensionProposed
        )
    }

    /// Can still be undone without opening a new case: every open state, and
    /// an ordered or confirmed suspension (by reinstatement).
    pub fn is_reversible(self) -> bool {
        self.is_open() || matches!(self, CaseState::SuspensionOrdered | CaseState::Suspended)
    }

    /// No command changes the case any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CaseState::Reinstated | CaseState::Cured | CaseState::Dismissed
        )
    }

    /// The snake_case name used in APIs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Noticed => "noticed",
            CaseState::PlanSubmitted => "plan_submitted",
            CaseState::Verifying => "verifying",
            CaseState::Escalated => "escalated",
            CaseState::SuspensionProposed => "suspension_proposed",
            CaseState::SuspensionOrdered => "suspension_ordered",
            CaseState::Suspended => "suspended",
            CaseState::Reinstated => "reinstated",
            CaseState::Cured => "cured",
            CaseState::Dismissed => "dismissed",
        }
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role someone acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// Abuse-team member working cases.
    Operator,
    /// Someone allowed to approve suspensions.
    Approver,
    /// An employee who reported a tenant.
    Reporter,
    /// The tenant itself (its dashboard token); `id` is the tenant slug.
    Tenant,
    /// aupd's own timers (deadline ticker).
    System,
    /// aupd's own workers (sampler, verifier, receipt intake).
    Service,
}

/// Who issued a command. One person may hold several roles; `id` is the
/// person, so separation of duties compares ids, not roles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The role of this request.
    pub kind: ActorKind,
    /// Stable id of the person, tenant or worker.
    pub id: String,
}

impl Actor {
    /// An actor in `kind` with `id`.
    pub fn new(kind: ActorKind, id: impl Into<String>) -> Self {
        Actor {
            kind,
            id: id.into(),
        }
    }

    /// The deadline ticker.
    pub fn system() -> Self {
        Actor::new(ActorKind::System, "ticker")
    }
}

/// What a piece of evidence is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvidenceKind {
    /// One scored item.
    Finding {
        /// The finding's id in the store.
        finding_id: String,
        /// The category score.
        score: f32,
    },
    /// A prevalence figure over a sample.
    Prevalence {
        /// Items sampled.
        sampled: u64,
        /// Items flagged.
        flagged: u64,
        /// Lower bound of the 95% interval.
        lower: f64,
        /// Upper bound of the 95% interval.
        upper: f64,
    },
    /// An employee report.
    Report {
        /// The report's id.
        report_id: String,
    },
}

/// One piece of evidence on a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// What it is.
    #[serde(flatten)]
    pub kind: EvidenceKind,
    /// The category it supports.
    pub category: String,
    /// Where the content was seen; re-fetched to verify a cure.
    pub url: Option<String>,
    /// Policy version (content hash) that scored it, when scored.
    pub policy_version: Option<String>,
}

/// An employee report joined to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRef {
    /// The report's id.
    pub report_id: String,
    /// The employee who filed it; may never approve a suspension on this case.
    pub reporter: String,
}

/// A tenant's remediation plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemediationPlan {
    /// What the tenant says it will do or has done.
    pub text: String,
    /// Who submitted it.
    pub submitted_by: Actor,
    /// When.
    pub submitted_at: Timestamp,
}

/// What a suspension covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SuspensionScope {
    /// Every resource of the tenant.
    Tenant,
    /// Only the named resources (hostnames, buckets, …).
    Resources {
        /// The resource ids.
        ids: Vec<String>,
    },
}

/// A proposed suspension, kept after approval so reinstatement lifts exactly
/// what was suspended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    /// What it covers.
    pub scope: SuspensionScope,
    /// Who proposed it (the ticker when the ladder proposes on a missed deadline).
    pub proposed_by: Actor,
    /// Why.
    pub reason: String,
    /// When.
    pub proposed_at: Timestamp,
}

/// One approval of the pending suspension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approver's person id.
    pub approver: String,
    /// Why they approve.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// A tenant's appeal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appeal {
    /// The tenant's words.
    pub text: String,
    /// When.
    pub at: Timestamp,
}

/// What a deadline does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// The end of the cure window: the ladder's consequence follows.
    CureDeadline,
    /// A reminder to the tenant before the cure deadline.
    Reminder,
    /// The executor has not confirmed a suspension order in time.
    ReceiptTimeout,
}

impl DeadlineKind {
    /// The snake_case name used in ids and events.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::CureDeadline => "cure_deadline",
            DeadlineKind::Reminder => "reminder",
            DeadlineKind::ReceiptTimeout => "receipt_timeout",
        }
    }
}

/// A durable timer the ticker fires once, as `Command::DeadlineFired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// Stable id.
    pub id: DeadlineId,
    /// The case it belongs to.
    pub case: CaseId,
    /// What firing it means.
    pub kind: DeadlineKind,
    /// Not fired before this instant.
    pub due_at: Timestamp,
}

/// The enforcement record against one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Id.
    pub id: CaseId,
    /// The tenant the case is against.
    pub tenant: TenantId,
    /// Policy category ids, sorted and unique.
    pub categories: Vec<String>,
    /// Picks the escalation ladder.
    pub severity: Severity,
    /// Where it stands.
    pub state: CaseState,
    /// The operator working it, if assigned.
    pub owner: Option<String>,
    /// Findings, prevalence figures and reports behind it.
    pub evidence: Vec<EvidenceRef>,
    /// Employee reports joined to it.
    pub reports: Vec<ReportRef>,
    /// The tenant's latest plan.
    pub plan: Option<RemediationPlan>,
    /// The suspension proposed or in force.
    pub suspension: Option<Suspension>,
    /// Approvals of the pending suspension.
    pub approvals: Vec<Approval>,
    /// The one pending consequence deadline (cure or receipt), if any.
    pub deadline: Option<Deadline>,
    /// Pending reminders before `deadline`.
    pub reminders: Vec<Deadline>,
    /// Cure time left when the clock was paused for plan review.
    pub paused_remaining: Option<SignedDuration>,
    /// Appeals the tenant has made.
    pub appeals: Vec<Appeal>,
    /// Bumped by every accepted command; the store refuses a commit whose
    /// base version is not the stored one.
    pub version: u64,
    /// When it opened.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Case {
    /// The distinct employees who reported this case.
    pub fn reporters(&self) -> impl Iterator<Item = &str> {
        self.reports.iter().map(|r| r.reporter.as_str())
    }

    /// Whether `person` reported this case.
    pub fn is_reporter(&self, person: &str) -> bool {
        self.reporters().any(|r| r == person)
    }

    /// Evidence URLs to re-fetch when verifying a cure, sorted and unique.
    pub fn evidence_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = self.evidence.iter().filter_map(|e| e.url.clone()).collect();
        urls.sort();
        urls.dedup();
        urls
    }
}

/// What someone asks aupd to do with a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Open a new case (the caller mints `case_id`).
    Open {
        /// Id for the new case.
        case_id: CaseId,
        /// The tenant.
        tenant: TenantId,
        /// Policy categories.
        categories: Vec<String>,
        /// Picks the ladder.
        severity: Severity,
        /// Initial evidence.
        evidence: Vec<EvidenceRef>,
        /// The report the case starts from, if any.
        report: Option<ReportRef>,
    },
    /// Take (or give) ownership.
    Assign {
        /// The new owner's person id.
        owner: String,
    },
    /// Tell the tenant and start the cure clock.
    SendNotice,
    /// Move the cure deadline later.
    Extend {
        /// How much later.
        by: SignedDuration,
        /// Why.
        reason: String,
    },
    /// The tenant's remediation plan.
    SubmitPlan {
        /// The plan text.
        plan: String,
    },
    /// Accept the plan and verify the removal.
    AcceptPlan {
        /// Why.
        reason: String,
    },
    /// Reject the plan; the clock resumes.
    RejectPlan {
        /// Why.
        reason: String,
    },
    /// The re-fetch of the evidence URLs: `true` where the content is gone.
    VerificationResult {
        /// URL → removed.
        removed: BTreeMap<String, bool>,
    },
    /// Declare the case cured without a clean verification.
    OverrideCure {
        /// Why.
        reason: String,
    },
    /// Not a violation.
    Dismiss {
        /// Why.
        reason: String,
    },
    /// Hand the case to an operator's judgement now.
    Escalate {
        /// Why.
        reason: String,
    },
    /// Propose suspending the tenant.
    ProposeSuspension {
        /// Why.
        reason: String,
        /// What to suspend.
        scope: SuspensionScope,
    },
    /// Approve the pending suspension.
    ApproveSuspension {
        /// Why.
        reason: String,
    },
    /// The executor confirms it carried out the suspension order.
    ReceiptExecuted {
        /// The executor's receipt id.
        receipt_id: String,
    },
    /// Lift the suspension.
    Reinstate {
        /// Why.
        reason: String,
    },
    /// The tenant appeals.
    Appeal {
        /// The tenant's words.
        text: String,
    },
    /// Join a report to the case.
    AttachReport {
        /// The report.
        report_id: String,
        /// Who filed it.
        reporter: String,
    },
    /// The ticker says a deadline is due.
    DeadlineFired {
        /// Which one.
        deadline_id: DeadlineId,
    },
}

impl Command {
    /// The snake_case name used in errors and events.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Open { .. } => "open",
            Command::Assign { .. } => "assign",
            Command::SendNotice => "send_notice",
            Command::Extend { .. } => "extend",
            Command::SubmitPlan { .. } => "submit_plan",
            Command::AcceptPlan { .. } => "accept_plan",
            Command::RejectPlan { .. } => "reject_plan",
            Command::VerificationResult { .. } => "verification_result",
            Command::OverrideCure { .. } => "override_cure",
            Command::Dismiss { .. } => "dismiss",
            Command::Escalate { .. } => "escalate",
            Command::ProposeSuspension { .. } => "propose_suspension",
            Command::ApproveSuspension { .. } => "approve_suspension",
            Command::ReceiptExecuted { .. } => "receipt_executed",
            Command::Reinstate { .. } => "reinstate",
            Command::Appeal { .. } => "appeal",
            Command::AttachReport { .. } => "attach_report",
            Command::DeadlineFired { .. } => "deadline_fired",
        }
    }
}

/// One audit record: who did what to the case, why and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseEvent {
    /// The case.
    pub case: CaseId,
    /// Case version this event produced.
    pub version: u64,
    /// What happened, e.g. `notice_sent`.
    pub kind: String,
    /// Who did it.
    pub actor: Actor,
    /// Their stated reason, when the command has one.
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
    /// Details (state change, deadlines, scope, …).
    pub data: serde_json::Value,
}

/// A webhook message queued in the outbox in the same transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// e.g. `enforcement.suspend`.
    pub event_type: String,
    /// Stable across retries of the same order: case id, action and version.
    pub idempotency_key: String,
    /// Versioned body (`"version": 1`).
    pub payload: serde_json::Value,
}

/// Work the runtime performs after committing a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Re-fetch these URLs and answer with `Command::VerificationResult`.
    RefetchEvidence {
        /// The case to answer.
        case: CaseId,
        /// What to fetch.
        urls: Vec<String>,
    },
}

/// Everything one accepted command changes, committed by the store in one
/// transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The case after the command.
    pub case: Case,
    /// Audit events to append.
    pub events: Vec<CaseEvent>,
    /// Deadlines to store.
    pub schedule: Vec<Deadline>,
    /// Pending deadlines to drop.
    pub cancel: Vec<DeadlineId>,
    /// Webhook messages to queue.
    pub outbox: Vec<OutboundMessage>,
    /// Work for the runtime after commit.
    pub effects: Vec<Effect>,
}
