//! Human review: the per-tenant review queue, labels and their agreement,
//! and prevalence estimated from labels.
//!
//! **Population.** A tenant's review population is its randomly drawn,
//! scored samples (targeted samples are not uniform and never enter it),
//! split into score bands by the highest category score of each verdict.
//!
//! **Queue.** [`allocate`] sets a target per band for the review sample
//! size; the next item comes from the band furthest below its target in
//! proportion (`(target − done) / target`), the highest band first on ties,
//! and within a band in increasing [`draw_key`] under the tenant's seed.
//! A band's "done" is the length of its *reviewed prefix*: the items, in
//! draw order, up to the first one nobody has labelled. Any prefix of a
//! band's draw order is a simple random sample of the band, so estimates
//! use exactly those items and stay unbiased.
//!
//! **Feedback** labels (a wrong flag or a miss seen on a sample or finding)
//! are labels like any other: they count for agreement, evidence and the
//! export. In the estimates they count only once their item falls inside
//! its band's reviewed prefix (the queue reaches it and skips it as already
//! labelled); until then they are reported apart as `feedback`, because an
//! item someone chose to look at is not a random draw.
//!
//! **Agreement.** An item's answer in a category is the majority of its
//! decisive labels (violates / does not); a tie is a disagreement and sends
//! the item to the second-opinion queue. An item is suspension evidence in a
//! category when at least two distinct reviewers said it violates and they
//! are the majority.

pub mod export;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::domain::{
    CrossingReason, DomainEvent, Label, LabelCrossing, LabelOrigin, Prevalence, ReviewAnswer,
    ReviewState, Sample, SampleId, TenantId, ThresholdAlert,
};
use crate::policy::{Engine, Estimate};
use crate::sampling::labelled::{
    allocate, band_of, corrected_count, draw_key, label_estimate, LabelEstimate, LabelledItem,
    BANDS,
};
use crate::store::{reviews, samples, Batch, Store, StoreError};

/// Items a tenant's review sample holds unless `sampling.review_sample_size`
/// says otherwise.
pub const DEFAULT_SAMPLE_SIZE: u64 = 300;

/// Longest note a label may carry, in bytes.
pub const MAX_NOTE_BYTES: usize = 2000;

/// One item of a tenant's review population.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The sample.
    pub sample: Sample,
    /// Highest category score of its verdict.
    pub score: f64,
    /// Its score band.
    pub band: usize,
    /// Its place in the band's draw order.
    pub key: u64,
}

/// A tenant's review population in draw order, with its labels.
#[derive(Debug, Clone)]
pub struct Population {
    /// Items per band, each band in increasing draw key.
    pub bands: [Vec<Candidate>; BANDS],
    /// Every label of the tenant, grouped by item.
    pub labels: HashMap<SampleId, Vec<Label>>,
    /// The tenant's draw seed.
    pub seed: u64,
}

/// The highest category score of a sample's verdict (`None` when unscored).
pub fn abuse_score(sample: &Sample) -> Option<f64> {
    let verdict = sample.verdict()?;
    Some(
        verdict
            .scores
            .values()
            .fold(0.0f64, |m, s| m.max(f64::from(*s))),
    )
}

