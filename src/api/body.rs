//! Request bodies: read under the configured size limit and parsed into the
//! route's request type. Every failure is an `ApiError` with a
//! `{"code", "message"}` body: `payload_too_large`, `unsupported_media_type`,
//! `malformed_json` for text that is not JSON at all, and `invalid_body`,
//! naming the field, for JSON of the wrong shape.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::{Decompress, Payload};
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::{ApiError, AppState};

/// The limit when no `AppState` is registered (unit tests of handlers).
const DEFAULT_LIMIT: usize = 1024 * 1024;

/// A JSON request body parsed into `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T> ApiJson<T> {
    /// The parsed body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for ApiJson<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A JSON body that may be left out: an empty (or blank) body is
/// `T::default()`, anything else must parse like [`ApiJson`].
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T> OptionalJson<T> {
    /// The parsed body, or the default.
    pub fn into_inner(self) -> T {
        self.0
    }
}

type BodyFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = read_json(req, payload, false);
        Box::pin(async move {
            let bytes = read.await?;
            parse(&bytes).map(ApiJson)
        })
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = read_json(req, payload, true);
        Box::pin(async move {
            let bytes = read.await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            parse(&bytes).map(OptionalJson)
        })
    }
}

/// Checks the content type and the declared length, then reads the body.
/// An `optional` body is read whatever its content type, as it always was:
/// callers post nothing at all more often than they label it.
fn read_json(
    req: &HttpRequest,
    payload: &mut Payload,
    optional: bool,
) -> impl Future<Output = Result<web::Bytes, ApiError>> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.max_body_bytes)
        .unwrap_or(DEFAULT_LIMIT);
    let declared: Option<usize> = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let is_json = matches!(req.mime_type(), Ok(Some(m))
        if m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
    let early = if declared.is_some_and(|n| n > limit) {
        Some(ApiError::PayloadTooLarge { limit })
    } else if !is_json && !optional {
        Some(ApiError::UnsupportedMediaType)
    } else {
        None
    };
    let stream = Decompress::from_headers(payload.take(), req.headers());
    async move {
        if let Some(e) = early {
            return Err(e);
        }
        read_limited(stream, limit).await
    }
}

/// Reads a body stream, refusing it as soon as it passes `limit` bytes.
async fn read_limited(
    mut stream: Decompress<Payload>,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match e {
            PayloadError::Overflow => ApiError::PayloadTooLarge { limit },
            other => {
                ApiError::bad_request("invalid_body", format!("reading the body failed: {other}"))
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON body into `T`. Text that is not JSON is `malformed_json`;
/// JSON that does not fit `T` is `invalid_body`, prefixed with the path of
/// the field at fault (`items[1].id`) when it is below the top level.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let err = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            // Text after the value: not one JSON document.
            de.end()
                .map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))?;
            return Ok(v);
        }
        Err(e) => e,
    };
    let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
    if !well_formed {
        return Err(ApiError::bad_request(
            "malformed_json",
            err.inner().to_string(),
        ));
    }
    let what = without_position(&err.inner().to_string());
    let mut path = err.path().to_string();
    if what.starts_with("unknown field") {
        // The path ends in the unknown field, which the message names:
        // point at the object that holds it instead.
        path = path
            .rsplit_once('.')
            .map_or_else(|| ".".to_string(), |(parent, _)| parent.to_string());
    }
    let message = if path == "." {
        what
    } else {
        format!("`{path}`: {}", explain(&what))
    };
    Err(ApiError::bad_request("invalid_body", message))
}

/// serde_json's message without its ` at line L column C` tail: the path
/// says where, and a well-formed body has no syntax position to point at.
fn without_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((head, tail))
            if tail
                .split(" column ")
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            head.to_string()
        }
        _ => message.to_string(),
    }
}

/// serde_json reports a value of the wrong type where a fixed word is
/// expected as "expected value": say what would do instead.
fn explain(what: &str) -> String {
    if what == "expected value" {
        "not one of the accepted values".to_string()
    } else {
        what.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: String,
    }

    fn error(json: &str) -> (&'static str, String) {
        let e = parse::<Body>(json.as_bytes()).unwrap_err();
        (e.code(), e.to_string())
    }

    #[test]
    fn a_wrong_type_names_its_field_and_broken_json_is_malformed() {
        assert_eq!(
            error(r#"{"name": "x", "items": [{"id": 5}]}"#),
            (
                "invalid_body",
                "`items[0].id`: invalid type: integer `5`, expected a string".into()
            )
        );
        assert_eq!(
            error(r#"{"name": "x", "colour": 1}"#),
            (
                "invalid_body",
                "unknown field `colour`, expected `name` or `items`".into()
            )
        );
        assert_eq!(
            error(r#"{"name": "x", "items": [{"id": "a", "n": 1}]}"#),
            (
                "invalid_body",
                "`items[0]`: unknown field `n`, expected `id`".into()
            )
        );
        assert_eq!(
            error(r#"{"items": []}"#),
            ("invalid_body", "missing field `name`".into())
        );
        assert_eq!(error(r#"{"name": "#).0, "malformed_json");
        assert_eq!(error(r#"{"name": "x"} trailing"#).0, "malformed_json");
        assert!(parse::<Body>(br#"{"name": "x"}"#).is_ok());
    }

    #[test]
    fn only_a_trailing_position_is_dropped() {
        assert_eq!(
            without_position("missing field `a` at line 1 column 9"),
            "missing field `a`"
        );
        assert_eq!(
            without_position("the line at line up"),
            "the line at line up"
        );
    }
}
