//! `aupd policy cross-source`: the whole policy measured on each shared
//! source's held-out part, with every classifier retrained from its recipe
//! (the command in its sidecar) without that source — the figure that says
//! how aupd will do on a platform it never saw.
//!
//! The four sources and how their labels map to the AUP's categories are
//! written down in `docs/annotation.md`; the held-out parts are the shared
//! split (data-row number divisible by 5) and OLID's official test set.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use super::dataset::{as_links, read_source, Part, Source};
use super::eval::oracle_f1;
use super::load::{DetectorKind, Policy};
use super::metrics::{average_precision, reliability, reliability_lines, roc_auc, Confusion};
use super::train::{read_sidecar, train_recipe, TrainArgs};
use super::Engine;

/// `aupd policy cross-source`: leave-one-source-out figures of the policy.
#[derive(Debug, Clone, clap::Args)]
pub struct CrossSourceArgs {
    /// The shared data folder (`davidson2017/`, `ethos/`, `stormfront/`, `olid2019/`).
    #[arg(long)]
    pub data: PathBuf,
    /// Measure the policy as it ships (its models trained on every source)
    /// instead of retraining each model without the measured source.
    #[arg(long)]
    pub shipped: bool,
    /// Only these sources (`davidson`, `ethos`, `stormfront`, `olid`); default all.
    #[arg(long)]
    pub source: Vec<String>,
    /// Policy directory (default: the configured one).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Word vectors for the recipes that read them, instead of the file
    /// each recipe records (`bash policies/models/embeddings.sh` builds it).
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
}

/// The shared sources: name, folder, and how to read the held-out part.
pub const SOURCES: [(&str, &str); 4] = [
    ("davidson", "davidson2017"),
    ("ethos", "ethos"),
    ("stormfront", "stormfront"),
    ("olid", "olid2019"),
];

/// A held-out text with what its source says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// The raw text.
    pub text: String,
    /// The source's abuse label: what `hate-speech` or `harassment` should flag.
    pub abuse: bool,
    /// The `hate-speech` label, where the source gives one.
    pub hate: Option<bool>,
    /// The `harassment` label, where the source gives one.
    pub harassment: Option<bool>,
    /// The source's own class, for flag rates per class.
    pub class: String,
}

/// Reads the held-out part of one shared source.
pub fn held_out(data: &Path, name: &str) -> anyhow::Result<Vec<Labelled>> {
    let read = |spec: String, class: &dyn Fn(&str, bool) -> String| -> anyhow::Result<_> {
        let source: Source = spec.parse()?;
        let loaded = read_source(&source)?;
        Ok(loaded
            .rows
            .into_iter()
            .filter(|r| Part::Test.contains(r.number))
            .map(|r| Labelled {
                class: class(r.group.as_deref().unwrap_or(""), r.label),
                text: r.text,
                abuse: r.label,
                hate: Some(r.label),
                harassment: None,
            })
            .collect())
    };
    let yes_no = |_: &str, l: bool| if l { "hate" } else { "not" }.to_string();
    match name {
        "davidson" => read(
            format!(
                "{},text=tweet,label=class=0,group=class",
                data.join("davidson2017/labeled_data.csv").display()
            ),
            &|g, _| {
                match g {
                    "0" => "hate",
                    "1" => "offensive",
                    _ => "neither",
                }
                .to_string()
            },
        ),
        "ethos" => read(
            format!(
                "{},text=comment,label=isHate>=0.5",
                data.join("ethos/Ethos_Dataset_Binary.csv").display()
            ),
            &yes_no,
        ),
        "stormfront" => read(
            format!(
                "{},text=text,label=label=hate,skip=label=relation|idk/skip",
                data.join("stormfront/stormfront_sentences.csv").display()
            ),
            &yes_no,
        ),
        "olid" => olid_test(&data.join("olid2019")),
        other => anyhow::bail!("unknown source {other:?} (davidson, ethos, stormfront, olid)"),
    }
}

