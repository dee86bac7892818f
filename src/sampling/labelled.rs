//! Prevalence from reviewed labels.
//!
//! A tenant's samples are split into score bands; reviewers label a
//! stratified random sample drawn band by band. Two estimators turn those
//! labels into a prevalence with a 95% interval:
//!
//! * [`label_estimate`]: the stratified mean of the labels, each band
//!   weighted by its share of the population;
//! * [`corrected_count`]: the model's own count, corrected by the true- and
//!   false-positive rates measured on the labels (adjusted classify and
//!   count), with a bootstrap interval.
//!
//! Everything here is pure and deterministic: the same inputs give the same
//! figures on every build and platform. `docs/review.md` states the formulas.

use sha2::{Digest, Sha256};

/// Score bands over a sample's abuse score (the highest category score of its verdict, 0..=1).
/// Band i covers [BAND_EDGES[i], BAND_EDGES[i+1]) and the last band includes 1.0.
pub const BAND_EDGES: [f64; 6] = [0.0, 0.1, 0.3, 0.5, 0.7, 1.0];

/// Number of score bands.
pub const BANDS: usize = 5;

/// Bootstrap replicates behind the interval of [`corrected_count`].
pub const BOOTSTRAP_REPLICATES: usize = 1000;

/// The normal quantile of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The band holding `score`: NaN or below 0 → 0, 1 or more → the last band.
pub fn band_of(score: f64) -> usize {
    if score.is_nan() || score < BAND_EDGES[1] {
        return 0;
    }
    (1..BANDS)
        .rev()
        .find(|&b| score >= BAND_EDGES[b])
        .unwrap_or(0)
}

/// How many of `n` review slots go to each band, given how many samples each band holds.
/// Every non-empty band gets at least min(2, its population); the rest proportional to
/// population, never more than the band holds; sums to min(n, total).
///
/// When `n` is too small to give every band its minimum, slots go one at a
/// time to the non-empty bands from the highest score down, then a second
/// round the same way.
pub fn allocate(population: &[u64; BANDS], n: u64) -> [u64; BANDS] {
    let total: u64 = population.iter().sum();
    let target = n.min(total);
    let mut alloc = [0u64; BANDS];
    let minimum: u64 = population.iter().map(|&p| p.min(2)).sum();
    if target <= minimum {
        let mut left = target;
        for round in 1..=2u64 {
            for b in (0..BANDS).rev() {
                if left > 0 && population[b] >= round {
                    alloc[b] += 1;
                    left -= 1;
                }
            }
        }
        return alloc;
    }
    for (a, &p) in alloc.iter_mut().zip(population) {
        *a = p.min(2);
    }
    let mut rest = target - minimum;
    while rest > 0 {
        let open: Vec<usize> = (0..BANDS).filter(|&b| alloc[b] < population[b]).collect();
        let weight: u128 = open.iter().map(|&b| u128::from(population[b])).sum();
        if weight == 0 {
            break;
        }
        let mut remainders = Vec::with_capacity(open.len());
        let mut given = 0u64;
        for &b in &open {
            let exact = u128::from(rest) * u128::from(population[b]);
            let share = u64::try_from(exact / weight).unwrap_or(u64::MAX);
            let share = share.min(population[b] - alloc[b]);
            alloc[b] += share;
            given += share;
            remainders.push((exact % weight, b));
        }
        rest -= given;
        // Largest remainder first; on a tie the higher band, whose items
        // are the likelier evidence.
        remainders.sort_by(|x, y| y.cmp(x));
        for (_, b) in remainders {
            if rest > 0 && alloc[b] < population[b] {
                alloc[b] += 1;
                rest -= 1;
            }
        }
    }
    alloc
}

