//! Labelled CSV files for training and measuring the learned detectors.
//!
//! A source is described as `PATH,text=COLUMN,label=RULE[,soft=EXPR]
//! [,skip=RULE]...[,strip=STRING|...][,link=WORD|...][,group=COLUMN][,weight=W]`, for example
//! `labeled_data.csv,text=tweet,label=class=0,soft=hate_speech/count,group=class`.
//! The delimiter (`,` or `;`) is detected from the header line.
//!
//! Rules compare one column with a value: `class=0`, `label!=hate`,
//! `isHate>=0.5`, `violence>0`, `label=relation|idk/skip` (any of several).
//! Numbers compare as numbers (`0` equals `0.0`), anything else as text.
//!
//! A column whose name starts with `@` is derived from the text rather than
//! read from the file. There is one: `@addressed` is `1` when the text speaks
//! to someone in the second person (`you`, `u`, `ur`, `your`, `ya`, `yall`
//! …) and `0` otherwise. It lets a recipe say "Davidson's offensive tweets
//! that are aimed at the reader are harassment" without a new column.
//!
//! The split follows the shared data README: the held-out part is every row
//! whose 0-based data-row number (header not counted) is divisible by 5.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// A comparison operator of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`: equal to one of the values.
    Eq,
    /// `!=`: equal to none of the values.
    Ne,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `<`
    Lt,
}

/// A test on one column of a row, e.g. `isHate>=0.5`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The column it reads.
    pub column: String,
    /// How it compares.
    pub op: Op,
    /// The values it compares with (several only for `=` and `!=`).
    pub values: Vec<String>,
}

impl std::str::FromStr for Rule {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        // Longest operators first so `>=` is not read as `>`.
        const OPS: [(&str, Op); 6] = [
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let (at, tok, op) = OPS
            .iter()
            .filter_map(|&(tok, op)| s.find(tok).map(|at| (at, tok, op)))
            .min_by_key(|&(at, tok, _)| (at, std::cmp::Reverse(tok.len())))
            .with_context(|| {
                format!("rule {s:?}: expected COLUMN OP VALUE with OP one of = != >= > <= <")
            })?;
        let column = s[..at].trim().to_string();
        let rest = s[at + tok.len()..].trim();
        if column.is_empty() || rest.is_empty() {
            bail!("rule {s:?}: column and value must not be empty");
        }
        let values: Vec<String> = rest.split('|').map(|v| v.trim().to_string()).collect();
        if values.len() > 1 && !matches!(op, Op::Eq | Op::Ne) {
            bail!("rule {s:?}: several values (a|b) only work with = and !=");
        }
        if !matches!(op, Op::Eq | Op::Ne) && values[0].parse::<f64>().is_err() {
            bail!("rule {s:?}: {tok} needs a number, got {:?}", values[0]);
        }
        Ok(Rule { column, op, values })
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
        };
        write!(f, "{}{}{}", self.column, op, self.values.join("|"))
    }
}

fn same(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

impl Rule {
    /// Whether `cell` passes the rule; `Err` when a numeric rule meets text.
    pub fn test(&self, cell: &str) -> Result<bool, String> {
        let cell = cell.trim();
        let any = self.values.iter().any(|v| same(cell, v));
        let num = || {
            cell.parse::<f64>()
                .map_err(|_| format!("column {:?}: {cell:?} is not a number", self.column))
        };
        let v: f64 = self.values[0].parse().unwrap_or(f64::NAN);
        Ok(match self.op {
            Op::Eq => any,
            Op::Ne => !any,
            Op::Ge => num()? >= v,
            Op::Gt => num()? > v,
            Op::Le => num()? <= v,
            Op::Lt => num()? < v,
        })
    }
}

/// A soft target in [0, 1]: a column (`isHate`) or a ratio of two columns
/// (`hate_speech/count`), clamped to [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct SoftTarget {
    /// The numerator column.
    pub numerator: String,
    /// The denominator column, if any.
    pub denominator: Option<String>,
}

