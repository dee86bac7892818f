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
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
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
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The prevalence estimated from reviewers' labels, when the category's
    /// case rule rests on them (`estimate = "labelled"` or `"corrected"`).
    LabelEstimate {
        /// Which estimate: `labelled` or `corrected`.
        estimate: String,
        /// Items of the stratified review sample with a decisive answer.
        reviewed: u64,
        /// The estimated rate.
        rate: f64,
        /// Lower bound of its 95% interval.
        lower: f64,
        /// Upper bound of its 95% interval.
        upper: f64,
    },
}

/// One piece of evidence on a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceRef {
    /// What it is.
    #[serde(flatten)]
    // Described as an open object: client generators cannot combine
    // `allOf` with the variants' `oneOf`; the variants are the `EvidenceKind`
    // schema of the document.
    #[schema(value_type = Object)]
    pub kind: EvidenceKind,
    /// The category it supports.
    pub category: String,
    /// Where the content was seen; re-fetched to verify a cure.
    pub url: Option<String>,
    /// Policy version (content hash) that scored it, when scored.
    pub policy_version: Option<String>,
}

/// An employee report joined to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportRef {
    /// The report's id.
    pub report_id: String,
    /// The employee who filed it; may never approve a suspension on this case.
    pub reporter: String,
}

/// Longest text of a plan field, in bytes.
pub const PLAN_FIELD_MAX_BYTES: usize = 20_000;

/// What a tenant commits to in a remediation plan, validated: both texts
/// are 1 to [`PLAN_FIELD_MAX_BYTES`] bytes. How far ahead `complete_by` may
/// lie depends on when the plan is submitted, so `decide` checks that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanDetails {
    removed: String,
    moderation_changes: String,
    complete_by: Timestamp,
}

impl PlanDetails {
    /// A plan from its parts, or the message naming the field that is wrong.
    pub fn new(
        removed: &str,
        moderation_changes: &str,
        complete_by: Timestamp,
    ) -> Result<Self, String> {
        for (name, text) in [
            ("removed", removed),
            ("moderation_changes", moderation_changes),
        ] {
            if text.trim().is_empty() || text.len() > PLAN_FIELD_MAX_BYTES {
                return Err(format!("`{name}` is 1 to {PLAN_FIELD_MAX_BYTES} bytes"));
            }
        }
        Ok(PlanDetails {
            removed: removed.trim().to_string(),
            moderation_changes: moderation_changes.trim().to_string(),
            complete_by,
        })
    }

    /// What content was removed.
    pub fn removed(&self) -> &str {
        &self.removed
    }

    /// What changes to moderation the tenant makes.
    pub fn moderation_changes(&self) -> &str {
        &self.moderation_changes
    }

    /// By when the changes are complete.
    pub fn complete_by(&self) -> Timestamp {
        self.complete_by
    }
}

/// A tenant's remediation plan, as fields an operator can read and the
/// console can show.
///
/// Plans stored before the fields existed were one `text` (the JSON of the
/// request, or free text); they are still read: the JSON is taken apart,
/// and free text becomes `removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(from = "StoredPlan")]
pub struct RemediationPlan {
    /// What content was removed.
    pub removed: String,
    /// What changes to moderation the tenant makes.
    pub moderation_changes: String,
    /// By when the changes are complete; absent only on an old free-text plan.
    pub complete_by: Option<Timestamp>,
    /// Who submitted it.
    pub submitted_by: Actor,
    /// When.
    pub submitted_at: Timestamp,
}

/// The shapes a plan has been stored in.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredPlan {
    Fields {
        removed: String,
        moderation_changes: String,
        complete_by: Option<Timestamp>,
        submitted_by: Actor,
        submitted_at: Timestamp,
    },
    Text {
        text: String,
        submitted_by: Actor,
        submitted_at: Timestamp,
    },
}

/// The fields of a plan the API used to store as one JSON string.
#[derive(Deserialize)]
struct PlanText {
    removed: String,
    moderation_changes: String,
    complete_by: Option<Timestamp>,
}

impl From<StoredPlan> for RemediationPlan {
    fn from(stored: StoredPlan) -> Self {
        match stored {
            StoredPlan::Fields {
                removed,
                moderation_changes,
                complete_by,
                submitted_by,
                submitted_at,
            } => RemediationPlan {
                removed,
                moderation_changes,
                complete_by,
                submitted_by,
                submitted_at,
            },
            StoredPlan::Text {
                text,
                submitted_by,
                submitted_at,
            } => {
                let parts = serde_json::from_str::<PlanText>(&text).unwrap_or(PlanText {
                    removed: text,
                    moderation_changes: String::new(),
                    complete_by: None,
                });
                RemediationPlan {
                    removed: parts.removed,
                    moderation_changes: parts.moderation_changes,
                    complete_by: parts.complete_by,
                    submitted_by,
                    submitted_at,
                }
            }
        }
    }
}

/// What a suspension covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// The approver's person id.
    pub approver: String,
    /// Why they approve.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// A tenant's appeal against the case: the finding itself while the case
