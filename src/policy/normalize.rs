//! Folding text into a canonical form for matching, with a map back to the
//! original bytes so that evidence always points at what the tenant published.
//!
//! The folded form is a sequence of lowercase words separated by single
//! spaces. On the way it undoes the usual evasions: compatibility forms
//! (fullwidth, mathematical and circled letters), combining marks, zero-width
//! and other format characters, Cyrillic and Greek homoglyphs, leetspeak inside
//! words (`k1ll`, `h4ng`, `@ss`), stretched letters (`kiiiill`, folded to one
//! letter per run, so `kill` and `kiiill` both become `kil`), and words spelled
//! out letter by letter (`k.i.l.l`, `k i l l`).
//!
//! Phrase lists go through the same function, so a list entry and the text it
//! should catch always meet in the same form.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Text folded for matching, with a map from its words back to the original.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    text: String,
    /// One entry per folded word: where it starts in `text`, and the
    /// original byte range it came from.
    words: Vec<Word>,
}

#[derive(Debug, Clone, Copy)]
struct Word {
    folded_start: u32,
    original_start: u32,
    original_end: u32,
}

impl Normalized {
    /// The folded text: lowercase words separated by single spaces.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many words the folded text has.
    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// Byte offset in [`Self::text`] where word `i` starts.
    pub fn word_start(&self, i: usize) -> usize {
        self.words
            .get(i)
            .map_or(self.text.len(), |w| w.folded_start as usize)
    }

    /// The index of the word that contains folded byte `pos`.
    pub fn word_index(&self, pos: usize) -> usize {
        self.words
            .partition_point(|w| w.folded_start as usize <= pos)
            .saturating_sub(1)
    }

    /// Maps a byte range of the folded text back to a byte range of the
    /// original text, widened to whole words: slicing the original with it
    /// gives the words that produced the match.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        if self.words.is_empty() || start >= end || end > self.text.len() {
            return (0, 0);
        }
        let first = self.words[self.word_index(start)];
        let last = self.words[self.word_index(end - 1)];
        (first.original_start as usize, last.original_end as usize)
    }
}

/// One character of a word in the making, with its origin.
#[derive(Debug, Clone, Copy)]
struct Unit {
    ch: char,
    start: u32,
    end: u32,
}

/// How a folded character behaves inside a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Letter,
    Digit,
    /// A symbol that stands for a letter inside a word (`@`, `$`, `!`, `|`).
    Symbol,
    Separator,
    /// Dropped without splitting the word (zero-width and format characters).
    Invisible,
}

/// Folds `original` for matching. Never fails: any input yields a (possibly
/// empty) folded text.
pub fn normalize(original: &str) -> Normalized {
    let mut folder = Folder::with_capacity(original.len());
    if original.is_ascii() {
        folder.fold_ascii(original.as_bytes());
    } else {
        for (i, ch) in original.char_indices() {
            let (start, end) = (i as u32, (i + ch.len_utf8()) as u32);
            if ch.is_ascii() {
                let ch = ch.to_ascii_lowercase();
                folder.push(ch, kind_of_ascii(ch), start, end);
                continue;
            }
            if is_invisible(ch) {
                continue;
            }
            decompose_compatible(ch, |d| {
                if is_combining_mark(d) || is_invisible(d) {
                    return;
                }
                if let Some(c) = confusable(d) {
                    folder.push(c, kind_of_ascii(c), start, end);
                    return;
                }
                for l in d.to_lowercase() {
                    let c = confusable(l).unwrap_or(l);
                    let kind = if c.is_ascii() {
                        kind_of_ascii(c)
                    } else if c.is_alphanumeric() {
                        Kind::Letter
                    } else {
                        Kind::Separator
                    };
                    folder.push(c, kind, start, end);
                }
            });
        }
    }
    folder.finish()
}

const A_SEP: u8 = 0;
const A_LETTER: u8 = 1;
const A_DIGIT: u8 = 2;
const A_SYMBOL: u8 = 4;
const A_INVISIBLE: u8 = 8;

/// Byte classes for the ASCII fast path (same rules as [`kind_of_ascii`]).
static ASCII_CLASS: [u8; 128] = {
    let mut t = [A_SEP; 128];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() {
            A_LETTER
        } else if b.is_ascii_digit() {
            A_DIGIT
        } else if b == b'@' || b == b'$' || b == b'!' || b == b'|' {
            A_SYMBOL
        } else if b == b'\'' {
            A_INVISIBLE
        } else {
            A_SEP
        };
        c += 1;
    }
    t
};

