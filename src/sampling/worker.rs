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
use crate::store::{self, tenants, Batch, Version};

/// What one visit to a source did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

/// A visit's claim on a source: the state record as the claim wrote it.
/// Whatever the visit commits expects it unchanged, so a visit whose claim
/// lapsed and was taken over records nothing.
#[derive(Debug)]
struct Claim {
    version: Version,
}

impl Claim {
    /// Adds the precondition that the claim still holds.
    fn hold(&self, batch: &mut Batch) {
        batch.expect_unchanged(&self.version);
    }

    /// Commits a batch holding the claim; a lost claim is logged, not an
    /// error (the replica that took the source over records the visit).
    async fn commit(&self, store: &store::SharedStore, batch: Batch) -> Result<()> {
        match store::commit_durably(store, batch).await {
            Ok(_) => Ok(()),
            Err(e) if store::is_conflict(&e) => {
                tracing::info!("the claim on the source was lost; the visit is dropped");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
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
        let tenant = self.tenant(tenant_id)?;
        let Some(source) = self.store.source(tenant_id, source_id)? else {
            // Deleted while a visit was in flight: drop the orphaned schedule.
            let mut batch = Batch::new();
            tenants::delete_source_state(&mut batch, tenant_id, source_id);
            store::commit_durably(&self.store, batch).await?;
            return Ok(SourceRun::Skipped);
        };
        let now = Timestamp::now();
        let Some((mut state, claim)) = self.claim(tenant_id, source_id, force, now).await? else {
            return Ok(SourceRun::Skipped);
        };
        let interval = Duration::from_secs(source.interval_secs);
        if !source.enabled || tenant.status != TenantStatus::Active {
            state.next_due = later(now, interval);
            let mut batch = Batch::new();
            claim.hold(&mut batch);
            batch.put(&state)?;
            claim.commit(&self.store, batch).await?;
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
            claim.hold(&mut batch);
            batch.put(&state)?;
            claim.commit(&self.store, batch).await?;
            return Ok(SourceRun::BudgetSpent);
        }
        match self.fetch_items(&source, room).await {
            Err(e) => {
                let (outcome, reason) = fetch_outcome(&e);
                crate::metrics::source_fetch(outcome, reason);
                self.record_failure(&source, state, &claim, e).await
            }
            Ok(items) => {
                crate::metrics::source_fetch("fetched", "");
                let lock = self.lock(tenant_id).await;
                let seen = items.len() as u64;
                let store = self.store.clone();
                let t = tenant_id.clone();
                // Skip what was sampled before, then draw uniformly.
                let fresh = blocking(move || {
                    let mut fresh = Vec::with_capacity(items.len());
                    let mut dup = 0usize;
                    for item in items {
                        let hash = content_hash(&item.text);
                        if store.is_seen(&t, &hash)? {
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
                claim.hold(&mut batch);
                batch.put(&state)?;
                let recorded = match self
                    .record(
                        tenant_id,
                        SampleOrigin::Source { source: source_id },
                        kept,
                        true,
                        batch,
                    )
                    .await
                {
                    Ok(r) => r,
                    Err(SamplingError::Internal(e)) if store::is_conflict(&e) => {
                        // The claim lapsed and another replica took the
                        // source, or an operator changed it: nothing of this
                        // visit is recorded, so nothing is counted twice.
                        tracing::info!("the claim on the source was lost; the visit is dropped");
                        return Ok(SourceRun::Skipped);
                    }
                    Err(e) => return Err(e),
                };
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

    /// Claims a source for this replica's visit: if it is due (or `force`)
    /// and no other visit's claim is running, marks it claimed by this
    /// replica and pushes its next due time out by the claim time, by
    /// compare-and-set on the bytes read. `None`: not due, or claimed by
    /// another visit first.
    async fn claim(
        &self,
        tenant_id: &TenantId,
        source_id: SourceId,
        force: bool,
        now: Timestamp,
    ) -> Result<Option<(SourceState, Claim)>> {
        let (state, version) = self.store.source_state_versioned(tenant_id, source_id)?;
        let state = state.unwrap_or_else(|| SourceState::new(tenant_id.clone(), source_id, now));
        if state.next_due > now && (!force || state.claimed_by.is_some()) {
            return Ok(None);
        }
        let mut claimed = state;
        claimed.claimed_by = Some(self.replica.clone());
        claimed.next_due = later(now, self.claim_for);
        let claimed_version = Version::of(&claimed)?;
        let mut batch = Batch::new();
        batch.expect_unchanged(&version);
        batch.put(&claimed)?;
        match store::commit_durably(&self.store, batch).await {
            Ok(_) => {}
            Err(e) if store::is_conflict(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        claimed.claimed_by = None;
        Ok(Some((
            claimed,
            Claim {
                version: claimed_version,
            },
        )))
    }

    async fn record_failure(
        &self,
        source: &Source,
        mut state: SourceState,
        claim: &Claim,
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
        claim.hold(&mut batch);
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
        claim.commit(&self.store, batch).await?;
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
            let all = store.source_states()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SamplingSettings;
    use crate::domain::RiskTier;
    use crate::policy::PolicyHandle;
    use crate::sampling::guard::SystemResolver;
    use crate::sampling::registry::{NewSource, NewTenant};
    use crate::store::{SharedStore, SledStore};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback site answering every GET with a page naming its path,
    /// slowly, counting the requests.
    async fn slow_site() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let body = format!(
                        "<html><body><p>the page at {path} tells of a picnic by the lake</p></body></html>"
                    );
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        (base, hits)
    }

    fn sampling(store: &SharedStore, policy: &Arc<PolicyHandle>, replica: &str) -> Arc<Sampling> {
        let settings = SamplingSettings {
            allow_cidrs: vec!["127.0.0.0/8".into()],
            per_host_min_interval_ms: 0,
            ..SamplingSettings::default()
        };
        Arc::new(
            Sampling::new(
                store.clone(),
                policy.clone(),
                settings,
                Arc::new(SystemResolver),
            )
            .unwrap()
            .with_replica(replica, Duration::from_secs(15)),
        )
    }

    /// Two samplers with their own replica ids on one store in a scratch
    /// directory (kept alive by the first element).
    fn two_replicas() -> (tempfile::TempDir, SharedStore, Arc<Sampling>, Arc<Sampling>) {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let policy = Arc::new(PolicyHandle::load(&crate::policy::shipped_dir()).unwrap());
        let a = sampling(&store, &policy, "replica-a");
        let b = sampling(&store, &policy, "replica-b");
        (dir, store, a, b)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_samplers_on_one_store_visit_each_due_source_once_and_count_it_once() {
        let (_dir, store, a, b) = two_replicas();
        let (base, hits) = slow_site().await;
        let tenant = TenantId::try_from("parlor").unwrap();
        a.create_tenant(NewTenant {
            id: tenant.clone(),
            name: "Parlor".into(),
            contacts: Vec::new(),
            risk_tier: RiskTier::Standard,
            status: TenantStatus::Active,
            intake_budget_per_hour: 100,
        })
        .await
        .unwrap();
        let mut sources = Vec::new();
        for n in 0..4 {
            let view = a
                .create_source(
                    &tenant,
                    NewSource {
                        kind: SourceKind::Html,
                        url: Url::parse(&format!("{base}/page{n}")).unwrap(),
                        budget_per_hour: 10,
                        interval_secs: 3600,
                        enabled: true,
                    },
                )
                .await
                .unwrap();
            sources.push(view.source.id);
        }

        let mut visits = JoinSet::new();
        for id in &sources {
            for s in [a.clone(), b.clone()] {
                let (tenant, id) = (tenant.clone(), *id);
                visits.spawn(async move { s.run_source(&tenant, id, false).await.unwrap() });
            }
        }
        let mut sampled = 0;
        while let Some(run) = visits.join_next().await {
            match run.unwrap() {
                SourceRun::Sampled { sampled: n, .. } => sampled += n,
                SourceRun::Skipped => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(hits.load(Ordering::SeqCst), 4, "each source fetched once");
        assert_eq!(sampled, 4);
        let parlor = TenantId::try_from("parlor").unwrap();
        let samples = store.newest_samples(&parlor, usize::MAX).unwrap();
        assert_eq!(samples.len(), 4);
        let tallied: u64 = store
            .tallies(&parlor)
            .unwrap()
            .iter()
            .map(|t| t.sampled)
            .sum();
        assert_eq!(tallied, 4, "the prevalence tally counts each visit once");
        for id in &sources {
            let state = store.source_state(&parlor, *id).unwrap().unwrap();
            assert_eq!(
                state.claimed_by, None,
                "the claim is let go after the visit"
            );
            assert_eq!(state.samples_taken, 1);
        }
    }

    #[tokio::test]
    async fn a_visit_whose_claim_lapsed_and_was_taken_over_records_nothing() {
        let (_dir, store, a, b) = two_replicas();
        let tenant = TenantId::try_from("parlor").unwrap();
        let id = SourceId::new();
        let now = Timestamp::now();
        store
            .commit({
                let mut batch = Batch::new();
                batch
                    .put(&SourceState::new(tenant.clone(), id, now))
                    .unwrap();
                batch
            })
            .unwrap();
        let (_, claim_a) = a.claim(&tenant, id, false, now).await.unwrap().unwrap();
        assert!(
            b.claim(&tenant, id, false, now).await.unwrap().is_none(),
            "a claimed source is not due for another replica"
        );
        assert!(
            b.claim(&tenant, id, true, now).await.unwrap().is_none(),
            "not even for a forced visit"
        );
        // a stalls past its claim; b takes the source over.
        let later = now + SignedDuration::from_secs(3600);
        let (_, claim_b) = b.claim(&tenant, id, false, later).await.unwrap().unwrap();
        let mut stale = store.source_state(&tenant, id).unwrap().unwrap();
        assert_eq!(stale.claimed_by.as_deref(), Some("replica-b"));
        stale.claimed_by = None;
        stale.samples_taken = 99;
        let mut batch = Batch::new();
        claim_a.hold(&mut batch);
        batch.put(&stale).unwrap();
        claim_a.commit(&store, batch).await.unwrap();
        let now_state = store.source_state(&tenant, id).unwrap().unwrap();
        assert_eq!(
            now_state.samples_taken, 0,
            "a's late visit was not recorded"
        );
        let mut batch = Batch::new();
        claim_b.hold(&mut batch);
        batch.put(&stale).unwrap();
        claim_b.commit(&store, batch).await.unwrap();
        assert_eq!(
            store
                .source_state(&tenant, id)
                .unwrap()
                .unwrap()
                .samples_taken,
            99
        );
    }
}
