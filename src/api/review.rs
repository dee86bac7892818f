//! The review routes: the next item to label, labelling it, the labels and
//! the reviewers' agreement. Reviewers, operators and admins only; the item
//! text reaches a reviewer through these routes alone.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::Reviewer;
use super::body::ApiJson;
use super::error::blocking;
use super::tenants::tenant_path;
use super::{ApiError, AppState};
use crate::domain::{EvidenceSpan, Label, LabelOrigin, ReviewAnswer, SampleId, TenantId};
use crate::review::{self, Consensus, Queue, MAX_NOTE_BYTES};
use crate::sampling::labelled::BANDS;
use crate::service::labels::{LabelInput, Standing};
use crate::store::SharedStore;

/// Registers the review routes under `/v1`.
pub fn routes(e: &mut super::routes::Endpoints) {
    e.get("/v1/review/next", next_item)
        .get("/v1/review/labels", list_labels)
        .get("/v1/review/agreement", get_agreement)
        .post("/v1/review/{item}/label", label_item);
}

/// `?tenant=&queue=` of `GET /v1/review/next`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NextQuery {
    tenant: String,
    queue: Option<String>,
}

fn parse_queue(q: Option<&str>) -> Result<Queue, ApiError> {
    match q {
        None | Some("first") => Ok(Queue::First),
        Some("second") => Ok(Queue::Second),
        Some(other) => Err(ApiError::bad_request(
            "invalid_query",
            format!("`queue` is {other:?}: use first or second"),
        )),
    }
}

/// An item to label, with what the policy found in it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    /// The item id (the sample id): `POST /v1/review/{item}/label?tenant=`.
    pub item: SampleId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its score band.
    pub band: usize,
    /// Its highest category score.
    pub score: f64,
    /// Where it was published, if known.
    pub url: Option<String>,
    /// Its text (the bounded excerpt kept with the sample).
    pub excerpt: String,
    /// What the detectors matched.
    pub evidence: Vec<EvidenceSpan>,
    /// Every category's score.
    pub scores: BTreeMap<String, f32>,
    /// The categories the model flagged.
    pub flagged: Vec<String>,
    /// The categories to label.
    pub categories: Vec<String>,
}

/// Reply of `GET /v1/review/next`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NextItemResponse {
    /// `first` or `second`.
    pub queue: &'static str,
    /// The tenant.
    pub tenant: TenantId,
    /// The next item; `null` when the queue is empty.
    pub item: Option<ReviewItem>,
    /// The tenant's review population per score band.
    pub population: [u64; BANDS],
    /// Review slots per band for the review sample size.
    pub targets: [u64; BANDS],
    /// Items reviewed per band, in draw order.
    pub reviewed: [usize; BANDS],
}

