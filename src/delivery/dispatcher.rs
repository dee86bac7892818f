//! The dispatcher: fans new outbox messages out into one delivery per
//! subscribed endpoint, sends due deliveries, and records every attempt.
//!
//! With several replicas on one store only the holder of the `delivery`
//! lease fans out, watches for alerts and sends, and its commits carry the
//! lease's fence, so a replica that lost the lease cannot overwrite what
//! the new holder records.
//!
//! Everything it knows is in the store — the "not yet fanned out" index, the
//! deliveries and their due-time index — so a restart (or a crash) simply
//! carries on: a delivery whose result was not recorded is sent again with
//! the same `webhook-id` (at least once). In memory there is only the set of
//! deliveries in flight, which caps each endpoint at
//! `per_endpoint_concurrency` so a slow receiver cannot hold up others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, watch, Semaphore};

use super::schedule::{next_attempt, parse_retry_after, Next};
use super::signing::{signature_header, SigningSecret};
use super::{envelope_body, Result, Webhooks};
use crate::domain::{
    Attempt, Delivery, DeliveryStatus, DomainEvent, Endpoint, OperatorAlert, OrderRef,
};
use crate::sampling::guard::GuardedDns;
use crate::store::delivery::{self, claim_unrouted, new_id, put_delivery, walk_due_deliveries};
use crate::store::lease::{self, Fence, Lease};
use crate::store::meta::{self, Cursor};
use crate::store::{Batch, EventRecord, StoreError};

/// Messages fanned out per pass.
const FAN_OUT_BATCH: usize = 1000;
/// Due-index entries looked at per pass.
const DUE_SCAN: usize = 20_000;
/// Results recorded per transaction at most.
const RECORD_BATCH: usize = 1000;
/// How often the dispatcher removes webhook history past its retention.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Most messages one retention pass removes (the next pass goes on).
const PRUNE_BATCH: usize = 10_000;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// A 2xx.
    Delivered,
    /// 410 Gone: the receiver asks us to stop; the endpoint is disabled.
    Gone,
    /// Try again (on the schedule, or after the receiver's `Retry-After`).
    Retry(Option<Duration>),
    /// No point trying again (endpoint removed or disabled, message missing).
    Abandon,
}

#[derive(Debug)]
struct Outcome {
    delivery: Delivery,
    attempt: Attempt,
    verdict: Verdict,
    /// The fence of the lease the attempt was started under.
    fence: Option<Fence>,
}

#[derive(Debug, Default)]
struct InFlight {
    deliveries: HashMap<String, String>,
    per_endpoint: HashMap<String, usize>,
}

impl InFlight {
    fn add(&mut self, delivery: &str, endpoint: &str) {
        self.deliveries
            .insert(delivery.to_string(), endpoint.to_string());
        *self.per_endpoint.entry(endpoint.to_string()).or_default() += 1;
    }

    fn remove(&mut self, delivery: &str) {
        if let Some(endpoint) = self.deliveries.remove(delivery) {
            if let Some(n) = self.per_endpoint.get_mut(&endpoint) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_endpoint.remove(&endpoint);
                }
            }
        }
    }
}

fn lock(m: &Mutex<InFlight>) -> std::sync::MutexGuard<'_, InFlight> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The running dispatcher's parts.
#[derive(Debug, Clone)]
struct Dispatcher {
    webhooks: Webhooks,
    client: reqwest::Client,
    in_flight: Arc<Mutex<InFlight>>,
    permits: Arc<Semaphore>,
    lease: Option<Arc<Lease>>,
    /// Rung by the recorder when attempts leave flight: the next pass only
    /// starts due deliveries in the freed places.
    freed: Arc<tokio::sync::Notify>,
    /// Endpoints known at the last full pass (stops a due walk early once
    /// every endpoint is busy).
    endpoints: Arc<std::sync::atomic::AtomicUsize>,
}

/// Runs the dispatcher until `stop` turns true, then lets attempts in
/// flight finish (within the attempt timeout) and records them.
pub async fn run(webhooks: Webhooks, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    run_with_lease(webhooks, None, stop).await
}