/// The tenant's draw seed, made and stored at its first draw. The seed
/// record and its event commit together; two replicas drawing at once
/// agree on whichever committed first.
pub fn seed(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<u64> {
    use anyhow::Context;
    for _ in 0..3 {
        let (state, version) = store.review_state_versioned(tenant)?;
        if let Some(s) = state {
            return Ok(s.seed);
        }
        let state = ReviewState {
            tenant: tenant.clone(),
            seed: rand::random(),
        };
        let mut batch = Batch::new();
        batch.expect_unchanged(&version).put(&state)?;
        batch.event(
            "review.seeded",
            Some(tenant.as_str()),
            serde_json::json!({ "tenant": tenant }),
        )?;
        match store.commit(batch) {
            Ok(_) => return Ok(state.seed),
            Err(crate::store::StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e).context("storing the review seed"),
        }
    }
    anyhow::bail!("the review seed kept changing while it was written")
}

/// Reads a tenant's review population and labels.
pub fn population(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<Population> {
    let seed = seed(store, tenant)?;
    let mut bands: [Vec<Candidate>; BANDS] = Default::default();
    for sample in store.newest_samples(tenant, usize::MAX)? {
        if !sample.origin.is_random() {
            continue;
        }
        let Some(score) = abuse_score(&sample) else {
            continue;
        };
        let band = band_of(score);
        let key = draw_key(seed, &sample.id.to_string());
        bands[band].push(Candidate {
            sample,
            score,
            band,
            key,
        });
    }
    for band in &mut bands {
        band.sort_by_key(|c| (c.key, c.sample.id));
    }
    let mut labels: HashMap<SampleId, Vec<Label>> = HashMap::new();
    for l in store.labels(tenant)? {
        labels.entry(l.sample).or_default().push(l);
    }
    Ok(Population {
        bands,
        labels,
        seed,
    })
}

/// Which review queue to draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// The stratified first review.
    First,
    /// Items whose reviewers disagree, or whose single "violates" awaits a
    /// second reviewer.
    Second,
}

/// What reviewers said about one item in one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Consensus {
    /// No decisive label yet.
    None,
    /// The majority says it violates.
    Violates,
    /// The majority says it does not.
    DoesNot,
    /// As many say it violates as say it does not.
    Disputed,
}

/// The decisive tallies and consensus of `labels` in `category`.
pub fn consensus(labels: &[Label], category: &str) -> (u64, u64, Consensus) {
    let (mut v, mut d) = (0, 0);
    for l in labels.iter().filter(|l| l.category == category) {
        match l.answer {
            ReviewAnswer::Violates => v += 1,
            ReviewAnswer::DoesNot => d += 1,
            ReviewAnswer::Unsure => {}
        }
    }
    let c = match (v, d) {
        (0, 0) => Consensus::None,
        (v, d) if v > d => Consensus::Violates,
        (v, d) if d > v => Consensus::DoesNot,
        _ => Consensus::Disputed,
    };
    (v, d, c)
}

/// Whether `labels` make the item suspension evidence in `category`: two
/// distinct reviewers say it violates, and they are the majority.
pub fn is_evidence(labels: &[Label], category: &str) -> bool {
    let (v, _, c) = consensus(labels, category);
    v >= 2 && c == Consensus::Violates
}

/// Whether the item waits for a second opinion in some category.
fn needs_second_opinion(labels: &[Label]) -> bool {
    let categories: BTreeSet<&str> = labels.iter().map(|l| l.category.as_str()).collect();
    categories.into_iter().any(|c| {
        let (v, d, k) = consensus(labels, c);
        k == Consensus::Disputed || (v == 1 && d == 0)
    })
}

impl Population {
    /// The labels of an item (empty when nobody labelled it).
    pub fn labels_of(&self, sample: &SampleId) -> &[Label] {
        self.labels.get(sample).map_or(&[], Vec::as_slice)
    }

    /// Items per band.
    pub fn counts(&self) -> [u64; BANDS] {
        let mut out = [0u64; BANDS];
        for (b, items) in self.bands.iter().enumerate() {
            out[b] = items.len() as u64;
        }
        out
    }

    /// Length of each band's reviewed prefix.
    pub fn reviewed_prefix(&self) -> [usize; BANDS] {
        let mut out = [0usize; BANDS];
        for (b, items) in self.bands.iter().enumerate() {
            out[b] = items
                .iter()
                .take_while(|c| self.labels.contains_key(&c.sample.id))
                .count();
        }
        out
    }

