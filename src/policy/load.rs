//! Reading and validating the policy files (`policies/*.toml`).
//!
//! Loading is strict: unknown keys, missing fields, out-of-range numbers,
//! duplicate ids, empty phrase lists, invalid regular expressions and missing
//! model files are all errors, each reported with its file, line and key, and
//! every error found is reported at once so an author fixes them in one pass.
//!
//! Named term lists (`[lists]`) are written once and used by many detectors:
//! an entry `"{{name}}"` in a phrase or proximity list stands for every term
//! of the list, and `{{name}}` in a regular expression stands for a group
//! that matches any of them, folded and escaped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::ladder::Ladders;
use super::model::LinearModel;
use super::normalize::normalize;
use crate::domain::Severity;

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, 0 when the problem is not tied to a place in the file.
    pub line: usize,
    /// Dotted key of the offending value, when known.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found while loading a policy directory.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_errors(.0))]
pub struct PolicyErrors(pub Vec<PolicyError>);

fn render_errors(errors: &[PolicyError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// A validated policy, ready to be compiled into an engine.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Human name of the policy.
    pub name: String,
    /// Content hash (hex SHA-256) of every file of the policy: the category
    /// files, the escalation ladders, the models and their sidecars.
    pub version: String,
    /// The escalation ladders (`escalation/ladders.toml`; the built-in ones
    /// when the file is absent).
    pub ladders: Arc<Ladders>,
    /// Counter-speech and reporting signals.
    pub context: Context,
    /// The AUP categories, in file order.
    pub categories: Vec<Category>,
}

/// Signals that a text reports on, quotes to condemn, or argues against the
/// harm it mentions.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Largest share of a context-sensitive category's score the signal removes.
    pub dampening: f32,
    /// The signals; their weights combine by noisy-OR into one context score.
    pub signals: Vec<ContextSignal>,
}

/// One list of context phrases.
#[derive(Debug, Clone)]
pub struct ContextSignal {
    /// Shown in verdicts when it fires.
    pub id: String,
    /// Strength in [0, 1].
    pub weight: f32,
    /// Folded phrases.
    pub phrases: Vec<String>,
    /// Whether the signal judges a quotation: it fires only when one of its
    /// phrases stands outside the quotation marks of the original text and
    /// all the phrase and pattern evidence of the context-sensitive
    /// categories stands inside them ("'X are vermin' is a vile thing to
    /// say"), never for the same words said outright. A phrase with a
    /// negation in the two words before it ("is not hateful") does not
    /// count, here or in a signal that denies a claim.
    pub judges_quote: bool,
    /// Whether the signal denies a claim: it fires only when all the phrase
    /// and pattern evidence of the context-sensitive categories stands in
    /// the clause that one of its phrases opens, from the end of the phrase
    /// to the next `.`, `,`, `;`, `:`, `!`, `?` or line break ("it is false
    /// that X are criminals"), never when the evidence stands before the
    /// phrase or after the clause ("it is false that X are human; they are
    /// animals").
    pub denies_clause: bool,
    /// Phrases that put a claim in someone else's mouth ("people who say",
    /// "if you think"), for a signal that judges a quotation: the clause one
    /// of them opens (up to the next punctuation mark) is judged like a
    /// quotation when all the evidence stands in it and one of the signal's
    /// phrases comes after all the evidence ("people who say X are animals
    /// are ignorant").
    pub attributions: Vec<String>,
    /// Folded phrases of which one must also stand somewhere in the text for
    /// the signal to fire (empty: no such condition). Words that judge as
    /// readily as they condemn ("shameful", "is racist") lower a text only
    /// when it reports a saying ("he called them …"), which is what such a
    /// word condemns in counter-speech.
    pub needs: Vec<String>,
    /// Whether the signal's phrases say what the detectors' own words mean
    /// ("shoot a documentary", "a bullet point", "not vermin"): they then
    /// count where they stand inside a detector's evidence. Other signals'
    /// phrases speak of what surrounds the evidence ("should never",
    /// "police said"), and one that stands inside it is part of what the
    /// detector found ("Muslims should never be allowed here").
    pub reads_evidence: bool,
    /// The categories the signal lowers (ids); empty: every context-sensitive
    /// category. A signal kept to some categories says what a word means for
    /// them alone: "lawyers are scum" is abuse but not hate speech, while
    /// "kill all the lawyers" is still a call to violence. Such a signal
    /// never lowers a category one of whose phrase, proximity or pattern
    /// detectors found evidence in the text: it lowers what the models
    /// alone read.
    pub categories: Vec<String>,
    /// Folded phrases any one of which, standing in the text, keeps the
    /// signal from firing (empty: no such condition): "lawyers" names no
    /// protected group, "lawyers and Jews" does.
    pub unless: Vec<String>,
}

/// A reference from a signal's `categories` to a category, checked once
/// every file's categories are known.
struct SignalCategoryRef {
    id: String,
    file: PathBuf,
    line: usize,
    key: String,
}

/// One category of the acceptable-use policy.
#[derive(Debug, Clone)]
pub struct Category {
    /// Stable id such as `violent-incitement`.
    pub id: String,
    /// Short title.
    pub title: String,
    /// The AUP text a tenant is shown.
    pub aup: String,
    /// How serious a violation is; drives the escalation ladder.
    pub severity: Severity,
    /// Score at or above which a text is flagged.
    pub flag_threshold: f32,
    /// Whether the context signal lowers this category's score.
    pub context_sensitive: bool,
    /// When sampled evidence should open a case.
    pub case: CaseRule,
    /// The detectors whose scores combine into the category score.
    pub detectors: Vec<Detector>,
}

/// When a tenant's sampled evidence for a category should open a case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRule {
    /// Open when the lower bound of the 95% prevalence interval exceeds this share.
    pub tolerance: f64,
    /// Open at once when a single item scores at or above this.
    pub critical_score: Option<f32>,
    /// Do not judge prevalence on fewer samples than this.
    pub min_samples: u64,
    /// Which prevalence figure the rule rests on (`estimate`).
    pub estimate: Estimate,
}

/// Which prevalence figure a category's rules rest on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Estimate {
    /// The model's count (the default).
    #[default]
    Model,
    /// The stratified estimate from reviewers' labels.
    Labelled,
    /// The model's count corrected by its error on the labels.
    Corrected,
}

impl Estimate {
    /// Whether the figure rests on reviewers' labels, so that a suspension
    /// needs items two reviewers agree violate.
    pub fn needs_labels(self) -> bool {
        !matches!(self, Estimate::Model)
    }
}

