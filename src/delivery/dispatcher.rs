//! The dispatcher: fans new outbox messages out into one delivery per
//! subscribed endpoint, sends due deliveries, and records every attempt.
//!
//! Every replica on one store fans out and sends. A sender claims a page
//! of the due-time index, leases the deliveries it will attempt (a
//! [`SendLease`]: its name, a random token and an end, with the due entry
//! moved to that end) and commits the leases before sending. The outcome
//! is recorded only while the delivery still carries that lease; if the
//! sender dies, the delivery comes due again when the lease ends and
//! another replica sends it again with the same `webhook-id` (at least
//! once). Only the holder of the `delivery` lease watches for overdue
//! receipts and removes old history.
//!
//! Everything it knows is in the store — the "not yet fanned out" index,
//! the deliveries and their due-time index — so a restart simply carries
//! on. In memory there is only the set of this replica's deliveries in
//! flight (leased, outcome not yet recorded) and, by endpoint, the
//! requests awaiting an answer, which the endpoint's cap limits so a slow
//! receiver cannot hold up others. `per_endpoint_concurrency` is the cap for the whole cluster:
//! every sender beats in the store about once a second, and each takes an
//! equal share of the cap among the senders that beat within the cluster
//! lease (at least one request per endpoint each). A sender starts sending
//! after its second beat, a second after the first, so that the others
//! have made room for it.
//!
//! Past an endpoint's free places a pass leases up to `HELD_PER_PLACE`
//! deliveries per place ahead and holds them: an attempt that ends starts
//! the next held one for its endpoint at once, so the endpoint is kept busy
//! while passes and outcome commits make their round trips to the store. A
//! held delivery's lease lasts one attempt timeout longer, and one whose
//! lease has too little left for an attempt is let go to come due again;
//! on stop, held deliveries are not started and their leases are ended.
//! The pass reads what its attempts need (each endpoint once, the messages
//! in one read), so an attempt itself makes no store round trip; an
//! endpoint disabled after that read may still get the attempts already
//! leased for it.

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
    OutboxMessage, SendLease,
};
use crate::sampling::guard::GuardedDns;
use crate::store::delivery::{
    self, claim_due_page, claim_unrouted, drop_due_entry, due_entries, lease_delivery, new_id,
    put_delivery,
};
use crate::store::lease::{self, Fence, Lease};
use crate::store::meta::{self, Cursor};
use crate::store::{Batch, EventRecord, StoreError, Version};

/// Messages fanned out per pass.
const FAN_OUT_BATCH: usize = 1000;
/// Due-index entries looked at per pass.
const DUE_SCAN: usize = 20_000;
/// Due-index entries claimed in the first page of a pass; later pages
/// double up to [`MAX_DUE_PAGE`] (a pass usually needs only a few).
const FIRST_DUE_PAGE: usize = 32;
const MAX_DUE_PAGE: usize = 512;
/// How long a send lease outlasts the attempt timeout when no cluster
/// lease time is known.
const SEND_LEASE_MARGIN: Duration = Duration::from_secs(15);

/// How often a sender beats in the store and counts the senders.
const SENDER_BEAT: Duration = Duration::from_secs(1);

/// A sender silent this long is forgotten by the next beat of another.
const FORGET_SENDER_AFTER: SignedDuration = SignedDuration::from_hours(1);
/// Deliveries leased ahead per place under an endpoint's cap: each attempt
/// that ends starts the next at once, while a pass leases more.
const HELD_PER_PLACE: usize = 4;
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

/// What an attempt needs besides its delivery, read by the pass that
/// leased it: the endpoint as of that pass (`None`: deleted) and the
/// message (`None`: missing). One read per endpoint and one for all the
/// messages of a pass, rather than two round trips per attempt.
#[derive(Debug, Clone)]
struct Context {
    endpoint: Option<Arc<Endpoint>>,
    message: Option<Arc<OutboxMessage>>,
}

#[derive(Debug)]
struct Outcome {
    /// As leased: the outcome commits only if the store still holds it.
    delivery: Delivery,
    attempt: Attempt,
    verdict: Verdict,
}

/// Where a delivery in flight stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Leased ahead, waiting for a place under its endpoint's cap.
    Held,
    /// Sent, awaiting the endpoint's answer.
    Sending,
    /// Answered; its outcome is not recorded yet.
    Answered,
}

#[derive(Debug, Default)]
struct InFlight {
    /// Deliveries leased and not yet recorded: their endpoint and stage.
    deliveries: HashMap<String, (String, Stage)>,
    /// Requests awaiting an endpoint's answer, by endpoint: what the
    /// endpoint's cap limits.
    per_endpoint: HashMap<String, usize>,
    /// Deliveries held, by endpoint (counted when chosen, before their
    /// leases commit).
    held: HashMap<String, usize>,
    /// Held deliveries whose leases committed, by endpoint, in due order:
    /// an attempt that ends takes the next of its endpoint at once, without
    /// waiting for a pass and its round trips to the store.
    waiting: HashMap<String, std::collections::VecDeque<Delivery>>,
    /// The cap on one endpoint as of the last pass.
    limit: usize,
    /// Deliveries held, over all endpoints.
    held_total: usize,
    /// What the attempt on each delivery not yet sent needs, by id, read by
    /// the pass that leased it; taken by the attempt, dropped with the
    /// delivery.
    contexts: HashMap<String, Context>,
}

fn count_down(counts: &mut HashMap<String, usize>, endpoint: &str) {
    if let Some(n) = counts.get_mut(endpoint) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(endpoint);
        }
    }
}

impl InFlight {
    /// Counts `delivery` as sent to `endpoint` now.
    fn add(&mut self, delivery: &str, endpoint: &str) {
        self.deliveries
            .insert(delivery.to_string(), (endpoint.to_string(), Stage::Sending));
        *self.per_endpoint.entry(endpoint.to_string()).or_default() += 1;
    }

    /// Counts `delivery` as held for `endpoint` until a place is free.
    fn hold(&mut self, delivery: &str, endpoint: &str) {
        self.deliveries
            .insert(delivery.to_string(), (endpoint.to_string(), Stage::Held));
        *self.held.entry(endpoint.to_string()).or_default() += 1;
        self.held_total += 1;
    }

    fn stage(&self, delivery: &str) -> Option<Stage> {
        self.deliveries.get(delivery).map(|(_, s)| *s)
    }