    /// The next item for `reviewer` in `queue`, and each band's target.
    pub fn next(&self, queue: Queue, reviewer: &str, size: u64) -> Option<&Candidate> {
        match queue {
            Queue::First => {
                let target = allocate(&self.counts(), size);
                let done = self.reviewed_prefix();
                let mut best: Option<usize> = None;
                for b in (0..BANDS).rev() {
                    let (t, d) = (target[b], done[b] as u64);
                    if d >= t || d as usize >= self.bands[b].len() {
                        continue;
                    }
                    best = match best {
                        None => Some(b),
                        Some(o) => {
                            let (to, dn) = (target[o], done[o] as u64);
                            // (t − d)/t > (to − dn)/to, in integers; ties
                            // keep the higher band found first.
                            if u128::from(t - d) * u128::from(to)
                                > u128::from(to - dn) * u128::from(t)
                            {
                                Some(b)
                            } else {
                                Some(o)
                            }
                        }
                    };
                }
                best.and_then(|b| self.bands[b].get(done[b]))
            }
            Queue::Second => {
                let mut waiting: Vec<(bool, &Candidate)> = self
                    .bands
                    .iter()
                    .flatten()
                    .filter_map(|c| {
                        let labels = self.labels_of(&c.sample.id);
                        if labels.is_empty()
                            || labels.iter().any(|l| l.reviewer == reviewer)
                            || !needs_second_opinion(labels)
                        {
                            return None;
                        }
                        let disputed = labels
                            .iter()
                            .any(|l| consensus(labels, &l.category).2 == Consensus::Disputed);
                        Some((disputed, c))
                    })
                    .collect();
                waiting.sort_by(|a, b| {
                    b.0.cmp(&a.0)
                        .then(b.1.band.cmp(&a.1.band))
                        .then(a.1.key.cmp(&b.1.key))
                });
                waiting.first().map(|(_, c)| *c)
            }
        }
    }

    /// Review figures of one category: the estimates over the reviewed
    /// prefixes, and the counts beside them.
    pub fn figures(&self, category: &str) -> CategoryReview {
        let population = self.counts();
        let prefix = self.reviewed_prefix();
        let mut items = Vec::new();
        let mut in_prefix = BTreeSet::new();
        for (b, band) in self.bands.iter().enumerate() {
            for c in band.iter().take(prefix[b]) {
                in_prefix.insert(c.sample.id);
                let flagged = c
                    .sample
                    .verdict()
                    .is_some_and(|v| v.flagged.iter().any(|f| f.category == category));
                match consensus(self.labels_of(&c.sample.id), category).2 {
                    Consensus::Violates => items.push(LabelledItem {
                        band: b,
                        flagged,
                        violates: true,
                    }),
                    Consensus::DoesNot => items.push(LabelledItem {
                        band: b,
                        flagged,
                        violates: false,
                    }),
                    Consensus::None | Consensus::Disputed => {}
                }
            }
        }
        let flagged_total = self
            .bands
            .iter()
            .flatten()
            .filter(|c| {
                c.sample
                    .verdict()
                    .is_some_and(|v| v.flagged.iter().any(|f| f.category == category))
            })
            .count() as u64;
        let mut feedback = 0;
        let mut evidence = 0;
        let mut labelled_items = 0;
        for (sample, labels) in &self.labels {
            if !labels.iter().any(|l| l.category == category) {
                continue;
            }
            labelled_items += 1;
            if is_evidence(labels, category) {
                evidence += 1;
            }
            if !in_prefix.contains(sample)
                && labels.iter().any(|l| l.origin == LabelOrigin::Feedback)
            {
                feedback += 1;
            }
        }
        CategoryReview {
            reviewed: items.len() as u64,
            labelled_items,
            feedback,
            labelled_evidence: evidence,
            labelled: label_estimate(&population, &items),
            corrected: corrected_count(&population, flagged_total, &items, self.seed),
        }
    }
}

/// Most findings a label-raised threshold names (as the model's does).
const CROSSING_FINDINGS: usize = 50;

