//! Hashed text features for the learned detectors.
//!
//! Features are read from the folded text of [`crate::policy::normalize`]
//! only, so training and scoring always see the same thing. Two groups:
//!
//! - **word n-grams** (e.g. unigrams and bigrams) over the folded words;
//! - **character n-grams** inside each word padded with one space on each
//!   side (`" kil "` gives `" k"`, `"ki"`, `"il"`, `"l "`, ... for n = 2).
//!
//! Every n-gram is hashed with a fixed, platform-independent hash into
//! `2^bits` buckets (word n-grams: FNV-1a over each word's bytes, combined
//! and finished with a multiply-shift step; character n-grams: their bytes
//! packed into one integer, then two multiply-xorshift steps);
//! the next hash bit gives the sign (signed feature hashing, so
//! collisions cancel on average instead of piling up).
//!
//! The vector of a text is the sum of its signed n-gram occurrences, with each
//! group divided by the square root of its number of occurrences: the two
//! groups weigh the same whatever the text's length. (When no n-gram repeats,
//! this is exactly an L2-normalised block per group.) This definition needs no
//! buffer, so [`FeatureSpec::dot`] scores a text while hashing it.

use serde::{Deserialize, Serialize};

/// Which features a model reads; stored in the model so scoring matches training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Number of hash bits: the model has `2^bits` weights.
    pub bits: u8,
    /// Smallest and largest word n-gram (0, 0 = no word features).
    pub word_ngrams: (u8, u8),
    /// Smallest and largest character n-gram inside padded words (0, 0 = none).
    pub char_ngrams: (u8, u8),
}

/// The longest word n-gram a spec may ask for.
pub const MAX_WORD_NGRAM: u8 = 4;
/// The longest character n-gram a spec may ask for.
pub const MAX_CHAR_NGRAM: u8 = 8;

/// The group a feature belongs to; each group is normalised on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// A word n-gram.
    Word,
    /// A character n-gram inside one padded word.
    Char,
}

/// One n-gram occurrence of a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feature {
    /// The group it belongs to.
    pub group: Group,
    /// The index of its bucket, below `2^bits`.
    pub index: u32,
    /// +1.0 or -1.0.
    pub sign: f32,
    /// The index of the (first) word it was read from.
    pub word: u32,
    /// True for a word unigram.
    pub unigram: bool,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const WORD_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const CHAR_SEED: u64 = 0xc2b2_ae3d_27d4_eb4f;

#[inline(always)]
fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
}

/// `CHAR_MASKS[n]` keeps the low `n` bytes of a window.
const CHAR_MASKS: [u64; MAX_CHAR_NGRAM as usize + 1] = {
    let mut m = [0u64; MAX_CHAR_NGRAM as usize + 1];
    let mut n = 1;
    while n <= MAX_CHAR_NGRAM as usize {
        m[n] = if n == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        };
        n += 1;
    }
    m
};

/// The hash of a character n-gram packed into the low bytes of `key`. Text
/// bytes are never zero, so n-grams of different lengths cannot share a key.
#[inline(always)]
fn char_hash(key: u64) -> u64 {
    let h = (key ^ CHAR_SEED).wrapping_mul(FNV_PRIME ^ WORD_SEED);
    (h ^ (h >> 29)).wrapping_mul(MIX)
}

/// The odd multiplier of the multiply-shift step that turns a hash into a
/// bucket and a sign (Fibonacci hashing: the high bits mix every input bit).
const MIX: u64 = 0xd6e8_feb8_6659_fd93;

/// One word of a folded text: where it is and the hash that word n-grams
/// start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordHash {
    /// Byte offset of the word's start in the text.
    pub start: u32,
    /// Byte offset just past the word's end.
    pub end: u32,
    /// FNV-1a over the word's bytes.
    pub hash: u64,
}

/// What a walk over a folded text found ([`FeatureSpec::dot_quantised_walk`]),
/// in buffers reused from text to text: its words with their hashes, and,
/// for the shipped character n-gram ranges, the character sums so far at the
/// end of each word (`K` numbers per word, in units of each model's step;
/// empty for other ranges), from which a model's evidence reads what each
/// word's own n-grams add up to without hashing them again.
#[derive(Debug, Default)]
pub struct Walked {
    pub words: Vec<WordHash>,
    pub running: Vec<i64>,
}

