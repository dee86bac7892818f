//! Scoring text against a compiled policy.
//!
//! Every phrase of every list (phrase detectors, both sides of proximity
//! detectors, context signals) goes into one Aho-Corasick DFA over the folded
//! text, so a text is scanned once however many lists the policy has. Matches
//! count only on whole words; the folded text separates words with single
//! spaces, so the boundary check is two byte comparisons. The same scan
//! tells whether a regular expression can match at all: the words its
//! matches must start with (see [`regex_first_words`]) are patterns of the
//! automaton too, so most texts never run it.
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
//!   a signal kept to some categories (`categories`) adds to their context
//!   alone, and only where their models alone found something;
//! - a category is flagged when its score reaches its `flag_threshold`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::{dfa::DFA, Anchored, MatchKind};
use serde::{Deserialize, Serialize};

use super::embeddings::Terms;
use super::features::{FeatureSpec, Group, Walked};
use super::load::{DetectorKind, Policy};
use super::normalize::{normalize, normalize_into, Normalized};
use crate::domain::Severity;

/// Most evidence spans kept per detector.
const MAX_SPANS_PER_DETECTOR: usize = 5;

/// The judgement on one text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Verdict {
    /// Content hash of the policy and model files that produced it.
    #[schema(value_type = String)]
    pub policy_version: Arc<str>,
    /// Score in [0, 1] for every category.
    #[schema(value_type = BTreeMap<String, f32>)]
    pub scores: BTreeMap<Arc<str>, f32>,
    /// Categories whose score reached their flag threshold, most severe first.
    pub flagged: Vec<Flag>,
    /// What the detectors found, as spans of the original text.
    pub evidence: Vec<Evidence>,
    /// Context score in [0, 1] (reporting, condemnation, counter-speech) of
    /// the signals that lower every context-sensitive category; a signal
    /// kept to some categories lowers only those and is not counted here.
    pub context: f32,
    /// Ids of the context signals that fired, kept to some categories or not.
    pub context_signals: Vec<String>,
}

impl Verdict {
    /// Whether `category` was flagged.
    pub fn is_flagged(&self, category: &str) -> bool {
        self.flagged.iter().any(|f| &*f.category == category)
    }

    /// The highest score among flagged categories, if any.
    pub fn max_flagged_score(&self) -> Option<f32> {
        self.flagged.iter().map(|f| f.score).reduce(f32::max)
    }
}

/// A category that a text was flagged for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Flag {
    /// Category id.
    #[schema(value_type = String)]
    pub category: Arc<str>,
    /// The category's severity.
    pub severity: Severity,
    /// The category score.
    pub score: f32,
}

/// One piece of evidence: what a detector matched, where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Evidence {
    /// Category id.
    #[schema(value_type = String)]
    pub category: Arc<str>,
    /// Detector id.
    #[schema(value_type = String)]
    pub detector: Arc<str>,
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
    Phrase {
        detector: usize,
    },
    First {
        detector: usize,
    },
    Second {
        detector: usize,
    },
    /// A phrase of a plain signal; `placed`: where it stands matters (see
    /// [`Engine::discount_phrases_in_evidence`]), as it does unless the
    /// signal reads the evidence itself.
    Context {
        signal: usize,
        placed: bool,
    },
    /// A phrase of a signal that judges a quotation or denies a clause:
    /// where it stands is checked once the detectors have run.
    Judgement {
        signal: usize,
    },
    /// A phrase that puts a claim in someone else's mouth, read by a signal
    /// that judges a quotation.
    Attribution {
        signal: usize,
    },
    /// A phrase of which one must also stand in the text for the signal to
    /// fire (its `needs`).
    Needed {
        signal: usize,
    },
    /// A phrase that keeps the signal from firing where it stands (its
    /// `unless`).
    Unless {
        signal: usize,
    },
    /// A word that a regular expression's matches may start with: sets bit
    /// `bit` of the scan's triggers.
    Trigger {
        bit: u32,
    },
}

#[derive(Debug)]
struct CompiledDetector {
    category: usize,
    id: Arc<str>,
    weight: f32,
    kind: Compiled,
    /// Detectors (indices) that must all have found something for this one
    /// to count.
    requires: Vec<usize>,
}

#[derive(Debug)]
enum Compiled {
    Lexical,
    Proximity {
        within: usize,
        ordered: bool,
    },
    /// A regular expression, and the bit of the scan's triggers that says a
    /// text has a word its matches must start with (none: always run).
    Regex(regex::Regex, Option<u32>),
    /// A model, the log-odds shift that puts its midpoint at 0.5, and where
    /// its weights sit in the engine's banks.
    Classifier {
        model: Arc<super::model::LinearModel>,
        shift: f32,
        bank: usize,
        slot: usize,
    },
}

/// Most classifiers one bank scores in a single pass.
const BANK_WIDTH: usize = 4;

/// Classifiers that read the same features, scored in one hashing pass over
/// the text with their weights interleaved and quantised to 16 bits (each
/// model's largest weight maps to ±32767; the rounding moves a margin by far
/// less than any threshold step).
#[derive(Debug)]
struct Bank {
    spec: FeatureSpec,
    /// Bucket `j` of model `m` at `table[2 * j * width + m]`, and its
    /// negation (for features that the sign bit flips) right after, at
    /// `table[(2 * j + 1) * width + m]`.
    table: Vec<i16>,
    /// Each model's weight per quantisation step.
    steps: Vec<f32>,
    biases: Vec<f32>,
    /// The models' word-vector terms (empty when none has one).
    words: super::embeddings::BankTable,
}

/// What a bank's walk over a text found, kept for the model evidence of a
/// flagged text so that it needs no second walk and no second lookup: the
/// words with their running character sums, each word's row of the
/// word-vector table, and the sizes of the word and character groups.
#[derive(Debug, Default)]
struct WalkParts {
    walked: Walked,
    rows: Vec<[i16; 4]>,
    counts: (u32, u32),
}

impl Bank {
    /// [`super::model::LinearModel::explain`] for the model in `slot`, read
    /// from the quantised table (each word's n-gram weights added up in
    /// units of the model's step, as scoring adds them, then scaled).
    /// `parts` is what this bank's walk over the text found: when its words
    /// are the text's words, each word's character sum and word-vector
    /// number come from it and only its unigram is read again; otherwise
    /// every feature is hashed again.
    fn explain(
        &self,
        text: &Normalized,
        parts: &WalkParts,
        slot: usize,
        k: usize,
    ) -> Vec<(usize, usize, f32)> {
        let Walked { words, running } = &parts.walked;
        let width = self.biases.len();
        let step = self.steps.get(slot).copied().unwrap_or(0.0);
        // The quantised weight of a table entry (its row: the bucket, then
        // the sign).
        let q = |row: usize| i64::from(self.table.get(row * width + slot).copied().unwrap_or(0));
        let same_words = words.len() == text.word_count()
            && words
                .iter()
                .enumerate()
                .all(|(i, w)| w.start as usize == text.word_start(i));
        if same_words
            && running.len() == words.len() * width
            && (self.words.is_empty() || parts.rows.len() == words.len())
        {
            let sums = |i: usize| {
                let unigram = self
                    .spec
                    .unigram_entry(words[i].hash)
                    .map_or(0, |e| q(e as usize));
                let upto = running[i * width + slot];
                let before = match i {
                    0 => 0,
                    _ => running[(i - 1) * width + slot],
                };
                (unigram as f32 * step, (upto - before) as f32 * step)
            };
            return super::model::rank_words(
                text.text(),
                words.len(),
                sums,
                parts.counts,
                |i| (words[i].start as usize, words[i].end as usize),
                |i| self.words.value(parts.rows.get(i)?, slot),
                k,
            );
        }
        let folded = text.text();
        let mut sums = vec![(0i64, 0i64); text.word_count()];
        let (mut nw, mut nc) = (0u32, 0u32);
        self.spec.visit(folded, |ft| {
            let w = q(2 * ft.index as usize + usize::from(ft.sign < 0.0));
            match ft.group {
                Group::Word => nw += 1,
                Group::Char => nc += 1,
            }
            if let Some(s) = sums.get_mut(ft.word as usize) {
                match ft.group {
                    Group::Word if ft.unigram => s.0 += w,
                    Group::Word => {}
                    Group::Char => s.1 += w,
                }
            }
        });
        let sums: Vec<(f32, f32)> = sums
            .iter()
            .map(|&(u, c)| (u as f32 * step, c as f32 * step))
            .collect();
        let hashes: Vec<u64> = if self.words.is_empty() {
            Vec::new()
        } else {
            folded.split(' ').map(super::features::word_hash).collect()
        };
        let span = |i: usize| {
            let start = text.word_start(i);
            let end = folded[start..]
                .find(' ')
                .map_or(folded.len(), |off| start + off);
            (start, end)
        };
        super::model::rank_words(
            folded,
            sums.len(),
            |i| sums[i],
            (nw, nc),
            span,
            |i| self.words.get(*hashes.get(i)?, slot),
            k,
        )
    }