impl std::str::FromStr for SoftTarget {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (n, d) = match s.split_once('/') {
            Some((n, d)) => (n.trim(), Some(d.trim().to_string())),
            None => (s.trim(), None),
        };
        if n.is_empty() || d.as_deref() == Some("") {
            bail!("soft target {s:?}: expected COLUMN or COLUMN/COLUMN");
        }
        Ok(Self {
            numerator: n.to_string(),
            denominator: d,
        })
    }
}

impl std::fmt::Display for SoftTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.denominator {
            Some(d) => write!(f, "{}/{}", self.numerator, d),
            None => write!(f, "{}", self.numerator),
        }
    }
}

/// One labelled CSV file and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The file, as given.
    pub path: PathBuf,
    /// The text column.
    pub text: String,
    /// Which rows are positive.
    pub label: Rule,
    /// An optional soft training target.
    pub soft: Option<SoftTarget>,
    /// Rows matching any of these are left out.
    pub skip: Vec<Rule>,
    /// Strings removed from every text as it is read: a corpus's own
    /// placeholders (OLID writes every mention as `@USER`), which no
    /// platform's posts contain and a model must not learn from.
    pub strip: Vec<String>,
    /// Words a corpus writes in place of a web link (OLID writes `URL`):
    /// each whole-word occurrence is read as a link ([`LINK_TEXT`]), which
    /// folds as every real link does.
    pub link: Vec<String>,
    /// An optional column to report flag rates by.
    pub group: Option<String>,
    /// A weight for every example of this source in training.
    pub weight: f32,
    /// If set, positive and negative examples of this source are re-weighted
    /// so that positives carry this share of the source's total weight:
    /// sources with very different positive rates then teach the same prior,
    /// and the model cannot learn "this style of text ⇒ this label".
    pub prior: Option<f32>,
    /// The rows training may use: the 80% training part (the default), or
    /// every row of a file whose held-out part lives elsewhere (OLID's
    /// training file, whose test set is a separate file).
    pub train_part: Part,
}

impl std::str::FromStr for Source {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut parts = s.split(',');
        let path = parts.next().unwrap_or_default().trim();
        if path.is_empty() {
            bail!("data source {s:?}: missing file path");
        }
        let (mut text, mut label, mut soft, mut skip, mut group, mut weight) =
            (None, None, None, Vec::new(), None, 1.0f32);
        let mut strip: Vec<String> = Vec::new();
        let mut link: Vec<String> = Vec::new();
        let mut prior = None;
        let mut train_part = Part::Train;
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .with_context(|| format!("data source {s:?}: expected KEY=VALUE, got {part:?}"))?;
            let ctx = || format!("data source {s:?}, key {key}");
            match key.trim() {
                "text" => text = Some(value.trim().to_string()),
                "label" => label = Some(value.parse::<Rule>().with_context(ctx)?),
                "soft" => soft = Some(value.parse::<SoftTarget>().with_context(ctx)?),
                "skip" => skip.push(value.parse::<Rule>().with_context(ctx)?),
                "strip" => strip.extend(alternatives(value, |t| !t.is_empty()).map_err(|_| {
                    anyhow::anyhow!(
                        "data source {s:?}: strip needs a non-empty string (a|b for several)"
                    )
                })?),
                "link" => link.extend(
                    alternatives(value, |t| {
                        !t.is_empty() && t.chars().all(char::is_alphanumeric)
                    })
                    .map_err(|token| {
                        anyhow::anyhow!("data source {s:?}: link needs words of letters and digits (a|b for several), got {token:?}")
                    })?,
                ),
                "group" => group = Some(value.trim().to_string()),
                "weight" => {
                    weight = value.trim().parse().with_context(ctx)?;
                    if !(weight.is_finite() && weight > 0.0) {
                        bail!("data source {s:?}: weight must be a positive number");
                    }
                }
                "prior" => {
                    let p: f32 = value.trim().parse().with_context(ctx)?;
                    if !(p > 0.0 && p < 1.0) {
                        bail!("data source {s:?}: prior must be strictly between 0 and 1");
                    }
                    prior = Some(p);
                }
                "part" => {
                    train_part = match value.trim() {
                        "train" => Part::Train,
                        "all" => Part::All,
                        other => bail!(
                            "data source {s:?}: part must be `train` (the 80%) or `all`, got {other:?}"
                        ),
                    }
                }
                other => bail!(
                    "data source {s:?}: unknown key {other:?} (text, label, soft, skip, strip, link, group, weight, prior, part)"
                ),
            }
        }
        Ok(Self {
            path: PathBuf::from(path),
            text: text.with_context(|| format!("data source {s:?}: missing text=COLUMN"))?,
            label: label.with_context(|| format!("data source {s:?}: missing label=RULE"))?,
            soft,
            skip,
            strip,
            link,
            group,
            weight,
            prior,
            train_part,
        })
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{},text={},label={}",
            self.path.display(),
            self.text,
            self.label
        )?;
        if let Some(s) = &self.soft {
            write!(f, ",soft={s}")?;
        }
        for r in &self.skip {
            write!(f, ",skip={r}")?;
        }
        if !self.strip.is_empty() {
            write!(f, ",strip={}", self.strip.join("|"))?;
        }
        if !self.link.is_empty() {
            write!(f, ",link={}", self.link.join("|"))?;
        }
        if let Some(g) = &self.group {
            write!(f, ",group={g}")?;
        }
        if self.weight != 1.0 {
            write!(f, ",weight={}", self.weight)?;
        }
        if let Some(p) = self.prior {
            write!(f, ",prior={p}")?;
        }
        if self.train_part == Part::All {
            write!(f, ",part=all")?;
        }
        Ok(())
    }
}