fn kind_of_ascii(c: char) -> Kind {
    match c {
        'a'..='z' => Kind::Letter,
        '0'..='9' => Kind::Digit,
        '@' | '$' | '!' | '|' => Kind::Symbol,
        // An apostrophe inside a word ("don't") keeps the word whole.
        '\'' => Kind::Invisible,
        _ => Kind::Separator,
    }
}

/// Zero-width and other format characters, plus variation selectors and the
/// soft hyphen: invisible in a rendered post, so they must not split words.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}' | '\u{2019}' | '\u{2018}' | '\u{02BC}')
}

/// Cyrillic, Greek and other letters that look like Latin ones. Upper-case
/// forms are mapped before lower-casing, because `В` looks like `B` while its
/// lower case `в` does not.
fn confusable(c: char) -> Option<char> {
    Some(match c {
        // Cyrillic
        'А' | 'а' | 'ӑ' | 'ӓ' => 'a',
        'В' | 'Ь' | 'ь' => 'b',
        'С' | 'с' | 'Ϲ' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'Е' | 'е' | 'Ё' | 'ё' | 'Є' | 'є' => 'e',
        'Н' | 'һ' | 'Һ' => 'h',
        'І' | 'і' | 'Ї' | 'ї' | 'Ӏ' | 'ӏ' => 'i',
        'Ј' | 'ј' => 'j',
        'К' | 'к' | 'Қ' | 'қ' => 'k',
        'М' | 'м' => 'm',
        'П' | 'п' => 'n',
        'О' | 'о' | 'Ӧ' | 'ӧ' => 'o',
        'Р' | 'р' => 'p',
        'ԛ' | 'Ԛ' => 'q',
        'Ѕ' | 'ѕ' => 's',
        'Т' | 'т' => 't',
        'Ц' | 'ц' | 'и' => 'u',
        'ѵ' | 'Ѵ' => 'v',
        'Ԝ' | 'ԝ' | 'ш' | 'Ш' => 'w',
        'Х' | 'х' | 'Ж' | 'ж' => 'x',
        'У' | 'у' | 'Ү' | 'ү' => 'y',
        'Я' | 'я' => 'r',
        'З' | 'з' => '3',
        // Greek
        'Α' | 'α' => 'a',
        'Β' | 'β' => 'b',
        'Ε' | 'ε' => 'e',
        'Ζ' => 'z',
        'Η' | 'η' => 'h',
        'Ι' | 'ι' | 'ί' => 'i',
        'Κ' | 'κ' => 'k',
        'Μ' => 'm',
        'Ν' => 'n',
        'ν' => 'v',
        'Ο' | 'ο' | 'ό' | 'σ' => 'o',
        'Ρ' | 'ρ' => 'p',
        'Τ' | 'τ' => 't',
        'Υ' | 'υ' => 'u',
        'Χ' | 'χ' => 'x',
        'ω' => 'w',
        // Latin look-alikes that compatibility folding leaves alone
        'ɑ' | 'ɐ' => 'a',
        'ı' | 'ɪ' => 'i',
        'ȷ' => 'j',
        'ł' | 'ɫ' => 'l',
        'ø' | 'ɵ' => 'o',
        'ß' => 's',
        'đ' => 'd',
        'ħ' => 'h',
        'ŧ' => 't',
        _ => return None,
    })
}

/// [`leet`] for one ASCII byte; NUL when it stands for nothing.
fn leet_byte(b: u8) -> u8 {
    match leet(b as char) {
        Some(c) => c as u8,
        None if b.is_ascii_digit() => b,
        None => 0,
    }
}

/// Leetspeak: what a digit or symbol stands for inside a word.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        _ => return None,
    })
}

struct Folder {
    /// The folded text so far, as bytes: pushed a word at a time and checked
    /// as UTF-8 once at the end.
    text: Vec<u8>,
    words: Vec<Word>,
    word: Vec<(Unit, Kind)>,
    /// Reused buffer for the folded letters of one word.
    units: Vec<Unit>,
    /// Single-letter words waiting to see whether they spell a longer one.
    singles: Vec<Unit>,
    /// The separators between the first two waiting single letters: letters
    /// spelled out with one separator ("k.i.l.l") end where another starts
    /// ("k.i.l.l y.o.u").
    singles_gap: Option<Gap>,
    /// Separators seen since the last word ended.
    gap: Gap,
    /// Separators that preceded the word being built.
    word_gap: Gap,
}

