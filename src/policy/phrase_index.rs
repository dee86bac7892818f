//! Whole-word phrase matching over folded text, a word at a time.
//!
//! A folded text is words separated by single spaces, and a phrase matches
//! only on whole words, so a phrase occurs exactly where a run of the text's
//! words equals the phrase's words. Each word of the text is looked up once
//! in a table of the words the phrases use (by the hash that the classifier
//! features compute anyway, then by its bytes); phrases ending at a word are
//! then found by walking a trie of the phrases' words, read backwards, from
//! that word towards the start of the text.
//!
//! Matches come in the order of a standard overlapping Aho-Corasick scan of
//! the folded text, which the engine used before: by where they end, and
//! among those ending at the same word, longest first.

use super::features::{hash_words, WordHash};

/// No word, node or phrase.
pub const NONE: u32 = u32::MAX;

/// The odd multiplier that spreads a key over a table (Fibonacci hashing).
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

/// The words of the phrases, and their phrases.
#[derive(Debug, Default)]
pub struct PhraseIndex {
    /// Open addressing: index into `words`, or [`NONE`].
    word_slots: Vec<u32>,
    word_bits: u32,
    /// Each word: its hash and where its bytes are in `bytes`.
    words: Vec<(u64, u32, u32)>,
    bytes: Vec<u8>,
    /// Open addressing: `(node << 32 | word, child)`, child [`NONE`] if empty.
    edge_slots: Vec<(u64, u32)>,
    edge_bits: u32,
    /// For each trie node, the phrase that ends there, or [`NONE`].
    phrase_at: Vec<u32>,
}

fn slot(key: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (key.wrapping_mul(SPREAD) >> (64 - bits)) as usize
    }
}

/// The number of bits of a table twice as large as `n` entries, at least 4.
fn bits_for(n: usize) -> u32 {
    (2 * n.max(8)).next_power_of_two().trailing_zeros()
}

impl PhraseIndex {
    /// An index of `phrases` (folded), phrase `p` reported as `p`, with room
    /// for `extra` more words ([`Self::add_word`]).
    pub fn new(phrases: &[String], extra: &[&str]) -> Self {
        let mut index = PhraseIndex::default();
        let mut hashed = Vec::new();
        // Every word first, so that the word table is sized once.
        let mut all: Vec<Vec<(Vec<u8>, u64)>> = Vec::with_capacity(phrases.len());
        let mut count = extra.len();
        for p in phrases {
            hash_words(p, &mut hashed);
            count += hashed.len();
            all.push(
                hashed
                    .iter()
                    .map(|w| {
                        (
                            p.as_bytes()[w.start as usize..w.end as usize].to_vec(),
                            w.hash,
                        )
                    })
                    .collect(),
            );
        }
        index.word_bits = bits_for(count);
        index.word_slots = vec![NONE; 1 << index.word_bits];
        let mut edges: Vec<(u32, u32, u32)> = Vec::new();
        index.phrase_at.push(NONE);
        for (p, words) in all.iter().enumerate() {
            let mut node = 0u32;
            // Backwards: the trie is walked from a phrase's last word.
            for (bytes, hash) in words.iter().rev() {
                let id = index.intern(bytes, *hash);
                node = match edges.iter().find(|e| e.0 == node && e.1 == id) {
                    Some(e) => e.2,
                    None => {
                        let child = index.phrase_at.len() as u32;
                        index.phrase_at.push(NONE);
                        edges.push((node, id, child));
                        child
                    }
                };
            }
            if node != 0 && index.phrase_at[node as usize] == NONE {
                index.phrase_at[node as usize] = p as u32;
            }
        }
        index.edge_bits = bits_for(edges.len());
        index.edge_slots = vec![(0, NONE); 1 << index.edge_bits];
        let mask = index.edge_slots.len() - 1;
        for (node, id, child) in edges {
            let key = (u64::from(node) << 32) | u64::from(id);
            let mut s = slot(key, index.edge_bits);
            while index.edge_slots[s].1 != NONE {
                s = (s + 1) & mask;
            }
            index.edge_slots[s] = (key, child);
        }
        for w in extra {
            index.add_word(w);
        }
        index
    }

    /// The id of `word` (one folded word), adding it if it is new.
    pub fn add_word(&mut self, word: &str) -> u32 {
        let mut hashed = Vec::new();
        hash_words(word, &mut hashed);
        let hash = hashed.first().map_or(0, |w| w.hash);
        self.intern(word.as_bytes(), hash)
    }

