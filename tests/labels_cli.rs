//! Reviewers' labels on the command line: `aupd policy train --labels` and
//! `aupd policy eval --labels`, run as a user would, bad input included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::run_aupd;
use std::path::Path;
use std::process::Output;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A small shared-data file and the arguments that train on it quickly.
fn train_args(dir: &Path, labels: &Path, extra: &[&str]) -> Vec<String> {
    let data = dir.join("data.csv");
    let mut text = String::from("text,label\n");
    for i in 0..40 {
        let words = if i % 2 == 0 {
            "you vile thing"
        } else {
            "nice day"
        };
        text.push_str(&format!("{words} {i},{}\n", 1 - i % 2));
    }
    std::fs::write(&data, text).unwrap();
    let mut args: Vec<String> = [
        "policy",
        "train",
        "--bits",
        "10",
        "--epochs",
        "1",
        "--word-ngrams",
        "1-1",
        "--char-ngrams",
        "0-0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--data".into());
    args.push(format!("{},text=text,label=label=1", data.display()));
    args.push("--out".into());
    args.push(dir.join("m.model").display().to_string());
    args.push("--labels".into());
    args.push(labels.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> Output {
    run_aupd(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn training_on_a_missing_labels_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.csv");
    let out = run(&train_args(dir.path(), &missing, &[]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("reading labels file {}", missing.display())),
        "{err}"
    );
    assert!(!dir.path().join("m.model").exists(), "no model was written");
}

#[test]
fn a_bad_label_value_is_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    std::fs::write(
        &labels,
        "sample_id,tenant,category,label,origin,text\n\
         s1,parlor,harassment,violates,queue,you vile thing\n\
         s2,parlor,harassment,yes,queue,nice day\n",
    )
    .unwrap();
    let out = run(&train_args(dir.path(), &labels, &[]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}, line 3: label \"yes\" is not one of violates, does_not, unsure",
            labels.display()
        )),
        "{err}"
    );
    assert!(!dir.path().join("m.model").exists(), "no model was written");
}

#[test]
fn a_label_weight_that_is_not_positive_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, "text,category,label\na,harassment,violates\n").unwrap();
    let out = run(&train_args(dir.path(), &labels, &["--label-weight", "0"]));
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let err = stderr(&out);
    assert!(err.contains("--label-weight"), "{err}");
    assert!(
        err.contains("expected a positive number, got \"0\""),
        "{err}"
    );
}

#[test]
fn training_with_labels_records_them_in_the_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    let mut text = String::from("sample_id,tenant,category,label,origin,text\n");
    for i in 0..20 {
        let (label, words) = if i % 2 == 0 {
            ("violates", "you grobnik")
        } else {
            ("does_not", "sunny garden")
        };
        text.push_str(&format!(
            "s{i},parlor,harassment,{label},queue,{words} {i}\n"
        ));
    }
    std::fs::write(&labels, text).unwrap();
    let out = run(&train_args(dir.path(), &labels, &["--label-weight", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("m.json")).unwrap()).unwrap();
    let record = &side["labels"][0];
    assert_eq!(record["category"], "harassment");
    assert_eq!(record["tenants"], serde_json::json!(["parlor"]));
    // 20 items, every fifth held out: 16 used, 8 of them violating (i even
    // and i % 5 != 0: 2, 4, 6, 8, 12, 14, 16, 18).
    assert_eq!(record["labels_used"], 16);
    assert_eq!(record["violating_used"], 8);
    assert_eq!(record["label_weight"], 2.0);
    assert_eq!(record["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn eval_on_held_out_labels_reports_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    let mut text = String::from("sample_id,tenant,category,label,origin,text\n");
    for i in 0..20 {
        let (label, words) = if i % 2 == 0 {
            (
                "violates",
                "you are a worthless idiot and everyone hates you",
            )
        } else {
            ("does_not", "the garden looks lovely this morning")
        };
        text.push_str(&format!(
            "s{i},parlor,harassment,{label},queue,{words} {i}\n"
        ));
    }
    text.push_str("s20,parlor,harassment,unsure,queue,hmm\n");
    std::fs::write(&labels, text).unwrap();
    let policies = common::shipped_policies();
    let model = policies.join("models/harassment.model");
    let out = run_aupd(&[
        "policy",
        "eval",
        "--policy",
        policies.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--after",
        &format!("models/harassment.model={}", model.display()),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", stderr(&out));
    assert!(stdout.contains("held-out items"), "{stdout}");
    assert!(stdout.contains("tenants: parlor"), "{stdout}");
    // Items 0, 5, 10, 15 and 20 are held out; 20 is unsure.
    let row = stdout
        .lines()
        .find(|l| l.starts_with("harassment"))
        .unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[1..4], ["4", "2", "1"], "{row}");
    assert_eq!(cols[4], "before");
    // The same model before and after: no change.
    assert!(stdout.contains("(F1 +0.000)"), "{stdout}");

    let out = run_aupd(&[
        "policy",
        "eval",
        "--policy",
        policies.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--after",
        "models/nothing.model=x.model",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "--after models/nothing.model: no detector of the policy uses that model path"
        ),
        "{}",
        stderr(&out)
    );
}
