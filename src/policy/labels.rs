//! Reviewers' labels as a file, for training and measuring the learned
//! detectors on a tenant's own platform.
//!
//! The file is CSV with a header. Columns by name, in any order:
//! `text`, `category` and `label` are required; `sample_id`, `tenant`,
//! `origin` and `weight` are optional. `aupd review export` writes
//! `sample_id,tenant,category,label,origin,text` (see `docs/review.md`,
//! "Label export format"). `label` is `violates`, `does_not` or `unsure`;
//! `weight` (a positive number) multiplies the row's training weight.
//!
//! One item may have a row per category. The held-out split works on items,
//! not rows, so that no text is both trained on and measured: the k-th
//! distinct item of the file (by `sample_id`, or by `text` without that
//! column; 0-based, in file order) is held out when k is divisible by 5.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use super::dataset::Part;

/// A reviewer's answer for one item and one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The item violates the category.
    Violates,
    /// It does not.
    DoesNot,
    /// The reviewer could not tell: left out of training and of estimates.
    Unsure,
}

impl std::str::FromStr for Answer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "violates" => Ok(Answer::Violates),
            "does_not" => Ok(Answer::DoesNot),
            "unsure" => Ok(Answer::Unsure),
            other => Err(format!(
                "label {other:?} is not one of violates, does_not, unsure"
            )),
        }
    }
}

/// One row of a labels file.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    /// The line of the file it was on (the header is line 1).
    pub line: u64,
    /// The 0-based number of its item among the file's distinct items.
    pub item: usize,
    /// The tenant, when the file says.
    pub tenant: Option<String>,
    /// The category the answer is about.
    pub category: String,
    /// The answer.
    pub answer: Answer,
    /// The text reviewed.
    pub text: String,
    /// Its weight (1 unless the file gives one).
    pub weight: f32,
}

/// A labels file, read and checked.
#[derive(Debug, Clone)]
pub struct LabelFile {
    /// The file as given.
    pub path: PathBuf,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its rows, in file order.
    pub rows: Vec<LabelRow>,
}

impl LabelFile {
    /// The distinct tenants named in the file.
    pub fn tenants(&self) -> BTreeSet<String> {
        self.rows.iter().filter_map(|r| r.tenant.clone()).collect()
    }

    /// The distinct categories named in the file.
    pub fn categories(&self) -> BTreeSet<String> {
        self.rows.iter().map(|r| r.category.clone()).collect()
    }

