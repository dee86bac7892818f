//! `aupd policy eval`: how the whole policy — every detector of a category,
//! combined and context-adjusted exactly as in production — agrees with a
//! labelled file, on the shared deterministic split or by cross-validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::dataset::{fold_of, read_source, Part, Row, Source};
use super::embeddings::Embeddings;
use super::load::{DetectorKind, Policy};
use super::metrics::{average_precision, flag_rates, reliability, reliability_lines, Confusion};
use super::normalize::normalize;
use super::train::{class_weights, parse_part, read_sidecar, train, Example, TrainParams};
use super::Engine;

/// `aupd policy eval`: per-category figures against a labelled CSV file.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyEvalArgs {
    /// Labelled CSV file (`,` or `;` separated).
    #[arg(long, required_unless_present = "labels")]
    pub data: Option<PathBuf>,
    /// Column holding the text.
    #[arg(long, required_unless_present = "labels")]
    pub text: Option<String>,
    /// Which rows are positive, e.g. `class=0`, `isHate>=0.5`, `label=hate`.
    #[arg(long, required_unless_present = "labels")]
    pub label: Option<String>,
    /// Reviewers' labels instead of `--data` (`aupd review export` output):
    /// per category, the policy's decisions on the reviewed items of
    /// `--part` (`test`: the held-out fifth of the items) against the
    /// reviewers' answers, before and after `--after`.
    #[arg(long, conflicts_with_all = ["data", "cv"])]
    pub labels: Option<PathBuf>,
    /// With `--labels`: the model a detector of the policy names (its
    /// `model` path, e.g. `models/harassment.model`) replaced by another
    /// file, flagging at that file's sidecar threshold; repeatable.
    #[arg(long, value_name = "POLICY_MODEL=FILE", value_parser = parse_swap, requires = "labels")]
    pub after: Vec<(PathBuf, PathBuf)>,
    /// Rows to leave out, e.g. `label=relation|idk/skip`; repeatable.
    #[arg(long)]
    pub skip: Vec<String>,
    /// Column whose values get their own flag rate (e.g. Davidson's `class`).
    #[arg(long)]
    pub group: Option<String>,
    /// Categories to report (default: all).
    #[arg(long)]
    pub category: Vec<String>,
    /// Rows: `test` (the held-out 20%: row number divisible by 5), `train` or `all`.
    #[arg(long, default_value = "test", value_parser = parse_part)]
    pub part: Part,
    /// K-fold cross-validation over all rows: each category's classifiers are
    /// retrained on the other folds with the parameters in their sidecars.
    #[arg(long)]
    pub cv: Option<usize>,
    /// Policy directory (default: the configured one).
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

/// Figures of one category.
#[derive(Debug, Clone)]
pub struct CategoryFigures {
    /// Category id.
    pub category: String,
    /// Its flag threshold.
    pub threshold: f32,
    /// Decisions against the labels.
    pub confusion: Confusion,
    /// Area under the precision-recall curve of its scores.
    pub pr_auc: f64,
    /// Flag rate per value of the group column.
    pub groups: Vec<(String, u64, u64)>,
}

/// `POLICY_MODEL=FILE`.
pub fn parse_swap(s: &str) -> Result<(PathBuf, PathBuf), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
            Ok((PathBuf::from(a.trim()), PathBuf::from(b.trim())))
        }
        _ => Err(format!("expected POLICY_MODEL=FILE, got {s:?}")),
    }
}