/// One labelled row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Its 0-based data-row number in the file (header not counted, skipped rows counted).
    pub number: usize,
    /// The raw text.
    pub text: String,
    /// The hard label.
    pub label: bool,
    /// The training target in [0, 1] (the soft target, or the hard label).
    pub target: f32,
    /// The value of the grouping column, if one was asked for.
    pub group: Option<String>,
}

/// Which rows of a file to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The 80% for training: row number not divisible by 5.
    Train,
    /// The 20% held out: row number divisible by 5.
    Test,
    /// Every row.
    All,
}

impl Part {
    /// Whether data row `number` belongs to this part.
    pub fn contains(self, number: usize) -> bool {
        match self {
            Part::Train => !number.is_multiple_of(5),
            Part::Test => number.is_multiple_of(5),
            Part::All => true,
        }
    }
}

/// The fold of data row `number` in `k`-fold cross-validation.
pub fn fold_of(number: usize, k: usize) -> usize {
    number % k.max(1)
}

/// The `|`-separated values of a key, trimmed; the first that fails `ok`
/// is the error.
fn alternatives(value: &str, ok: impl Fn(&str) -> bool) -> Result<Vec<String>, String> {
    value
        .split('|')
        .map(str::trim)
        .map(|t| {
            if ok(t) {
                Ok(t.to_string())
            } else {
                Err(t.to_string())
            }
        })
        .collect()
}

/// What a corpus's link placeholder is read as: an address that folds to
/// the one word every link folds to ([`crate::policy::normalize::LINK`]).
pub const LINK_TEXT: &str = "http://link.invalid";

/// `text` with every whole-word occurrence of one of `words` (a corpus's
/// placeholder for a link, such as OLID's `URL`) replaced by [`LINK_TEXT`].
/// A word is whole when no letter or digit touches it on either side.
pub fn as_links(text: &str, words: &[impl AsRef<str>]) -> String {
    let mut out = text.to_string();
    for word in words {
        let word = word.as_ref();
        let mut next = String::with_capacity(out.len());
        let mut copied = 0;
        for (at, _) in out.match_indices(word) {
            let before = out[..at].chars().next_back();
            let after = out[at + word.len()..].chars().next();
            if before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            next.push_str(&out[copied..at]);
            next.push_str(LINK_TEXT);
            copied = at + word.len();
        }
        next.push_str(&out[copied..]);
        out = next;
    }
    out
}

/// A file read with [`read_source`].
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The rows kept (not skipped), in file order.
    pub rows: Vec<Row>,
    /// The number of data rows in the file.
    pub total: usize,
    /// The number of rows skipped by a skip rule.
    pub skipped: usize,
    /// The SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

/// The derived columns a rule may name instead of a file's column.
const DERIVED: [&str; 1] = ["@addressed"];

