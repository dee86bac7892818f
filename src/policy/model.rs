//! A learned linear detector: hashed features, one weight per bucket, a bias
//! and a sigmoid.
//!
//! # File format (version 1)
//!
//! All integers and floats little-endian:
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `AUPDLIN\0` |
//! | 4 | format version, `u32` = 1 |
//! | 4 | header length `h`, `u32` |
//! | h | JSON header: `{"spec": FeatureSpec, "weights": n}` |
//! | 4 | bias, `f32` |
//! | 4·n | weights, `f32`, n = 2^bits |
//!
//! Version 2 (a model that reads word vectors, see
//! [`super::embeddings`]) follows the weights with its word table:
//!
//! | bytes | content |
//! |---|---|
//! | 4 | words `m`, `u32` |
//! | 12·m | each word: its hash `u64`, its number `f32`, sorted by hash |
//!
//! A model without word vectors is written as version 1. Nothing may follow
//! the last section.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::embeddings::WordTable;
use super::features::{word_hash, FeatureSpec, Group};
use super::normalize::{Normalized, LINK, MENTION};

/// The first bytes of every model file.
pub const MAGIC: &[u8; 8] = b"AUPDLIN\0";
/// The newest format version this build writes and reads (it reads 1 too).
pub const FORMAT_VERSION: u32 = 2;

/// Why a model file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read or written.
    #[error("model file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a model file.
    #[error("model file {path}: bad magic (not an aupd linear model)")]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a format this build does not know.
    #[error("model file {path}: unsupported format version {version} (this build reads 1 to {FORMAT_VERSION})")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The file ends early.
    #[error("model file {path}: truncated ({what})")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: &'static str,
    },
    /// The header or the sizes are inconsistent.
    #[error("model file {path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// A logistic-regression detector over hashed features.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// The features it reads.
    pub spec: FeatureSpec,
    /// The intercept.
    pub bias: f32,
    /// One weight per hash bucket (`spec.dim()` of them).
    pub weights: Vec<f32>,
    /// The word-vector term: one number per word, averaged over the
    /// text's words that have one (empty: no such term).
    pub words: WordTable,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    spec: FeatureSpec,
    weights: usize,
}

