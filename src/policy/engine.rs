//! Scoring text against a compiled policy.
//!
//! Every phrase of every list (phrase detectors, both sides of proximity
//! detectors, context signals) goes into one Aho-Corasick DFA over the folded
//! text, so a text is scanned once however many lists the policy has. Matches
//! count only on whole words; the folded text separates words with single
//! spaces, so the boundary check is two byte comparisons.
//!
//! How scores combine (also in the README):
//! - a phrase, regex or proximity detector scores its `weight` when it finds
//!   anything; a classifier scores `weight × p`, where `p` is its probability
//!   recalibrated so that the model's chosen threshold (`midpoint`) is 0.5;
//! - a category's raw score is the noisy-OR of its detectors,
//!   `1 − Π(1 − sᵢ)`, so independent signals reinforce each other but the
//!   score never exceeds 1;
//! - the context score is the noisy-OR of the context signals that fire; a
//!   context-sensitive category's score is `raw × (1 − dampening × context)`;
//! - a category is flagged when its score reaches its `flag_threshold`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use serde::{Deserialize, Serialize};

use super::load::{DetectorKind, Policy};
use super::normalize::{normalize, Normalized};
use crate::domain::Severity;

/// Most evidence spans kept per detector.
const MAX_SPANS_PER_DETECTOR: usize = 5;

/// The judgement on one text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// Content hash of the policy and model files that produced it.
    pub policy_version: String,
    /// Score in [0, 1] for every category.
    pub scores: BTreeMap<String, f32>,
    /// Categories whose score reached their flag threshold, most severe first.
    pub flagged: Vec<Flag>,
    /// What the detectors found, as spans of the original text.
    pub evidence: Vec<Evidence>,
    /// Context score in [0, 1] (reporting, condemnation, counter-speech).
    pub context: f32,
    /// Ids of the context signals that fired.
    pub context_signals: Vec<String>,
}

impl Verdict {
    /// Whether `category` was flagged.
    pub fn is_flagged(&self, category: &str) -> bool {
        self.flagged.iter().any(|f| f.category == category)
    }

    /// The highest score among flagged categories, if any.
    pub fn max_flagged_score(&self) -> Option<f32> {
        self.flagged.iter().map(|f| f.score).reduce(f32::max)
    }
}

/// A category that a text was flagged for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Flag {
    /// Category id.
    pub category: String,
    /// The category's severity.
    pub severity: Severity,
    /// The category score.
    pub score: f32,
}

/// One piece of evidence: what a detector matched, where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// Category id.
    pub category: String,
    /// Detector id.
    pub detector: String,
    /// Byte offset of the start in the original text.
    pub start: usize,
    /// Byte offset of the end in the original text.
    pub end: usize,
    /// `original[start..end]`.
    pub text: String,
}

/// What a pattern of the shared automaton is used for.
#[derive(Debug, Clone, Copy)]
enum Use {
    Phrase { detector: usize },
    First { detector: usize },
    Second { detector: usize },
    Context { signal: usize },
}

#[derive(Debug)]
struct CompiledDetector {
    category: usize,
    id: String,
    weight: f32,
    kind: Compiled,
}

#[derive(Debug)]
enum Compiled {
    Lexical,
    Proximity {
        within: usize,
    },
    Regex(regex::Regex),
    /// A model and the log-odds shift that puts its midpoint at 0.5.
    Classifier(Arc<super::model::LinearModel>, f32),
}

/// A policy compiled for scoring. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Engine {
    policy: Policy,
    automaton: Option<AhoCorasick>,
    /// For each automaton pattern, what it is used for.
    uses: Vec<Vec<Use>>,
    detectors: Vec<CompiledDetector>,
}

/// Per-text scratch space for one scan.
#[derive(Default)]
struct Hits {
    spans: Vec<Vec<(usize, usize)>>,
    first: Vec<Vec<(usize, usize)>>,
    second: Vec<Vec<(usize, usize)>>,
    context: Vec<bool>,
}

/// Why a policy could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the phrase automaton: {0}")]
pub struct CompileError(String);

