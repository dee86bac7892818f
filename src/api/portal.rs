//! The tenant's side, as a tenant dashboard calls it: its own cases with
//! the evidence package (reporters and internal notes left out), the live
//! countdown, remediation plans and appeals. Another tenant's case is 404.

use actix_web::{web, HttpResponse};
use jiff::Timestamp;
use serde::Deserialize;

use super::auth::TenantCaller;
use super::body::ApiJson;
use super::cases::{for_effects, parse_case_id};
use super::{ApiError, AppState};
use crate::domain::limits::{within, MAX_TENANT_TEXT_BYTES};
use crate::domain::{Case, Command, EvidenceKind, PlanDetails, SampleId, TenantId};

/// Routes under `/v1/tenant`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.get("/v1/tenant/cases", list_my_cases);
    e.get("/v1/tenant/cases/{id}", get_my_case);
    e.post("/v1/tenant/cases/{id}/plan", submit_remediation_plan);
    e.post("/v1/tenant/cases/{id}/appeal", submit_appeal);
}

async fn my_case(state: &AppState, tenant: &TenantId, raw: &str) -> Result<Case, ApiError> {
    let id = parse_case_id(raw)?;
    match state.cases.get(&id).await? {
        Some(c) if &c.tenant == tenant => Ok(c),
        _ => Err(ApiError::NotFound("case")),
    }
}

/// A case as its tenant sees it: what it is accused of and why, its
/// evidence, its deadline, its plan, appeals and statements of reasons;
/// never who reported, reviewed or decided.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TenantCaseView {
    /// The case.
    pub id: crate::domain::CaseId,
    /// Where it stands.
    pub state: crate::domain::CaseState,
    /// The AUP categories it concerns.
    pub categories: Vec<String>,
    /// Its severity.
    pub severity: crate::domain::Severity,
    /// The policy text of each category, and the figure its rule rests on.
    pub policy: Vec<PolicyRuleView>,
    /// The evidence.
    pub evidence: Vec<TenantEvidence>,
    /// The running deadline, if any.
    pub deadline: Option<DeadlineView>,
    /// Cure time left while the clock is paused for plan review.
    pub paused_remaining_seconds: Option<i64>,
    /// The tenant's remediation plan, if it sent one.
    pub plan: Option<PlanView>,
    /// The tenant's appeals and their outcomes.
    pub appeals: Vec<AppealView>,
    /// The statement of reasons of every restriction on this case.
    pub statements: Vec<crate::domain::statement::StatementOfReasons>,
    /// When it was opened.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A category of a case as its tenant sees it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PolicyRuleView {
    /// Category id.
    pub category: String,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: crate::domain::Severity,
    /// The AUP clause.
    pub aup: String,
    /// The prevalence figure its rules rest on.
    pub estimate: crate::policy::Estimate,
    /// Items people labelled in this category.
    pub reviewed_items: u64,
    /// Items two agreeing reviewers say violate it.
    pub labelled_evidence: u64,
}

/// One piece of a case's evidence as its tenant sees it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TenantEvidence {
    /// A sampled post.
    SampledItem {
        /// The category.
        category: String,
        /// Where it was seen.
        url: Option<String>,
        /// Its category score.
        score: f32,
        /// The policy version that scored it.
        policy_version: Option<String>,
        /// Its text as kept (null once the sample is gone).
        excerpt: Option<String>,
        /// What the detectors matched, as spans of the excerpt.
        matched: Option<Vec<crate::domain::EvidenceSpan>>,
        /// When it was fetched.
        fetched_at: Option<Timestamp>,
    },
    /// The model's count over the sample.
    Prevalence {
        /// The category.
        category: String,
        /// Items sampled.
        sampled: u64,
        /// Items flagged.
        flagged: u64,
        /// The 95% interval of the flagged share.
        interval_95: [f64; 2],
    },
    /// What reviewers' labels estimate.
    LabelEstimate {
        /// The category.
        category: String,
        /// `labelled` or `corrected`.
        estimate: String,
        /// Items reviewed.
        reviewed_items: u64,
        /// The estimated rate.
        rate: f64,
        /// Its 95% interval.
        interval_95: [f64; 2],
    },
    /// Content an employee reported, by its URL only.
    ReportedContent {
        /// The category.
        category: String,
        /// The reported URL.
        url: Option<String>,
    },
}

/// A running deadline.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DeadlineView {
    /// When it falls due.
    pub due_at: Timestamp,
    /// Seconds left (0 once due).
    pub seconds_remaining: i64,
}