/// OLID's official test set: tweets in `testset-levela.tsv`, gold labels in
/// `labels-level{a,b,c}.csv` (no header: `id,LABEL`).
pub(crate) fn olid_test(dir: &Path) -> anyhow::Result<Vec<Labelled>> {
    let labels = |level: &str| -> anyhow::Result<BTreeMap<String, String>> {
        let path = dir.join(format!("labels-level{level}.csv"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(text
            .lines()
            .filter_map(|l| l.trim().split_once(','))
            .map(|(id, v)| (id.to_string(), v.trim().to_string()))
            .collect())
    };
    let (a, b, c) = (labels("a")?, labels("b")?, labels("c")?);
    let path = dir.join("testset-levela.tsv");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quoting(false)
        .from_path(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: data row {n}", path.display()))?;
        let (id, tweet) = (
            record.get(0).unwrap_or_default(),
            record.get(1).unwrap_or_default(),
        );
        let level_a = a
            .get(id)
            .with_context(|| format!("{}: tweet {id} has no level-a label", path.display()))?;
        let class = match (level_a.as_str(), b.get(id).map(String::as_str)) {
            ("NOT", _) => "NOT".to_string(),
            (_, Some("UNT")) => "UNT".to_string(),
            _ => c.get(id).cloned().unwrap_or_else(|| "TIN".into()),
        };
        let tin = b.get(id).is_some_and(|v| v == "TIN");
        out.push(Labelled {
            // OLID writes every link as `URL`: read as a link, as the
            // recipes read its training file (`link=URL`) and as a
            // platform's posts have them.
            text: as_links(tweet, &["URL"]),
            abuse: tin,
            hate: Some(class == "GRP"),
            harassment: Some(class == "IND"),
            class,
        });
    }
    Ok(out)
}

/// Figures of one score column against one label column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Decisions at the flag line.
    pub confusion: Confusion,
    /// Area under the ROC curve.
    pub roc_auc: f64,
    /// Area under the precision-recall curve.
    pub pr_auc: f64,
    /// Share of texts flagged.
    pub flag_rate: f64,
}

impl Figures {
    /// Computes the figures of `scores` (flagged at `flags`) against `labels`.
    pub fn new(scores: &[f32], flags: &[bool], labels: &[bool]) -> Self {
        let as_scores: Vec<f32> = flags.iter().map(|&f| f32::from(u8::from(f))).collect();
        Self {
            confusion: Confusion::at(&as_scores, labels, 0.5),
            roc_auc: roc_auc(scores, labels),
            pr_auc: average_precision(scores, labels),
            flag_rate: flags.iter().filter(|&&f| f).count() as f64 / flags.len().max(1) as f64,
        }
    }

    fn line(&self, what: &str, label: &str) -> String {
        let c = &self.confusion;
        format!(
            "  {what:<12} {label:<10} {:>6.3} {:>6.3} {:>6.3} {:>8.3} {:>7.3} {:>7.1}%",
            c.precision(),
            c.recall(),
            c.f1(),
            self.roc_auc,
            self.pr_auc,
            100.0 * self.flag_rate
        )
    }
}

/// Parses a sidecar's recorded `policy train …` command back into its arguments.
fn recipe_of(model: &Path) -> anyhow::Result<Option<TrainArgs>> {
    #[derive(Parser)]
    struct Recipe {
        #[command(flatten)]
        args: TrainArgs,
    }
    let (path, v) = read_sidecar(model)?;
    let Some(command) = v.get("command").and_then(|c| c.as_array()) else {
        return Ok(None);
    };
    let words: Vec<String> = command
        .iter()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect();
    // The recorded command starts with `policy train`.
    let Some(rest) = words.strip_prefix(&["policy".to_string(), "train".to_string()]) else {
        return Ok(None);
    };
    let recipe =
        Recipe::try_parse_from(std::iter::once("train".to_string()).chain(rest.iter().cloned()))
            .with_context(|| {
                format!(
                    "{}: the recorded training command does not parse",
                    path.display()
                )
            })?;
    Ok(Some(recipe.args))
}

/// Whether a data path lies in one of the shared sources' folders, and which.
fn shared_folder(path: &Path) -> Option<&'static str> {
    path.components().find_map(|c| match c {
        Component::Normal(name) => SOURCES
            .iter()
            .find(|(_, folder)| name == std::ffi::OsStr::new(folder))
            .map(|(_, folder)| *folder),
        _ => None,
    })
}