/// Runs the evaluation and prints a table.
pub fn run_policy_eval(args: &PolicyEvalArgs, default_dir: &Path) -> anyhow::Result<()> {
    let dir = args.policy.as_deref().unwrap_or(default_dir);
    if let Some(labels) = &args.labels {
        return run_labels_eval(args, labels, dir);
    }
    let (Some(data), Some(text), Some(label)) = (&args.data, &args.text, &args.label) else {
        anyhow::bail!("--data, --text and --label are needed (or --labels)");
    };
    if !data.exists() {
        println!(
            "skipped: {} is not here (evaluation reads ../shared/data)",
            data.display()
        );
        return Ok(());
    }
    let policy = super::load_dir(dir)?;
    let mut spec = format!("{},text={},label={}", data.display(), text, label);
    for s in &args.skip {
        spec.push_str(&format!(",skip={s}"));
    }
    if let Some(g) = &args.group {
        spec.push_str(&format!(",group={g}"));
    }
    let source: Source = spec.parse().context("reading the data options")?;
    let loaded = read_source(&source)?;
    let categories: Vec<String> = if args.category.is_empty() {
        policy.categories.iter().map(|c| c.id.clone()).collect()
    } else {
        for c in &args.category {
            anyhow::ensure!(
                policy.categories.iter().any(|k| &k.id == c),
                "the policy has no category `{c}`"
            );
        }
        args.category.clone()
    };

    let (rows, scores): (Vec<&Row>, Vec<Vec<f32>>) = match args.cv {
        Some(k) => {
            anyhow::ensure!(k >= 2, "--cv needs at least 2 folds");
            let rows: Vec<&Row> = loaded.rows.iter().collect();
            let scores = cross_validated_scores(&policy, dir, data, &rows, &categories, k)?;
            (rows, scores)
        }
        None => {
            let rows: Vec<&Row> = loaded
                .rows
                .iter()
                .filter(|r| args.part.contains(r.number))
                .collect();
            let engine = Engine::compile(policy.clone())?;
            let scores = score_rows(&engine, &rows, &categories);
            (rows, scores)
        }
    };
    let labels: Vec<bool> = rows.iter().map(|r| r.label).collect();
    let positives = labels.iter().filter(|&&l| l).count();
    let how = match args.cv {
        Some(k) => format!("{k}-fold cross-validation over all {} rows", rows.len()),
        None => match args.part {
            Part::Test => format!(
                "held-out part (row number divisible by 5): {} rows",
                rows.len()
            ),
            Part::Train => format!("training part: {} rows", rows.len()),
            Part::All => format!("all {} rows", rows.len()),
        },
    };
    println!(
        "data: {} — {how}, {positives} positive for `{label}`",
        data.display()
    );
    println!(
        "policy: {} version {}",
        dir.display(),
        &policy.version[..16]
    );
    println!(
        "{:<20} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "category", "thr", "P", "R", "F1", "PR-AUC", "TP", "FP", "FN", "TN"
    );
    for (c, id) in categories.iter().enumerate() {
        let threshold = policy
            .categories
            .iter()
            .find(|k| &k.id == id)
            .map_or(0.5, |k| k.flag_threshold);
        let s = &scores[c];
        let flags: Vec<f32> = s
            .iter()
            .map(|&x| if x > 0.0 && x >= threshold { 1.0 } else { 0.0 })
            .collect();
        let conf = Confusion::at(&flags, &labels, 0.5);
        let pr_auc = average_precision(s, &labels);
        println!(
            "{:<20} {:>5.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6} {:>6} {:>6} {:>6}",
            id,
            threshold,
            conf.precision(),
            conf.recall(),
            conf.f1(),
            pr_auc,
            conf.tp,
            conf.fp,
            conf.r#fn,
            conf.tn
        );
        let (best_t, best_f1) = oracle_f1(s, &labels);
        println!(
            "{:<20} (for reference only: the best F1 any threshold could reach on these rows is {best_f1:.3}, at score {best_t:.3})",
            ""
        );
        println!(
            "{:<20} reliability, score band against the share positive:",
            ""
        );
        for line in reliability_lines(&reliability(s, &labels)) {
            println!("{:<22}{line}", "");
        }
        if args.group.is_some() {
            let groups: Vec<&str> = rows
                .iter()
                .map(|r| r.group.as_deref().unwrap_or(""))
                .collect();
            let rates = flag_rates(&flags, groups, 0.5);
            let parts: Vec<String> = rates
                .iter()
                .map(|(g, f)| format!("{g}: {}/{} = {:.2}%", f.flagged, f.total, 100.0 * f.rate()))
                .collect();
            println!(
                "{:<20} flagged by {}: {}",
                "",
                args.group.as_deref().unwrap_or(""),
                parts.join(", ")
            );
        }
    }
    Ok(())
}

