//! Recording samples: de-duplication, scoring, findings, prevalence tallies
//! and threshold events, all in one store batch. Also push intake and
//! targeted sampling, which end here.

use std::collections::{BTreeMap, HashSet};

use anyhow::Context;
use jiff::Timestamp;
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use url::Url;

use super::extract::{html_text, Item};
use super::fetch::FetchError;
use super::{blocking, Result, Sampling, SamplingError};
use crate::domain::{
    CrossingReason, EvidenceSpan, Finding, FlaggedCategory, IntakeCounter, Prevalence, Sample,
    SampleId, SampleOrigin, SampleOutcome, SampleVerdict, Tally, Tenant, TenantId, TenantStatus,
    ThresholdAlert,
};
use crate::policy::{Engine, Verdict};
use crate::store::records::Seen;
use crate::store::samples;
use crate::store::{self, Batch, SharedStore, Store};

/// How long a recording goes on being made again after other writers
/// changed what it read, before the caller is told to try later. A time,
/// not a count of tries: replicas pushing for one tenant at once can lose
/// many short races in a row, and what the client sees is the time.
const RECORD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// A random pause before try number `tries` (from 1): up to 1, 2, 4 …
/// 32 ms, so writers that keep colliding spread out.
fn backoff(tries: u32) -> std::time::Duration {
    let ceiling = 1u64 << tries.min(5);
    std::time::Duration::from_millis(rand::thread_rng().gen_range(1..=ceiling))
}

/// The answer when [`RECORD_PATIENCE`] ran out because other replicas kept
/// recording for the same tenant: retryable, not a failure of aupd.
fn busy() -> SamplingError {
    SamplingError::Busy(
        "other replicas kept recording for this tenant at the same moment; try again".into(),
    )
}

/// Whether `e` is a store conflict on one of the records a recording reads
/// and writes back itself (tallies, content hashes, thresholds).
fn own_conflict(e: &anyhow::Error) -> bool {
    e.downcast_ref::<store::StoreError>()
        .is_some_and(samples::is_recording_conflict)
}

/// Whether `e` is a store conflict: a precondition of the commit no longer
/// held, nothing was written, and the operation can be made again.
pub(super) fn is_conflict(e: &SamplingError) -> bool {
    matches!(e, SamplingError::Internal(e) if crate::store::is_conflict(e))
}

/// What one recording wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recorded {
    /// Samples taken.
    pub samples: Vec<Sample>,
    /// Items skipped because their content was sampled before.
    pub duplicates: usize,
    /// Thresholds raised.
    pub crossings: Vec<ThresholdAlert>,
}

/// A category's prevalence over the window, next to its case rule.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CategoryPrevalence {
    /// Category.
    pub category: String,
    /// Figures.
    #[serde(flatten)]
    pub prevalence: Prevalence,
    /// Rule: the interval's lower bound must exceed this.
    pub tolerance: f64,
    /// Rule: with at least this many samples.
    pub min_samples: u64,
    /// Rule: or one item at least this score.
    pub critical_score: Option<f32>,
    /// Whether the rule has been crossed and not cleared.
    pub threshold_crossed: bool,
}

