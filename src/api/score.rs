//! Scoring text and managing the policy in force.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::{Admin, Scorer};
use super::body::ApiJson;
use super::{ApiError, AppState};
use crate::policy::{LoadError, Verdict};

/// Most texts one request may score.
pub const MAX_TEXTS_PER_REQUEST: usize = 1000;

/// Body of `POST /v1/score`: exactly one of `text` or `texts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "we meet at noon"}))]
pub struct ScoreRequest {
    text: Option<String>,
    texts: Option<Vec<String>>,
}

/// What to score, once validated.
#[derive(Debug, PartialEq)]
pub enum ScoreInput {
    /// One text; answered with one verdict.
    One(String),
    /// Several; answered with a list in the same order.
    Many(Vec<String>),
}

impl TryFrom<ScoreRequest> for ScoreInput {
    type Error = ApiError;

    fn try_from(req: ScoreRequest) -> Result<Self, ApiError> {
        match (req.text, req.texts) {
            (Some(t), None) => Ok(ScoreInput::One(t)),
            (None, Some(ts)) if ts.is_empty() => Err(ApiError::bad_request(
                "invalid_body",
                "`texts` must hold at least one text",
            )),
            (None, Some(ts)) if ts.len() > MAX_TEXTS_PER_REQUEST => Err(ApiError::bad_request(
                "too_many_texts",
                format!(
                    "`texts` holds {} texts; the limit is {MAX_TEXTS_PER_REQUEST}",
                    ts.len()
                ),
            )),
            (None, Some(ts)) => Ok(ScoreInput::Many(ts)),
            _ => Err(ApiError::bad_request(
                "invalid_body",
                "give exactly one of `text` (a string) or `texts` (a list of strings)",
            )),
        }
    }
}

/// Answer of `POST /v1/score`: one verdict for `text`, a list for `texts`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum ScoreReply {
    /// For `text`.
    One(Verdict),
    /// For `texts`.
    Many(ScoreManyResponse),
}

/// Answer of `POST /v1/score` with `texts`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScoreManyResponse {
    verdicts: Vec<Verdict>,
}

fn score_one(engine: &crate::policy::Engine, text: &str) -> Verdict {
    let started = std::time::Instant::now();
    let verdict = engine.score(text);
    crate::metrics::scored("api", &verdict, started.elapsed());
    verdict
}

/// Scores one or more texts against the policy in force.
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post,
    path = "/v1/score",
    tag = "policy",
    request_body(content = ScoreRequest, content_type = "application/json", description = "JSON body (unknown fields are refused)"),
    responses((status = 200, description = "with `text`: one verdict; with `texts`: `{verdicts: [...]}` in the same order", body = ScoreReply)),
    security(("bearer" = ["admin", "operator", "service"]))
)]
pub async fn score_text(
    _caller: Scorer,
    state: web::Data<AppState>,
    body: ApiJson<ScoreRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = ScoreInput::try_from(body.into_inner())?;
    let engine = state.policy.current();
    Ok(match input {
        ScoreInput::One(text) => {
            HttpResponse::Ok().json(ScoreReply::One(score_one(&engine, &text)))
        }
        ScoreInput::Many(texts) => {
            let verdicts =
                web::block(move || texts.iter().map(|t| score_one(&engine, t)).collect())
                    .await
                    .map_err(|e| ApiError::Internal(anyhow::anyhow!("scoring task failed: {e}")))?;
            HttpResponse::Ok().json(ScoreReply::Many(ScoreManyResponse { verdicts }))
        }
    })
}

/// Summary of a category, as `GET /v1/policy` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct CategorySummary<'a> {
    id: &'a str,
    title: &'a str,
    severity: crate::domain::Severity,
    flag_threshold: f32,
    aup: &'a str,
    detectors: Vec<&'a str>,
}

/// Reply of `GET /v1/policy`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PolicySummary<'a> {
    /// The policy's name.
    name: &'a str,
    /// Content hash of the policy and model files.
    version: &'a str,
    /// Its categories.
    categories: Vec<CategorySummary<'a>>,
}