#[utoipa::path(
    get,
    path = "/v1/review/next",
    tag = "review",
    params(NextQuery),
    responses((status = 200, description = "the next item to label (`item` null when the queue is empty) and the queue's progress", body = NextItemResponse)),
    security(("bearer" = ["admin", "operator", "reviewer"]))
)]
async fn next_item(
    caller: Reviewer,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_path(&query.tenant)?;
    let queue = parse_queue(query.queue.as_deref())?;
    let categories = policy_categories(&state);
    let store: SharedStore = state.sampling.store().clone();
    let reviewer = caller.0.name;
    let size = state.sampling.settings().review_sample_size;
    let reply = blocking("review queue", move || -> Result<_, ApiError> {
        require_tenant(&store, &tenant)?;
        let population = review::population(&store, &tenant)?;
        let item = population.next(queue, &reviewer, size).map(|c| {
            let verdict = c.sample.verdict();
            ReviewItem {
                item: c.sample.id,
                tenant: tenant.clone(),
                band: c.band,
                score: c.score,
                url: c.sample.url.clone(),
                excerpt: c.sample.excerpt.clone(),
                evidence: verdict.map(|v| v.evidence.clone()).unwrap_or_default(),
                scores: verdict.map(|v| v.scores.clone()).unwrap_or_default(),
                flagged: verdict
                    .map(|v| v.flagged.iter().map(|f| f.category.clone()).collect())
                    .unwrap_or_default(),
                categories: categories.clone(),
            }
        });
        let counts = population.counts();
        Ok(NextItemResponse {
            queue: match queue {
                Queue::First => "first",
                Queue::Second => "second",
            },
            tenant: tenant.clone(),
            item,
            population: counts,
            targets: crate::sampling::labelled::allocate(&counts, size),
            reviewed: population.reviewed_prefix(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(reply))
}

/// `?tenant=` of `POST /v1/review/{item}/label`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantQuery {
    tenant: String,
}

/// Body of `POST /v1/review/{item}/label`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"labels": {"violent-threats": "violates", "hate-speech": "does_not"}, "note": "a threat against a named person"}))]
pub struct LabelRequest {
    /// Per category: `violates`, `does_not` or `unsure`.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    labels: BTreeMap<String, ReviewAnswer>,
    /// Why, for the other reviewers (never shown to the tenant).
    note: Option<String>,
    /// `queue` (default) or `feedback` (a wrong flag or a miss seen elsewhere).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    origin: LabelOrigin,
}

impl TryFrom<(LabelRequest, &[String])> for LabelInput {
    type Error = ApiError;

    fn try_from((r, categories): (LabelRequest, &[String])) -> Result<Self, ApiError> {
        if r.labels.is_empty() {
            return Err(ApiError::bad_request(
                "no_labels",
                "`labels` is empty: give an answer for at least one category",
            ));
        }
        if let Some(unknown) = r.labels.keys().find(|c| !categories.contains(c)) {
            return Err(ApiError::bad_request(
                "unknown_category",
                format!(
                    "`labels` names {unknown:?}, which is not a category of the policy ({})",
                    categories.join(", ")
                ),
            ));
        }
        let note = r
            .note
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        if note.as_ref().is_some_and(|n| n.len() > MAX_NOTE_BYTES) {
            return Err(ApiError::TooLarge {
                code: "note_too_large",
                message: format!("`note` holds more than {MAX_NOTE_BYTES} bytes"),
            });
        }
        Ok(LabelInput {
            labels: r.labels,
            note,
            origin: r.origin,
        })
    }
}

/// One label as the review routes show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LabelView {
    /// The tenant.
    pub tenant: TenantId,
    /// The item (sample id).
    pub item: SampleId,
    /// The category.
    pub category: String,
    /// Who labelled it.
    pub reviewer: String,
    /// The answer.
    pub answer: ReviewAnswer,
    /// How the reviewer came to the item.
    pub origin: LabelOrigin,
    /// The note, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was given.
    pub at: jiff::Timestamp,
}

impl From<Label> for LabelView {
    fn from(l: Label) -> Self {
        LabelView {
            tenant: l.tenant,
            item: l.sample,
            category: l.category,
            reviewer: l.reviewer,
            answer: l.answer,
            origin: l.origin,
            note: l.note,
            at: l.at,
        }
    }
}

/// Where an item stands in one category after a label.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemCategory {
    /// The category.
    pub category: String,
    /// Reviewers who said it violates.
    pub violates: u64,
    /// Reviewers who said it does not.
    pub does_not: u64,
    /// The majority answer.
    pub consensus: Consensus,
    /// Whether it is now suspension evidence (two agreeing reviewers).
    pub evidence: bool,
}

impl From<Standing> for ItemCategory {
    fn from(s: Standing) -> Self {
        ItemCategory {
            category: s.category,
            violates: s.violates,
            does_not: s.does_not,
            consensus: s.consensus,
            evidence: s.evidence,
        }
    }
}

/// Reply of `POST /v1/review/{item}/label`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LabelItemResponse {
    /// The item.
    pub item: SampleId,
    /// Its tenant.
    pub tenant: TenantId,
    /// The labels just stored.
    pub labels: Vec<LabelView>,
    /// Where the item stands in each labelled category.
    pub categories: Vec<ItemCategory>,
}