/// Whether `text` speaks to someone in the second person: one of its words
/// (lower-cased, apostrophes dropped) is a second-person pronoun or its
/// common spelling on social media.
pub fn addressed(text: &str) -> bool {
    const SECOND_PERSON: [&str; 10] = [
        "you", "u", "ur", "your", "yours", "youre", "yourself", "ya", "yall", "ye",
    ];
    let apostrophe = |c: char| c == '\'' || c == '\u{2019}';
    text.split(|c: char| !(c.is_alphanumeric() || apostrophe(c)))
        .map(|w| {
            w.chars()
                .filter(|&c| !apostrophe(c))
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .any(|w| SECOND_PERSON.contains(&w.as_str()))
}

/// Where a rule's column comes from.
#[derive(Clone, Copy)]
enum Column {
    /// The file's column at this index.
    File(usize),
    /// `@addressed`.
    Addressed,
}

/// Picks a tab, `;` or `,`, whichever the header line has most of.
pub fn detect_delimiter(bytes: &[u8]) -> u8 {
    let header = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |d| header.iter().filter(|&&b| b == d).count();
    [b'\t', b';', b',']
        .into_iter()
        .max_by_key(|&d| (count(d), d == b','))
        .unwrap_or(b',')
}

/// Reads every row of a source; errors name the file, line and column.
pub fn read_source(source: &Source) -> anyhow::Result<Loaded> {
    let path = &source.path;
    let bytes =
        std::fs::read(path).with_context(|| format!("reading data file {}", path.display()))?;
    read_bytes(source, &bytes, path)
}

/// Reads rows of a source from bytes already in memory.
pub fn read_bytes(source: &Source, bytes: &[u8], path: &Path) -> anyhow::Result<Loaded> {
    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(bytes));
    let name = path.display();
    let delimiter = detect_delimiter(bytes);
    // Tab-separated files (OLID) do not quote: a tweet may start with `"`.
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(delimiter != b'\t')
        .flexible(false)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .with_context(|| format!("{name}: reading the header line"))?
        .clone();
    let col = |c: &str| {
        headers.iter().position(|h| h.trim() == c).with_context(|| {
            format!(
                "{name}: no column {c:?} (columns: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let rule_col = |c: &str| -> anyhow::Result<Column> {
        match c {
            "@addressed" => Ok(Column::Addressed),
            _ if c.starts_with('@') => bail!(
                "{name}: no derived column {c:?} (derived columns: {})",
                DERIVED.join(", ")
            ),
            _ => col(c).map(Column::File),
        }
    };
    let text_i = col(&source.text)?;
    let label_i = rule_col(&source.label.column)?;
    let skip_i: Vec<Column> = source
        .skip
        .iter()
        .map(|r| rule_col(&r.column))
        .collect::<anyhow::Result<_>>()?;
    let soft_i = match &source.soft {
        Some(s) => Some((
            col(&s.numerator)?,
            s.denominator.as_deref().map(col).transpose()?,
        )),
        None => None,
    };
    let group_i = source.group.as_deref().map(col).transpose()?;
    let (mut rows, mut total, mut skipped) = (Vec::new(), 0usize, 0usize);
    for (number, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{name}: data row {number}"))?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let rule_cell = |c: Column| match c {
            Column::File(i) => cell(i),
            Column::Addressed if addressed(cell(text_i)) => "1",
            Column::Addressed => "0",
        };
        let at = |what: String| format!("{name}, line {line}: {what}");
        total += 1;
        let mut skip = false;
        for (rule, &i) in source.skip.iter().zip(&skip_i) {
            skip |= rule
                .test(rule_cell(i))
                .map_err(|e| anyhow::anyhow!(at(e)))?;
        }
        if skip {
            skipped += 1;
            continue;
        }
        let label = source
            .label
            .test(rule_cell(label_i))
            .map_err(|e| anyhow::anyhow!(at(e)))?;
        let target = match soft_i {
            None => f32::from(u8::from(label)),
            Some((n, d)) => {
                let num = |i: usize| -> anyhow::Result<f64> {
                    cell(i).trim().parse::<f64>().map_err(|_| {
                        anyhow::anyhow!(at(format!(
                            "column {:?}: {:?} is not a number",
                            headers.get(i).unwrap_or_default(),
                            cell(i)
                        )))
                    })
                };
                let v = match d {
                    None => num(n)?,
                    Some(d) => {
                        let den = num(d)?;
                        if den > 0.0 {
                            num(n)? / den
                        } else {
                            0.0
                        }
                    }
                };
                v.clamp(0.0, 1.0) as f32
            }
        };
        let mut text = cell(text_i).to_string();
        for token in &source.strip {
            // A space, not nothing: the words on either side stay apart.
            text = text.replace(token.as_str(), " ");
        }
        if !source.link.is_empty() {
            text = as_links(&text, &source.link);
        }
        rows.push(Row {
            number,
            text,
            label,
            target,
            group: group_i.map(|i| cell(i).trim().to_string()),
        });
    }
    Ok(Loaded {
        rows,
        total,
        skipped,
        sha256,
    })
}

/// Reads one text column of a CSV file (`,` or `;` separated, by its header).
pub fn read_text_column(path: &Path, column: &str) -> anyhow::Result<Vec<String>> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let delimiter = detect_delimiter(&raw);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(raw.as_slice());
    let headers = reader.headers().context("reading the CSV header")?.clone();
    let index = headers.iter().position(|h| h == column).with_context(|| {
        format!(
            "{} has no column `{column}` (columns: {})",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        )
    })?;
    let mut texts = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: data row {i}", path.display()))?;
        texts.push(record.get(index).unwrap_or_default().to_string());
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rules_parse() {
        let r: Rule = "class=0".parse().unwrap();
        assert_eq!((r.column.as_str(), r.op), ("class", Op::Eq));
        assert!(r.test("0").unwrap() && r.test("0.0").unwrap() && !r.test("1").unwrap());
        let r: Rule = "isHate>=0.5".parse().unwrap();
        assert_eq!(r.op, Op::Ge);
        assert!(r.test("0.5").unwrap() && !r.test("0.4999").unwrap());
        assert!(r.test("abc").is_err());
        let r: Rule = "label=relation|idk/skip".parse().unwrap();
        assert!(r.test("idk/skip").unwrap() && r.test("relation").unwrap());
        assert!(!r.test("hate").unwrap());
        let r: Rule = "label!=hate".parse().unwrap();
        assert_eq!(r.op, Op::Ne);
        assert!(r.test("noHate").unwrap());
        assert_eq!(r.to_string(), "label!=hate");
        assert!("violence".parse::<Rule>().is_err());
        assert!("x>=abc".parse::<Rule>().is_err());
        assert!("=3".parse::<Rule>().is_err());
    }

    #[test]
    fn sources_parse_and_print_back() {
        let s: Source = "d.csv,text=tweet,label=class=0,soft=hate_speech/count,group=class"
            .parse()
            .unwrap();
        assert_eq!(s.text, "tweet");
        assert_eq!(
            s.soft.as_ref().unwrap().denominator.as_deref(),
            Some("count")
        );
        assert_eq!(
            s.to_string(),
            "d.csv,text=tweet,label=class=0,soft=hate_speech/count,group=class"
        );
        assert!("d.csv,text=tweet".parse::<Source>().is_err());
        assert!("d.csv,label=a=1,colour=red,text=t"
            .parse::<Source>()
            .is_err());
    }

    #[test]
    fn the_addressed_column_is_read_from_the_text() {
        assert!(addressed("@bob you're a liar"));
        assert!(addressed("shut up U clown"));
        assert!(addressed("Y'ALL are clowns"));
        assert!(!addressed("they are liars, young people said"));
        assert!(!addressed("youth and yourselfish are not pronouns"));
        let data = "tweet,class\nyou are a clown,1\nwhat a clown,1\nhello you,2\n";
        let s: Source = "f.csv,text=tweet,label=@addressed=1,skip=class=2,skip=@addressed=0"
            .parse()
            .unwrap();
        let l = read_bytes(&s, data.as_bytes(), Path::new("f.csv")).unwrap();
        assert_eq!((l.total, l.skipped, l.rows.len()), (3, 2, 1));
        assert!(l.rows[0].label && l.rows[0].text == "you are a clown");
        let s: Source = "f.csv,text=tweet,label=@mood=1".parse().unwrap();
        let err = read_bytes(&s, data.as_bytes(), Path::new("f.csv")).unwrap_err();
        assert!(
            err.to_string().contains("no derived column \"@mood\""),
            "{err}"
        );
    }

    #[test]
    fn split_holds_out_every_fifth_row() {
        let test: Vec<usize> = (0..12).filter(|&n| Part::Test.contains(n)).collect();
        assert_eq!(test, vec![0, 5, 10]);
        assert!((0..12).all(|n| Part::Train.contains(n) != Part::Test.contains(n)));
        assert_eq!(fold_of(23, 10), 3);
    }

    #[test]
    fn reads_semicolon_files_with_quotes_skips_and_soft_targets() {
        let data = "comment;isHate;label\n\"a; quoted\";1.0;x\nb;0.25;skip\nc;0.5;x\n";
        let s: Source = "f.csv,text=comment,label=isHate>=0.5,soft=isHate,skip=label=skip"
            .parse()
            .unwrap();
        let l = read_bytes(&s, data.as_bytes(), Path::new("f.csv")).unwrap();
        assert_eq!((l.total, l.skipped, l.rows.len()), (3, 1, 2));
        assert_eq!(l.rows[0].text, "a; quoted");
        assert_eq!((l.rows[1].number, l.rows[1].label), (2, true));
        assert_eq!(l.rows[1].target, 0.5);
    }

    #[test]
    fn strip_removes_a_corpus_placeholder_and_is_recorded() {
        let spec = "f.tsv,text=tweet,label=a=1,strip=@USER|URL";
        let s: Source = spec.parse().unwrap();
        assert_eq!(s.strip, vec!["@USER", "URL"]);
        assert_eq!(s.to_string(), spec);
        let data = "tweet,a\n@USER @USER you liar URL,1\nno placeholder here,0\n";
        let l = read_bytes(&s, data.as_bytes(), Path::new("f.csv")).unwrap();
        assert_eq!(
            l.rows[0].text.split_whitespace().collect::<Vec<_>>(),
            ["you", "liar"]
        );
        assert_eq!(l.rows[1].text, "no placeholder here");
        let err = "f.tsv,text=t,label=a=1,strip="
            .parse::<Source>()
            .unwrap_err();
        assert!(
            err.to_string().contains("strip needs a non-empty string"),
            "{err}"
        );
    }

    #[test]
    fn link_reads_a_corpus_placeholder_as_a_link_and_is_recorded() {
        let spec = "f.tsv,text=tweet,label=a=1,link=URL";
        let s: Source = spec.parse().unwrap();
        assert_eq!(s.link, vec!["URL"]);
        assert_eq!(s.to_string(), spec);
        let data = "tweet,a\n@USER you liar URL,1\nCURLY URLs (URL),0\n";
        let l = read_bytes(&s, data.as_bytes(), Path::new("f.csv")).unwrap();
        assert_eq!(l.rows[0].text, format!("@USER you liar {LINK_TEXT}"));
        assert_eq!(l.rows[1].text, format!("CURLY URLs ({LINK_TEXT})"));
        let folded = crate::policy::normalize::normalize(&l.rows[0].text);
        assert!(folded.text().ends_with(crate::policy::normalize::LINK));
        for bad in ["link=", "link=a b", "link=URL|"] {
            let err = format!("f.tsv,text=t,label=a=1,{bad}")
                .parse::<Source>()
                .unwrap_err();
            assert!(err.to_string().contains("link needs words"), "{bad}: {err}");
        }
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let s: Source = "f.csv,text=t,label=score>=0.5".parse().unwrap();
        let data = "t,score\nok,0.9\nbad,high\n";
        let err = read_bytes(&s, data.as_bytes(), Path::new("f.csv")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.csv, line 3: column \"score\": \"high\" is not a number"
        );
        let s: Source = "f.csv,text=body,label=score>=0.5".parse().unwrap();
        let err = read_bytes(&s, data.as_bytes(), Path::new("f.csv")).unwrap_err();
        assert!(err.to_string().starts_with("f.csv: no column \"body\""));
    }
}
