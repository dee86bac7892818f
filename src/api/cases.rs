//! The operator's side of cases: the queue, case detail, opening a case
//! and every action on it. Approvers use the same routes; `decide` checks
//! who may do what.

use actix_web::{web, HttpResponse};
use jiff::Timestamp;
use serde::Deserialize;

use super::auth::{CaseReader, Operator};
use super::body::ApiJson;
use super::error::blocking;
use super::{ApiError, AppState};
use crate::domain::limits::{within, MAX_ID_BYTES, MAX_REASON_BYTES};
use crate::domain::{
    AppealOutcome, Case, CaseId, CaseState, Command, Severity, SuspensionScope, TenantId,
};
use crate::enforcement::ladder::parse_duration;
use crate::service::cases::HandOpen;

/// Routes under `/v1/cases`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.get("/v1/cases", list_cases);
    e.post("/v1/cases", open_case);
    e.get("/v1/cases/{id}", get_case);
    e.post("/v1/cases/{id}/actions", act_on_case);
}

/// Query of `GET /v1/cases`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    /// Only cases in this state.
    #[param(value_type = Option<crate::domain::case::CaseState>)]
    state: Option<String>,
    /// Only cases of this severity.
    #[param(value_type = Option<Severity>)]
    severity: Option<Severity>,
    tenant: Option<String>,
    category: Option<String>,
    /// `open` (default): only cases still in progress; `all`: every case.
    #[param(pattern = "^(open|all)$")]
    scope: Option<String>,
    /// At most this many cases (default 100; held to 1-1000).
    limit: Option<usize>,
}

/// Parses a case id from a path; anything else is simply not found.
pub fn parse_case_id(raw: &str) -> Result<CaseId, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(CaseId)
        .map_err(|_| ApiError::NotFound("case"))
}

/// A case as the abuse team sees it, with the live countdown.
pub fn operator_view(case: &Case, now: Timestamp) -> CaseView {
    CaseView {
        case: case.clone(),
        deadline_due_at: case.deadline.as_ref().map(|d| d.due_at),
        seconds_to_deadline: case
            .deadline
            .as_ref()
            .map(|d| d.due_at.as_second() - now.as_second()),
        history: None,
    }
}

/// A case as operators see it: the record, and how long its clock has left.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CaseView {
    /// The case record.
    #[serde(flatten)]
    pub case: Case,
    /// When the pending deadline falls due (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_due_at: Option<Timestamp>,
    /// Seconds until then (negative when overdue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_deadline: Option<i64>,
    /// `GET /v1/cases/{id}` only: the case's audit events, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<serde_json::Value>>,
}

/// Reply of `GET /v1/cases`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CaseList {
    /// The cases, nearest deadline first, at most `limit`.
    pub cases: Vec<CaseView>,
    /// How many cases matched before the limit.
    pub total: usize,
}

/// Reply of `POST /v1/cases/{id}/actions`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ActionReply {
    /// The case after the action.
    pub case: CaseView,
    /// The events the action recorded.
    pub events: Vec<crate::domain::CaseEvent>,
}

#[utoipa::path(
    get,
    path = "/v1/cases",
    tag = "cases",
    params(CaseQuery),
    responses((status = 200, description = "the cases that match, nearest deadline first", body = CaseList)),
    security(("bearer" = ["admin", "operator", "approver"]))
)]
async fn list_cases(
    _caller: CaseReader,
    state: web::Data<AppState>,
    query: web::Query<CaseQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let wanted_state = match &q.state {
        Some(s) => Some(
            CaseState::ALL
                .iter()
                .copied()
                .find(|k| k.as_str() == s)
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_query", format!("unknown state `{s}`"))
                })?,
        ),
        None => None,
    };
    let all_scope = match q.scope.as_deref() {
        None | Some("open") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("scope is `open` or `all`, not `{other}`"),
            ))
        }
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let now = state.cases.clock().now();
    // The narrowest index that holds every wanted case.
    let candidates = match (&q.tenant, wanted_state) {
        (Some(t), _) => state.cases.of_tenant(t).await?,
        (None, Some(s)) if s.is_open() => state.cases.open().await?,
        (None, None) if !all_scope => state.cases.open().await?,
        (None, _) => state.cases.all().await?,
    };
    let mut cases: Vec<Case> = candidates
        .into_iter()
        .filter(|c| match wanted_state {
            Some(s) => c.state == s,
            None => all_scope || c.state.is_open(),
        })
        .filter(|c| q.severity.is_none_or(|s| c.severity == s))
        .filter(|c| q.tenant.as_deref().is_none_or(|t| c.tenant.as_str() == t))
        .filter(|c| {
            q.category
                .as_deref()
                .is_none_or(|k| c.categories.iter().any(|x| x == k))
        })
        .collect();
    // Nearest deadline first; cases without a running clock after them.
    cases.sort_by_key(|c| {
        (
            c.deadline
                .as_ref()
                .map_or(i64::MAX, |d| d.due_at.as_millisecond()),
            c.created_at,
        )
    });
    let total = cases.len();
    let cases: Vec<CaseView> = cases
        .iter()
        .take(limit)
        .map(|c| operator_view(c, now))
        .collect();
    Ok(HttpResponse::Ok().json(CaseList { cases, total }))
}