/// The logistic function.
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl LinearModel {
    /// Folds Platt scaling into the weights: afterwards the model predicts
    /// `sigmoid(a·z + b)` of its former margin `z`.
    pub fn calibrate(&mut self, a: f32, b: f32) {
        for w in &mut self.weights {
            *w *= a;
        }
        self.words.scale(a);
        self.bias = a * self.bias + b;
    }

    /// A model with all weights zero (it predicts 0.5 everywhere).
    pub fn zeros(spec: FeatureSpec) -> Self {
        Self {
            spec,
            bias: 0.0,
            weights: vec![0.0; spec.dim()],
            words: WordTable::default(),
        }
    }

    /// The raw score (log-odds) of an already folded text.
    #[inline]
    pub fn margin_folded(&self, folded: &str) -> f32 {
        self.bias + self.spec.dot(folded, &self.weights) + self.words.term(folded)
    }

    /// The probability that a folded text belongs to the category.
    #[inline]
    pub fn predict_folded(&self, folded: &str) -> f32 {
        sigmoid(self.margin_folded(folded))
    }

    /// The probability that the text belongs to the category.
    pub fn predict(&self, text: &Normalized) -> f32 {
        self.predict_folded(text.text())
    }

    /// The folded byte spans `(start, end, contribution)` of the (at most)
    /// `k` words that pushed the score up the most, best first. A word's
    /// contribution is its unigram feature plus the character n-grams read
    /// inside it; n-grams spanning several words are left out.
    pub fn explain(&self, text: &Normalized, k: usize) -> Vec<(usize, usize, f32)> {
        let hashes: Vec<u64> = if self.words.is_empty() {
            Vec::new()
        } else {
            text.text().split(' ').map(word_hash).collect()
        };
        explain_with(
            &self.spec,
            text,
            k,
            |index, sign| sign * self.weights.get(index as usize).copied().unwrap_or(0.0),
            |i| self.words.get(*hashes.get(i)?),
        )
    }

    /// The model in the file format: version 1, or 2 with a word table.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = Header {
            spec: self.spec,
            weights: self.weights.len(),
        };
        // Serialising a struct of plain numbers cannot fail.
        let json = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(20 + json.len() + 4 * self.weights.len());
        out.extend_from_slice(MAGIC);
        let version: u32 = if self.words.is_empty() { 1 } else { 2 };
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&self.bias.to_le_bytes());
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        if version == 2 {
            out.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
            for &(h, v) in self.words.entries() {
                out.extend_from_slice(&h.to_le_bytes());
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Reads a model from bytes; `path` only names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let p = || path.to_path_buf();
        let truncated = |what| ModelError::Truncated { path: p(), what };
        let invalid = |problem: String| ModelError::Invalid { path: p(), problem };
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                truncated("magic")
            } else {
                ModelError::BadMagic { path: p() }
            });
        }
        if &bytes[..8] != MAGIC {
            return Err(ModelError::BadMagic { path: p() });
        }
        let u32_at = |at: usize, what| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| truncated(what))
        };
        let version = u32_at(8, "version")?;
        if version != 1 && version != 2 {
            return Err(ModelError::Version { path: p(), version });
        }
        let hlen = u32_at(12, "header length")? as usize;
        let json = bytes
            .get(16..16 + hlen)
            .ok_or_else(|| truncated("header"))?;
        let header: Header =
            serde_json::from_slice(json).map_err(|e| invalid(format!("bad JSON header: {e}")))?;
        header
            .spec
            .validate()
            .map_err(|e| invalid(format!("bad feature spec: {e}")))?;
        if header.weights != header.spec.dim() {
            return Err(invalid(format!(
                "wrong size: header says {} weights, {} bits need {}",
                header.weights,
                header.spec.bits,
                header.spec.dim()
            )));
        }
        let body = &bytes[16 + hlen..];
        let need = 4 + 4 * header.weights;
        if body.len() < need {
            return Err(truncated("weights"));
        }
        let (body, rest) = body.split_at(need);
        let words = if version == 2 {
            let count = rest
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| truncated("word count"))? as usize;
            let table = &rest[4..];
            if table.len() < 12 * count {
                return Err(truncated("word table"));
            }
            if table.len() > 12 * count {
                return Err(invalid(format!(
                    "wrong size: {} bytes after the word table",
                    table.len() - 12 * count
                )));
            }
            let mut entries = Vec::with_capacity(count);
            for c in table.chunks_exact(12) {
                let h = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                let v = f32::from_le_bytes([c[8], c[9], c[10], c[11]]);
                if !v.is_finite() {
                    return Err(invalid("a word's number is not finite".into()));
                }
                if entries.last().is_some_and(|&(p, _)| p >= h) {
                    return Err(invalid("the word table is not sorted by hash".into()));
                }
                entries.push((h, v));
            }
            WordTable::new(entries)
        } else {
            if !rest.is_empty() {
                return Err(invalid(format!(
                    "wrong size: {} bytes after the weights",
                    rest.len()
                )));
            }
            WordTable::default()
        };
        let mut floats = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let bias = floats.next().ok_or_else(|| truncated("bias"))?;
        let weights: Vec<f32> = floats.collect();
        if !bias.is_finite() || weights.iter().any(|w| !w.is_finite()) {
            return Err(invalid("a weight is not a finite number".into()));
        }
        Ok(Self {
            spec: header.spec,
            bias,
            weights,
            words,
        })
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        std::fs::write(path, self.to_bytes()).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a model file, checking magic, version, header and sizes.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }
}

