//! The one error type of the HTTP boundary. Every failure becomes a stable
//! body `{"code": "...", "message": "..."}` with the right status; internal
//! causes are logged once, in full, and never sent to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error returned by an API route.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or one aupd does not know.
    #[error("a valid bearer token is required")]
    Unauthenticated,
    /// The caller's role may not do this.
    #[error("this token's role may not {0}")]
    Forbidden(&'static str),
    /// Nothing here, or nothing this caller may see.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is malformed; `code` names the problem.
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code.
        code: &'static str,
        /// What is wrong, in words.
        message: String,
    },
    /// The body is larger than the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request conflicts with what exists (e.g. a taken id).
    #[error("{message}")]
    Conflict {
        /// Stable machine-readable code.
        code: &'static str,
        /// What conflicts, in words.
        message: String,
    },
    /// The request holds more than a configured limit (e.g. batch size).
    #[error("{message}")]
    TooLarge {
        /// Stable machine-readable code.
        code: &'static str,
        /// The limit, in words.
        message: String,
    },
    /// The body is not JSON.
    #[error("expected a JSON body (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// A well-formed request that cannot be carried out as asked.
    #[error("{message}")]
    Unprocessable {
        /// Stable machine-readable code.
        code: &'static str,
        /// What is wrong, in words.
        message: String,
        /// Further structured detail (e.g. every policy error).
        details: Option<serde_json::Value>,
    },
    /// The case state machine refused the command.
    #[error("{message}")]
    Refused {
        /// 403 (role, separation of duties), 409 (state) or 400 (input).
        status: StatusCode,
        /// Stable code from the state machine.
        code: &'static str,
        /// What is wrong, in words.
        message: String,
    },
    /// Too many requests from this caller.
    #[error("{0}")]
    RateLimited(String),
    /// The service is not ready (e.g. no policy loaded).
    #[error("{0}")]
    Unavailable(String),
    /// Something broke inside aupd.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The stable code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Conflict { code, .. } => code,
            ApiError::TooLarge { code, .. } => code,
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Refused { code, .. } => code,
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Refused { status, .. } => *status,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        let details = match self {
            ApiError::Unprocessable { details, .. } => details.as_ref(),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            // Every 503 is worth trying again shortly.
            response.insert_header(("Retry-After", "1"));
        }
        response.json(ErrorBody {
            code: self.code(),
            message: self.to_string(),
            details,
        })
    }
}

impl From<crate::domain::limits::TooLong> for ApiError {
    fn from(e: crate::domain::limits::TooLong) -> Self {
        ApiError::bad_request("too_long", e.to_string())
    }
}

impl From<crate::sampling::SamplingError> for ApiError {
    fn from(e: crate::sampling::SamplingError) -> Self {
        use crate::sampling::SamplingError as S;
        match e {
            S::NotFound(what) => ApiError::NotFound(what),
            S::Conflict { code, message } => ApiError::Conflict { code, message },
            S::Invalid { code, message } => ApiError::BadRequest { code, message },
            S::Busy(message) => ApiError::Unavailable(message),
            S::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// Turns actix's query-string extractor failures into clear `ApiError`s.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("invalid_query", err.to_string()).into()
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.into())
    }
}

/// Runs blocking store work off the async reactor; `what` names it in the
/// log if the task itself dies.
pub async fn blocking<T, E>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    actix_web::web::block(f)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{what} task failed: {e}")))?
        .map_err(Into::into)
}

impl From<crate::service::labels::LabelError> for ApiError {
    fn from(e: crate::service::labels::LabelError) -> Self {
        use crate::service::labels::LabelError as L;
        match e {
            L::UnknownTenant => ApiError::NotFound("tenant"),
            L::UnknownItem => ApiError::NotFound("review item"),
            L::NotScored => ApiError::Conflict {
                code: "not_scored",
                message: e.to_string(),
            },
            L::Store(e) => ApiError::Internal(e),
        }
    }
}

impl From<crate::service::cases::OpenError> for ApiError {
    fn from(e: crate::service::cases::OpenError) -> Self {
        use crate::service::cases::OpenError as O;
        match e {
            O::UnknownTenant => ApiError::NotFound("tenant"),
            O::UnknownCategory(_) => ApiError::bad_request("unknown_category", e.to_string()),
            O::NoCategory => ApiError::bad_request("invalid_body", e.to_string()),
            O::Command(c) => c.into(),
        }
    }
}

