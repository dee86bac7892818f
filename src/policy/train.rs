//! Training and measuring the learned detectors.
//!
//! Logistic regression over hashed features ([`super::features`]), fitted
//! by AdaGrad with L2, class weighting and optional soft targets. Training
//! is single-threaded with a fixed seed and a fixed shuffle, so the same
//! input always gives a byte-identical model file.
//!
//! The decision threshold is never chosen on the held-out 20%: training
//! scores every training row out-of-fold (4 folds over the training part),
//! picks the threshold with the best F1 there (optionally under caps on the
//! share flagged per group), then fits the final model on the whole training
//! part. The threshold and all figures go into a sidecar `<model>.json`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use super::dataset::{fold_of, read_source, Part, Row, Source};
use super::embeddings::{Embeddings, WordTable};
use super::features::FeatureSpec;
use super::labels::{in_part, read_labels, Answer};
use super::metrics::{
    best_f1_threshold, best_mean_f1_threshold, platt, reliability, reliability_lines,
    threshold_at_precision, Band, Report,
};
use super::model::{sigmoid, LinearModel};
use super::normalize::normalize;

/// Everything that shapes a trained model besides the data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct TrainParams {
    /// The features.
    pub spec: FeatureSpec,
    /// Passes over the data.
    pub epochs: u32,
    /// AdaGrad's base learning rate.
    pub learning_rate: f32,
    /// L2 penalty, applied to a weight whenever its feature occurs.
    pub l2: f32,
    /// Weight of the positive class in the loss (negatives weigh 1).
    pub pos_weight: f32,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Return the mean of the weights after each epoch instead of the last ones.
    pub average: bool,
    /// Naive-Bayes scaling (NB-LR): when above 0, each bucket's value is
    /// multiplied by its log-count ratio between the classes, smoothed by
    /// this much; the ratios are folded into the saved weights.
    pub nb_alpha: f32,
    /// How the weights are fitted. Sidecars written before this setting
    /// existed were fitted by AdaGrad.
    #[serde(default)]
    pub solver: Solver,
    /// When word vectors are read (`--embeddings`), the mean vector of a
    /// text's words is multiplied by this before it joins the features
    /// (0: no word vectors).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub embedding_scale: f32,
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

/// How a model's weights are fitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Stochastic AdaGrad, one example at a time in a seeded shuffle, for
    /// `epochs` passes; L2 pulls a weight each time its feature occurs.
    #[default]
    Adagrad,
    /// Full-batch L-BFGS on the mean weighted logistic loss plus
    /// `l2 / 2 · |w|²` (bias not penalised), for at most `epochs`
    /// iterations: the exact minimiser a convex solver finds, in a fixed
    /// order of summation (deterministic; the seed, the learning rate and
    /// `average` play no part).
    Lbfgs,
}

impl std::str::FromStr for Solver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "adagrad" => Ok(Self::Adagrad),
            "lbfgs" => Ok(Self::Lbfgs),
            _ => Err(format!("expected adagrad or lbfgs, got {s:?}")),
        }
    }
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            spec: FeatureSpec::default(),
            epochs: 10,
            learning_rate: 0.2,
            l2: 1e-5,
            pos_weight: 1.0,
            seed: 42,
            average: false,
            nb_alpha: 0.0,
            solver: Solver::Adagrad,
            embedding_scale: 0.0,
        }
    }
}

/// One training example: folded text, target in [0, 1] and a weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The text folded by [`normalize`].
    pub folded: String,
    /// The target probability (1/0 for a hard label).
    pub target: f32,
    /// How much the example counts.
    pub weight: f32,
}

/// A small, fixed pseudo-random generator (splitmix64) for the shuffle.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Trains a model on `examples`, reading word vectors when `emb` is given.
pub fn train(examples: &[Example], params: &TrainParams, emb: Option<&Embeddings>) -> LinearModel {
    let vectors = feature_vectors(examples, params, emb);
    let all: Vec<usize> = (0..examples.len()).collect();
    fit(&vectors, examples, &all, params, emb)
}

/// The feature vector of every example: its hashed n-grams, then (with word
/// vectors) the scaled mean vector of its words, at indices from
/// `spec.dim()` on.
fn feature_vectors(
    examples: &[Example],
    params: &TrainParams,
    emb: Option<&Embeddings>,
) -> Vec<Vec<(u32, f32)>> {
    let dim = params.spec.dim() as u32;
    let mut buf = Vec::new();
    let mut mean = Vec::new();
    examples
        .iter()
        .map(|e| {
            params.spec.vector(&e.folded, &mut buf);
            if let Some(emb) = emb {
                mean.clear();
                mean.resize(emb.dims(), 0.0f32);
                if emb.add_mean(&e.folded, params.embedding_scale, &mut mean) > 0 {
                    buf.extend(mean.iter().enumerate().map(|(j, &v)| (dim + j as u32, v)));
                }
            }
            buf.clone()
        })
        .collect()
}

/// Fits on the examples listed in `rows`, with their feature vectors given.
fn fit(
    vectors: &[Vec<(u32, f32)>],
    examples: &[Example],
    rows: &[usize],
    params: &TrainParams,
    emb: Option<&Embeddings>,
) -> LinearModel {
    let hashed = params.spec.dim();
    let dim = hashed + emb.map_or(0, Embeddings::dims);
    // Naive-Bayes scaling is for counts; the word-vector features keep theirs.
    let ratios = (params.nb_alpha > 0.0).then(|| {
        let mut r = nb_ratios(vectors, examples, rows, dim, params.nb_alpha);
        r[hashed..].iter_mut().for_each(|v| *v = 1.0);
        r
    });
    let scaled = |x: &[(u32, f32)], out: &mut Vec<(u32, f32)>| {
        out.clear();
        out.extend(
            x.iter()
                .map(|&(j, v)| (j, ratios.as_ref().map_or(v, |r| v * r[j as usize]))),
        );
    };
    if params.solver == Solver::Lbfgs {
        let mut x = Vec::new();
        let scaled_rows: Vec<Vec<(u32, f32)>> = rows
            .iter()
            .map(|&i| {
                scaled(&vectors[i], &mut x);
                x.clone()
            })
            .collect();
        let (mut w, bias) = fit_lbfgs(&scaled_rows, examples, rows, params, dim);
        if let Some(r) = &ratios {
            for (v, &r) in w.iter_mut().zip(r) {
                *v *= r;
            }
        }
        return split_model(params, bias, w, emb);
    }
    let mut w = vec![0.0f32; dim];
    let mut g2 = vec![0.0f32; dim];
    let mut sum = if params.average {
        vec![0.0f32; dim]
    } else {
        Vec::new()
    };
    let (mut bias, mut bias_g2, mut bias_sum) = (0.0f32, 0.0f32, 0.0f32);
    let (lr, l2, pw) = (params.learning_rate, params.l2, params.pos_weight);
    let mut order = rows.to_vec();
    let mut rng = SplitMix64::new(params.seed);
    let mut x = Vec::new();
    const EPS: f32 = 1e-6;
    for _ in 0..params.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            scaled(&vectors[i], &mut x);
            let e = &examples[i];
            let z = bias + x.iter().map(|&(j, v)| w[j as usize] * v).sum::<f32>();
            let p = sigmoid(z);
            let y = e.target;
            // d/dz of -(pw·y·ln p + (1-y)·ln(1-p)), times the example weight.
            let gz = e.weight * (p * (pw * y + 1.0 - y) - pw * y);
            for &(j, v) in &x {
                let j = j as usize;
                let g = gz * v + l2 * w[j];
                g2[j] += g * g;
                w[j] -= lr * g / (g2[j].sqrt() + EPS);
            }
            bias_g2 += gz * gz;
            bias -= lr * gz / (bias_g2.sqrt() + EPS);
        }
        if params.average {
            for (s, &v) in sum.iter_mut().zip(&w) {
                *s += v;
            }
            bias_sum += bias;
        }
    }
    if params.average && params.epochs > 0 {
        let n = params.epochs as f32;
        w = sum.into_iter().map(|s| s / n).collect();
        bias = bias_sum / n;
    }
    if let Some(r) = &ratios {
        for (v, &r) in w.iter_mut().zip(r) {
            *v *= r;
        }
    }
    split_model(params, bias, w, emb)
}