/// Whether a word is never shown as a model's evidence: a function word
/// (a pronoun, an article or a preposition) in folded form (one letter per
/// run: "al" is "all"), or the word every link or every @-mention folds to
/// (that a post names someone or links somewhere is no evidence of abuse to
/// show a tenant; the echo, which is, stays). A `match` rather than a list
/// search: this runs for every word of every flagged text.
fn is_never_evidence(word: &str) -> bool {
    matches!(
        word,
        LINK | MENTION
            | "a"
            | "al"
            | "an"
            | "and"
            | "are"
            | "as"
            | "at"
            | "be"
            | "but"
            | "by"
            | "for"
            | "from"
            | "he"
            | "her"
            | "him"
            | "his"
            | "i"
            | "in"
            | "is"
            | "it"
            | "its"
            | "me"
            | "my"
            | "of"
            | "on"
            | "or"
            | "our"
            | "she"
            | "that"
            | "the"
            | "their"
            | "them"
            | "these"
            | "they"
            | "this"
            | "those"
            | "to"
            | "us"
            | "was"
            | "we"
            | "were"
            | "with"
            | "you"
            | "your"
            | "ur"
            | "u"
    )
}

/// [`LinearModel::explain`] with the weights read through `weight(bucket,
/// sign)` and word `i`'s number of the word-vector term through
/// `word_value(i)`, so a caller holding the weights in another layout (the engine's
/// quantised banks, still in cache from scoring) explains without them.
pub fn explain_with(
    spec: &FeatureSpec,
    text: &Normalized,
    k: usize,
    weight: impl Fn(u32, f32) -> f32,
    word_value: impl Fn(usize) -> Option<f32>,
) -> Vec<(usize, usize, f32)> {
    let folded = text.text();
    let starts: Vec<usize> = (0..text.word_count()).map(|i| text.word_start(i)).collect();
    // One pass: each word's unscaled unigram and character sums, and the
    // group sizes that scale them.
    let mut sums = vec![(0.0f32, 0.0f32); starts.len()];
    let (mut nw, mut nc) = (0u32, 0u32);
    spec.visit(folded, |ft| {
        let w = weight(ft.index, ft.sign);
        match ft.group {
            Group::Word => nw += 1,
            Group::Char => nc += 1,
        }
        if let Some(slot) = sums.get_mut(ft.word as usize) {
            match ft.group {
                Group::Word if ft.unigram => slot.0 += w,
                Group::Word => {}
                Group::Char => slot.1 += w,
            }
        }
    });
    let word = |i: usize| {
        let start = starts[i];
        let end = folded[start..]
            .find(' ')
            .map_or(folded.len(), |off| start + off);
        (start, end)
    };
    rank_words(
        folded,
        sums.len(),
        |i| sums[i],
        (nw, nc),
        word,
        word_value,
        k,
    )
}