/// A detector: one way of finding a category's content.
#[derive(Debug, Clone)]
pub struct Detector {
    /// Id that appears in evidence.
    pub id: String,
    /// Contribution in [0, 1] when it fires (scales a classifier's probability).
    pub weight: f32,
    /// What it looks for.
    pub kind: DetectorKind,
    /// Ids of detectors of the same category that must all find something
    /// for this one to count: a gate ("the model's reading counts only when
    /// the text has a violent act near people").
    pub requires: Vec<String>,
}

/// The kinds of detector.
#[derive(Debug, Clone)]
pub enum DetectorKind {
    /// Whole-word phrases, matched on folded text.
    Phrases(Vec<String>),
    /// A regular expression over the folded text.
    Regex(regex::Regex),
    /// A term of `first` within `within` words of a term of `second`.
    Proximity {
        /// e.g. violent verbs.
        first: Vec<String>,
        /// e.g. targets.
        second: Vec<String>,
        /// Largest distance in words.
        within: usize,
        /// The `second` term must come after the `first` ("is a … moron",
        /// not "moron is a"); otherwise either order matches.
        ordered: bool,
    },
    /// A learned linear classifier.
    Classifier {
        /// Path relative to the policy directory.
        path: PathBuf,
        /// The loaded model.
        model: Arc<LinearModel>,
        /// The model probability that counts as 0.5 (its chosen threshold).
        midpoint: f32,
    },
}

// ---- raw file shapes -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    policy: Option<RawMeta>,
    #[serde(default)]
    lists: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    context: Option<RawContext>,
    #[serde(default)]
    category: Vec<Spanned<RawCategory>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    dampening: Spanned<f32>,
    #[serde(default)]
    signal: Vec<Spanned<RawSignal>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignal {
    id: Spanned<String>,
    weight: Spanned<f32>,
    phrases: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    judges_quote: bool,
    denies_clause: Option<Spanned<bool>>,
    attributions: Option<Spanned<Vec<Spanned<String>>>>,
    needs: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    reads_evidence: bool,
    categories: Option<Spanned<Vec<Spanned<String>>>>,
    unless: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    id: Spanned<String>,
    title: String,
    aup: String,
    severity: Severity,
    flag_threshold: Spanned<f32>,
    #[serde(default)]
    context_sensitive: bool,
    case: Option<RawCase>,
    #[serde(default)]
    detector: Vec<Spanned<RawDetector>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    tolerance: Spanned<f64>,
    critical_score: Option<Spanned<f32>>,
    #[serde(default = "default_min_samples")]
    min_samples: u64,
    estimate: Option<Spanned<String>>,
}

fn default_min_samples() -> u64 {
    30
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Phrases,
    Regex,
    Proximity,
    Classifier,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetector {
    id: Spanned<String>,
    kind: Spanned<RawKind>,
    weight: Spanned<f32>,
    phrases: Option<Spanned<Vec<Spanned<String>>>>,
    pattern: Option<Spanned<String>>,
    first: Option<Spanned<Vec<Spanned<String>>>>,
    second: Option<Spanned<Vec<Spanned<String>>>>,
    within: Option<Spanned<usize>>,
    ordered: Option<Spanned<bool>>,
    model: Option<Spanned<String>>,
    midpoint: Option<Spanned<f32>>,
    requires: Option<Spanned<Vec<String>>>,
}

// ---- loading ---------------------------------------------------------------

/// Collects errors for one file, turning byte spans into line numbers.
struct Report<'a> {
    file: &'a Path,
    source: &'a str,
    errors: &'a mut Vec<PolicyError>,
}