/// The model of fitted weights `w`: the hashed buckets' weights, and the
/// word-vector weights (those after them) turned into a word table.
fn split_model(
    params: &TrainParams,
    bias: f32,
    mut w: Vec<f32>,
    emb: Option<&Embeddings>,
) -> LinearModel {
    let on_vectors = w.split_off(params.spec.dim().min(w.len()));
    let words = match emb {
        Some(e) if !on_vectors.is_empty() => e.project(&on_vectors, params.embedding_scale),
        _ => WordTable::default(),
    };
    LinearModel {
        spec: params.spec,
        bias,
        weights: w,
        words,
    }
}

/// Full-batch L-BFGS on the mean weighted logistic loss of `rows` (their
/// feature vectors in `x`, in the same order) plus `l2 / 2 · |w|²`.
/// Returns the weights and the bias. Sums run in a fixed order in `f64`,
/// so the result depends on the input alone.
fn fit_lbfgs(
    x: &[Vec<(u32, f32)>],
    examples: &[Example],
    rows: &[usize],
    params: &TrainParams,
    dim: usize,
) -> (Vec<f32>, f32) {
    const MEMORY: usize = 10;
    let objective = |theta: &[f64], grad: &mut [f64]| {
        logistic_objective(x, examples, rows, params, dim, theta, grad)
    };
    let n = dim + 1;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut theta = vec![0.0f64; n];
    let mut grad = vec![0.0f64; n];
    let mut f = objective(&theta, &mut grad);
    let (mut s_hist, mut y_hist): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (Vec::new(), Vec::new());
    let mut dir = vec![0.0f64; n];
    let mut next = vec![0.0f64; n];
    let mut next_grad = vec![0.0f64; n];
    for iter in 0..params.epochs {
        // Two-loop recursion: dir = -H·grad.
        dir.copy_from_slice(&grad);
        let mut alphas = Vec::with_capacity(s_hist.len());
        for (s, y) in s_hist.iter().zip(&y_hist).rev() {
            let a = dot(s, &dir) / dot(y, s);
            for (d, yv) in dir.iter_mut().zip(y) {
                *d -= a * yv;
            }
            alphas.push(a);
        }
        if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
            let gamma = dot(s, y) / dot(y, y);
            dir.iter_mut().for_each(|d| *d *= gamma);
        }
        for ((s, y), a) in s_hist.iter().zip(&y_hist).zip(alphas.iter().rev()) {
            let b = dot(y, &dir) / dot(y, s);
            for (d, sv) in dir.iter_mut().zip(s) {
                *d += (a - b) * sv;
            }
        }
        dir.iter_mut().for_each(|d| *d = -*d);
        let mut slope = dot(&grad, &dir);
        if slope >= 0.0 {
            // Not a descent direction: restart from the gradient.
            s_hist.clear();
            y_hist.clear();
            for (d, g) in dir.iter_mut().zip(&grad) {
                *d = -g;
            }
            slope = dot(&grad, &dir);
        }
        // Backtracking line search (Armijo); the first step is scaled to the gradient.
        let mut step = if iter == 0 {
            1.0 / dot(&grad, &grad).sqrt().max(1e-12)
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..30 {
            for ((t, th), d) in next.iter_mut().zip(&theta).zip(&dir) {
                *t = th + step * d;
            }
            let fnext = objective(&next, &mut next_grad);
            if fnext <= f + 1e-4 * step * slope {
                accepted = Some(fnext);
                break;
            }
            step *= 0.5;
        }
        let Some(fnext) = accepted else { break };
        let s: Vec<f64> = next.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = next_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let improvement = f - fnext;
        std::mem::swap(&mut theta, &mut next);
        std::mem::swap(&mut grad, &mut next_grad);
        f = fnext;
        if dot(&s, &y) > 1e-12 {
            if s_hist.len() == MEMORY {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
        }
        if improvement <= 1e-10 * f.abs().max(1e-12) {
            break;
        }
    }
    let bias = theta[dim] as f32;
    theta.truncate(dim);
    (theta.into_iter().map(|v| v as f32).collect(), bias)
}

/// The objective L-BFGS minimises at `theta` (`dim` weights, then the
/// bias): the weighted logistic loss of `rows` divided by their total
/// weight, plus `l2 / 2 · |w|²`; writes its gradient into `grad`.
fn logistic_objective(
    x: &[Vec<(u32, f32)>],
    examples: &[Example],
    rows: &[usize],
    params: &TrainParams,
    dim: usize,
    theta: &[f64],
    grad: &mut [f64],
) -> f64 {
    let (l2, pw) = (f64::from(params.l2), f64::from(params.pos_weight));
    let total: f64 = rows
        .iter()
        .map(|&i| f64::from(examples[i].weight))
        .sum::<f64>()
        .max(1e-12);
    // softplus(z) = -ln(1 - sigmoid(z)), computed stably.
    let softplus = |t: f64| {
        if t > 0.0 {
            t + (-t).exp().ln_1p()
        } else {
            t.exp().ln_1p()
        }
    };
    grad.iter_mut().for_each(|g| *g = 0.0);
    let bias = theta[dim];
    let mut loss = 0.0f64;
    for (xi, &i) in x.iter().zip(rows) {
        let e = &examples[i];
        let z = bias
            + xi.iter()
                .map(|&(j, v)| theta[j as usize] * f64::from(v))
                .sum::<f64>();
        let (y, c) = (f64::from(e.target), f64::from(e.weight) / total);
        loss += c * (pw * y * softplus(-z) + (1.0 - y) * softplus(z));
        let p = 1.0 / (1.0 + (-z).exp());
        let gz = c * (p * (pw * y + 1.0 - y) - pw * y);
        for &(j, v) in xi {
            grad[j as usize] += gz * f64::from(v);
        }
        grad[dim] += gz;
    }
    let mut reg = 0.0;
    for j in 0..dim {
        reg += theta[j] * theta[j];
        grad[j] += l2 * theta[j];
    }
    loss + 0.5 * l2 * reg
}

/// The log-count ratio of every bucket between positive and negative
/// examples (NB-LR), smoothed by `alpha`.
fn nb_ratios(
    vectors: &[Vec<(u32, f32)>],
    examples: &[Example],
    rows: &[usize],
    dim: usize,
    alpha: f32,
) -> Vec<f32> {
    let (mut p, mut q) = (vec![alpha; dim], vec![alpha; dim]);
    for &i in rows {
        let (y, wt) = (examples[i].target, examples[i].weight);
        for &(j, v) in &vectors[i] {
            p[j as usize] += wt * y * v.abs();
            q[j as usize] += wt * (1.0 - y) * v.abs();
        }
    }
    let (sp, sq) = (
        p.iter().map(|&v| f64::from(v)).sum::<f64>(),
        q.iter().map(|&v| f64::from(v)).sum::<f64>(),
    );
    p.iter()
        .zip(&q)
        .map(|(&a, &b)| ((f64::from(a) / sp) / (f64::from(b) / sq)).ln() as f32)
        .collect()
}

/// Scores every listed example out-of-fold: rows are dealt into `k` folds by
/// their position in `rows`; each fold is scored by a model fitted on the others.
fn out_of_fold(
    vectors: &[Vec<(u32, f32)>],
    examples: &[Example],
    rows: &[usize],
    k: usize,
    params: &TrainParams,
    emb: Option<&Embeddings>,
) -> Vec<f32> {
    let mut scores = vec![0.0f32; rows.len()];
    for f in 0..k {
        let fit_rows: Vec<usize> = rows
            .iter()
            .enumerate()
            .filter(|(p, _)| p % k != f)
            .map(|(_, &i)| i)
            .collect();
        let m = fit(vectors, examples, &fit_rows, params, emb);
        for (p, &i) in rows.iter().enumerate().filter(|(p, _)| p % k == f) {
            scores[p] = m.predict_folded(&examples[i].folded);
        }
    }
    scores
}

/// `lo-hi` or a single number, for n-gram ranges on the command line.
pub fn parse_range(s: &str) -> Result<(u8, u8), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let p = |x: &str| {
        x.trim()
            .parse::<u8>()
            .map_err(|_| format!("expected N or LO-HI, got {s:?}"))
    };
    Ok((p(a)?, p(b)?))
}