    /// Writes each model's margin (log-odds) into `out`, in one walk over
    /// the text that also finds and hashes its words and keeps what the
    /// models' evidence needs of each (into `parts`), and calls
    /// `on_byte(i, byte)` for every byte.
    fn margins(
        &self,
        text: &str,
        buf: &mut Vec<u32>,
        parts: &mut WalkParts,
        out: &mut [f32],
        on_byte: impl FnMut(usize, u8),
    ) {
        #[inline(always)]
        fn put<const K: usize>(
            bank: &Bank,
            text: &str,
            buf: &mut Vec<u32>,
            parts: &mut WalkParts,
            out: &mut [f32],
            on_byte: impl FnMut(usize, u8),
        ) {
            parts.rows.clear();
            let mut terms = Terms::default();
            let table = &bank.words;
            let looks_up = !table.is_empty();
            let (dots, counts) = bank.spec.dot_quantised_walk::<K>(
                text,
                &mut parts.walked,
                &bank.table,
                buf,
                on_byte,
                |h| {
                    if looks_up {
                        table.add_word(h, &mut terms, &mut parts.rows);
                    }
                },
            );
            for (m, (o, d)) in out.iter_mut().zip(dots).enumerate() {
                *o = d * bank.steps[m] + bank.biases[m];
            }
            parts.counts = counts;
            table.add_terms(&terms, out);
        }
        match self.biases.len() {
            1 => put::<1>(self, text, buf, parts, out, on_byte),
            2 => put::<2>(self, text, buf, parts, out, on_byte),
            3 => put::<3>(self, text, buf, parts, out, on_byte),
            _ => put::<BANK_WIDTH>(self, text, buf, parts, out, on_byte),
        }
    }
}

/// The phrase scan between two bytes of the folded text: the overlapping
/// search of `AhoCorasick::find_overlapping_iter`, written out so that it
/// can be stepped from another loop over the same bytes. Every match is
/// seen, in the same order (by end, then as the state lists them). The
/// automaton's state is kept by the caller (a local stays in a register).
struct Scan<'a> {
    engine: &'a Engine,
    dfa: &'a DFA,
    text: &'a [u8],
    /// The regular expressions (bits) whose first words the text has.
    triggered: u64,
}

impl<'a> Scan<'a> {
    /// A scan of `text` and its start state; `None` when there are no
    /// phrases.
    fn new(engine: &'a Engine, text: &'a [u8], hits: &mut Hits) -> Option<(Self, StateID)> {
        let dfa = engine.automaton.as_ref()?;
        let sid = dfa.start_state(Anchored::No).ok()?;
        let mut scan = Scan {
            engine,
            dfa,
            text,
            triggered: 0,
        };
        if dfa.is_match(sid) {
            scan.record(sid, 0, hits);
        }
        Some((scan, sid))
    }

    /// Reads byte `i`, `b`, in state `sid`; returns the next state. (The
    /// dead state, which this search never reaches, would stay dead and
    /// match nothing, as a stopped search.)
    #[inline(always)]
    fn step(&mut self, sid: StateID, i: usize, b: u8, hits: &mut Hits) -> StateID {
        let sid = self.dfa.next_state(Anchored::No, sid, b);
        if self.dfa.is_special(sid) && self.dfa.is_match(sid) {
            // Only a match that ends a word counts (`record` checks it too).
            let end = i + 1;
            if self.text.get(end).is_none_or(|&next| next == b' ') {
                self.record(sid, end, hits);
            }
        }
        sid
    }

    /// Records the whole-word matches of the current (match) state, which
    /// end at byte `end`.
    #[inline(never)]
    fn record(&mut self, sid: StateID, end: usize, hits: &mut Hits) {
        let (dfa, text, e) = (self.dfa, self.text, end);
        if e != text.len() && text[e] != b' ' {
            return;
        }
        for i in 0..dfa.match_len(sid) {
            let pid = dfa.match_pattern(sid, i);
            let s = e - dfa.pattern_len(pid);
            if s != 0 && text[s - 1] != b' ' {
                continue;
            }
            for u in &self.engine.uses[pid.as_usize()] {
                match *u {
                    Use::Phrase { detector } => push_span(&mut hits.spans[detector], (s, e)),
                    Use::First { detector } => push_span(&mut hits.first[detector], (s, e)),
                    Use::Second { detector } => push_span(&mut hits.second[detector], (s, e)),
                    // A judging or denying phrase that a negation stands
                    // just before says the opposite: "saying X are rats is
                    // not hateful", "it's not racist to say X are Y".
                    Use::Judgement { .. } if negated(text, s) => {}
                    Use::Context { signal, placed } => {
                        hits.context[signal] = true;
                        if placed {
                            if hits.context_at.len() < 64 {
                                hits.context_at.push((signal, s, e));
                            } else {
                                hits.context_at_overflow = true;
                            }
                        }
                    }
                    Use::Judgement { signal } => {
                        if hits.judgements.len() < 64 {
                            hits.judgements.push((signal, s, e));
                        }
                    }
                    Use::Attribution { signal } => {
                        if hits.attributions.len() < 64 {
                            hits.attributions.push((signal, s, e));
                        }
                    }
                    Use::Needed { signal } => hits.needed[signal] = true,
                    Use::Unless { signal } => hits.vetoed[signal] = true,
                    Use::Trigger { bit } => self.triggered |= 1 << bit,
                }
            }
        }
    }
}

/// A policy compiled for scoring. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Engine {
    policy: Policy,
    automaton: Option<DFA>,
    /// For each automaton pattern, what it is used for.
    uses: Vec<Vec<Use>>,
    detectors: Vec<CompiledDetector>,
    banks: Vec<Bank>,
    /// Shared copies of the strings every verdict carries, so that building
    /// one clones pointers instead of strings.
    version: Arc<str>,
    category_ids: Vec<Arc<str>>,
    /// Every category's score at zero, cloned for each verdict (cheaper than
    /// inserting into an empty map), and for each of its entries in order,
    /// the category whose score it gets (the last of that id).
    scores_template: BTreeMap<Arc<str>, f32>,
    scores_order: Vec<usize>,
    /// Each category's detectors (indices): compiled a category at a
    /// time, so they are next to each other.
    category_detectors: Vec<std::ops::Range<usize>>,
    /// For each context signal, the categories it lowers (indices); empty:
    /// every context-sensitive category.
    signal_categories: Vec<Vec<usize>>,
}

