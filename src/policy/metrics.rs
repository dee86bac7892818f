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
    let (mut best_t, mut best_f1) = (f32::INFINITY, 0.0f64);
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
        let f1 = ratio(2 * tp, tp + fp + positives);
        if f1 > best_f1 {
            (best_t, best_f1) = (t, f1);
        }
    }
    (best_t, best_f1)
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
