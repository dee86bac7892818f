//! The sampler: a background worker that fetches due sources, draws a
//! uniform sample within budget and records it. Due times, budgets and
//! health live in the store, so a restarted worker carries on from there.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use url::Url;

use super::extract::{feed_items, html_text, json_items, sitemap_urls, Item};
use super::fetch::FetchError;
use super::record::content_hash;
use super::reservoir::Reservoir;
use super::{blocking, Result, Sampling, SamplingError};
use crate::domain::{
    Health, SampleOrigin, Source, SourceId, SourceKind, SourceState, TenantId, TenantStatus,
};
use crate::readiness::Heartbeat;
use crate::store::{self, tenant_key, Batch, Tree};

/// What one visit to a source did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SourceRun {
    /// Not due, disabled, or its tenant is not active.
    Skipped,
    /// The hour's budget is spent.
    BudgetSpent,
    /// Fetched and sampled.
    Sampled {
        /// Items in the fetch.
        seen: u64,
        /// Samples recorded.
        sampled: usize,
        /// Items skipped as already sampled.
        duplicates: usize,
    },
    /// The fetch failed (or was refused).
    Failed {
        /// Why.
        reason: String,
    },
}

/// The metric labels of a failed visit: `refused` by the SSRF guard or
/// `failed`, and a short bounded reason.
fn fetch_outcome(error: &FetchError) -> (&'static str, &'static str) {
    use super::guard::Refusal;
    match error {
        FetchError::Refused(r) => (
            "refused",
            match r {
                Refusal::Scheme(_) => "scheme",
                Refusal::Credentials => "credentials",
                Refusal::NoHost => "no_host",
                Refusal::Address { .. } => "address",
                Refusal::Resolve { .. } => "resolve",
                Refusal::TooManyRedirects(_) => "too_many_redirects",
                Refusal::BadRedirect(_) => "bad_redirect",
            },
        ),
        FetchError::Gone(_) => ("failed", "gone"),
        FetchError::RateLimited { .. } => ("failed", "rate_limited"),
        FetchError::Status(_) => ("failed", "http_status"),
        FetchError::TooLarge(_) => ("failed", "too_large"),
        FetchError::Timeout(_) => ("failed", "timeout"),
        FetchError::Transport(_) => ("failed", "transport"),
    }
}

/// Child sitemaps read per visit to a sitemap index.
const MAX_CHILD_SITEMAPS: usize = 5;