    /// Requests awaiting `endpoint`'s answer.
    fn sending(&self, endpoint: &str) -> usize {
        self.per_endpoint.get(endpoint).copied().unwrap_or(0)
    }

    /// Deliveries held for `endpoint`.
    fn held_for(&self, endpoint: &str) -> usize {
        self.held.get(endpoint).copied().unwrap_or(0)
    }

    /// Deliveries held, over all endpoints.
    fn held_total(&self) -> usize {
        self.held_total
    }

    /// Deliveries sent or answered and not yet recorded: what
    /// `max_in_flight` bounds.
    fn active(&self) -> usize {
        self.deliveries.len() - self.held_total
    }

    /// Whether nothing more can be leased: every place in flight taken,
    /// and as many held as half of them (held deliveries take no place in
    /// flight, so they never keep another endpoint's delivery waiting).
    fn full(&self, limits: &Limits) -> bool {
        self.active() >= limits.total && self.held_total >= limits.total / 2
    }

    /// Queues a held delivery whose lease committed.
    fn queue(&mut self, delivery: Delivery) {
        self.waiting
            .entry(delivery.endpoint_id.clone())
            .or_default()
            .push_back(delivery);
    }

    /// The next held delivery for `endpoint`, now counted as sent, if one
    /// waits and the endpoint has a free place.
    fn next_held(&mut self, endpoint: &str) -> Option<Delivery> {
        if self.sending(endpoint) >= self.limit.max(1) {
            return None;
        }
        let queue = self.waiting.get_mut(endpoint)?;
        let next = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(endpoint);
        }
        count_down(&mut self.held, endpoint);
        self.held_total = self.held_total.saturating_sub(1);
        self.add(&next.id, endpoint);
        Some(next)
    }

    /// The endpoint answered (or the attempt ended without reaching it):
    /// its place under the endpoint's cap is free, while the delivery
    /// stays in flight until its outcome is recorded.
    fn answered(&mut self, delivery: &str) {
        let endpoint = match self.deliveries.get_mut(delivery) {
            Some((endpoint, stage)) if *stage == Stage::Sending => {
                *stage = Stage::Answered;
                endpoint.clone()
            }
            _ => return,
        };
        count_down(&mut self.per_endpoint, &endpoint);
    }

    fn remove(&mut self, delivery: &str) {
        self.contexts.remove(delivery);
        match self.deliveries.remove(delivery) {
            Some((endpoint, Stage::Sending)) => count_down(&mut self.per_endpoint, &endpoint),
            Some((endpoint, Stage::Held)) => {
                count_down(&mut self.held, &endpoint);
                self.held_total = self.held_total.saturating_sub(1);
                if let Some(queue) = self.waiting.get_mut(&endpoint) {
                    queue.retain(|d| d.id != delivery);
                    if queue.is_empty() {
                        self.waiting.remove(&endpoint);
                    }
                }
            }
            _ => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
    /// This replica's name on its send leases and attempts.
    sender: String,
    /// How long a send lease lasts: the attempt timeout and a margin for
    /// recording the outcome.
    send_lease: SignedDuration,
    /// The attempt timeout: a held delivery's lease lasts this much longer.
    attempt_timeout: SignedDuration,
    /// Set when the dispatcher stops: no held delivery is started after.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// Rung by the recorder when attempts leave flight: the next pass only
    /// starts due deliveries in the freed places.
    freed: Arc<tokio::sync::Notify>,
    /// Endpoints known at the last full pass (stops a due walk early once
    /// every endpoint is busy).
    endpoints: Arc<std::sync::atomic::AtomicUsize>,
    /// This sender's share of each endpoint's cap, when other processes
    /// send from the same store (PostgreSQL); `None`: the only sender
    /// (sled), with the whole cap.
    cap_share: Option<Arc<Mutex<CapShare>>>,
}

/// A sender's share of each endpoint's cap among the senders that beat
/// in the store within the cluster lease.
#[derive(Debug, Default)]
struct CapShare {
    /// When this sender last beat.
    last_beat: Option<Instant>,
    /// Beats so far. A sender starts only after its second beat: by then
    /// every other sender has seen its first and lowered its share, and
    /// its own count includes them.
    beats: usize,
    /// Its share as of the last beat.
    share: usize,
}

impl CapShare {
    /// Whether a beat is due; if so, it is taken now.
    fn beat_due(&mut self) -> bool {
        if self.last_beat.is_some_and(|t| t.elapsed() < SENDER_BEAT) {
            return false;
        }
        self.last_beat = Some(Instant::now());
        true
    }

    /// This sender's cap on one endpoint; `None` before its second beat.
    fn per_endpoint(&self) -> Option<usize> {
        (self.beats >= 2).then_some(self.share)
    }
}

/// Runs the dispatcher until `stop` turns true, then lets attempts in
/// flight finish (within the attempt timeout) and records them.
pub async fn run(webhooks: Webhooks, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    run_with_lease(webhooks, None, stop).await
}

/// [`run`] as one of several replicas: it fans out and sends alongside
/// the others, names itself on its send leases by `lease`'s holder, and
/// watches for overdue receipts and removes old history only while it
/// holds `lease` (the `delivery` lease; `None`: this process is the only
/// one), giving it up at the end.
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
        stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        permits: Arc::new(Semaphore::new(settings.max_in_flight)),
        lease: lease.clone(),
        sender: lease
            .as_ref()
            .map_or_else(|| "local".to_string(), |l| l.holder().to_string()),
        send_lease: SignedDuration::try_from(
            timeout + lease.as_ref().map_or(SEND_LEASE_MARGIN, |l| l.lasts()),
        )
        .unwrap_or(SignedDuration::MAX),
        attempt_timeout: SignedDuration::try_from(timeout).unwrap_or(SignedDuration::MAX),
        freed: Arc::new(tokio::sync::Notify::new()),
        endpoints: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        cap_share: lease
            .as_ref()
            .filter(|_| !webhooks.store().single_process())
            .map(|_| Arc::new(Mutex::new(CapShare::default()))),
    };
    let (sender, send_lease, attempt_timeout) = (
        dispatcher.sender.clone(),
        dispatcher.send_lease,
        dispatcher.attempt_timeout,
    );
    let released = webhooks
        .blocking(move |w| {
            let now = w.now();
            let until = now.checked_add(send_lease).unwrap_or(now);
            let terms = SendTerms {
                holder: &sender,
                until,
                held_until: until.checked_add(attempt_timeout).unwrap_or(until),
            };
            release_own_leases(w, now, &terms)
        })
        .await;
    match released {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            deliveries = n,
            "sending again what this replica was sending when it stopped"
        ),
        Err(e) => {
            tracing::warn!(error = ?e, "could not release this replica's earlier send leases; they end on their own")
        }
    }
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
    // Attempts under way finish; held deliveries are not started.
    dispatcher
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    drop(tx);
    match tokio::time::timeout(timeout + Duration::from_secs(2), recorder).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "delivery recorder failed"),
        Err(_) => tracing::warn!("attempts still in flight at shutdown are sent again on restart"),
    }
    // Hand the held ones back, so another sender takes them now rather than
    // when their leases end.
    let held = dispatcher.take_held();
    if !held.is_empty() {
        match webhooks.blocking(move |w| release_held(w, &held)).await {
            Ok(n) => tracing::info!(
                deliveries = n,
                "handed back the deliveries held for sending"
            ),
            Err(e) => {
                tracing::warn!(error = ?e, "could not hand back the held deliveries; their leases end on their own")
            }
        }
    }
    if let Some(lease) = lease {
        // The others take up this sender's share of the caps at once.
        let (w, sender) = (webhooks.clone(), dispatcher.sender.clone());
        if dispatcher.cap_share.is_some() {
            if let Err(e) = w
                .blocking(move |w| Ok(delivery::forget_sender(w.store(), &sender)?))
                .await
            {
                tracing::warn!(error = ?e, "removing this sender's beat failed; it lapses instead");
            }
        }
        let released = tokio::task::spawn_blocking(move || lease.release()).await;
        if let Ok(Err(e)) = released {
            tracing::warn!(error = %e, "releasing the delivery lease failed; it lapses instead");
        }
    }
    Ok(())
}