/// A cap on the share of one group's texts that may be flagged: `VALUE=RATE`.
pub fn parse_limit(s: &str) -> Result<(String, f64), String> {
    let (v, r) = s
        .split_once('=')
        .ok_or_else(|| format!("expected GROUP_VALUE=RATE, got {s:?}"))?;
    let r: f64 = r
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: rate must be a number in [0, 1]"))?;
    if !(0.0..=1.0).contains(&r) {
        return Err(format!("{s:?}: rate must be in [0, 1]"));
    }
    Ok((v.trim().to_string(), r))
}

/// `aupd policy train`: fit a detector on the training parts of labelled files.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// A labelled file: `PATH,text=COL,label=RULE[,soft=EXPR][,skip=RULE][,strip=S|...][,link=WORD|...][,group=COL][,weight=W][,prior=P][,part=all]`; repeatable.
    #[arg(long = "data", required = true)]
    pub data: Vec<Source>,
    /// Where to write the model; the sidecar goes beside it with extension `.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// Hash bits (the model has 2^bits weights of 4 bytes).
    #[arg(long, default_value_t = 18)]
    pub bits: u8,
    /// Word n-gram range, `LO-HI` (`0-0` for none).
    #[arg(long, default_value = "1-2", value_parser = parse_range)]
    pub word_ngrams: (u8, u8),
    /// Character n-gram range inside padded words, `LO-HI` (`0-0` for none).
    #[arg(long, default_value = "2-4", value_parser = parse_range)]
    pub char_ngrams: (u8, u8),
    /// Passes over the data (AdaGrad), or the most iterations (L-BFGS).
    #[arg(long, default_value_t = 10)]
    pub epochs: u32,
    /// AdaGrad learning rate.
    #[arg(long, default_value_t = 0.2)]
    pub lr: f32,
    /// L2 penalty.
    #[arg(long, default_value_t = 1e-5)]
    pub l2: f32,
    /// Weight of positive examples in the loss.
    #[arg(long, default_value_t = 1.0)]
    pub pos_weight: f32,
    /// Seed of the shuffle.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Average the weights over epochs.
    #[arg(long)]
    pub average: bool,
    /// Naive-Bayes feature scaling with this smoothing (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub nb_alpha: f32,
    /// How the weights are fitted: `adagrad` (stochastic, `--epochs`
    /// passes) or `lbfgs` (full-batch, at most `--epochs` iterations, L2 on
    /// the mean loss).
    #[arg(long, default_value = "adagrad")]
    pub solver: Solver,
    /// Word vectors to read besides the n-grams (an `aupd policy
    /// embeddings` file): the model keeps one number per word of it.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// How much the mean word vector counts against the n-gram features.
    #[arg(long, default_value_t = 0.3)]
    pub embedding_scale: f32,
    /// Pick the threshold on the out-of-fold scores of these sources only (0-based `--data` index; default all).
    #[arg(long)]
    pub tune_on: Vec<usize>,
    /// Cap the out-of-fold flag rate of a group value while picking the threshold: `VALUE=RATE` (e.g. `1=0.04`).
    #[arg(long = "max-flag-rate", value_parser = parse_limit)]
    pub max_flag_rate: Vec<(String, f64)>,
    /// Also report K-fold cross-validation over every row of the first source (fold = row number mod K).
    #[arg(long)]
    pub cv: Option<usize>,
    /// Calibrate the model's probability (Platt scaling fitted on the
    /// out-of-fold scores of the tuning rows) and fold the calibration into
    /// the saved weights, so the model's output reads as a probability.
    #[arg(long)]
    pub calibrate: bool,
    /// Pick the threshold with the most out-of-fold recall whose precision is
    /// at least this (instead of the best F1); the best F1 if none reaches it.
    #[arg(long)]
    pub target_precision: Option<f64>,
    /// Pick the threshold with the best mean of the sources' own F1s (each
    /// tuning source counts alike) instead of the best pooled F1.
    #[arg(long)]
    pub per_source_f1: bool,
    /// Reviewers' labels from a platform (`aupd review export` output, or
    /// any CSV with `text,category,label[,weight]`); repeatable. Their rows
    /// join the training data and always count when picking the threshold.
    #[arg(long)]
    pub labels: Vec<PathBuf>,
    /// The category whose labels train this model (needed when a labels
    /// file holds several).
    #[arg(long)]
    pub label_category: Option<String>,
    /// Training weight of one reviewed label, against 1 for a row of the
    /// shared data (times the file's own `weight` column). The default was
    /// chosen by `aupd bench review-learning` (docs/scorer.md).
    #[arg(long, default_value_t = DEFAULT_LABEL_WEIGHT, value_parser = parse_label_weight)]
    pub label_weight: f32,
    /// Which reviewed items train: `train` (every item but the held-out
    /// fifth that `policy eval --labels` measures on) or `all`.
    #[arg(long, default_value = "train", value_parser = parse_label_part)]
    pub label_part: Part,
}

/// The default `--label-weight`.
pub const DEFAULT_LABEL_WEIGHT: f32 = 3.0;

/// A positive, finite label weight.
pub fn parse_label_weight(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(w) if w.is_finite() && w > 0.0 => Ok(w),
        _ => Err(format!("expected a positive number, got {s:?}")),
    }
}

/// `train` or `all`.
pub fn parse_label_part(s: &str) -> Result<Part, String> {
    match s {
        "train" => Ok(Part::Train),
        "all" => Ok(Part::All),
        _ => Err(format!("expected train or all, got {s:?}")),
    }
}

/// `aupd policy eval`: measure a saved model on labelled files.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long)]
    pub model: PathBuf,
    /// A labelled file, as for training; repeatable.
    #[arg(long = "data", required = true)]
    pub data: Vec<Source>,
    /// Which rows: `test` (the held-out 20%), `train` or `all`.
    #[arg(long, default_value = "test", value_parser = parse_part)]
    pub part: Part,
    /// Decision threshold; default: the one in the model's sidecar, else 0.5.
    #[arg(long)]
    pub threshold: Option<f32>,
}

/// `test`, `train` or `all`.
pub fn parse_part(s: &str) -> Result<Part, String> {
    match s {
        "test" => Ok(Part::Test),
        "train" => Ok(Part::Train),
        "all" => Ok(Part::All),
        _ => Err(format!("expected test, train or all, got {s:?}")),
    }
}

/// The sidecar path of a model: the model path with extension `.json`.
pub fn sidecar_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// What the sidecar records about one data file.
#[derive(Debug, Clone, Serialize)]
pub struct DataRecord {
    /// The source as given (path, columns, rules).
    pub source: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Data rows in the file.
    pub rows_in_file: usize,
    /// Rows left out by skip rules.
    pub rows_skipped: usize,
    /// Rows used for training.
    pub rows_used: usize,
    /// Positives among them.
    pub positives_used: usize,
    /// Which rows were used.
    pub split_rule: String,
}