/// Looks at `tenant`'s rules resting on labels after its labels were
/// committed ([`raise_label_crossings`]) and clears the tenant's pending
/// mark, unless a label came meanwhile (the mark then stays for the next
/// look). Returns the alerts raised. Blocking.
pub fn check_labels(
    store: &dyn Store,
    engine: &Engine,
    tenant: &TenantId,
) -> anyhow::Result<Vec<ThresholdAlert>> {
    let mark = reviews::pending_check(store, tenant)?;
    let raised = raise_label_crossings(store, engine, tenant)?;
    reviews::checked(store, &mark)?;
    Ok(raised)
}

/// Tenants looked at per sweep at most (the next sweep goes on).
const CHECKS_PER_SWEEP: usize = 100;

/// Finishes the looks still pending: labels committed by a process that
/// stopped before it looked, or by any other writer of labels. The
/// enforcement worker calls it on every tick. Returns the alerts raised.
/// Blocking.
pub fn finish_pending_checks(store: &dyn Store, engine: &Engine) -> anyhow::Result<usize> {
    let mut raised = 0;
    for (tenant, mark) in reviews::pending_checks(store, CHECKS_PER_SWEEP)? {
        // One tenant's failure leaves its mark for the next sweep and does
        // not hold up the others.
        match raise_label_crossings(store, engine, &tenant) {
            Ok(alerts) => {
                raised += alerts.len();
                reviews::checked(store, &mark)?;
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant.as_str(), error = ?e, "looking at a tenant's new labels failed; it is looked at again");
            }
        }
    }
    Ok(raised)
}