    fn intern(&mut self, bytes: &[u8], hash: u64) -> u32 {
        let found = self.lookup(bytes, hash);
        if found != NONE {
            return found;
        }
        if 2 * (self.words.len() + 1) > self.word_slots.len() {
            // Grow: rebuild the slots at twice the size.
            self.word_bits += 1;
            self.word_slots = vec![NONE; 1 << self.word_bits];
            for id in 0..self.words.len() {
                self.place(id as u32);
            }
        }
        let id = self.words.len() as u32;
        self.words
            .push((hash, self.bytes.len() as u32, bytes.len() as u32));
        self.bytes.extend_from_slice(bytes);
        self.place(id);
        id
    }

    fn place(&mut self, id: u32) {
        let mask = self.word_slots.len() - 1;
        let mut s = slot(self.words[id as usize].0, self.word_bits);
        while self.word_slots[s] != NONE {
            s = (s + 1) & mask;
        }
        self.word_slots[s] = id;
    }

    fn lookup(&self, bytes: &[u8], hash: u64) -> u32 {
        if self.word_slots.is_empty() {
            return NONE;
        }
        let mask = self.word_slots.len() - 1;
        let mut s = slot(hash, self.word_bits);
        loop {
            let id = self.word_slots[s];
            if id == NONE {
                return NONE;
            }
            let (h, start, len) = self.words[id as usize];
            if h == hash && self.bytes.get(start as usize..(start + len) as usize) == Some(bytes) {
                return id;
            }
            s = (s + 1) & mask;
        }
    }

    /// Writes into `ids` (cleared first) the id of each of `words` of
    /// `text`, [`NONE`] for a word no phrase uses.
    pub fn word_ids(&self, text: &str, words: &[WordHash], ids: &mut Vec<u32>) {
        ids.clear();
        let bytes = text.as_bytes();
        ids.extend(words.iter().map(|w| {
            let word = bytes
                .get(w.start as usize..w.end as usize)
                .unwrap_or_default();
            self.lookup(word, w.hash)
        }));
    }

    fn child(&self, node: u32, id: u32) -> u32 {
        let key = (u64::from(node) << 32) | u64::from(id);
        let mask = self.edge_slots.len() - 1;
        let mut s = slot(key, self.edge_bits);
        loop {
            let (k, child) = self.edge_slots[s];
            if child == NONE || k == key {
                return child;
            }
            s = (s + 1) & mask;
        }
    }

    /// Calls `f(phrase, first word, last word)` for every occurrence of a
    /// phrase in the text whose word ids are `ids`, ordered by last word
    /// and, for the same last word, longest first. `found` is scratch space.
    pub fn matches(
        &self,
        ids: &[u32],
        found: &mut Vec<(u32, usize)>,
        mut f: impl FnMut(u32, usize, usize),
    ) {
        if self.edge_slots.is_empty() {
            return;
        }
        for (j, &id) in ids.iter().enumerate() {
            if id == NONE {
                continue;
            }
            found.clear();
            let mut node = 0u32;
            let mut i = j;
            loop {
                node = self.child(node, ids[i]);
                if node == NONE {
                    break;
                }
                let p = self.phrase_at[node as usize];
                if p != NONE {
                    found.push((p, i));
                }
                if i == 0 || ids[i - 1] == NONE {
                    break;
                }
                i -= 1;
            }
            for &(p, i) in found.iter().rev() {
                f(p, i, j);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(phrases: &[&str], text: &str) -> Vec<(u32, usize, usize)> {
        let phrases: Vec<String> = phrases.iter().map(|s| s.to_string()).collect();
        let index = PhraseIndex::new(&phrases, &[]);
        let mut words = Vec::new();
        hash_words(text, &mut words);
        let mut ids = Vec::new();
        index.word_ids(text, &words, &mut ids);
        let mut out = Vec::new();
        index.matches(&ids, &mut Vec::new(), |p, i, j| out.push((p, i, j)));
        out
    }

    #[test]
    fn whole_word_runs_match_longest_first_by_end() {
        let got = find(
            &["kil them", "them", "kil them al", "al", "them al"],
            "we wil kil them al now",
        );
        // Ending at "them" (word 3): "kil them", then "them"; ending at
        // "al" (word 4): "kil them al", "them al", "al".
        assert_eq!(
            got,
            vec![(0, 2, 3), (1, 3, 3), (2, 2, 4), (4, 3, 4), (3, 4, 4)]
        );
    }

    #[test]
    fn parts_of_words_do_not_match() {
        assert!(find(&["kil"], "skil kils").is_empty());
        assert!(find(&["a b"], "ab").is_empty());
        assert!(find(&[], "anything").is_empty());
    }
}