/// The tenant's remediation plan.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PlanView {
    /// What content was removed.
    pub removed: String,
    /// What changes to moderation the tenant makes.
    pub moderation_changes: String,
    /// By when.
    pub complete_by: Option<Timestamp>,
    /// When it was sent.
    pub submitted_at: Timestamp,
}

/// An appeal and its outcome (who decided stays internal).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AppealView {
    /// The tenant's words.
    pub text: String,
    /// When.
    pub at: Timestamp,
    /// `granted` or `denied`; null while it waits.
    pub outcome: Option<crate::domain::AppealOutcome>,
    /// Why.
    pub decision_reason: Option<String>,
    /// When it was decided.
    pub decided_at: Option<Timestamp>,
}

/// Reply of `GET /v1/tenant/cases`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TenantCaseList {
    /// The tenant's cases, newest first.
    pub cases: Vec<TenantCaseView>,
}

/// A case as its tenant sees it.
fn tenant_view(state: &AppState, case: &Case, now: Timestamp) -> TenantCaseView {
    let engine = state.policy.current();
    let policy: Vec<PolicyRuleView> = case
        .categories
        .iter()
        .filter_map(|id| engine.policy().categories.iter().find(|c| &c.id == id))
        .map(|c| {
            // Which figure the rule rests on and how many items people
            // reviewed; never who reviewed them.
            let (reviewed, agreed) =
                crate::review::review_counts(state.sampling.store(), &case.tenant, &c.id)
                    .unwrap_or_default();
            PolicyRuleView {
                category: c.id.clone(),
                title: c.title.clone(),
                severity: c.severity,
                aup: c.aup.clone(),
                estimate: c.case.estimate,
                reviewed_items: reviewed,
                labelled_evidence: agreed,
            }
        })
        .collect();
    let store = state.sampling.store();
    let mut evidence = Vec::new();
    for e in &case.evidence {
        let category = e.category.clone();
        evidence.push(match &e.kind {
            EvidenceKind::Finding { finding_id, score } => {
                let sample = uuid::Uuid::parse_str(finding_id)
                    .ok()
                    .and_then(|id| store.sample(&case.tenant, &SampleId(id)).ok().flatten());
                TenantEvidence::SampledItem {
                    category,
                    url: e.url.clone(),
                    score: *score,
                    policy_version: e.policy_version.clone(),
                    excerpt: sample.as_ref().map(|s| s.excerpt.clone()),
                    matched: sample
                        .as_ref()
                        .and_then(|s| s.verdict().map(|v| v.evidence.clone())),
                    fetched_at: sample.as_ref().map(|s| s.fetched_at),
                }
            }
            EvidenceKind::Prevalence {
                sampled,
                flagged,
                lower,
                upper,
            } => TenantEvidence::Prevalence {
                category,
                sampled: *sampled,
                flagged: *flagged,
                interval_95: [*lower, *upper],
            },
            // What reviewers' labels estimate; never who the reviewers are.
            EvidenceKind::LabelEstimate {
                estimate,
                reviewed,
                rate,
                lower,
                upper,
            } => TenantEvidence::LabelEstimate {
                category,
                estimate: estimate.clone(),
                reviewed_items: *reviewed,
                rate: *rate,
                interval_95: [*lower, *upper],
            },
            // A report's content is shown by its URL only: who reported it stays internal.
            EvidenceKind::Report { .. } => TenantEvidence::ReportedContent {
                category,
                url: e.url.clone(),
            },
        });
    }
    TenantCaseView {
        id: case.id,
        state: case.state,
        categories: case.categories.clone(),
        severity: case.severity,
        policy,
        evidence,
        deadline: case.deadline.as_ref().map(|d| DeadlineView {
            due_at: d.due_at,
            seconds_remaining: (d.due_at.as_second() - now.as_second()).max(0),
        }),
        paused_remaining_seconds: case.paused_remaining.map(|d| d.as_secs()),
        plan: case.plan.as_ref().map(|p| PlanView {
            removed: p.removed.clone(),
            moderation_changes: p.moderation_changes.clone(),
            complete_by: p.complete_by,
            submitted_at: p.submitted_at,
        }),
        // Who decided stays internal, like reporters; the outcome and its
        // reason are the tenant's.
        appeals: case
            .appeals
            .iter()
            .map(|a| AppealView {
                text: a.text.clone(),
                at: a.at,
                outcome: a.outcome,
                decision_reason: a.decision_reason.clone(),
                decided_at: a.decided_at,
            })
            .collect(),
        // The statement of reasons of every restriction on this case (DSA
        // Art. 17); they name no person, only roles and counts.
        statements: case.statements.clone(),
        created_at: case.created_at,
        updated_at: case.updated_at,
    }
}