/// The hash a folded word's n-grams start from (FNV-1a over its bytes), as
/// [`WordHash::hash`] holds it.
#[inline]
pub fn word_hash(word: &str) -> u64 {
    word.bytes().fold(FNV_OFFSET, fnv_step)
}

/// Writes into `out` (cleared first) the words of the folded `text`, as
/// [`FeatureSpec::visit`] reads them (split at spaces), with their hashes.
/// The plain statement of what the scoring walk finds; tests hold it to it.
#[cfg(test)]
pub fn hash_words(text: &str, out: &mut Vec<WordHash>) {
    out.clear();
    let mut h = FNV_OFFSET;
    let mut start = 0usize;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if b == b' ' {
            if i > start {
                out.push(WordHash {
                    start: start as u32,
                    end: i as u32,
                    hash: h,
                });
            }
            h = FNV_OFFSET;
            start = i + 1;
        } else {
            h = fnv_step(h, b);
        }
    }
    if text.len() > start {
        out.push(WordHash {
            start: start as u32,
            end: text.len() as u32,
            hash: h,
        });
    }
}

/// A feature's table entry: its bucket (the top `64 - shift` bits of the
/// hash) in the high bits, and the sign (the next bit) in the lowest.
#[inline(always)]
fn entry(h: u64, shift: u32) -> u32 {
    (h >> (shift - 1)) as u32
}

/// Writes the entries of the word `wl..=wh`-grams of `words` into `out`
/// from `k` on; returns where they end. The n-grams ending at word `j`
/// combine the hashes of words `j`, `j - 1`, ... in that order.
#[inline(always)]
fn word_entries(
    words: &[WordHash],
    wl: usize,
    wh: usize,
    shift: u32,
    out: &mut [u32],
    mut k: usize,
) -> usize {
    for j in 0..words.len() {
        let mut comb = WORD_SEED;
        for n in 1..=wh.min(j + 1) {
            comb = (comb.rotate_left(23) ^ words[j + 1 - n].hash).wrapping_mul(FNV_PRIME);
            if n >= wl {
                out[k] = entry((comb ^ n as u64).wrapping_mul(MIX), shift);
                k += 1;
            }
        }
    }
    k
}

/// Writes the entries of the character `cl..=ch`-grams of every word, padded
/// with a space on each side, into `out` from `k` on; returns where they
/// end. Each word is read through a window of its last eight bytes: the
/// n-gram ending at a byte is the window's low n bytes.
#[cfg(test)]
#[inline(always)]
fn char_entries(
    text: &str,
    words: &[WordHash],
    cl: usize,
    ch: usize,
    shift: u32,
    out: &mut [u32],
    mut k: usize,
) -> usize {
    let bytes = text.as_bytes();
    for w in words {
        let word = bytes
            .get(w.start as usize..w.end as usize)
            .unwrap_or_default();
        let mut window = u64::from(b' ');
        k = char_step(window, 1, cl, ch, shift, out, k);
        let mut at = 1usize;
        for &b in word {
            window = (window << 8) | u64::from(b);
            at += 1;
            k = char_step(window, at, cl, ch, shift, out, k);
        }
        window = (window << 8) | u64::from(b' ');
        k = char_step(window, at + 1, cl, ch, shift, out, k);
    }
    k
}

/// The entries of the n-grams that end at the `at`-th byte of a padded
/// word, the window holding that byte in its low byte.
#[inline(always)]
fn char_step(
    window: u64,
    at: usize,
    cl: usize,
    ch: usize,
    shift: u32,
    out: &mut [u32],
    mut k: usize,
) -> usize {
    // Index loops: with the lengths known at compile time they unroll, where
    // a slice of the masks would be bounds-checked at every byte.
    #[allow(clippy::needless_range_loop)]
    if at >= ch {
        for n in cl..=ch {
            out[k] = entry(char_hash(window & CHAR_MASKS[n]), shift);
            k += 1;
        }
    } else {
        for n in cl..=at {
            out[k] = entry(char_hash(window & CHAR_MASKS[n]), shift);
            k += 1;
        }
    }
    k
}