/// The first few separator characters between two words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Gap {
    chars: [char; 3],
    len: u8,
}

impl Gap {
    fn push(&mut self, c: char) {
        if (self.len as usize) < self.chars.len() {
            self.chars[self.len as usize] = c;
        }
        self.len = self.len.saturating_add(1);
    }

    fn from_ascii(bytes: &[u8]) -> Self {
        let mut gap = Gap::default();
        for &b in bytes.iter().take(3) {
            gap.push(b as char);
        }
        gap.len = bytes.len().min(255) as u8;
        gap
    }
}

impl Folder {
    fn with_capacity(n: usize) -> Self {
        Folder {
            text: Vec::with_capacity(n),
            words: Vec::with_capacity(n / 4 + 1),
            word: Vec::new(),
            units: Vec::new(),
            singles: Vec::new(),
            singles_gap: None,
            gap: Gap::default(),
            word_gap: Gap::default(),
        }
    }

    /// The ASCII fast path: the same rules as the per-character path, a
    /// word at a time, with no decomposition.
    fn fold_ascii(&mut self, b: &[u8]) {
        let n = b.len();
        let mut i = 0;
        while i < n {
            let gap_start = i;
            while i < n && ASCII_CLASS[(b[i] & 0x7f) as usize] == A_SEP {
                i += 1;
            }
            if i == n {
                break;
            }
            let gap = Gap::from_ascii(&b[gap_start..i]);
            let start = i;
            let mut flags = 0u8;
            while i < n {
                let c = ASCII_CLASS[(b[i] & 0x7f) as usize];
                if c == A_SEP {
                    break;
                }
                flags |= c;
                i += 1;
            }
            let mut end = i;
            while end > start && b[end - 1] == b'!' {
                end -= 1;
            }
            self.word_gap = gap;
            self.ascii_word(&b[start..end], start as u32, flags & A_LETTER != 0);
        }
    }

    /// Folds one ASCII word straight into the output.
    fn ascii_word(&mut self, word: &[u8], offset: u32, has_letter: bool) {
        let text_before = self.text.len();
        let words_before = self.words.len();
        // Held single letters are flushed lazily: write this word first into
        // a detached position only if it turns out longer than one letter.
        let mut folded = [0u8; 64];
        let mut len = 0usize;
        let mut first = u32::MAX;
        let mut last = 0u32;
        let mut long: Option<Vec<u8>> = None;
        if word.len() <= folded.len() {
            // Common case: the word fits the stack buffer, so the loop needs
            // no overflow handling.
            for (k, &byte) in word.iter().enumerate() {
                let c = match ASCII_CLASS[(byte & 0x7f) as usize] {
                    A_LETTER => byte.to_ascii_lowercase(),
                    A_DIGIT if has_letter => leet_byte(byte),
                    A_DIGIT => byte,
                    A_SYMBOL if has_letter => match leet_byte(byte) {
                        b'\0' => continue,
                        c => c,
                    },
                    _ => continue,
                };
                let at = offset + k as u32;
                first = first.min(at);
                last = at + 1;
                if len > 0 && folded[len - 1] == c && c.is_ascii_alphabetic() {
                    continue;
                }
                folded[len] = c;
                len += 1;
            }
        }
        let too_long: &[u8] = if word.len() > folded.len() { word } else { &[] };
        for (k, &byte) in too_long.iter().enumerate() {
            let c = match ASCII_CLASS[(byte & 0x7f) as usize] {
                A_LETTER => byte.to_ascii_lowercase(),
                A_DIGIT if has_letter => leet_byte(byte),
                A_DIGIT => byte,
                A_SYMBOL if has_letter => match leet_byte(byte) {
                    b'\0' => continue,
                    c => c,
                },
                _ => continue,
            };
            let at = offset + k as u32;
            if first == u32::MAX {
                first = at;
            }
            last = at + 1;
            let prev = match &long {
                Some(v) => v.last().copied(),
                None if len > 0 => Some(folded[len - 1]),
                None => None,
            };
            if prev == Some(c) && c.is_ascii_alphabetic() {
                continue;
            }
            match &mut long {
                Some(v) => v.push(c),
                None if len < folded.len() => {
                    folded[len] = c;
                    len += 1;
                }
                None => {
                    let mut v = folded[..len].to_vec();
                    v.push(c);
                    long = Some(v);
                }
            }
        }
        let bytes: &[u8] = match &long {
            Some(v) => v,
            None => &folded[..len],
        };
        if bytes.is_empty() {
            return;
        }
        if bytes.len() == 1 && bytes[0].is_ascii_alphabetic() {
            self.units.clear();
            self.units.push(Unit {
                ch: bytes[0] as char,
                start: first,
                end: last,
            });
            self.finish_word();
            return;
        }
        if !self.singles.is_empty() {
            self.flush_singles();
        }
        debug_assert!(self.text.len() >= text_before && self.words.len() >= words_before);
        if !self.text.is_empty() {
            self.text.push(b' ');
        }
        self.words.push(Word {
            folded_start: self.text.len() as u32,
            original_start: first,
            original_end: last,
        });
        self.text.extend_from_slice(bytes);
    }