/// The policy with the models of `swaps` replaced: each names a detector's
/// model path as the policy writes it, and the file to use instead, which
/// flags at its sidecar's threshold (else the detector's own midpoint).
pub fn swap_models(policy: &Policy, swaps: &[(PathBuf, PathBuf)]) -> anyhow::Result<Policy> {
    let mut out = policy.clone();
    for (named, file) in swaps {
        let mut found = false;
        for det in out
            .categories
            .iter_mut()
            .flat_map(|c| c.detectors.iter_mut())
        {
            if let DetectorKind::Classifier {
                path,
                model,
                midpoint,
            } = &mut det.kind
            {
                if path != named {
                    continue;
                }
                let m = super::model::LinearModel::load(file)
                    .with_context(|| format!("loading the model {}", file.display()))?;
                *model = Arc::new(m);
                if let Some(t) = super::train::sidecar_threshold(file)? {
                    *midpoint = t.clamp(1e-4, 1.0 - 1e-4);
                }
                found = true;
            }
        }
        anyhow::ensure!(
            found,
            "--after {}: no detector of the policy uses that model path",
            named.display()
        );
    }
    Ok(out)
}

/// Figures of one category on reviewed items, before and after.
struct LabelFigures {
    category: String,
    reviewed: usize,
    violating: usize,
    unsure: usize,
    before: Confusion,
    after: Option<Confusion>,
}

/// `policy eval --labels`: the policy's decisions on reviewed items against
/// the reviewers' answers, per category, before and after `--after`.
fn run_labels_eval(args: &PolicyEvalArgs, labels: &Path, dir: &Path) -> anyhow::Result<()> {
    let file = super::labels::read_labels(labels)?;
    let policy = super::load_dir(dir)?;
    let categories: Vec<String> = if args.category.is_empty() {
        file.categories().into_iter().collect()
    } else {
        args.category.clone()
    };
    for c in &categories {
        anyhow::ensure!(
            policy.categories.iter().any(|k| &k.id == c),
            "{}: the policy has no category `{c}`",
            labels.display()
        );
    }
    let before = Engine::compile(policy.clone())?;
    let after = if args.after.is_empty() {
        None
    } else {
        Some(Engine::compile(swap_models(&policy, &args.after)?)?)
    };
    let mut figures = Vec::new();
    for c in &categories {
        let rows: Vec<&super::labels::LabelRow> = file
            .rows
            .iter()
            .filter(|r| &r.category == c && args.part.contains(r.item))
            .collect();
        let unsure = rows
            .iter()
            .filter(|r| r.answer == super::labels::Answer::Unsure)
            .count();
        let judged: Vec<&&super::labels::LabelRow> = rows
            .iter()
            .filter(|r| r.answer != super::labels::Answer::Unsure)
            .collect();
        let truth: Vec<bool> = judged
            .iter()
            .map(|r| r.answer == super::labels::Answer::Violates)
            .collect();
        let decide = |engine: &Engine| -> Confusion {
            let flags: Vec<f32> = judged
                .iter()
                .map(|r| f32::from(u8::from(engine.score(&r.text).is_flagged(c))))
                .collect();
            Confusion::at(&flags, &truth, 0.5)
        };
        figures.push(LabelFigures {
            category: c.clone(),
            reviewed: judged.len(),
            violating: truth.iter().filter(|&&t| t).count(),
            unsure,
            before: decide(&before),
            after: after.as_ref().map(decide),
        });
    }
    let part = match args.part {
        Part::Test => "held-out items (item number divisible by 5)",
        Part::Train => "training items (item number not divisible by 5)",
        Part::All => "every item",
    };
    let tenants: Vec<String> = file.tenants().into_iter().collect();
    println!(
        "labels: {} ({part}; tenants: {}); policy {} version {}",
        labels.display(),
        if tenants.is_empty() {
            "not named".to_string()
        } else {
            tenants.join(", ")
        },
        dir.display(),
        &policy.version[..16]
    );
    for (named, file) in &args.after {
        println!("after: {} replaced by {}", named.display(), file.display());
    }
    println!(
        "{:<20} {:>8} {:>6} {:>6}  {:<6} {:>6} {:>6} {:>6} {:>5} {:>5} {:>5} {:>5}",
        "category", "reviewed", "viol.", "unsure", "", "P", "R", "F1", "TP", "FP", "FN", "TN"
    );
    for f in &figures {
        let line = |what: &str, c: &Confusion| {
            format!(
                "{:<6} {:>6.3} {:>6.3} {:>6.3} {:>5} {:>5} {:>5} {:>5}",
                what,
                c.precision(),
                c.recall(),
                c.f1(),
                c.tp,
                c.fp,
                c.r#fn,
                c.tn
            )
        };
        println!(
            "{:<20} {:>8} {:>6} {:>6}  {}",
            f.category,
            f.reviewed,
            f.violating,
            f.unsure,
            line("before", &f.before)
        );
        if let Some(a) = &f.after {
            println!(
                "{:<20} {:>8} {:>6} {:>6}  {}  (F1 {:+.3})",
                "",
                "",
                "",
                "",
                line("after", a),
                a.f1() - f.before.f1()
            );
        }
    }
    Ok(())
}

