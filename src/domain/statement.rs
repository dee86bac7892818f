//! Statements of reasons (Digital Services Act, Art. 17): what aupd tells a
//! tenant whenever it restricts it — a notice demanding the removal of
//! content by a deadline, or a suspension order — and the same decision in
//! the shape of the EU DSA Transparency Database's statement submission.
//!
//! Built purely from the case after the transition and the policy's
//! clauses, so the same decision always yields the same statement.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::case::{ActorKind, Case, CaseId, EvidenceKind, SuspensionScope};
use super::ids::TenantId;

/// The restrictions that need a statement of reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Restriction {
    /// The tenant must remove content by a deadline or face the ladder's
    /// consequence (a notice, repeated after a rejected plan or a failed
    /// verification).
    RemovalNotice,
    /// The tenant's service (all of it, or named resources) is suspended.
    Suspension,
}

impl Restriction {
    /// The snake_case name used in ids and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Restriction::RemovalNotice => "removal_notice",
            Restriction::Suspension => "suspension",
        }
    }
}

/// One AUP clause as the policy in force states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clause {
    /// Category id, e.g. `hate-speech`.
    pub category: String,
    /// Short title.
    pub title: String,
    /// The AUP text the tenant agreed to.
    pub text: String,
}

/// The policy's clauses and version, the statement builder's only view of
/// the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyClauses {
    /// Content hash of the policy in force.
    pub version: String,
    /// Its categories' clauses.
    pub clauses: Vec<Clause>,
}

/// The decision and what it covers (Art. 17(3)(a)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionScope {
    /// The decision in plain words.
    pub summary: String,
    /// Resources suspended; empty for a notice or a whole-tenant suspension.
    pub resources: Vec<String>,
    /// The content the decision is about (evidence URLs).
    pub content_urls: Vec<String>,
    /// Countries where it applies (ISO 3166 codes; aupd restricts a
    /// tenant's service everywhere, so every EU/EEA country).
    pub territorial_scope: Vec<String>,
    /// The cure deadline of a notice.
    pub deadline: Option<Timestamp>,
    /// How long it lasts, in words.
    pub duration: String,
}

/// Where the case came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FactSource {
    /// It followed a notice: an employee's report.
    EmployeeReport,
    /// aupd's own sampling of the tenant's content.
    OwnInitiative,
}

/// A prevalence figure relied on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PrevalenceFact {
    /// Category.
    pub category: String,
    /// Items sampled.
    pub sampled: u64,
    /// Items flagged.
    pub flagged: u64,
    /// Lower bound of the 95% interval.
    pub lower: f64,
    /// Upper bound of the 95% interval.
    pub upper: f64,
}

/// The facts and circumstances relied on (Art. 17(3)(b)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Facts {
    /// The facts in plain words.
    pub summary: String,
    /// A notice (employee report) or aupd's own sampling.
    pub source: FactSource,
    /// Employee reports joined to the case.
    pub reports: usize,
    /// Scored items relied on.
    pub findings: usize,
    /// Prevalence figures relied on.
    pub prevalence: Vec<PrevalenceFact>,
    /// Policy versions (content hashes) that scored the evidence.
    pub policy_versions: Vec<String>,
}

/// Who or what took the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// aupd's ladder alone (automatic opening, missed deadline with no
    /// approvals required).
    Automatically,
    /// An abuse-team operator.
    Operator,
    /// The approvals the ladder demands, from people.
    Approvers,
}

/// Whether automated means detected or decided (Art. 17(3)(c)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Automation {
    /// aupd's scoring found the content (rather than only a person's report).
    pub detected_automatically: bool,
    /// No person took the decision.
    pub decided_automatically: bool,
    /// Who took it.
    pub decided_by: DecidedBy,
    /// People who approved it (a count: their names stay internal).
    pub approvals: usize,
    /// In plain words.
    pub explanation: String,
}

/// The contractual ground relied on (Art. 17(3)(e)): one AUP clause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ground {
    /// AUP category id.
    pub category: String,
    /// Its title.
    pub title: String,
    /// Its text in the policy.
    pub clause: String,
    /// The policy version the clause is quoted from.
    pub policy_version: String,
    /// The Transparency Database `category` it maps to.
    pub transparency_category: String,
}