thread_local! {
    /// Per-thread scratch space reused by every scan, so scoring a text
    /// allocates only what its verdict keeps.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Default)]
struct Scratch {
    /// The folded text, when [`Engine::score`] folds it.
    folded: Normalized,
    hits: Hits,
    det_scores: Vec<f32>,
    margins: Vec<f32>,
    /// Feature buckets of the text being scored.
    buckets: Vec<u32>,
    /// What each bank's walk found of each word.
    parts: Vec<WalkParts>,
    /// Each category's score.
    cat_scores: Vec<f32>,
    /// The detectors that scored, in order: the later passes over the
    /// detectors visit these alone (most texts wake few of them).
    scored: Vec<usize>,
}

/// Per-text scratch space for one scan.
#[derive(Default)]
struct Hits {
    spans: Vec<Vec<(usize, usize)>>,
    first: Vec<Vec<(usize, usize)>>,
    second: Vec<Vec<(usize, usize)>>,
    context: Vec<bool>,
    /// Signals one of whose `needs` stands in the text.
    needed: Vec<bool>,
    /// Signals one of whose `unless` stands in the text.
    vetoed: Vec<bool>,
    /// Where the phrases of plain signals stand in the folded text (the
    /// first 64), and whether there were more.
    context_at: Vec<(usize, usize, usize)>,
    context_at_overflow: bool,
    /// Phrases of signals that judge a quotation or deny a clause: the
    /// signal and where the phrase stands in the folded text.
    judgements: Vec<(usize, usize, usize)>,
    /// Attributions read by signals that judge a quotation, the same way.
    attributions: Vec<(usize, usize, usize)>,
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
        let mut category_detectors = Vec::with_capacity(policy.categories.len());
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
                        ordered,
                    } => {
                        for p in first {
                            add(p, Use::First { detector: d }, &mut patterns, &mut uses);
                        }
                        for p in second {
                            add(p, Use::Second { detector: d }, &mut patterns, &mut uses);
                        }
                        Compiled::Proximity {
                            within: *within,
                            ordered: *ordered,
                        }
                    }
                    DetectorKind::Regex(re) => Compiled::Regex(re.clone(), None),
                    DetectorKind::Classifier {
                        model, midpoint, ..
                    } => Compiled::Classifier {
                        model: model.clone(),
                        shift: (midpoint / (1.0 - midpoint)).ln(),
                        bank: 0,
                        slot: 0,
                    },
                };
                detectors.push(CompiledDetector {
                    category: c,
                    id: Arc::from(det.id.as_str()),
                    weight: det.weight,
                    kind,
                    requires: Vec::new(),
                });
            }
            // Loading checked that every required id is a detector of this
            // category.
            let first = detectors.len() - cat.detectors.len();
            category_detectors.push(first..detectors.len());
            for (j, det) in cat.detectors.iter().enumerate() {
                let requires = det
                    .requires
                    .iter()
                    .filter_map(|id| cat.detectors.iter().position(|o| &o.id == id))
                    .map(|k| first + k)
                    .collect();
                detectors[first + j].requires = requires;
            }
        }
        for (s, signal) in policy.context.signals.iter().enumerate() {
            let used = if signal.judges_quote || signal.denies_clause {
                Use::Judgement { signal: s }
            } else {
                Use::Context {
                    signal: s,
                    placed: !signal.reads_evidence,
                }
            };
            for p in &signal.phrases {
                add(p, used, &mut patterns, &mut uses);
            }
            for p in &signal.attributions {
                add(p, Use::Attribution { signal: s }, &mut patterns, &mut uses);
            }
            for p in &signal.needs {
                add(p, Use::Needed { signal: s }, &mut patterns, &mut uses);
            }
            for p in &signal.unless {
                add(p, Use::Unless { signal: s }, &mut patterns, &mut uses);
            }
        }
        let mut gates = 0u32;
        for det in detectors.iter_mut() {
            let Compiled::Regex(re, gate) = &mut det.kind else {
                continue;
            };
            let Some(words) = regex_first_words(re.as_str()) else {
                continue;
            };
            if gates == u64::BITS {
                continue;
            }
            for w in &words {
                add(w, Use::Trigger { bit: gates }, &mut patterns, &mut uses);
            }
            *gate = Some(gates);
            gates += 1;
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            // The DFA kind is several times faster than the NFA that the
            // automatic choice picks for a lexicon of a few hundred phrases.
            // Built as the DFA itself (what `AhoCorasickKind::DFA` wraps), so
            // that `scan` can step it byte by byte; no prefilter, which for
            // this many patterns would not be used anyway.
            Some(
                aho_corasick::dfa::Builder::new()
                    .match_kind(MatchKind::Standard)
                    .prefilter(false)
                    .build(&patterns)
                    .map_err(|e| CompileError(e.to_string()))?,
            )
        };
        let banks = assign_banks(&mut detectors);
        let version: Arc<str> = Arc::from(policy.version.as_str());
        let category_ids: Vec<Arc<str>> = policy
            .categories
            .iter()
            .map(|c| Arc::from(c.id.as_str()))
            .collect();
        let mut last_of: BTreeMap<Arc<str>, usize> = BTreeMap::new();
        for (c, id) in category_ids.iter().enumerate() {
            last_of.insert(id.clone(), c);
        }
        let scores_template = last_of.keys().map(|id| (id.clone(), 0.0)).collect();
        let scores_order = last_of.into_values().collect();
        let signal_categories = policy
            .context
            .signals
            .iter()
            .map(|signal| {
                signal
                    .categories
                    .iter()
                    .filter_map(|id| policy.categories.iter().position(|c| &c.id == id))
                    .collect()
            })
            .collect();
        Ok(Engine {
            policy,
            automaton,
            uses,
            detectors,
            banks,
            version,
            category_ids,
            scores_template,
            scores_order,
            category_detectors,
            signal_categories,
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
        let mut out: Vec<String> = Vec::with_capacity(self.uses.len());
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
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                let mut folded = std::mem::take(&mut scratch.folded);
                normalize_into(original, &mut folded);
                let verdict = self.score_with(original, &folded, &mut scratch);
                scratch.folded = folded;
                verdict
            }
            Err(_) => self.score_with(original, &normalize(original), &mut Scratch::default()),
        })
    }

    /// Scores a text that has already been folded.
    pub fn score_folded(&self, original: &str, folded: &Normalized) -> Verdict {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.score_with(original, folded, &mut scratch),
            Err(_) => self.score_with(original, folded, &mut Scratch::default()),
        })
    }

    fn score_with(&self, original: &str, folded: &Normalized, scratch: &mut Scratch) -> Verdict {
        let n = self.detectors.len();
        let Scratch {
            folded: _,
            hits,
            det_scores,
            margins,
            buckets,
            parts,
            cat_scores,
            scored,
        } = scratch;
        hits.reset(n, self.policy.context.signals.len());
        margins.clear();
        margins.resize(self.banks.len() * BANK_WIDTH, 0.0);
        parts.resize_with(self.banks.len(), WalkParts::default);
        // The phrase scan runs in the first bank's walk over the text: its
        // automaton steps wait on memory, and the hashing fills the wait.
        let triggered = match self.banks.first() {
            Some(first) => {
                let text = folded.text();
                let out = &mut margins[..BANK_WIDTH];
                match Scan::new(self, text.as_bytes(), hits) {
                    Some((mut scan, mut sid)) => {
                        first.margins(text, buckets, &mut parts[0], out, |i, b| {
                            sid = scan.step(sid, i, b, hits);
                        });
                        scan.triggered
                    }
                    None => {
                        first.margins(text, buckets, &mut parts[0], out, |_, _| {});
                        0
                    }
                }
            }
            None => self.scan(folded, hits),
        };
        for (b, bank) in self.banks.iter().enumerate().skip(1) {
            bank.margins(
                folded.text(),
                buckets,
                &mut parts[b],
                &mut margins[b * BANK_WIDTH..(b + 1) * BANK_WIDTH],
                |_, _| {},
            );
        }

        det_scores.clear();
        det_scores.resize(n, 0.0);
        scored.clear();
        // Whether the folded text is ASCII, read once for all gated regexes
        // and only when one of them is not triggered.
        let mut folded_ascii = None;
        for (d, det) in self.detectors.iter().enumerate() {
            match &det.kind {
                Compiled::Lexical => {
                    if !hits.spans[d].is_empty() {
                        det_scores[d] = det.weight;
                    }
                }
                Compiled::Proximity { within, ordered } => {
                    proximity_pairs(
                        folded,
                        &hits.first[d],
                        &hits.second[d],
                        *within,
                        *ordered,
                        &mut hits.spans[d],
                    );
                    if !hits.spans[d].is_empty() {
                        det_scores[d] = det.weight;
                    }
                }
                Compiled::Regex(re, gate) => {
                    // A text without a word the matches must start with has
                    // no match (see `regex_first_words`; the reasoning
                    // needs the folded text to be ASCII).
                    if let Some(bit) = gate {
                        if triggered & (1 << bit) == 0
                            && *folded_ascii.get_or_insert_with(|| folded.text().is_ascii())
                        {
                            continue;
                        }
                    }
                    let spans = &mut hits.spans[d];
                    spans.extend(
                        re.find_iter(folded.text())
                            .filter(|m| !m.is_empty())
                            .take(MAX_SPANS_PER_DETECTOR)
                            .map(|m| (m.start(), m.end())),
                    );
                    if !spans.is_empty() {
                        det_scores[d] = det.weight;
                    }
                }
                Compiled::Classifier {
                    shift, bank, slot, ..
                } => {
                    let margin = margins[bank * BANK_WIDTH + slot];
                    det_scores[d] = det.weight * super::model::sigmoid(margin - shift);
                }
            }
            if det_scores[d] > 0.0 {
                scored.push(d);
            }
        }

        for &d in scored.iter() {
            if self.detectors[d]
                .requires
                .iter()
                .any(|&r| hits.spans[r].is_empty())
            {
                det_scores[d] = 0.0;
            }
        }

        if !hits.context_at.is_empty() {
            self.discount_phrases_in_evidence(hits, det_scores);
        }
        if !hits.judgements.is_empty() {
            self.judge_claims(original, folded, hits, det_scores);
        }
        let signals = &self.policy.context.signals;
        let mut keep = 1.0f32;
        let mut context_signals = Vec::new();
        // What the signals kept to some categories leave of each one's
        // score (empty when none fired).
        let mut kept_for: Vec<f32> = Vec::new();
        for (s, fired) in hits.context.iter().enumerate() {
            if !*fired || hits.vetoed[s] || !(signals[s].needs.is_empty() || hits.needed[s]) {
                continue;
            }
            if self.signal_categories[s].is_empty() {
                keep *= 1.0 - signals[s].weight;
                context_signals.push(signals[s].id.clone());
            } else if self.lower_for(s, scored, det_scores, &mut kept_for) {
                context_signals.push(signals[s].id.clone());
            }
        }
        let context = 1.0 - keep;

        let mut scores = self.scores_template.clone();
        cat_scores.clear();
        cat_scores.resize(self.policy.categories.len(), 0.0);
        let mut flagged = Vec::new();
        let mut evidence = Vec::new();
        // Each category's product of (1 - detector score), in one pass over
        // the detectors that scored, in order (a detector that scored
        // nothing multiplies by exactly 1, so the product is the same bits).
        // Each entry is then replaced by the category's score.
        cat_scores.fill(1.0);
        for &d in scored.iter() {
            cat_scores[self.detectors[d].category] *= 1.0 - det_scores[d];
        }
        for (c, cat) in self.policy.categories.iter().enumerate() {
            let keep = cat_scores[c];
            let mut score = 1.0 - keep;
            if cat.context_sensitive {
                let context = match kept_for.get(c) {
                    Some(k) => 1.0 - (1.0 - context) * k,
                    None => context,
                };
                score *= 1.0 - self.policy.context.dampening * context;
            }
            let score = score.clamp(0.0, 1.0);
            cat_scores[c] = score;
            let is_flagged = score > 0.0 && score >= cat.flag_threshold;
            if is_flagged {
                flagged.push(Flag {
                    category: self.category_ids[c].clone(),
                    severity: cat.severity,
                    score,
                });
            }
            if score > 0.0 {
                let range = &self.category_detectors[c];
                for &d in scored.iter().filter(|&&d| range.contains(&d)) {
                    let det = &self.detectors[d];
                    if det_scores[d] <= 0.0 {
                        continue;
                    }
                    // A model's evidence (the words that pushed it up) costs
                    // another pass over the text: worth it only for a flag
                    // the model took part in.
                    let explained;
                    let spans: &[(usize, usize)] = match &det.kind {
                        Compiled::Classifier { bank, slot, .. } => {
                            if !is_flagged || det_scores[d] < cat.flag_threshold * 0.5 {
                                continue;
                            }
                            explained = self.banks[*bank]
                                .explain(folded, &parts[*bank], *slot, 3)
                                .into_iter()
                                .map(|(s, e, _)| (s, e))
                                .collect::<Vec<_>>();
                            &explained
                        }
                        _ => &hits.spans[d],
                    };
                    let mut push = |id: &Arc<str>, spans: &[(usize, usize)]| {
                        for &(s, e) in spans.iter().take(MAX_SPANS_PER_DETECTOR) {
                            let (os, oe) = folded.original_span(s, e);
                            // Two detectors behind one gate show it once.
                            let shown = evidence.iter().any(|x: &Evidence| {
                                x.detector == *id && x.start == os && x.end == oe
                            });
                            if oe > os && !shown {
                                evidence.push(Evidence {
                                    category: self.category_ids[c].clone(),
                                    detector: id.clone(),
                                    start: os,
                                    end: oe,
                                    text: original.get(os..oe).unwrap_or_default().to_string(),
                                });
                            }
                        }
                    };
                    push(&det.id, spans);
                    // A gate that scores nothing itself is shown as the
                    // reason the detector behind it counted.
                    for &r in &det.requires {
                        if det_scores[r] <= 0.0 {
                            push(&self.detectors[r].id, &hits.spans[r]);
                        }
                    }
                }
            }
        }
        for (value, &c) in scores.values_mut().zip(&self.scores_order) {
            *value = cat_scores[c];
        }
        flagged.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(b.score.total_cmp(&a.score))
        });
        Verdict {
            policy_version: self.version.clone(),
            scores,
            flagged,
            evidence,
            context,
            context_signals,
        }
    }

    /// Lowers, in `kept_for` (each category's share kept; filled with 1 on
    /// first use), the categories signal `s` is kept to where only their
    /// models scored. Whether it lowered any. Out of the hot path: most
    /// texts fire no such signal.
    #[cold]
    #[inline(never)]
    fn lower_for(
        &self,
        s: usize,
        scored: &[usize],
        det_scores: &[f32],
        kept_for: &mut Vec<f32>,
    ) -> bool {
        let weight = self.policy.context.signals[s].weight;
        let mut lowered = false;
        for &c in &self.signal_categories[s] {
            let named = scored.iter().any(|&d| {
                det_scores[d] > 0.0
                    && self.detectors[d].category == c
                    && !matches!(self.detectors[d].kind, Compiled::Classifier { .. })
            });
            if !named {
                if kept_for.is_empty() {
                    kept_for.resize(self.policy.categories.len(), 1.0);
                }
                kept_for[c] *= 1.0 - weight;
                lowered = true;
            }
        }
        lowered
    }

    /// Unfires each plain signal all of whose phrases stand inside the
    /// evidence of a phrase or pattern detector of a context-sensitive
    /// category (not a proximity detector's, whose evidence spans whatever
    /// stands between its two words): the words are then part of what that
    /// detector found, not context around it. "should never" often
    /// condemns ("people should never be attacked for their faith"), but
    /// in "Muslims should never be allowed in this country" it is part of
    /// the exclusion `hate.group-vilified` found, and lowering the text for
    /// it would hide the exclusion. Signals that read the evidence itself
    /// (idioms) are exempt; past the 64th phrase nothing is unfired.
    fn discount_phrases_in_evidence(&self, hits: &mut Hits, det_scores: &[f32]) {
        if hits.context_at_overflow {
            return;
        }
        let inside = |s: usize, e: usize| {
            self.detectors.iter().enumerate().any(|(d, det)| {
                det_scores[d] > 0.0
                    && matches!(det.kind, Compiled::Lexical | Compiled::Regex(..))
                    && self.policy.categories[det.category].context_sensitive
                    && hits.spans[d].iter().any(|&(ds, de)| ds <= s && e <= de)
            })
        };
        // Only placed phrases are listed, so a signal listed here fired for
        // them alone: it stays fired where one of them stands outside.
        for &(signal, ..) in &hits.context_at {
            hits.context[signal] = false;
        }
        for &(signal, s, e) in &hits.context_at {
            if !inside(s, e) {
                hits.context[signal] = true;
            }
        }
    }

    /// Fires the signals that judge a quotation or deny a clause (see
    /// [`super::ContextSignal::judges_quote`] and
    /// [`super::ContextSignal::denies_clause`]) when the phrase and pattern
    /// evidence of the context-sensitive categories all stands where the
    /// signal's phrase puts it: inside the quotations (the phrase outside
    /// them), or in the clause the phrase opens. At least one piece of such
    /// evidence must be there; models' words do not count.
    fn judge_claims(
        &self,
        original: &str,
        folded: &Normalized,
        hits: &mut Hits,
        det_scores: &[f32],
    ) {
        let mut evidence = Vec::new();
        for (d, det) in self.detectors.iter().enumerate() {
            if det_scores[d] <= 0.0
                || matches!(det.kind, Compiled::Classifier { .. })
                || !self.policy.categories[det.category].context_sensitive
            {
                continue;
            }
            evidence.extend(
                hits.spans[d]
                    .iter()
                    .map(|&(s, e)| folded.original_span(s, e)),
            );
        }
        if evidence.is_empty() {
            return;
        }
        let signals = &self.policy.context.signals;
        // Whether all of `ev` stands in the clause that starts at `from`.
        let in_clause = |ev: &[(usize, usize)], from: usize| {
            let end = clause_end(original, from);
            ev.iter().all(|&(es, ee)| from <= es && ee <= end)
        };
        // Once a signal needs them, the quotations and whether all the
        // evidence stands in them: the same for every judging phrase.
        let mut quoted: Option<(Vec<(usize, usize)>, bool)> = None;
        let mut claim = Vec::with_capacity(evidence.len());
        for &(signal, s, e) in &hits.judgements {
            let (os, oe) = folded.original_span(s, e);
            let fires = if signals[signal].denies_clause {
                in_clause(&evidence, oe)
            } else {
                let (quotes, all_quoted) = quoted.get_or_insert_with(|| {
                    let quotes = quotations(original);
                    let all = !quotes.is_empty()
                        && evidence
                            .iter()
                            .all(|&(es, ee)| quotes.iter().any(|&(qs, qe)| qs <= es && ee <= qe));
                    (quotes, all)
                });
                // A quoted claim, the judging phrase outside every quotation;
                // or an attributed claim: the claim's evidence in the clause
                // an attribution opens, and the judging phrase after it.
                (*all_quoted && quotes.iter().all(|&(qs, qe)| oe <= qs || qe <= os))
                    || (claim_before(&evidence, (os, oe), &mut claim)
                        && hits.attributions.iter().any(|&(a, s, e)| {
                            a == signal && in_clause(&claim, folded.original_span(s, e).1)
                        }))
            };
            if fires {
                hits.context[signal] = true;
            }
        }
    }

    /// Finds the phrases in the folded text and records them in `hits`;
    /// returns the regular expressions (bits) whose first words the text has.
    fn scan(&self, folded: &Normalized, hits: &mut Hits) -> u64 {
        let text = folded.text().as_bytes();
        let Some((mut scan, mut sid)) = Scan::new(self, text, hits) else {
            return 0;
        };
        for (i, &b) in text.iter().enumerate() {
            sid = scan.step(sid, i, b, hits);
        }
        scan.triggered
    }
}