/// The best F1 over every threshold, chosen by looking at the labels: a
/// ceiling for the category's scores, never how thresholds are set.
pub(crate) fn oracle_f1(scores: &[f32], labels: &[bool]) -> (f32, f64) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut best = (1.0f32, 0.0f64);
    for (i, &r) in order.iter().enumerate() {
        if labels[r] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order.get(i + 1).is_none_or(|&n| scores[n] != scores[r]);
        if last_of_tie && scores[r] > 0.0 && positives > 0.0 {
            let f1 = 2.0 * tp / (tp + fp + positives);
            if f1 > best.1 {
                best = (scores[r], f1);
            }
        }
    }
    best
}

fn score_rows(engine: &Engine, rows: &[&Row], categories: &[String]) -> Vec<Vec<f32>> {
    let mut scores = vec![Vec::with_capacity(rows.len()); categories.len()];
    for row in rows {
        let v = engine.score(&row.text);
        for (c, id) in categories.iter().enumerate() {
            scores[c].push(v.scores.get(id.as_str()).copied().unwrap_or(0.0));
        }
    }
    scores
}

/// Scores each fold with the categories' classifiers retrained on the other
/// folds of this file (fold = row number mod k, as in the shared README).
fn cross_validated_scores(
    policy: &Policy,
    dir: &Path,
    data: &Path,
    rows: &[&Row],
    categories: &[String],
    k: usize,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let examples: Vec<Example> = rows
        .iter()
        .map(|r| Example {
            folded: normalize(&r.text).text().to_string(),
            target: r.target,
            weight: 1.0,
        })
        .collect();
    // Each classifier's other training sources (their training parts), as in
    // its sidecar: every fold's model is fitted on them too, so the figure
    // measures the model that ships, not one trained on this file alone.
    // Only classifiers trained on this file are retrained: a model that never
    // saw it (a gate trained on other data) is scored as it ships, since
    // refitting it to this file's labels would turn it into another model.
    // What each retrained classifier is fitted with, read once for every
    // fold: its other sources' rows, its parameters and its word vectors.
    let mut extra: BTreeMap<PathBuf, (Vec<Example>, TrainParams, Option<Embeddings>)> =
        BTreeMap::new();
    for cat in policy
        .categories
        .iter()
        .filter(|c| categories.contains(&c.id))
    {
        for det in &cat.detectors {
            if let DetectorKind::Classifier { path, .. } = &det.kind {
                let model = dir.join(path);
                if let Some(examples) = sidecar_extra_examples(&model, data)? {
                    let (params, emb) = sidecar_fit(&model)?;
                    extra.insert(path.clone(), (examples, params, emb));
                }
            }
        }
    }
    let mut scores = vec![vec![0f32; rows.len()]; categories.len()];
    for fold in 0..k {
        let train_rows: Vec<Example> = rows
            .iter()
            .zip(&examples)
            .filter(|(r, _)| fold_of(r.number, k) != fold)
            .map(|(_, e)| e.clone())
            .collect();
        let mut fold_policy = policy.clone();
        for cat in fold_policy
            .categories
            .iter_mut()
            .filter(|c| categories.contains(&c.id))
        {
            for det in &mut cat.detectors {
                if let DetectorKind::Classifier { path, model, .. } = &mut det.kind {
                    let Some((extra, params, emb)) = extra.get(path) else {
                        continue;
                    };
                    let mut fit_rows = train_rows.clone();
                    fit_rows.extend(extra.iter().cloned());
                    *model = Arc::new(train(&fit_rows, params, emb.as_ref()));
                }
            }
        }
        let engine = Engine::compile(fold_policy)?;
        for (i, r) in rows.iter().enumerate() {
            if fold_of(r.number, k) != fold {
                continue;
            }
            let v = engine.score(&r.text);
            for (c, id) in categories.iter().enumerate() {
                scores[c][i] = v.scores.get(id.as_str()).copied().unwrap_or(0.0);
            }
        }
    }
    Ok(scores)
}

