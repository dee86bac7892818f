//! `aupd bench review-prevalence` and `aupd bench review-learning`: OLID as
//! a stand-in tenant whose labels stand for reviewers' answers, scored by a
//! policy whose models were retrained without OLID (a platform they never
//! saw). They print figures; nothing here passes or fails.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::policy::crosssource::{olid_test, without_source_and};
use crate::policy::dataset::{read_source, Source};
use crate::policy::metrics::Confusion;
use crate::policy::train::TrainArgs;
use crate::policy::{self, Engine, Policy, Verdict};
use crate::sampling::labelled::{
    allocate, band_of, band_population, corrected_count, label_estimate, stratified_draw,
    LabelledItem, BANDS, BAND_EDGES,
};

/// The categories whose flag stands for OLID's targeted offence (TIN).
const TIN_CATEGORIES: [&str; 2] = ["hate-speech", "harassment"];

/// One OLID tweet with its gold labels.
struct Tweet {
    id: String,
    text: String,
    /// Targeted insult or threat (subtask B = TIN).
    tin: bool,
    /// Subtask C: IND (an individual), GRP (a group), OTH, or nothing.
    target: String,
}

fn olid_training(data: &Path) -> anyhow::Result<Vec<Tweet>> {
    let spec = format!(
        "{},text=tweet,label=subtask_b=TIN,group=subtask_c,part=all",
        data.join("olid2019/olid-training-v1.0.tsv").display()
    );
    let source: Source = spec.parse()?;
    Ok(read_source(&source)?
        .rows
        .into_iter()
        .map(|r| Tweet {
            id: format!("olid-train-{}", r.number),
            text: r.text,
            tin: r.label,
            target: r.group.unwrap_or_default(),
        })
        .collect())
}

/// Whether the shared data is here; prints why the benchmark is skipped if not.
fn have_olid(data: &Path) -> bool {
    let here = data.join("olid2019/olid-training-v1.0.tsv").exists()
        && data.join("olid2019/testset-levela.tsv").exists();
    if !here {
        println!(
            "skipped: {} has no olid2019/ (the shared data; see its README.md); pass --data",
            data.display()
        );
    }
    here
}

/// The policy with OLID left out of every model that was trained on it
/// (each recipe passed through `adjust`), compiled.
fn without_olid(
    policy: &Policy,
    dir: &Path,
    data: &Path,
    adjust: &dyn Fn(&str, &mut TrainArgs),
) -> anyhow::Result<(Engine, Vec<String>, f64)> {
    let started = Instant::now();
    let (p, retrained) = without_source_and(policy, dir, data, "olid2019", adjust)?;
    let engine = Engine::compile(p)?;
    Ok((engine, retrained, started.elapsed().as_secs_f64()))
}

/// The abuse score of a verdict (its highest category score) and whether a
/// TIN category flagged it.
fn judge(v: &Verdict) -> (f64, bool) {
    let score = v.scores.values().copied().fold(0.0f32, f32::max);
    let flagged = TIN_CATEGORIES.iter().any(|c| v.is_flagged(c));
    (f64::from(score), flagged)
}

/// Running sums of one estimator over the repetitions.
#[derive(Default)]
struct Tally {
    runs: u64,
    covered: u64,
    abs_error: f64,
    width: f64,
    missing: u64,
}

impl Tally {
    fn add(&mut self, estimate: Option<(f64, f64, f64)>, truth: f64) {
        self.runs += 1;
        let Some((rate, lower, upper)) = estimate else {
            self.missing += 1;
            return;
        };
        self.covered += u64::from(lower <= truth && truth <= upper);
        self.abs_error += (rate - truth).abs();
        self.width += upper - lower;
    }