/// The words that every match of the regular expression `pattern` must
/// start with, when that can be read off its syntax: the pattern starts with
/// a word boundary, and every way through it reaches a space after a
/// literal, non-empty first word that starts with a letter or digit. In an
/// ASCII folded text (lower-case letters, digits and single spaces) a match
/// then starts at the start of a word, and that word is one of these. `None`
/// when the pattern does not have that shape (it then runs on every text).
fn regex_first_words(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::{HirKind, Look};
    // The same syntax and flags as `regex::Regex::new`.
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let (first, rest) = items.split_first()?;
    if !matches!(
        first.kind(),
        HirKind::Look(Look::WordAscii | Look::WordUnicode)
    ) {
        return None;
    }
    let starts = starts_of_seq(rest)?;
    let mut words = Vec::with_capacity(starts.len());
    for (bytes, complete) in starts {
        if !complete || !bytes.first().is_some_and(u8::is_ascii_alphanumeric) {
            return None;
        }
        words.push(String::from_utf8(bytes).ok()?);
    }
    words.sort();
    words.dedup();
    Some(words)
}

/// Most ways through a pattern that [`starts_of`] follows.
const MAX_STARTS: usize = 256;

/// The ways a match of `hir` can start, each up to its first space: the
/// bytes before the space, and whether the space was reached (if not, the
/// bytes are all the match has before it ends or the pattern leaves
/// literals). `None` when a way cannot be told (a class, a repetition) or
/// there are too many.
fn starts_of(hir: &regex_syntax::hir::Hir) -> Option<Vec<(Vec<u8>, bool)>> {
    use regex_syntax::hir::HirKind;
    Some(match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => vec![(Vec::new(), false)],
        HirKind::Literal(lit) => match lit.0.iter().position(|&b| b == b' ') {
            Some(at) => vec![(lit.0[..at].to_vec(), true)],
            None => vec![(lit.0.to_vec(), false)],
        },
        HirKind::Capture(c) => starts_of(&c.sub)?,
        HirKind::Concat(items) => starts_of_seq(items)?,
        HirKind::Alternation(alts) => {
            let mut out = Vec::new();
            for alt in alts {
                out.extend(starts_of(alt)?);
                if out.len() > MAX_STARTS {
                    return None;
                }
            }
            out
        }
        HirKind::Repetition(r) if r.max == Some(1) => {
            let mut out = starts_of(&r.sub)?;
            if r.min == 0 {
                out.push((Vec::new(), false));
            }
            out
        }
        HirKind::Class(_) | HirKind::Repetition(_) => return None,
    })
}