#[utoipa::path(
    get,
    path = "/v1/tenant/cases",
    tag = "tenant portal",
    responses((status = 200, description = "the tenant's own cases, newest first", body = TenantCaseList)),
    security(("bearer" = ["tenant"]))
)]
async fn list_my_cases(
    TenantCaller(tenant, _): TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let now = state.cases.clock().now();
    let mut mine: Vec<Case> = state
        .cases
        .of_tenant(tenant.as_str())
        .await?
        .into_iter()
        .filter(|c| c.tenant == tenant)
        .collect();
    mine.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    let cases: Vec<TenantCaseView> = mine.iter().map(|c| tenant_view(&state, c, now)).collect();
    Ok(HttpResponse::Ok().json(TenantCaseList { cases }))
}

#[utoipa::path(
    get,
    path = "/v1/tenant/cases/{id}",
    tag = "tenant portal",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 200, description = "the case as its tenant sees it", body = TenantCaseView)),
    security(("bearer" = ["tenant"]))
)]
async fn get_my_case(
    TenantCaller(tenant, _): TenantCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let case = my_case(&state, &tenant, &path).await?;
    Ok(HttpResponse::Ok().json(tenant_view(&state, &case, state.cases.clock().now())))
}

/// Body of `POST /v1/tenant/cases/{id}/plan`: a structured remediation plan.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"removed": "the flagged posts", "moderation_changes": "keyword filter and two more moderators", "complete_by": "2026-12-31T00:00:00Z"}))]
pub struct PlanRequest {
    /// What content was removed.
    removed: String,
    /// What changes to moderation the tenant makes.
    moderation_changes: String,
    /// By when the changes are complete.
    #[schema(value_type = String, format = DateTime)]
    complete_by: Timestamp,
}

impl TryFrom<PlanRequest> for PlanDetails {
    type Error = ApiError;

    fn try_from(p: PlanRequest) -> Result<Self, ApiError> {
        PlanDetails::new(&p.removed, &p.moderation_changes, p.complete_by)
            .map_err(|m| ApiError::bad_request("invalid_body", m))
    }
}

#[utoipa::path(
    post,
    path = "/v1/tenant/cases/{id}/plan",
    tag = "tenant portal",
    params(("id" = String, Path, description = "id of the resource")),
    request_body(content = PlanRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "the case with the plan; the cure clock pauses while it is reviewed", body = TenantCaseView)),
    security(("bearer" = ["tenant"]))
)]
async fn submit_remediation_plan(
    TenantCaller(tenant, caller): TenantCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<PlanRequest>,
) -> Result<HttpResponse, ApiError> {
    let plan = PlanDetails::try_from(body.into_inner())?;
    let case = my_case(&state, &tenant, &path).await?;
    let t = state
        .cases
        .execute(
            Some(&case.id),
            &caller.actor(),
            Command::SubmitPlan { plan },
            None,
        )
        .await?;
    for_effects(&state, &t);
    Ok(HttpResponse::Ok().json(tenant_view(&state, &t.case, state.cases.clock().now())))
}

/// Body of `POST /v1/tenant/cases/{id}/appeal`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "These posts quote a film script."}))]
pub struct AppealRequest {
    text: String,
}

#[utoipa::path(
    post,
    path = "/v1/tenant/cases/{id}/appeal",
    tag = "tenant portal",
    params(("id" = String, Path, description = "id of the resource")),
    request_body(content = AppealRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "the case with the appeal", body = TenantCaseView)),
    security(("bearer" = ["tenant"]))
)]
async fn submit_appeal(
    TenantCaller(tenant, caller): TenantCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<AppealRequest>,
) -> Result<HttpResponse, ApiError> {
    let text = body.into_inner().text;
    within("text", &text, MAX_TENANT_TEXT_BYTES)?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "`text` is 1 to 20000 bytes",
        ));
    }
    let case = my_case(&state, &tenant, &path).await?;
    let t = state
        .cases
        .execute(
            Some(&case.id),
            &caller.actor(),
            Command::Appeal { text },
            None,
        )
        .await?;
    Ok(HttpResponse::Ok().json(tenant_view(&state, &t.case, state.cases.clock().now())))
}