/// What the sidecar records about one file of reviewers' labels.
#[derive(Debug, Clone, Serialize)]
pub struct LabelsRecord {
    /// The file as given.
    pub file: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The category whose labels were used.
    pub category: String,
    /// The tenants the labels came from (the file's `tenant` column).
    pub tenants: Vec<String>,
    /// Rows in the file.
    pub rows_in_file: usize,
    /// Labels used for training.
    pub labels_used: usize,
    /// Of those, `violates`.
    pub violating_used: usize,
    /// Rows of the category left out as `unsure`.
    pub unsure_left_out: usize,
    /// The training weight of one label.
    pub label_weight: f32,
    /// Which items were used.
    pub split_rule: String,
}

/// The sidecar written beside a model.
#[derive(Debug, Clone, Serialize)]
pub struct Sidecar {
    /// The aupd version that trained it.
    pub aupd_version: String,
    /// The command-line arguments of the training run (program name left out).
    pub command: Vec<String>,
    /// The model file's name.
    pub model_file: String,
    /// SHA-256 of the model file.
    pub model_sha256: String,
    /// The data used.
    pub data: Vec<DataRecord>,
    /// The word vectors read, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<EmbeddingsRecord>,
    /// Reviewers' labels used, when any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<LabelsRecord>,
    /// The training parameters (the seed included).
    pub params: TrainParams,
    /// The decision threshold to flag at.
    pub threshold: f32,
    /// How the threshold was chosen.
    pub threshold_rule: String,
    /// Out-of-fold figures on the training part at that threshold.
    pub validation: Report,
    /// The calibration folded into the weights, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// Cross-validated figures, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_validation: Option<CvRecord>,
}

/// The word vectors a model was trained with.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingsRecord {
    /// The file, as given.
    pub path: String,
    /// Its SHA-256.
    pub sha256: String,
    /// How many words it holds (the model keeps a number for each).
    pub words: usize,
    /// Numbers per vector.
    pub dims: usize,
}

/// Cross-validation figures over the first source.
#[derive(Debug, Clone, Serialize)]
pub struct CvRecord {
    /// Number of folds (fold = data-row number mod k).
    pub folds: usize,
    /// Pooled figures; each fold flagged at a threshold tuned on its own
    /// training folds (its scores are shifted so that threshold sits at 0.5,
    /// which is what the pooled average precision ranks).
    pub pooled: Report,
    /// F1 of each fold.
    pub fold_f1: Vec<f64>,
    /// Mean of the fold F1s.
    pub mean_f1: f64,
}

/// One loaded row, remembered with its source for tuning and grouping.
struct Item {
    source: usize,
    number: usize,
    label: bool,
    group: Option<String>,
    /// Whether the row belongs to the rows its source lets training use.
    train: bool,
}

/// How a model's threshold and calibration are chosen from its
/// out-of-fold scores.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tuning<'a> {
    limits: &'a [(String, f64)],
    target_precision: Option<f64>,
    per_source_f1: bool,
    calibrate: bool,
    /// Whether reviewers' labels with a violating item take part: the
    /// threshold then weighs them as one source (see `fit_with_threshold`).
    with_labels: bool,
}

/// A fitted model with its threshold and what it was chosen on.
struct Fitted {
    model: LinearModel,
    threshold: f32,
    report: Report,
    calibration: Option<Calibration>,
}

/// Platt scaling folded into a model: `p = sigmoid(a·z + b)` of its raw margin `z`.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// How it was fitted.
    pub method: String,
    /// Slope on the uncalibrated margin.
    pub a: f64,
    /// Offset.
    pub b: f64,
    /// Predicted against observed rate of the calibrated out-of-fold scores.
    pub reliability: Vec<Band>,
}

/// What a fit reads besides the rows: the parameters and the word vectors.
#[derive(Clone, Copy)]
struct Fitting<'a> {
    params: &'a TrainParams,
    emb: Option<&'a Embeddings>,
}

/// Fits a model on `rows` and picks its threshold (and, when asked, its
/// calibration) out-of-fold among them.
fn fit_with_threshold(
    vectors: &[Vec<(u32, f32)>],
    examples: &[Example],
    items: &[Item],
    rows: &[usize],
    tune: &dyn Fn(&Item) -> bool,
    tuning: Tuning<'_>,
    how: Fitting<'_>,
) -> Fitted {
    let Fitting { params, emb } = how;
    let oof = out_of_fold(vectors, examples, rows, 4, params, emb);
    let (mut s, mut l, mut g, mut src) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (p, &i) in rows.iter().enumerate() {
        if tune(&items[i]) {
            s.push(oof[p]);
            l.push(items[i].label);
            g.push(items[i].group.clone());
            src.push(items[i].source);
        }
    }
    let calibration = tuning.calibrate.then(|| {
        let logits: Vec<f32> = s.iter().map(|&p| logit(p)).collect();
        let (a, b) = platt(&logits, &l);
        for (score, &z) in s.iter_mut().zip(&logits) {
            *score = sigmoid((a * f64::from(z) + b) as f32);
        }
        Calibration {
            method: "Platt scaling on the 4-fold out-of-fold margins of the tuning rows".into(),
            a,
            b,
            reliability: reliability(&s, &l),
        }
    });
    // With reviewers' labels, the threshold weighs the platform they come
    // from as much as each shared source: it is the best mean of the
    // sources' own F1s, the labels counting as one source. A precision
    // target pooled over tens of thousands of shared rows would hardly move
    // for a few hundred labels, and what they teach would be lost at the
    // threshold (docs/scorer.md, "Training from reviewers' labels").
    let with_labels = tuning.with_labels;
    let at_precision = tuning
        .target_precision
        .filter(|_| !with_labels)
        .and_then(|p| threshold_at_precision(&s, &l, &g, tuning.limits, p));
    let threshold = match at_precision {
        Some((t, _)) => t,
        None if tuning.per_source_f1 || with_labels => {
            best_mean_f1_threshold(&s, &l, &src, &g, tuning.limits).0
        }
        None => best_f1_threshold(&s, &l, &g, tuning.limits).0,
    };
    let threshold = if threshold.is_finite() {
        threshold
    } else {
        1.0
    };
    let groups: Vec<String> = if g.iter().all(Option::is_some) {
        g.into_iter().flatten().collect()
    } else {
        Vec::new()
    };
    let report = Report::new(&s, &l, &groups, threshold);
    let mut model = fit(vectors, examples, rows, params, emb);
    if let Some(c) = &calibration {
        model.calibrate(c.a as f32, c.b as f32);
    }
    Fitted {
        model,
        threshold,
        report,
        calibration,
    }
}

/// The margin of a probability, kept finite.
fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// A model trained from a recipe, with what its sidecar records.
pub struct Trained {
    /// The model, calibrated when the recipe asked for it.
    pub model: LinearModel,
    /// The sidecar, less the model file's name and hash.
    pub sidecar: Sidecar,
}

/// Runs `aupd policy train`: trains, then writes the model and its sidecar.
pub fn run_train(args: &TrainArgs) -> anyhow::Result<()> {
    let Trained { model, mut sidecar } = train_recipe(args, true)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the model folder {}", dir.display()))?;
    }
    let bytes = model.to_bytes();
    std::fs::write(&args.out, &bytes)
        .with_context(|| format!("writing the model {}", args.out.display()))?;
    use sha2::Digest;
    sidecar.model_file = args
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    sidecar.model_sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let side = sidecar_path(&args.out);
    let json = serde_json::to_string_pretty(&sidecar).context("serialising the sidecar")?;
    std::fs::write(&side, json + "\n")
        .with_context(|| format!("writing the sidecar {}", side.display()))?;
    eprintln!(
        "wrote {} ({} bytes) and {}; threshold {:.4}",
        args.out.display(),
        bytes.len(),
        side.display(),
        sidecar.threshold
    );
    Ok(())
}