/// The end of [`explain_with`], for a caller that has the sums already:
/// from each word's unscaled unigram and character sums (`sums(i)` of word
/// `i` of `words`, each added up from 0 in [`FeatureSpec::visit`]'s order),
/// the sizes of the word and character groups (`counts`), where each word is
/// in `folded` (`span(i)`) and its number of the word-vector term
/// (`word_value(i)`), the (at most) `k` words that pushed the score up the
/// most, best first. Nothing is allocated but the answer: this runs for
/// every model behind every flag.
pub fn rank_words(
    folded: &str,
    words: usize,
    sums: impl Fn(usize) -> (f32, f32),
    counts: (u32, u32),
    span: impl Fn(usize) -> (usize, usize),
    word_value: impl Fn(usize) -> Option<f32>,
    k: usize,
) -> Vec<(usize, usize, f32)> {
    let scale = |n: u32| if n == 0 { 0.0 } else { 1.0 / (n as f32).sqrt() };
    let (sw, sc) = (scale(counts.0), scale(counts.1));
    // The word-vector term is the mean of the numbers of the words that
    // have one: each such word adds its number over how many there are.
    let hits = (0..words).filter(|&i| word_value(i).is_some()).count();
    // The best `k` words with a positive contribution, best first, an
    // earlier word first among equals: kept in order as the words are read,
    // so a word joins only by beating the last of a full list.
    let mut best: Vec<(usize, usize, f32)> = Vec::with_capacity(k + 1);
    for i in 0..words {
        let (w, c) = sums(i);
        let mut c = w * sw + c * sc;
        if let Some(v) = word_value(i) {
            c += v / hits as f32;
        }
        if c > 0.0 {
            let at = best
                .iter()
                .position(|b| c.total_cmp(&b.2).is_gt())
                .unwrap_or(best.len());
            if at >= k {
                continue;
            }
            // A pronoun or an article may weigh in the model, but shown to
            // a tenant as evidence it says nothing; the words around it do.
            let (start, end) = span(i);
            if is_never_evidence(&folded[start..end]) {
                continue;
            }
            best.insert(at, (start, end, c));
            best.truncate(k);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::normalize::normalize;

    fn small() -> LinearModel {
        let spec = FeatureSpec {
            bits: 10,
            word_ngrams: (1, 2),
            char_ngrams: (3, 4),
        };
        let mut m = LinearModel::zeros(spec);
        for (i, w) in m.weights.iter_mut().enumerate() {
            *w = (i as f32 * 0.37).sin();
        }
        m.bias = -0.25;
        m
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.model");
        let m = small();
        m.save(&path).unwrap();
        let back = LinearModel::load(&path).unwrap();
        assert_eq!(back, m);
        let t = normalize("some text to score");
        assert_eq!(back.predict(&t), m.predict(&t));
    }

    #[test]
    fn load_rejects_bad_magic_truncation_and_wrong_size() {
        let path = Path::new("x.model");
        let bytes = small().to_bytes();
        let err = LinearModel::from_bytes(b"PK\x03\x04junkjunkjunk", path).unwrap_err();
        assert_eq!(
            err.to_string(),
            "model file x.model: bad magic (not an aupd linear model)"
        );
        let err = LinearModel::from_bytes(&bytes[..bytes.len() - 3], path).unwrap_err();
        assert_eq!(err.to_string(), "model file x.model: truncated (weights)");
        let err = LinearModel::from_bytes(&bytes[..20], path).unwrap_err();
        assert_eq!(err.to_string(), "model file x.model: truncated (header)");
        let mut long = bytes.clone();
        long.extend_from_slice(&[0; 8]);
        let err = LinearModel::from_bytes(&long, path).unwrap_err();
        assert!(err.to_string().contains("wrong size"), "{err}");
        // A version-2 file must hold a word table after the weights.
        let mut v2 = bytes.clone();
        v2[8] = 2;
        let err = LinearModel::from_bytes(&v2, path).unwrap_err();
        assert_eq!(
            err.to_string(),
            "model file x.model: truncated (word count)"
        );
        let mut v3 = bytes;
        v3[8] = 3;
        let err = LinearModel::from_bytes(&v3, path).unwrap_err();
        assert!(err.to_string().contains("unsupported format version 3"));
    }

    fn with_words() -> LinearModel {
        let mut m = small();
        m.words = WordTable::new(vec![
            (word_hash("vermin"), 2.5),
            (word_hash("flowers"), -1.0),
        ]);
        m
    }

    #[test]
    fn a_model_with_word_vectors_round_trips_as_version_2() {
        let plain = small().to_bytes();
        assert_eq!(plain[8], 1, "without a word table the file stays version 1");
        let m = with_words();
        let bytes = m.to_bytes();
        assert_eq!(bytes[8], 2);
        assert_eq!(bytes.len(), plain.len() + 4 + 2 * 12);
        let back = LinearModel::from_bytes(&bytes, Path::new("w.model")).unwrap();
        assert_eq!(back, m);
        // The term is the mean of the known words' numbers.
        let t = "they are vermin not flowers";
        let diff = back.margin_folded(t) - small().margin_folded(t);
        assert!((diff - 0.75).abs() < 1e-5, "{diff}");
        let p = Path::new("w.model");
        let err = LinearModel::from_bytes(&bytes[..bytes.len() - 1], p).unwrap_err();
        assert_eq!(
            err.to_string(),
            "model file w.model: truncated (word table)"
        );
        let mut long = bytes.clone();
        long.push(0);
        let err = LinearModel::from_bytes(&long, p).unwrap_err();
        assert!(err.to_string().contains("after the word table"), "{err}");
        // Entries out of order are refused.
        let n = bytes.len();
        let mut swapped = bytes.clone();
        let (a, b) = (bytes[n - 24..n - 12].to_vec(), bytes[n - 12..].to_vec());
        swapped[n - 24..n - 12].copy_from_slice(&b);
        swapped[n - 12..].copy_from_slice(&a);
        let err = LinearModel::from_bytes(&swapped, p).unwrap_err();
        assert!(err.to_string().contains("not sorted"), "{err}");
    }

    #[test]
    fn calibration_scales_the_word_term_with_the_weights() {
        let mut m = with_words();
        let t = "vermin";
        let before = m.margin_folded(t);
        m.calibrate(2.0, 0.5);
        assert!((m.margin_folded(t) - (2.0 * before + 0.5)).abs() < 1e-4);
    }

    #[test]
    fn explain_counts_a_words_number_as_its_evidence() {
        let spec = FeatureSpec {
            bits: 12,
            word_ngrams: (1, 1),
            char_ngrams: (0, 0),
        };
        let mut m = LinearModel::zeros(spec);
        // Only the word table speaks: "cockroaches" was never a training word.
        m.words = WordTable::new(vec![(word_hash("cockroaches"), 4.0)]);
        let t = normalize("those people are cockroaches");
        let top = m.explain(&t, 3);
        let words: Vec<&str> = top.iter().map(|&(s, e, _)| &t.text()[s..e]).collect();
        assert_eq!(words, ["cockroaches"]);
        assert!(m.predict(&t) > 0.9);
    }

    #[test]
    fn load_names_a_missing_file() {
        let err = LinearModel::load(Path::new("/nonexistent/m.model")).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("model file /nonexistent/m.model:"));
    }

    #[test]
    fn explain_points_at_the_words_with_positive_weight() {
        let spec = FeatureSpec {
            bits: 12,
            word_ngrams: (1, 1),
            char_ngrams: (0, 0),
        };
        let mut m = LinearModel::zeros(spec);
        let t = normalize("we will HUNT them down");
        // Give the unigram of "hunt" a positive contribution.
        spec.visit(t.text(), |f| {
            if f.word == 2 {
                m.weights[f.index as usize] = f.sign * 3.0;
            }
        });
        let top = m.explain(&t, 3);
        assert_eq!(top.len(), 1);
        let (s, e, c) = top[0];
        assert_eq!(&t.text()[s..e], "hunt");
        assert!(c > 0.0);
        assert!(m.predict(&t) > 0.5);
    }

    /// The words `explain` shows for `text` under a unigram model that
    /// gives word `i` of the text the weight `weight(i)`.
    fn shown(text: &str, weight: impl Fn(u32) -> f32, k: usize) -> Vec<String> {
        let spec = FeatureSpec {
            bits: 12,
            word_ngrams: (1, 1),
            char_ngrams: (0, 0),
        };
        let mut m = LinearModel::zeros(spec);
        let t = normalize(text);
        spec.visit(t.text(), |f| {
            m.weights[f.index as usize] = f.sign * weight(f.word);
        });
        m.explain(&t, k)
            .iter()
            .map(|&(s, e, _)| t.text()[s..e].to_string())
            .collect()
    }

    #[test]
    fn explain_never_shows_a_pronoun_or_an_article_as_evidence() {
        // Every word pushes the score up, "them" and "all" the most.
        let words = shown("hang them all", |i| if i == 0 { 1.0 } else { 5.0 }, 3);
        assert_eq!(words, ["hang"]);
    }

    #[test]
    fn explain_never_shows_a_mention_or_a_link_but_shows_an_echo() {
        use crate::policy::normalize::ECHO;
        // Every word pushes the score up, the mention and the link the most.
        let text = "@jk_1987 loser https://t.co/x (((Google)))";
        let words = shown(text, |i| if i == 1 { 1.0 } else { 5.0 }, 4);
        assert_eq!(words, [ECHO, "loser"]);
    }
}