impl Report<'_> {
    fn at(
        &mut self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = line_of(self.source, span.start);
        self.errors.push(PolicyError {
            file: self.file.to_path_buf(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }
}

fn line_of(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Loads and validates every `*.toml` file directly inside `dir`, in name
/// order, together with the model files they name.
pub fn load_dir(dir: &Path) -> Result<Policy, PolicyErrors> {
    let mut errors = Vec::new();
    let mut files = match list_policy_files(dir) {
        Ok(files) => files,
        Err(message) => {
            return Err(PolicyErrors(vec![PolicyError {
                file: dir.to_path_buf(),
                line: 0,
                key: String::new(),
                message,
            }]))
        }
    };
    files.sort();
    if files.is_empty() {
        return Err(PolicyErrors(vec![PolicyError {
            file: dir.to_path_buf(),
            line: 0,
            key: String::new(),
            message: "no *.toml policy files in this directory".into(),
        }]));
    }

    let mut hasher = Sha256::new();
    let mut parsed = Vec::new();
    for path in &files {
        let source = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(PolicyError {
                    file: path.clone(),
                    line: 0,
                    key: String::new(),
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        hash_file(&mut hasher, path, source.as_bytes());
        match toml::from_str::<RawFile>(&source) {
            Ok(raw) => parsed.push((path, source, raw)),
            Err(e) => {
                let line = e.span().map_or(0, |s| line_of(&source, s.start));
                errors.push(PolicyError {
                    file: path.clone(),
                    line,
                    key: String::new(),
                    message: e.message().to_string(),
                });
            }
        }
    }

    // Lists first: a detector in one file may use a list of another.
    let mut lists = Lists::default();
    for (path, source, raw) in &mut parsed {
        let mut report = Report {
            file: path,
            source,
            errors: &mut errors,
        };
        lists.add(std::mem::take(&mut raw.lists), &mut report);
    }

    let mut name = None;
    let mut context = None;
    let mut categories: Vec<Category> = Vec::new();
    let mut model_files = BTreeSet::new();
    let mut seen_categories = HashSet::new();
    let mut seen_detectors = HashSet::new();
    let mut signal_category_refs = Vec::new();
    for (path, source, raw) in parsed {
        let mut report = Report {
            file: path,
            source: &source,
            errors: &mut errors,
        };
        if let Some(meta) = raw.policy {
            if name.replace(meta.name).is_some() {
                report.at(
                    0..0,
                    "policy",
                    "a [policy] table appears in more than one file",
                );
            }
        }
        if let Some(raw_ctx) = raw.context {
            let ctx = validate_context(
                raw_ctx,
                &lists,
                &mut report,
                &mut seen_detectors,
                &mut signal_category_refs,
            );
            if context.replace(ctx).is_some() {
                report.at(
                    0..0,
                    "context",
                    "a [context] table appears in more than one file",
                );
            }
        }
        for (i, raw_cat) in raw.category.into_iter().enumerate() {
            let span = raw_cat.span();
            let raw_cat = raw_cat.into_inner();
            if !seen_categories.insert(raw_cat.id.get_ref().clone()) {
                report.at(
                    raw_cat.id.span(),
                    format!("category[{i}].id"),
                    format!("duplicate category id `{}`", raw_cat.id.get_ref()),
                );
            }
            let key = format!("category[{i}]");
            let refs = Refs { dir, lists: &lists };
            if let Some(cat) = validate_category(
                raw_cat,
                span,
                &key,
                &refs,
                &mut report,
                &mut seen_detectors,
                &mut model_files,
            ) {
                categories.push(cat);
            }
        }
    }

    for r in signal_category_refs {
        let message = match categories.iter().find(|c| c.id == r.id) {
            None => format!("unknown category `{}`", r.id),
            Some(c) if !c.context_sensitive => format!(
                "category `{}` is not context-sensitive: no signal lowers it",
                r.id
            ),
            Some(_) => continue,
        };
        errors.push(PolicyError {
            file: r.file,
            line: r.line,
            key: r.key,
            message,
        });
    }

    for model in &model_files {
        if let Ok(bytes) = std::fs::read(dir.join(model)) {
            hash_file(&mut hasher, Path::new(model), &bytes);
            check_sidecar(dir, model, &bytes, &mut hasher, &mut errors);
        }
    }
    // The same files fold text differently under other folding rules: the
    // version covers the rules too.
    hash_named(
        &mut hasher,
        "(folding)",
        super::normalize::FOLDING.as_bytes(),
    );
    let ladders = load_ladders(dir, &mut hasher, &mut errors);
    check_labels_have_approvers(dir, &categories, &ladders, &mut errors);
    if errors.is_empty() && categories.is_empty() {
        errors.push(PolicyError {
            file: dir.to_path_buf(),
            line: 0,
            key: String::new(),
            message: "the policy defines no [[category]]".into(),
        });
    }
    if !errors.is_empty() {
        return Err(PolicyErrors(errors));
    }
    Ok(Policy {
        name: name.unwrap_or_else(|| "acceptable-use policy".into()),
        version: hex::encode(hasher.finalize()),
        ladders: Arc::new(ladders),
        context: context.unwrap_or_default(),
        categories,
    })
}

/// Where the escalation ladders live inside the policy directory.
const LADDERS_FILE: &str = "escalation/ladders.toml";

/// Reads, hashes and validates `escalation/ladders.toml`; the built-in
/// ladders when there is no such file. A broken file is an error of the
/// policy like any other, so neither start-up nor a reload takes it.
fn load_ladders(dir: &Path, hasher: &mut Sha256, errors: &mut Vec<PolicyError>) -> Ladders {
    let path = dir.join(LADDERS_FILE);
    let mut fail = |line: usize, key: String, message: String| {
        errors.push(PolicyError {
            file: path.clone(),
            line,
            key,
            message,
        });
        Ladders::default()
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ladders::default(),
        Err(e) => return fail(0, String::new(), format!("cannot read: {e}")),
    };
    hash_named(hasher, LADDERS_FILE, text.as_bytes());
    match Ladders::from_toml_str(&text) {
        Ok(ladders) => ladders,
        Err(e) => fail(e.line, e.key, e.message),
    }
}

/// A category whose rules rest on reviewers' labels needs someone to check
/// that labelled evidence exists before a suspension is ordered: approvals
/// wait for it, but a ladder that orders a suspension on a missed deadline
/// with no approvals (`approvals = 0`) would order it unchecked. Such a pair
/// is an error, reported on the ladder's `approvals` line.
fn check_labels_have_approvers(
    dir: &Path,
    categories: &[Category],
    ladders: &Ladders,
    errors: &mut Vec<PolicyError>,
) {
    let path = dir.join(LADDERS_FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut reported = std::collections::BTreeSet::new();
    for c in categories {
        let ladder = ladders.get(c.severity);
        if !c.case.estimate.needs_labels()
            || ladder.on_miss != super::ladder::OnMiss::ProposeSuspension
            || ladder.approvals > 0
        {
            continue;
        }
        let section = c.severity.as_str().to_string();
        if !reported.insert(section.clone()) {
            continue;
        }
        errors.push(PolicyError {
            file: path.clone(),
            line: line_in_section(&text, &section, "approvals"),
            key: format!("{section}.approvals"),
            message: format!(
                "is 0, but category {:?} rests its rules on reviewers' labels: a suspension must wait for an approver who can see two reviewers agree; set approvals to at least 1 or estimate = \"model\"",
                c.id
            ),
        });
    }
}

/// The 1-based line of `key = …` inside `[section]` of a TOML text (0 when
/// it is not there).
fn line_in_section(text: &str, section: &str, key: &str) -> usize {
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == format!("[{section}]");
        } else if inside
            && t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return i + 1;
        }
    }
    0
}

/// Hashes the `.json` sidecar beside `model` (its training record) into
/// the version, and checks that it is JSON and describes this very model
/// file: a model swapped without its sidecar, or the other way round, is
/// refused rather than served under a record that is not its own.
fn check_sidecar(
    dir: &Path,
    model: &str,
    model_bytes: &[u8],
    hasher: &mut Sha256,
    errors: &mut Vec<PolicyError>,
) {
    let rel = Path::new(model).with_extension("json");
    let path = dir.join(&rel);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    hash_named(hasher, &rel.to_string_lossy(), text.as_bytes());
    let mut error = |line: usize, key: &str, message: String| {
        errors.push(PolicyError {
            file: path.clone(),
            line,
            key: key.to_string(),
            message,
        })
    };
    let record: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return error(e.line(), "", format!("not JSON: {e}")),
    };
    let line = text
        .find("\"model_sha256\"")
        .map_or(1, |at| line_of(&text, at));
    let actual = hex::encode(Sha256::digest(model_bytes));
    match record.get("model_sha256").and_then(|v| v.as_str()) {
        Some(stated) if stated.eq_ignore_ascii_case(&actual) => {}
        Some(_) => error(
            line,
            "model_sha256",
            format!("does not match {model}, whose SHA-256 is {actual}"),
        ),
        None => error(
            line,
            "model_sha256",
            format!("missing: the sidecar must state the SHA-256 of {model} ({actual})"),
        ),
    }
}

fn list_policy_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read policy directory: {e}"))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list policy directory: {e}"))?
            .path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    Ok(files)
}

fn hash_file(hasher: &mut Sha256, path: &Path, bytes: &[u8]) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    hash_named(hasher, &name, bytes);
}