/// SHA-256 (hex) of the text with whitespace folded, so reformatting alone
/// does not make a new item.
pub fn content_hash(text: &str) -> String {
    let mut h = Sha256::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            h.update(b" ");
        }
        h.update(word.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The start of a text with its whitespace folded to single spaces, bounded
/// to `chars` characters, and where each of its words came from.
struct Excerpt {
    text: String,
    /// Per word: its byte offset in the original, in the excerpt, and its
    /// length as kept (a word cut by the bound keeps its start only).
    words: Vec<(usize, usize, usize)>,
}

impl Excerpt {
    fn new(text: &str, chars: usize) -> Self {
        let mut out = String::new();
        let mut words = Vec::new();
        let mut left = chars;
        let mut cut = false;
        for word in text.split_whitespace() {
            let orig = word.as_ptr() as usize - text.as_ptr() as usize;
            if !out.is_empty() {
                if left == 0 {
                    cut = true;
                    break;
                }
                out.push(' ');
                left -= 1;
            }
            let n = word.chars().count();
            let kept = if n > left {
                cut = true;
                word.char_indices().nth(left).map_or(word.len(), |(i, _)| i)
            } else {
                word.len()
            };
            words.push((orig, out.len(), kept));
            out.push_str(&word[..kept]);
            left -= word[..kept].chars().count();
            if cut {
                break;
            }
        }
        if cut {
            out.push('…');
        }
        Excerpt { text: out, words }
    }

    /// The excerpt's offset for an offset of the original that starts or
    /// ends a word (evidence spans are whole words); `None` beyond the kept
    /// text.
    fn offset(&self, original: usize, is_end: bool) -> Option<usize> {
        self.words.iter().find_map(|&(o, e, len)| {
            let inside = if is_end {
                original > o && original <= o + len
            } else {
                original >= o && original < o + len
            };
            inside.then(|| e + (original - o))
        })
    }
}

fn to_sample_verdict(v: Verdict, excerpt: &Excerpt) -> SampleVerdict {
    SampleVerdict {
        policy_version: v.policy_version.to_string(),
        scores: v
            .scores
            .into_iter()
            .map(|(k, s)| (k.to_string(), s))
            .collect(),
        flagged: v
            .flagged
            .into_iter()
            .map(|f| FlaggedCategory {
                category: f.category.to_string(),
                severity: f.severity,
                score: f.score,
            })
            .collect(),
        evidence: v
            .evidence
            .into_iter()
            .map(|e| {
                let (start, end) =
                    match (excerpt.offset(e.start, false), excerpt.offset(e.end, true)) {
                        (Some(s), Some(x)) if s < x => (Some(s), Some(x)),
                        _ => (None, None),
                    };
                EvidenceSpan {
                    category: e.category.to_string(),
                    detector: e.detector.to_string(),
                    text: e.text,
                    start,
                    end,
                }
            })
            .collect(),
    }
}

fn hour_of(t: Timestamp) -> u64 {
    (t.as_second().max(0) as u64) / 3600
}

/// Random samples and flags of `tenant` in the window ending at `now`.
fn window_tallies(
    store: &dyn Store,
    tenant: &TenantId,
    now: Timestamp,
    window_secs: u64,
) -> Result<Vec<Tally>> {
    let end = hour_of(now) + 1;
    let start = end.saturating_sub(window_secs / 3600);
    Ok(store.tallies_between(tenant, start, end)?)
}

fn sum(tallies: &[Tally]) -> (u64, BTreeMap<String, u64>) {
    let mut n = 0;
    let mut x: BTreeMap<String, u64> = BTreeMap::new();
    for t in tallies {
        n += t.sampled;
        for (c, k) in &t.flagged {
            *x.entry(c.clone()).or_default() += k;
        }
    }
    (n, x)
}

/// Scores `items` and writes samples, findings, tallies and threshold
/// events into `batch`, then commits it. The caller holds the tenant lock
/// and flushes afterwards.
#[allow(clippy::too_many_arguments)]
fn record_blocking(
    store: &dyn Store,
    engine: &Engine,
    tenant: &TenantId,
    origin: SampleOrigin,
    items: Vec<Item>,
    dedup: bool,
    mut batch: Batch,
    excerpt_chars: usize,
    window_secs: u64,
) -> Result<Recorded> {
    let now = Timestamp::now();
    let t = tenant.as_str();
    let mut out = Recorded::default();
    let mut hashes = HashSet::new();
    let mut max_score: BTreeMap<String, f32> = BTreeMap::new();
    let mut batch_findings: BTreeMap<String, Vec<SampleId>> = BTreeMap::new();
    for item in items {
        let hash = content_hash(&item.text);
        if dedup && (!hashes.insert(hash.clone()) || store.is_seen(tenant, &hash)?) {
            out.duplicates += 1;
            continue;
        }
        let scoring = std::time::Instant::now();
        let full = engine.score(&item.text);
        crate::metrics::scored("sampling", &full, scoring.elapsed());
        let kept = Excerpt::new(&item.text, excerpt_chars);
        let verdict = to_sample_verdict(full, &kept);
        let sample = Sample {
            id: SampleId::new(),
            tenant: tenant.clone(),
            origin,
            url: item.url,
            item_id: item.id,
            fetched_at: now,
            content_hash: hash.clone(),
            excerpt: kept.text,
            outcome: SampleOutcome::Scored {
                verdict: verdict.clone(),
            },
        };
        for flag in &verdict.flagged {
            let finding = Finding {
                tenant: tenant.clone(),
                category: flag.category.clone(),
                severity: flag.severity,
                score: flag.score,
                sample: sample.id,
                origin,
                url: sample.url.clone(),
                excerpt: sample.excerpt.clone(),
                evidence: verdict
                    .evidence
                    .iter()
                    .filter(|e| e.category == flag.category)
                    .cloned()
                    .collect(),
                policy_version: verdict.policy_version.clone(),
                found_at: now,
            };
            batch.put(&finding)?;
            let m = max_score.entry(flag.category.clone()).or_insert(0.0);
            *m = m.max(flag.score);
            batch_findings
                .entry(flag.category.clone())
                .or_default()
                .push(sample.id);
        }
        batch.put(&sample)?;
        if dedup {
            // Another replica may record the same content for this tenant
            // at the same moment: only one of the two commits may claim it.
            batch.expect_unchanged(&samples::seen_absent(tenant, &hash));
        }
        batch.put(&Seen {
            tenant: t.to_string(),
            hash,
            sample: sample.id,
        })?;
        out.samples.push(sample);
    }

    let mut tallies = Vec::new();
    if origin.is_random() && !out.samples.is_empty() {
        let hour = hour_of(now);
        let (tally, tally_version) = store.tally_versioned(tenant, hour)?;
        // The hour's tally is read, added to and written back: the commit
        // holds only if no other writer changed it meanwhile.
        batch.expect_unchanged(&tally_version);
        let mut tally = tally.unwrap_or(Tally {
            tenant: tenant.clone(),
            hour,
            sampled: 0,
            flagged: BTreeMap::new(),
        });
        tally.sampled += out.samples.len() as u64;
        for (category, ids) in &batch_findings {
            *tally.flagged.entry(category.clone()).or_default() += ids.len() as u64;
        }
        batch.put(&tally)?;
        tallies = window_tallies(store, tenant, now, window_secs)?;
        tallies.retain(|x| x.hour != hour);
        tallies.push(tally);
    }
    let (n, x) = sum(&tallies);

    // A crossing needs a new flag in its category, so only those are checked.
    for (category, ids) in &batch_findings {
        let Some(rule) = engine
            .policy()
            .categories
            .iter()
            .find(|c| &c.id == category)
            .map(|c| c.case.clone())
        else {
            continue;
        };
        if store.threshold_raised(tenant, category)? {
            continue;
        }
        // A threshold is raised once: a second writer finds it raised.
        batch.expect_unchanged(&samples::alert_absent(tenant, category));
        let prevalence = Prevalence::wilson(x.get(category).copied().unwrap_or(0), n);
        let critical = rule
            .critical_score
            .is_some_and(|c| max_score.get(category).is_some_and(|&s| s >= c));
        // A rule that rests on reviewers' labels is not crossed by the
        // model's count: the review room raises it when labels show it
        // (`review::raise_label_crossings`). A critical item still opens
        // a case at once.
        let reason = if critical {
            CrossingReason::CriticalItem
        } else if rule.estimate.needs_labels() {
            continue;
        } else if n >= rule.min_samples && prevalence.lower > rule.tolerance {
            CrossingReason::Prevalence
        } else {
            continue;
        };
        let mut findings: Vec<SampleId> = ids.iter().rev().copied().collect();
        for f in store.findings(tenant, category, 50)? {
            if findings.len() >= 50 {
                break;
            }
            if !findings.contains(&f.sample) {
                findings.push(f.sample);
            }
        }
        let alert = ThresholdAlert {
            tenant: tenant.clone(),
            category: category.clone(),
            reason,
            raised_at: now,
            prevalence,
            findings,
            labels: None,
        };
        batch.put(&alert)?;
        batch.event(
            crate::domain::DomainEvent::THRESHOLD_CROSSED,
            Some(t),
            serde_json::json!({
                "tenant": t,
                "category": category,
                "reason": reason,
                "sampled": prevalence.sampled,
                "flagged": prevalence.flagged,
                "rate": prevalence.rate,
                "lower": prevalence.lower,
                "upper": prevalence.upper,
                "tolerance": rule.tolerance,
                "min_samples": rule.min_samples,
                "critical_score": rule.critical_score,
                "policy_version": engine.version(),
                "findings": alert.findings,
            }),
        )?;
        out.crossings.push(alert);
    }
    if !out.samples.is_empty() {
        batch.event(
            "samples.recorded",
            Some(t),
            serde_json::json!({
                "origin": origin,
                "samples": out.samples.iter().map(|s| s.id).collect::<Vec<_>>(),
                "duplicates": out.duplicates,
                "policy_version": engine.version(),
            }),
        )?;
    }
    store.commit(batch)?;
    let origin_label = match origin {
        SampleOrigin::Source { .. } => "fetched",
        SampleOrigin::Intake => "pushed",
        SampleOrigin::Targeted => "targeted",
    };
    crate::metrics::samples_recorded(origin_label, out.samples.len());
    Ok(out)
}

/// Outcome of one pushed batch.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IntakeOutcome {
    /// Items received in this batch.
    pub received: usize,
    /// Items kept as samples.
    pub sampled: usize,
    /// Kept items skipped as already sampled.
    pub duplicates: usize,
    /// Of the samples, flagged.
    pub flagged: usize,
    /// Ids of the samples.
    pub samples: Vec<SampleId>,
    /// Items received from this tenant, ever.
    pub seen_total: u64,
    /// Items kept from this tenant, ever.
    pub kept_total: u64,
}

