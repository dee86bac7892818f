//! Prometheus metrics: one process-wide registry that every room records
//! into through the small functions below, rendered in the text format by
//! `GET /metrics`. Gauges that describe the store (open cases, pending
//! deadlines, the webhook backlog) are computed at scrape time by the API,
//! not kept here.
//!
//! If the registry cannot be built (a programming error in a metric name,
//! caught by the unit test below) recording does nothing and the error is
//! logged once; metrics never take the service down.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::policy::Verdict;

/// Every metric aupd exports.
#[derive(Debug)]
struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    source_fetches: IntCounterVec,
    samples_recorded: IntCounterVec,
    items_scored: IntCounterVec,
    items_flagged: IntCounterVec,
    scoring_duration: Histogram,
    cases_open: IntGaugeVec,
    deadlines_pending: IntGauge,
    deadlines_fired: IntCounter,
    deadline_fire_lag: Histogram,
    delivery_attempts: IntCounterVec,
    delivery_queue_depth: IntGauge,
    delivery_oldest_age: IntGauge,
    delivery_dead: IntGauge,
    worker_heartbeat_age: IntGaugeVec,
    lease_held: IntGaugeVec,
    policy_out_of_step: IntGauge,
    delivery_senders: IntGauge,
}

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const SCORING_BUCKETS: [f64; 10] = [
    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25,
];
const LAG_BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0];

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("aupd".into()), None)?;
        fn reg<C: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            c: C,
        ) -> prometheus::Result<C> {
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let r = &registry;
        Ok(Metrics {
            http_requests: reg(
                r,
                IntCounterVec::new(
                    Opts::new("http_requests_total", "HTTP requests answered"),
                    &["route", "method", "status"],
                )?,
            )?,
            http_duration: reg(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "http_request_duration_seconds",
                        "Time from request start to response, by matched route",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["route", "method"],
                )?,
            )?,
            source_fetches: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "source_fetches_total",
                        "Visits to tenant sources: fetched, refused by the SSRF guard, or failed",
                    ),
                    &["outcome", "reason"],
                )?,
            )?,
            samples_recorded: reg(
                r,
                IntCounterVec::new(
                    Opts::new("samples_recorded_total", "Samples scored and stored"),
                    &["origin"],
                )?,
            )?,
            items_scored: reg(
                r,
                IntCounterVec::new(
                    Opts::new("items_scored_total", "Texts scored against the policy"),
                    &["path"],
                )?,
            )?,
            items_flagged: reg(
                r,
                IntCounterVec::new(
                    Opts::new("items_flagged_total", "Texts flagged, by policy category"),
                    &["category"],
                )?,
            )?,
            scoring_duration: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new("scoring_duration_seconds", "Time to score one text")
                        .buckets(SCORING_BUCKETS.to_vec()),
                )?,
            )?,
            cases_open: reg(
                r,
                IntGaugeVec::new(
                    Opts::new("cases_open", "Open cases by state and severity"),
                    &["state", "severity"],
                )?,
            )?,
            deadlines_pending: reg(
                r,
                IntGauge::new("deadlines_pending", "Deadlines scheduled and not yet fired")?,
            )?,
            deadlines_fired: reg(
                r,
                IntCounter::new("deadlines_fired_total", "Deadlines fired")?,
            )?,
            deadline_fire_lag: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "deadline_fire_lag_seconds",
                        "How long after its due time a deadline fired",
                    )
                    .buckets(LAG_BUCKETS.to_vec()),
                )?,
            )?,
            delivery_attempts: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "webhook_delivery_attempts_total",
                        "Webhook delivery attempts by outcome",
                    ),
                    &["outcome"],
                )?,
            )?,
            delivery_queue_depth: reg(
                r,
                IntGauge::new(
                    "webhook_queue_depth",
                    "Webhook deliveries waiting to be made",
                )?,
            )?,
            delivery_oldest_age: reg(
                r,
                IntGauge::new(
                    "webhook_oldest_undelivered_age_seconds",
                    "Age of the oldest webhook message not yet delivered",
                )?,
            )?,
            delivery_dead: reg(
                r,
                IntGauge::new(
                    "webhook_dead_messages",
                    "Webhook deliveries that exhausted their retries",
                )?,
            )?,
            worker_heartbeat_age: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "worker_heartbeat_age_seconds",
                        "Seconds since each background worker last went round its loop",
                    ),
                    &["worker"],
                )?,
            )?,
            lease_held: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "lease_held",
                        "1 while this replica holds the work lease, 0 otherwise",
                    ),
                    &["lease"],
                )?,
            )?,
            policy_out_of_step: reg(
                r,
                IntGauge::new(
                    "policy_out_of_step",
                    "1 while this replica's policy files hash to another version than the one the cluster wants",
                )?,
            )?,
            delivery_senders: reg(
                r,
                IntGauge::new(
                    "delivery_senders",
                    "Replicas sending webhooks, as this one last counted them; each endpoint's concurrency cap is shared among them",
                )?,
            )?,
            registry,
        })
    }
}