/// The same path under `data` when it names a file of a shared source, so
/// recipes recorded with `../shared/data` also run against another copy.
fn rebase(path: &Path, data: &Path) -> PathBuf {
    let Some(folder) = shared_folder(path) else {
        return path.to_path_buf();
    };
    let mut after = PathBuf::new();
    let mut seen = false;
    for c in path.components() {
        if seen {
            after.push(c);
        } else if c.as_os_str() == folder {
            seen = true;
        }
    }
    data.join(folder).join(after)
}

/// The policy with every classifier retrained without the source in
/// `folder`; a classifier whose recipe never used it is kept as it ships.
/// Returns the retrained detectors' ids.
fn without_source(
    policy: &Policy,
    dir: &Path,
    data: &Path,
    folder: &str,
    embeddings: Option<&Path>,
) -> anyhow::Result<(Policy, Vec<String>)> {
    without_source_and(policy, dir, data, folder, &|_, recipe| {
        if let (Some(e), Some(_)) = (embeddings, &recipe.embeddings) {
            recipe.embeddings = Some(e.to_path_buf());
        }
    })
}

/// [`without_source`], with each retrained recipe passed through `adjust`
/// (given the detector's category id) before training: a benchmark adds
/// reviewed labels this way.
pub(crate) fn without_source_and(
    policy: &Policy,
    dir: &Path,
    data: &Path,
    folder: &str,
    adjust: &dyn Fn(&str, &mut TrainArgs),
) -> anyhow::Result<(Policy, Vec<String>)> {
    let mut out = policy.clone();
    let mut retrained = Vec::new();
    for cat in &mut out.categories {
        let category = cat.id.clone();
        for det in &mut cat.detectors {
            let DetectorKind::Classifier {
                path,
                model,
                midpoint,
            } = &mut det.kind
            else {
                continue;
            };
            let Some(mut recipe) = recipe_of(&dir.join(&*path))? else {
                continue;
            };
            let before = recipe.data.len();
            recipe
                .data
                .retain(|s| shared_folder(&s.path) != Some(folder));
            if recipe.data.len() == before {
                continue;
            }
            anyhow::ensure!(
                !recipe.data.is_empty(),
                "{}: every source of its recipe is {folder}",
                det.id
            );
            // Indices of --tune-on refer to the full list; tune on all the rest.
            recipe.tune_on.clear();
            recipe.cv = None;
            for s in &mut recipe.data {
                s.path = rebase(&s.path, data);
            }
            adjust(&category, &mut recipe);
            let trained = train_recipe(&recipe, false)
                .with_context(|| format!("retraining {} without {folder}", det.id))?;
            *model = Arc::new(trained.model);
            *midpoint = trained.sidecar.threshold.clamp(1e-4, 1.0 - 1e-4);
            retrained.push(det.id.clone());
        }
    }
    Ok((out, retrained))
}

/// Every classifier's raw margin (log-odds, before the policy's weight and
/// midpoint) on each text, by detector id.
fn model_margins(policy: &Policy, rows: &[Labelled]) -> Vec<(String, Vec<f32>)> {
    let folded: Vec<String> = rows
        .iter()
        .map(|r| super::normalize::normalize(&r.text).text().to_string())
        .collect();
    let mut out = Vec::new();
    for det in policy.categories.iter().flat_map(|c| &c.detectors) {
        if let DetectorKind::Classifier { model, .. } = &det.kind {
            let m = folded.iter().map(|f| model.margin_folded(f)).collect();
            out.push((det.id.clone(), m));
        }
    }
    out
}