/// The walk behind [`FeatureSpec::dot_quantised_walk`]: finds the words of
/// `text` (split at spaces) and hashes them (FNV-1a), writes the entries of
/// their character `cl..=ch`-grams (none when `ch` is 0), each word padded
/// with a space on each side, into `out` from 0 on, and calls `on_byte`
/// for every byte. Returns how many entries it wrote.
#[inline(always)]
fn walk_words(
    text: &str,
    words: &mut Vec<WordHash>,
    cl: usize,
    ch: usize,
    shift: u32,
    out: &mut [u32],
    mut on_byte: impl FnMut(usize, u8),
) -> usize {
    words.clear();
    let bytes = text.as_bytes();
    let mut h = FNV_OFFSET;
    let mut start = 0usize;
    // The padded word read through a window of its last eight bytes, as in
    // `char_entries`; `at` counts its bytes so far, the leading space first.
    let mut window = u64::from(b' ');
    let mut at = 1usize;
    let mut k = 0usize;
    // Where the current word's entries start: a word that turns out empty
    // (two spaces in a row) takes back its leading space's.
    let mut word_k = 0usize;
    if ch > 0 {
        k = char_step(window, 1, cl, ch, shift, out, k);
    }
    for (i, &b) in bytes.iter().enumerate() {
        on_byte(i, b);
        if b == b' ' {
            if i > start {
                if ch > 0 {
                    window = (window << 8) | u64::from(b' ');
                    k = char_step(window, at + 1, cl, ch, shift, out, k);
                }
                words.push(WordHash {
                    start: start as u32,
                    end: i as u32,
                    hash: h,
                });
            } else {
                k = word_k;
            }
            h = FNV_OFFSET;
            start = i + 1;
            word_k = k;
            window = u64::from(b' ');
            at = 1;
            if ch > 0 {
                k = char_step(window, 1, cl, ch, shift, out, k);
            }
        } else {
            h = fnv_step(h, b);
            if ch > 0 {
                window = (window << 8) | u64::from(b);
                at += 1;
                k = char_step(window, at, cl, ch, shift, out, k);
            }
        }
    }
    if bytes.len() > start {
        if ch > 0 {
            window = (window << 8) | u64::from(b' ');
            k = char_step(window, at + 1, cl, ch, shift, out, k);
        }
        words.push(WordHash {
            start: start as u32,
            end: bytes.len() as u32,
            hash: h,
        });
    } else {
        k = word_k;
    }
    k
}

/// Sums of the rows of `entries`, and how many there are.
#[inline(always)]
fn sums<const K: usize>(rows: &[[i16; K]], entries: &[u32]) -> ([i64; K], usize) {
    let mut sum = [0i64; K];
    for &e in entries {
        if let Some(w) = rows.get(e as usize) {
            for m in 0..K {
                sum[m] += i64::from(w[m]);
            }
        }
    }
    (sum, entries.len())
}

/// [`walk_words`] for `cl >= 2` (a word's leading space alone is no
/// n-gram, so a word that turns out empty has none to take back), adding up
/// each n-gram's row of `rows` as it goes instead of listing it: the table
/// reads then also fill the phrase scan's waits. Returns the sums and the
/// number of n-grams. The words go into `walked`, each with the sums so far
/// at its end, and `on_word` is called with each word's hash.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn walk_sum<const K: usize>(
    text: &str,
    walked: &mut Walked,
    cl: usize,
    ch: usize,
    shift: u32,
    rows: &[[i16; K]],
    mut on_byte: impl FnMut(usize, u8),
    mut on_word: impl FnMut(u64),
) -> ([i64; K], usize) {
    #[inline(always)]
    #[allow(clippy::needless_range_loop)]
    fn add<const K: usize>(
        window: u64,
        at: usize,
        cl: usize,
        ch: usize,
        shift: u32,
        rows: &[[i16; K]],
        sum: &mut [i64; K],
    ) -> usize {
        let top = if at >= ch { ch } else { at };
        let mut n = cl;
        while n <= top {
            let e = entry(char_hash(window & CHAR_MASKS[n]), shift);
            if let Some(w) = rows.get(e as usize) {
                for m in 0..K {
                    sum[m] += i64::from(w[m]);
                }
            }
            n += 1;
        }
        (top + 1).saturating_sub(cl)
    }
    let Walked { words, running } = walked;
    words.clear();
    running.clear();
    let bytes = text.as_bytes();
    let mut sum = [0i64; K];
    let mut count = 0usize;
    let mut h = FNV_OFFSET;
    let mut start = 0usize;
    let mut window = u64::from(b' ');
    let mut at = 1usize;
    for (i, &b) in bytes.iter().enumerate() {
        on_byte(i, b);
        if b == b' ' {
            if i > start {
                if ch > 0 {
                    window = (window << 8) | u64::from(b' ');
                    count += add(window, at + 1, cl, ch, shift, rows, &mut sum);
                }
                words.push(WordHash {
                    start: start as u32,
                    end: i as u32,
                    hash: h,
                });
                running.extend_from_slice(&sum);
                on_word(h);
            }
            h = FNV_OFFSET;
            start = i + 1;
            window = u64::from(b' ');
            at = 1;
        } else {
            h = fnv_step(h, b);
            if ch > 0 {
                window = (window << 8) | u64::from(b);
                at += 1;
                count += add(window, at, cl, ch, shift, rows, &mut sum);
            }
        }
    }
    if bytes.len() > start {
        if ch > 0 {
            window = (window << 8) | u64::from(b' ');
            count += add(window, at + 1, cl, ch, shift, rows, &mut sum);
        }
        words.push(WordHash {
            start: start as u32,
            end: bytes.len() as u32,
            hash: h,
        });
        running.extend_from_slice(&sum);
        on_word(h);
    }
    (sum, count)
}