/// Like [`hash_file`], under a name relative to the policy directory, so a
/// file in a subdirectory cannot collide with a top-level one.
fn hash_named(hasher: &mut Sha256, name: &str, bytes: &[u8]) {
    hasher.update((name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn check_unit(report: &mut Report, value: &Spanned<f32>, key: &str) -> f32 {
    let v = *value.get_ref();
    if !(0.0..=1.0).contains(&v) || v.is_nan() {
        report.at(
            value.span(),
            key,
            format!("must be between 0 and 1, got {v}"),
        );
    }
    v
}

/// What a detector may refer to outside itself: model files in the policy
/// directory and the named term lists.
struct Refs<'a> {
    dir: &'a Path,
    lists: &'a Lists,
}

/// The named term lists of every file, folded like phrases.
#[derive(Default)]
struct Lists(HashMap<String, Vec<String>>);

/// The name inside `{{name}}` when `entry` is exactly a list reference.
fn list_reference(entry: &str) -> Option<&str> {
    entry
        .trim()
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
}

/// Ids of categories and names of lists: lowercase letters, digits and `-`.
fn is_slug(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Lists {
    fn add(&mut self, raw: BTreeMap<String, Spanned<Vec<Spanned<String>>>>, report: &mut Report) {
        for (name, terms) in raw {
            let key = format!("lists.{name}");
            if !is_slug(&name) {
                report.at(
                    terms.span(),
                    &key,
                    "a list name must be lowercase letters, digits and '-'",
                );
                continue;
            }
            if self.0.contains_key(&name) {
                report.at(
                    terms.span(),
                    &key,
                    format!("list `{name}` is defined in more than one place"),
                );
                continue;
            }
            if let Some(nested) = terms
                .get_ref()
                .iter()
                .find(|t| list_reference(t.get_ref()).is_some())
            {
                report.at(
                    nested.span(),
                    &key,
                    format!(
                        "{:?}: a list cannot include another list; write its terms out",
                        nested.get_ref()
                    ),
                );
                continue;
            }
            let folded = fold_terms(report, &Lists::default(), &terms, &key);
            self.0.insert(name, folded);
        }
    }

    /// Replaces every `{{name}}` in a regular expression by a non-capturing
    /// group of the list's folded terms, longest first (so that at any
    /// position the longest term is preferred), each escaped, with spaces
    /// written `\x20` so that the group means the same in verbose mode
    /// `(?x)`. Errors name the line of the reference.
    fn expand_pattern(
        &self,
        report: &mut Report,
        pattern: &Spanned<String>,
        key: &str,
    ) -> Option<String> {
        let text = pattern.get_ref();
        let span = pattern.span();
        // Lines are found in the source, where the pattern is written
        // verbatim between its quotes.
        let source = report.source.get(span.clone()).unwrap_or("");
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        let mut ok = true;
        // The k-th "{{" of the pattern is the k-th of its source text.
        let mut in_source = source.match_indices("{{").map(|(i, _)| i);
        while let Some(at) = rest.find("{{") {
            out.push_str(&rest[..at]);
            let place = span.start + in_source.next().unwrap_or(0)..span.end;
            let after = &rest[at + 2..];
            let name = after
                .split("}}")
                .next()
                .filter(|n| after.len() > n.len() && is_slug(n));
            let Some(name) = name else {
                let shown: String = after.chars().take(20).collect();
                report.at(
                    place,
                    key,
                    format!("`{{{{{shown}` must be a list reference such as `{{{{groups}}}}`; write a literal brace as `\\{{`"),
                );
                return None;
            };
            match self.0.get(name) {
                Some(terms) => {
                    let mut terms: Vec<&String> = terms.iter().collect();
                    terms.sort_by_key(|t| std::cmp::Reverse(t.len()));
                    out.push_str("(?:");
                    for (i, term) in terms.iter().enumerate() {
                        if i > 0 {
                            out.push('|');
                        }
                        out.push_str(&regex_syntax::escape(term).replace(' ', "\\x20"));
                    }
                    out.push(')');
                }
                None => {
                    report.at(place, key, format!("no list `{name}` in [lists]"));
                    ok = false;
                }
            }
            rest = &after[name.len() + 2..];
        }
        out.push_str(rest);
        ok.then_some(out)
    }
}

/// The folded phrases of a signal's optional condition (`needs`, `unless`):
/// none when it is left out, an error when it is written empty, which would
/// read as no condition at all.
fn condition_terms(
    report: &mut Report,
    lists: &Lists,
    list: &Option<Spanned<Vec<Spanned<String>>>>,
    key: &str,
    field: &str,
) -> Vec<String> {
    match list {
        Some(list) if list.get_ref().is_empty() => {
            report.at(
                list.span(),
                format!("{key}.{field}"),
                format!("`{field}` must list at least one phrase (leave it out for none)"),
            );
            Vec::new()
        }
        Some(list) => fold_terms(report, lists, list, &format!("{key}.{field}")),
        None => Vec::new(),
    }
}

/// Folds a list of phrases or terms the way text is folded, splicing in the
/// named lists it refers to with `"{{name}}"`. Repeated terms are kept once.
fn fold_terms(
    report: &mut Report,
    lists: &Lists,
    list: &Spanned<Vec<Spanned<String>>>,
    key: &str,
) -> Vec<String> {
    if list.get_ref().is_empty() {
        report.at(list.span(), key, "must list at least one phrase");
    }
    let mut out: Vec<String> = Vec::with_capacity(list.get_ref().len());
    let push = |out: &mut Vec<String>, term: String| {
        if !out.contains(&term) {
            out.push(term);
        }
    };
    for entry in list.get_ref() {
        let phrase = entry.get_ref();
        if let Some(name) = list_reference(phrase) {
            match lists.0.get(name) {
                Some(terms) => {
                    for term in terms {
                        push(&mut out, term.clone());
                    }
                }
                None => report.at(entry.span(), key, format!("no list `{name}` in [lists]")),
            }
            continue;
        }
        if phrase.contains("{{") {
            report.at(
                entry.span(),
                key,
                format!("{phrase:?}: a list reference must be a whole entry, such as \"{{{{groups}}}}\""),
            );
            continue;
        }
        let folded = normalize(phrase).text().to_string();
        if folded.is_empty() {
            report.at(
                entry.span(),
                key,
                format!("phrase {phrase:?} has no letters or digits"),
            );
        } else {
            push(&mut out, folded);
        }
    }
    out
}

fn validate_context(
    raw: RawContext,
    lists: &Lists,
    report: &mut Report,
    seen: &mut HashSet<String>,
    category_refs: &mut Vec<SignalCategoryRef>,
) -> Context {
    let dampening = check_unit(report, &raw.dampening, "context.dampening");
    let mut signals = Vec::new();
    for (i, s) in raw.signal.into_iter().enumerate() {
        let s = s.into_inner();
        let key = format!("context.signal[{i}]");
        if !seen.insert(s.id.get_ref().clone()) {
            report.at(
                s.id.span(),
                format!("{key}.id"),
                format!("duplicate detector id `{}`", s.id.get_ref()),
            );
        }
        let weight = check_unit(report, &s.weight, &format!("{key}.weight"));
        let phrases = fold_terms(report, lists, &s.phrases, &format!("{key}.phrases"));
        let denies_clause = s.denies_clause.as_ref().is_some_and(|d| *d.get_ref());
        if let (true, Some(d)) = (s.judges_quote && denies_clause, &s.denies_clause) {
            report.at(
                d.span(),
                format!("{key}.denies_clause"),
                "a signal either judges a quotation or denies a clause, not both",
            );
        }
        let attributions = match &s.attributions {
            Some(list) if !s.judges_quote => {
                report.at(
                    list.span(),
                    format!("{key}.attributions"),
                    "only a signal with `judges_quote = true` reads attributions",
                );
                Vec::new()
            }
            Some(list) => fold_terms(report, lists, list, &format!("{key}.attributions")),
            None => Vec::new(),
        };
        let needs = condition_terms(report, lists, &s.needs, &key, "needs");
        let unless = condition_terms(report, lists, &s.unless, &key, "unless");
        let mut categories = Vec::new();
        if let Some(list) = &s.categories {
            if list.get_ref().is_empty() {
                report.at(
                    list.span(),
                    format!("{key}.categories"),
                    "`categories` must name at least one category (leave it out for all)",
                );
            }
            for c in list.get_ref() {
                category_refs.push(SignalCategoryRef {
                    id: c.get_ref().clone(),
                    file: report.file.to_path_buf(),
                    line: line_of(report.source, c.span().start),
                    key: format!("{key}.categories"),
                });
                categories.push(c.get_ref().clone());
            }
        }
        signals.push(ContextSignal {
            id: s.id.into_inner(),
            weight,
            phrases,
            judges_quote: s.judges_quote,
            denies_clause,
            attributions,
            needs,
            reads_evidence: s.reads_evidence,
            categories,
            unless,
        });
    }
    Context { dampening, signals }
}

fn validate_category(
    raw: RawCategory,
    span: std::ops::Range<usize>,
    key: &str,
    refs: &Refs,
    report: &mut Report,
    seen: &mut HashSet<String>,
    model_files: &mut BTreeSet<String>,
) -> Option<Category> {
    let before = report.errors.len();
    let id = raw.id.get_ref();
    if !is_slug(id) {
        report.at(
            raw.id.span(),
            format!("{key}.id"),
            "must be lowercase letters, digits and '-'",
        );
    }
    let flag_threshold = check_unit(
        report,
        &raw.flag_threshold,
        &format!("{key}.flag_threshold"),
    );
    if raw.aup.trim().is_empty() {
        report.at(
            span.clone(),
            format!("{key}.aup"),
            "the AUP text a tenant is shown must not be empty",
        );
    }
    if raw.detector.is_empty() {
        report.at(
            span.clone(),
            format!("{key}.detector"),
            "a category needs at least one [[category.detector]]",
        );
    }
    let case = match raw.case {
        Some(c) => {
            let tol = *c.tolerance.get_ref();
            if !(0.0..=1.0).contains(&tol) {
                report.at(
                    c.tolerance.span(),
                    format!("{key}.case.tolerance"),
                    format!("must be between 0 and 1, got {tol}"),
                );
            }
            let critical = c
                .critical_score
                .as_ref()
                .map(|s| check_unit(report, s, &format!("{key}.case.critical_score")));
            let estimate = match c
                .estimate
                .as_ref()
                .map(|e| (e.get_ref().as_str(), e.span()))
            {
                None | Some(("model", _)) => Estimate::Model,
                Some(("labelled", _)) => Estimate::Labelled,
                Some(("corrected", _)) => Estimate::Corrected,
                Some((other, span)) => {
                    report.at(
                        span,
                        format!("{key}.case.estimate"),
                        format!("is {other:?}: use \"model\", \"labelled\" or \"corrected\""),
                    );
                    Estimate::Model
                }
            };
            CaseRule {
                tolerance: tol,
                critical_score: critical,
                min_samples: c.min_samples,
                estimate,
            }
        }
        None => CaseRule {
            tolerance: 0.01,
            critical_score: None,
            min_samples: default_min_samples(),
            estimate: Estimate::Model,
        },
    };
    let gates = check_requires(&raw.detector, key, report);
    let mut detectors = Vec::new();
    for (j, d) in raw.detector.into_iter().enumerate() {
        let dspan = d.span();
        let d = d.into_inner();
        let dkey = format!("{key}.detector[{j}]");
        if !seen.insert(d.id.get_ref().clone()) {
            report.at(
                d.id.span(),
                format!("{dkey}.id"),
                format!("duplicate detector id `{}`", d.id.get_ref()),
            );
        }
        if *d.weight.get_ref() == 0.0 && !gates.contains(d.id.get_ref()) {
            report.at(
                d.weight.span(),
                format!("{dkey}.weight"),
                "a detector of weight 0 adds nothing unless another detector `requires` it",
            );
        }
        if let Some(det) = validate_detector(d, dspan, &dkey, refs, report, model_files) {
            detectors.push(det);
        }
    }
    if report.errors.len() > before {
        return None;
    }
    Some(Category {
        id: raw.id.into_inner(),
        title: raw.title,
        aup: raw.aup.trim().to_string(),
        severity: raw.severity,
        flag_threshold,
        context_sensitive: raw.context_sensitive,
        case,
        detectors,
    })
}

/// Checks every detector's `requires` against the category's detectors and
/// returns the ids that some detector requires. A required detector must be
/// another detector of the same category that finds spans (phrases, regex,
/// proximity), and must not itself require anything, so a gate is one step.
fn check_requires(
    detectors: &[Spanned<RawDetector>],
    key: &str,
    report: &mut Report,
) -> HashSet<String> {
    let mut gates = HashSet::new();
    for (j, d) in detectors.iter().enumerate() {
        let d = d.get_ref();
        let Some(requires) = &d.requires else {
            continue;
        };
        let rkey = format!("{key}.detector[{j}].requires");
        if requires.get_ref().is_empty() {
            report.at(requires.span(), &rkey, "must name at least one detector");
        }
        for id in requires.get_ref() {
            let target = detectors
                .iter()
                .map(|t| t.get_ref())
                .find(|t| t.id.get_ref() == id);
            let problem = match target {
                None => Some(format!("no detector `{id}` in this category")),
                Some(t) if t.id.get_ref() == d.id.get_ref() => {
                    Some(format!("`{id}` cannot require itself"))
                }
                Some(t) if *t.kind.get_ref() == RawKind::Classifier => Some(format!(
                    "`{id}` is a classifier; only a detector that finds spans (phrases, regex, proximity) can be required"
                )),
                Some(t) if t.requires.is_some() => Some(format!(
                    "`{id}` requires other detectors itself; a gate must be one step"
                )),
                Some(_) => None,
            };
            match problem {
                Some(msg) => report.at(requires.span(), &rkey, msg),
                None => {
                    gates.insert(id.clone());
                }
            }
        }
    }
    gates
}

fn validate_detector(
    d: RawDetector,
    span: std::ops::Range<usize>,
    key: &str,
    refs: &Refs,
    report: &mut Report,
    model_files: &mut BTreeSet<String>,
) -> Option<Detector> {
    let weight = check_unit(report, &d.weight, &format!("{key}.weight"));
    let kind = *d.kind.get_ref();
    // Each kind takes its own keys and no others.
    let present: [(&str, bool, &[RawKind]); 8] = [
        ("phrases", d.phrases.is_some(), &[RawKind::Phrases]),
        ("pattern", d.pattern.is_some(), &[RawKind::Regex]),
        ("first", d.first.is_some(), &[RawKind::Proximity]),
        ("second", d.second.is_some(), &[RawKind::Proximity]),
        ("within", d.within.is_some(), &[RawKind::Proximity]),
        ("ordered", d.ordered.is_some(), &[RawKind::Proximity]),
        ("model", d.model.is_some(), &[RawKind::Classifier]),
        ("midpoint", d.midpoint.is_some(), &[RawKind::Classifier]),
    ];
    for (name, is_present, kinds) in present {
        if is_present && !kinds.contains(&kind) {
            report.at(
                span.clone(),
                format!("{key}.{name}"),
                format!(
                    "`{name}` does not belong to a detector of kind `{}`",
                    kind_name(kind)
                ),
            );
        }
    }
    let missing = |report: &mut Report, name: &str| {
        report.at(
            span.clone(),
            format!("{key}.{name}"),
            format!("a `{}` detector needs `{name}`", kind_name(kind)),
        );
    };
    let kind = match kind {
        RawKind::Phrases => match &d.phrases {
            Some(p) => {
                DetectorKind::Phrases(fold_terms(report, refs.lists, p, &format!("{key}.phrases")))
            }
            None => {
                missing(report, "phrases");
                return None;
            }
        },
        RawKind::Regex => match &d.pattern {
            Some(p) => match refs
                .lists
                .expand_pattern(report, p, &format!("{key}.pattern"))
                .map(|expanded| regex::Regex::new(&expanded))
            {
                None => return None,
                Some(Ok(re)) => DetectorKind::Regex(re),
                Some(Err(e)) => {
                    report.at(
                        p.span(),
                        format!("{key}.pattern"),
                        format!("invalid regular expression: {e}"),
                    );
                    return None;
                }
            },
            None => {
                missing(report, "pattern");
                return None;
            }
        },
        RawKind::Proximity => {
            let (Some(first), Some(second), Some(within)) = (&d.first, &d.second, &d.within) else {
                for (name, ok) in [
                    ("first", d.first.is_some()),
                    ("second", d.second.is_some()),
                    ("within", d.within.is_some()),
                ] {
                    if !ok {
                        missing(report, name);
                    }
                }
                return None;
            };
            let n = *within.get_ref();
            if n == 0 || n > 50 {
                report.at(
                    within.span(),
                    format!("{key}.within"),
                    format!("must be between 1 and 50 words, got {n}"),
                );
            }
            DetectorKind::Proximity {
                first: fold_terms(report, refs.lists, first, &format!("{key}.first")),
                second: fold_terms(report, refs.lists, second, &format!("{key}.second")),
                within: n,
                ordered: d.ordered.as_ref().is_some_and(|o| *o.get_ref()),
            }
        }
        RawKind::Classifier => {
            let Some(model) = &d.model else {
                missing(report, "model");
                return None;
            };
            let rel = PathBuf::from(model.get_ref());
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                report.at(
                    model.span(),
                    format!("{key}.model"),
                    "must be a path inside the policy directory",
                );
                return None;
            }
            let midpoint = match &d.midpoint {
                Some(m) => {
                    let v = *m.get_ref();
                    if !(v > 0.0 && v < 1.0) {
                        report.at(
                            m.span(),
                            format!("{key}.midpoint"),
                            format!("must be strictly between 0 and 1, got {v}"),
                        );
                    }
                    v
                }
                None => 0.5,
            };
            match LinearModel::load(&refs.dir.join(&rel)) {
                Ok(m) => {
                    model_files.insert(model.get_ref().clone());
                    DetectorKind::Classifier {
                        path: rel,
                        model: Arc::new(m),
                        midpoint,
                    }
                }
                Err(e) => {
                    report.at(
                        model.span(),
                        format!("{key}.model"),
                        format!("cannot load model: {e}"),
                    );
                    return None;
                }
            }
        }
    };
    Some(Detector {
        id: d.id.into_inner(),
        weight,
        kind,
        requires: d.requires.map(|r| r.into_inner()).unwrap_or_default(),
    })
}

fn kind_name(kind: RawKind) -> &'static str {
    match kind {
        RawKind::Phrases => "phrases",
        RawKind::Regex => "regex",
        RawKind::Proximity => "proximity",
        RawKind::Classifier => "classifier",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 1-based number of the first line of `text` that holds `needle`.
    pub(super) fn line_containing(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    fn load_one(toml: &str) -> Result<Policy, PolicyErrors> {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("p.toml"), toml).expect("write policy");
        load_dir(dir.path())
    }

    #[test]
    fn a_case_rule_names_the_estimate_it_rests_on_or_gets_a_located_error() {
        let with = |estimate: &str| {
            SPAM.replace(
                "flag_threshold = 0.5\n",
                &format!("flag_threshold = 0.5\n\n[category.case]\ntolerance = 0.1\n{estimate}\n"),
            )
        };
        let plain = load_one(&with("")).unwrap();
        assert_eq!(plain.categories[0].case.estimate, Estimate::Model);
        let labelled = load_one(&with("estimate = \"labelled\"")).unwrap();
        assert_eq!(labelled.categories[0].case.estimate, Estimate::Labelled);
        assert!(labelled.categories[0].case.estimate.needs_labels());
        let corrected = load_one(&with("estimate = \"corrected\"")).unwrap();
        assert_eq!(corrected.categories[0].case.estimate, Estimate::Corrected);
        let errors = load_one(&with("estimate = \"vibes\"")).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 13);
        assert_eq!(errors[0].key, "category[0].case.estimate");
        assert_eq!(
            errors[0].message,
            "is \"vibes\": use \"model\", \"labelled\" or \"corrected\""
        );
    }

    /// The `SPAM` policy with one context signal: its id and phrase, then
    /// `fields` (more of its keys, one per line).
    fn with_signal(id: &str, phrase: &str, fields: &str) -> String {
        format!(
            "{SPAM}\n[context]\ndampening = 0.8\n\n[[context.signal]]\nid = \"{id}\"\nweight = 0.8\nphrases = [\"{phrase}\"]\n{fields}\n"
        )
    }

    #[test]
    fn a_signal_may_judge_a_quotation_or_deny_a_clause_but_not_both() {
        let with = |fields: &str| with_signal("c.d", "false that", fields);
        let denies = load_one(&with("denies_clause = true")).unwrap();
        let signal = &denies.context.signals[0];
        assert!(signal.denies_clause && !signal.judges_quote);
        let plain = load_one(&with("")).unwrap();
        assert!(!plain.context.signals[0].denies_clause);
        let both = with("judges_quote = true\ndenies_clause = true");
        let errors = load_one(&both).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, line_containing(&both, "denies_clause ="));
        assert_eq!(errors[0].key, "context.signal[0].denies_clause");
        assert_eq!(
            errors[0].message,
            "a signal either judges a quotation or denies a clause, not both"
        );
        let yes = with("denies_clause = \"yes\"");
        let errors = load_one(&yes).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, line_containing(&yes, "denies_clause ="));
    }

    #[test]
    fn a_signals_categories_and_unless_are_checked_with_file_and_line() {
        let sensitive = |fields: &str| {
            with_signal("c.u", "lawyers", fields).replace(
                "flag_threshold = 0.5\n",
                "flag_threshold = 0.5\ncontext_sensitive = true\n",
            )
        };
        let kept = load_one(&sensitive("categories = [\"spam\"]\nunless = [\"JEWS\"]")).unwrap();
        assert_eq!(kept.context.signals[0].categories, ["spam"]);
        assert_eq!(kept.context.signals[0].unless, ["jews"]);
        let plain = load_one(&with_signal("c.u", "lawyers", "")).unwrap();
        assert!(plain.context.signals[0].categories.is_empty());
        assert!(plain.context.signals[0].unless.is_empty());
        for (fields, key, message) in [
            (
                "categories = [\"nope\"]",
                "context.signal[0].categories",
                "unknown category `nope`",
            ),
            (
                "categories = []",
                "context.signal[0].categories",
                "`categories` must name at least one category (leave it out for all)",
            ),
            (
                "unless = []",
                "context.signal[0].unless",
                "`unless` must list at least one phrase (leave it out for none)",
            ),
        ] {
            let toml = sensitive(fields);
            let errors = load_one(&toml).unwrap_err().0;
            assert_eq!(errors.len(), 1, "{fields}: {errors:?}");
            assert_eq!(
                errors[0].line,
                line_containing(&toml, fields.split(' ').next().unwrap())
            );
            assert_eq!(errors[0].key, key);
            assert_eq!(errors[0].message, message);
        }
        // A category no signal may lower.
        let toml = with_signal("c.u", "lawyers", "categories = [\"spam\"]");
        let errors = load_one(&toml).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, line_containing(&toml, "categories ="));
        assert_eq!(
            errors[0].message,
            "category `spam` is not context-sensitive: no signal lowers it"
        );
    }

    #[test]
    fn attributions_are_read_only_by_a_signal_that_judges_a_quotation() {
        let with = |fields: &str| with_signal("c.j", "wrong", fields);
        let judged = load_one(&with(
            "judges_quote = true\nattributions = [\"People who SAY\"]",
        ))
        .unwrap();
        assert_eq!(judged.context.signals[0].attributions, ["people who say"]);
        let plain = with("attributions = [\"people who say\"]");
        let errors = load_one(&plain).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, line_containing(&plain, "attributions ="));
        assert_eq!(errors[0].key, "context.signal[0].attributions");
        assert_eq!(
            errors[0].message,
            "only a signal with `judges_quote = true` reads attributions"
        );
    }

    #[test]
    fn a_signal_needs_at_least_one_phrase_when_it_names_any() {
        let with = |fields: &str| with_signal("c.n", "shameful", fields);
        let needs = load_one(&with("needs = [\"He CALLED\", \"said\"]")).unwrap();
        // Folded like every phrase: lower case, one letter per run.
        assert_eq!(needs.context.signals[0].needs, ["he caled", "said"]);
        let plain = load_one(&with("")).unwrap();
        assert!(plain.context.signals[0].needs.is_empty());
        let empty = with("needs = []");
        let errors = load_one(&empty).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, line_containing(&empty, "needs ="));
        assert_eq!(errors[0].key, "context.signal[0].needs");
        assert_eq!(
            errors[0].message,
            "`needs` must list at least one phrase (leave it out for none)"
        );
    }

    const SPAM: &str = r#"[lists]
