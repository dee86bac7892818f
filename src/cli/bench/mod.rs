//! Throughput measurements that print figures (`aupd bench …`). Never used
//! as pass/fail tests, and never imported by the server.

pub mod cluster;
pub mod enforcement;
pub mod memory;
pub mod review;
pub mod sampling;
pub mod soak;

use std::time::Instant;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use anyhow::Context;

use crate::policy::Engine;

/// The `p` quantile (0–1) of already sorted figures; 0 when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Figures from one scoring benchmark.
#[derive(Debug, Clone)]
pub struct ScoreFigures {
    /// Texts scored per pass.
    pub texts: usize,
    /// Bytes per pass.
    pub bytes: usize,
    /// Passes made.
    pub rounds: usize,
    /// Seconds for all passes of the full policy.
    pub policy_secs: f64,
    /// Texts flagged for anything in one pass.
    pub flagged: usize,
    /// Seconds for all passes of folding alone (part of the full policy).
    pub fold_secs: f64,
    /// Seconds for all passes of a bare Aho-Corasick scan.
    pub bare_secs: f64,
    /// Phrases in the bare scan.
    pub bare_phrases: usize,
    /// Matches the bare scan found in one pass.
    pub bare_matches: usize,
}

impl ScoreFigures {
    /// Full-policy throughput in MB/s (10⁶ bytes).
    pub fn policy_mb_s(&self) -> f64 {
        (self.bytes * self.rounds) as f64 / self.policy_secs / 1e6
    }

    /// Full-policy throughput in texts/s.
    pub fn policy_texts_s(&self) -> f64 {
        (self.texts * self.rounds) as f64 / self.policy_secs
    }

    /// Folding-only throughput in MB/s.
    pub fn fold_mb_s(&self) -> f64 {
        (self.bytes * self.rounds) as f64 / self.fold_secs / 1e6
    }

    /// Bare-scan throughput in MB/s.
    pub fn bare_mb_s(&self) -> f64 {
        (self.bytes * self.rounds) as f64 / self.bare_secs / 1e6
    }

    /// Bare-scan throughput in texts/s.
    pub fn bare_texts_s(&self) -> f64 {
        (self.texts * self.rounds) as f64 / self.bare_secs
    }
}

/// Scores `texts` `rounds` times on this thread with the full policy, then
/// scans the same bytes with a bare case-insensitive Aho-Corasick DFA built
/// from the policy's phrase lists, for comparison.
pub fn score_throughput(
    engine: &Engine,
    texts: &[String],
    rounds: usize,
) -> anyhow::Result<ScoreFigures> {
    let rounds = rounds.max(1);
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut flagged = 0;
    let start = Instant::now();
    for round in 0..rounds {
        for t in texts {
            let v = engine.score(t);
            if round == 0 && !v.flagged.is_empty() {
                flagged += 1;
            }
        }
    }
    let policy_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut folded_bytes = 0usize;
    // Reusing one buffer, as the scorer does.
    let mut folded = crate::policy::normalize::Normalized::default();
    for _ in 0..rounds {
        for t in texts {
            crate::policy::normalize::normalize_into(t, &mut folded);
            folded_bytes += folded.text().len();
        }
    }
    let fold_secs = start.elapsed().as_secs_f64();
    std::hint::black_box(folded_bytes);

    let phrases = engine.phrases();
    let ac = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .match_kind(MatchKind::Standard)
        .ascii_case_insensitive(true)
        .build(&phrases)
        .context("building the bare automaton")?;
    let mut bare_matches = 0;
    let start = Instant::now();
    for round in 0..rounds {
        for t in texts {
            let n = ac.find_iter(t.as_bytes()).count();
            if round == 0 {
                bare_matches += n;
            }
        }
    }
    let bare_secs = start.elapsed().as_secs_f64();
    Ok(ScoreFigures {
        texts: texts.len(),
        bytes,
        rounds,
        policy_secs,
        flagged,
        fold_secs,
        bare_secs,
        bare_phrases: phrases.len(),
        bare_matches,
    })
}