fn later(now: Timestamp, d: Duration) -> Timestamp {
    now.checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

impl Sampling {
    /// Visits one source: fetch, sample within budget, record. With `force`
    /// it runs even if not due (targeted sampling of a whole tenant).
    #[tracing::instrument(skip_all, fields(tenant = %tenant_id, source = %source_id))]
    pub async fn run_source(
        &self,
        tenant_id: &TenantId,
        source_id: SourceId,
        force: bool,
    ) -> Result<SourceRun> {
        let key = tenant_key(tenant_id.as_str(), source_id.0.as_bytes());
        let tenant = self.tenant(tenant_id)?;
        let Some(source) = self.store.get::<Source>(&key)? else {
            // Deleted while a visit was in flight: drop the orphaned schedule.
            let mut batch = Batch::new();
            batch.delete::<SourceState>(key);
            store::commit_durably(&self.store, batch).await?;
            return Ok(SourceRun::Skipped);
        };
        let now = Timestamp::now();
        let mut state = self
            .store
            .get::<SourceState>(&key)?
            .unwrap_or_else(|| SourceState::new(tenant_id.clone(), source_id, now));
        if !force && state.next_due > now {
            return Ok(SourceRun::Skipped);
        }
        let interval = Duration::from_secs(source.interval_secs);
        if !source.enabled || tenant.status != TenantStatus::Active {
            state.next_due = later(now, interval);
            let mut batch = Batch::new();
            batch.put(&state)?;
            store::commit_durably(&self.store, batch).await?;
            return Ok(SourceRun::Skipped);
        }
        if now.as_second() - state.window_start.as_second() >= 3600 {
            state.window_start = now;
            state.taken_in_window = 0;
        }
        let budget = source.effective_budget(tenant.risk_tier);
        let room = budget.saturating_sub(state.taken_in_window) as usize;
        if room == 0 {
            state.next_due = later(state.window_start, Duration::from_secs(3600));
            let mut batch = Batch::new();
            batch.put(&state)?;
            store::commit_durably(&self.store, batch).await?;
            return Ok(SourceRun::BudgetSpent);
        }
        match self.fetch_items(&source, room).await {
            Err(e) => {
                let (outcome, reason) = fetch_outcome(&e);
                crate::metrics::source_fetch(outcome, reason);
                self.record_failure(&source, state, e).await
            }
            Ok(items) => {
                crate::metrics::source_fetch("fetched", "");
                let lock = self.lock(tenant_id).await;
                let seen = items.len() as u64;
                let store = self.store.clone();
                let t = tenant_id.as_str().to_string();
                // Skip what was sampled before, then draw uniformly.
                let fresh = blocking(move || {
                    let mut fresh = Vec::with_capacity(items.len());
                    let mut dup = 0usize;
                    for item in items {
                        let hash = content_hash(&item.text);
                        if store
                            .get_raw(Tree::Seen, &tenant_key(&t, hash.as_bytes()))?
                            .is_some()
                        {
                            dup += 1;
                        } else {
                            fresh.push(item);
                        }
                    }
                    Ok((fresh, dup))
                })
                .await?;
                let (fresh, seen_before) = fresh;
                let kept = self.with_rng(|rng| {
                    let mut r = Reservoir::new(room);
                    for item in fresh {
                        r.offer(item, rng);
                    }
                    r.into_items()
                });
                let now = Timestamp::now();
                state.taken_in_window += kept.len() as u32;
                state.items_seen += seen;
                state.samples_taken += kept.len() as u64;
                state.consecutive_failures = 0;
                state.health = Health::Healthy;
                state.last_error = None;
                state.last_fetch_at = Some(now);
                state.next_due = later(now, interval);
                let mut batch = Batch::new();
                batch.put(&state)?;
                let recorded = self
                    .record(
                        tenant_id,
                        SampleOrigin::Source { source: source_id },
                        kept,
                        true,
                        batch,
                    )
                    .await?;
                drop(lock);
                store::flush(&self.store)
                    .await
                    .context("flushing samples")?;
                tracing::debug!(seen, sampled = recorded.samples.len(), "source sampled");
                Ok(SourceRun::Sampled {
                    seen,
                    sampled: recorded.samples.len(),
                    duplicates: recorded.duplicates + seen_before,
                })
            }
        }
    }

    async fn record_failure(
        &self,
        source: &Source,
        mut state: SourceState,
        error: FetchError,
    ) -> Result<SourceRun> {
        let now = Timestamp::now();
        let reason = error.to_string();
        let refused = matches!(error, FetchError::Refused(_));
        state.consecutive_failures += 1;
        state.last_error = Some(reason.clone());
        state.last_fetch_at = Some(now);
        let exp = state.consecutive_failures.saturating_sub(1).min(16);
        let mut backoff = Duration::from_secs(source.interval_secs.max(1))
            .saturating_mul(1u32 << exp)
            .min(Duration::from_secs(self.settings.max_backoff_secs.max(1)));
        if let FetchError::RateLimited {
            retry_after: Some(wait),
            ..
        } = &error
        {
            backoff = backoff.max(*wait);
        }
        state.next_due = later(now, backoff);
        let t = source.tenant.as_str();
        let mut batch = Batch::new();
        // A refused URL will not fix itself by retrying: unhealthy at once.
        let unhealthy = refused || state.consecutive_failures >= self.settings.unhealthy_after;
        if unhealthy && state.health != Health::Unhealthy {
            state.health = Health::Unhealthy;
            batch.event(
                "source.unhealthy",
                Some(t),
                serde_json::json!({"source": source.id, "url": source.url, "reason": reason}),
            )?;
        }
        batch.put(&state)?;
        batch.event(
            if refused {
                "fetch.refused"
            } else {
                "fetch.failed"
            },
            Some(t),
            serde_json::json!({
                "source": source.id,
                "url": source.url,
                "reason": reason,
                "failures": state.consecutive_failures,
                "next_due": state.next_due,
            }),
        )?;
        store::commit_durably(&self.store, batch).await?;
        tracing::info!(source = %source.id, %reason, "fetch failed");
        Ok(SourceRun::Failed { reason })
    }

    /// Items of one fetch of `source`; a sitemap yields up to `room` pages
    /// drawn uniformly from its URLs.
    async fn fetch_items(&self, source: &Source, room: usize) -> Result<Vec<Item>, FetchError> {
        let doc = self.fetcher.get(&source.url).await?;
        let bad = |e: String| FetchError::Transport(format!("cannot read the document: {e}"));
        // Item links are kept absolute, resolved against the feed's URL.
        let absolute = |mut items: Vec<Item>| {
            for item in &mut items {
                if let Some(u) = item.url.as_deref().and_then(|u| doc.url.join(u).ok()) {
                    item.url = Some(u.to_string());
                }
            }
            items
        };
        match &source.kind {
            SourceKind::JsonFeed { pointers } => {
                json_items(&doc.body, pointers).map(absolute).map_err(bad)
            }
            SourceKind::Rss | SourceKind::Atom => feed_items(&doc.body).map(absolute).map_err(bad),
            SourceKind::Html => Ok(vec![Item {
                id: None,
                url: Some(doc.url.to_string()),
                text: html_text(&doc.body),
            }]),
            SourceKind::Sitemap => {
                let (is_index, locs) = sitemap_urls(&doc.body).map_err(bad)?;
                let mut urls: Vec<Url> = locs.iter().filter_map(|u| doc.url.join(u).ok()).collect();
                if is_index {
                    // One level of nesting: a few child sitemaps at random.
                    let children = self.with_rng(|rng| {
                        let mut r = Reservoir::new(MAX_CHILD_SITEMAPS);
                        for u in urls.drain(..) {
                            r.offer(u, rng);
                        }
                        r.into_items()
                    });
                    for child in children {
                        let doc = self.fetcher.get(&child).await?;
                        let (_, locs) = sitemap_urls(&doc.body).map_err(bad)?;
                        urls.extend(locs.iter().filter_map(|u| doc.url.join(u).ok()));
                    }
                }
                let take = room.min(self.settings.max_sitemap_pages);
                let picked = self.with_rng(|rng| {
                    let mut r = Reservoir::new(take);
                    for u in urls {
                        r.offer(u, rng);
                    }
                    r.into_items()
                });
                let pages =
                    futures_util::future::join_all(picked.iter().map(|u| self.fetcher.get(u)))
                        .await;
                let mut items = Vec::new();
                let mut first_error = None;
                for page in pages {
                    match page {
                        Ok(p) => items.push(Item {
                            id: None,
                            url: Some(p.url.to_string()),
                            text: html_text(&p.body),
                        }),
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                match (items.is_empty(), first_error) {
                    (true, Some(e)) => Err(e),
                    _ => Ok(items),
                }
            }
        }
    }

    /// Sources due now, from the store.
    async fn due_sources(&self) -> Result<Vec<SourceState>> {
        let store = self.store.clone();
        blocking(move || {
            let now = Timestamp::now();
            let all = store.scan::<SourceState>(b"", usize::MAX, false)?;
            Ok(all.into_iter().filter(|s| s.next_due <= now).collect())
        })
        .await
    }
}

/// Runs the sampler until `stop` turns true, then lets in-flight visits
/// finish (bounded) and returns.
pub async fn run(sampling: Arc<Sampling>, stop: watch::Receiver<bool>) {
    run_with_heartbeat(sampling, stop, Heartbeat::detached()).await
}

/// Like `run`, beating `heartbeat` once per loop so `/readyz` can tell a
/// stuck sampler from a quiet one.
pub async fn run_with_heartbeat(
    sampling: Arc<Sampling>,
    mut stop: watch::Receiver<bool>,
    heartbeat: Heartbeat,
) {
    let tick = Duration::from_millis(sampling.settings.tick_ms);
    let permits = Arc::new(Semaphore::new(sampling.settings.max_concurrent_fetches));
    let in_flight: Arc<Mutex<HashSet<SourceId>>> = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = JoinSet::new();
    tracing::info!(tick_ms = tick.as_millis() as u64, "sampler started");
    loop {
        heartbeat.beat();
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        let due = match sampling.due_sources().await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot read due sources");
                continue;
            }
        };
        for state in due {
            let fresh = match in_flight.lock() {
                Ok(mut set) => set.insert(state.source),
                Err(p) => p.into_inner().insert(state.source),
            };
            if !fresh {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            heartbeat.beat();
            let (s, flight) = (sampling.clone(), in_flight.clone());
            tasks.spawn(async move {
                match s.run_source(&state.tenant, state.source, false).await {
                    Ok(_) => {}
                    Err(SamplingError::NotFound(_)) => {}
                    Err(e) => tracing::error!(error = ?e, source = %state.source, "sampling a source failed"),
                }
                if let Ok(mut set) = flight.lock() {
                    set.remove(&state.source);
                }
                drop(permit);
            });
        }
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    tracing::info!("sampler stopped");
}