fn metrics() -> Option<&'static Metrics> {
    static METRICS: OnceLock<Option<Metrics>> = OnceLock::new();
    METRICS
        .get_or_init(|| match Metrics::new() {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(error = %e, "metrics registry could not be built; metrics are off");
                None
            }
        })
        .as_ref()
}

/// The methods that get their own label; any other (a client may send any
/// token as a method) is counted as `other`, so labels stay bounded.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

/// Records one answered HTTP request. `route` is the matched pattern
/// (`/v1/tenants/{id}`), never the raw path, and an unknown method is
/// `other`, so labels stay bounded whatever clients send.
pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let method = METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other");
    if let Some(m) = metrics() {
        m.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        m.http_duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }
}

/// Records a visit to a tenant source: `outcome` is `fetched`, `refused`
/// or `failed`; `reason` says why it was not fetched (empty when it was).
pub fn source_fetch(outcome: &str, reason: &str) {
    if let Some(m) = metrics() {
        m.source_fetches.with_label_values(&[outcome, reason]).inc();
    }
}

/// Records samples stored, by origin (`fetched`, `pushed`, `targeted`).
pub fn samples_recorded(origin: &str, count: usize) {
    if let Some(m) = metrics() {
        m.samples_recorded
            .with_label_values(&[origin])
            .inc_by(count as u64);
    }
}

/// Records one scored text: the path it came by (`api`, `sampling`), how
/// long scoring took, and the categories it was flagged for.
pub fn scored(path: &str, verdict: &Verdict, elapsed: Duration) {
    if let Some(m) = metrics() {
        m.items_scored.with_label_values(&[path]).inc();
        m.scoring_duration.observe(elapsed.as_secs_f64());
        for flag in &verdict.flagged {
            m.items_flagged.with_label_values(&[&flag.category]).inc();
        }
    }
}

/// Records a fired deadline and how late it fired (`lag`, zero if on time).
pub fn deadline_fired(lag: Duration) {
    if let Some(m) = metrics() {
        m.deadlines_fired.inc();
        m.deadline_fire_lag.observe(lag.as_secs_f64());
    }
}

/// Records one webhook delivery attempt by outcome (`delivered`,
/// `failed`, `dead`, …). Called by the delivery room.
pub fn delivery_attempt(outcome: &str) {
    if let Some(m) = metrics() {
        m.delivery_attempts.with_label_values(&[outcome]).inc();
    }
}

/// Records whether this replica holds the work lease `lease`.
pub fn lease_held(lease: &str, held: bool) {
    if let Some(m) = metrics() {
        m.lease_held
            .with_label_values(&[lease])
            .set(i64::from(held));
    }
}