#[utoipa::path(
    get,
    path = "/v1/cases/{id}",
    tag = "cases",
    params(("id" = String, Path, description = "id of the resource")),
    responses((status = 200, description = "the case with its history", body = CaseView)),
    security(("bearer" = ["admin", "operator", "approver"]))
)]
async fn get_case(
    _caller: CaseReader,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_case_id(&path)?;
    let case = state
        .cases
        .get(&id)
        .await?
        .ok_or(ApiError::NotFound("case"))?;
    let now = state.cases.clock().now();
    let store = state.sampling.store().clone();
    let tenant = case.tenant.as_str().to_string();
    let history = blocking("history", move || case_history(&store, &tenant, &id)).await?;
    let mut view = operator_view(&case, now);
    view.history = Some(history);
    Ok(HttpResponse::Ok().json(view))
}

/// The audit events of one case, oldest first.
pub fn case_history(
    store: &crate::store::SharedStore,
    _tenant: &str,
    id: &CaseId,
) -> Result<Vec<serde_json::Value>, crate::store::StoreError> {
    Ok(crate::store::events::of_case(store, id)?
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "seq": e.seq, "at": e.at, "kind": e.kind, "event": e.data,
            })
        })
        .collect())
}

/// Body of `POST /v1/cases`: an operator opens a case.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tenant": "parlor", "categories": ["violent-incitement"], "severity": "high", "reason": "reported by trust and safety"}))]
pub struct OpenCaseRequest {
    tenant: String,
    categories: Vec<String>,
    #[schema(value_type = Option<Severity>, example = "high")]
    severity: Option<Severity>,
    /// Finding (sample) ids from `GET /v1/tenants/{id}/findings`.
    #[serde(default)]
    findings: Vec<String>,
    reason: String,
}

#[utoipa::path(
    post,
    path = "/v1/cases",
    tag = "cases",
    request_body(content = OpenCaseRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 201, description = "the case, opened", body = CaseView)),
    security(("bearer" = ["admin", "operator"]))
)]
async fn open_case(
    Operator(caller): Operator,
    state: web::Data<AppState>,
    body: ApiJson<OpenCaseRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    for (i, c) in body.categories.iter().enumerate() {
        within(format!("categories[{i}]"), c, MAX_ID_BYTES)?;
    }
    for (i, f) in body.findings.iter().enumerate() {
        within(format!("findings[{i}]"), f, MAX_ID_BYTES)?;
    }
    let tenant = TenantId::try_from(body.tenant)
        .map_err(|m| ApiError::bad_request("invalid_tenant_id", m))?;
    let reason = required_reason(&body.reason)?;
    let request = HandOpen {
        tenant,
        categories: body.categories,
        severity: body.severity,
        findings: body.findings,
        reason,
    };
    let engine = state.policy.current();
    let t = state
        .cases
        .open_by_hand(&caller.actor(), &engine, request)
        .await?;
    Ok(HttpResponse::Created().json(operator_view(&t.case, state.cases.clock().now())))
}