    fn line(&self, name: &str) -> String {
        let n = (self.runs - self.missing).max(1) as f64;
        format!(
            "  {name:<33} coverage {:>5.1}%  mean |error| {:>6.2} pp  mean interval width {:>6.2} pp{}",
            100.0 * self.covered as f64 / self.runs.max(1) as f64,
            100.0 * self.abs_error / n,
            100.0 * self.width / n,
            if self.missing > 0 {
                format!("  (no estimate in {} runs)", self.missing)
            } else {
                String::new()
            }
        )
    }
}

/// `aupd bench review-prevalence`.
pub fn review_prevalence(
    data: &Path,
    dir: &Path,
    reviewed: u64,
    repetitions: u64,
) -> anyhow::Result<i32> {
    if !have_olid(data) {
        return Ok(0);
    }
    let started = Instant::now();
    let policy = policy::load_dir(dir)?;
    let (engine, retrained, train_secs) = without_olid(&policy, dir, data, &|_, _| {})?;
    println!(
        "model: {} with {} retrained without OLID in {train_secs:.0}s",
        dir.display(),
        retrained.join(", ")
    );

    // The tenant: every OLID tweet (training file and official test set).
    let mut tweets = olid_training(data)?;
    tweets.extend(
        olid_test(&data.join("olid2019"))?
            .into_iter()
            .enumerate()
            .map(|(i, t)| Tweet {
                id: format!("olid-test-{i}"),
                tin: t.abuse,
                target: t.class,
                text: t.text,
            }),
    );
    let judged: Vec<(f64, bool)> = tweets
        .iter()
        .map(|t| judge(&engine.score(&t.text)))
        .collect();
    let n = tweets.len() as u64;
    let truth = tweets.iter().filter(|t| t.tin).count() as f64 / n as f64;
    let flagged_total = judged.iter().filter(|j| j.1).count() as u64;
    let naive = flagged_total as f64 / n as f64;
    let population = band_population(judged.iter().map(|j| j.0));
    let by_id: Vec<(&str, f64)> = tweets
        .iter()
        .zip(&judged)
        .map(|(t, j)| (t.id.as_str(), j.0))
        .collect();
    println!(
        "tenant: {n} OLID tweets, true TIN rate {:.2}%; the model flags {:.2}% (hate-speech or harassment)",
        100.0 * truth,
        100.0 * naive
    );
    let tin = tweets.iter().filter(|t| t.tin).count().max(1) as f64;
    let clean = tweets.iter().filter(|t| !t.tin).count().max(1) as f64;
    let caught = tweets
        .iter()
        .zip(&judged)
        .filter(|(t, j)| t.tin && j.1)
        .count() as f64;
    let false_alarms = tweets
        .iter()
        .zip(&judged)
        .filter(|(t, j)| !t.tin && j.1)
        .count() as f64;
    println!(
        "  on the whole tenant the model's true-positive rate is {:.3} and its false-positive rate {:.3}",
        caught / tin,
        false_alarms / clean
    );
    let alloc = allocate(&population, reviewed);
    for b in 0..BANDS {
        let in_band: Vec<usize> = (0..tweets.len())
            .filter(|&i| band_of(judged[i].0) == b)
            .collect();
        let tin = in_band.iter().filter(|&&i| tweets[i].tin).count();
        println!(
            "  band {b} [{:.1}, {:.1}{}: {:>6} tweets, {:>5.1}% TIN, {:>3} reviewed per draw",
            BAND_EDGES[b],
            BAND_EDGES[b + 1],
            if b + 1 == BANDS { "]" } else { ")" },
            population[b],
            100.0 * tin as f64 / in_band.len().max(1) as f64,
            alloc[b]
        );
    }

    let (mut labels, mut corrected, mut naive_tally) =
        (Tally::default(), Tally::default(), Tally::default());
    for rep in 0..repetitions {
        let seed = 0x5eed_0000 + rep;
        let drawn = stratified_draw(seed, &by_id, reviewed);
        let items: Vec<LabelledItem> = drawn
            .iter()
            .map(|&i| LabelledItem {
                band: band_of(judged[i].0),
                flagged: judged[i].1,
                violates: tweets[i].tin,
            })
            .collect();
        let e = label_estimate(&population, &items);
        labels.add(e.map(|e| (e.rate, e.lower, e.upper)), truth);
        let c = corrected_count(&population, flagged_total, &items, seed);
        corrected.add(c.map(|c| (c.rate, c.lower, c.upper)), truth);
        naive_tally.add(Some((naive, naive, naive)), truth);
    }
    println!(
        "{repetitions} repetitions of {reviewed} reviewed tweets drawn as the review queue draws them (seed 0x5eed0000 + repetition):"
    );
    println!("{}", labels.line("label estimate (stratified)"));
    println!("{}", corrected.line("corrected count (ACC, bootstrap)"));
    println!("{}", naive_tally.line("model count (no correction)"));
    println!("took {:.1}s", started.elapsed().as_secs_f64());
    Ok(0)
}