/// Deterministic random order inside a band: items are reviewed in increasing `draw_key`,
/// so any prefix of a band is a simple random sample of it.
pub fn draw_key(seed: u64, item_id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(item_id.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// How many of the `scores` fall in each band.
pub fn band_population(scores: impl IntoIterator<Item = f64>) -> [u64; BANDS] {
    let mut population = [0u64; BANDS];
    for s in scores {
        population[band_of(s)] += 1;
    }
    population
}

/// The items the review queue draws from a population of `(item id, score)`
/// when it asks for `n` labels: [`allocate`] slots per band, and inside each
/// band the lowest [`draw_key`]s. Returns indexes into `items`, highest band
/// first and in review order inside a band.
pub fn stratified_draw(seed: u64, items: &[(&str, f64)], n: u64) -> Vec<usize> {
    let mut by_band: [Vec<(u64, usize)>; BANDS] = Default::default();
    for (i, (id, score)) in items.iter().enumerate() {
        by_band[band_of(*score)].push((draw_key(seed, id), i));
    }
    let population: [u64; BANDS] = std::array::from_fn(|b| by_band[b].len() as u64);
    let alloc = allocate(&population, n);
    let mut drawn = Vec::new();
    for b in (0..BANDS).rev() {
        let band = &mut by_band[b];
        band.sort_unstable();
        let take = usize::try_from(alloc[b]).unwrap_or(usize::MAX);
        drawn.extend(band.iter().take(take).map(|&(_, i)| i));
    }
    drawn
}

/// One reviewed item for one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelledItem {
    /// The item's score band ([`band_of`]).
    pub band: usize,
    /// Whether the model flagged it for the category.
    pub flagged: bool,
    /// Whether the reviewer said it violates the category.
    pub violates: bool,
}

/// A prevalence estimated from labels, with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct LabelEstimate {
    /// Estimated share of the population that violates.
    pub rate: f64,
    /// Lower bound of the 95% interval.
    pub lower: f64,
    /// Upper bound of the 95% interval.
    pub upper: f64,
    /// Labelled items the estimate rests on.
    pub reviewed: u64,
}

/// Per-band counts of the four kinds of labelled item.
#[derive(Debug, Clone, Copy, Default)]
struct BandCounts {
    /// Flagged and violates.
    tp: u64,
    /// Not flagged, violates.
    fneg: u64,
    /// Flagged, does not violate.
    fp: u64,
    /// Neither.
    tn: u64,
}

impl BandCounts {
    fn n(&self) -> u64 {
        self.tp + self.fneg + self.fp + self.tn
    }