/// Each of `K` models' dot product, in units of its quantisation step, from
/// the table entries of a text's word and character n-grams (see
/// `FeatureSpec::dot_quantised_words`).
#[cfg(test)]
#[inline(always)]
fn quantised_sums<const K: usize>(table: &[i16], word_part: &[u32], char_part: &[u32]) -> [f32; K] {
    let (rows, _) = table.as_chunks::<K>();
    let sum = |entries: &[u32]| {
        let mut sum = [0i64; K];
        for &e in entries {
            if let Some(w) = rows.get(e as usize) {
                for m in 0..K {
                    sum[m] += i64::from(w[m]);
                }
            }
        }
        sum
    };
    let (word_sum, char_sum) = (sum(word_part), sum(char_part));
    let (nw, nc) = (word_part.len() as u32, char_part.len() as u32);
    let mut out = [0.0f32; K];
    for m in 0..K {
        out[m] = scale(word_sum[m] as f32, nw) + scale(char_sum[m] as f32, nc);
    }
    out
}

impl Default for FeatureSpec {
    fn default() -> Self {
        Self {
            bits: 18,
            word_ngrams: (1, 2),
            char_ngrams: (2, 4),
        }
    }
}

impl FeatureSpec {
    /// Checks the ranges and sizes; a model with a bad spec is rejected on load.
    pub fn validate(&self) -> Result<(), String> {
        if !(8..=24).contains(&self.bits) {
            return Err(format!("bits must be in 8..=24, got {}", self.bits));
        }
        let (wl, wh) = self.word_ngrams;
        if (wl, wh) != (0, 0) && !(1 <= wl && wl <= wh && wh <= MAX_WORD_NGRAM) {
            return Err(format!(
                "word n-grams must be 0-0 or within 1..={MAX_WORD_NGRAM}, got {wl}-{wh}"
            ));
        }
        let (cl, ch) = self.char_ngrams;
        if (cl, ch) != (0, 0) && !(1 <= cl && cl <= ch && ch <= MAX_CHAR_NGRAM) {
            return Err(format!(
                "char n-grams must be 0-0 or within 1..={MAX_CHAR_NGRAM}, got {cl}-{ch}"
            ));
        }
        if (wl, wh, cl, ch) == (0, 0, 0, 0) {
            return Err("no features: both n-gram ranges are empty".into());
        }
        Ok(())
    }

    /// The number of weights a model with this spec has.
    pub fn dim(&self) -> usize {
        1usize << self.bits
    }

    /// Calls `f` for every n-gram occurrence of the folded `text`, in a fixed
    /// order (word n-grams of each word, then its character n-grams).
    #[inline]
    pub fn visit(&self, text: &str, mut f: impl FnMut(Feature)) {
        let shift = 64 - u32::from(self.bits);
        self.visit_hashes(text, |group, n, word, h| {
            f(Feature {
                group,
                index: (h >> shift) as u32,
                sign: if (h >> (shift - 1)) & 1 == 1 {
                    -1.0
                } else {
                    1.0
                },
                word,
                unigram: group == Group::Word && n == 1,
            })
        });
    }