/// [`starts_of`] for a sequence.
fn starts_of_seq(items: &[regex_syntax::hir::Hir]) -> Option<Vec<(Vec<u8>, bool)>> {
    let mut acc: Vec<(Vec<u8>, bool)> = vec![(Vec::new(), false)];
    for item in items {
        if acc.iter().all(|(_, complete)| *complete) {
            break;
        }
        let next = starts_of(item)?;
        let mut grown = Vec::new();
        for (prefix, complete) in acc {
            if complete {
                grown.push((prefix, true));
                continue;
            }
            for (more, c) in &next {
                let mut p = prefix.clone();
                p.extend_from_slice(more);
                grown.push((p, *c));
            }
            if grown.len() > MAX_STARTS {
                return None;
            }
        }
        acc = grown;
    }
    Some(acc)
}

/// The quotations of a text: the byte ranges between pairs of quotation
/// marks (`"`, `'`, `“ ”`, `‘ ’`, `„ “`, `« »`). A mark opens only at the
/// start of the text or after a space, a bracket or another mark, and
/// closes only where no letter or digit follows, so that the apostrophes
/// of "don't" and "women's" and a stray mark after a word are neither. A
/// mark left open quotes nothing.
fn quotations(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // Most texts have no mark at all.
    if !text.contains(['"', '\'', '\u{201c}', '\u{201e}', '\u{ab}', '\u{2018}']) {
        return out;
    }
    let mut open: Option<(usize, &[char])> = None;
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        match open {
            None => {
                let may_open =
                    prev.is_none_or(|p| p.is_whitespace() || "([{\"'\u{201c}\u{2018}".contains(p));
                let closers: Option<&[char]> = match c {
                    '"' => Some(&['"', '\u{201d}']),
                    '\u{201c}' | '\u{201e}' => Some(&['\u{201d}', '\u{201c}', '"']),
                    '\u{ab}' => Some(&['\u{bb}']),
                    '\'' | '\u{2018}' => Some(&['\'', '\u{2019}']),
                    _ => None,
                };
                if let (true, Some(closers)) = (may_open, closers) {
                    open = Some((i + c.len_utf8(), closers));
                }
            }
            Some((start, closers)) => {
                if closers.contains(&c) && i > start && next.is_none_or(|n| !n.is_alphanumeric()) {
                    out.push((start, i));
                    open = None;
                }
            }
        }
        prev = Some(c);
    }
    out
}

/// Whether the evidence of a judged claim stands before the judging phrase
/// at `judging` (original bytes), leaving the claim's evidence in `claim`.
/// Evidence that overlaps the judging phrase and starts after the claim is
/// the judgement itself, read as an insult ("anyone who thinks X are
/// inferior is a fool"), not part of the claim.
fn claim_before(
    evidence: &[(usize, usize)],
    judging: (usize, usize),
    claim: &mut Vec<(usize, usize)>,
) -> bool {
    let (os, oe) = judging;
    let overlaps = |&(es, ee): &(usize, usize)| !(ee <= os || oe <= es);
    claim.clear();
    claim.extend(evidence.iter().copied().filter(|ev| !overlaps(ev)));
    let claim_end = claim.iter().map(|&(_, ee)| ee).max().unwrap_or(0);
    !claim.is_empty()
        && claim_end <= os
        && evidence
            .iter()
            .filter(|ev| overlaps(ev))
            .all(|&(es, _)| claim_end <= es)
}