/// Records how many replicas send webhooks, as this one counted them.
pub fn delivery_senders(n: usize) {
    if let Some(m) = metrics() {
        m.delivery_senders.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Records whether this replica's policy is out of step with the version
/// the cluster wants.
pub fn policy_out_of_step(out: bool) {
    if let Some(m) = metrics() {
        m.policy_out_of_step.set(i64::from(out));
    }
}

/// What the store holds right now, computed at scrape time.
#[derive(Debug, Default, Clone)]
pub struct StoreGauges {
    /// Open cases by (state, severity).
    pub open_cases: Vec<((&'static str, &'static str), u64)>,
    /// Deadlines not yet fired.
    pub deadlines_pending: u64,
    /// Webhook deliveries waiting for an attempt.
    pub webhook_queued: u64,
    /// Seconds since the oldest of those was committed.
    pub webhook_oldest_age_secs: u64,
    /// Webhook deliveries that exhausted their retries.
    pub webhook_dead: u64,
}

/// Reads the scrape-time gauges from the store: open cases by state and
/// severity, and pending deadlines. Blocking: call it off the reactor.
pub fn store_gauges(store: &dyn crate::store::Store) -> crate::store::Result<StoreGauges> {
    use std::collections::BTreeMap;
    let mut open: BTreeMap<(&'static str, &'static str), u64> = BTreeMap::new();
    for case in store.all_cases()? {
        if case.state.is_open() {
            *open
                .entry((case.state.as_str(), case.severity.as_str()))
                .or_default() += 1;
        }
    }
    let deadlines_pending = store.pending_deadlines()? as u64;
    let now = jiff::Timestamp::now();
    let (mut webhook_queued, mut webhook_dead) = (0u64, 0u64);
    let mut oldest: Option<jiff::Timestamp> = None;
    for d in store.deliveries(false)? {
        match d.status {
            crate::domain::DeliveryStatus::Pending => {
                webhook_queued += 1;
                oldest = Some(oldest.map_or(d.created_at, |o| o.min(d.created_at)));
            }
            crate::domain::DeliveryStatus::Dead => webhook_dead += 1,
            _ => {}
        }
    }
    let webhook_oldest_age_secs = oldest
        .map(|o| now.duration_since(o).as_secs().max(0) as u64)
        .unwrap_or(0);
    Ok(StoreGauges {
        open_cases: open.into_iter().collect(),
        deadlines_pending,
        webhook_queued,
        webhook_oldest_age_secs,
        webhook_dead,
    })
}

/// Renders every metric in the Prometheus text format, after setting the
/// scrape-time gauges from `store` and the workers' heartbeat ages.
pub fn render(store: &StoreGauges, heartbeat_ages: &[(&'static str, Duration)]) -> String {
    let Some(m) = metrics() else {
        return String::new();
    };
    m.cases_open.reset();
    for ((state, severity), n) in &store.open_cases {
        m.cases_open
            .with_label_values(&[state, severity])
            .set(*n as i64);
    }
    m.deadlines_pending.set(store.deadlines_pending as i64);
    m.delivery_queue_depth.set(store.webhook_queued as i64);
    m.delivery_oldest_age
        .set(store.webhook_oldest_age_secs as i64);
    m.delivery_dead.set(store.webhook_dead as i64);
    for (worker, age) in heartbeat_ages {
        m.worker_heartbeat_age
            .with_label_values(&[worker])
            .set(age.as_secs() as i64);
    }
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut out) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_builds_and_renders_every_family() {
        assert!(Metrics::new().is_ok());
        http_request("/v1/score", "POST", 200, Duration::from_millis(3));
        source_fetch("refused", "address");
        deadline_fired(Duration::from_millis(40));
        delivery_attempt("delivered");
        lease_held("metrics-test", true);
        http_request("/v1/tenants", "X123", 405, Duration::from_millis(1));
        let text = render(
            &StoreGauges {
                open_cases: vec![(("notified", "high"), 2)],
                deadlines_pending: 3,
                ..StoreGauges::default()
            },
            &[("sampler", Duration::from_secs(1))],
        );
        for needle in [
            "aupd_http_requests_total{method=\"POST\",route=\"/v1/score\",status=\"200\"} 1",
            "aupd_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/score\",le=\"0.005\"} 1",
            "aupd_source_fetches_total{outcome=\"refused\",reason=\"address\"} 1",
            "aupd_cases_open{severity=\"high\",state=\"notified\"} 2",
            "aupd_deadlines_pending 3",
            // Other tests in this process fire deadlines and deliver too:
            // the series must exist; its count is theirs as well.
            "aupd_deadline_fire_lag_seconds_count ",
            "aupd_webhook_delivery_attempts_total{outcome=\"delivered\"} ",
            "aupd_webhook_queue_depth 0",
            "aupd_worker_heartbeat_age_seconds{worker=\"sampler\"} 1",
            "aupd_lease_held{lease=\"metrics-test\"} 1",
            "aupd_policy_out_of_step ",
            "aupd_http_requests_total{method=\"other\",route=\"/v1/tenants\",status=\"405\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