    /// The walk behind [`Self::visit`]: calls `f(group, n, word, hash)` where
    /// the top `bits` bits of `hash` pick the bucket and the next one the sign.
    #[inline(always)]
    // Index loops over the n-gram lengths: an iterator over a slice of the
    // masks was several times slower here.
    #[allow(clippy::needless_range_loop)]
    fn visit_hashes(&self, text: &str, mut f: impl FnMut(Group, usize, u32, u64)) {
        let bytes = text.as_bytes();
        let (wl, wh) = (self.word_ngrams.0 as usize, self.word_ngrams.1 as usize);
        let (cl, ch) = (self.char_ngrams.0 as usize, self.char_ngrams.1 as usize);
        // Hashes of the last `wh` words, word `w` at `w % MAX_WORD_NGRAM`,
        // for word n-grams that end at the current word.
        const RING: usize = MAX_WORD_NGRAM as usize;
        let mut recent = [0u64; RING];
        for (w, word) in bytes
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .enumerate()
        {
            let w32 = w as u32;
            if wh > 0 {
                let mut h = FNV_OFFSET;
                for &b in word {
                    h = fnv_step(h, b);
                }
                recent[w % RING] = h;
                // n-grams ending at this word, shortest first.
                let mut comb = WORD_SEED;
                for n in 1..=wh.min(w + 1) {
                    let wh_n = recent[(w + 1 - n) % RING];
                    comb = (comb.rotate_left(23) ^ wh_n).wrapping_mul(FNV_PRIME);
                    if n >= wl {
                        let first = w32 + 1 - n as u32;
                        f(Group::Word, n, first, (comb ^ n as u64).wrapping_mul(MIX));
                    }
                }
            }
            if ch > 0 {
                // The word padded with a space on each side, read through a
                // window of its last eight bytes: the n-gram ending at a byte
                // is the window's low n bytes, hashed in two multiplications.
                let mut window = u64::from(b' ');
                for n in cl..=ch.min(1) {
                    f(Group::Char, n, w32, char_hash(window & CHAR_MASKS[n]));
                }
                let mut at = 1usize;
                for &b in word.iter().chain(std::iter::once(&b' ')) {
                    window = (window << 8) | u64::from(b);
                    at += 1;
                    for n in cl..=ch.min(at) {
                        f(Group::Char, n, w32, char_hash(window & CHAR_MASKS[n]));
                    }
                }
            }
        }
    }

    /// The dot product of the text's feature vector with `weights` (which
    /// must have [`Self::dim`] entries), computed while hashing.
    #[inline]
    pub fn dot(&self, text: &str, weights: &[f32]) -> f32 {
        let shift = 64 - u32::from(self.bits);
        // Several sums, one per n-gram length, so the additions do not wait
        // on each other.
        let mut acc = [0.0f32; 8];
        let (mut nw, mut nc) = (0u32, 0u32);
        self.visit_hashes(text, |group, n, _, h| {
            let w = weights.get((h >> shift) as usize).copied().unwrap_or(0.0);
            // Flip the float's sign bit instead of branching on the hash bit.
            let flip = (((h >> (shift - 1)) & 1) as u32) << 31;
            let v = f32::from_bits(w.to_bits() ^ flip);
            match group {
                Group::Word => {
                    acc[n & 3] += v;
                    nw += 1;
                }
                Group::Char => {
                    acc[4 + (n & 3)] += v;
                    nc += 1;
                }
            }
        });
        let dw = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        let dc = (acc[4] + acc[5]) + (acc[6] + acc[7]);
        scale(dw, nw) + scale(dc, nc)
    }