/// What targeted sampling found at one URL.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TargetedResult {
    /// Fetched and scored.
    Sampled {
        /// URL asked for.
        url: String,
        /// The sample.
        sample: Box<Sample>,
    },
    /// 404 or 410, recorded as gone.
    Gone {
        /// URL asked for.
        url: String,
        /// HTTP status.
        http_status: u16,
        /// The recorded sample.
        sample: SampleId,
    },
    /// The SSRF guard refused it.
    Refused {
        /// URL asked for.
        url: String,
        /// Why.
        reason: String,
    },
    /// The fetch failed.
    Failed {
        /// URL asked for.
        url: String,
        /// Why.
        reason: String,
    },
}

impl Sampling {
    /// Scores and records `items` for `tenant` (caller holds the tenant
    /// lock); `batch` carries the caller's own writes into the same commit.
    ///
    /// The tenant lock is per process. Several replicas sharing a store can
    /// still record for one tenant at the same moment, so the commit holds
    /// preconditions on what it read (the hour's tally, the content hashes,
    /// the raised thresholds) and is made again from fresh reads when
    /// another writer got there first. A conflict on the caller's own
    /// preconditions in `batch` is the caller's to handle:
    /// [`is_conflict`] tells it apart.
    pub(super) async fn record(
        &self,
        tenant: &TenantId,
        origin: SampleOrigin,
        items: Vec<Item>,
        dedup: bool,
        batch: Batch,
    ) -> Result<Recorded> {
        let store = self.store.clone();
        let engine = self.policy.current();
        let tenant = tenant.clone();
        let (excerpt_chars, window) = (self.settings.excerpt_chars, self.settings.window_secs);
        blocking(move || {
            let (mut tries, started) = (0, std::time::Instant::now());
            loop {
                tries += 1;
                match record_blocking(
                    store.as_ref(),
                    &engine,
                    &tenant,
                    origin,
                    items.clone(),
                    dedup,
                    batch.clone(),
                    excerpt_chars,
                    window,
                ) {
                    Err(SamplingError::Internal(e)) if own_conflict(&e) => {
                        if started.elapsed() >= RECORD_PATIENCE {
                            return Err(busy());
                        }
                        tracing::debug!(tenant = %tenant, "another writer recorded for this tenant first; recording again");
                        std::thread::sleep(backoff(tries));
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    pub(super) fn tenant(&self, id: &TenantId) -> Result<Tenant> {
        self.store
            .tenant(id)?
            .ok_or(SamplingError::NotFound("tenant"))
    }

    /// Counts a pushed batch and keeps a Bernoulli sample of it within the
    /// tenant's hourly intake budget; the answer comes once it is on disk.
    #[tracing::instrument(skip_all, fields(tenant = %tenant_id, items = items.len()))]
    pub async fn intake(&self, tenant_id: &TenantId, items: Vec<Item>) -> Result<IntakeOutcome> {
        let tenant = self.tenant(tenant_id)?;
        let lock = self.lock(tenant_id).await;
        let received = items.len();
        let (mut tries, started) = (0, std::time::Instant::now());
        // The counter is read, added to and written back with a
        // precondition, so replicas taking the same tenant's pushes at once
        // neither lose a count nor overrun the budget: the loser counts
        // again from what the winner wrote.
        let (counter, recorded) = loop {
            tries += 1;
            let now = Timestamp::now();
            let (counter, version) = self.store.intake_counter_versioned(tenant_id)?;
            let mut counter = counter.unwrap_or(IntakeCounter {
                tenant: tenant_id.clone(),
                window_start: now,
                kept_in_window: 0,
                seen_total: 0,
                kept_total: 0,
            });
            if now.as_second() - counter.window_start.as_second() >= 3600 {
                counter.window_start = now;
                counter.kept_in_window = 0;
            }
            let budget = tenant.risk_tier.scale(tenant.intake_budget_per_hour);
            let mut room = budget.saturating_sub(counter.kept_in_window) as usize;
            if tenant.status != TenantStatus::Active {
                room = 0;
            }
            let rate = self.settings.intake_sample_rate;
            let kept: Vec<Item> = self.with_rng(|rng| {
                items
                    .iter()
                    .filter(|_| {
                        if room > 0 && rng.gen_bool(rate) {
                            room -= 1;
                            true
                        } else {
                            false
                        }
                    })
                    .cloned()
                    .collect()
            });
            counter.seen_total += received as u64;
            counter.kept_in_window += kept.len() as u32;
            counter.kept_total += kept.len() as u64;
            let mut batch = Batch::new();
            batch.expect_unchanged(&version);
            batch.put(&counter)?;
            batch.event(
                "intake.received",
                Some(tenant_id.as_str()),
                serde_json::json!({"received": received, "kept": kept.len()}),
            )?;
            match self
                .record(tenant_id, SampleOrigin::Intake, kept, true, batch)
                .await
            {
                Ok(recorded) => break (counter, recorded),
                Err(e) if is_conflict(&e) => {
                    if started.elapsed() >= RECORD_PATIENCE {
                        return Err(busy());
                    }
                    tokio::time::sleep(backoff(tries)).await;
                }
                Err(e) => return Err(e),
            }
        };
        drop(lock);
        store::flush(&self.store).await.context("flushing intake")?;
        Ok(IntakeOutcome {
            received,
            sampled: recorded.samples.len(),
            duplicates: recorded.duplicates,
            flagged: recorded
                .samples
                .iter()
                .filter(|s| s.verdict().is_some_and(|v| !v.flagged.is_empty()))
                .count(),
            samples: recorded.samples.iter().map(|s| s.id).collect(),
            seen_total: counter.seen_total,
            kept_total: counter.kept_total,
        })
    }

    /// Fetches `urls` now through the guard and records what it finds; a
    /// 404/410 is recorded as gone. Not uniform, so not counted in prevalence.
    #[tracing::instrument(skip_all, fields(tenant = %tenant_id, urls = urls.len()))]
    pub async fn targeted(
        &self,
        tenant_id: &TenantId,
        urls: Vec<Url>,
    ) -> Result<Vec<TargetedResult>> {
        self.tenant(tenant_id)?;
        let fetches = urls.iter().map(|u| self.fetcher.get(u));
        let fetched = futures_util::future::join_all(fetches).await;
        let lock = self.lock(tenant_id).await;
        let mut results = Vec::new();
        let mut batch = Batch::new();
        let mut items = Vec::new();
        let mut positions = Vec::new();
        let t = tenant_id.as_str();
        for (url, outcome) in urls.iter().zip(fetched) {
            let u = url.to_string();
            match outcome {
                Ok(doc) => {
                    positions.push(results.len());
                    results.push(None);
                    items.push(Item {
                        id: None,
                        url: Some(u),
                        text: html_text(&doc.body),
                    });
                }
                Err(FetchError::Gone(status)) => {
                    let sample = Sample {
                        id: SampleId::new(),
                        tenant: tenant_id.clone(),
                        origin: SampleOrigin::Targeted,
                        url: Some(u.clone()),
                        item_id: None,
                        fetched_at: Timestamp::now(),
                        content_hash: String::new(),
                        excerpt: String::new(),
                        outcome: SampleOutcome::Gone {
                            http_status: status,
                        },
                    };
                    batch.put(&sample)?;
                    batch.event(
                        "sample.gone",
                        Some(t),
                        serde_json::json!({"url": u, "http_status": status, "sample": sample.id}),
                    )?;
                    results.push(Some(TargetedResult::Gone {
                        url: u,
                        http_status: status,
                        sample: sample.id,
                    }));
                }
                Err(FetchError::Refused(r)) => {
                    batch.event(
                        "fetch.refused",
                        Some(t),
                        serde_json::json!({"url": u, "reason": r.to_string()}),
                    )?;
                    results.push(Some(TargetedResult::Refused {
                        url: u,
                        reason: r.to_string(),
                    }));
                }
                Err(e) => {
                    batch.event(
                        "fetch.failed",
                        Some(t),
                        serde_json::json!({"url": u, "reason": e.to_string()}),
                    )?;
                    results.push(Some(TargetedResult::Failed {
                        url: u,
                        reason: e.to_string(),
                    }));
                }
            }
        }
        let recorded = self
            .record(tenant_id, SampleOrigin::Targeted, items, false, batch)
            .await?;
        drop(lock);
        store::flush(&self.store)
            .await
            .context("flushing targeted samples")?;
        for (pos, sample) in positions.into_iter().zip(recorded.samples) {
            results[pos] = Some(TargetedResult::Sampled {
                url: sample.url.clone().unwrap_or_default(),
                sample: Box::new(sample),
            });
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Prevalence of every policy category for `tenant` over the window.
    pub async fn prevalence(&self, tenant_id: &TenantId) -> Result<Vec<CategoryPrevalence>> {
        self.tenant(tenant_id)?;
        let store: SharedStore = self.store.clone();
        let engine = self.policy.current();
        let t = tenant_id.clone();
        let window = self.settings.window_secs;
        blocking(move || {
            let tallies = window_tallies(store.as_ref(), &t, Timestamp::now(), window)?;
            let (n, x) = sum(&tallies);
            let mut out = Vec::new();
            for c in &engine.policy().categories {
                let crossed = store.threshold_raised(&t, &c.id)?;
                out.push(CategoryPrevalence {
                    category: c.id.clone(),
                    prevalence: Prevalence::wilson(x.get(&c.id).copied().unwrap_or(0), n),
                    tolerance: c.case.tolerance,
                    min_samples: c.case.min_samples,
                    critical_score: c.case.critical_score,
                    threshold_crossed: crossed,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Findings of `tenant`, newest first, optionally of one category.
    pub async fn findings(
        &self,
        tenant_id: &TenantId,
        category: Option<String>,
        limit: usize,
    ) -> Result<Vec<Finding>> {
        self.tenant(tenant_id)?;
        let store = self.store.clone();
        let t = tenant_id.clone();
        // Findings are keyed by category, then time: take the newest `limit`
        // of each category in the policy and merge, so memory stays bounded.
        let categories: Vec<String> = match category {
            Some(c) => vec![c],
            None => self
                .policy
                .current()
                .policy()
                .categories
                .iter()
                .map(|c| c.id.clone())
                .collect(),
        };
        blocking(move || {
            let mut all = Vec::new();
            for c in categories {
                all.extend(store.findings(&t, &c, limit)?);
            }
            all.sort_by_key(|f| std::cmp::Reverse(f.sample));
            all.truncate(limit);
            Ok(all)
        })
        .await
    }

    /// Samples of `tenant`, newest first.
    pub async fn samples(&self, tenant_id: &TenantId, limit: usize) -> Result<Vec<Sample>> {
        self.tenant(tenant_id)?;
        let store = self.store.clone();
        let t = tenant_id.clone();
        blocking(move || Ok(store.newest_samples(&t, limit)?)).await
    }

    /// Clears a raised threshold so it can be raised again.
    pub async fn clear_threshold(&self, tenant_id: &TenantId, category: &str) -> Result<bool> {
        self.tenant(tenant_id)?;
        let _lock = self.lock(tenant_id).await;
        if !self.store.threshold_raised(tenant_id, category)? {
            return Ok(false);
        }
        let mut batch = Batch::new();
        samples::clear_alert(&mut batch, tenant_id, category);
        batch.event(
            "evidence.threshold_cleared",
            Some(tenant_id.as_str()),
            serde_json::json!({"tenant": tenant_id, "category": category}),
        )?;
        store::commit_durably(&self.store, batch).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_ignores_whitespace_layout_only() {
        assert_eq!(content_hash("a  b\n c"), content_hash(" a b c "));
        assert_ne!(content_hash("a b c"), content_hash("a b C"));
    }

    #[test]
    fn the_prevalence_window_holds_only_its_last_hours() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SledStore::open(dir.path()).unwrap();
        let tenant = TenantId::try_from("parlor".to_string()).unwrap();
        let now = Timestamp::from_second(1_000 * 3600 + 10).unwrap();
        let mut batch = Batch::new();
        for (hour, sampled, flagged) in [(1000 - 200, 50, 9), (1000 - 167, 10, 1), (1000, 5, 2)] {
            batch
                .put(&Tally {
                    tenant: tenant.clone(),
                    hour,
                    sampled,
                    flagged: [("violent-incitement".to_string(), flagged)].into(),
                })
                .unwrap();
        }
        crate::store::StoreEngine::commit(&store, batch).unwrap();
        let tallies = window_tallies(
            &store,
            &TenantId::try_from("parlor").unwrap(),
            now,
            168 * 3600,
        )
        .unwrap();
        let (n, x) = sum(&tallies);
        assert_eq!(
            n, 15,
            "hour 800 is outside a 168-hour window, hour 833 inside"
        );
        assert_eq!(x["violent-incitement"], 3);
    }

    fn excerpt(text: &str, chars: usize) -> String {
        Excerpt::new(text, chars).text
    }

    #[test]
    fn excerpts_are_bounded_on_character_boundaries() {
        assert_eq!(excerpt("héllo   wörld", 7), "héllo w…");
        assert_eq!(excerpt("héllo   wörld", 6), "héllo …");
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("  two\n words ", 9), "two words");
        assert_eq!(excerpt("", 9), "");
    }

    #[test]
    fn evidence_offsets_slice_the_excerpt_to_the_matched_words() {
        let engine = crate::policy::Engine::compile(
            crate::policy::load_dir(&crate::policy::shipped_dir()).unwrap(),
        )
        .unwrap();
        let text = "Tomorrow   we\tgo.  STORM  the\n capitol and bring your guns. \
                    More words here so that the end is cut: we will storm the capitol again";
        let kept = Excerpt::new(text, 60);
        let v = to_sample_verdict(engine.score(text), &kept);
        assert!(v.evidence.len() >= 2, "{v:?}");
        let mut inside = 0;
        for e in &v.evidence {
            match (e.start, e.end) {
                (Some(s), Some(x)) => {
                    inside += 1;
                    let folded: Vec<&str> = e.text.split_whitespace().collect();
                    assert_eq!(&kept.text[s..x], folded.join(" "), "{e:?}");
                }
                _ => assert!(
                    !kept
                        .text
                        .contains(&e.text.split_whitespace().collect::<Vec<_>>().join(" "))
                        || text.matches(&*e.text).count() > 1,
                    "{e:?} is in the excerpt but has no offsets"
                ),
            }
        }
        assert!(inside >= 2, "{v:?}");
        // The second "storm the capitol" lies beyond the excerpt.
        assert!(v.evidence.iter().any(|e| e.start.is_none()), "{v:?}");
    }
}

#[cfg(test)]
mod replica_tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::domain::RiskTier;
    use crate::store::SledStore;

    fn replica(store: &SharedStore) -> Arc<Sampling> {
        let policy =
            Arc::new(crate::policy::PolicyHandle::load(&crate::policy::shipped_dir()).unwrap());
        let settings = crate::config::SamplingSettings {
            intake_sample_rate: 1.0,
            ..Default::default()
        };
        Arc::new(
            Sampling::new(
                store.clone(),
                policy,
                settings,
                Arc::new(super::super::guard::SystemResolver),
            )
            .unwrap(),
        )
    }

    /// Two replicas (two `Sampling`s, each with its own in-process tenant
    /// locks) share one store and take the same tenant's pushes at once:
    /// no count is lost, every kept item is one sample, and the hour's
    /// tally counts each sample once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_pushing_for_one_tenant_at_once_count_every_sample_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        push_from_replicas_sharing(store, None).await;
    }

    /// The same on PostgreSQL, where each replica has its own handle (its
    /// own connection pool) on one database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_pushing_for_one_tenant_at_once_count_every_sample_once_on_postgres() {
        let Some(db) = crate::store::TestDb::new() else {
            return;
        };
        let first: SharedStore = Arc::new(db.open());
        let second: SharedStore = Arc::new(db.open());
        push_from_replicas_sharing(first, Some(second)).await;
    }

    /// Two replicas push 30 batches of 5 distinct items each for one
    /// tenant at once; `second` is the other replica's own handle on the
    /// store (`None`: both use `store`).
    async fn push_from_replicas_sharing(store: SharedStore, second: Option<SharedStore>) {
        let now = Timestamp::now();
        let mut batch = Batch::new();
        batch
            .put(&Tenant {
                id: TenantId::try_from("parlor".to_string()).unwrap(),
                name: "Parlor".into(),
                contacts: Vec::new(),
                risk_tier: RiskTier::High,
                status: TenantStatus::Active,
                intake_budget_per_hour: 1_000_000,
                enforcement: None,
                created_at: now,
                updated_at: now,
            })
            .unwrap();
        store.commit(batch).unwrap();
        let (a, b) = (replica(&store), replica(second.as_ref().unwrap_or(&store)));
        let tenant = TenantId::try_from("parlor".to_string()).unwrap();
        let mut tasks = Vec::new();
        for r in 0..2 {
            for round in 0..30 {
                let (s, tenant) = (if r == 0 { a.clone() } else { b.clone() }, tenant.clone());
                tasks.push(tokio::spawn(async move {
                    let items = (0..5)
                        .map(|i| Item {
                            id: None,
                            url: None,
                            text: format!(
                                "a calm post about gardening, replica {r} round {round} item {i}"
                            ),
                        })
                        .collect();
                    s.intake(&tenant, items).await.unwrap()
                }));
            }
        }
        let mut kept = 0;
        for t in tasks {
            kept += t.await.unwrap().sampled;
        }
        assert_eq!(kept, 300, "every distinct pushed item is kept at rate 1");
        let parlor = TenantId::try_from("parlor").unwrap();
        let samples = store.newest_samples(&parlor, usize::MAX).unwrap().len();
        let counter: IntakeCounter = store.intake_counter(&parlor).unwrap().unwrap();
        let tallied: u64 = store
            .tallies(&parlor)
            .unwrap()
            .iter()
            .map(|t| t.sampled)
            .sum();
        assert_eq!(samples, 300);
        assert_eq!(counter.seen_total, 300, "no push lost from the counter");
        assert_eq!(counter.kept_total, 300);
        assert_eq!(tallied, 300, "the tallies count each sample once");
    }
}