    fn add(&mut self, flagged: bool, violates: bool) {
        match (flagged, violates) {
            (true, true) => self.tp += 1,
            (false, true) => self.fneg += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }
}

fn count_bands(items: &[LabelledItem]) -> [BandCounts; BANDS] {
    let mut counts = [BandCounts::default(); BANDS];
    for it in items {
        counts[it.band.min(BANDS - 1)].add(it.flagged, it.violates);
    }
    counts
}

/// The strata weights population[b]/total (all zero when the population is empty).
fn weights(population: &[u64; BANDS]) -> [f64; BANDS] {
    let total: u64 = population.iter().sum();
    if total == 0 {
        return [0.0; BANDS];
    }
    std::array::from_fn(|b| population[b] as f64 / total as f64)
}

/// For each band, the band whose labels stand for it: itself when it has
/// labels, otherwise the nearest band that has (the lower one on a tie).
/// None when no band has labels.
fn label_source(counts: &[BandCounts; BANDS]) -> Option<[usize; BANDS]> {
    let labelled: Vec<usize> = (0..BANDS).filter(|&b| counts[b].n() > 0).collect();
    if labelled.is_empty() {
        return None;
    }
    Some(std::array::from_fn(|b| {
        labelled
            .iter()
            .copied()
            .min_by_key(|&l| (l.abs_diff(b), l))
            .unwrap_or(b)
    }))
}

/// The strata both estimators sum over: each populated band (weight above
/// zero) with its weight and the counts whose labels stand for it (its own,
/// or the nearest labelled band's), skipping a band whose counts are empty.
fn strata<'a>(
    w: &'a [f64; BANDS],
    counts: &'a [BandCounts; BANDS],
    source: &'a [usize; BANDS],
) -> impl Iterator<Item = (usize, f64, &'a BandCounts)> + 'a {
    (0..BANDS)
        .filter(move |&b| w[b] > 0.0 && counts[source[b]].n() > 0)
        .map(move |b| (b, w[b], &counts[source[b]]))
}

/// (a) Stratified estimate of the violating rate from labels, 95% interval accounting for the
/// strata weights population[b]/total. Items marked "unsure" are simply not passed in.
/// None when nothing was reviewed.
///
/// rate = Σ W_b·p_b with W_b = N_b/N and p_b the violating share of band b's
/// labels. Variance Σ W_b²·(1 − n_b/N_b)·p̃_b(1 − p̃_b)/n_b with
/// p̃_b = (x_b + 1)/(n_b + 2), so that a band whose few labels all agree
/// still counts as uncertain; interval rate ± 1.96·√variance, clipped to
/// [0, 1]. A populated band without labels takes the nearest labelled band's
/// rate for the point estimate, and the interval widens by its whole weight
/// (its true rate could be anything from 0 to 1).
pub fn label_estimate(population: &[u64; BANDS], items: &[LabelledItem]) -> Option<LabelEstimate> {
    if items.is_empty() {
        return None;
    }
    let counts = count_bands(items);
    let source = label_source(&counts)?;
    let w = weights(population);
    let mut rate = 0.0;
    let mut variance = 0.0;
    let mut widen_low = 0.0;
    let mut widen_high = 0.0;
    for (b, wb, c) in strata(&w, &counts, &source) {
        let n = c.n() as f64;
        let x = (c.tp + c.fneg) as f64;
        let p = x / n;
        rate += wb * p;
        if source[b] == b {
            let smoothed = (x + 1.0) / (n + 2.0);
            let fpc = (1.0 - n / population[b] as f64).max(0.0);
            variance += wb * wb * fpc * smoothed * (1.0 - smoothed) / n;
        } else {
            widen_low += wb * p;
            widen_high += wb * (1.0 - p);
        }
    }
    let half = Z95 * variance.sqrt();
    Some(LabelEstimate {
        rate,
        lower: (rate - half - widen_low).clamp(0.0, 1.0),
        upper: (rate + half + widen_high).clamp(0.0, 1.0),
        reviewed: items.len() as u64,
    })
}

/// The strata-weighted true- and false-positive rates of the model on the
/// labels: TPR = Σ W_b·tp_b/n_b ÷ Σ W_b·(tp_b + fn_b)/n_b, FPR likewise over
/// the non-violating labels. A rate with nothing to measure it on is 0.
fn error_rates(
    w: &[f64; BANDS],
    counts: &[BandCounts; BANDS],
    source: &[usize; BANDS],
) -> (f64, f64) {
    let (mut tp, mut pos, mut fp, mut neg) = (0.0, 0.0, 0.0, 0.0);
    for (_, wb, c) in strata(w, counts, source) {
        let n = c.n() as f64;
        tp += wb * c.tp as f64 / n;
        pos += wb * (c.tp + c.fneg) as f64 / n;
        fp += wb * c.fp as f64 / n;
        neg += wb * (c.fp + c.tn) as f64 / n;
    }
    let tpr = if pos > 0.0 { tp / pos } else { 0.0 };
    let fpr = if neg > 0.0 { fp / neg } else { 0.0 };
    (tpr, fpr)
}

/// (p̂ − FPR)/(TPR − FPR) clipped to [0, 1]; None when TPR − FPR is not positive.
fn adjusted(flagged_share: f64, tpr: f64, fpr: f64) -> Option<f64> {
    let gap = tpr - fpr;
    (gap > 0.0).then(|| ((flagged_share - fpr) / gap).clamp(0.0, 1.0))
}

/// SplitMix64: a tiny generator whose sequence is fixed by its seed on every
/// platform and crate version, so the bootstrap is reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// The value at quantile `q` of sorted `values` (linear interpolation).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// (b) Adjusted classify-and-count: the model's flagged share p̂ = flagged_total/Σpopulation,
/// corrected by TPR and FPR estimated (strata-weighted) on the labelled items:
/// (p̂ − FPR)/(TPR − FPR) clipped to [0,1], with a 95% interval from a deterministic
/// bootstrap (seeded by `seed`) that resamples the labelled items within bands.
/// None when there are no labelled items or TPR − FPR is not positive.
///
/// The interval is the 2.5th–97.5th percentile of [`BOOTSTRAP_REPLICATES`]
/// replicates; replicates where TPR − FPR is not positive are left out, and
/// when more than half are, the interval is the whole of [0, 1]. Bands
/// without labels borrow the nearest labelled band's, as in
/// [`label_estimate`].
pub fn corrected_count(
    population: &[u64; BANDS],
    flagged_total: u64,
    items: &[LabelledItem],
    seed: u64,
) -> Option<LabelEstimate> {
    let total: u64 = population.iter().sum();
    if items.is_empty() || total == 0 {
        return None;
    }
    let counts = count_bands(items);
    let source = label_source(&counts)?;
    let w = weights(population);
    let share = flagged_total.min(total) as f64 / total as f64;
    let (tpr, fpr) = error_rates(&w, &counts, &source);
    let rate = adjusted(share, tpr, fpr)?;

    // Each band's labels as (flagged, violates) pairs, to resample from.
    let mut kinds: [Vec<(bool, bool)>; BANDS] = Default::default();
    for it in items {
        kinds[it.band.min(BANDS - 1)].push((it.flagged, it.violates));
    }
    let mut rng = SplitMix(seed);
    let mut replicates = Vec::with_capacity(BOOTSTRAP_REPLICATES);
    for _ in 0..BOOTSTRAP_REPLICATES {
        let mut resampled = [BandCounts::default(); BANDS];
        for (b, band) in kinds.iter().enumerate() {
            let n = band.len() as u64;
            for _ in 0..n {
                let (f, v) = band[rng.below(n) as usize];
                resampled[b].add(f, v);
            }
        }
        let (t, f) = error_rates(&w, &resampled, &source);
        if let Some(r) = adjusted(share, t, f) {
            replicates.push(r);
        }
    }
    let (lower, upper) = if replicates.len() * 2 < BOOTSTRAP_REPLICATES {
        (0.0, 1.0)
    } else {
        replicates.sort_by(f64::total_cmp);
        (
            quantile(&replicates, 0.025).min(rate),
            quantile(&replicates, 0.975).max(rate),
        )
    };
    Some(LabelEstimate {
        rate,
        lower,
        upper,
        reviewed: items.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    fn items(band: usize, flagged: bool, violates: bool, n: usize) -> Vec<LabelledItem> {
        vec![
            LabelledItem {
                band,
                flagged,
                violates
            };
            n
        ]
    }

    #[test]
    fn scores_fall_in_the_documented_bands() {
        assert_eq!(band_of(f64::NAN), 0);
        assert_eq!(band_of(-0.5), 0);
        assert_eq!(band_of(0.0), 0);
        assert_eq!(band_of(0.099), 0);
        assert_eq!(band_of(0.1), 1);
        assert_eq!(band_of(0.3), 2);
        assert_eq!(band_of(0.5), 3);
        assert_eq!(band_of(0.69), 3);
        assert_eq!(band_of(0.7), 4);
        assert_eq!(band_of(1.0), 4);
        assert_eq!(band_of(7.0), 4);
        assert_eq!(band_of(f64::INFINITY), 4);
    }

    #[test]
    fn slots_are_proportional_after_the_minimum() {
        // Minimum 2 each (10), 290 left: 145, 72.5, 43.5, 21.75, 7.25 →
        // floors 288, remainders give band 3 one, then band 2 (tie with 1).
        assert_eq!(
            allocate(&[1000, 500, 300, 150, 50], 300),
            [147, 74, 46, 24, 9]
        );
    }

    #[test]
    fn small_bands_get_their_minimum_and_never_more_than_they_hold() {
        let a = allocate(&[10_000, 0, 1, 3, 0], 50);
        assert_eq!(a[1], 0);
        assert_eq!(a[2], 1);
        assert_eq!(a[3], 2);
        assert_eq!(a.iter().sum::<u64>(), 50);
        // A band that cannot take its proportional share passes it on.
        let a = allocate(&[100, 5, 0, 0, 0], 60);
        assert_eq!(a, [55, 5, 0, 0, 0]);
        // Asking for more than there is takes everything.
        assert_eq!(allocate(&[3, 1, 0, 2, 9], 100), [3, 1, 0, 2, 9]);
        assert_eq!(allocate(&[0; BANDS], 10), [0; BANDS]);
    }

    #[test]
    fn too_few_slots_go_to_the_highest_bands_first() {
        assert_eq!(allocate(&[100, 100, 100, 100, 100], 3), [0, 0, 1, 1, 1]);
        assert_eq!(allocate(&[100, 100, 100, 100, 100], 7), [1, 1, 1, 2, 2]);
        assert_eq!(allocate(&[100, 1, 0, 0, 100], 4), [1, 1, 0, 0, 2]);
    }

    #[test]
    fn allocation_always_sums_to_what_can_be_reviewed() {
        let mut rng = Rng(0x5eed);
        for _ in 0..2000 {
            let population: [u64; BANDS] = std::array::from_fn(|_| match rng.below(4) {
                0 => 0,
                1 => rng.below(3) as u64,
                _ => rng.below(5000) as u64,
            });
            let n = rng.below(700) as u64;
            let a = allocate(&population, n);
            let total: u64 = population.iter().sum();
            assert_eq!(a.iter().sum::<u64>(), n.min(total), "{population:?} {n}");
            for b in 0..BANDS {
                assert!(a[b] <= population[b], "{population:?} {n} {a:?}");
                let minimum: u64 = population.iter().map(|&p| p.min(2)).sum();
                if n >= minimum {
                    assert!(a[b] >= population[b].min(2), "{population:?} {n} {a:?}");
                }
            }
        }
    }

    #[test]
    fn draw_keys_are_stable_and_depend_on_seed_and_item() {
        assert_eq!(draw_key(1, "s-1"), draw_key(1, "s-1"));
        assert_ne!(draw_key(1, "s-1"), draw_key(2, "s-1"));
        assert_ne!(draw_key(1, "s-1"), draw_key(1, "s-2"));
        // Pinned: a change of the key would reorder every queue.
        assert_eq!(draw_key(0, ""), 0xaf55_70f5_a181_0b7a);
    }

    #[test]
    fn a_stratified_draw_takes_the_allocation_in_key_order() {
        let ids: Vec<String> = (0..200).map(|i| format!("item-{i}")).collect();
        let pop: Vec<(&str, f64)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), if i < 150 { 0.05 } else { 0.9 }))
            .collect();
        let drawn = stratified_draw(9, &pop, 20);
        assert_eq!(drawn.len(), 20);
        // 150:50 → 2 + 12 and 2 + 4.
        let high = drawn.iter().filter(|&&i| i >= 150).count();
        assert_eq!(high, 6);
        assert!(drawn[..6].iter().all(|&i| i >= 150), "highest band first");
        let keys: Vec<u64> = drawn[6..].iter().map(|&i| draw_key(9, &ids[i])).collect();
        assert!(keys.windows(2).all(|k| k[0] < k[1]));
        let smallest_low = (0..150).map(|i| draw_key(9, &ids[i])).min();
        assert_eq!(Some(keys[0]), smallest_low);
        // A larger draw extends a smaller one band by band.
        let more = stratified_draw(9, &pop, 40);
        assert!(drawn.iter().all(|i| more.contains(i)));
    }

    #[test]
    fn stratified_estimate_matches_a_hand_computation() {
        let population = [800, 100, 50, 30, 20];
        let mut labelled = Vec::new();
        labelled.extend(items(0, false, true, 4));
        labelled.extend(items(0, false, false, 36));
        labelled.extend(items(1, false, true, 1));
        labelled.extend(items(1, false, false, 4));
        labelled.extend(items(2, true, true, 2));
        labelled.extend(items(2, true, false, 2));
        labelled.extend(items(3, true, true, 2));
        labelled.extend(items(4, true, true, 2));
        let e = label_estimate(&population, &labelled).unwrap();
        // .8·.1 + .1·.2 + .05·.5 + .03·1 + .02·1
        assert!(close(e.rate, 0.175, 1e-12), "{e:?}");
        // Variance by hand: .64·.95·(5/42·37/42)/40 + .01·.95·(2/7·5/7)/5
        // + .0025·.92·.25/4 + .0009·(28/30)·.1875/2 + .0004·.9·.1875/2
        // = .0022381; half width 1.96·.04731 = .09272.
        assert!(close(e.lower, 0.08228, 1e-4), "{e:?}");
        assert!(close(e.upper, 0.26772, 1e-4), "{e:?}");
        assert_eq!(e.reviewed, 53);
    }

    #[test]
    fn nothing_reviewed_means_no_estimate() {
        assert_eq!(label_estimate(&[10, 0, 0, 0, 0], &[]), None);
        assert_eq!(corrected_count(&[10, 0, 0, 0, 0], 3, &[], 1), None);
    }

    #[test]
    fn a_fully_reviewed_band_is_known_exactly() {
        let population = [10, 0, 0, 0, 0];
        let mut labelled = items(0, false, true, 3);
        labelled.extend(items(0, false, false, 7));
        let e = label_estimate(&population, &labelled).unwrap();
        assert_eq!((e.rate, e.lower, e.upper), (0.3, 0.3, 0.3));
    }

    #[test]
    fn a_band_without_labels_widens_the_interval_by_its_weight() {
        let population = [50, 0, 0, 0, 50];
        let mut labelled = items(0, false, false, 50);
        let e = label_estimate(&population, &labelled).unwrap();
        // Band 4 borrows band 0's rate (0) and could be anything: [0, .5].
        assert_eq!((e.rate, e.lower, e.upper), (0.0, 0.0, 0.5));
        labelled.extend(items(4, true, true, 50));
        let e = label_estimate(&population, &labelled).unwrap();
        assert_eq!((e.rate, e.lower, e.upper), (0.5, 0.5, 0.5));
    }

    #[test]
    fn corrected_count_matches_a_hand_computation() {
        // Band 0 (weight .6): 2 missed, 1 false alarm, 7 right negatives.
        // Band 3 (weight .4): 8 caught, 2 false alarms.
        let population = [600, 0, 0, 400, 0];
        let mut labelled = items(0, false, true, 2);
        labelled.extend(items(0, true, false, 1));
        labelled.extend(items(0, false, false, 7));
        labelled.extend(items(3, true, true, 8));
        labelled.extend(items(3, true, false, 2));
        // TPR = .32/.44, FPR = .14/.56 = .25.
        let tpr = 0.32 / 0.44;
        let c = corrected_count(&population, 460, &labelled, 7).unwrap();
        assert!(close(c.rate, 0.21 / (tpr - 0.25), 1e-12), "{c:?}");
        assert!(close(c.rate, 0.44, 1e-12), "{c:?}");
        // Ten labels a band leave a wide interval, but not the whole range.
        assert!(
            c.lower < c.rate && c.rate < c.upper && c.upper < 1.0,
            "{c:?}"
        );
        assert_eq!(c.reviewed, 20);
        let c = corrected_count(&population, 300, &labelled, 7).unwrap();
        assert!(close(c.rate, 0.05 / (tpr - 0.25), 1e-12), "{c:?}");
        // Fewer flags than false alarms alone explain: clipped to 0.
        let c = corrected_count(&population, 100, &labelled, 7).unwrap();
        assert_eq!(c.rate, 0.0);
    }

    #[test]
    fn corrected_count_is_deterministic_per_seed() {
        let population = [600, 0, 0, 400, 0];
        let mut labelled = items(0, false, true, 2);
        labelled.extend(items(0, true, false, 1));
        labelled.extend(items(0, false, false, 7));
        labelled.extend(items(3, true, true, 8));
        labelled.extend(items(3, true, false, 2));
        let a = corrected_count(&population, 460, &labelled, 11);
        assert_eq!(a, corrected_count(&population, 460, &labelled, 11));
        assert_ne!(a, corrected_count(&population, 460, &labelled, 12));
    }

    #[test]
    fn a_model_no_better_than_chance_gives_no_corrected_count() {
        // Flags exactly as often among violating as among clean items.
        let population = [100, 0, 0, 0, 0];
        let mut labelled = items(0, true, true, 5);
        labelled.extend(items(0, false, true, 5));
        labelled.extend(items(0, true, false, 5));
        labelled.extend(items(0, false, false, 5));
        assert_eq!(corrected_count(&population, 50, &labelled, 1), None);
        // No violating label at all: TPR cannot be measured.
        let labelled = items(0, true, false, 5);
        assert_eq!(corrected_count(&population, 50, &labelled, 1), None);
    }

    /// A synthetic tenant: scores skewed low, violation likelier with the
    /// score, the model flagging at 0.5 with misses and false alarms.
    fn synthetic_tenant(rng: &mut Rng, size: usize) -> Vec<(String, f64, bool)> {
        (0..size)
            .map(|i| {
                let u = (rng.below(1_000_000) as f64) / 1_000_000.0;
                let score = u * u;
                let p_violate = 0.1 + 0.8 * score;
                let violates = (rng.below(1_000_000) as f64) / 1_000_000.0 < p_violate;
                (format!("t-{i}"), score, violates)
            })
            .collect()
    }

    #[test]
    fn intervals_cover_the_true_rate_in_a_deterministic_simulation() {
        let mut rng = Rng(0xc0ffee);
        let tenant = synthetic_tenant(&mut rng, 4000);
        let truth = tenant.iter().filter(|t| t.2).count() as f64 / tenant.len() as f64;
        let scores: Vec<(&str, f64)> = tenant.iter().map(|t| (t.0.as_str(), t.1)).collect();
        let population = band_population(scores.iter().map(|s| s.1));
        let flagged_total = tenant.iter().filter(|t| t.1 >= 0.5).count() as u64;
        let reps = 60;
        let (mut covered_label, mut covered_corrected) = (0, 0);
        for rep in 0..reps {
            let drawn = stratified_draw(rep, &scores, 300);
            assert_eq!(drawn.len(), 300);
            let labelled: Vec<LabelledItem> = drawn
                .iter()
                .map(|&i| LabelledItem {
                    band: band_of(tenant[i].1),
                    flagged: tenant[i].1 >= 0.5,
                    violates: tenant[i].2,
                })
                .collect();
            let e = label_estimate(&population, &labelled).unwrap();
            if e.lower <= truth && truth <= e.upper {
                covered_label += 1;
            }
            let c = corrected_count(&population, flagged_total, &labelled, rep).unwrap();
            if c.lower <= truth && truth <= c.upper {
                covered_corrected += 1;
            }
        }
        // Nominal 95%; 60 draws leave room for chance but not for a broken
        // interval (a Wald interval ignoring the weights covers far less).
        assert!(
            covered_label >= 52,
            "label estimate covered {covered_label}/{reps}"
        );
        assert!(
            covered_corrected >= 52,
            "corrected count covered {covered_corrected}/{reps}"
        );
    }
}