#[utoipa::path(
    post,
    path = "/v1/review/{item}/label",
    tag = "review",
    params(("item" = String, Path, description = "the sample id"), TenantQuery),
    request_body(content = LabelRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "the labels stored and where the item stands in each category", body = LabelItemResponse)),
    security(("bearer" = ["admin", "operator", "reviewer"]))
)]
async fn label_item(
    caller: Reviewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<TenantQuery>,
    body: ApiJson<LabelRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_path(&query.tenant)?;
    let item = path
        .parse::<uuid::Uuid>()
        .map(SampleId)
        .map_err(|_| ApiError::NotFound("review item"))?;
    let categories = policy_categories(&state);
    let input = LabelInput::try_from((body.into_inner(), categories.as_slice()))?;
    let done = state
        .labels
        .record(&tenant, item, &caller.0.name, input)
        .await?;
    Ok(HttpResponse::Ok().json(LabelItemResponse {
        item,
        tenant,
        labels: done.labels.into_iter().map(LabelView::from).collect(),
        categories: done.standings.into_iter().map(ItemCategory::from).collect(),
    }))
}

/// Filters of `GET /v1/review/labels`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LabelsQuery {
    tenant: Option<String>,
    category: Option<String>,
    reviewer: Option<String>,
    #[serde(default)]
    disagreement: bool,
    limit: Option<usize>,
}

/// Reply of `GET /v1/review/labels`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LabelsResponse {
    /// The labels that pass the filters, by tenant, item, category and
    /// reviewer, at most `limit`.
    pub labels: Vec<LabelView>,
}

#[utoipa::path(
    get,
    path = "/v1/review/labels",
    tag = "review",
    params(LabelsQuery),
    responses((status = 200, description = "the labels that pass the filters", body = LabelsResponse)),
    security(("bearer" = ["admin", "operator", "reviewer"]))
)]
async fn list_labels(
    _caller: Reviewer,
    state: web::Data<AppState>,
    query: web::Query<LabelsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = match q.limit {
        None => 1000,
        Some(n @ 1..=10_000) => n,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`limit` must be between 1 and 10000",
            ))
        }
    };
    let tenant = q.tenant.as_deref().map(tenant_path).transpose()?;
    let store: SharedStore = state.sampling.store().clone();
    let labels = blocking("label scan", move || -> Result<_, ApiError> {
        let all = match &tenant {
            Some(t) => {
                require_tenant(&store, t)?;
                store.labels(t)?
            }
            None => store.all_labels()?,
        };
        let disputed: BTreeSet<(TenantId, SampleId, String)> = if q.disagreement {
            disputed_items(&all)
        } else {
            BTreeSet::new()
        };
        Ok(all
            .into_iter()
            .filter(|l| q.category.as_ref().is_none_or(|c| &l.category == c))
            .filter(|l| q.reviewer.as_ref().is_none_or(|r| &l.reviewer == r))
            .filter(|l| {
                !q.disagreement
                    || disputed.contains(&(l.tenant.clone(), l.sample, l.category.clone()))
            })
            .take(limit)
            .map(LabelView::from)
            .collect())
    })
    .await?;
    Ok(HttpResponse::Ok().json(LabelsResponse { labels }))
}

fn disputed_items(all: &[Label]) -> BTreeSet<(TenantId, SampleId, String)> {
    let mut groups: BTreeMap<(TenantId, SampleId, String), Vec<Label>> = BTreeMap::new();
    for l in all {
        groups
            .entry((l.tenant.clone(), l.sample, l.category.clone()))
            .or_default()
            .push(l.clone());
    }
    groups
        .into_iter()
        .filter(|((_, _, c), ls)| review::consensus(ls, c).2 == Consensus::Disputed)
        .map(|(k, _)| k)
        .collect()
}

/// `?tenant=` of `GET /v1/review/agreement` (all tenants without it).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgreementQuery {
    tenant: Option<String>,
}

/// Reply of `GET /v1/review/agreement`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgreementResponse {
    /// One row per reviewer and category.
    pub agreement: Vec<review::Agreement>,
}