impl Engine {
    /// Compiles a validated policy.
    pub fn compile(policy: Policy) -> Result<Self, CompileError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut uses: Vec<Vec<Use>> = Vec::new();
        let mut add =
            |phrase: &str, u: Use, patterns: &mut Vec<String>, uses: &mut Vec<Vec<Use>>| {
                let id = *index.entry(phrase.to_string()).or_insert_with(|| {
                    patterns.push(phrase.to_string());
                    uses.push(Vec::new());
                    patterns.len() - 1
                });
                uses[id].push(u);
            };
        let mut detectors = Vec::new();
        for (c, cat) in policy.categories.iter().enumerate() {
            for det in &cat.detectors {
                let d = detectors.len();
                let kind = match &det.kind {
                    DetectorKind::Phrases(list) => {
                        for p in list {
                            add(p, Use::Phrase { detector: d }, &mut patterns, &mut uses);
                        }
                        Compiled::Lexical
                    }
                    DetectorKind::Proximity {
                        first,
                        second,
                        within,
                    } => {
                        for p in first {
                            add(p, Use::First { detector: d }, &mut patterns, &mut uses);
                        }
                        for p in second {
                            add(p, Use::Second { detector: d }, &mut patterns, &mut uses);
                        }
                        Compiled::Proximity { within: *within }
                    }
                    DetectorKind::Regex(re) => Compiled::Regex(re.clone()),
                    DetectorKind::Classifier {
                        model, midpoint, ..
                    } => Compiled::Classifier(model.clone(), (midpoint / (1.0 - midpoint)).ln()),
                };
                detectors.push(CompiledDetector {
                    category: c,
                    id: det.id.clone(),
                    weight: det.weight,
                    kind,
                });
            }
        }
        for (s, signal) in policy.context.signals.iter().enumerate() {
            for p in &signal.phrases {
                add(p, Use::Context { signal: s }, &mut patterns, &mut uses);
            }
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            // The DFA kind is several times faster than the NFA that the
            // automatic choice picks for a lexicon of a few hundred phrases.
            Some(
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::DFA))
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(|e| CompileError(e.to_string()))?,
            )
        };
        Ok(Engine {
            policy,
            automaton,
            uses,
            detectors,
        })
    }

    /// The policy this engine was compiled from.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Content hash of the policy and model files.
    pub fn version(&self) -> &str {
        &self.policy.version
    }

    /// Every phrase of the policy's lists, folded; what a bare scan would look for.
    pub fn phrases(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(ac) = &self.automaton {
            out.reserve(ac.patterns_len());
        }
        for cat in &self.policy.categories {
            for det in &cat.detectors {
                match &det.kind {
                    DetectorKind::Phrases(l) => out.extend(l.iter().cloned()),
                    DetectorKind::Proximity { first, second, .. } => {
                        out.extend(first.iter().cloned());
                        out.extend(second.iter().cloned());
                    }
                    _ => {}
                }
            }
        }
        for s in &self.policy.context.signals {
            out.extend(s.phrases.iter().cloned());
        }
        out.sort();
        out.dedup();
        out
    }

    /// Scores one text.
    pub fn score(&self, original: &str) -> Verdict {
        let folded = normalize(original);
        self.score_folded(original, &folded)
    }

    /// Scores a text that has already been folded.
    pub fn score_folded(&self, original: &str, folded: &Normalized) -> Verdict {
        let n = self.detectors.len();
        let mut hits = Hits {
            spans: vec![Vec::new(); n],
            first: vec![Vec::new(); n],
            second: vec![Vec::new(); n],
            context: vec![false; self.policy.context.signals.len()],
        };
        self.scan(folded, &mut hits);

        let mut det_scores = vec![0f32; n];
        for (d, det) in self.detectors.iter().enumerate() {
            match &det.kind {
                Compiled::Lexical => {
                    if !hits.spans[d].is_empty() {
                        det_scores[d] = det.weight;
                    }
                }
                Compiled::Proximity { within } => {
                    let pairs = proximity_pairs(folded, &hits.first[d], &hits.second[d], *within);
                    if !pairs.is_empty() {
                        det_scores[d] = det.weight;
                        hits.spans[d] = pairs;
                    }
                }
                Compiled::Regex(re) => {
                    let spans: Vec<(usize, usize)> = re
                        .find_iter(folded.text())
                        .filter(|m| !m.is_empty())
                        .take(MAX_SPANS_PER_DETECTOR)
                        .map(|m| (m.start(), m.end()))
                        .collect();
                    if !spans.is_empty() {
                        det_scores[d] = det.weight;
                        hits.spans[d] = spans;
                    }
                }
                Compiled::Classifier(model, shift) => {
                    let p = super::model::sigmoid(model.margin_folded(folded.text()) - shift);
                    det_scores[d] = det.weight * p;
                    let cat = &self.policy.categories[det.category];
                    if det_scores[d] >= cat.flag_threshold * 0.5 {
                        hits.spans[d] = model
                            .explain(folded, 3)
                            .into_iter()
                            .map(|(s, e, _)| (s, e))
                            .collect();
                    }
                }
            }
        }

        let signals = &self.policy.context.signals;
        let mut keep = 1.0f32;
        let mut context_signals = Vec::new();
        for (s, fired) in hits.context.iter().enumerate() {
            if *fired {
                keep *= 1.0 - signals[s].weight;
                context_signals.push(signals[s].id.clone());
            }
        }
        let context = 1.0 - keep;

        let mut scores = BTreeMap::new();
        let mut flagged = Vec::new();
        let mut evidence = Vec::new();
        for (c, cat) in self.policy.categories.iter().enumerate() {
            let mut keep = 1.0f32;
            for (d, det) in self.detectors.iter().enumerate() {
                if det.category == c {
                    keep *= 1.0 - det_scores[d];
                }
            }
            let mut score = 1.0 - keep;
            if cat.context_sensitive {
                score *= 1.0 - self.policy.context.dampening * context;
            }
            let score = score.clamp(0.0, 1.0);
            scores.insert(cat.id.clone(), score);
            if score > 0.0 && score >= cat.flag_threshold {
                flagged.push(Flag {
                    category: cat.id.clone(),
                    severity: cat.severity,
                    score,
                });
            }
            if score > 0.0 {
                for (d, det) in self.detectors.iter().enumerate() {
                    if det.category != c || det_scores[d] <= 0.0 {
                        continue;
                    }
                    for &(s, e) in hits.spans[d].iter().take(MAX_SPANS_PER_DETECTOR) {
                        let (os, oe) = folded.original_span(s, e);
                        if oe > os {
                            evidence.push(Evidence {
                                category: cat.id.clone(),
                                detector: det.id.clone(),
                                start: os,
                                end: oe,
                                text: original.get(os..oe).unwrap_or_default().to_string(),
                            });
                        }
                    }
                }
            }
        }
        flagged.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(b.score.total_cmp(&a.score))
        });
        Verdict {
            policy_version: self.policy.version.clone(),
            scores,
            flagged,
            evidence,
            context,
            context_signals,
        }
    }

    fn scan(&self, folded: &Normalized, hits: &mut Hits) {
        let Some(ac) = &self.automaton else { return };
        let text = folded.text().as_bytes();
        for m in ac.find_overlapping_iter(folded.text()) {
            let (s, e) = (m.start(), m.end());
            let whole_word =
                (s == 0 || text[s - 1] == b' ') && (e == text.len() || text[e] == b' ');
            if !whole_word {
                continue;
            }
            for u in &self.uses[m.pattern().as_usize()] {
                match *u {
                    Use::Phrase { detector } => push_span(&mut hits.spans[detector], (s, e)),
                    Use::First { detector } => push_span(&mut hits.first[detector], (s, e)),
                    Use::Second { detector } => push_span(&mut hits.second[detector], (s, e)),
                    Use::Context { signal } => hits.context[signal] = true,
                }
            }
        }
    }
}

fn push_span(spans: &mut Vec<(usize, usize)>, span: (usize, usize)) {
    if spans.len() < 64 {
        spans.push(span);
    }
}

/// Spans joining a `first` term to a `second` term at most `within` words apart.
fn proximity_pairs(
    folded: &Normalized,
    first: &[(usize, usize)],
    second: &[(usize, usize)],
    within: usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for &(fs, fe) in first {
        let fw = folded.word_index(fs);
        let fw_end = folded.word_index(fe.saturating_sub(1));
        for &(ss, se) in second {
            // The two terms must be different words.
            if ss < fe && fs < se {
                continue;
            }
            let sw = folded.word_index(ss);
            let sw_end = folded.word_index(se.saturating_sub(1));
            let gap = if sw > fw_end {
                sw - fw_end
            } else {
                fw.saturating_sub(sw_end)
            };
            if gap <= within {
                out.push((fs.min(ss), fe.max(se)));
                if out.len() >= MAX_SPANS_PER_DETECTOR {
                    return out;
                }
            }
        }
    }
    out
}