    /// The dot products of the text's feature vector with `K` models at once,
    /// from the text's `words` as [`hash_words`] finds them: the plain
    /// form of [`Self::dot_quantised_walk`], which the engine runs and the
    /// tests hold to this. `table`
    /// interleaves their weights, quantised to 16 bits, each next to its
    /// negation: bucket `j` of model `m` is
    /// `table[2 * j * K + m]` and its negation `table[(2 * j + 1) * K + m]`,
    /// so that one cache line serves every model and either sign, and the
    /// sign bit of a feature's hash picks a row with no arithmetic. Returns
    /// each model's dot product in units of its quantisation step. Integer
    /// sums also keep the additions from waiting on each other.
    /// `buckets` is scratch space. The same features as [`Self::visit`]:
    /// first every feature's bucket and sign is listed, then the weights are
    /// looked up in a loop with no other work, so that the table reads (the
    /// table is too large for the first-level cache) overlap.
    #[cfg(test)]
    pub fn dot_quantised_words<const K: usize>(
        &self,
        text: &str,
        words: &[WordHash],
        table: &[i16],
        buckets: &mut Vec<u32>,
    ) -> [f32; K] {
        let shift = 64 - u32::from(self.bits);
        let (wl, wh) = (self.word_ngrams.0 as usize, self.word_ngrams.1 as usize);
        let (cl, ch) = (self.char_ngrams.0 as usize, self.char_ngrams.1 as usize);
        // At most `wh` word n-grams end at a word, and at most `ch - cl + 1`
        // character n-grams at each byte of a padded word.
        let per_byte = if ch > 0 { ch + 1 - cl } else { 0 };
        let bound = words.len() * wh + (text.len() + 2 * words.len()) * per_byte;
        if buckets.len() < bound {
            buckets.resize(bound, 0);
        }
        let mut k = word_entries(words, wl, wh, shift, buckets, 0);
        let nw = k;
        // The ranges of the shipped models get their own copy of the loop,
        // with the n-gram lengths known when it is compiled.
        k = match (cl, ch) {
            (0, 0) => k,
            (4, 5) => char_entries(text, words, 4, 5, shift, buckets, k),
            (3, 5) => char_entries(text, words, 3, 5, shift, buckets, k),
            (2, 4) => char_entries(text, words, 2, 4, shift, buckets, k),
            _ => char_entries(text, words, cl, ch, shift, buckets, k),
        };
        let (word_part, char_part) = buckets[..k].split_at(nw.min(k));
        quantised_sums::<K>(table, word_part, char_part)
    }

    /// The dot products of the text's feature vector with `K` models at
    /// once (`table` as the bank lays it out: each quantised weight next to
    /// its negation, models interleaved), in units of each model's
    /// quantisation step, in one walk over the folded `text` that also
    /// finds its words (split at spaces, with their hashes) and calls
    /// `on_byte(i, byte)` for every byte of the text
    /// in order, so that other work on the same bytes (the phrase scan) can
    /// run in the same loop: its latency then overlaps the hashing and the
    /// table reads, which for character n-grams are made as they are hashed.
    /// What the walk found goes into `walked`; `on_word(hash)` is called
    /// as each word is found. Also returns the sizes of the word and
    /// character groups, as [`Self::visit`] counts them.
    pub fn dot_quantised_walk<const K: usize>(
        &self,
        text: &str,
        walked: &mut Walked,
        table: &[i16],
        buckets: &mut Vec<u32>,
        on_byte: impl FnMut(usize, u8),
        mut on_word: impl FnMut(u64),
    ) -> ([f32; K], (u32, u32)) {
        let shift = 64 - u32::from(self.bits);
        let (wl, wh) = (self.word_ngrams.0 as usize, self.word_ngrams.1 as usize);
        let (cl, ch) = (self.char_ngrams.0 as usize, self.char_ngrams.1 as usize);
        let per_byte = if ch > 0 { ch + 1 - cl } else { 0 };
        // At most one word per two bytes (and one more), each padded with
        // two spaces; at most `wh` word n-grams end at a word.
        let most_words = text.len() / 2 + 1;
        let bound = most_words * wh + (text.len() + 2 * most_words) * per_byte;
        if buckets.len() < bound {
            buckets.resize(bound, 0);
        }
        // Character n-grams are summed as they are hashed; word n-grams
        // then from the words' hashes. Each group is summed on its own, in
        // integers, so the order within it does not matter.
        let (rows, _) = table.as_chunks::<K>();
        let (char_sum, nc) = match (cl, ch) {
            (4, 5) => walk_sum::<K>(text, walked, 4, 5, shift, rows, on_byte, &mut on_word),
            (3, 5) => walk_sum::<K>(text, walked, 3, 5, shift, rows, on_byte, &mut on_word),
            (2, 4) => walk_sum::<K>(text, walked, 2, 4, shift, rows, on_byte, &mut on_word),
            (0, 0) => walk_sum::<K>(text, walked, 1, 0, shift, rows, on_byte, &mut on_word),
            _ => {
                walked.running.clear();
                let nc = walk_words(text, &mut walked.words, cl, ch, shift, buckets, on_byte);
                for w in &walked.words {
                    on_word(w.hash);
                }
                sums::<K>(rows, &buckets[..nc])
            }
        };
        let k = word_entries(&walked.words, wl, wh, shift, buckets, 0);
        let (word_sum, nw) = sums::<K>(rows, &buckets[..k]);
        let mut out = [0.0f32; K];
        for m in 0..K {
            out[m] = scale(word_sum[m] as f32, nw as u32) + scale(char_sum[m] as f32, nc as u32);
        }
        (out, (nw as u32, nc as u32))
    }