/// Where the clause that starts at byte `from` of `text` ends: at the next
/// `.`, `,`, `;`, `:`, `!`, `?` or line break, or at the end of the text.
fn clause_end(text: &str, from: usize) -> usize {
    text.as_bytes()[from..]
        .iter()
        .position(|b| matches!(b, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\n' | b'\r'))
        .map_or(text.len(), |i| from + i)
}

/// Words that turn a judging or denying phrase after them round ("is not
/// hateful", "isn't racist", "never wrong"), as folding writes them. "no"
/// is left out: it opens replies as an interjection ("No, this is racist").
const NEGATIONS: [&[u8]; 11] = [
    b"not", b"never", b"nothing", b"isnt", b"arent", b"wasnt", b"werent", b"dont", b"doesnt",
    b"hardly", b"nt",
];

/// Whether one of the two words before byte `s` of the folded text `text`
/// (a phrase's start) is a negation ("not hateful", "not a vile thing").
/// Folding drops punctuation, so a wider look would reach across sentences.
fn negated(text: &[u8], s: usize) -> bool {
    let mut end = s.saturating_sub(1).min(text.len());
    for _ in 0..2 {
        if end == 0 {
            return false;
        }
        let start = text[..end]
            .iter()
            .rposition(|&b| b == b' ')
            .map_or(0, |i| i + 1);
        if NEGATIONS.contains(&&text[start..end]) {
            return true;
        }
        end = start.saturating_sub(1);
    }
    false
}

fn push_span(spans: &mut Vec<(usize, usize)>, span: (usize, usize)) {
    if spans.len() < 64 {
        spans.push(span);
    }
}

impl Hits {
    /// Empties every list, keeping their buffers, for `detectors` detectors
    /// and `signals` context signals.
    fn reset(&mut self, detectors: usize, signals: usize) {
        for lists in [&mut self.spans, &mut self.first, &mut self.second] {
            lists.resize_with(detectors, Vec::new);
            for l in lists.iter_mut() {
                l.clear();
            }
        }
        self.context.clear();
        self.context.resize(signals, false);
        self.needed.clear();
        self.needed.resize(signals, false);
        self.vetoed.clear();
        self.vetoed.resize(signals, false);
        self.context_at.clear();
        self.context_at_overflow = false;
        self.judgements.clear();
        self.attributions.clear();
    }
}

/// Puts every classifier into a bank of classifiers with the same features
/// and builds the banks' interleaved weight tables.
fn assign_banks(detectors: &mut [CompiledDetector]) -> Vec<Bank> {
    let mut members: Vec<(FeatureSpec, Vec<Arc<super::model::LinearModel>>)> = Vec::new();
    for det in detectors.iter_mut() {
        if let Compiled::Classifier {
            model, bank, slot, ..
        } = &mut det.kind
        {
            // Models that read word vectors share a bank only when one word
            // table can hold theirs.
            let fits = |ms: &[Arc<super::model::LinearModel>]| {
                let tables: Vec<&super::embeddings::WordTable> =
                    ms.iter().map(|m| &m.words).chain([&model.words]).collect();
                super::embeddings::BankTable::can_hold(&tables)
            };
            let b = match members
                .iter()
                .position(|(spec, ms)| *spec == model.spec && ms.len() < BANK_WIDTH && fits(ms))
            {
                Some(b) => b,
                None => {
                    members.push((model.spec, Vec::new()));
                    members.len() - 1
                }
            };
            *bank = b;
            *slot = members[b].1.len();
            members[b].1.push(model.clone());
        }
    }
    members
        .into_iter()
        .map(|(spec, models)| {
            let k = models.len();
            let mut table = vec![0i16; 2 * spec.dim() * k];
            let mut steps = Vec::with_capacity(k);
            for (m, model) in models.iter().enumerate() {
                let max = model.weights.iter().fold(0.0f32, |a, w| a.max(w.abs()));
                let step = if max > 0.0 { max / 32767.0 } else { 1.0 };
                for (j, &w) in model.weights.iter().enumerate() {
                    let q = (w / step).round().clamp(-32767.0, 32767.0) as i16;
                    table[2 * j * k + m] = q;
                    table[(2 * j + 1) * k + m] = -q;
                }
                steps.push(step);
            }
            let tables: Vec<&super::embeddings::WordTable> =
                models.iter().map(|m| &m.words).collect();
            Bank {
                spec,
                table,
                steps,
                biases: models.iter().map(|m| m.bias).collect(),
                // The banks were formed so that their word tables agree.
                words: super::embeddings::BankTable::new(&tables).unwrap_or_default(),
            }
        })
        .collect()
}

/// Writes into `out` the spans joining a `first` term to a `second` term at
/// most `within` words apart; when `ordered`, only a `second` term that
/// starts after the `first` one ends.
fn proximity_pairs(
    folded: &Normalized,
    first: &[(usize, usize)],
    second: &[(usize, usize)],
    within: usize,
    ordered: bool,
    out: &mut Vec<(usize, usize)>,
) {
    out.clear();
    for &(fs, fe) in first {
        let fw = folded.word_index(fs);
        let fw_end = folded.word_index(fe.saturating_sub(1));
        for &(ss, se) in second {
            // The two terms must be different words.
            if ss < fe && fs < se {
                continue;
            }
            if ordered && ss < fe {
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
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::LinearModel;

    fn model(seed: usize, bias: f32) -> Arc<LinearModel> {
        let spec = FeatureSpec {
            bits: 12,
            word_ngrams: (1, 2),
            char_ngrams: (3, 5),
        };
        let mut m = LinearModel::zeros(spec);
        for (i, w) in m.weights.iter_mut().enumerate() {
            *w = (((i * 7919 + seed * 104_729) % 2001) as f32 - 1000.0) / 700.0;
        }
        m.bias = bias;
        // Model 1 also reads word vectors: some words carry a number.
        if seed == 1 {
            m.words = crate::policy::embeddings::WordTable::new(
                ["kil", "them", "mayor", "tonight"]
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (crate::policy::features::word_hash(w), i as f32 - 1.3))
                    .collect(),
            );
        }
        Arc::new(m)
    }

    fn classifier(model: Arc<LinearModel>) -> CompiledDetector {
        CompiledDetector {
            category: 0,
            id: Arc::from("test.model"),
            weight: 1.0,
            kind: Compiled::Classifier {
                model,
                shift: 0.0,
                bank: usize::MAX,
                slot: usize::MAX,
            },
            requires: Vec::new(),
        }
    }

    #[test]
    fn a_negation_in_the_two_words_before_a_phrase_turns_it_round() {
        let at = |text: &str, phrase: &str| {
            let folded = normalize(text);
            let s = folded.text().find(phrase).unwrap();
            negated(folded.text().as_bytes(), s)
        };
        assert!(at("saying that is not hateful", "hateful"));
        assert!(at("it is not a vile thing", "vile"));
        assert!(at(
            "Muslims are rats and it isn't racist to say so",
            "racist"
        ));
        assert!(!at("saying that is hateful", "hateful"));
        // Three words back is another clause's business.
        assert!(!at("he did not say it, racist as he is", "racist"));
        // "no" opens replies: "No, this is racist".
        assert!(!at("No, this is racist", "racist"));
        // A phrase at the start has nothing before it.
        assert!(!at("racist to say so", "racist"));
    }

    #[test]
    fn an_ordered_proximity_detector_matches_only_its_second_term_after_its_first() {
        let engine = engine_from_toml(
            r#"
[[category]]
id = "c"
title = "C"
aup = "No insults."
severity = "high"
flag_threshold = 0.5

[[category.detector]]
id = "c.ordered"
kind = "proximity"
weight = 0.6
within = 2
ordered = true
first = ["is a"]
second = ["moron"]

[[category.detector]]
id = "c.either"
kind = "proximity"
weight = 0.1
within = 2
first = ["is a"]
second = ["moron"]
"#,
        );
        let found = |text: &str| -> Vec<(String, String)> {
            engine
                .score(text)
                .evidence
                .iter()
                .map(|e| (e.detector.to_string(), e.text.clone()))
                .collect()
        };

        let after = found("Greg is a total moron");
        assert!(
            after.contains(&("c.ordered".into(), "is a total moron".into())),
            "{after:?}"
        );
        assert!(
            after.contains(&("c.either".into(), "is a total moron".into())),
            "{after:?}"
        );

        // "moron" before "is a": only the detector that takes either order.
        let before = found("Calling him a moron is a mistake");
        assert!(before.iter().all(|(d, _)| d != "c.ordered"), "{before:?}");
        assert!(
            before.contains(&("c.either".into(), "moron is a".into())),
            "{before:?}"
        );
        let v = engine.score("Calling him a moron is a mistake");
        assert!((v.scores["c"] - 0.1).abs() < 1e-6, "{v:?}");
    }

    #[test]
    fn a_detector_counts_only_when_every_detector_it_requires_found_something() {
        let engine = engine_from_toml(
            r#"
[[category]]
id = "c"
title = "C"
aup = "No storming."
severity = "high"
flag_threshold = 0.5

[[category.detector]]
id = "c.storm"
kind = "phrases"
weight = 0.9
phrases = ["storm"]
requires = ["c.building", "c.people"]

[[category.detector]]
id = "c.building"
kind = "phrases"
weight = 0
phrases = ["the capitol", "the castle"]

[[category.detector]]
id = "c.people"
kind = "proximity"
weight = 0.2
within = 2
first = ["we", "everyone"]
second = ["storm"]
"#,
        );

        let text = "Tomorrow we storm the capitol";
        let v = engine.score(text);
        // Both gates found something: 1 - (1 - 0.9)(1 - 0.2).
        assert!((v.scores["c"] - 0.92).abs() < 1e-6, "{v:?}");
        assert!(v.is_flagged("c"));
        let found: Vec<(&str, &str)> = v
            .evidence
            .iter()
            .map(|e| (&*e.detector, &text[e.start..e.end]))
            .collect();
        // The weight-0 gate is shown as the reason; the gate that scores
        // shows itself once.
        assert_eq!(
            found,
            [
                ("c.storm", "storm"),
                ("c.building", "the capitol"),
                ("c.people", "we storm"),
            ]
        );

        // One gate silent: the gated detector adds nothing, and a weight-0
        // gate never scores on its own.
        let v = engine.score("We storm the beaches");
        assert!((v.scores["c"] - 0.2).abs() < 1e-6, "{v:?}");
        assert!(!v.is_flagged("c"));
        assert_eq!(engine.score("the capitol at dawn").scores["c"], 0.0);
    }

    #[test]
    fn a_regex_is_gated_on_its_first_words_only_when_they_are_certain() {
        let words = regex_first_words(
            r"(?-u:\b)(?:lets|lets go|we (?:must|should)|time to|everyone) (?:kil|hang) (?:them|al)(?-u:\b)",
        );
        assert_eq!(
            words,
            Some(vec![
                "everyone".to_string(),
                "lets".to_string(),
                "time".to_string(),
                "we".to_string()
            ])
        );
        assert_eq!(
            regex_first_words(r"\bkil(?:l|led)? them"),
            Some(vec![
                "kil".to_string(),
                "kill".to_string(),
                "killed".to_string()
            ])
        );
        for pattern in [
            r"kil them",           // no word boundary first: may start mid-word
            r"\b kil",             // starts at a space: the boundary ends a word
            r"\bkil",              // never reaches a space: "kil" may be a prefix
            r"(?i)\blets kil",     // letters become classes
            r"\b[a-z]+ kil",       // a class
            r"\b(?:lets|a+) kil",  // a repetition
            r"\b(?:lets kil|kil)", // one way has no space
            r"\b(?:lets|) kil",    // one way has an empty first word
        ] {
            assert_eq!(regex_first_words(pattern), None, "{pattern}");
        }
    }

    #[test]
    fn every_shipped_regex_is_gated_on_uncommon_first_words() {
        // A regex that cannot be gated, or whose gate opens on words in
        // nearly every text, runs on every text: a slowdown no test of
        // verdicts would notice.
        let policy = crate::policy::load_dir(&crate::policy::shipped_dir()).unwrap();
        let mut regexes = 0;
        for det in policy.categories.iter().flat_map(|c| &c.detectors) {
            let DetectorKind::Regex(re) = &det.kind else {
                continue;
            };
            regexes += 1;
            let words = regex_first_words(re.as_str())
                .unwrap_or_else(|| panic!("{}: no first words", det.id));
            for common in ["the", "a", "i", "to", "and", "is", "are", "you", "it", "of"] {
                assert!(
                    !words.iter().any(|w| w == common),
                    "{}: gated on {common:?}",
                    det.id
                );
            }
        }
        assert!(regexes >= 4, "{regexes}");
    }

    #[test]
    fn a_bank_scores_each_of_its_models_like_the_model_itself() {
        let (a, b) = (model(1, 0.25), model(2, -0.5));
        let mut detectors = vec![classifier(a.clone()), classifier(b.clone())];
        let banks = assign_banks(&mut detectors);
        assert_eq!(banks.len(), 1, "same features share one bank");
        let mut margins = [0.0f32; BANK_WIDTH];
        for text in [
            "we wil kil them al tonight",
            "a",
            "",
            "the mayor should resign",
        ] {
            banks[0].margins(
                text,
                &mut Vec::new(),
                &mut WalkParts::default(),
                &mut margins,
                |_, _| {},
            );
            for (slot, m) in [a.clone(), b.clone()].iter().enumerate() {
                let want = m.margin_folded(text);
                assert!(
                    (margins[slot] - want).abs() < 1e-3 * (1.0 + want.abs()),
                    "{text:?} model {slot}: bank {} vs model {want}",
                    margins[slot]
                );
            }
        }
        // Evidence from the bank weighs a word's number as the model does.
        let text = normalize("we wil kil them al tonight");
        let mut parts = WalkParts::default();
        banks[0].margins(
            text.text(),
            &mut Vec::new(),
            &mut parts,
            &mut margins,
            |_, _| {},
        );
        let from_bank = banks[0].explain(&text, &parts, 0, 3);
        let from_model = a.explain(&text, 3);
        assert_eq!(from_bank.len(), from_model.len());
        for (x, y) in from_bank.iter().zip(&from_model) {
            assert_eq!((x.0, x.1), (y.0, y.1), "{from_bank:?} vs {from_model:?}");
            assert!((x.2 - y.2).abs() < 1e-3 * (1.0 + y.2.abs()));
        }
    }

    #[test]
    fn a_long_text_of_one_strong_word_scores_as_the_model_does() {
        // Every feature of "kil" at the largest weight, with its sign, and
        // the word's vector number at the largest too: each repetition adds
        // the most a word can to the bank's integer sums (about 6 * 32767
        // for the character n-grams), which 16-bit weights summed in 32 bits
        // would overflow after some 11,000 words, and the word-vector term
        // after some 65,000: the score of a long post would then wrap round
        // to anything.
        let spec = FeatureSpec {
            bits: 12,
            word_ngrams: (1, 2),
            char_ngrams: (3, 5),
        };
        let mut m = LinearModel::zeros(spec);
        spec.visit("kil kil", |ft| m.weights[ft.index as usize] = ft.sign);
        m.words = crate::policy::embeddings::WordTable::new(vec![(
            crate::policy::features::word_hash("kil"),
            1.0,
        )]);
        let m = Arc::new(m);
        let mut detectors = vec![classifier(m.clone())];
        let banks = assign_banks(&mut detectors);
        let text = "kil ".repeat(70_000);
        let mut margins = [0.0f32; BANK_WIDTH];
        banks[0].margins(
            &text,
            &mut Vec::new(),
            &mut WalkParts::default(),
            &mut margins,
            |_, _| {},
        );
        let want = m.margin_folded(&text);
        assert!(want > 100.0, "{want}");
        assert!(
            (margins[0] - want).abs() < 1e-3 * want,
            "bank {} vs model {want}",
            margins[0]
        );
    }

    #[test]
    fn a_bank_explains_from_the_scored_words_exactly_as_from_every_feature() {
        let (a, b, c) = (model(1, 0.25), model(2, -0.5), model(3, 0.1));
        let mut detectors = vec![classifier(a), classifier(b), classifier(c)];
        let banks = assign_banks(&mut detectors);
        assert_eq!(banks.len(), 1);
        let mut margins = [0.0f32; BANK_WIDTH];
        let mut shown = 0;
        for original in [
            "We will KILL them all tonight, the mayor too",
            "k i l l the mayor",
            "coon",
            "a",
            "",
            "\u{fb01}ne words, caf\u{e9} kil\u{200b}l",
        ] {
            let text = normalize(original);
            let mut parts = WalkParts::default();
            banks[0].margins(
                text.text(),
                &mut Vec::new(),
                &mut parts,
                &mut margins,
                |_, _| {},
            );
            // What the walk kept of each word: its running character sums
            // (one per model) and its row of the word-vector table.
            let words = parts.walked.words.len();
            assert_eq!(parts.walked.running.len(), 3 * words, "{original:?}");
            assert_eq!(parts.rows.len(), words, "{original:?}");
            for slot in 0..3 {
                // Nothing from the walk: every feature is hashed again.
                let every = banks[0].explain(&text, &WalkParts::default(), slot, 3);
                let scored = banks[0].explain(&text, &parts, slot, 3);
                assert_eq!(scored, every, "{original:?} slot {slot}");
                shown += every.len();
            }
        }
        assert!(shown >= 10, "{shown}");
    }

    #[test]
    fn models_that_know_different_words_do_not_share_a_bank() {
        let a = model(1, 0.25);
        let mut other = (*model(2, -0.5)).clone();
        other.words = crate::policy::embeddings::WordTable::new(vec![(
            crate::policy::features::word_hash("mayor"),
            2.0,
        )]);
        let b = Arc::new(other);
        // A model without word vectors joins either.
        let c = model(3, 0.1);
        let mut detectors = vec![
            classifier(a.clone()),
            classifier(b.clone()),
            classifier(c.clone()),
        ];
        let banks = assign_banks(&mut detectors);
        assert_eq!(banks.len(), 2, "the two vocabularies need two banks");
        let mut margins = [0.0f32; BANK_WIDTH];
        for det in &detectors {
            let Compiled::Classifier {
                model, bank, slot, ..
            } = &det.kind
            else {
                unreachable!()
            };
            for text in ["the mayor should resign", "we wil kil them al tonight"] {
                banks[*bank].margins(
                    text,
                    &mut Vec::new(),
                    &mut WalkParts::default(),
                    &mut margins,
                    |_, _| {},
                );
                let want = model.margin_folded(text);
                assert!(
                    (margins[*slot] - want).abs() < 1e-3 * (1.0 + want.abs()),
                    "{text:?}: bank {} vs model {want}",
                    margins[*slot]
                );
            }
        }
    }

    /// An engine with one context-sensitive category, whose one detector
    /// finds "are vermin" and "are animals" (0.9), and the context signal
    /// `signal` (a `[[context.signal]]` table's fields), at full dampening.
    fn engine_with_signal(signal: &str) -> Engine {
        engine_with(signal, "")
    }

    /// The policy written as one TOML file.
    fn policy_from_toml(toml: &str) -> Policy {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.toml"), toml).unwrap();
        crate::policy::load_dir(dir.path()).unwrap()
    }

    /// The engine of a policy written as one TOML file.
    fn engine_from_toml(toml: &str) -> Engine {
        Engine::compile(policy_from_toml(toml)).unwrap()
    }

    /// [`engine_with_signal`], with `detectors` (TOML) added to category `c`.
    fn engine_with(signal: &str, detectors: &str) -> Engine {
        engine_from_toml(&format!(
            r#"
[context]
dampening = 1.0

[[context.signal]]
{signal}

[[category]]
id = "c"
title = "C"
aup = "No vilifying."
severity = "high"
flag_threshold = 0.5
context_sensitive = true

[[category.detector]]
id = "c.vermin"
kind = "phrases"
weight = 0.9
phrases = ["are vermin", "are animals"]
{detectors}
"#
        ))
    }

    /// The verdict on `text`, and whether the context signal `id` fired.
    fn score_firing(engine: &Engine, id: &str, text: &str) -> (Verdict, bool) {
        let v = engine.score(text);
        let fired = v.context_signals.iter().any(|s| s == id);
        (v, fired)
    }

    #[test]
    fn a_signal_kept_to_some_categories_lowers_only_what_their_models_alone_read() {
        // Two context-sensitive categories: "c" reads a slur by name and,
        // with a model sure of every text, reads anything; "d" reads a
        // call to violence by name.
        let mut policy = policy_from_toml(
            r#"
[context]
dampening = 1.0

[[context.signal]]
id = "c.unprotected"
categories = ["c"]
weight = 0.9
phrases = ["lawyers"]
unless = ["jews"]

[[category]]
id = "c"
title = "C"
aup = "No hate."
severity = "high"
flag_threshold = 0.5
context_sensitive = true

[[category.detector]]
id = "c.slur"
kind = "phrases"
weight = 0.9
phrases = ["vermin"]

[[category]]
id = "d"
title = "D"
aup = "No calls to violence."
severity = "high"
flag_threshold = 0.5
context_sensitive = true

[[category.detector]]
id = "d.call"
kind = "phrases"
weight = 0.9
phrases = ["kill all the"]
"#,
        );
        policy.categories[0]
            .detectors
            .push(super::super::load::Detector {
                id: "c.model".into(),
                weight: 1.0,
                kind: DetectorKind::Classifier {
                    path: "models/test.model".into(),
                    model: model(2, 50.0),
                    midpoint: 0.5,
                },
                requires: Vec::new(),
            });
        let engine = Engine::compile(policy).unwrap();
        // The model alone reads the text: the signal lowers "c" only.
        let (v, fired) = score_firing(&engine, "c.unprotected", "Kill all the lawyers");
        assert!(fired, "{v:?}");
        assert!(!v.is_flagged("c") && v.is_flagged("d"), "{v:?}");
        assert!(v.scores["d"] > 0.85, "{v:?}");
        // The verdict's context is that of the signals kept to no category.
        assert_eq!(v.context, 0.0);
        // A phrase of `unless` keeps it from firing.
        let (v, fired) = score_firing(&engine, "c.unprotected", "Lawyers and jews alike");
        assert!(!fired && v.is_flagged("c"), "{v:?}");
        // Evidence a detector of "c" found by name is not lowered.
        let (v, fired) = score_firing(&engine, "c.unprotected", "Lawyers are vermin");
        assert!(!fired && v.is_flagged("c"), "{v:?}");
        // Without its phrase the signal is silent and the model flags.
        let (v, fired) = score_firing(&engine, "c.unprotected", "Dentists are dull");
        assert!(!fired && v.is_flagged("c"), "{v:?}");
    }

    #[test]
    fn a_signal_with_needs_fires_only_when_one_of_them_stands_in_the_text() {
        let engine = engine_with_signal(
            r#"id = "c.judged"
weight = 0.8
phrases = ["shameful"]
needs = ["called", "saying"]"#,
        );
        // A saying reported and judged: the signal fires and the flag goes.
        for text in [
            "Shameful. He called them animals on live television.",
            "Saying they are vermin is shameful.",
        ] {
            let (v, fired) = score_firing(&engine, "c.judged", text);
            assert!(fired && !v.is_flagged("c"), "{text:?}: {v:?}");
        }
        // The judging word alone, or the saying alone, is not the signal.
        for text in [
            "Shameful how they are vermin, all of them.",
            "He called them friends; they are animals.",
        ] {
            let (v, fired) = score_firing(&engine, "c.judged", text);
            assert!(!fired && v.is_flagged("c"), "{text:?}: {v:?}");
        }
    }

    #[test]
    fn a_signal_phrase_inside_a_detectors_evidence_is_not_context() {
        // "are animals" is the detector's phrase; "animals" alone is the
        // signal's. Inside the evidence it is part of what was found.
        let with = |fields: &str| {
            engine_with_signal(&format!(
                "id = \"c.s\"\nweight = 0.8\nphrases = [\"animals\", \"never\"]\n{fields}"
            ))
        };
        let plain = with("");
        let (v, fired) = score_firing(&plain, "c.s", "They are animals.");
        assert!(!fired && v.is_flagged("c"), "{v:?}");
        // The same phrase outside the evidence is context again.
        let (v, fired) = score_firing(&plain, "c.s", "They are animals, never forget.");
        assert!(fired && !v.is_flagged("c"), "{v:?}");
        // A signal that reads the evidence counts wherever it stands.
        let reads = with("reads_evidence = true");
        let (v, fired) = score_firing(&reads, "c.s", "They are animals.");
        assert!(fired && !v.is_flagged("c"), "{v:?}");
    }

    #[test]
    fn a_denying_signal_fires_only_when_all_the_evidence_is_in_the_clause_it_opens() {
        let engine = engine_with_signal(
            r#"id = "c.denied"
denies_clause = true
weight = 0.8
phrases = ["false that", "no evidence that"]"#,
        );
        let denied = |text: &str| {
            let (v, fired) = score_firing(&engine, "c.denied", text);
            // Where it fires it lowers the evidence's 0.9 below the flag line.
            assert!(!(fired && v.is_flagged("c")), "{text:?}: {v:?}");
            fired
        };
        assert!(denied("It is false that they are vermin."));
        assert!(denied("There is NO evidence that they are vermin"));
        // Before the phrase, after the clause, or on both sides of it.
        assert!(!denied(
            "They are vermin, and it is false that they are kind."
        ));
        assert!(!denied(
            "It is false that they are people; they are animals."
        ));
        assert!(!denied(
            "It is false that they are vermin, they are animals."
        ));
        // No evidence at all: nothing to lower, and the signal stays quiet.
        assert!(!denied("It is false that it rained."));
        // Without a denying phrase the evidence flags as usual.
        assert!(!denied("They are vermin."));
        assert!(engine.score("They are vermin.").is_flagged("c"));
        assert!(engine
            .score("It is false that they are people; they are animals.")
            .is_flagged("c"));
    }

    #[test]
    fn an_attributed_claim_is_judged_like_a_quotation_by_a_phrase_after_it() {
        let engine = engine_with_signal(
            r#"id = "c.judged"
judges_quote = true
weight = 0.8
phrases = ["ignorant", "wrong"]
attributions = ["people who say", "said"]"#,
        );
        let judged = |text: &str| {
            let (v, fired) = score_firing(&engine, "c.judged", text);
            assert_eq!(fired, !v.is_flagged("c"), "{text:?}: {v:?}");
            fired
        };
        assert!(judged("People who say they are vermin are ignorant."));
        assert!(judged("He said they are animals, which is wrong"));
        // Approved, judged before the claim, or hate beside it: flagged.
        assert!(!judged("People who say they are vermin are right."));
        assert!(!judged("It is wrong, but he said they are animals"));
        assert!(!judged("He said they are nice, wrong, they are animals"));
        assert!(!judged(
            "They are vermin and people who say so are ignorant"
        ));
        // Quotations are judged as before.
        assert!(judged("\"They are vermin\" is wrong"));
    }

    #[test]
    fn an_insult_that_is_the_judgement_does_not_count_as_part_of_the_claim() {
        // A detector that reads "is a fool" as an insult holds the judging
        // phrase "a fool": it is the judgement, not the claim judged.
        let engine = engine_with(
            r#"id = "c.judged"
judges_quote = true
weight = 0.8
phrases = ["a fool"]
attributions = ["anyone who says"]"#,
            r#"
[[category.detector]]
id = "c.insult"
kind = "phrases"
weight = 0.9
phrases = ["is a fool"]"#,
        );
        let judged = |text: &str| score_firing(&engine, "c.judged", text).1;
        assert!(judged("Anyone who says they are vermin is a fool."));
        // Hate after the judgement, or no attribution: not judged.
        assert!(!judged(
            "Anyone who says they are vermin is a fool, they are vermin"
        ));
        assert!(!judged("They are vermin, anyone who disagrees is a fool"));
        // The insult alone has no claim to judge.
        assert!(!judged("Anyone who says that is a fool"));
    }

    #[test]
    fn a_clause_ends_at_the_next_punctuation_mark_or_line_break() {
        assert_eq!(clause_end("false that a b. c", 10), 14);
        assert_eq!(clause_end("false that a, b", 10), 12);
        assert_eq!(clause_end("false that a\nb", 10), 12);
        assert_eq!(clause_end("false that a b", 10), 14);
        assert_eq!(clause_end("false that", 10), 10);
    }

    #[test]
    fn quotations_are_pairs_of_marks_around_words_not_apostrophes() {
        let quoted = |t: &str| -> Vec<String> {
            quotations(t)
                .into_iter()
                .map(|(s, e)| t[s..e].to_string())
                .collect()
        };
        assert_eq!(quoted("He wrote 'X are Y', which is vile."), ["X are Y"]);
        assert_eq!(
            quoted("\"A\" and \u{201c}B\u{201d} and \u{ab}C\u{bb}"),
            ["A", "B", "C"]
        );
        assert_eq!(quoted("'Kill all X' is a slogan"), ["Kill all X"]);
        // Apostrophes and a stray mark after a word quote nothing.
        assert!(quoted("don't say the women's rights aren't real").is_empty());
        assert!(quoted("Honestly\" X are Y\" and it is wrong").is_empty());
        // A mark left open quotes nothing.
        assert!(quoted("he said \"X are Y").is_empty());
        assert!(quoted("no marks at all").is_empty());
        // A closing mark has no letter after it: "'em" does not close.
        assert_eq!(quoted("'give 'em hell' he wrote"), ["give 'em hell"]);
    }
}