/// Raises the threshold of each category whose case rule rests on
/// reviewers' labels (`estimate = "labelled"` or `"corrected"`) when the
/// labels now show it crossed: the lower bound of the named estimate's 95%
/// interval above the rule's `tolerance`, over a review population of at
/// least `min_samples` items, and for `labelled` at least `min_samples`
/// reviewed items. Called after labels are committed; the sampler never
/// raises these rules from the model's count (only a critical item does).
///
/// Each crossing commits its [`ThresholdAlert`] (with the estimate and the
/// reviewed count) and its `evidence.threshold_crossed` event in one batch
/// that expects the alert absent, so the evidence worker opens the case as
/// for any crossing, and a crossing raised meanwhile by another label is
/// left as it is. Returns the alerts raised here. Blocking.
pub fn raise_label_crossings(
    store: &dyn Store,
    engine: &Engine,
    tenant: &TenantId,
) -> anyhow::Result<Vec<ThresholdAlert>> {
    let rules: Vec<_> = engine
        .policy()
        .categories
        .iter()
        .filter(|c| c.case.estimate.needs_labels())
        .map(|c| (c.id.clone(), c.case.clone()))
        .collect();
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let population = population(store, tenant)?;
    let total: u64 = population.counts().iter().sum();
    let mut raised = Vec::new();
    for (category, rule) in rules {
        if total < rule.min_samples || store.threshold_raised(tenant, &category)? {
            continue;
        }
        let figures = population.figures(&category);
        let (name, estimate) = match rule.estimate {
            Estimate::Labelled if figures.reviewed >= rule.min_samples => {
                ("labelled", figures.labelled)
            }
            Estimate::Corrected => ("corrected", figures.corrected),
            _ => continue,
        };
        let Some(estimate) = estimate else { continue };
        if estimate.lower <= rule.tolerance {
            continue;
        }
        // The items reviewers say violate the category, those two agree on
        // first: the case's evidence.
        let mut violating: Vec<(bool, SampleId)> = population
            .labels
            .iter()
            .filter(|(_, labels)| consensus(labels, &category).2 == Consensus::Violates)
            .map(|(id, labels)| (is_evidence(labels, &category), *id))
            .collect();
        violating.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let findings: Vec<SampleId> = violating
            .into_iter()
            .map(|(_, id)| id)
            .take(CROSSING_FINDINGS)
            .collect();
        let flagged = population
            .bands
            .iter()
            .flatten()
            .filter(|c| {
                c.sample
                    .verdict()
                    .is_some_and(|v| v.flagged.iter().any(|f| f.category == category))
            })
            .count() as u64;
        let alert = ThresholdAlert {
            tenant: tenant.clone(),
            category: category.clone(),
            reason: CrossingReason::Prevalence,
            raised_at: jiff::Timestamp::now(),
            prevalence: Prevalence::wilson(flagged, total),
            findings,
            labels: Some(LabelCrossing {
                estimate: name.to_string(),
                reviewed: figures.reviewed,
                rate: estimate.rate,
                lower: estimate.lower,
                upper: estimate.upper,
            }),
        };
        let mut batch = Batch::new();
        batch.expect_unchanged(&samples::alert_absent(tenant, &category));
        batch.put(&alert)?;
        batch.event(
            DomainEvent::THRESHOLD_CROSSED,
            Some(tenant.as_str()),
            serde_json::json!({
                "tenant": tenant,
                "category": category,
                "reason": alert.reason,
                "estimate": name,
                "reviewed": figures.reviewed,
                "labelled_evidence": figures.labelled_evidence,
                "rate": estimate.rate,
                "lower": estimate.lower,
                "upper": estimate.upper,
                "model": alert.prevalence,
                "tolerance": rule.tolerance,
                "min_samples": rule.min_samples,
                "policy_version": engine.version(),
                "findings": alert.findings,
            }),
        )?;
        match store.commit(batch) {
            Ok(_) => raised.push(alert),
            // Raised meanwhile, by another label on another replica.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !raised.is_empty() {
        store.flush()?;
    }
    Ok(raised)
}

/// A category's review figures, shown beside the model's count.
#[derive(Debug, Clone, PartialEq, Serialize, Default, utoipa::ToSchema)]
pub struct CategoryReview {
    /// Items of the stratified sample with a decisive answer in the category:
    /// what `labelled` and `corrected` rest on.
    pub reviewed: u64,
    /// Items with any label in the category, however drawn.
    pub labelled_items: u64,
    /// Feedback-labelled items outside the stratified sample (not in the
    /// estimates).
    pub feedback: u64,
    /// Items two distinct reviewers agree violate the category: suspension
    /// evidence.
    pub labelled_evidence: u64,
    /// The stratified label estimate; `null` before any label.
    pub labelled: Option<LabelEstimate>,
    /// The model's count corrected by its error on the labels; `null` until
    /// the labels show the model better than chance.
    pub corrected: Option<LabelEstimate>,
}

/// Per-category review figures of a tenant, for every category named.
pub fn figures(
    store: &dyn Store,
    tenant: &TenantId,
    categories: &[String],
) -> anyhow::Result<BTreeMap<String, CategoryReview>> {
    let population = population(store, tenant)?;
    Ok(categories
        .iter()
        .map(|c| (c.clone(), population.figures(c)))
        .collect())
}

/// Items of `tenant` that two agreeing reviewers say violate at least one
/// of `categories`: the labelled evidence a suspension proposal states.
pub fn labelled_evidence(
    store: &dyn Store,
    tenant: &TenantId,
    categories: &[String],
) -> crate::store::Result<u64> {
    let mut by_item: HashMap<SampleId, Vec<Label>> = HashMap::new();
    for l in store.labels(tenant)? {
        by_item.entry(l.sample).or_default().push(l);
    }
    Ok(by_item
        .values()
        .filter(|labels| categories.iter().any(|c| is_evidence(labels, c)))
        .count() as u64)
}

/// How many items of `tenant` people labelled in `category`, and how many
/// of them two agreeing reviewers say violate it. Reads labels only (no
/// draw), for the tenant's own view of its evidence.
pub fn review_counts(
    store: &dyn Store,
    tenant: &TenantId,
    category: &str,
) -> crate::store::Result<(u64, u64)> {
    let mut by_item: HashMap<SampleId, Vec<Label>> = HashMap::new();
    for l in store.labels(tenant)? {
        if l.category == category {
            by_item.entry(l.sample).or_default().push(l);
        }
    }
    let evidence = by_item
        .values()
        .filter(|labels| is_evidence(labels, category))
        .count() as u64;
    Ok((by_item.len() as u64, evidence))
}

/// How far one reviewer agrees with the others in one category.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Agreement {
    /// The reviewer.
    pub reviewer: String,
    /// The category.
    pub category: String,
    /// Decisive labels the reviewer gave.
    pub labels: u64,
    /// Pairs with another reviewer's decisive label on the same item.
    pub compared: u64,
    /// Of those, how many gave the same answer.
    pub agreed: u64,
    /// `agreed / compared`; `null` with nothing to compare.
    pub rate: Option<f64>,
}