/// Trains a model as `args` describe, without writing anything; `verbose`
/// prints what each source gave and the out-of-fold figures.
pub fn train_recipe(args: &TrainArgs, verbose: bool) -> anyhow::Result<Trained> {
    let params = TrainParams {
        spec: FeatureSpec {
            bits: args.bits,
            word_ngrams: args.word_ngrams,
            char_ngrams: args.char_ngrams,
        },
        epochs: args.epochs,
        learning_rate: args.lr,
        l2: args.l2,
        pos_weight: args.pos_weight,
        seed: args.seed,
        average: args.average,
        nb_alpha: args.nb_alpha,
        solver: args.solver,
        embedding_scale: if args.embeddings.is_some() {
            args.embedding_scale
        } else {
            0.0
        },
    };
    params
        .spec
        .validate()
        .map_err(|e| anyhow::anyhow!("feature spec: {e}"))?;
    if !(args.embedding_scale.is_finite() && args.embedding_scale > 0.0) {
        bail!(
            "--embedding-scale {}: must be a number above 0",
            args.embedding_scale
        );
    }
    let emb = args
        .embeddings
        .as_deref()
        .map(Embeddings::load)
        .transpose()?;
    let emb = emb.as_ref();
    if let Some(&bad) = args.tune_on.iter().find(|&&i| i >= args.data.len()) {
        bail!(
            "--tune-on {bad}: there are only {} --data sources",
            args.data.len()
        );
    }
    if args.cv.is_some_and(|k| k < 2) {
        bail!("--cv needs at least 2 folds");
    }
    let (mut examples, mut items, mut records) = (Vec::new(), Vec::new(), Vec::new());
    for (s, source) in args.data.iter().enumerate() {
        let loaded = read_source(source)?;
        // `--cv` folds every row of the first source, its held-out part
        // too, but only reports: the model is fitted on the training part
        // as without it, so that a later held-out figure stays held out.
        let part = if args.cv.is_some() && s == 0 {
            Part::All
        } else {
            Part::Train
        };
        let train_part = source.train_part;
        let (mut used, mut pos) = (0, 0);
        let (pos_weight, neg_weight) = class_weights(source, &loaded.rows, train_part);
        for row in loaded.rows {
            let train = train_part.contains(row.number);
            if !train && !part.contains(row.number) {
                continue;
            }
            if train {
                used += 1;
                pos += usize::from(row.label);
            }
            examples.push(Example {
                folded: normalize(&row.text).text().to_string(),
                target: row.target,
                weight: if row.label { pos_weight } else { neg_weight },
            });
            items.push(Item {
                source: s,
                number: row.number,
                label: row.label,
                group: row.group,
                train,
            });
        }
        if verbose {
            eprintln!(
                "{}: {} rows, {} skipped, {used} for training ({pos} positive)",
                source.path.display(),
                loaded.total,
                loaded.skipped
            );
        }
        records.push(DataRecord {
            source: source.to_string(),
            sha256: loaded.sha256,
            rows_in_file: loaded.total,
            rows_skipped: loaded.skipped,
            rows_used: used,
            positives_used: pos,
            split_rule: match train_part {
                Part::All => "every row (the file's held-out part is another file)".into(),
                _ => {
                    "training part: 0-based data-row number (header not counted) not divisible by 5"
                        .into()
                }
            },
        });
    }
    let labels = add_labels(args, &mut examples, &mut items, verbose)?;
    // One answer, used for the threshold and written in the sidecar.
    let with_labels = labels.iter().any(|r| r.violating_used > 0);
    let vectors = feature_vectors(&examples, &params, emb);
    // Reviewed labels come from the platform the model is for: they always
    // take part in picking the threshold.
    let tune = |it: &Item| {
        args.tune_on.is_empty() || args.tune_on.contains(&it.source) || it.source >= args.data.len()
    };

    let tuning = Tuning {
        limits: &args.max_flag_rate,
        target_precision: args.target_precision,
        per_source_f1: args.per_source_f1,
        calibrate: args.calibrate,
        with_labels,
    };
    let how = Fitting {
        params: &params,
        emb,
    };
    let cross_validation = args
        .cv
        .map(|k| cross_validate(&vectors, &examples, &items, k, &tune, tuning, how));
    let train_rows: Vec<usize> = (0..items.len()).filter(|&i| items[i].train).collect();
    let fitted = fit_with_threshold(&vectors, &examples, &items, &train_rows, &tune, tuning, how);
    let (threshold, validation) = (fitted.threshold, fitted.report);
    if verbose {
        eprintln!("out-of-fold on the training part: {validation}");
        if let Some(c) = &fitted.calibration {
            eprintln!(
                "calibration (Platt, a {:.3} b {:.3}), out-of-fold:",
                c.a, c.b
            );
            for line in reliability_lines(&c.reliability) {
                eprintln!("  {line}");
            }
        }
    }

    let sidecar = Sidecar {
        aupd_version: env!("CARGO_PKG_VERSION").to_string(),
        command: std::env::args().skip(1).collect(),
        model_file: String::new(),
        model_sha256: String::new(),
        data: records,
        embeddings: args
            .embeddings
            .as_ref()
            .zip(emb)
            .map(|(p, e)| EmbeddingsRecord {
                path: p.display().to_string(),
                sha256: e.sha256.clone(),
                words: e.len(),
                dims: e.dims(),
            }),
        labels,
        params,
        threshold,
        threshold_rule: format!(
            "{} over 4-fold out-of-fold {}scores of the training part{}{}",
            match (args.target_precision, args.per_source_f1, with_labels) {
                (_, _, true) => {
                    "best mean of the tuning sources' own F1s, reviewers' labels counting as one source"
                        .to_string()
                }
                (Some(p), _, _) => format!("most recall at precision >= {p} (else best F1)"),
                (None, true, _) => "best mean of the tuning sources' own F1s".to_string(),
                (None, false, _) => "best F1".to_string(),
            },
            if args.calibrate { "calibrated " } else { "" },
            if args.tune_on.is_empty() {
                String::new()
            } else {
                format!(" of sources {:?}", args.tune_on)
            },
            if args.max_flag_rate.is_empty() {
                String::new()
            } else {
                format!(", with group flag rates capped at {:?}", args.max_flag_rate)
            }
        ),
        validation,
        calibration: fitted.calibration,
        cross_validation,
    };
    Ok(Trained {
        model: fitted.model,
        sidecar,
    })
}

/// Appends the reviewed labels of `args.labels` to the training rows, as
/// sources numbered after the data files, and says what was used.
fn add_labels(
    args: &TrainArgs,
    examples: &mut Vec<Example>,
    items: &mut Vec<Item>,
    verbose: bool,
) -> anyhow::Result<Vec<LabelsRecord>> {
    let mut records = Vec::new();
    for (f, path) in args.labels.iter().enumerate() {
        let file = read_labels(path)?;
        let category = file.category(args.label_category.as_deref())?;
        let (mut used, mut violating, mut unsure) = (0, 0, 0);
        for row in file.rows.iter().filter(|r| r.category == category) {
            let label = match row.answer {
                Answer::Unsure => {
                    unsure += 1;
                    continue;
                }
                Answer::Violates => true,
                Answer::DoesNot => false,
            };
            if !in_part(args.label_part, row.item) {
                continue;
            }
            used += 1;
            violating += usize::from(label);
            examples.push(Example {
                folded: normalize(&row.text).text().to_string(),
                target: f32::from(u8::from(label)),
                weight: args.label_weight * row.weight,
            });
            items.push(Item {
                source: args.data.len() + f,
                number: row.item,
                label,
                group: None,
                train: true,
            });
        }
        if used == 0 {
            bail!(
                "{}: no usable labels for category {category:?} (unsure and held-out items are left out)",
                path.display()
            );
        }
        if verbose {
            eprintln!(
                "{}: {} rows, {used} labels of {category} for training ({violating} violating, {unsure} unsure left out), weight {}",
                path.display(),
                file.rows.len(),
                args.label_weight
            );
        }
        records.push(LabelsRecord {
            file: path.display().to_string(),
            sha256: file.sha256.clone(),
            category,
            tenants: file.tenants().into_iter().collect(),
            rows_in_file: file.rows.len(),
            labels_used: used,
            violating_used: violating,
            unsure_left_out: unsure,
            label_weight: args.label_weight,
            split_rule: match args.label_part {
                Part::Train => "items not held out: 0-based item number not divisible by 5".into(),
                _ => "every item".into(),
            },
        });
    }
    Ok(records)
}