/// The redress available (Art. 17(3)(f)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Redress {
    /// aupd's appeal route for this case.
    pub appeal_route: String,
    /// Until when an appeal is accepted, in words.
    pub appeal_deadline: String,
    /// The internal complaint-handling system (Art. 20).
    pub internal_complaint: String,
    /// Out-of-court dispute settlement (Art. 21).
    pub out_of_court_dispute_settlement: String,
    /// Judicial redress.
    pub judicial_redress: String,
}

/// A statement of reasons for one restricting decision on a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatementOfReasons {
    /// `<case>-v<version>-<restriction>`: stable across a retried commit,
    /// and a valid Transparency Database `puid`.
    pub id: String,
    /// The case.
    pub case_id: CaseId,
    /// The tenant restricted.
    pub tenant: TenantId,
    /// What kind of restriction.
    pub restriction: Restriction,
    /// When it was decided.
    pub issued_at: Timestamp,
    /// The decision and its scope.
    pub decision: DecisionScope,
    /// The facts and circumstances.
    pub facts: Facts,
    /// Automated means.
    pub automation: Automation,
    /// The AUP clauses relied on.
    pub grounds: Vec<Ground>,
    /// The redress available.
    pub redress: Redress,
}

/// Every EU and EEA country code the Transparency Database accepts.
pub const EEA_COUNTRIES: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// The Transparency Database `category` and `category_specification`
/// keyword for an AUP category (the table in `docs/dsa.md`); categories
/// without an entry count as another violation of the terms.
pub fn transparency_category(category: &str) -> (&'static str, &'static str) {
    match category {
        "violent-incitement" => (
            "STATEMENT_CATEGORY_VIOLENCE",
            "KEYWORD_INCITEMENT_VIOLENCE_HATRED",
        ),
        "violent-threat" => ("STATEMENT_CATEGORY_VIOLENCE", "KEYWORD_COORDINATED_HARM"),
        "hate-speech" => (
            "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
            "KEYWORD_HATE_SPEECH",
        ),
        "harassment" => (
            "STATEMENT_CATEGORY_CYBER_VIOLENCE",
            "KEYWORD_CYBER_HARASSMENT",
        ),
        _ => ("STATEMENT_CATEGORY_OTHER_VIOLATION_TC", "KEYWORD_OTHER"),
    }
}

/// The statement for `restriction` decided by `actor` on `case` (the case
/// as the transition leaves it) at `now`.
pub fn build(
    case: &Case,
    restriction: Restriction,
    actor: ActorKind,
    clauses: &PolicyClauses,
    now: Timestamp,
) -> StatementOfReasons {
    let detected = case
        .evidence
        .iter()
        .any(|e| !matches!(e.kind, EvidenceKind::Report { .. }));
    let approvals = match restriction {
        Restriction::Suspension => case.approvals.len(),
        Restriction::RemovalNotice => 0,
    };
    let decided_by = match (restriction, actor) {
        (Restriction::Suspension, _) if approvals > 0 => DecidedBy::Approvers,
        (_, ActorKind::Operator | ActorKind::Approver | ActorKind::Reporter) => DecidedBy::Operator,
        _ => DecidedBy::Automatically,
    };
    let automation = Automation {
        detected_automatically: detected,
        decided_automatically: decided_by == DecidedBy::Automatically,
        decided_by,
        approvals,
        explanation: automation_text(detected, decided_by, approvals),
    };
    let mut policy_versions: Vec<String> = case
        .evidence
        .iter()
        .filter_map(|e| e.policy_version.clone())
        .collect();
    policy_versions.sort();
    policy_versions.dedup();
    let prevalence: Vec<PrevalenceFact> = case
        .evidence
        .iter()
        .filter_map(|e| match e.kind {
            EvidenceKind::Prevalence {
                sampled,
                flagged,
                lower,
                upper,
            } => Some(PrevalenceFact {
                category: e.category.clone(),
                sampled,
                flagged,
                lower,
                upper,
            }),
            _ => None,
        })
        .collect();
    let findings = case
        .evidence
        .iter()
        .filter(|e| matches!(e.kind, EvidenceKind::Finding { .. }))
        .count();
    let source = if case.reports.is_empty() {
        FactSource::OwnInitiative
    } else {
        FactSource::EmployeeReport
    };
    let facts = Facts {
        summary: facts_text(case, source, findings, &prevalence),
        source,
        reports: case.reports.len(),
        findings,
        prevalence,
        policy_versions,
    };
    let grounds = case
        .categories
        .iter()
        .map(|id| {
            let clause = clauses.clauses.iter().find(|c| &c.category == id);
            Ground {
                category: id.clone(),
                title: clause
                    .map(|c| c.title.clone())
                    .unwrap_or_else(|| id.clone()),
                clause: clause
                    .map(|c| c.text.trim().to_string())
                    .unwrap_or_else(|| format!("category `{id}` of the acceptable-use policy")),
                policy_version: clauses.version.clone(),
                transparency_category: transparency_category(id).0.to_string(),
            }
        })
        .collect();
    StatementOfReasons {
        id: format!("{}-v{}-{}", case.id, case.version, restriction.as_str()),
        case_id: case.id,
        tenant: case.tenant.clone(),
        restriction,
        issued_at: now,
        decision: scope(case, restriction),
        facts,
        automation,
        grounds,
        redress: Redress {
            appeal_route: format!("POST /v1/tenant/cases/{}/appeal", case.id),
            appeal_deadline: "none while the restriction stands: an appeal is accepted until the case is cured, dismissed or reinstated".into(),
            internal_complaint: "the appeal above is the provider's internal complaint-handling system (DSA Art. 20): it is decided by an approver who took no part in the case".into(),
            out_of_court_dispute_settlement: "a certified out-of-court dispute settlement body of the tenant's choice (DSA Art. 21)".into(),
            judicial_redress: "the courts competent under the tenant's contract with the provider and the applicable law".into(),
        },
    }
}