    /// The table entry (bucket and sign) of the unigram of the word whose
    /// hash is `hash`, as the walk reads it; `None` when the spec has no
    /// unigrams.
    pub fn unigram_entry(&self, hash: u64) -> Option<u32> {
        let (wl, wh) = self.word_ngrams;
        if wl > 1 || wh == 0 {
            return None;
        }
        let shift = 64 - u32::from(self.bits);
        let comb = (WORD_SEED.rotate_left(23) ^ hash).wrapping_mul(FNV_PRIME);
        Some(entry((comb ^ 1).wrapping_mul(MIX), shift))
    }

    /// The sparse feature vector of `text`, sorted by index with repeats
    /// merged, written into `out` (cleared first). Used in training.
    pub fn vector(&self, text: &str, out: &mut Vec<(u32, f32)>) {
        out.clear();
        let (mut nw, mut nc) = (0u32, 0u32);
        self.visit(text, |ft| match ft.group {
            Group::Word => nw += 1,
            Group::Char => nc += 1,
        });
        let (sw, sc) = (inv_sqrt(nw), inv_sqrt(nc));
        self.visit(text, |ft| {
            let s = match ft.group {
                Group::Word => sw,
                Group::Char => sc,
            };
            out.push((ft.index, ft.sign * s));
        });
        out.sort_unstable_by_key(|&(i, _)| i);
        out.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                kept.1 += later.1;
                true
            } else {
                false
            }
        });
    }

    /// The scale each group's occurrences get: `1/sqrt(count)` (Word, Char).
    pub fn group_scales(&self, text: &str) -> (f32, f32) {
        let (mut nw, mut nc) = (0u32, 0u32);
        self.visit(text, |ft| match ft.group {
            Group::Word => nw += 1,
            Group::Char => nc += 1,
        });
        (inv_sqrt(nw), inv_sqrt(nc))
    }
}

#[inline(always)]
fn inv_sqrt(n: u32) -> f32 {
    if n == 0 {
        0.0
    } else {
        1.0 / (n as f32).sqrt()
    }
}