/// is being worked, or the suspension once ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Appeal {
    /// The tenant's words.
    pub text: String,
    /// When.
    pub at: Timestamp,
    /// The decision; `None` while the appeal waits for one.
    #[serde(default)]
    pub outcome: Option<AppealOutcome>,
    /// The approver who decided it.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// Why they decided so.
    #[serde(default)]
    pub decision_reason: Option<String>,
    /// When they decided.
    #[serde(default)]
    pub decided_at: Option<Timestamp>,
}

/// How an appeal was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppealOutcome {
    /// The tenant is right: the case is dismissed, or a suspension lifted.
    Granted,
    /// The case stands where it was.
    Denied,
}

impl AppealOutcome {
    /// The snake_case name used in APIs and events.
    pub fn as_str(self) -> &'static str {
        match self {
            AppealOutcome::Granted => "granted",
            AppealOutcome::Denied => "denied",
        }
    }
}

/// What a deadline does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Cure time left when the clock was paused for plan review (an ISO
    /// 8601 duration such as `PT2H30M`).
    #[schema(value_type = Option<String>, example = "PT2H30M")]
    pub paused_remaining: Option<SignedDuration>,
    /// Appeals the tenant has made.
    pub appeals: Vec<Appeal>,
    /// People (operators, approvers, reporters) whose commands this case
    /// accepted, so an appeal goes to someone who took no part in it.
    #[serde(default)]
    pub participants: Vec<String>,
    /// Statements of reasons for the restrictions decided on this case,
    /// oldest first.
    #[serde(default)]
    pub statements: Vec<super::statement::StatementOfReasons>,
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

    /// Whether `person` worked, reported, owned, proposed or approved on
    /// this case. Cases stored before `participants` existed still answer
    /// from their owner, reports, proposal and approvals.
    pub fn took_part(&self, person: &str) -> bool {
        self.participants.iter().any(|p| p == person)
            || self.is_reporter(person)
            || self.owner.as_deref() == Some(person)
            || self
                .suspension
                .as_ref()
                .is_some_and(|s| s.proposed_by.id == person)
            || self.approvals.iter().any(|a| a.approver == person)
    }

    /// The appeal waiting for a decision, if any.
    pub fn pending_appeal(&self) -> Option<&Appeal> {
        self.appeals.iter().find(|a| a.outcome.is_none())
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
        /// What the tenant commits to.
        plan: PlanDetails,
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
    /// An approver who took no part in the case decides the pending appeal.
    DecideAppeal {
        /// Granted or denied.
        outcome: AppealOutcome,
        /// Why.
        reason: String,
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
            Command::DecideAppeal { .. } => "decide_appeal",
            Command::AttachReport { .. } => "attach_report",
            Command::DeadlineFired { .. } => "deadline_fired",
        }
    }
}

/// One audit record: who did what to the case, why and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(plan: serde_json::Value) -> RemediationPlan {
        serde_json::from_value(plan).unwrap()
    }

    #[test]
    fn a_plan_stored_as_one_json_string_is_read_as_fields() {
        let plan = stored(serde_json::json!({
            "text": "{\"removed\":\"the post\",\"moderation_changes\":\"a filter\",\"complete_by\":\"2030-01-01T00:00:00Z\"}",
            "submitted_by": {"kind": "tenant", "id": "parlor"},
            "submitted_at": "2026-11-01T00:00:00Z",
        }));
        assert_eq!(plan.removed, "the post");
        assert_eq!(plan.moderation_changes, "a filter");
        assert_eq!(
            plan.complete_by,
            Some("2030-01-01T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn a_free_text_plan_is_read_as_what_was_removed() {
        let plan = stored(serde_json::json!({
            "text": "we removed the thread",
            "submitted_by": {"kind": "operator", "id": "olga"},
            "submitted_at": "2026-11-01T00:00:00Z",
        }));
        assert_eq!(plan.removed, "we removed the thread");
        assert_eq!(plan.moderation_changes, "");
        assert_eq!(plan.complete_by, None);
    }

    #[test]
    fn a_plan_written_as_fields_reads_back_the_same() {
        let plan = RemediationPlan {
            removed: "the post".into(),
            moderation_changes: "a filter".into(),
            complete_by: Some("2027-01-01T00:00:00Z".parse().unwrap()),
            submitted_by: Actor::new(ActorKind::Tenant, "parlor"),
            submitted_at: "2026-12-01T00:00:00Z".parse().unwrap(),
        };
        let json = serde_json::to_value(&plan).unwrap();
        assert!(json.get("text").is_none());
        assert_eq!(stored(json), plan);
    }

    #[test]
    fn plan_details_refuse_blank_or_oversized_texts() {
        let t: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            PlanDetails::new(" ", "a filter", t).unwrap_err(),
            "`removed` is 1 to 20000 bytes"
        );
        assert_eq!(
            PlanDetails::new("x", &"y".repeat(20_001), t).unwrap_err(),
            "`moderation_changes` is 1 to 20000 bytes"
        );
        assert_eq!(
            PlanDetails::new(" the post ", "f", t).unwrap().removed(),
            "the post"
        );
    }
}