/// [`run`], working only while this replica holds `lease` (the `delivery`
/// lease; `None`: this process is the only one), and giving it up at the
/// end.
pub async fn run_with_lease(
    webhooks: Webhooks,
    lease: Option<Arc<Lease>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let settings = webhooks.settings().clone();
    let timeout = Duration::from_secs(settings.timeout_secs);
    let client = reqwest::Client::builder()
        .user_agent(settings.user_agent.clone())
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedDns(webhooks.guard().clone())))
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .pool_max_idle_per_host(settings.per_endpoint_concurrency)
        .build()
        .map_err(|e| anyhow::anyhow!("building the delivery client: {e}"))?;
    let dispatcher = Dispatcher {
        webhooks: webhooks.clone(),
        client,
        in_flight: Arc::new(Mutex::new(InFlight::default())),
        permits: Arc::new(Semaphore::new(settings.max_in_flight)),
        lease: lease.clone(),
        freed: Arc::new(tokio::sync::Notify::new()),
        endpoints: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    };
    let (tx, rx) = mpsc::unbounded_channel::<Outcome>();
    let recorder = tokio::spawn(dispatcher.clone().record(rx));
    let poll = Duration::from_millis(settings.poll_ms);
    let mut last_prune: Option<Instant> = None;
    // A full pass (fan-out, alerts, due deliveries) on every poll and every
    // wake; when attempts only left flight, a pass that just fills the
    // freed places, which costs a few store reads rather than a dozen.
    let mut full = true;
    loop {
        if let Err(e) = dispatcher.pass(&tx, full).await {
            tracing::error!(error = ?e, "delivery pass failed; retrying");
        }
        let holds = lease.as_ref().is_none_or(|l| l.fence().is_some());
        if holds
            && settings.retention_days > 0
            && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY)
        {
            last_prune = Some(Instant::now());
            if let Err(e) = dispatcher.prune(settings.retention_days).await {
                tracing::error!(error = ?e, "removing old webhook history failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => full = true,
            _ = webhooks.wake.notified() => full = true,
            _ = dispatcher.freed.notified() => full = false,
            _ = stop.changed() => {
                if *stop.borrow() { break; }
            }
        }
    }
    drop(tx);
    match tokio::time::timeout(timeout + Duration::from_secs(2), recorder).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "delivery recorder failed"),
        Err(_) => tracing::warn!("attempts still in flight at shutdown are sent again on restart"),
    }
    if let Some(lease) = lease {
        let released = tokio::task::spawn_blocking(move || lease.release()).await;
        if let Ok(Err(e)) = released {
            tracing::warn!(error = %e, "releasing the delivery lease failed; it lapses instead");
        }
    }
    Ok(())
}

impl Dispatcher {
    /// Removes finished messages and deliveries older than `days` days.
    async fn prune(&self, days: u64) -> Result<()> {
        let pruned = self
            .webhooks
            .blocking(move |w| {
                let hours = i64::try_from(days.saturating_mul(24)).unwrap_or(i64::MAX / 3600);
                let cutoff = w
                    .now()
                    .checked_sub(SignedDuration::from_hours(hours))
                    .unwrap_or(Timestamp::MIN);
                let pruned =
                    crate::store::delivery::prune_messages(w.store(), cutoff, PRUNE_BATCH)?;
                w.store().flush()?;
                Ok(pruned)
            })
            .await?;
        if pruned.messages > 0 {
            tracing::info!(
                messages = pruned.messages,
                deliveries = pruned.deliveries,
                retention_days = days,
                "removed webhook history past its retention"
            );
        }
        Ok(())
    }

