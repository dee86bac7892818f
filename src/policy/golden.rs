//! A record of what the scorer does to a large, fixed corpus, for checking
//! that a change meant only to make it faster changes nothing else.
//!
//! ```sh
//! AUPD_GOLDEN=/tmp/before.txt cargo test --release --lib golden -- --ignored
//! # change the scorer, then
//! AUPD_GOLDEN=/tmp/after.txt cargo test --release --lib golden -- --ignored
//! cmp /tmp/before.txt /tmp/after.txt
//! ```
//!
//! Each line holds one text's folded form, its word map and its verdict as
//! JSON. The corpus: the shared data sets under `../shared/data` (when
//! present), the policy's own test cases, and generated texts built from the
//! policy's phrases and from random bytes, mangled with the evasions the
//! folding undoes (leetspeak, stretched and spelled-out letters, homoglyphs,
//! zero-width characters, fullwidth forms).

use std::io::Write;
use std::path::Path;

use super::normalize::normalize;
use super::Engine;

use crate::test_rng::Rng;

const ODD: &[&str] = &[
    "\u{200B}", "\u{200D}", "\u{FEFF}", "\u{00AD}", "\u{0301}", "а", "е", "о", "і", "К", "Α", "ｋ",
    "ｉ", "ｌ", "４", "é", "ß", "ł", "’", "‘", "ʼ", "—", "…", "😀", "\u{2060}", "ﬁ",
];

/// Mangles `text` the way evasive posters do.
fn mangle(rng: &mut Rng, text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let level = rng.below(4);
    for ch in text.chars() {
        let r = rng.below(100);
        if level == 0 || r >= 10 * level {
            out.push(ch);
            continue;
        }
        match rng.below(12) {
            0 => {
                // stretch
                for _ in 0..rng.below(4) + 2 {
                    out.push(ch);
                }
            }
            1 => out.push(ch.to_ascii_uppercase()),
            2 => out.push(match ch {
                'o' => '0',
                'i' | 'l' => *rng.pick(&['1', '!', '|']),
                'e' => '3',
                'a' => *rng.pick(&['4', '@']),
                's' => *rng.pick(&['5', '$']),
                't' => '7',
                c => c,
            }),
            3 => {
                out.push(ch);
                out.push(*rng.pick(&['.', ' ', '-', '_', '*', ' ']));
            }
            4 => {
                out.push(ch);
                out.push_str(rng.pick::<&str>(ODD));
            }
            5 => {
                out.push(ch);
                out.push(*rng.pick(&['!', '\'', '?', ',', '#', '@', '"', '&', '\t', '\n']));
            }
            6 => {
                out.push(ch);
                out.push(*rng.pick(&['a', 'b', 'k', 'x', '1', '9', '0']));
            }
            7 => {} // drop
            _ => out.push(ch),
        }
    }
    out
}

/// Random ASCII-heavy text: words, numbers, punctuation runs, single letters.
fn random_text(rng: &mut Rng) -> String {
    const BYTES: &[u8] =
        b"aaabcdeeefghiiijklllmnooopqrssstuvwxyzKILSTHEM0123456789!!!@$|''' .,.-_?#&*\"\t";
    let mut out = String::new();
    let max = if rng.below(20) == 0 { 400 } else { 60 };
    let len = rng.below(max);
    let mut i = 0;
    while i < len {
        match rng.below(10) {
            0 => {
                // a spelled-out word
                let sep = *rng.pick(b". - ");
                for _ in 0..rng.below(6) + 1 {
                    out.push(*rng.pick(b"abcdeklmostuy") as char);
                    out.push(sep as char);
                }
            }
            1 => {
                // a long word
                for _ in 0..rng.below(90) + 40 {
                    out.push(*rng.pick(BYTES) as char);
                }
            }
            2 => out.push_str(rng.pick::<&str>(ODD)),
            _ => out.push(*rng.pick(BYTES) as char),
        }
        i += 1;
    }
    out
}

fn corpus(engine: &Engine) -> Vec<String> {
    let data = Path::new("../shared/data");
    let mut texts = Vec::new();
    for (file, column) in [
        ("davidson2017/labeled_data.csv", "tweet"),
        ("ethos/Ethos_Dataset_Binary.csv", "comment"),
        ("ethos/Ethos_Dataset_Multi_Label.csv", "comment"),
        ("stormfront/stormfront_sentences.csv", "text"),
    ] {
        let path = data.join(file);
        if path.exists() {
            match crate::policy::dataset::read_text_column(&path, column) {
                Ok(t) => texts.extend(t),
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
    let policy_dir = super::shipped_dir();
    if let Ok(cases) = super::cases::load_cases(&policy_dir.join("tests"), engine) {
        texts.extend(cases.into_iter().map(|c| c.text));
    }
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let phrases = engine.phrases();
    let fillers = [
        "the",
        "them",
        "all",
        "lets",
        "we",
        "must",
        "kill",
        "kil",
        "hang",
        "judge",
        "mayor",
        "police said",
        "not",
        "you",
        "i",
        "a",
        "will",
        "go",
        "time to",
        "everyone",
        "shoot",
        "jews",
        "immigrants",
        "rise up and",
        "burn",
        "every",
        "and",
        "k i l l",
        "2024",
        "!!",
    ];
    let natural = texts.len();
    for _ in 0..20_000 {
        let mut t = String::new();
        for _ in 0..rng.below(12) + 1 {
            if !t.is_empty() {
                t.push_str(rng.pick::<&str>(&[" ", " ", ", ", ". ", "  ", "\n", " - "]));
            }
            if rng.below(3) == 0 && !phrases.is_empty() {
                t.push_str(rng.pick(&phrases).as_str());
            } else {
                t.push_str(rng.pick::<&str>(&fillers));
            }
        }
        texts.push(mangle(&mut rng, &t));
    }
    for _ in 0..20_000 {
        let t = texts[rng.below(natural)].clone();
        texts.push(mangle(&mut rng, &t));
    }
    for _ in 0..20_000 {
        let t = random_text(&mut rng);
        texts.push(t);
    }
    // Many hits of one phrase: evidence and hit lists have caps.
    if let Some(p) = phrases.first() {
        texts.push(vec![p.as_str(); 100].join(" "));
    }
    texts.push("lets kil them ".repeat(20));
    texts
}

#[test]
#[ignore = "writes a record for comparison; run with AUPD_GOLDEN=<file>"]
fn golden() {
    let Ok(out) = std::env::var("AUPD_GOLDEN") else {
        return;
    };
    let dir = super::shipped_dir();
    let engine = match super::load_engine(&dir) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    let texts = corpus(&engine);
    let file = match std::fs::File::create(&out) {
        Ok(f) => f,
        Err(e) => panic!("{out}: {e}"),
    };
    let mut w = std::io::BufWriter::new(file);
    for (i, text) in texts.iter().enumerate() {
        let n = normalize(text);
        let mut words = String::new();
        for k in 0..n.word_count() {
            let s = n.word_start(k);
            let (os, oe) = n.original_span(s, s + 1);
            words.push_str(&format!("{s}:{os}-{oe} "));
        }
        let verdict = match serde_json::to_string(&engine.score(text)) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let line = format!("{i}\t{:?}\t{words}\t{verdict}\n", n.text());
        if let Err(e) = w.write_all(line.as_bytes()) {
            panic!("{e}");
        }
    }
    if let Err(e) = w.flush() {
        panic!("{e}");
    }
    eprintln!("{} texts written to {out}", texts.len());
}