/// Agreement of every reviewer in every category over `labels`.
pub fn agreement(labels: &[Label]) -> Vec<Agreement> {
    let mut by_item: BTreeMap<(&TenantId, SampleId, &str), Vec<&Label>> = BTreeMap::new();
    for l in labels.iter().filter(|l| l.answer.is_decisive()) {
        by_item
            .entry((&l.tenant, l.sample, l.category.as_str()))
            .or_default()
            .push(l);
    }
    let mut out: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for group in by_item.values() {
        for l in group {
            let e = out
                .entry((l.reviewer.clone(), l.category.clone()))
                .or_default();
            e.0 += 1;
            for other in group.iter().filter(|o| o.reviewer != l.reviewer) {
                e.1 += 1;
                if other.answer == l.answer {
                    e.2 += 1;
                }
            }
        }
    }
    out.into_iter()
        .map(|((reviewer, category), (n, compared, agreed))| Agreement {
            reviewer,
            category,
            labels: n,
            compared,
            agreed,
            rate: (compared > 0).then(|| agreed as f64 / compared as f64),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(sample: SampleId, reviewer: &str, answer: ReviewAnswer) -> Label {
        Label {
            tenant: TenantId::try_from("parlor").unwrap(),
            sample,
            category: "spam".into(),
            reviewer: reviewer.into(),
            answer,
            origin: LabelOrigin::Queue,
            note: None,
            at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn evidence_needs_two_reviewers_who_agree_and_hold_the_majority() {
        let s = SampleId::new();
        let one = vec![label(s, "a", ReviewAnswer::Violates)];
        assert!(!is_evidence(&one, "spam"));
        assert!(needs_second_opinion(&one));
        let split = vec![
            label(s, "a", ReviewAnswer::Violates),
            label(s, "b", ReviewAnswer::DoesNot),
        ];
        assert_eq!(consensus(&split, "spam").2, Consensus::Disputed);
        assert!(!is_evidence(&split, "spam"));
        let mut settled = split.clone();
        settled.push(label(s, "c", ReviewAnswer::Violates));
        assert!(is_evidence(&settled, "spam"));
        assert!(!needs_second_opinion(&settled));
        assert!(!is_evidence(&settled, "other"));
    }

    #[test]
    fn agreement_counts_pairs_with_other_reviewers_only() {
        let (s, t) = (SampleId::new(), SampleId::new());
        let labels = vec![
            label(s, "a", ReviewAnswer::Violates),
            label(s, "b", ReviewAnswer::Violates),
            label(t, "a", ReviewAnswer::Violates),
            label(t, "b", ReviewAnswer::DoesNot),
            label(t, "c", ReviewAnswer::Unsure),
        ];
        let rows = agreement(&labels);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].labels, rows[0].compared, rows[0].agreed),
            (2, 2, 1)
        );
        assert_eq!(rows[0].rate, Some(0.5));
    }
}
