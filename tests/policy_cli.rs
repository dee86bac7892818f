//! The `aupd policy …` and `aupd score` commands, run as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::run_aupd;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn policy_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    common::copy_dir(&common::shipped_policies(), &policies);
    (dir, policies)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "fixture text `{from}` not found");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// Runs `policy check` on `policies`, which must fail with exit code 1;
/// returns what it wrote to standard error.
fn failed_check(policies: &Path) -> String {
    let out = run_aupd(&["policy", "check", policies.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn line_of(path: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn shipped_policy_passes_check() {
    let out = run_aupd(&[
        "policy",
        "check",
        common::shipped_policies().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("policy ok:"), "{stdout}");
}

#[test]
fn shipped_policy_passes_its_own_tests() {
    let out = run_aupd(&[
        "policy",
        "test",
        common::shipped_policies().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

#[test]
fn unknown_key_is_reported_with_file_and_line() {
    let (_dir, policies) = policy_copy();
    let file = policies.join("default.toml");
    edit(&file, "context_sensitive = true\naup = \"\"\"\nYou may not host content that calls", "context_sensitive = true\ncolour = \"red\"\naup = \"\"\"\nYou may not host content that calls");
    let line = line_of(&file, "colour = ");
    let stderr = failed_check(&policies);
    assert!(stderr.contains(&format!("default.toml:{line}")), "{stderr}");
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
}

#[test]
fn semantic_errors_are_all_reported_with_file_line_and_key() {
    let (_dir, policies) = policy_copy();
    let file = policies.join("default.toml");
    edit(
        &file,
        "pattern = '(?-u:\\b){{rallying-calls}}",
        "pattern = '(?-u:\\b)({{rallying-calls}}",
    );
    edit(
        &file,
        "id = \"threat.explicit\"",
        "id = \"incitement.calls-to-violence\"",
    );
    edit(&file, "within = 2", "within = 0");
    let regex_line = line_of(&file, "pattern = '(?-u:\\b)({{rallying-calls}}");
    let stderr = failed_check(&policies);
    assert!(
        stderr.contains(&format!("default.toml:{regex_line}: category[0].detector[8].pattern: invalid regular expression")),
        "{stderr}"
    );
    assert!(
        stderr.contains("duplicate detector id `incitement.calls-to-violence`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("category[0].detector[2].within: must be between 1 and 50 words, got 0"),
        "{stderr}"
    );
}

#[test]
fn a_missing_model_file_is_an_error_naming_the_detector() {
    let (_dir, policies) = policy_copy();
    let extra = policies.join("extra.toml");
    std::fs::write(
        &extra,
        "[[category]]\nid = \"spam\"\ntitle = \"Spam\"\naup = \"No spam.\"\nseverity = \"low\"\nflag_threshold = 0.5\n\n[[category.detector]]\nid = \"spam.model\"\nkind = \"classifier\"\nweight = 1.0\nmodel = \"models/nope.model\"\n",
    )
    .unwrap();
    let stderr = failed_check(&policies);
    assert!(
        stderr.contains("extra.toml:12: category[0].detector[0].model: cannot load model"),
        "{stderr}"
    );
}

#[test]
fn a_detector_with_keys_of_another_kind_is_refused() {
    let (_dir, policies) = policy_copy();
    let extra = policies.join("extra.toml");
    std::fs::write(
        &extra,
        "[[category]]\nid = \"spam\"\ntitle = \"Spam\"\naup = \"No spam.\"\nseverity = \"low\"\nflag_threshold = 0.5\n\n[[category.detector]]\nid = \"spam.words\"\nkind = \"phrases\"\nweight = 1.0\npattern = \"buy now\"\n\n[[category.detector]]\nid = \"spam.link\"\nkind = \"regex\"\nweight = 1.0\npattern = \"click here\"\nordered = true\n",
    )
    .unwrap();
    let stderr = failed_check(&policies);
    assert!(stderr.contains("extra.toml:8: category[0].detector[0].pattern: `pattern` does not belong to a detector of kind `phrases`"), "{stderr}");
    assert!(
        stderr.contains("category[0].detector[0].phrases: a `phrases` detector needs `phrases`"),
        "{stderr}"
    ); // Word order is a proximity detector's option only.
    assert!(
        stderr.contains("category[0].detector[1].ordered: `ordered` does not belong to a detector of kind `regex`"),
        "{stderr}"
    );
}

#[test]
fn a_gate_that_is_not_a_detector_of_the_category_is_refused() {
    // The shipped policy gates no model; these copies add a gate.
    let model = "model = \"models/violence.model\"";
    let (_dir, policies) = policy_copy();
    let file = policies.join("default.toml");
    let line = line_of(&file, model);
    edit(
        &file,
        model,
        &format!("requires = [\"threat.explicit\"]\n{model}"),
    );
    let stderr = failed_check(&policies);
    // The gate is in another category.
    assert!(
        stderr.contains(&format!(
            "default.toml:{line}: category[0].detector[10].requires: no detector `threat.explicit` in this category"
        )),
        "{stderr}"
    );

    // A detector of weight 0 that gates nothing adds nothing.
    let (_dir, policies) = policy_copy();
    let file = policies.join("default.toml");
    let named = "id = \"incitement.violence-toward-people\"\nkind = \"proximity\"";
    edit(&file, named, &format!("{named}\nweight = 0"));
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text.find(named).unwrap();
    let rest = &text[at..];
    let own = rest.find("weight = 0.2\n").unwrap();
    std::fs::write(
        &file,
        format!(
            "{}{}{}",
            &text[..at],
            &rest[..own],
            &rest[own + "weight = 0.2\n".len()..]
        ),
    )
    .unwrap();
    let stderr = failed_check(&policies);
    assert!(
        stderr.contains("category[0].detector[9].weight: a detector of weight 0 adds nothing unless another detector `requires` it"),
        "{stderr}"
    );

    let (_dir, policies) = policy_copy();
    let file = policies.join("default.toml");
    edit(
        &file,
        model,
        &format!("requires = [\"incitement.model\"]\n{model}"),
    );
    let stderr = failed_check(&policies);
    assert!(
        stderr.contains(
            "category[0].detector[10].requires: `incitement.model` cannot require itself"
        ),
        "{stderr}"
    );
}

#[test]
fn a_failing_policy_case_fails_the_run_and_names_the_case() {
    let (_dir, policies) = policy_copy();
    let file = policies.join("tests").join("zz-extra.toml");
    std::fs::write(&file, "# a deliberately wrong expectation\n\n[[case]]\ntext = \"what a lovely day\"\nmust_flag = [\"harassment\"]\n").unwrap();
    let out = run_aupd(&["policy", "test", policies.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("zz-extra.toml:3"), "{stdout}");
    assert!(stdout.contains("`harassment` did not flag"), "{stdout}");
    assert!(stdout.contains(" 1 failed"), "{stdout}");
}

#[test]
fn score_reads_json_lines_and_writes_one_verdict_per_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aupd"))
        .args([
            "score",
            "--jsonl",
            "--policy",
            common::shipped_policies().to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"text\": \"i will kill you\"}\n\"have a nice day\"\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["flagged"][0]["category"], "violent-threat");
    assert!(lines[1]["flagged"].as_array().unwrap().is_empty());
}

#[test]
fn score_rejects_a_bad_json_line_by_number() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aupd"))
        .args([
            "score",
            "--jsonl",
            "--policy",
            common::shipped_policies().to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\"fine\"\n{oops\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: not JSON"));
}

/// Starts `aupd serve` on a copy of the shipped policy, lets `change` edit
/// its files, sends SIGHUP, then stops the server with SIGTERM. Returns
/// `/readyz` before and after the reload (after: once it differs, or at a
/// 20 s cap), and whether the server exited cleanly.
#[cfg(unix)]
fn readyz_around_sighup(change: impl FnOnce(&Path)) -> (String, String, bool) {
    use std::time::{Duration, Instant};
    let (dir, policies) = policy_copy();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_aupd"))
        .arg("serve")
        .env("AUPD__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("AUPD__POLICY__DIR", &policies)
        .envs(common::store_env(&dir.path().join("store")))
        .env("AUPD__AUTH__ADMIN_TOKEN", common::ADMIN_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = |deadline: Instant| -> Option<String> {
        while Instant::now() < deadline {
            if let Ok(body) = http_get(port, "/readyz") {
                return Some(body);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    };
    let before =
        ready(Instant::now() + Duration::from_secs(20)).expect("server never became ready");
    change(&policies);
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = before.clone();
    while Instant::now() < deadline && after == before {
        std::thread::sleep(Duration::from_millis(50));
        after = http_get(port, "/readyz").unwrap_or_else(|_| before.clone());
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    (before, after, status.success())
}

#[cfg(unix)]
#[test]
fn sighup_reloads_the_policy_of_a_running_server() {
    let (before, after, clean) = readyz_around_sighup(|policies| {
        edit(
            &policies.join("default.toml"),
            "\"storm the capitol\",",
            "\"storm the capitol\", \"overrun the town hall\",",
        )
    });
    assert_ne!(
        after, before,
        "the policy version did not change after SIGHUP"
    );
    assert!(clean, "server did not exit cleanly on SIGTERM");
}

#[cfg(unix)]
#[test]
fn sighup_reloads_edited_escalation_ladders_into_the_policy_version() {
    let (before, after, clean) = readyz_around_sighup(|policies| {
        edit(
            &policies.join("escalation").join("ladders.toml"),
            "cure_window = \"1h\"",
            "cure_window = \"2h\"",
        )
    });
    assert_ne!(
        after, before,
        "the policy version did not change after SIGHUP with edited ladders"
    );
    assert!(clean, "server did not exit cleanly on SIGTERM");
}

/// A minimal blocking HTTP GET, so this test needs no async runtime.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if !response.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(response));
    }
    Ok(response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string())
}

/// Runs `aupd score --jsonl` with the policy in `policies` over `texts`.
fn score_with(policies: &Path, texts: &[&str]) -> Vec<serde_json::Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aupd"))
        .args(["score", "--jsonl", "--policy", policies.to_str().unwrap()])
        .env_remove("AUPD_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = texts
        .iter()
        .map(|t| serde_json::json!({ "text": t }).to_string() + "\n")
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The (detector, original text) pairs of a verdict's evidence.
fn evidence_of(verdict: &serde_json::Value) -> Vec<(String, String)> {
    verdict["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["detector"].as_str().unwrap().to_string(),
                e["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_named_list_is_folded_and_used_by_phrases_and_regexes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spam.toml"),
        r#"[lists]
offers = ["cheap pills", "free money"]

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
phrases = ["{{offers}}", "click here", "free money"]

[[category.detector]]
id = "spam.buy"
kind = "regex"
weight = 0.6
pattern = '''(?x) (?-u:\b) buy \x20 {{offers}} (?-u:\b)'''
"#,
    )
    .unwrap();
    let v = score_with(
        dir.path(),
        &["Buy FR33 MONEY now", "CHEAP PIIILLS", "buy cheap", "free"],
    );
    // The list's words are folded like the text, in the phrase list and in
    // the regex alike; a term listed twice is still found once.
    assert_eq!(
        evidence_of(&v[0]),
        [
            ("spam.offers".to_string(), "FR33 MONEY".to_string()),
            ("spam.buy".to_string(), "Buy FR33 MONEY".to_string()),
        ]
    );
    assert_eq!(v[0]["flagged"][0]["category"], "spam");
    assert_eq!(
        evidence_of(&v[1]),
        [("spam.offers".to_string(), "CHEAP PIIILLS".to_string())]
    );
    assert!(evidence_of(&v[2]).is_empty(), "{}", v[2]);
    assert!(evidence_of(&v[3]).is_empty(), "{}", v[3]);
}

#[test]
fn a_reference_to_a_missing_list_is_reported_at_its_line() {
    let (_dir, policies) = policy_copy();
    let file = policies.join("default.toml");
    edit(&file, "{{punishments}}", "{{punishment}}");
    edit(&file, "\"{{groups}}\", \"jew\"", "\"{{group}}\", \"jew\"");
    let regex_line = line_of(&file, "{{punishment}}");
    let phrase_line = line_of(&file, "\"{{group}}\"");
    let stderr = failed_check(&policies);
    assert!(
        stderr.contains(&format!(
            "default.toml:{regex_line}: category[2].detector[3].pattern: no list `punishment` in [lists]"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "default.toml:{phrase_line}: category[2].detector[0].first: no list `group` in [lists]"
        )),
        "{stderr}"
    );
}

#[test]
fn lists_that_nest_clash_or_are_misspelt_are_refused() {
    let (_dir, policies) = policy_copy();
    std::fs::write(
        policies.join("extra.toml"),
        "[lists]\ngroups = [\"owls\"]\nbirds = [\"hawks\", \"{{groups}}\"]\n\"Bad Name\" = [\"x\"]\n",
    )
    .unwrap();
    let file = policies.join("default.toml");
    edit(&file, "{{intensifiers}} )*", "{{intensifiers )*");
    let brace_line = line_of(&file, "{{intensifiers )*");
    let stderr = failed_check(&policies);
    assert!(
        stderr.contains(
            "extra.toml:2: lists.groups: list `groups` is defined in more than one place"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "extra.toml:3: lists.birds: \"{{groups}}\": a list cannot include another list"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("extra.toml:4: lists.Bad Name: a list name must be lowercase letters"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "default.toml:{brace_line}: category[2].detector[2].pattern: `{{{{intensifiers )*"
        )) && stderr.contains("must be a list reference such as `{{groups}}`"),
        "{stderr}"
    );
}

#[test]
fn cross_source_evaluation_skips_cleanly_without_the_shared_data() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-data");
    let out = run_aupd(&[
        "policy",
        "cross-source",
        "--data",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("skipped: "), "{stdout}");
}

/// A miniature of the shared data folder: every source's files with a few
/// rows, abusive rows saying "vermin" or "idiot", harmless ones not.
fn miniature_shared_data(root: &Path) {
    let line = |i: usize, bad: &str| {
        if i.is_multiple_of(3) {
            format!("you are {bad} number {i}")
        } else {
            format!("a calm note about gardens number {i}")
        }
    };
    let mut davidson = String::from("count,hate_speech,offensive_language,neither,class,tweet\n");
    let mut ethos = String::from("comment;isHate\n");
    let mut multi = String::from("comment;violence;directed_vs_generalized;gender;race;national_origin;disability;religion;sexual_orientation\n");
    let mut storm = String::from("file_id,user_id,subforum_id,num_contexts,label,text\n");
    let mut olid = String::from("id\ttweet\tsubtask_a\tsubtask_b\tsubtask_c\n");
    let (mut test, mut a, mut b, mut c) = (
        String::from("id\ttweet\n"),
        String::new(),
        String::new(),
        String::new(),
    );
    for i in 0..60usize {
        let bad = i.is_multiple_of(3);
        davidson.push_str(&format!(
            "3,0,0,3,{},{}\n",
            if bad { 0 } else { 2 },
            line(i, "vermin")
        ));
        ethos.push_str(&format!(
            "{};{}\n",
            line(i, "vermin"),
            if bad { 1.0 } else { 0.0 }
        ));
        if bad {
            multi.push_str(&format!("{};0;1;0;0;0;0;0;0\n", line(i, "vermin")));
        }
        storm.push_str(&format!(
            "{i}_1,1,1,0,{},{}\n",
            if bad { "hate" } else { "noHate" },
            line(i, "vermin")
        ));
        let (x, y, z) = if bad {
            ("OFF", "TIN", "IND")
        } else {
            ("NOT", "NULL", "NULL")
        };
        olid.push_str(&format!("{i}\t{}\t{x}\t{y}\t{z}\n", line(i, "idiot")));
        test.push_str(&format!("{}\t{}\n", 1000 + i, line(i, "idiot")));
        a.push_str(&format!("{},{x}\n", 1000 + i));
        if bad {
            b.push_str(&format!("{},TIN\n", 1000 + i));
            c.push_str(&format!("{},IND\n", 1000 + i));
        }
    }
    let files = [
        ("davidson2017/labeled_data.csv", davidson),
        ("ethos/Ethos_Dataset_Binary.csv", ethos),
        ("ethos/Ethos_Dataset_Multi_Label.csv", multi),
        ("stormfront/stormfront_sentences.csv", storm),
        ("olid2019/olid-training-v1.0.tsv", olid),
        ("olid2019/testset-levela.tsv", test),
        ("olid2019/labels-levela.csv", a),
        ("olid2019/labels-levelb.csv", b),
        ("olid2019/labels-levelc.csv", c),
    ];
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A miniature word-vector set in winkNLP's JSON layout, turned into an
/// embeddings file by `aupd policy embeddings`; returns its path.
fn miniature_embeddings(dir: &Path) -> PathBuf {
    let json = dir.join("vectors.json");
    let words = [
        "the", "you", "idiot", "lovely", "garden", "stupid", "people", "Idiot",
    ];
    let mut vectors = serde_json::Map::new();
    for (i, w) in words.iter().enumerate() {
        // Three numbers, then the norm and the index, as winkNLP stores them.
        let v = [
            i as f64 * 0.1,
            1.0 - i as f64 * 0.1,
            (i % 2) as f64,
            1.0,
            i as f64,
        ];
        vectors.insert(w.to_string(), serde_json::json!(v));
    }
    std::fs::write(
        &json,
        serde_json::json!({ "dimensions": 3, "words": words, "vectors": vectors }).to_string(),
    )
    .unwrap();
    let out_path = dir.join("vectors.bin");
    let out = run_aupd(&[
        "policy",
        "embeddings",
        "--from",
        json.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // "Idiot" folds to "idiot", which the more frequent entry already holds.
    assert!(stderr.contains("7 folded words of 3 numbers"), "{stderr}");
    out_path
}

#[test]
fn embeddings_from_a_file_that_is_not_word_vectors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"words\": 3}").unwrap();
    let out_path = dir.path().join("out.bin");
    let out = run_aupd(&[
        "policy",
        "embeddings",
        "--from",
        bad.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.json") && stderr.contains("word-vector JSON"),
        "{stderr}"
    );
    assert!(!out_path.exists(), "nothing is written");
}

#[test]
fn cross_source_evaluation_retrains_each_model_without_the_measured_source() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    miniature_shared_data(&data);
    let embeddings = miniature_embeddings(dir.path());
    let out = run_aupd(&[
        "policy",
        "cross-source",
        "--data",
        data.to_str().unwrap(),
        "--source",
        "olid",
        "--embeddings",
        embeddings.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Both models that read OLID were retrained from their recorded recipes
    // without it; the violence model never read OLID and is kept.
    let header = stdout.lines().find(|l| l.starts_with("== olid")).unwrap();
    assert!(header.contains("retrained without olid"), "{header}");
    assert!(
        header.contains("hate.model") && header.contains("harassment.model"),
        "{header}"
    );
    assert!(!header.contains("incitement.model"), "{header}");
    assert!(header.contains("60 held-out texts, 20 abusive"), "{header}");
    for row in [
        "  harassment   IND",
        "  either       TIN",
        "reliability of max",
    ] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
    assert!(stdout.contains("summary"), "{stdout}");
}