/// The training parts of the sources in a model's sidecar other than `data`,
/// weighted as training weighted them; `None` when `data` is not one of its
/// sources (the model never saw the file).
fn sidecar_extra_examples(model: &Path, data: &Path) -> anyhow::Result<Option<Vec<Example>>> {
    let (path, v) = read_sidecar(model)?;
    let mut sources = Vec::new();
    for record in v
        .get("data")
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
    {
        let Some(spec) = record.get("source").and_then(|s| s.as_str()) else {
            continue;
        };
        let source: Source = spec
            .parse()
            .with_context(|| format!("{}: bad data source", path.display()))?;
        sources.push(source);
    }
    if !sources.iter().any(|s| same_file(&s.path, data)) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for source in sources.iter().filter(|s| !same_file(&s.path, data)) {
        let loaded = read_source(source)?;
        let (pos_weight, neg_weight) = class_weights(source, &loaded.rows, Part::Train);
        out.extend(
            loaded
                .rows
                .iter()
                .filter(|r| Part::Train.contains(r.number))
                .map(|r| Example {
                    folded: normalize(&r.text).text().to_string(),
                    target: r.target,
                    weight: if r.label { pos_weight } else { neg_weight },
                }),
        );
    }
    Ok(Some(out))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What a model's sidecar says it was fitted with: its training parameters,
/// and the word vectors it read (loaded from the path it records, relative
/// to the working directory, as its data).
fn sidecar_fit(model: &Path) -> anyhow::Result<(TrainParams, Option<Embeddings>)> {
    let (path, v) = read_sidecar(model)?;
    let params = v
        .get("params")
        .cloned()
        .with_context(|| format!("{} has no `params`", path.display()))?;
    let params = serde_json::from_value(params)
        .with_context(|| format!("{}: bad `params`", path.display()))?;
    let emb = match v
        .get("embeddings")
        .and_then(|e| e.get("path"))
        .and_then(|p| p.as_str())
    {
        Some(p) => Some(Embeddings::load(Path::new(p))?),
        None => None,
    };
    Ok((params, emb))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sidecar that lists `sources` as its training data.
    fn sidecar(dir: &Path, sources: &[&Path]) -> PathBuf {
        let model = dir.join("m.model");
        let data: Vec<serde_json::Value> = sources
            .iter()
            .map(|p| serde_json::json!({ "source": format!("{},text=text,label=label=1", p.display()) }))
            .collect();
        std::fs::write(
            dir.join("m.json"),
            serde_json::json!({ "data": data }).to_string(),
        )
        .unwrap();
        model
    }

    #[test]
    fn only_a_model_trained_on_the_evaluated_file_is_retrained() {
        let dir = tempfile::tempdir().unwrap();
        let evaluated = dir.path().join("evaluated.csv");
        let other = dir.path().join("other.csv");
        std::fs::write(&evaluated, "text,label\na b,1\nc d,0\n").unwrap();
        let mut rows = String::from("text,label\n");
        for i in 0..10 {
            rows.push_str(&format!("row {i},{}\n", i % 2));
        }
        std::fs::write(&other, rows).unwrap();

        // A gate trained elsewhere is left as it ships.
        let gate = sidecar(dir.path(), &[&other]);
        assert!(sidecar_extra_examples(&gate, &evaluated).unwrap().is_none());

        // A model of this file is refitted, with its other sources' training
        // parts (rows whose number is not divisible by 5: 8 of 10).
        let model = sidecar(dir.path(), &[&evaluated, &other]);
        let extra = sidecar_extra_examples(&model, &evaluated).unwrap().unwrap();
        assert_eq!(extra.len(), 8);
        assert!(extra.iter().all(|e| e.folded.starts_with("row")));
    }
}