/// One reviewed OLID training tweet as rows of the label export format.
fn export_rows(out: &mut String, t: &Tweet) {
    let quoted = t.text.replace('"', "\"\"");
    for category in TIN_CATEGORIES {
        let violates = match category {
            "hate-speech" => t.tin && t.target == "GRP",
            _ => t.tin && t.target == "IND",
        };
        out.push_str(&format!(
            "{},olid,{category},{},queue,\"{quoted}\"\n",
            t.id,
            if violates { "violates" } else { "does_not" }
        ));
    }
}

/// F1, precision, recall and flag rate of `engine` on OLID's official test
/// set: hate-speech or harassment flagged, against TIN.
fn test_figures(engine: &Engine, test: &[(String, bool)]) -> (Confusion, f64) {
    let flags: Vec<f32> = test
        .iter()
        .map(|(text, _)| f32::from(u8::from(judge(&engine.score(text)).1)))
        .collect();
    let truth: Vec<bool> = test.iter().map(|t| t.1).collect();
    let rate = flags.iter().sum::<f32>() as f64 / flags.len().max(1) as f64;
    (Confusion::at(&flags, &truth, 0.5), rate)
}

/// `aupd bench review-learning`.
pub fn review_learning(
    data: &Path,
    dir: &Path,
    sizes: &[u64],
    weights: &[f32],
    seed: u64,
    draws: u64,
) -> anyhow::Result<i32> {
    if !have_olid(data) {
        return Ok(0);
    }
    let started = Instant::now();
    let policy = policy::load_dir(dir)?;
    let test: Vec<(String, bool)> = olid_test(&data.join("olid2019"))?
        .into_iter()
        .map(|t| (t.text, t.abuse))
        .collect();
    let (base, retrained, secs) = without_olid(&policy, dir, data, &|_, _| {})?;
    let (c, rate) = test_figures(&base, &test);
    println!(
        "OLID official test set: {} tweets, {} TIN; `either` = hate-speech or harassment flagged",
        test.len(),
        test.iter().filter(|t| t.1).count()
    );
    println!(
        "each row: {draws} review draws (seeds {seed}..{}); F1, P, R and flagged are means over them",
        seed + draws.max(1) - 1
    );
    println!(
        "{:>9} {:>7} {:>6} {:>13} {:>6} {:>6} {:>8} {:>8}",
        "reviewed", "weight", "F1", "F1 min-max", "P", "R", "flagged", "train s"
    );
    let row = |k: String, w: String, runs: &[(Confusion, f64)], secs: f64| {
        let n = runs.len().max(1) as f64;
        let mean = |f: &dyn Fn(&(Confusion, f64)) -> f64| runs.iter().map(f).sum::<f64>() / n;
        let f1s: Vec<f64> = runs.iter().map(|r| r.0.f1()).collect();
        let (lo, hi) = f1s
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &f| (a.min(f), b.max(f)));
        println!(
            "{k:>9} {w:>7} {:>6.3} {:>13} {:>6.3} {:>6.3} {:>7.1}% {secs:>8.0}",
            mean(&|r| r.0.f1()),
            format!("{lo:.3}-{hi:.3}"),
            mean(&|r| r.0.precision()),
            mean(&|r| r.0.recall()),
            100.0 * mean(&|r| r.1)
        );
    };
    row("0".into(), "-".into(), &[(c, rate)], secs);

    // The queue's draw from OLID's training file, by the no-OLID model's scores.
    let train = olid_training(data)?;
    let by_id: Vec<(&str, f64)> = train
        .iter()
        .map(|t| (t.id.as_str(), judge(&base.score(&t.text)).0))
        .collect();
    let work = std::env::temp_dir().join(format!("aupd-review-learning-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = (|| -> anyhow::Result<()> {
        for &k in sizes {
            let mut files = Vec::new();
            for d in 0..draws.max(1) {
                let drawn = stratified_draw(seed + d, &by_id, k);
                let mut csv = String::from("sample_id,tenant,category,label,origin,text\n");
                for &i in &drawn {
                    export_rows(&mut csv, &train[i]);
                }
                let file: PathBuf = work.join(format!("labels-{k}-{d}.csv"));
                std::fs::write(&file, csv)
                    .with_context(|| format!("writing {}", file.display()))?;
                files.push((drawn.len(), file));
            }
            for &w in weights {
                let (mut runs, mut secs) = (Vec::new(), 0.0);
                for (_, file) in &files {
                    let adjust = |category: &str, recipe: &mut TrainArgs| {
                        recipe.labels = vec![file.clone()];
                        recipe.label_category = Some(category.to_string());
                        recipe.label_weight = w;
                        recipe.label_part = crate::policy::dataset::Part::All;
                    };
                    let (engine, _, s) = without_olid(&policy, dir, data, &adjust)?;
                    secs += s;
                    runs.push(test_figures(&engine, &test));
                }
                let reviewed = files.first().map_or(0, |f| f.0);
                row(
                    reviewed.to_string(),
                    format!("{w}"),
                    &runs,
                    secs / files.len() as f64,
                );
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result?;
    println!(
        "models retrained: {}; reviewed tweets drawn from OLID's training file as the review queue draws them, never from its test set",
        retrained.join(", ")
    );
    println!("took {:.1}s", started.elapsed().as_secs_f64());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::labels::{parse_labels, Answer};

    #[test]
    fn exported_olid_rows_read_back_as_reviewers_labels() {
        let tweets = [
            Tweet {
                id: "olid-train-0".into(),
                text: "@USER \"you\" are a fool, really".into(),
                tin: true,
                target: "IND".into(),
            },
            Tweet {
                id: "olid-train-1".into(),
                text: "they all are".into(),
                tin: true,
                target: "GRP".into(),
            },
            Tweet {
                id: "olid-train-2".into(),
                text: "damn".into(),
                tin: false,
                target: "NULL".into(),
            },
        ];
        let mut csv = String::from("sample_id,tenant,category,label,origin,text\n");
        for t in &tweets {
            export_rows(&mut csv, t);
        }
        let file = parse_labels(csv.as_bytes(), Path::new("x.csv")).unwrap();
        assert_eq!(file.rows.len(), 6);
        assert_eq!(file.rows[0].text, tweets[0].text);
        let answers: Vec<(&str, Answer)> = file
            .rows
            .iter()
            .map(|r| (r.category.as_str(), r.answer))
            .collect();
        assert_eq!(
            answers,
            [
                ("hate-speech", Answer::DoesNot),
                ("harassment", Answer::Violates),
                ("hate-speech", Answer::Violates),
                ("harassment", Answer::DoesNot),
                ("hate-speech", Answer::DoesNot),
                ("harassment", Answer::DoesNot),
            ]
        );
        assert_eq!(file.tenants().into_iter().collect::<Vec<_>>(), ["olid"]);
    }
}