/// The training weights of a source's positive and negative rows: the
/// source's `weight`, and with a `prior` the re-weighting that gives its
/// positives that share of the source's total weight.
pub(crate) fn class_weights(source: &Source, rows: &[Row], part: Part) -> (f32, f32) {
    let Some(prior) = source.prior else {
        return (source.weight, source.weight);
    };
    let used = rows.iter().filter(|r| part.contains(r.number));
    let (n, pos) = used.fold((0usize, 0usize), |(n, p), r| {
        (n + 1, p + usize::from(r.label))
    });
    if pos == 0 || pos == n {
        return (source.weight, source.weight);
    }
    let (n, pos) = (n as f32, pos as f32);
    (
        source.weight * prior * n / pos,
        source.weight * (1.0 - prior) * n / (n - pos),
    )
}

/// K-fold cross-validation over the rows of source 0; other sources' training
/// parts are always in the fit.
fn cross_validate(
    vectors: &[Vec<(u32, f32)>],
    examples: &[Example],
    items: &[Item],
    k: usize,
    tune: &dyn Fn(&Item) -> bool,
    tuning: Tuning<'_>,
    how: Fitting<'_>,
) -> CvRecord {
    let (mut scores, mut labels, mut thresholds) = (Vec::new(), Vec::new(), Vec::new());
    let mut fold_f1 = Vec::new();
    for f in 0..k {
        let in_fold = |it: &Item| it.source == 0 && fold_of(it.number, k) == f;
        let fit_rows: Vec<usize> = (0..items.len()).filter(|&i| !in_fold(&items[i])).collect();
        let Fitted {
            model: m,
            threshold: t,
            ..
        } = fit_with_threshold(vectors, examples, items, &fit_rows, tune, tuning, how);
        let (mut s, mut l) = (Vec::new(), Vec::new());
        for i in (0..items.len()).filter(|&i| in_fold(&items[i])) {
            s.push(m.predict_folded(&examples[i].folded));
            l.push(items[i].label);
        }
        let r = Report::new(&s, &l, &[], t);
        eprintln!("cv fold {f}: {r}");
        fold_f1.push(r.f1);
        // Pool decisions: shift each fold's scores so its threshold sits at 0.5.
        scores.extend(s.iter().map(|&x| x - t + 0.5));
        labels.extend(l);
        thresholds.push(t);
    }
    let pooled = Report::new(&scores, &labels, &[], 0.5);
    let mean_f1 = fold_f1.iter().sum::<f64>() / k as f64;
    eprintln!("cv {k} folds, pooled: {pooled}; mean fold F1 {mean_f1:.3}");
    CvRecord {
        folds: k,
        pooled,
        fold_f1,
        mean_f1,
    }
}