/// Beats as `sender` if a beat is due, and keeps its share of each
/// endpoint's cap among the senders that beat within the cluster lease.
fn beat(w: &Webhooks, sender: &str, lease: &Lease, cap_share: &Mutex<CapShare>) -> Result<()> {
    if !lock(cap_share).beat_due() {
        return Ok(());
    }
    let now = w.now();
    let window = SignedDuration::try_from(lease.lasts()).unwrap_or(SignedDuration::MAX);
    let live_since = now.checked_sub(window).unwrap_or(Timestamp::MIN);
    let seen = delivery::beat_sender(w.store(), sender, now, live_since, FORGET_SENDER_AFTER)?;
    let share = seen.share(w.settings().per_endpoint_concurrency);
    let mut mine = lock(cap_share);
    if mine.share != share {
        tracing::info!(
            senders = seen.live,
            share,
            "replicas sending webhooks; each endpoint's cap is shared among them"
        );
    }
    mine.share = share;
    mine.beats += 1;
    crate::metrics::delivery_senders(seen.live);
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
        let cap_share = self.cap_share.clone();
        let cap = self.webhooks.settings().per_endpoint_concurrency;
        let max = self.webhooks.settings().max_in_flight;
        let lease = self.lease.clone();
        let sender = self.sender.clone();
        let send_lease = self.send_lease;
        let attempt_timeout = self.attempt_timeout;
        let due = self
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
                if full {
                    // The holder of the `delivery` lease watches for
                    // overdue receipts.
                    let holds = match &lease {
                        None => Some(None),
                        Some(lease) => lease.ensure()?.map(Some),
                    };
                    if let Some(fence) = holds {
                        match watch_alerts(w, fence.as_ref()) {
                            Err(super::WebhookError::Internal(e))
                                if crate::store::is_conflict(&e) =>
                            {
                                check_fence(lease.as_deref(), fence.as_ref());
                            }
                            other => other?,
                        }
                    }
                    known_endpoints.store(
                        w.store().endpoint_count()?,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    if let (Some(lease), Some(cap_share)) = (&lease, &cap_share) {
                        beat(w, &sender, lease, cap_share)?;
                    }
                }
                let per_endpoint = match &cap_share {
                    None => cap,
                    Some(cap_share) => match lock(cap_share).per_endpoint() {
                        Some(share) => share,
                        // Not sending until its share of the caps is known.
                        None => return Ok(Vec::new()),
                    },
                };
                let mut flight = lock(&in_flight);
                let limits = Limits {
                    per_endpoint,
                    total: max,
                    endpoints: known_endpoints
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .max(1),
                };
                let now = w.now();
                let until = now.checked_add(send_lease).unwrap_or(now);
                let lease = SendTerms {
                    holder: &sender,
                    until,
                    held_until: until.checked_add(attempt_timeout).unwrap_or(until),
                };
                let due = lease_due(w, now, &lease, &limits, &mut flight)?;
                let mut unread: Vec<Delivery> = due.clone();
                unread.extend(
                    flight
                        .waiting
                        .values()
                        .flatten()
                        .filter(|d| !flight.contexts.contains_key(&d.id))
                        .cloned(),
                );
                drop(flight);
                let read = read_contexts(w, &unread)?;
                // Only for deliveries not yet under way: an attempt that
                // started meanwhile read its own.
                let mut flight = lock(&in_flight);
                for (id, context) in read {
                    if matches!(flight.stage(&id), Some(Stage::Held | Stage::Sending)) {
                        flight.contexts.insert(id, context);
                    }
                }
                Ok(due)
            })
            .await?;
        for delivery in due {
            let this = self.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = this.permits.clone().acquire_owned().await;
                let mut next = Some(delivery);
                while let Some(delivery) = next {
                    let endpoint = delivery.endpoint_id.clone();
                    let outcome = this.attempt(delivery).await;
                    // The endpoint is free for another request while the
                    // outcome is recorded: a held delivery takes the place
                    // at once; otherwise the recorder rings for the next
                    // pass, which fills every place freed meanwhile.
                    lock(&this.in_flight).answered(&outcome.delivery.id);
                    next = this.next_held(&endpoint);
                    let _ = tx.send(outcome);
                }
            });
        }
        Ok(())
    }

    /// The next held delivery for `endpoint` if it has a free place, now
    /// counted as sent. One whose lease would end before an attempt could
    /// (it waited behind slow attempts) is let go instead: it comes due
    /// again when its lease ends, and no other sender gets it meanwhile.
    fn next_held(&self, endpoint: &str) -> Option<Delivery> {
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        loop {
            let d = lock(&self.in_flight).next_held(endpoint)?;
            let room = self.webhooks.now().checked_add(self.attempt_timeout).ok();
            if d.lease
                .as_ref()
                .zip(room)
                .is_some_and(|(l, room)| l.until >= room)
            {
                return Some(d);
            }
            lock(&self.in_flight).remove(&d.id);
        }
    }

    /// Takes every held delivery out of flight (the dispatcher stops).
    fn take_held(&self) -> Vec<Delivery> {
        let mut in_flight = lock(&self.in_flight);
        let held: Vec<Delivery> = in_flight.waiting.values().flatten().cloned().collect();
        for d in &held {
            in_flight.remove(&d.id);
        }
        held
    }

    /// Sends one delivery once.
    async fn attempt(&self, delivery: Delivery) -> Outcome {
        let at = self.webhooks.now();
        let started = Instant::now();
        let (verdict, status, error) = self.send(&delivery).await;
        Outcome {
            attempt: Attempt {
                at,
                status,
                latency_ms: started.elapsed().as_millis() as u64,
                error,
                sender: Some(self.sender.clone()),
            },
            delivery,
            verdict,
        }
    }

    async fn send(&self, d: &Delivery) -> (Verdict, Option<u16>, Option<String>) {
        // Read by the pass as a rule; when not (a held delivery started
        // before its pass had read), off the async workers, since store
        // calls block.
        let context = lock(&self.in_flight).contexts.remove(&d.id);
        let context = match context {
            Some(c) => c,
            None => {
                let one = vec![d.clone()];
                match self
                    .webhooks
                    .blocking(move |w| read_contexts(w, &one))
                    .await
                {
                    Ok(mut read) => match read.pop() {
                        Some((_, c)) => c,
                        None => return (Verdict::Retry(None), None, Some("store: no read".into())),
                    },
                    Err(e) => return (Verdict::Retry(None), None, Some(format!("store: {e}"))),
                }
            }
        };
        let Context { endpoint, message } = context;
        let endpoint = match endpoint {
            Some(e) => e,
            None => {
                return (
                    Verdict::Abandon,
                    None,
                    Some("the endpoint was deleted".into()),
                )
            }
        };
        if !endpoint.enabled {
            return (
                Verdict::Abandon,
                None,
                Some("the endpoint is disabled".into()),
            );
        }
        let Some(message) = message else {
            return (
                Verdict::Abandon,
                None,
                Some("the message is missing".into()),
            );
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
            let result = self
                .webhooks
                .blocking(move |w| record_outcomes(w, outcomes))
                .await;
            if let Err(e) = result {
                tracing::error!(error = ?e, "recording delivery attempts failed; they are sent again when their send leases end");
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

/// How many attempts may be in flight on this replica.
#[derive(Debug, Clone, Copy)]
struct Limits {
    per_endpoint: usize,
    total: usize,
    /// Endpoints known: once every one is busy, nothing further can start.
    endpoints: usize,
}

/// The send leases a pass takes.
#[derive(Debug)]
struct SendTerms<'a> {
    holder: &'a str,
    /// The end of a lease on a delivery sent at once.
    until: Timestamp,
    /// The end of a lease on a delivery held for a free place: later by
    /// one attempt timeout, the longest it waits behind the one before.
    held_until: Timestamp,
}

/// Leases the deliveries due at `now` that fit in this replica's free
/// places, oldest first, and returns them as leased (now in flight). Past
/// an endpoint's free places it leases as many again, held in `in_flight`
/// for the attempts under way to take as they end. The
/// due index is read a claimed page at a time, so replicas lease apart;
/// each page's leases commit in its claim's transaction, each expecting
/// the delivery unchanged since it was read. Entries that lead nowhere
/// are dropped on the way.
fn lease_due(
    w: &Webhooks,
    now: Timestamp,
    terms: &SendTerms<'_>,
    limits: &Limits,
    in_flight: &mut InFlight,
) -> Result<Vec<Delivery>> {
    let store = &**w.store();
    let mut due = Vec::new();
    let mut busy = std::collections::HashSet::new();
    let mut looked = 0usize;
    let mut start = Vec::new();
    let mut page_size = FIRST_DUE_PAGE;
    loop {
        if in_flight.full(limits) {
            break;
        }
        let mut page = claim_due_page(store, now, &start, page_size)?;
        let mut done = page.entries.is_empty();
        // What fits, counted in flight at once so the caps see it.
        let mut chosen: Vec<(&[u8], &str)> = Vec::new();
        for (key, id, endpoint) in &page.entries {
            looked += 1;
            if looked > DUE_SCAN || in_flight.full(limits) {
                done = true;
                break;
            }
            if in_flight.deliveries.contains_key(id) {
                // Its outcome is not recorded yet.
                continue;
            }
            if in_flight.sending(endpoint) < limits.per_endpoint
                && in_flight.active() < limits.total
            {
                in_flight.add(id, endpoint);
            } else if in_flight.held_for(endpoint) < limits.per_endpoint * HELD_PER_PLACE
                && in_flight.held_total() < limits.total / 2
            {
                in_flight.hold(id, endpoint);
            } else {
                busy.insert(endpoint.clone());
                if busy.len() >= limits.endpoints {
                    done = true;
                    break;
                }
                continue;
            }
            chosen.push((key, id));
        }
        let mut batch = Batch::new();
        let mut leased = Vec::new();
        let found = due_entries(store, &chosen)?;
        for ((key, id), found) in chosen.iter().zip(found) {
            match found {
                Some((d, version)) => {
                    let held = in_flight.stage(id) == Some(Stage::Held);
                    let lease = SendLease {
                        holder: terms.holder.to_string(),
                        token: format!("{:032x}", rand::random::<u128>()),
                        until: if held { terms.held_until } else { terms.until },
                    };
                    leased.push(lease_delivery(&mut batch, d, &version, lease)?);
                }
                None => {
                    in_flight.remove(id);
                    drop_due_entry(&mut batch, key);
                }
            }
        }
        if !batch.is_empty() {
            match page.commit(batch) {
                Ok(_) => {
                    for d in leased {
                        if in_flight.stage(&d.id) == Some(Stage::Held) {
                            in_flight.queue(d);
                        } else {
                            due.push(d);
                        }
                    }
                }
                Err(e) => {
                    for d in &leased {
                        in_flight.remove(&d.id);
                    }
                    if !matches!(e, StoreError::Conflict(_)) {
                        return Err(e.into());
                    }
                    // Changed since it was read (a replay, or an outcome
                    // recorded late): look again next pass.
                }
            }
        }
        match page.next_start() {
            Some(next) if !done => start = next,
            _ => break,
        }
        page_size = (page_size * 2).min(MAX_DUE_PAGE);
    }
    // Places freed meanwhile, or a larger share of the cap since the last
    // pass: held deliveries take them now.
    in_flight.limit = limits.per_endpoint;
    let endpoints: Vec<String> = in_flight.waiting.keys().cloned().collect();
    for endpoint in endpoints {
        while let Some(d) = in_flight.next_held(&endpoint) {
            due.push(d);
        }
    }
    Ok(due)
}

/// Ends `d`'s send lease in `batch`, expecting the delivery unchanged since
/// it was read at `version`: it is due again when it was due before.
fn end_lease(batch: &mut Batch, mut d: Delivery, version: &Version) -> Result<()> {
    batch.expect_unchanged(version);
    let previous = d.due_at();
    d.lease = None;
    put_delivery(batch, &d, previous)?;
    Ok(())
}

/// Ends the send leases of `held` deliveries this sender will not start,
/// where the store still holds them under the same lease: each is due again
/// when it was due before, for any sender. Returns how many. Blocking.
fn release_held(w: &Webhooks, held: &[Delivery]) -> Result<usize> {
    let store = &**w.store();
    let mut batch = Batch::new();
    let mut released = 0;
    for d in held {
        let (Some(stored), version) = store.delivery_versioned(&d.id)? else {
            continue;
        };
        if stored.lease.is_none() || stored.lease != d.lease {
            continue;
        }
        end_lease(&mut batch, stored, &version)?;
        released += 1;
    }
    if !batch.is_empty() {
        store.commit(batch)?;
        store.flush()?;
    }
    Ok(released)
}

/// Reads what the attempts on `deliveries` need: each endpoint once, and
/// the messages of enabled endpoints in one read. Blocking.
fn read_contexts(w: &Webhooks, deliveries: &[Delivery]) -> Result<Vec<(String, Context)>> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let store = &**w.store();
    let mut endpoints: HashMap<&str, Option<Arc<Endpoint>>> = HashMap::new();
    for d in deliveries {
        if !endpoints.contains_key(d.endpoint_id.as_str()) {
            let e = store.endpoint(&d.endpoint_id)?.map(Arc::new);
            endpoints.insert(&d.endpoint_id, e);
        }
    }
    let wanted: Vec<&str> = deliveries
        .iter()
        .filter(|d| {
            endpoints
                .get(d.endpoint_id.as_str())
                .is_some_and(|e| e.as_ref().is_some_and(|e| e.enabled))
        })
        .map(|d| d.message_id.as_str())
        .collect();
    let mut messages: HashMap<&str, Arc<OutboxMessage>> = HashMap::new();
    for (id, m) in wanted.iter().zip(store.messages_by_id(&wanted)?) {
        if let Some(m) = m {
            messages.insert(id, Arc::new(m));
        }
    }
    Ok(deliveries
        .iter()
        .map(|d| {
            let context = Context {
                endpoint: endpoints.get(d.endpoint_id.as_str()).cloned().flatten(),
                message: messages.get(d.message_id.as_str()).cloned(),
            };
            (d.id.clone(), context)
        })
        .collect())
}

/// At start: deliveries leased in an earlier life of this replica (it died
/// mid-attempt) are due again at once rather than when their leases end.
/// On a store only this process can open every lease is such; on a shared
/// one, those under this replica's name (a configured `cluster.replica_id`;
/// a generated one is new at each start). Leases end at most one held
/// lease from now, so the walk stops there. Returns how many it released.
fn release_own_leases(w: &Webhooks, now: Timestamp, terms: &SendTerms<'_>) -> Result<usize> {
    let store = &**w.store();
    let anyone = store.single_process();
    let mut released = 0;
    let mut start = Vec::new();
    loop {
        let mut page = claim_due_page(store, terms.held_until, &start, MAX_DUE_PAGE)?;
        let mut batch = Batch::new();
        let entries: Vec<(&[u8], &str)> = page
            .entries
            .iter()
            .map(|(key, id, _)| (key.as_slice(), id.as_str()))
            .collect();
        for found in due_entries(store, &entries)? {
            let Some((d, version)) = found else {
                continue;
            };
            if d.lease
                .as_ref()
                .is_some_and(|l| l.until > now && (anyone || l.holder == terms.holder))
            {
                end_lease(&mut batch, d, &version)?;
                released += 1;
            }
        }
        if !batch.is_empty() {
            page.commit(batch)?;
        }
        match page.next_start() {
            Some(next) => start = next,
            None => return Ok(released),
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
    let endpoints: Vec<Endpoint> = w.store().endpoints()?;
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
                lease: None,
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

/// Records a batch of outcomes in one commit that expects each delivery
/// to hold the lease its attempt was made under. If one was taken over
/// (its lease ran out and another sender leased it), that outcome is left
/// out — the new holder records its own — and the rest commit.
fn record_outcomes(w: &Webhooks, outcomes: Vec<Outcome>) -> Result<()> {
    let mut lost: std::collections::HashSet<String> = std::collections::HashSet::new();
    for _ in 0..3 {
        let (batch, counted, health) = outcome_batch(w, &outcomes, &lost)?;
        match w.store().commit(batch) {
            Ok(_) => {
                // Counted once recorded, so a failed commit (attempt made
                // again) is not counted twice.
                for outcome in counted {
                    crate::metrics::delivery_attempt(outcome);
                }
                for (endpoint, h) in health {
                    update_health(w, &endpoint, &h, w.now())?;
                }
                return Ok(());
            }
            Err(StoreError::Conflict(_)) => {
                for o in &outcomes {
                    let (_, now) = w.store().delivery_versioned(&o.delivery.id)?;
                    if now != Version::of(&o.delivery)? && lost.insert(o.delivery.id.clone()) {
                        tracing::warn!(
                            delivery = %o.delivery.id,
                            "a delivery's send lease ran out before its outcome was recorded; another sender has it"
                        );
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict("delivery outcomes kept conflicting").into())
}

/// The commit recording `outcomes` (but those `lost`), the outcomes to
/// count, and each endpoint's health news.
type OutcomeBatch = (Batch, Vec<&'static str>, HashMap<String, Health>);

fn outcome_batch(
    w: &Webhooks,
    outcomes: &[Outcome],
    lost: &std::collections::HashSet<String>,
) -> Result<OutcomeBatch> {
    let now = w.now();
    let scale = w.settings().retry_scale;
    let mut batch = Batch::new();
    let mut health: HashMap<String, Health> = HashMap::new();
    let mut counted: Vec<&'static str> = Vec::new();
    for Outcome {
        delivery,
        attempt,
        verdict,
    } in outcomes
    {
        if lost.contains(&delivery.id) {
            continue;
        }
        batch.expect_unchanged(&Version::of(delivery)?);
        let mut delivery = delivery.clone();
        let previous_due = delivery.due_at();
        delivery.lease = None;
        delivery.round_attempts += 1;
        delivery.updated_at = now;
        let h = health.entry(delivery.endpoint_id.clone()).or_default();
        match verdict {
            Verdict::Delivered => {
                h.succeeded_last = true;
                h.first_failure = None;
            }
            Verdict::Abandon => {}
            Verdict::Gone | Verdict::Retry(_) => {
                h.succeeded_last = false;
                h.first_failure.get_or_insert(attempt.at);
                h.gone |= *verdict == Verdict::Gone;
            }
        }
        delivery.attempts.push(attempt.clone());
        let (status, next) = match verdict {
            Verdict::Delivered => (DeliveryStatus::Delivered, None),
            Verdict::Gone | Verdict::Abandon => (DeliveryStatus::Dead, None),
            Verdict::Retry(asked) => {
                let unit: f64 = rand::random();
                match next_attempt(delivery.round_attempts, *asked, unit) {
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
    Ok((batch, counted, health))
}

/// Applies one batch's health news to an endpoint: a success clears the
/// failure clock; a 410 or failing longer than the configured span disables
/// it and raises an alert.
fn update_health(w: &Webhooks, id: &str, h: &Health, now: Timestamp) -> Result<()> {
    let limit = SignedDuration::from_secs(
        i64::try_from(w.settings().disable_after_failing_secs).unwrap_or(i64::MAX / 2),
    );
    for _ in 0..8 {
        let (Some(mut e), version) = w.store().endpoint_versioned(id)? else {
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
    use crate::config::DeliverySettings;
    use crate::delivery::endpoints::NewEndpoint;
    use crate::domain::OutboxMessage;
    use crate::enforcement::Ladders;
    use crate::sampling::guard::SystemResolver;
    use crate::service::cases::CaseService;
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
        for d in store.deliveries(false).unwrap() {
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

    /// Two replicas on one PostgreSQL test database (kept alive by the
    /// first part): the first's store, its webhooks with three endpoints,
    /// and the second's webhooks. `None` without a test database.
    async fn two_postgres_replicas(
    ) -> Option<(crate::store::TestDb, SharedStore, Webhooks, Webhooks)> {
        let db = crate::store::TestDb::new()?;
        let one: SharedStore = Arc::new(db.open());
        let two: SharedStore = Arc::new(db.open());
        let a = webhooks(&one, 3).await;
        let b = webhooks(&two, 0).await;
        Some((db, one, a, b))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fan_outs_on_two_postgres_replicas_claim_apart_and_never_conflict() {
        let Some((_db, one, a, b)) = two_postgres_replicas().await else {
            return;
        };
        // Claims keep the replicas apart: no fan-out finds its messages
        // taken under it.
        fan_out_rounds_at_once(&one, &a, &b, false);
        let pairs = deliveries_per_pair(&one);
        assert_eq!(pairs.len(), 200 * 3);
        assert!(pairs.values().all(|&n| n == 1), "duplicate deliveries");
    }

    fn delivered(d: &Delivery, sender: &str) -> Outcome {
        Outcome {
            delivery: d.clone(),
            attempt: Attempt {
                at: Timestamp::now(),
                status: Some(200),
                latency_ms: 1,
                error: None,
                sender: Some(sender.into()),
            },
            verdict: Verdict::Delivered,
        }
    }

    #[test]
    fn an_answer_frees_the_endpoints_place_and_recording_frees_the_delivery() {
        let mut f = InFlight::default();
        f.add("d1", "e1");
        f.add("d2", "e1");
        assert_eq!(f.per_endpoint.get("e1"), Some(&2));
        f.answered("d1");
        f.answered("d1");
        assert_eq!(f.per_endpoint.get("e1"), Some(&1), "counted once");
        assert_eq!(f.deliveries.len(), 2, "d1 stays in flight until recorded");
        f.remove("d1");
        assert_eq!(f.per_endpoint.get("e1"), Some(&1), "not freed twice");
        f.remove("d2");
        assert!(f.per_endpoint.is_empty() && f.deliveries.is_empty());
    }

    const ROOMY: Limits = Limits {
        per_endpoint: 10_000,
        total: 10_000,
        endpoints: 3,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_lease_keeps_other_senders_off_until_it_ends_and_a_late_outcome_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let w = webhooks(&store, 1).await;
        queue(&store, 1);
        assert_eq!(fan_out(&w).unwrap(), 1);
        let now = Timestamp::now();
        let secs = |n: i64| SignedDuration::from_secs(n);
        let terms = |holder, until| SendTerms {
            holder,
            until,
            held_until: until,
        };
        let first = lease_due(
            &w,
            now,
            &terms("r1", now + secs(30)),
            &ROOMY,
            &mut InFlight::default(),
        )
        .unwrap();
        assert_eq!(first.len(), 1);
        let id = first[0].id.clone();
        // Another replica (with its own in-flight set) finds nothing due
        // while the lease runs ...
        let none = lease_due(
            &w,
            now + secs(29),
            &terms("r2", now + secs(59)),
            &ROOMY,
            &mut InFlight::default(),
        )
        .unwrap();
        assert!(none.is_empty(), "leased twice: {none:?}");
        // ... and takes it over once it ends.
        let second = lease_due(
            &w,
            now + secs(30),
            &terms("r2", now + secs(60)),
            &ROOMY,
            &mut InFlight::default(),
        )
        .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].id, id);
        let (one, two) = (
            first[0].lease.clone().unwrap(),
            second[0].lease.clone().unwrap(),
        );
        assert_eq!((one.holder.as_str(), two.holder.as_str()), ("r1", "r2"));
        assert_ne!(one.token, two.token);

        // The first sender's late outcome is left out; the holder's counts.
        record_outcomes(&w, vec![delivered(&first[0], "r1")]).unwrap();
        let stored = store.delivery(&id).unwrap().unwrap();
        assert_eq!(stored.status, DeliveryStatus::Pending);
        assert!(stored.attempts.is_empty());
        assert_eq!(stored.lease.as_ref().map(|l| l.holder.as_str()), Some("r2"));
        record_outcomes(&w, vec![delivered(&second[0], "r2")]).unwrap();
        let stored = store.delivery(&id).unwrap().unwrap();
        assert_eq!(stored.status, DeliveryStatus::Delivered);
        assert_eq!(stored.lease, None);
        assert_eq!(stored.attempts.len(), 1);
        assert_eq!(stored.attempts[0].sender.as_deref(), Some("r2"));
        let later = delivery::claim_due_page(&*store, now + secs(3600), b"", 10).unwrap();
        assert!(
            later.entries.is_empty(),
            "a delivered delivery left a due entry"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_leases_no_more_than_an_endpoint_may_take_and_moves_on_to_other_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let w = webhooks(&store, 3).await;
        queue(&store, 50);
        assert_eq!(fan_out(&w).unwrap(), 50);
        let now = Timestamp::now();
        let limits = Limits {
            per_endpoint: 4,
            total: 100,
            endpoints: 3,
        };
        let mut in_flight = InFlight::default();
        let terms = SendTerms {
            holder: "r1",
            until: now + SignedDuration::from_secs(30),
            held_until: now + SignedDuration::from_secs(40),
        };
        let leased = lease_due(&w, now, &terms, &limits, &mut in_flight).unwrap();
        let mut per_endpoint: HashMap<&str, usize> = HashMap::new();
        for d in &leased {
            *per_endpoint.entry(d.endpoint_id.as_str()).or_default() += 1;
            assert_eq!(d.lease.as_ref().map(|l| l.until), Some(terms.until));
        }
        assert_eq!(per_endpoint.len(), 3, "{per_endpoint:?}");
        assert!(per_endpoint.values().all(|&n| n == 4), "{per_endpoint:?}");
        // More are leased ahead and held, on a longer lease.
        let held: Vec<&Delivery> = in_flight.waiting.values().flatten().collect();
        assert_eq!(held.len(), 12 * HELD_PER_PLACE);
        assert!(held
            .iter()
            .all(|d| d.lease.as_ref().map(|l| l.until) == Some(terms.held_until)));
        let total = 12 + 12 * HELD_PER_PLACE;
        assert_eq!(in_flight.deliveries.len(), total);
        // Full: a second pass leases nothing more.
        assert!(lease_due(&w, now, &terms, &limits, &mut in_flight)
            .unwrap()
            .is_empty());
        assert_eq!(in_flight.deliveries.len(), total);
        // An answer frees a place, and the next held delivery of that
        // endpoint takes it; the cap is never passed.
        let first = &leased[0];
        assert!(
            in_flight.next_held(&first.endpoint_id).is_none(),
            "no free place yet"
        );
        in_flight.answered(&first.id);
        let next = in_flight.next_held(&first.endpoint_id).unwrap();
        assert_eq!(next.endpoint_id, first.endpoint_id);
        let held = 4 * HELD_PER_PLACE;
        assert_eq!(in_flight.sending(&first.endpoint_id), 4);
        assert_eq!(in_flight.held_for(&first.endpoint_id), held - 1);
        // A held delivery whose lease is given up leaves the queue.
        let other = in_flight.waiting[&first.endpoint_id][0].id.clone();
        in_flight.remove(&other);
        assert_eq!(in_flight.held_for(&first.endpoint_id), held - 2);
        assert_eq!(in_flight.waiting[&first.endpoint_id].len(), held - 2);
    }

    /// One place on one endpoint.
    const ONE_PLACE: Limits = Limits {
        per_endpoint: 1,
        total: 100,
        endpoints: 1,
    };

    /// A sled store with one endpoint and `messages` fanned out to it, and
    /// an idle dispatcher on it.
    async fn one_endpoint_with(
        messages: usize,
    ) -> (tempfile::TempDir, SharedStore, Webhooks, Dispatcher) {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let w = webhooks(&store, 1).await;
        queue(&store, messages);
        assert_eq!(fan_out(&w).unwrap(), messages);
        let d = idle_dispatcher(&w);
        (dir, store, w, d)
    }

    /// A dispatcher on `w` that has sent nothing, with a 10 s attempt
    /// timeout.
    fn idle_dispatcher(w: &Webhooks) -> Dispatcher {
        Dispatcher {
            webhooks: w.clone(),
            client: reqwest::Client::new(),
            in_flight: Arc::new(Mutex::new(InFlight::default())),
            stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            permits: Arc::new(Semaphore::new(8)),
            lease: None,
            sender: "r1".into(),
            send_lease: SignedDuration::from_secs(25),
            attempt_timeout: SignedDuration::from_secs(10),
            freed: Arc::new(tokio::sync::Notify::new()),
            endpoints: Arc::new(std::sync::atomic::AtomicUsize::new(1)),
            cap_share: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_delivery_is_let_go_rather_than_sent_on_a_lease_too_short_for_an_attempt() {
        let (_dir, store, w, d) = one_endpoint_with(3).await;
        let (now, one) = (Timestamp::now(), ONE_PLACE);
        let sent = {
            let mut in_flight = lock(&d.in_flight);
            let terms = SendTerms {
                holder: "r1",
                until: now + SignedDuration::from_secs(35),
                // Shorter than the 10 s an attempt may take.
                held_until: now + SignedDuration::from_secs(5),
            };
            let sent = lease_due(&w, now, &terms, &one, &mut in_flight).unwrap();
            assert_eq!((sent.len(), in_flight.held_total()), (1, 2));
            sent
        };
        let endpoint = sent[0].endpoint_id.clone();
        lock(&d.in_flight).answered(&sent[0].id);
        assert!(
            d.next_held(&endpoint).is_none(),
            "sent on a lease too short"
        );
        let in_flight = lock(&d.in_flight);
        assert_eq!(in_flight.held_total(), 0);
        assert_eq!(
            in_flight.deliveries.len(),
            1,
            "only the answered one is left"
        );
        drop(in_flight);
        // Let go, they stay leased to this sender until their leases end.
        let held: Vec<Delivery> = store
            .deliveries(false)
            .unwrap()
            .into_iter()
            .filter(|x| x.id != sent[0].id)
            .collect();
        assert_eq!(held.len(), 2);
        assert!(held
            .iter()
            .all(|x| x.lease.as_ref().is_some_and(
                |l| l.holder == "r1" && l.until == now + SignedDuration::from_secs(5)
            )));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopping_sender_starts_no_held_delivery_and_hands_them_back_at_once() {
        let (_dir, _store, w, d) = one_endpoint_with(3).await;
        let (now, one) = (Timestamp::now(), ONE_PLACE);
        let terms = SendTerms {
            holder: "r1",
            until: now + SignedDuration::from_secs(35),
            held_until: now + SignedDuration::from_secs(45),
        };
        let sent = lease_due(&w, now, &terms, &one, &mut lock(&d.in_flight)).unwrap();
        assert_eq!(sent.len(), 1);
        lock(&d.in_flight).answered(&sent[0].id);
        d.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            d.next_held(&sent[0].endpoint_id).is_none(),
            "started while stopping"
        );
        let held = d.take_held();
        assert_eq!(held.len(), 2);
        assert_eq!(lock(&d.in_flight).held_total(), 0);
        assert_eq!(release_held(&w, &held).unwrap(), 2);
        // Another sender finds them due now, not when the leases would
        // have ended; the one being sent stays leased.
        let terms = SendTerms {
            holder: "r2",
            until: now + SignedDuration::from_secs(35),
            held_until: now + SignedDuration::from_secs(45),
        };
        let taken = lease_due(&w, now, &terms, &ROOMY, &mut InFlight::default()).unwrap();
        let mut ids: Vec<&str> = taken.iter().map(|x| x.id.as_str()).collect();
        let mut want: Vec<&str> = held.iter().map(|x| x.id.as_str()).collect();
        ids.sort();
        want.sort();
        assert_eq!(ids, want);
        // A second hand-back finds the leases no longer this sender's.
        assert_eq!(release_held(&w, &held).unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_delivery_with_lease_enough_takes_the_place_an_answer_frees() {
        let (_dir, _store, w, d) = one_endpoint_with(2).await;
        let (now, one) = (Timestamp::now(), ONE_PLACE);
        let sent = {
            let mut in_flight = lock(&d.in_flight);
            let terms = SendTerms {
                holder: "r1",
                until: now + SignedDuration::from_secs(35),
                held_until: now + SignedDuration::from_secs(45),
            };
            lease_due(&w, now, &terms, &one, &mut in_flight).unwrap()
        };
        let endpoint = sent[0].endpoint_id.clone();
        assert!(
            d.next_held(&endpoint).is_none(),
            "the endpoint's one place is taken"
        );
        lock(&d.in_flight).answered(&sent[0].id);
        let next = d.next_held(&endpoint).unwrap();
        assert_ne!(next.id, sent[0].id);
        assert_eq!(lock(&d.in_flight).sending(&endpoint), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn senders_on_two_postgres_replicas_lease_every_due_delivery_once() {
        let Some((_db, one, a, b)) = two_postgres_replicas().await else {
            return;
        };
        queue(&one, 200);
        while fan_out(&a).unwrap() > 0 {}
        let now = Timestamp::now() + SignedDuration::from_secs(1);
        let until = now + SignedDuration::from_secs(60);
        let threads: Vec<_> = [(a, "r1"), (b, "r2")]
            .into_iter()
            .map(|(w, holder)| {
                std::thread::spawn(move || {
                    let mut in_flight = InFlight::default();
                    let mut ids = Vec::new();
                    loop {
                        let terms = SendTerms {
                            holder,
                            until,
                            held_until: until,
                        };
                        let leased = lease_due(&w, now, &terms, &ROOMY, &mut in_flight).unwrap();
                        if leased.is_empty() && lease_due_is_done(&w, now) {
                            return ids;
                        }
                        ids.extend(leased.into_iter().map(|d| d.id));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in threads {
            all.extend(t.join().unwrap());
        }
        let distinct: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "a delivery was leased twice");
        assert_eq!(all.len(), 600, "every delivery leased");
    }

    /// Leases one delivery to each of `holders` at `now`, then releases
    /// `me`'s at start; returns how many it released and the holders of
    /// the leases left.
    async fn leases_left_after_a_restart(
        store: &SharedStore,
        holders: &[&str],
        me: &str,
    ) -> (usize, Vec<String>) {
        let w = webhooks(store, 1).await;
        queue(store, holders.len());
        assert_eq!(fan_out(&w).unwrap(), holders.len());
        let now = Timestamp::now();
        let until = now + SignedDuration::from_secs(30);
        let one = Limits { total: 1, ..ROOMY };
        for &holder in holders {
            let terms = SendTerms {
                holder,
                until,
                held_until: until,
            };
            let leased = lease_due(&w, now, &terms, &one, &mut InFlight::default()).unwrap();
            assert_eq!(leased.len(), 1);
        }
        let terms = SendTerms {
            holder: me,
            until,
            held_until: until,
        };
        let released = release_own_leases(&w, now, &terms).unwrap();
        let mut left: Vec<String> = store
            .deliveries(false)
            .unwrap()
            .into_iter()
            .filter_map(|d| d.lease.map(|l| l.holder))
            .collect();
        left.sort();
        let due_now = lease_due(&w, now, &terms, &ROOMY, &mut InFlight::default()).unwrap();
        assert_eq!(due_now.len(), released, "what was released is due at once");
        (released, left)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_sender_on_its_own_store_sends_again_at_once_what_it_was_sending() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        // One process opens sled: every lease is from an earlier life.
        let (released, left) =
            leases_left_after_a_restart(&store, &["old-1", "old-2"], "new").await;
        assert_eq!(released, 2);
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_postgres_replica_releases_only_its_own_send_leases() {
        let Some(db) = crate::store::TestDb::new() else {
            return;
        };
        let store: SharedStore = Arc::new(db.open());
        let (released, left) =
            leases_left_after_a_restart(&store, &["replica-1", "replica-2"], "replica-1").await;
        assert_eq!(released, 1);
        assert_eq!(left, ["replica-2"], "the other replica's lease stands");
    }

    /// Whether nothing is left due at `now`.
    fn lease_due_is_done(w: &Webhooks, now: Timestamp) -> bool {
        delivery::claim_due_page(&**w.store(), now, b"", 1)
            .unwrap()
            .entries
            .is_empty()
    }
}