fn scope(case: &Case, restriction: Restriction) -> DecisionScope {
    let content_urls = case.evidence_urls();
    let territorial_scope = EEA_COUNTRIES.iter().map(|c| c.to_string()).collect();
    match restriction {
        Restriction::RemovalNotice => {
            let deadline = case.deadline.as_ref().map(|d| d.due_at);
            let by = deadline.map(|d| format!(" by {d}")).unwrap_or_default();
            DecisionScope {
                summary: format!(
                    "Tenant `{}` must remove the content listed{by} ({} item(s)), or send a remediation plan; otherwise the escalation ladder's consequence follows, which may be a suspension of its service.",
                    case.tenant.as_str(),
                    content_urls.len()
                ),
                resources: Vec::new(),
                content_urls,
                territorial_scope,
                deadline,
                duration: "until the content is removed and the removal verified, or the case is dismissed".into(),
            }
        }
        Restriction::Suspension => {
            let resources = match case.suspension.as_ref().map(|s| &s.scope) {
                Some(SuspensionScope::Resources { ids }) => ids.clone(),
                _ => Vec::new(),
            };
            let what = if resources.is_empty() {
                "its whole service".to_string()
            } else {
                format!("the resources {}", resources.join(", "))
            };
            DecisionScope {
                summary: format!(
                    "The service of tenant `{}` is suspended: {what}.",
                    case.tenant.as_str()
                ),
                resources,
                content_urls,
                territorial_scope,
                deadline: None,
                duration: "indefinite: until reinstated (on appeal or by the abuse team)".into(),
            }
        }
    }
}

fn facts_text(
    case: &Case,
    source: FactSource,
    findings: usize,
    prevalence: &[PrevalenceFact],
) -> String {
    let mut parts = Vec::new();
    parts.push(match source {
        FactSource::EmployeeReport => format!(
            "The case followed {} employee report(s) of content breaching the acceptable-use policy ({}).",
            case.reports.len(),
            case.categories.join(", ")
        ),
        FactSource::OwnInitiative => format!(
            "The case was opened on the provider's own initiative, from sampling the tenant's published content ({}).",
            case.categories.join(", ")
        ),
    });
    if findings > 0 {
        parts.push(format!(
            "{findings} sampled item(s) scored above the policy's threshold."
        ));
    }
    for p in prevalence {
        parts.push(format!(
            "Of {} items sampled, {} were flagged for {} (95% interval {:.1}%–{:.1}%).",
            p.sampled,
            p.flagged,
            p.category,
            p.lower * 100.0,
            p.upper * 100.0
        ));
    }
    if let Some(s) = &case.suspension {
        parts.push(format!("Suspension reason: {}.", s.reason));
    }
    parts.join(" ")
}

