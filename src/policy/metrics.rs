//! Quality figures for a detector: confusion matrix, precision, recall, F1,
//! average precision, and the share flagged per value of a grouping column
//! (how "profanity is not hate" is shown: few of Davidson's merely offensive
//! tweets may be flagged).

use std::collections::BTreeMap;

use serde::Serialize;

/// Counts of a binary decision against the truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// Flagged and positive.
    pub tp: u64,
    /// Flagged but negative.
    pub fp: u64,
    /// Missed positives.
    pub r#fn: u64,
    /// Negatives left alone.
    pub tn: u64,
}

impl Confusion {
    /// Counts decisions `score >= threshold` against `labels`.
    pub fn at(scores: &[f32], labels: &[bool], threshold: f32) -> Self {
        let mut c = Self::default();
        for (&s, &l) in scores.iter().zip(labels) {
            match (s >= threshold, l) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.r#fn += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }

    /// tp / (tp + fp); 0 when nothing is flagged.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// tp / (tp + fn); 0 when there are no positives.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.r#fn)
    }

    /// The harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.r#fn)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Average precision (area under the precision-recall curve, step-wise):
/// the mean of the precision at the rank of every positive, ties broken
/// pessimistically (negatives first among equal scores).
pub fn average_precision(scores: &[f32], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    order.sort_by(|&a, &b| {
        scores[b]
            .total_cmp(&scores[a])
            .then(labels[a].cmp(&labels[b]))
    });
    let positives = order.iter().filter(|&&i| labels[i]).count();
    if positives == 0 {
        return 0.0;
    }
    let (mut tp, mut sum) = (0u64, 0.0f64);
    for (rank, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
            sum += tp as f64 / (rank + 1) as f64;
        }
    }
    sum / positives as f64
}

/// The threshold with the best F1 on these scores (among the scores
/// themselves), with its F1; ties go to the higher threshold. `limits` caps
/// the share flagged of texts whose group (same index in `groups`) has the
/// given value, e.g. `("1", 0.04)`: at most 4% of group "1" flagged.
pub fn best_f1_threshold(
    scores: &[f32],
    labels: &[bool],
    groups: &[Option<String>],
    limits: &[(String, f64)],
) -> (f32, f64) {
    let mut best = (f32::INFINITY, 0.0f64);
    sweep(scores, labels, groups, limits, |t, tp, fp, positives| {
        let f1 = ratio(2 * tp, tp + fp + positives);
        if f1 > best.1 {
            best = (t, f1);
        }
    });
    best
}

/// The lowest threshold whose precision is at least `min_precision` (the
/// most recall at that precision), under the same group caps as
/// [`best_f1_threshold`], with the recall it reaches; `None` when no
/// threshold reaches the precision.
pub fn threshold_at_precision(
    scores: &[f32],
    labels: &[bool],
    groups: &[Option<String>],
    limits: &[(String, f64)],
    min_precision: f64,
) -> Option<(f32, f64)> {
    let mut best: Option<(f32, f64)> = None;
    sweep(scores, labels, groups, limits, |t, tp, fp, positives| {
        let recall = ratio(tp, positives);
        if tp > 0 && ratio(tp, tp + fp) >= min_precision && best.is_none_or(|(_, r)| recall > r) {
            best = Some((t, recall));
        }
    });
    best
}

/// The threshold with the best mean F1 over several sources, each source's
/// F1 computed on its own rows (`source` gives a row's source; a source
/// without both positive and negative rows says nothing about where to draw
/// the line and is left out of the mean), under the same group caps as
/// [`best_f1_threshold`]. A threshold that suits every source, not the one
/// that suits the largest: what carries to a platform none of them is.
pub fn best_mean_f1_threshold(
    scores: &[f32],
    labels: &[bool],
    source: &[usize],
    groups: &[Option<String>],
    limits: &[(String, f64)],
) -> (f32, f64) {
    let n = scores.len().min(labels.len()).min(source.len());
    let k = source[..n].iter().max().map_or(0, |m| m + 1);
    let (mut positives, mut rows) = (vec![0u64; k], vec![0u64; k]);
    for i in 0..n {
        positives[source[i]] += u64::from(labels[i]);
        rows[source[i]] += 1;
    }
    let counts = |s: usize| positives[s] > 0 && positives[s] < rows[s];
    let counted = (0..k).filter(|&s| counts(s)).count();
    if counted == 0 {
        return best_f1_threshold(scores, labels, groups, limits);
    }
    let counted = counted as f64;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (vec![0u64; k], vec![0u64; k]);
    let mut best = (f32::INFINITY, 0.0f64);
    // The group caps, checked with the pooled sweep: the lowest threshold
    // it visits is the lowest allowed.
    let mut lowest = f32::INFINITY;
    sweep(scores, labels, groups, limits, |t, _, _, _| lowest = t);
    let mut j = 0;
    while j < order.len() {
        let t = scores[order[j]];
        if t < lowest {
            break;
        }
        while j < order.len() && scores[order[j]] == t {
            let i = order[j];
            if labels[i] {
                tp[source[i]] += 1;
            } else {
                fp[source[i]] += 1;
            }
            j += 1;
        }
        let mean = (0..k)
            .filter(|&s| counts(s))
            .map(|s| ratio(2 * tp[s], tp[s] + fp[s] + positives[s]))
            .sum::<f64>()
            / counted;
        if mean > best.1 {
            best = (t, mean);
        }
    }
    best
}

/// Walks the thresholds from the highest score down, calling
/// `visit(threshold, tp, fp, positives)` after flagging every text with that
/// score, and stops where a group cap would be broken.
fn sweep(
    scores: &[f32],
    labels: &[bool],
    groups: &[Option<String>],
    limits: &[(String, f64)],
    mut visit: impl FnMut(f32, u64, u64, u64),
) {
    let n = scores.len().min(labels.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = order.iter().filter(|&&i| labels[i]).count() as u64;
    let group_of = |i: usize| -> Option<usize> {
        let g = groups.get(i)?.as_deref()?;
        limits.iter().position(|(v, _)| v == g)
    };
    let mut totals = vec![0u64; limits.len()];
    for i in 0..n {
        if let Some(k) = group_of(i) {
            totals[k] += 1;
        }
    }
    let mut flagged = vec![0u64; limits.len()];
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut k = 0;
    while k < order.len() {
        let t = scores[order[k]];
        // Flag every text with this score at once.
        while k < order.len() && scores[order[k]] == t {
            let i = order[k];
            if labels[i] {
                tp += 1;
            } else {
                fp += 1;
            }
            if let Some(g) = group_of(i) {
                flagged[g] += 1;
            }
            k += 1;
        }
        let within = limits
            .iter()
            .enumerate()
            .all(|(g, (_, max))| ratio(flagged[g], totals[g]) <= *max);
        if !within {
            // Lower thresholds only flag more.
            break;
        }
        visit(t, tp, fp, positives);
    }
}

/// The area under the ROC curve: the chance that a random positive scores
/// above a random negative (ties count half).
pub fn roc_auc(scores: &[f32], labels: &[bool]) -> f64 {
    let n = scores.len().min(labels.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = order.iter().filter(|&&i| labels[i]).count() as f64;
    let negatives = n as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    // Sum of the positives' ranks, tied scores sharing their mean rank.
    let (mut rank_sum, mut k) = (0.0f64, 0usize);
    while k < n {
        let mut j = k;
        while j < n && scores[order[j]] == scores[order[k]] {
            j += 1;
        }
        let mean_rank = (k + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * order[k..j].iter().filter(|&&i| labels[i]).count() as f64;
        k = j;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Platt scaling: the `(a, b)` for which `sigmoid(a·z + b)` best predicts
/// the labels from the logits `z` (maximum likelihood with Platt's smoothed
/// targets, so that separable data stays finite). Newton's method with a
/// backtracking line search: a full Newton step from `(1, 0)` can overshoot
/// and diverge when the logits sit far from zero in a narrow band (a model
/// whose every score is near 0.03), so a step is halved until the
/// likelihood improves, as in Lin, Lin and Weng's note on Platt's method.
pub fn platt(logits: &[f32], labels: &[bool]) -> (f64, f64) {
    let n = logits.len().min(labels.len());
    let pos = labels[..n].iter().filter(|&&l| l).count() as f64;
    let neg = n as f64 - pos;
    let (hi, lo) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
    let target = |l: bool| if l { hi } else { lo };
    // The negative log-likelihood, computed without overflow:
    // log(1 + e^f) - t·f for f = a·z + b.
    let loss = |a: f64, b: f64| -> f64 {
        logits[..n]
            .iter()
            .zip(&labels[..n])
            .map(|(&z, &l)| {
                let f = a * f64::from(z) + b;
                f.max(0.0) + (-f.abs()).exp().ln_1p() - target(l) * f
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&z, &l) in logits[..n].iter().zip(&labels[..n]) {
            let z = f64::from(z);
            let p = 1.0 / (1.0 + (-(a * z + b)).exp());
            let (d, w) = (p - target(l), p * (1.0 - p));
            ga += d * z;
            gb += d;
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        if da.abs() < 1e-9 && db.abs() < 1e-9 {
            break;
        }
        // The largest step of 1, 1/2, 1/4, … that lowers the loss enough
        // (Armijo's rule on the Newton direction).
        let slope = ga * da + gb * db;
        let mut step = 1.0;
        let moved = loop {
            let (na, nb) = (a - step * da, b - step * db);
            let next = loss(na, nb);
            if next.is_finite() && next <= current - 1e-4 * step * slope {
                (a, b, current) = (na, nb, next);
                break true;
            }
            step /= 2.0;
            if step < 1e-10 {
                break false;
            }
        };
        if !moved {
            break;
        }
    }
    (a, b)
}

/// One band of a reliability table: texts whose score fell in `[low, high)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Band {
    /// Lowest score of the band.
    pub low: f32,
    /// Highest score of the band (exclusive, but 1.0 counts in the last band).
    pub high: f32,
    /// Texts in the band.
    pub texts: u64,
    /// Their mean score: the rate a calibrated score predicts.
    pub predicted: f64,
    /// The share of them that are positive.
    pub observed: f64,
}

/// Predicted against observed rate in ten equal score bands.
pub fn reliability(scores: &[f32], labels: &[bool]) -> Vec<Band> {
    let mut bands: Vec<Band> = (0..10)
        .map(|b| Band {
            low: b as f32 / 10.0,
            high: (b + 1) as f32 / 10.0,
            texts: 0,
            predicted: 0.0,
            observed: 0.0,
        })
        .collect();
    for (&s, &l) in scores.iter().zip(labels) {
        let b = ((s.clamp(0.0, 1.0) * 10.0) as usize).min(9);
        bands[b].texts += 1;
        bands[b].predicted += f64::from(s);
        bands[b].observed += f64::from(u8::from(l));
    }
    for b in &mut bands {
        if b.texts > 0 {
            b.predicted /= b.texts as f64;
            b.observed /= b.texts as f64;
        }
    }
    bands
}

/// The reliability table as printed lines.
pub fn reliability_lines(bands: &[Band]) -> Vec<String> {
    bands
        .iter()
        .filter(|b| b.texts > 0)
        .map(|b| {
            format!(
                "score {:.1}-{:.1}: {:>6} texts, predicted {:.3}, observed {:.3}",
                b.low, b.high, b.texts, b.predicted, b.observed
            )
        })
        .collect()
}

/// How many texts of one group were flagged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Flagged {
    /// Flagged texts.
    pub flagged: u64,
    /// All texts of the group.
    pub total: u64,
}

impl Flagged {
    /// flagged / total.
    pub fn rate(&self) -> f64 {
        ratio(self.flagged, self.total)
    }
}

/// The share of texts flagged (`score >= threshold`) per group value.
pub fn flag_rates<'a>(
    scores: &[f32],
    groups: impl IntoIterator<Item = &'a str>,
    threshold: f32,
) -> BTreeMap<String, Flagged> {
    let mut out: BTreeMap<String, Flagged> = BTreeMap::new();
    for (&s, g) in scores.iter().zip(groups) {
        let e = out.entry(g.to_string()).or_default();
        e.total += 1;
        e.flagged += u64::from(s >= threshold);
    }
    out
}

/// The figures of one evaluation, as printed and recorded in sidecars.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Texts scored.
    pub texts: usize,
    /// Positives among them.
    pub positives: usize,
    /// The decision threshold used.
    pub threshold: f32,
    /// The confusion matrix at that threshold.
    pub confusion: Confusion,
    /// Precision at the threshold.
    pub precision: f64,
    /// Recall at the threshold.
    pub recall: f64,
    /// F1 at the threshold.
    pub f1: f64,
    /// Average precision (PR-AUC) of the scores.
    pub average_precision: f64,
    /// Flag rate per value of the grouping column, if there was one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub flag_rates: BTreeMap<String, Flagged>,
}

impl Report {
    /// Computes every figure; `groups` may be empty.
    pub fn new(scores: &[f32], labels: &[bool], groups: &[String], threshold: f32) -> Self {
        let confusion = Confusion::at(scores, labels, threshold);
        Self {
            texts: scores.len(),
            positives: labels.iter().filter(|&&l| l).count(),
            threshold,
            confusion,
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            average_precision: average_precision(scores, labels),
            flag_rates: if groups.is_empty() {
                BTreeMap::new()
            } else {
                flag_rates(scores, groups.iter().map(String::as_str), threshold)
            },
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.confusion;
        write!(
            f,
            "texts {} positives {} threshold {:.3}: P {:.3} R {:.3} F1 {:.3} AP {:.3} (tp {} fp {} fn {} tn {})",
            self.texts,
            self.positives,
            self.threshold,
            self.precision,
            self.recall,
            self.f1,
            self.average_precision,
            c.tp,
            c.fp,
            c.r#fn,
            c.tn
        )?;
        for (g, fl) in &self.flag_rates {
            write!(
                f,
                "\n  group {g}: flagged {}/{} = {:.2}%",
                fl.flagged,
                fl.total,
                100.0 * fl.rate()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_on_a_hand_computed_example() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.2];
        let labels = [true, false, true, false, true, false];
        let c = Confusion::at(&scores, &labels, 0.5);
        assert_eq!(
            c,
            Confusion {
                tp: 2,
                fp: 2,
                r#fn: 1,
                tn: 1
            }
        );
        assert!((c.precision() - 0.5).abs() < 1e-12);
        assert!((c.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.f1() - 4.0 / 7.0).abs() < 1e-12);
        // Positives at ranks 1, 3, 5: (1/1 + 2/3 + 3/5) / 3.
        let ap = average_precision(&scores, &labels);
        assert!((ap - (1.0 + 2.0 / 3.0 + 0.6) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn best_threshold_maximises_f1() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.2];
        let labels = [true, true, false, false, true, false];
        // At 0.8: P 1, R 2/3, F1 0.8; at 0.4: P 3/5, R 1, F1 0.75.
        let (t, f1) = best_f1_threshold(&scores, &labels, &[], &[]);
        assert_eq!(t, 0.8);
        assert!((f1 - 0.8).abs() < 1e-12);
        // Capping the flag rate of group "n" at 0 forbids flagging 0.7.
        let groups: Vec<Option<String>> = ["p", "p", "n", "n", "p", "n"]
            .iter()
            .map(|g| Some(g.to_string()))
            .collect();
        let (t, _) = best_f1_threshold(&scores, &labels, &groups, &[("n".into(), 0.0)]);
        assert_eq!(t, 0.8);
    }

    #[test]
    fn threshold_at_precision_keeps_the_most_recall_at_that_precision() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.2];
        let labels = [true, true, false, false, true, false];
        // At 0.8 precision is 1 (recall 2/3); at 0.4, 3/5.
        assert_eq!(
            threshold_at_precision(&scores, &labels, &[], &[], 0.9),
            Some((0.8, 2.0 / 3.0))
        );
        assert_eq!(
            threshold_at_precision(&scores, &labels, &[], &[], 0.6),
            Some((0.4, 1.0))
        );
        let none = [false, false, true];
        assert_eq!(
            threshold_at_precision(&[0.9, 0.8, 0.1], &none, &[], &[], 0.9),
            None
        );
    }

    #[test]
    fn mean_f1_threshold_weighs_each_source_alike() {
        // Source 0 (large) wants a high threshold, source 1 a low one.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.2, 0.1, 0.05];
        let labels = [true, false, false, false, false, true, true, false, true];
        let source = [0, 0, 0, 0, 0, 1, 1, 1, 2];
        let (t, f1) = best_mean_f1_threshold(&scores, &labels, &source, &[], &[]);
        // At 0.9: F1 1 and 0, mean 0.5; at 0.2: 1/3 and 1, mean 2/3; at
        // 0.1: 1/3 and 0.8. Source 2 has no negative row and is not counted.
        assert_eq!(t, 0.2);
        assert!((f1 - (1.0 / 3.0 + 1.0) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn roc_auc_counts_ordered_pairs_and_halves_ties() {
        // Pairs (pos, neg): 0.9>0.8, 0.9>0.2, 0.4<0.8, 0.4>0.2 -> 3/4.
        let auc = roc_auc(&[0.9, 0.8, 0.4, 0.2], &[true, false, true, false]);
        assert!((auc - 0.75).abs() < 1e-12);
        let tied = roc_auc(&[0.5, 0.5], &[true, false]);
        assert!((tied - 0.5).abs() < 1e-12);
    }

    #[test]
    fn platt_scaling_recovers_a_known_slope_and_offset() {
        // Labels drawn so that P(y | z) = sigmoid(2z - 1) exactly in expectation.
        let mut z = Vec::new();
        let mut y = Vec::new();
        for i in 0..2000 {
            let x = (i % 200) as f32 / 25.0 - 4.0;
            let p = 1.0 / (1.0 + (-(2.0 * f64::from(x) - 1.0)).exp());
            // Ten copies of each x, positives in proportion to p.
            let k = i / 200;
            z.push(x);
            y.push((k as f64) < (p * 10.0).round());
        }
        let (a, b) = platt(&z, &y);
        assert!((a - 2.0).abs() < 0.3, "a = {a}");
        assert!((b + 1.0).abs() < 0.3, "b = {b}");
    }

    /// Scores in a narrow band far from zero, as a model gives whose every
    /// probability is near 0.03: plain Newton steps from `(1, 0)` overshoot
    /// there and ran off to a slope of about -900.
    #[test]
    fn platt_scaling_converges_on_scores_in_a_narrow_band_far_from_zero() {
        let mut z = Vec::new();
        let mut y = Vec::new();
        for i in 0..400 {
            let x = -3.6 + (i % 40) as f32 * 0.005;
            z.push(x);
            // A third positive, a little more often at the top of the band.
            y.push(i % 3 == 0 || (i % 40 > 35 && i % 2 == 0));
        }
        let (a, b) = platt(&z, &y);
        let rate = y.iter().filter(|&&l| l).count() as f64 / y.len() as f64;
        let mean_p = z
            .iter()
            .map(|&x| 1.0 / (1.0 + (-(a * f64::from(x) + b)).exp()))
            .sum::<f64>()
            / z.len() as f64;
        assert!(a.is_finite() && b.is_finite(), "a = {a}, b = {b}");
        assert!(
            a > 0.0,
            "a higher score must not mean a lower probability: a = {a}"
        );
        // At the maximum of the likelihood the mean probability matches the
        // (smoothed) rate of positives.
        assert!(
            (mean_p - rate).abs() < 0.01,
            "mean {mean_p} against rate {rate}"
        );
    }

    #[test]
    fn reliability_bands_average_scores_and_labels() {
        let bands = reliability(&[0.05, 0.15, 0.12, 1.0], &[false, true, false, true]);
        assert_eq!(bands[0].texts, 1);
        assert_eq!(bands[1].texts, 2);
        assert!((bands[1].predicted - 0.135).abs() < 1e-6);
        assert!((bands[1].observed - 0.5).abs() < 1e-12);
        assert_eq!(bands[9].texts, 1);
    }

    #[test]
    fn flag_rates_count_per_group() {
        let scores = [0.9, 0.1, 0.6, 0.2];
        let groups = ["1", "1", "2", "1"];
        let r = flag_rates(&scores, groups, 0.5);
        assert_eq!(
            r["1"],
            Flagged {
                flagged: 1,
                total: 3
            }
        );
        assert_eq!(r["2"].rate(), 1.0);
    }
}