offers = ["free money", "cheap pills", "pills"]

[[category]]
id = "spam"
title = "Spam"
aup = "No spam."
severity = "low"
flag_threshold = 0.5

[[category.detector]]
id = "spam.offers"
kind = "phrases"
weight = 0.6
phrases = ["{{offers}}", "FREE MONEY", "click here"]

[[category.detector]]
id = "spam.buy"
kind = "regex"
weight = 0.6
pattern = 'buy {{offers}}\b'
"#;

    #[test]
    fn list_terms_are_folded_spliced_in_once_and_escaped_longest_first() {
        let policy = load_one(SPAM).expect("valid policy");
        let detectors = &policy.categories[0].detectors;
        let DetectorKind::Phrases(phrases) = &detectors[0].kind else {
            panic!("phrases detector expected");
        };
        // "FREE MONEY" folds to a term the list already gave.
        assert_eq!(phrases, &["fre money", "cheap pils", "pils", "click here"]);
        let DetectorKind::Regex(re) = &detectors[1].kind else {
            panic!("regex detector expected");
        };
        assert_eq!(re.as_str(), r"buy (?:cheap\x20pils|fre\x20money|pils)\b");
    }

    #[test]
    fn a_list_reference_must_be_a_whole_entry_of_a_term_list() {
        let errors =
            load_one(&SPAM.replace(r#""{{offers}}", "FREE"#, r#""see {{offers}} here", "FREE"#))
                .expect_err("a reference inside a phrase is refused");
        assert_eq!(errors.0.len(), 1, "{errors}");
        assert_eq!(errors.0[0].line, 15);
        assert_eq!(errors.0[0].key, "category[0].detector[0].phrases");
        assert!(
            errors.0[0]
                .message
                .contains("a list reference must be a whole entry"),
            "{errors}"
        );
    }
}

#[cfg(test)]
mod versioned_files_tests {
    //! The ladders and the model sidecars are part of the policy: loaded,
    //! validated and hashed into its version with the category files.
    use super::tests::line_containing;
    use super::*;
    use crate::policy::copy_dir;

    /// A private copy of the shipped policy directory.
    fn shipped_copy() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        copy_dir(&crate::policy::shipped_dir(), &policies);
        (dir, policies)
    }

    fn edit(path: &Path, from: &str, to: &str) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        let edited = text.replacen(from, to, 1);
        assert_ne!(edited, text, "{from:?} is not in {}", path.display());
        std::fs::write(path, &edited).unwrap();
        edited
    }

    #[test]
    fn the_policy_carries_the_ladders_file_and_its_version_covers_it() {
        let (_d, dir) = shipped_copy();
        let before = load_dir(&dir).unwrap();
        assert_eq!(
            before.ladders.critical.cure_window,
            jiff::SignedDuration::from_hours(1)
        );
        edit(
            &dir.join("escalation/ladders.toml"),
            "cure_window = \"1h\"",
            "cure_window = \"2h\"",
        );
        let after = load_dir(&dir).unwrap();
        assert_eq!(
            after.ladders.critical.cure_window,
            jiff::SignedDuration::from_hours(2)
        );
        assert_ne!(after.version, before.version);
    }

    #[test]
    fn broken_ladders_are_refused_with_their_file_line_and_key() {
        let cases = [
            (
                "cure_window = \"1h\"",
                "cure_window = \"0s\"",
                "cure_window = \"0s\"",
                "critical.cure_window",
                "\"0s\" is not a duration: write a positive whole number and a unit, like \"90s\", \"30m\", \"24h\" or \"7d\"",
            ),
            (
                "cure_window = \"24h\"",
                "cure_window = \"24\"",
                "cure_window = \"24\"",
                "high.cure_window",
                "\"24\" is not a duration: write a positive whole number and a unit, like \"90s\", \"30m\", \"24h\" or \"7d\"",
            ),
            (
                "[medium]",
                "[moderate]",
                "[moderate]",
                "",
                "unknown field `moderate`, expected one of `receipt_timeout`, `critical`, `high`, `medium`, `low`",
            ),
        ];
        for (from, to, at, key, message) in cases {
            let (_d, dir) = shipped_copy();
            let path = dir.join("escalation/ladders.toml");
            let text = edit(&path, from, to);
            let errors = load_dir(&dir).unwrap_err().0;
            assert_eq!(
                errors,
                vec![PolicyError {
                    file: path.clone(),
                    line: line_containing(&text, at),
                    key: key.into(),
                    message: message.into(),
                }],
                "{to}"
            );
        }
    }

    #[test]
    fn a_category_resting_on_labels_may_not_use_a_ladder_that_orders_without_approvals() {
        let (_d, dir) = shipped_copy();
        let ladders = dir.join("escalation/ladders.toml");
        let text = edit(
            &ladders,
            "on_miss = \"propose_suspension\"\napprovals = 2\n",
            "on_miss = \"propose_suspension\"\napprovals = 0\n",
        );
        // With every rule on the model's count, ordering at once is allowed.
        load_dir(&dir).unwrap();
        edit(
            &dir.join("default.toml"),
            "[category.case]\ntolerance = 0.005\ncritical_score = 0.85\n",
            "[category.case]\nestimate = \"labelled\"\ntolerance = 0.005\ncritical_score = 0.85\n",
        );
        let errors = load_dir(&dir).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].file, ladders);
        assert_eq!(errors[0].key, "critical.approvals");
        assert_eq!(errors[0].line, line_containing(&text, "approvals = 0"));
        assert!(
            errors[0].message.contains("\"violent-incitement\""),
            "{errors:?}"
        );
    }

    #[test]
    fn a_ladders_file_missing_a_severity_is_refused_with_its_file_and_line() {
        let (_d, dir) = shipped_copy();
        let path = dir.join("escalation/ladders.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text.find("[medium]").unwrap();
        let end = text.find("[low]").unwrap();
        std::fs::write(&path, format!("{}{}", &text[..start], &text[end..])).unwrap();
        let errors = load_dir(&dir).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].file, path);
        assert!(errors[0].line >= 1, "{errors:?}");
        assert_eq!(errors[0].key, "medium");
        assert_eq!(
            errors[0].message,
            "missing table [medium]: the file needs one table per severity (critical, high, medium, low)"
        );
    }

    #[test]
    fn the_version_covers_the_model_sidecars() {
        let (_d, dir) = shipped_copy();
        let before = load_dir(&dir).unwrap().version;
        edit(
            &dir.join("models/violence.json"),
            "\"aupd_version\": \"0.1.0\"",
            "\"aupd_version\": \"0.1.1\"",
        );
        assert_ne!(load_dir(&dir).unwrap().version, before);
    }

    #[test]
    fn a_sidecar_that_does_not_describe_its_model_is_refused_with_file_and_line() {
        let (_d, dir) = shipped_copy();
        let sidecar = dir.join("models/violence.json");
        // The shipped sidecar's hash, whatever model ships (retraining
        // changes it).
        let recorded: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
        let sha = recorded["model_sha256"].as_str().unwrap().to_string();
        assert_eq!(sha.len(), 64);
        let text = edit(&sidecar, &sha, &"0".repeat(64));
        let errors = load_dir(&dir).unwrap_err().0;
        assert_eq!(
            errors,
            vec![PolicyError {
                file: sidecar.clone(),
                line: line_containing(&text, "\"model_sha256\""),
                key: "model_sha256".into(),
                message: format!("does not match models/violence.model, whose SHA-256 is {sha}"),
            }]
        );

        std::fs::write(&sidecar, "{\n  \"model_sha256\": \n").unwrap();
        let errors = load_dir(&dir).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].file, sidecar);
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].message.starts_with("not JSON: "), "{errors:?}");
    }
}