impl From<crate::service::reports::ReportError> for ApiError {
    fn from(e: crate::service::reports::ReportError) -> Self {
        use crate::service::reports::ReportError as R;
        match e {
            R::UnknownCategory(_) => ApiError::bad_request("unknown_category", e.to_string()),
            R::UnknownTenant => ApiError::NotFound("tenant"),
            R::RateLimited(_) => ApiError::RateLimited(e.to_string()),
            R::Command(c) => c.into(),
        }
    }
}

impl From<crate::service::cases::CommandError> for ApiError {
    fn from(e: crate::service::cases::CommandError) -> Self {
        use crate::enforcement::DecisionError as D;
        use crate::service::cases::CommandError as C;
        match e {
            C::NotFound => ApiError::NotFound("case"),
            C::Store(e) => ApiError::Internal(e),
            C::Refused(d) => {
                let status = match &d {
                    D::NotAllowed { .. } | D::SeparationOfDuties(_) => StatusCode::FORBIDDEN,
                    D::NoSuchCase => StatusCode::NOT_FOUND,
                    D::Invalid(_) => StatusCode::BAD_REQUEST,
                    _ => StatusCode::CONFLICT,
                };
                ApiError::Refused {
                    status,
                    code: d.code(),
                    message: d.to_string(),
                }
            }
        }
    }
}

/// Turns actix's JSON extractor failures into clear `ApiError`s.
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => ApiError::PayloadTooLarge { limit },
        E::ContentType => ApiError::UnsupportedMediaType,
        E::Deserialize(e) if e.is_data() => ApiError::bad_request("invalid_body", e.to_string()),
        E::Deserialize(e) => ApiError::bad_request("malformed_json", e.to_string()),
        other => ApiError::bad_request("invalid_body", other.to_string()),
    };
    api.into()
}

/// Turns actix's path extractor failures into a JSON 404: a path segment
/// that cannot be what the route expects names nothing that exists.
pub fn path_error(
    _err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::NotFound("route").into()
}

/// Middleware giving every error response a `{"code", "message"}` JSON
/// body, including those actix writes itself before any handler runs (405
/// from a resource, with its `Allow` header kept; 413 from a body
/// extractor; 404 from routing). A response that is already JSON (an
/// `ApiError`) passes through unchanged.
pub fn json_errors<B: actix_web::body::MessageBody + 'static>(
    limit: usize,
) -> actix_web::middleware::ErrorHandlers<B> {
    use actix_web::dev::ServiceResponse;
    use actix_web::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
    use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};

    ErrorHandlers::new().default_handler(move |res: ServiceResponse<B>| {
        let is_json = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let (req, old) = res.into_parts();
        let status = old.status();
        let allow = old
            .headers()
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (code, message) = describe(status, req.method().as_str(), &allow, limit);
        let mut new = HttpResponse::build(status);
        for (name, value) in old.headers() {
            if name != CONTENT_TYPE && name != CONTENT_LENGTH {
                new.append_header((name.clone(), value.clone()));
            }
        }
        let body = new.json(ErrorBody {
            code,
            message,
            details: None,
        });
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, body).map_into_right_body(),
        ))
    })
}

/// A code and message for an error response actix wrote without a body.
fn describe(status: StatusCode, method: &str, allow: &str, limit: usize) -> (&'static str, String) {
    match status {
        StatusCode::METHOD_NOT_ALLOWED if !allow.is_empty() => (
            "method_not_allowed",
            format!("{method} is not allowed here; use {allow}"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!("{method} is not allowed here"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            ApiError::PayloadTooLarge { limit }.to_string(),
        ),
        StatusCode::NOT_FOUND => ("not_found", "route not found".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            ApiError::UnsupportedMediaType.to_string(),
        ),
        s if s.is_server_error() => ("internal", "internal error".into()),
        s => (
            "bad_request",
            format!(
                "the request could not be handled: {}",
                s.canonical_reason()
                    .unwrap_or("client error")
                    .to_lowercase()
            ),
        ),
    }
}