#[utoipa::path(
    get,
    path = "/v1/review/agreement",
    tag = "review",
    params(AgreementQuery),
    responses((status = 200, description = "agreement per reviewer and category", body = AgreementResponse)),
    security(("bearer" = ["admin", "operator", "reviewer"]))
)]
async fn get_agreement(
    _caller: Reviewer,
    state: web::Data<AppState>,
    query: web::Query<AgreementQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = query.tenant.as_deref().map(tenant_path).transpose()?;
    let store: SharedStore = state.sampling.store().clone();
    let agreement = blocking("agreement", move || -> Result<_, ApiError> {
        let labels = match &tenant {
            Some(t) => {
                require_tenant(&store, t)?;
                store.labels(t)?
            }
            None => store.all_labels()?,
        };
        Ok(review::agreement(&labels))
    })
    .await?;
    Ok(HttpResponse::Ok().json(AgreementResponse { agreement }))
}

/// A category's prevalence: the model's count over the window, and beside
/// it the figures from reviewers' labels.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PrevalenceWithLabels {
    /// The model's count and the case rule.
    #[serde(flatten)]
    pub model: crate::sampling::CategoryPrevalence,
    /// Which figure the policy's rules rest on: `model`, `labelled` or
    /// `corrected`.
    pub estimate: crate::policy::Estimate,
    /// The label estimate, the corrected count and how many items people
    /// reviewed.
    #[serde(flatten)]
    pub review: review::CategoryReview,
}

/// Adds the review figures of `tenant` to its model prevalence.
pub async fn with_labels(
    state: &AppState,
    tenant: &TenantId,
    model: Vec<crate::sampling::CategoryPrevalence>,
) -> Result<Vec<PrevalenceWithLabels>, ApiError> {
    let store: SharedStore = state.sampling.store().clone();
    let names: Vec<String> = model.iter().map(|c| c.category.clone()).collect();
    let t = tenant.clone();
    let engine = state.policy.current();
    let estimate = |category: &str| {
        engine
            .policy()
            .categories
            .iter()
            .find(|c| c.id == category)
            .map(|c| c.case.estimate)
            .unwrap_or_default()
    };
    let mut figures = blocking("review figures", move || {
        review::figures(&store, &t, &names)
    })
    .await?;
    Ok(model
        .into_iter()
        .map(|m| {
            let review = figures.remove(&m.category).unwrap_or_default();
            PrevalenceWithLabels {
                estimate: estimate(&m.category),
                model: m,
                review,
            }
        })
        .collect())
}

fn policy_categories(state: &AppState) -> Vec<String> {
    state
        .policy
        .current()
        .policy()
        .categories
        .iter()
        .map(|c| c.id.clone())
        .collect()
}

fn require_tenant(store: &SharedStore, tenant: &TenantId) -> Result<(), ApiError> {
    store.tenant(tenant)?.ok_or(ApiError::NotFound("tenant"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(labels: &[(&str, ReviewAnswer)], note: Option<&str>) -> LabelRequest {
        LabelRequest {
            labels: labels.iter().map(|(c, a)| (c.to_string(), *a)).collect(),
            note: note.map(str::to_string),
            origin: LabelOrigin::Queue,
        }
    }

    #[test]
    fn labels_must_name_policy_categories_and_notes_stay_short() {
        let cats = vec!["spam".to_string(), "threat".to_string()];
        let ok = LabelInput::try_from((
            request(&[("spam", ReviewAnswer::Violates)], Some("  ")),
            cats.as_slice(),
        ))
        .unwrap();
        assert_eq!(ok.note, None);
        let err = |r| {
            LabelInput::try_from((r, cats.as_slice()))
                .unwrap_err()
                .code()
        };
        assert_eq!(err(request(&[], None)), "no_labels");
        assert_eq!(
            err(request(&[("nope", ReviewAnswer::Unsure)], None)),
            "unknown_category"
        );
        assert_eq!(
            err(request(
                &[("spam", ReviewAnswer::DoesNot)],
                Some(&"x".repeat(MAX_NOTE_BYTES + 1))
            )),
            "note_too_large"
        );
    }

    #[test]
    fn queues_parse_or_are_refused() {
        assert_eq!(parse_queue(None).unwrap(), Queue::First);
        assert_eq!(parse_queue(Some("second")).unwrap(), Queue::Second);
        assert_eq!(
            parse_queue(Some("third")).unwrap_err().code(),
            "invalid_query"
        );
    }
}
