//! One span per request (request id, matched route, method, status,
//! latency), one log line when it finishes, and the HTTP metrics.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

/// Builds the root span of every request and closes it with the outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

/// When the request started, kept in its extensions.
#[derive(Debug, Clone, Copy)]
struct Started(Instant);

/// Routes probed every few seconds: their log lines go to `debug`.
const QUIET_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Started(Instant::now()));
        tracing_actix_web::root_span!(request, latency_ms = tracing::field::Empty)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (route, method, status, elapsed) = match outcome {
            Ok(res) => {
                let req = res.request();
                let elapsed = req
                    .extensions()
                    .get::<Started>()
                    .map(|s| s.0.elapsed())
                    .unwrap_or_default();
                (
                    req.match_pattern()
                        .unwrap_or_else(|| "unmatched".to_string()),
                    req.method().to_string(),
                    res.status().as_u16(),
                    elapsed,
                )
            }
            Err(e) => (
                "unknown".to_string(),
                "unknown".to_string(),
                e.as_response_error().status_code().as_u16(),
                Default::default(),
            ),
        };
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        span.record("latency_ms", latency_ms);
        crate::metrics::http_request(&route, &method, status, elapsed);
        span.in_scope(|| {
            if QUIET_ROUTES.contains(&route.as_str()) {
                tracing::debug!(status, latency_ms, "request finished");
            } else {
                tracing::info!(status, latency_ms, "request finished");
            }
        });
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