/// Runs `aupd policy eval`: prints figures per source on the chosen part.
pub fn run_eval_model(args: &EvalArgs) -> anyhow::Result<()> {
    let model = LinearModel::load(&args.model)?;
    let threshold = match args.threshold {
        Some(t) => t,
        None => sidecar_threshold(&args.model)?.unwrap_or(0.5),
    };
    for source in &args.data {
        let loaded = read_source(source)?;
        let (mut scores, mut labels, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        let started = std::time::Instant::now();
        let mut bytes = 0usize;
        for row in loaded.rows.iter().filter(|r| args.part.contains(r.number)) {
            bytes += row.text.len();
            scores.push(model.predict(&normalize(&row.text)));
            labels.push(row.label);
            if let Some(g) = &row.group {
                groups.push(g.clone());
            }
        }
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let report = Report::new(&scores, &labels, &groups, threshold);
        println!("{}\n  {report}", source);
        let texts = scores.len() as f64;
        println!(
            "  folded and scored {} texts ({bytes} bytes) in {secs:.3}s: {:.0} texts/s, {:.1} MB/s",
            scores.len(),
            texts / secs,
            bytes as f64 / secs / 1e6
        );
        // The model's own share of the time: features and dot product only.
        let folded: Vec<String> = loaded
            .rows
            .iter()
            .filter(|r| args.part.contains(r.number))
            .map(|r| normalize(&r.text).text().to_string())
            .collect();
        let started = std::time::Instant::now();
        let mut sum = 0.0f32;
        for f in &folded {
            sum += model.predict_folded(f);
        }
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        println!(
            "  model only (features + dot, pre-folded): {:.3} us/text, {:.1} MB/s of original text (checksum {sum:.3})",
            secs / texts.max(1.0) * 1e6,
            bytes as f64 / secs / 1e6
        );
    }
    Ok(())
}

/// A model's sidecar, parsed, and where it is.
pub fn read_sidecar(model: &Path) -> anyhow::Result<(PathBuf, serde_json::Value)> {
    let path = sidecar_path(model);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the sidecar {}", path.display()))?;
    let v = serde_json::from_str(&text)
        .with_context(|| format!("parsing the sidecar {}", path.display()))?;
    Ok((path, v))
}

/// The threshold recorded in a model's sidecar, if the sidecar exists.
pub fn sidecar_threshold(model: &Path) -> anyhow::Result<Option<f32>> {
    let path = sidecar_path(model);
    if !path.exists() {
        return Ok(None);
    }
    let (_, v) = read_sidecar(model)?;
    Ok(v.get("threshold")
        .and_then(|t| t.as_f64())
        .map(|t| t as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(n: usize) -> Vec<Example> {
        let mut rng = SplitMix64::new(7);
        let good = ["lovely", "weather", "garden", "coffee", "friends", "music"];
        let bad = ["vermin", "exterminate", "subhuman", "filth"];
        (0..n)
            .map(|i| {
                let positive = i % 3 == 0;
                let mut words: Vec<&str> = (0..6)
                    .map(|_| good[(rng.next_u64() % good.len() as u64) as usize])
                    .collect();
                if positive {
                    words.push(bad[(rng.next_u64() % bad.len() as u64) as usize]);
                }
                Example {
                    folded: normalize(&words.join(" ")).text().to_string(),
                    target: if positive { 1.0 } else { 0.0 },
                    weight: 1.0,
                }
            })
            .collect()
    }

    #[test]
    fn word_vectors_give_a_weight_to_words_training_never_saw() {
        // "cockroaches" never occurs in training; its vector lies near
        // those of the hateful words, far from the ordinary ones.
        let near_bad = [0.9f32, 0.1, 0.0];
        let vectors: Vec<(&str, [f32; 3])> = vec![
            ("lovely", [0.0, 1.0, 0.1]),
            ("weather", [0.1, 0.9, 0.0]),
            ("garden", [0.0, 1.0, 0.0]),
            ("coffee", [0.1, 1.0, 0.1]),
            ("friends", [0.0, 0.9, 0.2]),
            ("music", [0.1, 0.8, 0.0]),
            ("vermin", [1.0, 0.0, 0.0]),
            ("exterminate", [0.9, 0.0, 0.1]),
            ("subhuman", [1.0, 0.1, 0.0]),
            ("filth", [0.8, 0.0, 0.0]),
            ("cockroaches", near_bad),
            ("tulips", [0.0, 1.0, 0.0]),
        ];
        let emb = Embeddings::from_words(3, vectors.iter().map(|(w, v)| (*w, v.as_slice())), 100);
        let ex = synthetic(300);
        for solver in [Solver::Adagrad, Solver::Lbfgs] {
            let p = TrainParams {
                spec: FeatureSpec {
                    bits: 12,
                    ..FeatureSpec::default()
                },
                epochs: 50,
                l2: 1e-3,
                solver,
                // One word of five carries the signal: the mean vector
                // needs room to speak.
                embedding_scale: 5.0,
                ..TrainParams::default()
            };
            let with = train(&ex, &p, Some(&emb));
            assert_eq!(with.words.len(), emb.len(), "{solver:?}");
            assert_eq!(
                with.to_bytes(),
                train(&ex, &p, Some(&emb)).to_bytes(),
                "{solver:?}: deterministic"
            );
            let without = train(
                &ex,
                &TrainParams {
                    embedding_scale: 0.0,
                    ..p
                },
                None,
            );
            assert!(without.words.is_empty());
            let unseen = normalize("lovely coffee garden friends cockroaches");
            let kind = normalize("lovely coffee garden friends tulips");
            let (a, b) = (with.predict(&unseen), with.predict(&kind));
            let (c, d) = (without.predict(&unseen), without.predict(&kind));
            assert!(
                a - b > (c - d).abs() + 0.1,
                "{solver:?}: with vectors {a} vs {b}, without {c} vs {d}"
            );
        }
    }

    #[test]
    fn training_twice_gives_byte_identical_models() {
        let ex = synthetic(300);
        let p = TrainParams {
            spec: FeatureSpec {
                bits: 14,
                ..FeatureSpec::default()
            },
            epochs: 3,
            ..TrainParams::default()
        };
        let a = train(&ex, &p, None).to_bytes();
        let b = train(&ex, &p, None).to_bytes();
        assert_eq!(a, b);
        let other = train(&ex, &TrainParams { seed: 1, ..p }, None).to_bytes();
        assert_ne!(a, other, "the seed must matter");
    }

    #[test]
    fn training_learns_a_separable_signal() {
        let ex = synthetic(300);
        let m = train(&ex, &TrainParams::default(), None);
        let bad = m.predict(&normalize("lovely coffee garden friends subhuman"));
        let good = m.predict(&normalize("lovely coffee garden friends"));
        assert!(bad > 0.7 && good < 0.3, "{bad} {good}");
    }

    #[test]
    fn lbfgs_finds_the_minimum_of_its_objective_and_is_deterministic() {
        let ex = synthetic(300);
        let p = TrainParams {
            spec: FeatureSpec {
                bits: 12,
                ..FeatureSpec::default()
            },
            epochs: 300,
            l2: 1e-3,
            solver: Solver::Lbfgs,
            ..TrainParams::default()
        };
        let m = train(&ex, &p, None);
        assert_eq!(m.to_bytes(), train(&ex, &p, None).to_bytes());
        let bad = m.predict(&normalize("lovely coffee garden friends subhuman"));
        let good = m.predict(&normalize("lovely coffee garden friends"));
        assert!(bad > 0.7 && good < 0.3, "{bad} {good}");
        // At the minimum the gradient vanishes; the starting point's does not.
        let mut buf = Vec::new();
        let x: Vec<Vec<(u32, f32)>> = ex
            .iter()
            .map(|e| {
                p.spec.vector(&e.folded, &mut buf);
                buf.clone()
            })
            .collect();
        let rows: Vec<usize> = (0..ex.len()).collect();
        let dim = p.spec.dim();
        let mut theta: Vec<f64> = m.weights.iter().map(|&w| f64::from(w)).collect();
        theta.push(f64::from(m.bias));
        let mut grad = vec![0.0; dim + 1];
        let at_min = logistic_objective(&x, &ex, &rows, &p, dim, &theta, &mut grad);
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        let mut start_grad = vec![0.0; dim + 1];
        let at_zero = logistic_objective(
            &x,
            &ex,
            &rows,
            &p,
            dim,
            &vec![0.0; dim + 1],
            &mut start_grad,
        );
        let start_norm = start_grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        assert!(
            norm < 1e-3 * start_norm,
            "gradient {norm} against {start_norm} at the start"
        );
        assert!(at_min < at_zero);
        // AdaGrad on the same data ends higher on this objective.
        let ada = train(
            &ex,
            &TrainParams {
                solver: Solver::Adagrad,
                epochs: 10,
                ..p
            },
            None,
        );
        let mut theta: Vec<f64> = ada.weights.iter().map(|&w| f64::from(w)).collect();
        theta.push(f64::from(ada.bias));
        let at_ada = logistic_objective(&x, &ex, &rows, &p, dim, &theta, &mut grad);
        assert!(at_min <= at_ada, "{at_min} > {at_ada}");
    }

    #[test]
    fn params_recorded_before_the_solver_setting_read_as_adagrad() {
        let mut json = serde_json::to_value(TrainParams {
            solver: Solver::Lbfgs,
            ..TrainParams::default()
        })
        .unwrap();
        assert_eq!(json["solver"], "lbfgs");
        json.as_object_mut().unwrap().remove("solver");
        let old: TrainParams = serde_json::from_value(json).unwrap();
        assert_eq!(old.solver, Solver::Adagrad);
        assert_eq!("lbfgs".parse::<Solver>(), Ok(Solver::Lbfgs));
        assert!("newton".parse::<Solver>().is_err());
    }

    #[test]
    fn shuffle_is_fixed_by_the_seed() {
        let mut v: Vec<u32> = (0..8).collect();
        SplitMix64::new(42).shuffle(&mut v);
        let mut w: Vec<u32> = (0..8).collect();
        SplitMix64::new(42).shuffle(&mut w);
        assert_eq!(v, w);
        assert_ne!(v, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn a_prior_gives_positives_that_share_of_the_source_weight() {
        let source: Source = "x.csv,text=t,label=y=1,weight=0.5,prior=0.2"
            .parse()
            .unwrap();
        let rows: Vec<Row> = (0..10)
            .map(|number| Row {
                number,
                text: String::new(),
                label: number % 5 == 1,
                target: 0.0,
                group: None,
            })
            .collect();
        // Rows 1 and 6 are positive: 2 of 10, weighted to carry 20% of 0.5 * 10.
        let (pos, neg) = class_weights(&source, &rows, Part::All);
        assert!((2.0 * pos - 0.2 * 0.5 * 10.0).abs() < 1e-5);
        assert!((8.0 * neg - 0.8 * 0.5 * 10.0).abs() < 1e-5);
        let plain: Source = "x.csv,text=t,label=y=1,weight=0.5".parse().unwrap();
        assert_eq!(class_weights(&plain, &rows, Part::All), (0.5, 0.5));
        assert!("x.csv,text=t,label=y=1,prior=1".parse::<Source>().is_err());
    }

    #[test]
    fn ranges_and_limits_parse() {
        assert_eq!(parse_range("2-4"), Ok((2, 4)));
        assert_eq!(parse_range("1"), Ok((1, 1)));
        assert!(parse_range("a-b").is_err());
        assert_eq!(parse_limit("1=0.04"), Ok(("1".to_string(), 0.04)));
        assert!(parse_limit("1=4").is_err());
    }

    /// Small, fast training arguments for one data source.
    fn small_args(data: String, out: PathBuf) -> TrainArgs {
        TrainArgs {
            data: vec![data.parse().unwrap()],
            out,
            bits: 12,
            word_ngrams: (1, 1),
            char_ngrams: (3, 3),
            epochs: 2,
            lr: 0.2,
            l2: 1e-5,
            pos_weight: 1.0,
            seed: 1,
            average: true,
            nb_alpha: 0.0,
            solver: Solver::Adagrad,
            embeddings: None,
            embedding_scale: 0.3,
            tune_on: vec![],
            max_flag_rate: vec![],
            cv: None,
            calibrate: false,
            target_precision: None,
            per_source_f1: false,
            labels: vec![],
            label_category: None,
            label_weight: DEFAULT_LABEL_WEIGHT,
            label_part: Part::Train,
        }
    }

    /// [`synthetic`]'s 200 examples as a `;`-separated file `d.csv` in `dir`.
    fn synthetic_csv(dir: &Path) -> PathBuf {
        let csv = dir.join("d.csv");
        let mut text = String::from("text;label\n");
        for e in synthetic(200) {
            text.push_str(&format!("{};{}\n", e.folded, e.target));
        }
        std::fs::write(&csv, text).unwrap();
        csv
    }

    /// `--cv` reports cross-validation over every row of the first source;
    /// the model and its threshold are fitted on the training part, exactly
    /// as without it (it once fitted them on the held-out rows too).
    #[test]
    fn cross_validation_reports_without_changing_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let csv = synthetic_csv(dir.path());
        let data = format!("{},text=text,label=label=1", csv.display());
        let plain = dir.path().join("plain.model");
        run_train(&small_args(data.clone(), plain.clone())).unwrap();
        let with_cv = dir.path().join("cv.model");
        run_train(&TrainArgs {
            cv: Some(4),
            ..small_args(data, with_cv.clone())
        })
        .unwrap();
        assert_eq!(
            std::fs::read(&plain).unwrap(),
            std::fs::read(&with_cv).unwrap()
        );
        let side = |p: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(p)).unwrap()).unwrap()
        };
        let (a, b) = (side("plain.json"), side("cv.json"));
        assert_eq!(a["threshold"], b["threshold"]);
        assert_eq!(a["data"][0]["rows_used"], b["data"][0]["rows_used"]);
        assert_eq!(
            b["data"][0]["rows_used"], 160,
            "the training part of 200 rows"
        );
        assert_eq!(b["cross_validation"]["folds"], 4);
    }

    #[test]
    fn train_command_writes_model_and_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let csv = synthetic_csv(dir.path());
        let out = dir.path().join("models/m.model");
        let args = TrainArgs {
            nb_alpha: 1.0,
            ..small_args(
                format!("{},text=text,label=label=1", csv.display()),
                out.clone(),
            )
        };
        run_train(&args).unwrap();
        let m = LinearModel::load(&out).unwrap();
        assert_eq!(m.spec.bits, 12);
        let side: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("models/m.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(side["data"][0]["rows_used"], 160);
        assert!(side["threshold"].as_f64().unwrap() > 0.0);
        assert_eq!(
            sidecar_threshold(&out).unwrap(),
            side["threshold"].as_f64().map(|t| t as f32)
        );
    }

    /// Writes a reviewers' export in `dir` where a platform's own word for
    /// abuse, which the shared data never saw, marks the violating items;
    /// returns its path and text.
    fn platform_labels(dir: &Path) -> (PathBuf, String) {
        let labels = dir.join("labels.csv");
        let mut text = String::from("sample_id,tenant,category,label,origin,text\n");
        for i in 0..50 {
            let (label, words) = match i % 5 {
                0 | 1 => ("violates", "lovely garden grobnik"),
                2 | 3 => ("does_not", "lovely garden coffee"),
                _ => ("unsure", "garden grobnik maybe"),
            };
            text.push_str(&format!(
                "s{i},parlor,harassment,{label},queue,{words} {i}\n"
            ));
            text.push_str(&format!(
                "s{i},parlor,violence,does_not,queue,{words} {i}\n"
            ));
        }
        std::fs::write(&labels, &text).unwrap();
        (labels, text)
    }

    #[test]
    fn with_reviewers_labels_the_threshold_weighs_the_platform_as_one_source() {
        let dir = tempfile::tempdir().unwrap();
        let csv = synthetic_csv(dir.path());
        let (labels, _) = platform_labels(dir.path());
        let base = small_args(
            format!("{},text=text,label=label=1", csv.display()),
            dir.path().join("m.model"),
        );
        let at_precision = TrainArgs {
            target_precision: Some(0.95),
            ..base.clone()
        };
        let per_source = TrainArgs {
            per_source_f1: true,
            ..base.clone()
        };
        let with = |a: &TrainArgs| TrainArgs {
            labels: vec![labels.clone()],
            label_category: Some("harassment".into()),
            ..a.clone()
        };
        let threshold = |a: &TrainArgs| train_recipe(a, false).unwrap().sidecar.threshold;
        // Without labels the two rules pick different thresholds here...
        assert_ne!(threshold(&at_precision), threshold(&per_source));
        // ...with them, the precision target gives way to the mean of the
        // sources' own F1s, the platform counting as one source.
        assert_eq!(
            threshold(&with(&at_precision)),
            threshold(&with(&per_source))
        );
        let rule = train_recipe(&with(&at_precision), false)
            .unwrap()
            .sidecar
            .threshold_rule;
        assert!(
            rule.contains("reviewers' labels counting as one source"),
            "{rule}"
        );
    }

    #[test]
    fn reviewed_labels_join_training_and_are_recorded_in_the_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let csv = synthetic_csv(dir.path());
        let (labels, text) = platform_labels(dir.path());
        let base = small_args(
            format!("{},text=text,label=label=1", csv.display()),
            dir.path().join("m.model"),
        );
        let with = TrainArgs {
            labels: vec![labels.clone()],
            label_category: Some("harassment".into()),
            label_weight: 5.0,
            ..base.clone()
        };
        let before = train_recipe(&base, false).unwrap();
        let after = train_recipe(&with, false).unwrap();
        let word = normalize("lovely garden grobnik");
        assert!(
            after.model.predict(&word) > before.model.predict(&word) + 0.2,
            "{} {}",
            after.model.predict(&word),
            before.model.predict(&word)
        );
        let r = &after.sidecar.labels[0];
        // 50 items: i % 5 == 0 held out (10), == 4 unsure (10), the
        // other 30 used, of which i % 5 == 1 violate (10).
        assert_eq!(
            (r.labels_used, r.violating_used, r.unsure_left_out),
            (30, 10, 10)
        );
        assert_eq!(r.category, "harassment");
        assert_eq!(r.tenants, ["parlor"]);
        assert_eq!(r.label_weight, 5.0);
        use sha2::Digest;
        assert_eq!(r.sha256, hex::encode(sha2::Sha256::digest(text.as_bytes())));
        // Same input, same bytes.
        let again = train_recipe(&with, false).unwrap();
        assert_eq!(after.model.to_bytes(), again.model.to_bytes());
        // Every item, when asked.
        let all = train_recipe(
            &TrainArgs {
                label_part: Part::All,
                ..with.clone()
            },
            false,
        )
        .unwrap();
        assert_eq!(all.sidecar.labels[0].labels_used, 40);
        // A file with several categories needs one named.
        let e = train_recipe(
            &TrainArgs {
                label_category: None,
                ..with
            },
            false,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("say which with --label-category"), "{e}");
        // The sidecar of a model without labels is as before.
        let json = serde_json::to_value(&before.sidecar).unwrap();
        assert!(json.get("labels").is_none());
    }

    #[test]
    fn a_calibrated_recipe_uses_every_row_of_a_whole_file_source_and_records_its_calibration() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.tsv");
        let mut text = String::from("text\tlabel\n");
        for e in synthetic(200) {
            text.push_str(&format!("{}\t{}\n", e.folded, e.target));
        }
        std::fs::write(&csv, text).unwrap();
        let args = TrainArgs {
            calibrate: true,
            target_precision: Some(0.9),
            ..small_args(
                format!("{},text=text,label=label=1,part=all", csv.display()),
                dir.path().join("m.model"),
            )
        };
        let trained = train_recipe(&args, false).unwrap();
        // A tab-separated file, every row used: its held-out part is elsewhere.
        assert_eq!(trained.sidecar.data[0].rows_used, 200);
        let c = trained.sidecar.calibration.as_ref().unwrap();
        assert!(c.a.is_finite() && c.a > 0.0, "slope {}", c.a);
        assert_eq!(c.reliability.iter().map(|b| b.texts).sum::<u64>(), 200);
        assert!(trained.sidecar.threshold_rule.contains("precision >= 0.9"));
        assert!(trained.sidecar.validation.precision >= 0.9);
        // The same recipe gives the same model, byte for byte.
        let again = train_recipe(&args, false).unwrap();
        assert_eq!(trained.model.to_bytes(), again.model.to_bytes());
    }
}