    fn push(&mut self, ch: char, kind: Kind, start: u32, end: u32) {
        match kind {
            Kind::Invisible => {}
            Kind::Separator => {
                self.end_word();
                self.gap.push(ch);
            }
            _ => {
                if self.word.is_empty() {
                    self.word_gap = std::mem::take(&mut self.gap);
                }
                self.word.push((Unit { ch, start, end }, kind));
            }
        }
    }

    fn end_word(&mut self) {
        let mut word = std::mem::take(&mut self.word);
        // Trailing "!" is punctuation, not a letter ("kill!!").
        while word.last().is_some_and(|(u, _)| u.ch == '!') {
            word.pop();
        }
        if word.is_empty() {
            self.word = word;
            return;
        }
        let has_letter = word.iter().any(|(_, k)| *k == Kind::Letter);
        self.units.clear();
        for (u, kind) in word.drain(..) {
            let ch = match kind {
                Kind::Letter => u.ch,
                Kind::Digit if has_letter => leet(u.ch).unwrap_or(u.ch),
                Kind::Digit => u.ch,
                Kind::Symbol if has_letter => match leet(u.ch) {
                    Some(c) => c,
                    None => continue,
                },
                _ => continue,
            };
            squeeze_push(&mut self.units, Unit { ch, ..u });
        }
        self.word = word;
        self.finish_word();
    }

    /// Emits the word in `self.units` (or holds it as a single letter).
    fn finish_word(&mut self) {
        if self.units.is_empty() {
            return;
        }
        if self.units.len() == 1 && self.units[0].ch.is_alphabetic() {
            match (self.singles.len(), self.singles_gap) {
                (0, _) => {}
                (1, _) => self.singles_gap = Some(self.word_gap),
                (_, Some(gap)) if gap != self.word_gap => self.flush_singles(),
                _ => {}
            }
            self.singles.push(self.units[0]);
            return;
        }
        self.flush_singles();
        let units = std::mem::take(&mut self.units);
        self.emit_word(&units);
        self.units = units;
    }

    /// Three or more single letters in a row spell one word (`k i l l`);
    /// fewer are ordinary words ("i", "a").
    fn flush_singles(&mut self) {
        if self.singles.is_empty() {
            return;
        }
        let singles = std::mem::take(&mut self.singles);
        self.singles_gap = None;
        if singles.len() >= 3 {
            let mut units = Vec::with_capacity(singles.len());
            for u in singles {
                squeeze_push(&mut units, u);
            }
            self.emit_word(&units);
        } else {
            for u in singles {
                self.emit_word(&[u]);
            }
        }
    }

    fn emit_word(&mut self, units: &[Unit]) {
        let (Some(first), Some(last)) = (units.first(), units.last()) else {
            return;
        };
        if !self.text.is_empty() {
            self.text.push(b' ');
        }
        self.words.push(Word {
            folded_start: self.text.len() as u32,
            original_start: first.start,
            original_end: last.end,
        });
        for u in units {
            let mut buf = [0u8; 4];
            self.text
                .extend_from_slice(u.ch.encode_utf8(&mut buf).as_bytes());
        }
    }

    fn finish(mut self) -> Normalized {
        self.end_word();
        self.flush_singles();
        // Only whole characters were ever pushed, so this never falls back.
        let text = String::from_utf8(self.text)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Normalized {
            text,
            words: self.words,
        }
    }
}