/// Runs `aupd policy cross-source` and prints its tables.
pub fn run_cross_source(args: &CrossSourceArgs, default_dir: &Path) -> anyhow::Result<()> {
    if !args.data.join("olid2019").exists() && !args.data.join("davidson2017").exists() {
        println!(
            "skipped: {} is not here (the shared data; see ../shared/data/README.md)",
            args.data.display()
        );
        return Ok(());
    }
    let dir = args.policy.as_deref().unwrap_or(default_dir);
    let policy = super::load_dir(dir)?;
    let names: Vec<&str> = if args.source.is_empty() {
        SOURCES.iter().map(|(n, _)| *n).collect()
    } else {
        args.source.iter().map(String::as_str).collect()
    };
    println!(
        "policy {} version {}; {}",
        dir.display(),
        &policy.version[..16],
        if args.shipped {
            "models as shipped (trained on every source's training part)"
        } else {
            "each model retrained without the measured source (leave-one-source-out)"
        }
    );
    let mut summary = Vec::new();
    for name in names {
        let folder = SOURCES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .with_context(|| {
                format!("unknown source {name:?} (davidson, ethos, stormfront, olid)")
            })?;
        let rows = held_out(&args.data, name)?;
        let started = Instant::now();
        let (measured, retrained) = if args.shipped {
            (policy.clone(), Vec::new())
        } else {
            without_source(&policy, dir, &args.data, folder, args.embeddings.as_deref())?
        };
        let trained_secs = started.elapsed().as_secs_f64();
        let margins = model_margins(&measured, &rows);
        let engine = Engine::compile(measured)?;
        let cat = |id: &str| -> Vec<(f32, bool)> {
            rows.iter()
                .map(|r| {
                    let v = engine.score(&r.text);
                    (v.scores.get(id).copied().unwrap_or(0.0), v.is_flagged(id))
                })
                .collect()
        };
        let hate = cat("hate-speech");
        let harass = cat("harassment");
        let either: Vec<(f32, bool)> = hate
            .iter()
            .zip(&harass)
            .map(|(h, a)| (h.0.max(a.0), h.1 || a.1))
            .collect();
        let abuse: Vec<bool> = rows.iter().map(|r| r.abuse).collect();
        let positives = abuse.iter().filter(|&&l| l).count();
        println!();
        println!(
            "== {name}: {} held-out texts, {positives} abusive{}",
            rows.len(),
            if retrained.is_empty() {
                String::new()
            } else {
                format!(
                    "; retrained without {name} in {trained_secs:.0}s: {}",
                    retrained.join(", ")
                )
            }
        );
        println!(
            "  {:<12} {:<10} {:>6} {:>6} {:>6} {:>8} {:>7} {:>8}",
            "category", "label", "P", "R", "F1", "ROC-AUC", "PR-AUC", "flagged"
        );
        let figures = |col: &[(f32, bool)], labels: &[bool]| {
            let s: Vec<f32> = col.iter().map(|c| c.0).collect();
            let f: Vec<bool> = col.iter().map(|c| c.1).collect();
            Figures::new(&s, &f, labels)
        };
        let either_fig = figures(&either, &abuse);
        let abuse_name = if name == "olid" { "TIN" } else { "abuse" };
        let mut headline = either_fig;
        for (id, col, pick) in [
            ("hate-speech", &hate, 0usize),
            ("harassment", &harass, 1usize),
        ] {
            let labels: Option<Vec<bool>> = rows
                .iter()
                .map(|r| if pick == 0 { r.hate } else { r.harassment })
                .collect();
            if let Some(labels) = labels {
                let lname = match (name, pick) {
                    ("olid", 0) => "GRP",
                    ("olid", _) => "IND",
                    ("davidson", _) => "class 0",
                    _ => "hate",
                };
                let fig = figures(col, &labels);
                println!("{}", fig.line(id, lname));
                if name == "davidson" && pick == 0 {
                    headline = fig;
                }
            }
        }
        println!("{}", either_fig.line("either", abuse_name));
        // Where the ranking is lost: each model's raw margin alone, and the
        // larger of the hate-speech and harassment margins, against the
        // abuse label (no lexicon, no damper, no weight).
        let mut parts: Vec<String> = margins
            .iter()
            .map(|(id, m)| format!("{id} {:.3}", roc_auc(m, &abuse)))
            .collect();
        let pick = |id: &str| margins.iter().find(|(d, _)| d == id).map(|(_, m)| m);
        if let (Some(h), Some(a)) = (pick("hate.model"), pick("harassment.model")) {
            let both: Vec<f32> = h.iter().zip(a).map(|(h, a)| h.max(*a)).collect();
            parts.push(format!(
                "max(hate, harassment) {:.3}",
                roc_auc(&both, &abuse)
            ));
        }
        println!(
            "  ROC-AUC of the models alone vs {abuse_name}: {}",
            parts.join(", ")
        );
        let either_scores: Vec<f32> = either.iter().map(|c| c.0).collect();
        let (best_t, best_f1) = oracle_f1(&either_scores, &abuse);
        println!(
            "  (for reference only: the best F1 of `either` any threshold could reach here is {best_f1:.3}, at score {best_t:.3})"
        );
        // Flag rates per source class.
        let mut classes: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        for ((r, h), a) in rows.iter().zip(&hate).zip(&harass) {
            let e = classes.entry(r.class.as_str()).or_default();
            e.0 += 1;
            e.1 += u64::from(h.1);
            e.2 += u64::from(a.1);
        }
        let parts: Vec<String> = classes
            .iter()
            .map(|(c, (n, h, a))| {
                format!(
                    "{c} {n}: hate-speech {:.1}%, harassment {:.1}%",
                    100.0 * *h as f64 / *n as f64,
                    100.0 * *a as f64 / *n as f64
                )
            })
            .collect();
        println!("  flagged per class: {}", parts.join("; "));
        println!("  reliability of max(hate-speech, harassment) score against {abuse_name}:");
        for line in reliability_lines(&reliability(&either_scores, &abuse)) {
            println!("    {line}");
        }
        summary.push((name, headline));
    }
    println!();
    println!("summary (davidson: hate-speech vs class 0; others: hate-speech or harassment vs the abuse label)");
    for (name, f) in summary {
        println!(
            "  {name:<11} F1 {:.3}  P {:.3}  R {:.3}  ROC-AUC {:.3}  PR-AUC {:.3}",
            f.confusion.f1(),
            f.confusion.precision(),
            f.confusion.recall(),
            f.roc_auc,
            f.pr_auc
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_paths_are_recognised_and_rebased() {
        let p = Path::new("../shared/data/olid2019/olid-training-v1.0.tsv");
        assert_eq!(shared_folder(p), Some("olid2019"));
        assert_eq!(
            rebase(p, Path::new("/data")),
            PathBuf::from("/data/olid2019/olid-training-v1.0.tsv")
        );
        let own = Path::new("policies/models/training/identity-neutral.csv");
        assert_eq!(shared_folder(own), None);
        assert_eq!(rebase(own, Path::new("/data")), own.to_path_buf());
    }

    #[test]
    fn olid_test_labels_join_the_three_levels() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("testset-levela.tsv"),
            "id\ttweet\n1\t\"you are an idiot\n2\tnice day\n3\tthey are vermin\n4\tdamn\n",
        )
        .unwrap();
        std::fs::write(d.join("labels-levela.csv"), "1,OFF\n2,NOT\n3,OFF\n4,OFF\n").unwrap();
        std::fs::write(d.join("labels-levelb.csv"), "1,TIN\n3,TIN\n4,UNT\n").unwrap();
        std::fs::write(d.join("labels-levelc.csv"), "1,IND\n3,GRP\n").unwrap();
        let rows = olid_test(d).unwrap();
        let classes: Vec<&str> = rows.iter().map(|r| r.class.as_str()).collect();
        assert_eq!(classes, ["IND", "NOT", "GRP", "UNT"]);
        assert_eq!(rows[0].text, "\"you are an idiot");
        let abuse: Vec<bool> = rows.iter().map(|r| r.abuse).collect();
        assert_eq!(abuse, [true, false, true, false]);
        assert_eq!(rows[0].harassment, Some(true));
        assert_eq!(rows[2].hate, Some(true));
    }
}