    /// The one category to use: `asked` when given (it must occur in the
    /// file), else the file's only category.
    pub fn category(&self, asked: Option<&str>) -> anyhow::Result<String> {
        let all = self.categories();
        let name = self.path.display();
        match asked {
            Some(c) if all.contains(c) => Ok(c.to_string()),
            Some(c) => bail!(
                "{name}: no labels for category {c:?} (the file has: {})",
                all.into_iter().collect::<Vec<_>>().join(", ")
            ),
            None if all.len() == 1 => Ok(all.into_iter().next().unwrap_or_default()),
            None => bail!(
                "{name}: labels for several categories ({}); say which with --label-category",
                all.into_iter().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Reads and checks a labels file; errors name the file and the line.
pub fn read_labels(path: &Path) -> anyhow::Result<LabelFile> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading labels file {}", path.display()))?;
    parse_labels(&bytes, path)
}

/// Parses a labels file already in memory.
pub fn parse_labels(bytes: &[u8], path: &Path) -> anyhow::Result<LabelFile> {
    use sha2::Digest;
    let name = path.display();
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = reader
        .headers()
        .with_context(|| format!("{name}, line 1: reading the header"))?
        .clone();
    let col = |c: &str| headers.iter().position(|h| h.trim() == c);
    let need = |c: &str| {
        col(c).with_context(|| {
            format!(
                "{name}, line 1: no column {c:?} (columns: {}; needed: text, category, label)",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (text_i, category_i, label_i) = (need("text")?, need("category")?, need("label")?);
    let (id_i, tenant_i, weight_i) = (col("sample_id"), col("tenant"), col("weight"));
    let mut items: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            anyhow::anyhow!("{name}, line {line}: {e}")
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |i: usize| record.get(i).unwrap_or_default().trim();
        let at = |what: String| anyhow::anyhow!("{name}, line {line}: {what}");
        let text = record.get(text_i).unwrap_or_default().to_string();
        if text.trim().is_empty() {
            return Err(at("empty text".into()));
        }
        let category = cell(category_i).to_string();
        if category.is_empty() {
            return Err(at("empty category".into()));
        }
        let answer: Answer = cell(label_i).parse().map_err(at)?;
        let weight = match weight_i.map(cell).filter(|w| !w.is_empty()) {
            None => 1.0,
            Some(w) => match w.parse::<f32>() {
                Ok(v) if v.is_finite() && v > 0.0 => v,
                _ => return Err(at(format!("weight {w:?} is not a positive number"))),
            },
        };
        let key = match id_i.map(cell) {
            Some(id) if !id.is_empty() => id.to_string(),
            Some(_) => return Err(at("empty sample_id".into())),
            None => text.clone(),
        };
        let next = items.len();
        let item = *items.entry(key).or_insert(next);
        rows.push(LabelRow {
            line,
            item,
            tenant: tenant_i
                .map(cell)
                .filter(|t| !t.is_empty())
                .map(String::from),
            category,
            answer,
            text,
            weight,
        });
    }
    Ok(LabelFile {
        path: path.to_path_buf(),
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        rows,
    })
}

/// Whether an item belongs to a part of the file (item number divisible by
/// 5: held out).
pub fn in_part(part: Part, item: usize) -> bool {
    part.contains(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<LabelFile> {
        parse_labels(text.as_bytes(), Path::new("labels.csv"))
    }

    #[test]
    fn the_export_format_reads_with_items_tenants_and_categories() {
        let f = parse(
            "sample_id,tenant,category,label,origin,text\n\
             s1,parlor,harassment,violates,queue,\"you, idiot\"\n\
             s1,parlor,hate-speech,does_not,queue,\"you, idiot\"\n\
             s2,parlor,harassment,unsure,feedback,hello\n",
        )
        .unwrap();
        assert_eq!(f.rows.len(), 3);
        assert_eq!(f.rows[0].text, "you, idiot");
        assert_eq!(f.rows[0].answer, Answer::Violates);
        assert_eq!(f.rows[2].answer, Answer::Unsure);
        assert_eq!(f.rows.iter().map(|r| r.item).collect::<Vec<_>>(), [0, 0, 1]);
        assert_eq!(f.rows[2].line, 4);
        assert_eq!(f.tenants().into_iter().collect::<Vec<_>>(), ["parlor"]);
        assert!(f.category(None).is_err());
        assert_eq!(f.category(Some("harassment")).unwrap(), "harassment");
        let e = f.category(Some("violence")).unwrap_err().to_string();
        assert!(e.contains("no labels for category \"violence\""), "{e}");
        assert_eq!(f.sha256.len(), 64);
    }

    #[test]
    fn the_minimal_format_with_weights_reads() {
        let f = parse(
            "text,category,label,weight\na,harassment,violates,2.5\nb,harassment,does_not,\n",
        )
        .unwrap();
        assert_eq!(f.rows[0].weight, 2.5);
        assert_eq!(f.rows[1].weight, 1.0);
        assert_eq!(f.rows[1].item, 1);
        assert_eq!(f.category(None).unwrap(), "harassment");
    }

    #[test]
    fn bad_rows_are_refused_naming_file_and_line() {
        let e = parse("text,category,label\na,harassment,violates\nb,harassment,maybe\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "labels.csv, line 3: label \"maybe\" is not one of violates, does_not, unsure"
        );
        let e = parse("text,label\na,violates\n").unwrap_err().to_string();
        assert!(
            e.starts_with("labels.csv, line 1: no column \"category\""),
            "{e}"
        );
        let e = parse("text,category,label,weight\na,h,violates,-1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "labels.csv, line 2: weight \"-1\" is not a positive number"
        );
        let e = parse("text,category,label\na,h,violates,extra\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("labels.csv, line 2:"), "{e}");
        let e = read_labels(Path::new("/nonexistent/labels.csv"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "reading labels file /nonexistent/labels.csv");
    }

    #[test]
    fn the_split_keeps_an_items_rows_together() {
        let mut text = String::from("sample_id,category,label,text\n");
        for i in 0..10 {
            text.push_str(&format!("s{i},a,violates,t{i}\ns{i},b,does_not,t{i}\n"));
        }
        let f = parse(&text).unwrap();
        let held: Vec<usize> = f
            .rows
            .iter()
            .filter(|r| in_part(Part::Test, r.item))
            .map(|r| r.item)
            .collect();
        assert_eq!(held, [0, 0, 5, 5]);
    }
}
