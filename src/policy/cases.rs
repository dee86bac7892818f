//! Policy test cases (`policies/tests/*.toml`): texts with the categories
//! that must and must not flag. `aupd policy test` runs them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::engine::Engine;
use super::load::PolicyError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    case: Vec<Spanned<RawCase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    text: String,
    #[serde(default)]
    must_flag: Vec<String>,
    #[serde(default)]
    must_not_flag: Vec<String>,
    /// Must flag nothing at all.
    #[serde(default)]
    clean: bool,
    #[serde(default)]
    #[allow(dead_code)]
    note: String,
}

/// One test case, with where it was written.
#[derive(Debug, Clone)]
pub struct Case {
    /// File it came from.
    pub file: PathBuf,
    /// Line of its `[[case]]`.
    pub line: usize,
    /// The text to score.
    pub text: String,
    /// Categories that must flag.
    pub must_flag: Vec<String>,
    /// Categories that must not flag.
    pub must_not_flag: Vec<String>,
    /// Whether nothing at all may flag.
    pub clean: bool,
}

/// A case the policy decided wrongly.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The case.
    pub case: Case,
    /// What went wrong, in words.
    pub problems: Vec<String>,
}

/// Reads every `*.toml` in `dir`, checking category names against `engine`.
pub fn load_cases(dir: &Path, engine: &Engine) -> Result<Vec<Case>, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let mut cases = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) => {
            return Err(vec![PolicyError {
                file: dir.to_path_buf(),
                line: 0,
                key: String::new(),
                message: format!("cannot read test directory: {e}"),
            }])
        }
    };
    files.sort();
    let known: Vec<&str> = engine
        .policy()
        .categories
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    for file in files {
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                errors.push(PolicyError {
                    file,
                    line: 0,
                    key: String::new(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let line_of = |offset: usize| source[..offset.min(source.len())].matches('\n').count() + 1;
        let parsed: CaseFile = match toml::from_str(&source) {
            Ok(p) => p,
            Err(e) => {
                errors.push(PolicyError {
                    file: file.clone(),
                    line: e.span().map_or(0, |s| line_of(s.start)),
                    key: String::new(),
                    message: e.message().to_string(),
                });
                continue;
            }
        };
        for (i, raw) in parsed.case.into_iter().enumerate() {
            let line = line_of(raw.span().start);
            let raw = raw.into_inner();
            for id in raw.must_flag.iter().chain(&raw.must_not_flag) {
                if !known.contains(&id.as_str()) {
                    errors.push(PolicyError {
                        file: file.clone(),
                        line,
                        key: format!("case[{i}]"),
                        message: format!("unknown category `{id}`"),
                    });
                }
            }
            if raw.must_flag.is_empty() && raw.must_not_flag.is_empty() && !raw.clean {
                errors.push(PolicyError {
                    file: file.clone(),
                    line,
                    key: format!("case[{i}]"),
                    message: "a case needs `must_flag`, `must_not_flag` or `clean = true`".into(),
                });
            }
            cases.push(Case {
                file: file.clone(),
                line,
                text: raw.text,
                must_flag: raw.must_flag,
                must_not_flag: raw.must_not_flag,
                clean: raw.clean,
            });
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// Scores every case and returns those decided wrongly.
pub fn run_cases(engine: &Engine, cases: &[Case]) -> Vec<Failure> {
    let mut failures = Vec::new();
    for case in cases {
        let verdict = engine.score(&case.text);
        let mut problems = Vec::new();
        for id in &case.must_flag {
            if !verdict.is_flagged(id) {
                let score = verdict.scores.get(id.as_str()).copied().unwrap_or(0.0);
                problems.push(format!("`{id}` did not flag (score {score:.3})"));
            }
        }
        for id in &case.must_not_flag {
            if verdict.is_flagged(id) {
                let score = verdict.scores.get(id.as_str()).copied().unwrap_or(0.0);
                problems.push(format!("`{id}` flagged (score {score:.3})"));
            }
        }
        if case.clean {
            for f in &verdict.flagged {
                if !case.must_flag.iter().any(|c| **c == *f.category) {
                    problems.push(format!(
                        "`{}` flagged (score {:.3}) on a clean case",
                        f.category, f.score
                    ));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(Failure {
                case: case.clone(),
                problems,
            });
        }
    }
    failures
}