/// Body of `POST /v1/cases/{id}/actions`. Every action needs a reason.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[schema(example = json!({"action": "send_notice", "reason": "incitement confirmed on review"}))]
pub enum ActionRequest {
    /// Take ownership or hand the case to someone.
    #[schema(title = "AssignAction")]
    Assign {
        /// Who owns it now.
        owner: String,
        /// Why.
        reason: String,
    },
    /// Tell the tenant and start the cure clock.
    #[schema(title = "SendNoticeAction")]
    SendNotice {
        /// Why.
        reason: String,
    },
    /// Give the tenant more time, e.g. `"24h"`.
    #[schema(title = "ExtendAction")]
    Extend {
        /// How much more.
        by: String,
        /// Why.
        reason: String,
    },
    /// Accept the tenant's plan; evidence is re-fetched to verify removal.
    #[schema(title = "AcceptPlanAction")]
    AcceptPlan {
        /// Why.
        reason: String,
    },
    /// Reject the plan; the clock resumes.
    #[schema(title = "RejectPlanAction")]
    RejectPlan {
        /// Why.
        reason: String,
    },
    /// Declare the case cured without verified removal.
    #[schema(title = "OverrideCureAction")]
    OverrideCure {
        /// Why.
        reason: String,
    },
    /// Not a violation.
    #[schema(title = "DismissAction")]
    Dismiss {
        /// Why.
        reason: String,
    },
    /// Escalate now.
    #[schema(title = "EscalateAction")]
    Escalate {
        /// Why.
        reason: String,
    },
    /// Propose suspending the tenant (or some resources).
    #[schema(title = "ProposeSuspensionAction")]
    ProposeSuspension {
        /// Why.
        reason: String,
        /// What to suspend; the whole tenant when absent.
        #[serde(default)]
        resources: Option<Vec<String>>,
    },
    /// Approve a proposed suspension (approvers only).
    #[schema(title = "ApproveSuspensionAction")]
    ApproveSuspension {
        /// Why.
        reason: String,
    },
    /// Lift a suspension.
    #[schema(title = "ReinstateAction")]
    Reinstate {
        /// Why.
        reason: String,
    },
    /// Decide the tenant's pending appeal (an approver who took no part).
    #[schema(title = "DecideAppealAction")]
    DecideAppeal {
        /// `granted` or `denied`.
        outcome: AppealOutcome,
        /// Why.
        reason: String,
    },
}

fn required_reason(reason: &str) -> Result<String, ApiError> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(ApiError::bad_request(
            "reason_required",
            "every action needs a reason",
        ));
    }
    Ok(within("reason", r, MAX_REASON_BYTES)?.to_string())
}

impl TryFrom<ActionRequest> for (Command, String) {
    type Error = ApiError;

    fn try_from(a: ActionRequest) -> Result<Self, ApiError> {
        use ActionRequest as A;
        Ok(match a {
            A::Assign { owner, reason } => {
                let owner = within("owner", owner.trim(), MAX_ID_BYTES)?.to_string();
                if owner.is_empty() {
                    return Err(ApiError::bad_request(
                        "invalid_body",
                        "`owner` must not be empty",
                    ));
                }
                (Command::Assign { owner }, required_reason(&reason)?)
            }
            A::SendNotice { reason } => (Command::SendNotice, required_reason(&reason)?),
            A::Extend { by, reason } => {
                let d = parse_duration(&by)
                    .filter(|d| d.is_positive())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_body",
                            format!("`by` is a duration like 90m, 24h or 3d, not `{by}`"),
                        )
                    })?;
                let reason = required_reason(&reason)?;
                (
                    Command::Extend {
                        by: d,
                        reason: reason.clone(),
                    },
                    reason,
                )
            }
            A::AcceptPlan { reason } => {
                let r = required_reason(&reason)?;
                (Command::AcceptPlan { reason: r.clone() }, r)
            }
            A::RejectPlan { reason } => {
                let r = required_reason(&reason)?;
                (Command::RejectPlan { reason: r.clone() }, r)
            }
            A::OverrideCure { reason } => {
                let r = required_reason(&reason)?;
                (Command::OverrideCure { reason: r.clone() }, r)
            }
            A::Dismiss { reason } => {
                let r = required_reason(&reason)?;
                (Command::Dismiss { reason: r.clone() }, r)
            }
            A::Escalate { reason } => {
                let r = required_reason(&reason)?;
                (Command::Escalate { reason: r.clone() }, r)
            }
            A::ProposeSuspension { reason, resources } => {
                let r = required_reason(&reason)?;
                let scope = match resources {
                    None => SuspensionScope::Tenant,
                    Some(ids) if ids.is_empty() => {
                        return Err(ApiError::bad_request("invalid_body", "`resources` lists at least one resource, or is left out to suspend the tenant"))
                    }
                    Some(ids) => {
                        for (i, id) in ids.iter().enumerate() {
                            within(format!("resources[{i}]"), id, MAX_ID_BYTES)?;
                        }
                        SuspensionScope::Resources { ids }
                    }
                };
                (
                    Command::ProposeSuspension {
                        reason: r.clone(),
                        scope,
                    },
                    r,
                )
            }
            A::ApproveSuspension { reason } => {
                let r = required_reason(&reason)?;
                (Command::ApproveSuspension { reason: r.clone() }, r)
            }
            A::Reinstate { reason } => {
                let r = required_reason(&reason)?;
                (Command::Reinstate { reason: r.clone() }, r)
            }
            A::DecideAppeal { outcome, reason } => {
                let r = required_reason(&reason)?;
                (
                    Command::DecideAppeal {
                        outcome,
                        reason: r.clone(),
                    },
                    r,
                )
            }
        })
    }
}