fn automation_text(detected: bool, decided_by: DecidedBy, approvals: usize) -> String {
    let detection = if detected {
        "The content was detected by aupd's automated scoring."
    } else {
        "The content was reported by a person; automated scoring did not detect it."
    };
    let decision = match decided_by {
        DecidedBy::Automatically => {
            "The decision was taken automatically by the escalation ladder, with no person deciding."
                .to_string()
        }
        DecidedBy::Operator => "A member of the abuse team took the decision.".to_string(),
        DecidedBy::Approvers => format!("{approvals} person(s) approved the decision."),
    };
    format!("{detection} {decision}")
}

/// A statement in the shape of the Transparency Database's statement
/// submission (the body of its `POST /api/v1/statement`); the rules are in
/// `docs/dsa/statement-submission.schema.json`. Absent fields are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransparencySubmission {
    /// Visibility restrictions of content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_visibility: Option<Vec<String>>,
    /// What `DECISION_VISIBILITY_OTHER` means here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_visibility_other: Option<String>,
    /// Suspension or termination of the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_provision: Option<String>,
    /// Suspension or termination of the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_account: Option<String>,
    /// Business or private account.
    pub account_type: String,
    /// Illegal content or incompatible with the terms.
    pub decision_ground: String,
    /// The contractual ground (the AUP clauses and policy version).
    pub incompatible_content_ground: String,
    /// Why the content breaks it (the clauses' text).
    pub incompatible_content_explanation: String,
    /// What kind of content.
    pub content_type: Vec<String>,
    /// The main category.
    pub category: String,
    /// Further categories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_addition: Option<Vec<String>>,
    /// Keywords.
    pub category_specification: Vec<String>,
    /// Countries.
    pub territorial_scope: Vec<String>,
    /// When the content was seen (`YYYY-MM-DD`).
    pub content_date: String,
    /// When the decision applies from (`YYYY-MM-DD`).
    pub application_date: String,
    /// The facts and circumstances.
    pub decision_facts: String,
    /// A notice or own initiative.
    pub source_type: String,
    /// `Yes` or `No`.
    pub automated_detection: String,
    /// Fully, partially or not automated.
    pub automated_decision: String,
    /// The statement's id, unique within the provider.
    pub puid: String,
}