#[inline(always)]
fn scale(d: f32, n: u32) -> f32 {
    if n == 0 {
        0.0
    } else {
        d / (n as f32).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(spec: &FeatureSpec, text: &str) -> Vec<Feature> {
        let mut v = Vec::new();
        spec.visit(text, |f| v.push(f));
        v
    }

    #[test]
    fn feature_indices_of_a_fixed_text_never_change() {
        // Pinned: changing the hash silently invalidates every trained model
        // (the character n-gram hash last changed with the models of
        // policies/models/README.md that use it).
        let spec = FeatureSpec::default();
        let f = all(&spec, "we wil kil them");
        let uni: Vec<(u32, f32)> = f
            .iter()
            .filter(|f| f.unigram)
            .map(|f| (f.index, f.sign))
            .collect();
        assert_eq!(
            uni,
            vec![(216647, -1.0), (156132, 1.0), (13713, 1.0), (30639, 1.0)]
        );
        let first_char = f.iter().find(|f| f.group == Group::Char).map(|f| f.index);
        assert_eq!(first_char, Some(81991));
    }

    #[test]
    fn counts_match_the_spec() {
        let spec = FeatureSpec {
            bits: 16,
            word_ngrams: (1, 2),
            char_ngrams: (2, 3),
        };
        let f = all(&spec, "ab cde");
        let words = f.iter().filter(|f| f.group == Group::Word).count();
        // 2 unigrams + 1 bigram.
        assert_eq!(words, 3);
        // " ab " has 3 bigrams + 2 trigrams; " cde " has 4 + 3.
        let chars = f.iter().filter(|f| f.group == Group::Char).count();
        assert_eq!(chars, 12);
        assert!(f.iter().all(|f| f.index < 1 << 16));
    }

    #[test]
    fn dot_matches_the_sparse_vector() {
        let spec = FeatureSpec::default();
        let weights: Vec<f32> = (0..spec.dim())
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let text = "the the cat sat on the mat mat";
        let mut v = Vec::new();
        spec.vector(text, &mut v);
        let sparse: f32 = v.iter().map(|&(i, x)| x * weights[i as usize]).sum();
        let direct = spec.dot(text, &weights);
        assert!((sparse - direct).abs() < 1e-4, "{sparse} vs {direct}");
        assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn the_walk_finds_the_words_and_dots_of_the_listing() {
        let spec = FeatureSpec {
            bits: 12,
            word_ngrams: (1, 2),
            char_ngrams: (4, 5),
        };
        // Two models, interleaved with their negations as the engine does.
        let mut table = vec![0i16; 2 * spec.dim() * 2];
        for (i, w) in table.iter_mut().enumerate() {
            *w = ((i * 7919 % 2001) as i16) - 1000;
        }
        for spec in [
            spec,
            FeatureSpec {
                char_ngrams: (1, 3),
                ..spec
            },
            FeatureSpec {
                char_ngrams: (0, 0),
                ..spec
            },
        ] {
            for text in [
                "we wil kil them al",
                "a",
                "",
                " ",
                "  two  spaces ",
                "kil",
                "\u{e9}t\u{e9} x",
            ] {
                let mut want_words = Vec::new();
                hash_words(text, &mut want_words);
                let want =
                    spec.dot_quantised_words::<2>(text, &want_words, &table, &mut Vec::new());
                // Left over from an earlier text: the walk clears it.
                let mut walked = Walked {
                    words: vec![WordHash {
                        start: 9,
                        end: 9,
                        hash: 9,
                    }],
                    running: vec![7],
                };
                let mut seen = Vec::new();
                let mut found = Vec::new();
                let (got, _) = spec.dot_quantised_walk::<2>(
                    text,
                    &mut walked,
                    &table,
                    &mut Vec::new(),
                    |i, b| seen.push((i, b)),
                    |h| found.push(h),
                );
                let Walked { words, running } = walked;
                assert_eq!(words, want_words, "{text:?}");
                let hashes: Vec<u64> = words.iter().map(|w| w.hash).collect();
                assert_eq!(found, hashes, "{text:?}: each word's hash, in order");
                assert_eq!(got, want, "{text:?}");
                // What each word's own character n-grams add up to, read
                // back from the running sums, against the word listed alone.
                if spec.char_ngrams != (1, 3) {
                    assert_eq!(running.len(), 2 * words.len(), "{text:?}");
                    let (rows, _) = table.as_chunks::<2>();
                    let (cl, ch) = (spec.char_ngrams.0.into(), spec.char_ngrams.1.into());
                    let mut before = [0i64; 2];
                    for (i, w) in words.iter().enumerate() {
                        let mut own = vec![0u32; 64];
                        let n = if ch == 0 {
                            0
                        } else {
                            char_entries(text, &[*w], cl, ch, 64 - 12, &mut own, 0)
                        };
                        let (want_own, _) = sums::<2>(rows, &own[..n]);
                        for m in 0..2 {
                            assert_eq!(
                                running[2 * i + m] - before[m],
                                want_own[m],
                                "{text:?} word {i} model {m}"
                            );
                            before[m] = running[2 * i + m];
                        }
                    }
                } else {
                    assert!(running.is_empty(), "{text:?}");
                }
                let all: Vec<(usize, u8)> = text.bytes().enumerate().collect();
                assert_eq!(seen, all, "{text:?}");
            }
        }
    }

    #[test]
    fn empty_text_has_no_features() {
        let spec = FeatureSpec::default();
        assert!(all(&spec, "").is_empty());
        assert_eq!(spec.dot("", &vec![1.0; spec.dim()]), 0.0);
    }

    #[test]
    fn bad_specs_are_rejected() {
        let s = FeatureSpec {
            bits: 30,
            ..FeatureSpec::default()
        };
        assert!(s.validate().is_err());
        let s = FeatureSpec {
            bits: 18,
            word_ngrams: (2, 1),
            char_ngrams: (0, 0),
        };
        assert!(s.validate().is_err());
        assert!(FeatureSpec::default().validate().is_ok());
    }
}