    /// One look: fan out new messages, raise alerts for new overdue
    /// receipts, and start due deliveries.
    async fn pass(&self, tx: &mpsc::UnboundedSender<Outcome>, full: bool) -> Result<()> {
        let in_flight = self.in_flight.clone();
        let known_endpoints = self.endpoints.clone();
        let cap = self.webhooks.settings().per_endpoint_concurrency;
        let max = self.webhooks.settings().max_in_flight;
        let lease = self.lease.clone();
        let work = self
            .webhooks
            .blocking(move |w| {
                if full {
                    // Every replica fans out what is new: each batch of
                    // messages is claimed, so one replica fans it out.
                    loop {
                        match fan_out(w) {
                            Ok(FAN_OUT_BATCH) => continue,
                            Ok(_) => break,
                            // Changed under it (a message's entry went):
                            // look again next pass.
                            Err(super::WebhookError::Internal(e))
                                if crate::store::is_conflict(&e) =>
                            {
                                break
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                let fence = match &lease {
                    None => None,
                    Some(lease) => match lease.ensure()? {
                        Some(fence) => Some(fence),
                        // Another replica delivers.
                        None => return Ok(None),
                    },
                };
                let fenced = |r: Result<usize>| -> Result<Option<usize>> {
                    match r {
                        Err(super::WebhookError::Internal(e)) if crate::store::is_conflict(&e) => {
                            check_fence(lease.as_deref(), fence.as_ref());
                            Ok(None)
                        }
                        other => other.map(Some),
                    }
                };
                if full {
                    fenced(watch_alerts(w, fence.as_ref()).map(|()| 0))?;
                    known_endpoints.store(
                        delivery::endpoint_count(w.store())?,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
                if lease.as_ref().is_some_and(|l| l.fence().is_none()) {
                    return Ok(None);
                }
                let now = w.now();
                let mut due = Vec::new();
                let mut in_flight = lock(&in_flight);
                let endpoints = known_endpoints
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .max(1);
                let mut busy = std::collections::HashSet::new();
                let mut looked = 0usize;
                walk_due_deliveries(w.store(), now, |id, endpoint| {
                    looked += 1;
                    if looked > DUE_SCAN || in_flight.deliveries.len() >= max {
                        return Ok(false);
                    }
                    if in_flight.deliveries.contains_key(id) {
                        return Ok(true);
                    }
                    if in_flight.per_endpoint.get(endpoint).copied().unwrap_or(0) >= cap {
                        // Every endpoint is busy: nothing further can start.
                        busy.insert(endpoint.to_string());
                        return Ok(busy.len() < endpoints);
                    }
                    if let Some(d) = delivery::delivery(w.store(), id)? {
                        in_flight.add(&d.id, &d.endpoint_id);
                        due.push(d);
                    }
                    Ok(true)
                })?;
                Ok(Some((due, fence)))
            })
            .await?;
        let Some((due, fence)) = work else {
            return Ok(());
        };
        for delivery in due {
            let this = self.clone();
            let tx = tx.clone();
            let fence = fence.clone();
            tokio::spawn(async move {
                let _permit = this.permits.clone().acquire_owned().await;
                let outcome = this.attempt(delivery, fence).await;
                let _ = tx.send(outcome);
            });
        }
        Ok(())
    }

    /// Sends one delivery once.
    async fn attempt(&self, delivery: Delivery, fence: Option<Fence>) -> Outcome {
        let at = self.webhooks.now();
        let started = Instant::now();
        let (verdict, status, error) = self.send(&delivery).await;
        Outcome {
            attempt: Attempt {
                at,
                status,
                latency_ms: started.elapsed().as_millis() as u64,
                error,
            },
            delivery,
            verdict,
            fence,
        }
    }

    async fn send(&self, d: &Delivery) -> (Verdict, Option<u16>, Option<String>) {
        let store = self.webhooks.store();
        let endpoint = match delivery::endpoint(store, &d.endpoint_id) {
            Ok(Some(e)) => e,
            Ok(None) => {
                return (
                    Verdict::Abandon,
                    None,
                    Some("the endpoint was deleted".into()),
                )
            }
            Err(e) => return (Verdict::Retry(None), None, Some(format!("store: {e}"))),
        };
        if !endpoint.enabled {
            return (
                Verdict::Abandon,
                None,
                Some("the endpoint is disabled".into()),
            );
        }
        let message = match delivery::message(store, &d.message_id) {
            Ok(Some(m)) => m,
            Ok(None) => {
                return (
                    Verdict::Abandon,
                    None,
                    Some("the message is missing".into()),
                )
            }
            Err(e) => return (Verdict::Retry(None), None, Some(format!("store: {e}"))),
        };
        let url = match url::Url::parse(&endpoint.url) {
            Ok(u) => u,
            Err(e) => return (Verdict::Retry(None), None, Some(format!("bad URL: {e}"))),
        };
        if let Err(refusal) = self.webhooks.guard().check_url(&url).await {
            return (
                Verdict::Retry(None),
                None,
                Some(format!("refused: {refusal}")),
            );
        }
        let body = envelope_body(&message, d.dry_run);
        let now = self.webhooks.now();
        let mut secrets: Vec<SigningSecret> = Vec::new();
        for stored in endpoint.signing_secrets(now) {
            // Start-up sealed any secret an older store kept in plain text.
            match self.webhooks.key().open(&endpoint.id, &stored.0) {
                Ok(plain) => secrets.extend(SigningSecret::parse(&plain).ok()),
                Err(e) => {
                    tracing::error!(endpoint = %endpoint.id, error = %e, "cannot open the endpoint's signing secret; rotate it or restore the key");
                    return (
                        Verdict::Retry(None),
                        None,
                        Some(format!("signing secret: {e}")),
                    );
                }
            }
        }
        if secrets.is_empty() {
            // Never send an order a receiver could not verify.
            return (
                Verdict::Retry(None),
                None,
                Some("signing secret: none usable; rotate the endpoint's secret".into()),
            );
        }
        let refs: Vec<&SigningSecret> = secrets.iter().collect();
        let timestamp = Timestamp::now().as_second();
        let signature = signature_header(&refs, &message.id, timestamp, &body);
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match response {
            Ok(r) => {
                let status = r.status();
                let code = status.as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                // Read the (small) answer so the connection can be reused.
                let _ = r.bytes().await;
                if status.is_success() {
                    (Verdict::Delivered, Some(code), None)
                } else if code == 410 {
                    (Verdict::Gone, Some(code), Some("HTTP 410 Gone".into()))
                } else if status.is_redirection() {
                    (
                        Verdict::Retry(None),
                        Some(code),
                        Some(format!("HTTP {code} (redirects are not followed)")),
                    )
                } else if code == 429 || code == 503 {
                    (
                        Verdict::Retry(retry_after),
                        Some(code),
                        Some(format!("HTTP {code}")),
                    )
                } else {
                    (
                        Verdict::Retry(None),
                        Some(code),
                        Some(format!("HTTP {code}")),
                    )
                }
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    format!("timed out after {}s", self.webhooks.settings().timeout_secs)
                } else if e.is_connect() {
                    format!("cannot connect: {}", root_cause(&e))
                } else {
                    format!("transport: {}", root_cause(&e))
                };
                (Verdict::Retry(None), None, Some(what))
            }
        }
    }

    /// Records attempt results in batches: each delivery's new state and due
    /// time, and endpoint health (failing since, disabled). Only then are
    /// the deliveries out of flight, so a pass never starts one twice.
    async fn record(self, mut rx: mpsc::UnboundedReceiver<Outcome>) {
        while let Some(first) = rx.recv().await {
            let mut outcomes = vec![first];
            while outcomes.len() < RECORD_BATCH {
                match rx.try_recv() {
                    Ok(o) => outcomes.push(o),
                    Err(_) => break,
                }
            }
            let ids: Vec<String> = outcomes.iter().map(|o| o.delivery.id.clone()).collect();
            // Each group commits under the fence its attempts started under.
            let mut groups: Vec<(Option<Fence>, Vec<Outcome>)> = Vec::new();
            for o in outcomes {
                match groups.iter_mut().find(|(f, _)| *f == o.fence) {
                    Some((_, group)) => group.push(o),
                    None => groups.push((o.fence.clone(), vec![o])),
                }
            }
            for (fence, outcomes) in groups {
                let lease = self.lease.clone();
                let result = self
                    .webhooks
                    .blocking(
                        move |w| match record_outcomes(w, outcomes, fence.as_ref()) {
                            Err(super::WebhookError::Internal(e))
                                if crate::store::is_conflict(&e) =>
                            {
                                check_fence(lease.as_deref(), fence.as_ref());
                                Err(super::WebhookError::Internal(e))
                            }
                            other => other,
                        },
                    )
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = ?e, "recording delivery attempts failed; they are sent again");
                }
            }
            {
                let mut in_flight = lock(&self.in_flight);
                for id in &ids {
                    in_flight.remove(id);
                }
            }
            self.freed.notify_one();
        }
    }
}

/// After a commit under `fence` conflicted: if the lease was taken over,
/// forget it, so this replica stops delivering until it holds it again.
fn check_fence(lease: Option<&Lease>, fence: Option<&Fence>) {
    if let (Some(lease), Some(fence)) = (lease, fence) {
        if !lease.still_holds(fence).unwrap_or(true) {
            lease.lost();
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Fans out up to one batch of new messages; returns how many. The batch
/// is claimed, so no other replica fans it out meanwhile, and it commits
/// only if every message is still waiting for fan-out, so two fan-outs
/// never both create deliveries for one message.
fn fan_out(w: &Webhooks) -> Result<usize> {
    let mut claim = claim_unrouted(&**w.store(), FAN_OUT_BATCH)?;
    if claim.is_empty() {
        return Ok(0);
    }
    let messages = std::mem::take(&mut claim.messages);
    let endpoints: Vec<Endpoint> = delivery::endpoints(w.store())?;
    let now = w.now();
    let global_dry_run = w.settings().dry_run;
    let mut batch = Batch::new();
    let mut fanned = 0usize;
    for m in &messages {
        delivery::mark_routed(&mut batch, m);
        let targets = endpoints.iter().filter(|e| {
            e.enabled
                && match &m.endpoint {
                    Some(only) => &e.id == only,
                    None => e.wants(&m.event_type),
                }
        });
        for e in targets {
            let delivery = Delivery {
                id: new_id("dlv"),
                message_id: m.id.clone(),
                endpoint_id: e.id.clone(),
                event_type: m.event_type.clone(),
                dry_run: m.event_type.starts_with("enforcement.") && (global_dry_run || e.dry_run),
                status: DeliveryStatus::Pending,
                attempts: Vec::new(),
                round_attempts: 0,
                next_attempt_at: Some(now),
                created_at: m.created_at,
                updated_at: now,
            };
            put_delivery(&mut batch, &delivery, None)?;
            fanned += 1;
        }
        if let Some(case_id) = m.payload.get("case_id").and_then(|c| c.as_str()) {
            batch.put(&OrderRef {
                idempotency_key: m.idempotency_key.clone(),
                case_id: case_id.to_string(),
                event_type: m.event_type.clone(),
                message_id: m.id.clone(),
            })?;
        }
    }
    claim.commit(batch)?;
    tracing::debug!(messages = messages.len(), deliveries = fanned, "fanned out");
    Ok(messages.len())
}

/// Raises an operator alert for every new `case.receipt_overdue` event,
/// moving the cursor in the same batch with a precondition on its old
/// value, so two watchers never raise one alert twice.
fn watch_alerts(w: &Webhooks, fence: Option<&Fence>) -> Result<()> {
    let store = w.store();
    let (cursor, cursor_version) = meta::cursor(store, Cursor::DeliveryAlerts)?;
    let events: Vec<EventRecord> = store.events_after(cursor, 10_000)?;
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(());
    };
    let mut batch = Batch::new();
    batch.expect_unchanged(&cursor_version);
    lease::guard(&mut batch, fence);
    for e in &events {
        let case = match e.domain_event() {
            DomainEvent::ReceiptOverdue { case } => case.to_string(),
            DomainEvent::Malformed { kind } if kind == DomainEvent::RECEIPT_OVERDUE => {
                tracing::warn!(event = e.seq, "an overdue receipt event names no case");
                continue;
            }
            _ => continue,
        };
        raise(
            &mut batch,
            OperatorAlert {
                id: new_id("alr"),
                kind: "receipt_overdue".into(),
                subject: case.clone(),
                message: format!(
                    "no receipt for the suspension order of case {case} by its deadline"
                ),
                at: e.at,
            },
        )?;
    }
    meta::set_cursor(&mut batch, Cursor::DeliveryAlerts, last);
    store.commit(batch)?;
    Ok(())
}

/// Adds an alert and its audit event to `batch`.
pub fn raise(batch: &mut Batch, alert: OperatorAlert) -> Result<()> {
    batch.event(
        "alert.raised",
        None,
        serde_json::json!({ "alert": alert.id, "kind": alert.kind, "subject": alert.subject, "message": alert.message }),
    )?;
    batch.put(&alert)?;
    Ok(())
}

/// Endpoint health changes from a batch of outcomes, in order.
#[derive(Debug, Default)]
struct Health {
    succeeded_last: bool,
    first_failure: Option<Timestamp>,
    gone: bool,
}

fn record_outcomes(w: &Webhooks, outcomes: Vec<Outcome>, fence: Option<&Fence>) -> Result<()> {
    let now = w.now();
    let scale = w.settings().retry_scale;
    let mut batch = Batch::new();
    lease::guard(&mut batch, fence);
    let mut health: HashMap<String, Health> = HashMap::new();
    let mut counted: Vec<&'static str> = Vec::new();
    for Outcome {
        mut delivery,
        attempt,
        verdict,
        fence: _,
    } in outcomes
    {
        let previous_due = delivery.next_attempt_at;
        delivery.round_attempts += 1;
        delivery.updated_at = now;
        let h = health.entry(delivery.endpoint_id.clone()).or_default();
        match &verdict {
            Verdict::Delivered => {
                h.succeeded_last = true;
                h.first_failure = None;
            }
            Verdict::Abandon => {}
            Verdict::Gone | Verdict::Retry(_) => {
                h.succeeded_last = false;
                h.first_failure.get_or_insert(attempt.at);
                h.gone |= verdict == Verdict::Gone;
            }
        }
        delivery.attempts.push(attempt);
        let (status, next) = match verdict {
            Verdict::Delivered => (DeliveryStatus::Delivered, None),
            Verdict::Gone | Verdict::Abandon => (DeliveryStatus::Dead, None),
            Verdict::Retry(asked) => {
                let unit: f64 = rand::random();
                match next_attempt(delivery.round_attempts, asked, unit) {
                    Next::RetryIn(d) => {
                        let d = if asked.is_some() { d } else { d.mul_f64(scale) };
                        let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
                        (
                            DeliveryStatus::Pending,
                            Some(now.checked_add(d).unwrap_or(now)),
                        )
                    }
                    Next::Dead => (DeliveryStatus::Dead, None),
                }
            }
        };
        delivery.status = status;
        delivery.next_attempt_at = next;
        counted.push(match status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
            _ => "failed",
        });
        if status == DeliveryStatus::Dead {
            batch.event(
                "webhook.delivery_dead",
                None,
                serde_json::json!({
                    "delivery": delivery.id,
                    "message": delivery.message_id,
                    "endpoint": delivery.endpoint_id,
                    "attempts": delivery.attempts.len(),
                }),
            )?;
        }
        put_delivery(&mut batch, &delivery, previous_due)?;
    }
    w.store().commit(batch)?;
    // Counted once recorded, so a failed commit (attempt made again) is
    // not counted twice.
    for outcome in counted {
        crate::metrics::delivery_attempt(outcome);
    }
    for (endpoint, h) in health {
        update_health(w, &endpoint, &h, now)?;
    }
    Ok(())
}

/// Applies one batch's health news to an endpoint: a success clears the
/// failure clock; a 410 or failing longer than the configured span disables
/// it and raises an alert.
fn update_health(w: &Webhooks, id: &str, h: &Health, now: Timestamp) -> Result<()> {
    let limit = SignedDuration::from_secs(
        i64::try_from(w.settings().disable_after_failing_secs).unwrap_or(i64::MAX / 2),
    );
    for _ in 0..8 {
        let (Some(mut e), version) = delivery::endpoint_versioned(w.store(), id)? else {
            return Ok(());
        };
        let before = (e.failing_since, e.enabled);
        if h.succeeded_last {
            e.failing_since = None;
        } else if let Some(first) = h.first_failure {
            e.failing_since.get_or_insert(first);
        }
        let mut reason = None;
        if e.enabled && h.gone {
            reason = Some("the endpoint answered 410 Gone".to_string());
        } else if e.enabled {
            if let Some(since) = e.failing_since {
                if now.duration_since(since) > limit {
                    reason = Some(format!(
                        "every attempt has failed since {since} (longer than {}s)",
                        w.settings().disable_after_failing_secs
                    ));
                }
            }
        }
        if (e.failing_since, e.enabled) == before && reason.is_none() {
            return Ok(());
        }
        let mut batch = Batch::new();
        if let Some(reason) = &reason {
            e.enabled = false;
            e.disabled_reason = Some(reason.clone());
            batch.event(
                "webhook.endpoint_disabled",
                None,
                serde_json::json!({ "endpoint": e.id, "url": e.url, "reason": reason }),
            )?;
            raise(
                &mut batch,
                OperatorAlert {
                    id: new_id("alr"),
                    kind: "endpoint_disabled".into(),
                    subject: e.id.clone(),
                    message: format!("webhook endpoint {} ({}) disabled: {reason}", e.id, e.url),
                    at: now,
                },
            )?;
            tracing::warn!(endpoint = %e.id, reason = %reason, "webhook endpoint disabled");
        }
        e.version += 1;
        e.updated_at = now;
        batch.expect_unchanged(&version);
        batch.put(&e)?;
        match w.store().commit(batch) {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::commands::CaseService;
    use crate::config::DeliverySettings;
    use crate::delivery::endpoints::NewEndpoint;
    use crate::domain::OutboxMessage;
    use crate::enforcement::Ladders;
    use crate::sampling::guard::SystemResolver;
    use crate::store::delivery::queue_message;
    use crate::store::{SharedStore, SledStore};
    use std::collections::HashMap;

    async fn webhooks(store: &SharedStore, endpoints: usize) -> Webhooks {
        let cases = CaseService::new(store.clone(), Ladders::default(), Arc::new(SystemClock));
        let settings = DeliverySettings {
            allow_cidrs: vec!["127.0.0.0/8".into()],
            ..DeliverySettings::default()
        };
        let w = Webhooks::new(
            store.clone(),
            settings,
            Arc::new(SystemResolver),
            cases,
            Arc::new(crate::delivery::sealing::SecretKey::generate()),
        )
        .unwrap();
        for n in 0..endpoints {
            w.create_endpoint(NewEndpoint {
                url: url::Url::parse(&format!("http://127.0.0.1:9/hook{n}")).unwrap(),
                event_types: Vec::new(),
                description: format!("receiver {n}"),
                dry_run: false,
            })
            .await
            .unwrap();
        }
        w
    }

    fn queue(store: &SharedStore, messages: usize) {
        let mut batch = Batch::new();
        for i in 0..messages {
            let message = OutboxMessage {
                id: new_id("msg"),
                event_type: "case.opened".into(),
                idempotency_key: format!("key-{i}"),
                tenant: None,
                payload: serde_json::json!({ "n": i }),
                created_at: Timestamp::now(),
                endpoint: None,
            };
            queue_message(&mut batch, &message).unwrap();
        }
        store.commit(batch).unwrap();
    }

    fn deliveries_per_pair(store: &SharedStore) -> HashMap<(String, String), usize> {
        let mut pairs = HashMap::new();
        for d in delivery::deliveries(store, false).unwrap() {
            *pairs.entry((d.message_id, d.endpoint_id)).or_default() += 1;
        }
        pairs
    }

    /// Five rounds of 40 new messages, each fanned out by `a` and `b` at
    /// once, each going on until nothing is left, as a pass does; a
    /// conflict is retried when `conflicts` allows it and fails the test
    /// otherwise. Asserts every round fanned out each message once.
    fn fan_out_rounds_at_once(store: &SharedStore, a: &Webhooks, b: &Webhooks, conflicts: bool) {
        for round in 0..5 {
            queue(store, 40);
            let threads: Vec<_> = [a.clone(), b.clone()]
                .into_iter()
                .map(|w| {
                    std::thread::spawn(move || {
                        let mut total = 0;
                        loop {
                            match fan_out(&w) {
                                Ok(0) => return total,
                                Ok(n) => total += n,
                                Err(super::super::WebhookError::Internal(e))
                                    if conflicts && crate::store::is_conflict(&e) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                    })
                })
                .collect();
            let fanned: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(fanned, 40, "round {round}: each message fanned out once");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_fan_outs_on_one_store_make_one_delivery_per_message_and_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let a = webhooks(&store, 3).await;
        let b = webhooks(&store, 0).await;
        fan_out_rounds_at_once(&store, &a, &b, true);
        let pairs = deliveries_per_pair(&store);
        assert_eq!(pairs.len(), 200 * 3);
        assert!(pairs.values().all(|&n| n == 1), "duplicate deliveries");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fan_outs_on_two_postgres_replicas_claim_apart_and_never_conflict() {
        let Some(db) = crate::store::TestDb::new() else {
            return;
        };
        let one: SharedStore = Arc::new(db.open());
        let two: SharedStore = Arc::new(db.open());
        let a = webhooks(&one, 3).await;
        let b = webhooks(&two, 0).await;
        // Claims keep the replicas apart: no fan-out finds its messages
        // taken under it.
        fan_out_rounds_at_once(&one, &a, &b, false);
        let pairs = deliveries_per_pair(&one);
        assert_eq!(pairs.len(), 200 * 3);
        assert!(pairs.values().all(|&n| n == 1), "duplicate deliveries");
    }
}