/// The statement as a Transparency Database statement submission.
pub fn transparency_submission(s: &StatementOfReasons, case: &Case) -> TransparencySubmission {
    let primary = s
        .grounds
        .first()
        .map(|g| g.category.as_str())
        .unwrap_or_default();
    let (category, keyword) = transparency_category(primary);
    let mut additions: Vec<String> = s
        .grounds
        .iter()
        .skip(1)
        .map(|g| transparency_category(&g.category).0)
        .filter(|c| *c != category)
        .map(str::to_string)
        .collect();
    additions.sort();
    additions.dedup();
    let ground = s
        .grounds
        .iter()
        .map(|g| format!("AUP {} ({})", g.category, g.title))
        .collect::<Vec<_>>()
        .join("; ");
    let version: String = s
        .grounds
        .first()
        .map(|g| g.policy_version.chars().take(12).collect())
        .unwrap_or_default();
    let explanation = s
        .grounds
        .iter()
        .map(|g| g.clause.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let whole = s.decision.resources.is_empty();
    let (visibility, visibility_other, provision, account) = match s.restriction {
        Restriction::RemovalNotice => (
            Some(vec!["DECISION_VISIBILITY_OTHER".to_string()]),
            Some("Notice to the hosting customer to remove the content by a deadline, on pain of suspension of its service".to_string()),
            None,
            None,
        ),
        Restriction::Suspension => (
            None,
            None,
            Some(if whole {
                "DECISION_PROVISION_TOTAL_SUSPENSION"
            } else {
                "DECISION_PROVISION_PARTIAL_SUSPENSION"
            }
            .to_string()),
            whole.then(|| "DECISION_ACCOUNT_SUSPENDED".to_string()),
        ),
    };
    let facts = format!(
        "{} {} {}",
        s.decision.summary, s.facts.summary, s.automation.explanation
    );
    TransparencySubmission {
        decision_visibility: visibility,
        decision_visibility_other: visibility_other,
        decision_provision: provision,
        decision_account: account,
        account_type: "ACCOUNT_TYPE_BUSINESS".into(),
        decision_ground: "DECISION_GROUND_INCOMPATIBLE_CONTENT".into(),
        incompatible_content_ground: clip(&format!("{ground}, policy version {version}"), 500),
        incompatible_content_explanation: clip(&explanation, 2000),
        content_type: vec!["CONTENT_TYPE_TEXT".into()],
        category: category.into(),
        category_addition: (!additions.is_empty()).then_some(additions),
        category_specification: vec![keyword.into()],
        territorial_scope: s.decision.territorial_scope.clone(),
        content_date: day(case.created_at),
        application_date: day(s.issued_at),
        decision_facts: clip(&facts, 5000),
        source_type: match s.facts.source {
            FactSource::EmployeeReport => "SOURCE_TYPE_OTHER_NOTIFICATION",
            FactSource::OwnInitiative => "SOURCE_VOLUNTARY",
        }
        .into(),
        automated_detection: if s.automation.detected_automatically {
            "Yes"
        } else {
            "No"
        }
        .into(),
        automated_decision: match (s.automation.decided_by, s.automation.detected_automatically) {
            (DecidedBy::Automatically, _) => "AUTOMATED_DECISION_FULLY",
            (_, true) => "AUTOMATED_DECISION_PARTIALLY",
            (_, false) => "AUTOMATED_DECISION_NOT_AUTOMATED",
        }
        .into(),
        puid: s.id.clone(),
    }
}

/// `YYYY-MM-DD` in UTC, the database's date form.
fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// At most `max` characters, the database's limits.
fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Approval, CaseState, Deadline, DeadlineId, DeadlineKind, EvidenceRef, ReportRef, Severity,
        Suspension,
    };

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn case() -> Case {
        let id = CaseId(uuid::Uuid::nil());
        Case {
            id,
            tenant: TenantId::try_from("parlor".to_string()).unwrap(),
            categories: vec!["hate-speech".into(), "violent-incitement".into()],
            severity: Severity::Critical,
            state: CaseState::Noticed,
            owner: None,
            evidence: vec![
                EvidenceRef {
                    kind: EvidenceKind::Prevalence {
                        sampled: 2000,
                        flagged: 62,
                        lower: 0.024,
                        upper: 0.039,
                    },
                    category: "violent-incitement".into(),
                    url: None,
                    policy_version: Some("ab".repeat(32)),
                },
                EvidenceRef {
                    kind: EvidenceKind::Finding {
                        finding_id: "f1".into(),
                        score: 0.9,
                    },
                    category: "violent-incitement".into(),
                    url: Some("https://parlor.example/p/1".into()),
                    policy_version: Some("ab".repeat(32)),
                },
            ],
            reports: Vec::new(),
            plan: None,
            suspension: None,
            approvals: Vec::new(),
            deadline: Some(Deadline {
                id: DeadlineId("d".into()),
                case: id,
                kind: DeadlineKind::CureDeadline,
                due_at: at("2026-12-01T13:00:00Z"),
            }),
            reminders: Vec::new(),
            paused_remaining: None,
            appeals: Vec::new(),
            participants: Vec::new(),
            statements: Vec::new(),
            version: 3,
            created_at: at("2026-12-01T10:00:00Z"),
            updated_at: at("2026-12-01T12:00:00Z"),
        }
    }

    fn clauses() -> PolicyClauses {
        PolicyClauses {
            version: "cd".repeat(32),
            clauses: vec![Clause {
                category: "hate-speech".into(),
                title: "Hate speech".into(),
                text: " No attacks on people for who they are. ".into(),
            }],
        }
    }

    #[test]
    fn an_automatic_notice_names_the_deadline_the_facts_and_the_clause() {
        let s = build(
            &case(),
            Restriction::RemovalNotice,
            ActorKind::Service,
            &clauses(),
            at("2026-12-01T12:00:00Z"),
        );
        assert_eq!(
            s.id,
            "00000000-0000-0000-0000-000000000000-v3-removal_notice"
        );
        assert_eq!(s.decision.deadline, Some(at("2026-12-01T13:00:00Z")));
        assert_eq!(s.decision.content_urls, vec!["https://parlor.example/p/1"]);
        assert_eq!(s.decision.territorial_scope.len(), 30);
        assert_eq!(s.facts.source, FactSource::OwnInitiative);
        assert_eq!(s.facts.findings, 1);
        assert_eq!(s.facts.prevalence[0].flagged, 62);
        assert!(s.facts.summary.contains("2.4%–3.9%"), "{}", s.facts.summary);
        assert_eq!(s.facts.policy_versions, vec!["ab".repeat(32)]);
        assert!(s.automation.detected_automatically);
        assert!(s.automation.decided_automatically);
        assert_eq!(
            s.grounds[0].clause,
            "No attacks on people for who they are."
        );
        assert_eq!(s.grounds[0].policy_version, "cd".repeat(32));
        assert_eq!(
            s.grounds[1].clause,
            "category `violent-incitement` of the acceptable-use policy"
        );
        assert!(s.redress.appeal_route.ends_with("/appeal"));
    }

    #[test]
    fn a_suspension_approved_by_people_after_a_report_says_so() {
        let mut c = case();
        c.reports.push(ReportRef {
            report_id: "r1".into(),
            reporter: "rita".into(),
        });
        c.evidence.clear();
        c.state = CaseState::SuspensionOrdered;
        c.suspension = Some(Suspension {
            scope: SuspensionScope::Resources {
                ids: vec!["bucket-1".into()],
            },
            proposed_by: crate::domain::Actor::system(),
            reason: "cure deadline missed".into(),
            proposed_at: at("2026-12-01T13:00:00Z"),
        });
        for who in ["alice", "bob"] {
            c.approvals.push(Approval {
                approver: who.into(),
                reason: "clear".into(),
                at: at("2026-12-01T13:00:00Z"),
            });
        }
        let s = build(
            &c,
            Restriction::Suspension,
            ActorKind::Approver,
            &clauses(),
            at("2026-12-01T14:00:00Z"),
        );
        assert_eq!(s.decision.resources, vec!["bucket-1"]);
        assert_eq!(s.facts.source, FactSource::EmployeeReport);
        assert!(!s.automation.detected_automatically);
        assert!(!s.automation.decided_automatically);
        assert_eq!(s.automation.decided_by, DecidedBy::Approvers);
        assert_eq!(s.automation.approvals, 2);
        // No personal data: approvers and reporters are not named.
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("alice") && !text.contains("rita"), "{text}");

        let tdb = serde_json::to_value(transparency_submission(&s, &c)).unwrap();
        assert_eq!(
            tdb["decision_provision"],
            "DECISION_PROVISION_PARTIAL_SUSPENSION"
        );
        assert!(tdb.get("decision_account").is_none());
        assert_eq!(tdb["source_type"], "SOURCE_TYPE_OTHER_NOTIFICATION");
        assert_eq!(tdb["automated_detection"], "No");
        assert_eq!(
            tdb["automated_decision"],
            "AUTOMATED_DECISION_NOT_AUTOMATED"
        );
        assert_eq!(
            tdb["category"],
            "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH"
        );
        assert_eq!(
            tdb["category_addition"],
            serde_json::json!(["STATEMENT_CATEGORY_VIOLENCE"])
        );
        assert_eq!(tdb["application_date"], "2026-12-01");
        assert_eq!(tdb["content_date"], "2026-12-01");
    }

    #[test]
    fn the_export_of_a_notice_keeps_to_the_databases_limits() {
        let mut c = case();
        c.suspension = None;
        let mut cl = clauses();
        cl.clauses[0].text = "x".repeat(3000);
        let s = build(
            &c,
            Restriction::RemovalNotice,
            ActorKind::Operator,
            &cl,
            at("2026-12-01T12:00:00Z"),
        );
        let tdb = serde_json::to_value(transparency_submission(&s, &c)).unwrap();
        assert_eq!(
            tdb["decision_visibility"],
            serde_json::json!(["DECISION_VISIBILITY_OTHER"])
        );
        assert_eq!(
            tdb["incompatible_content_explanation"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            2000
        );
        assert_eq!(tdb["automated_decision"], "AUTOMATED_DECISION_PARTIALLY");
        assert_eq!(tdb["puid"], s.id);
        assert!(s
            .id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
    }

    #[test]
    fn unmapped_categories_count_as_another_violation_of_the_terms() {
        assert_eq!(
            transparency_category("spam"),
            ("STATEMENT_CATEGORY_OTHER_VIOLATION_TC", "KEYWORD_OTHER")
        );
    }
}