#[utoipa::path(
    post,
    path = "/v1/cases/{id}/actions",
    tag = "cases",
    params(("id" = String, Path, description = "id of the resource")),
    request_body(content = ActionRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "the case after the action, and the events it recorded", body = ActionReply)),
    security(("bearer" = ["admin", "operator", "approver"]))
)]
async fn act_on_case(
    CaseReader(caller): CaseReader,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<ActionRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_case_id(&path)?;
    let (command, reason) = <(Command, String)>::try_from(body.into_inner())?;
    let t = state
        .cases
        .execute(Some(&id), &caller.actor(), command, Some(reason))
        .await?;
    for_effects(&state, &t);
    let now = state.cases.clock().now();
    Ok(HttpResponse::Ok().json(ActionReply {
        case: operator_view(&t.case, now),
        events: t.events,
    }))
}

/// Hands a transition's effects (cure verification) to the workers, off the
/// request: the response does not wait for re-fetches.
pub fn for_effects(state: &web::Data<AppState>, t: &crate::domain::Transition) {
    if t.effects.is_empty() {
        return;
    }
    let workers = state.workers.clone();
    let t = t.clone();
    actix_web::rt::spawn(async move { workers.perform(&t).await });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<(Command, String), ApiError> {
        let req: ActionRequest = serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
        <(Command, String)>::try_from(req)
    }

    #[test]
    fn actions_parse_into_commands_with_their_reason() {
        let (c, r) =
            parse(serde_json::json!({"action": "extend", "by": "24h", "reason": "tenant asked"}))
                .unwrap();
        assert!(matches!(c, Command::Extend { by, .. } if by.as_secs() == 86400));
        assert_eq!(r, "tenant asked");
        let (c, _) = parse(serde_json::json!({"action": "propose_suspension", "reason": "missed", "resources": ["web-1"]})).unwrap();
        assert!(matches!(
            c,
            Command::ProposeSuspension {
                scope: SuspensionScope::Resources { .. },
                ..
            }
        ));
    }

    #[test]
    fn a_missing_or_blank_reason_is_refused() {
        assert_eq!(
            parse(serde_json::json!({"action": "dismiss", "reason": "  "}))
                .unwrap_err()
                .code(),
            "reason_required"
        );
        assert_eq!(
            parse(serde_json::json!({"action": "dismiss"}))
                .unwrap_err()
                .code(),
            "invalid_body"
        );
    }

    #[test]
    fn bad_durations_and_unknown_actions_are_refused() {
        assert_eq!(
            parse(serde_json::json!({"action": "extend", "by": "soon", "reason": "x"}))
                .unwrap_err()
                .code(),
            "invalid_body"
        );
        assert_eq!(
            parse(serde_json::json!({"action": "delete", "reason": "x"}))
                .unwrap_err()
                .code(),
            "invalid_body"
        );
    }
}