/// Reply of `POST /v1/policy/reload`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    /// The version in force before.
    pub previous_version: String,
    /// The version in force now.
    pub version: String,
}

/// The policy in force: version and categories.
#[utoipa::path(
    get,
    path = "/v1/policy",
    tag = "policy",
    responses((status = 200, description = "the policy in force", body = PolicySummary)),
    security(("bearer" = ["admin", "operator", "approver"]))
)]
pub async fn get_policy(
    _caller: super::auth::CaseReader,
    state: web::Data<AppState>,
) -> HttpResponse {
    let engine = state.policy.current();
    let p = engine.policy();
    let categories: Vec<CategorySummary> = p
        .categories
        .iter()
        .map(|c| CategorySummary {
            id: &c.id,
            title: &c.title,
            severity: c.severity,
            flag_threshold: c.flag_threshold,
            aup: &c.aup,
            detectors: c.detectors.iter().map(|d| d.id.as_str()).collect(),
        })
        .collect();
    HttpResponse::Ok().json(PolicySummary {
        name: &p.name,
        version: &p.version,
        categories,
    })
}

/// Reloads the policy from disk; an invalid policy is refused and the one in
/// force stays.
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post,
    path = "/v1/policy/reload",
    tag = "policy",
    responses((status = 200, description = "the policy reloaded", body = Reloaded)),
    security(("bearer" = ["admin"]))
)]
pub async fn reload_policy(
    _caller: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let handle = state.policy.clone();
    let before = handle.current().version().to_string();
    let result = web::block(move || handle.reload())
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("policy reload task failed: {e}")))?;
    match result {
        Ok(engine) => {
            tracing::info!(from = %before, to = %engine.version(), "policy reloaded");
            let sync = state.policy_sync.clone();
            super::error::blocking("recording the wanted policy version", move || {
                sync.reloaded_here()
                    .map_err(|e| ApiError::Internal(e.into()))
            })
            .await?;
            Ok(HttpResponse::Ok().json(Reloaded {
                previous_version: before,
                version: engine.version().to_string(),
            }))
        }
        Err(err) => {
            tracing::warn!(error = %err, "policy reload refused");
            Err(policy_refused(err))
        }
    }
}

fn policy_refused(err: LoadError) -> ApiError {
    let details = match &err {
        LoadError::Invalid(errors) => serde_json::Value::Array(
            errors
                .0
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "file": e.file.display().to_string(),
                        "line": e.line,
                        "key": e.key,
                        "message": e.message,
                    })
                })
                .collect(),
        ),
        LoadError::Compile(e) => serde_json::json!([{ "message": e.to_string() }]),
    };
    ApiError::Unprocessable {
        code: "invalid_policy",
        message: "the new policy is invalid; the policy in force is unchanged".into(),
        details: Some(details),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: Option<&str>, texts: Option<Vec<&str>>) -> ScoreRequest {
        ScoreRequest {
            text: text.map(str::to_string),
            texts: texts.map(|v| v.into_iter().map(str::to_string).collect()),
        }
    }

    #[test]
    fn one_text_or_many_but_not_both_or_neither() {
        assert_eq!(
            ScoreInput::try_from(req(Some("a"), None)).unwrap(),
            ScoreInput::One("a".into())
        );
        assert!(matches!(
            ScoreInput::try_from(req(None, Some(vec!["a", "b"]))).unwrap(),
            ScoreInput::Many(v) if v.len() == 2
        ));
        assert_eq!(
            ScoreInput::try_from(req(Some("a"), Some(vec!["b"])))
                .unwrap_err()
                .code(),
            "invalid_body"
        );
        assert_eq!(
            ScoreInput::try_from(req(None, None)).unwrap_err().code(),
            "invalid_body"
        );
        assert_eq!(
            ScoreInput::try_from(req(None, Some(vec![])))
                .unwrap_err()
                .code(),
            "invalid_body"
        );
    }

    #[test]
    fn too_many_texts_are_refused() {
        let many = vec!["x"; MAX_TEXTS_PER_REQUEST + 1];
        assert_eq!(
            ScoreInput::try_from(req(None, Some(many)))
                .unwrap_err()
                .code(),
            "too_many_texts"
        );
    }
}