/// Appends `u`, folding a run of the same letter into one whose origin covers
/// the whole run.
fn squeeze_push(units: &mut Vec<Unit>, u: Unit) {
    if let Some(prev) = units.last_mut() {
        if prev.ch == u.ch && u.ch.is_alphabetic() {
            prev.end = u.end;
            return;
        }
    }
    units.push(u);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(s: &str) -> String {
        normalize(s).text().to_string()
    }

    #[test]
    fn plain_text_is_lowercased_and_spaced() {
        assert_eq!(fold("Storm  the Capitol!!"), "storm the capitol");
    }

    #[test]
    fn stretched_and_doubled_letters_fold_to_one() {
        assert_eq!(fold("kiiiill"), fold("kill"));
        assert_eq!(fold("KILLLL"), "kil");
    }

    #[test]
    fn leetspeak_inside_words_is_undone() {
        assert_eq!(fold("k1ll"), fold("kill"));
        assert_eq!(fold("h4ng"), "hang");
        assert_eq!(fold("@ss"), "as");
        assert_eq!(fold("5h00t"), fold("shoot"));
    }

    #[test]
    fn numbers_on_their_own_stay_numbers() {
        assert_eq!(fold("in 2024 at 10"), "in 2024 at 10");
    }

    #[test]
    fn trailing_exclamation_is_punctuation() {
        assert_eq!(fold("kill them!"), fold("kill them"));
        assert_eq!(fold("kill!!!"), "kil");
    }

    #[test]
    fn homoglyphs_fold_to_latin() {
        // Cyrillic а, е, о and upper-case К
        assert_eq!(fold("Кill thе tr\u{430}itors"), fold("kill the traitors"));
        assert_eq!(fold("ΒΑΝ"), "ban");
    }

    #[test]
    fn fullwidth_and_marks_and_zero_width_are_folded() {
        assert_eq!(fold("ｋｉｌｌ"), "kil");
        assert_eq!(fold("k\u{200B}i\u{200D}ll"), "kil");
        assert_eq!(fold("kíll"), "kil");
        assert_eq!(fold("k\u{0301}ill"), "kil");
    }

    #[test]
    fn spelled_out_words_are_joined() {
        assert_eq!(fold("k.i.l.l them"), "kil them");
        assert_eq!(fold("k i l l them"), "kil them");
        assert_eq!(fold("k.i.l.l y.o.u.r.s.e.l.f"), "kil yourself");
        assert_eq!(fold("i am a cat"), "i am a cat");
    }

    #[test]
    fn spans_map_back_to_the_original_words() {
        let original = "We will ｈ４ｎｇ the mayor";
        let n = normalize(original);
        let at = n.text().find("hang").unwrap();
        let (s, e) = n.original_span(at, at + 4);
        assert_eq!(&original[s..e], "ｈ４ｎｇ");
        let at = n.text().find("mayor").unwrap();
        let (s, e) = n.original_span(at, at + 5);
        assert_eq!(&original[s..e], "mayor");
    }

    #[test]
    fn spans_of_stretched_and_spelled_words_cover_the_whole_word() {
        let original = "go kiiiill them, k.i.l.l";
        let n = normalize(original);
        let mut found = Vec::new();
        for (i, _) in n.text().match_indices("kil") {
            let (s, e) = n.original_span(i, i + 3);
            found.push(&original[s..e]);
        }
        assert_eq!(found, vec!["kiiiill", "k.i.l.l"]);
    }

    #[test]
    fn word_index_counts_words() {
        let n = normalize("one two three");
        assert_eq!(n.word_count(), 3);
        assert_eq!(n.word_start(2), 8);
        assert_eq!(n.word_index(0), 0);
        assert_eq!(n.word_index(4), 1);
        assert_eq!(n.word_index(8), 2);
    }

    #[test]
    fn ascii_and_unicode_paths_fold_alike() {
        for s in [
            "Kill THEM ALLLL!!",
            "k.i.l.l y.o.u",
            "h4ng 2024 @ss sh!t!",
            "don't  stop",
        ] {
            let unicode = format!("{s} \u{00e9}");
            let a = normalize(s);
            let u = normalize(&unicode);
            assert_eq!(format!("{} e", a.text()), u.text(), "{s}");
        }
    }

    #[test]
    fn spans_of_leet_words_cover_the_original_word() {
        let original = "i will k1ll you";
        let n = normalize(original);
        let at = n.text().find("kil").unwrap();
        let (s, e) = n.original_span(at, at + 3);
        assert_eq!(&original[s..e], "k1ll");
    }

    #[test]
    fn empty_and_punctuation_only_text_folds_to_nothing() {
        assert_eq!(fold(""), "");
        assert_eq!(fold("?!... --"), "");
    }
}
