//! The documentation a new user follows: every file it names exists, it
//! names no one's local paths, and the README's story is the script CI runs
//! with the example data it ships.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// Words of `text` that name a file by a relative path ending in `.md`,
/// `.sh`, `.py` or `.json` (links and plain mentions alike).
fn named_files(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "._/-".contains(c)))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| {
            [".md", ".sh", ".py", ".json"]
                .iter()
                .any(|ext| w.ends_with(ext) && w.len() > ext.len())
        })
        .filter(|w| !w.starts_with('/') && !w.contains("..") && !w.contains("//"))
        .map(str::to_string)
        .collect()
}

fn exists_from(page: &Path, name: &str) -> bool {
    let dir = page.parent().unwrap();
    dir.join(name).exists() || root().join(name).exists()
}

#[test]
fn every_file_the_docs_name_exists() {
    // Files a reader makes themselves, named as examples of input.
    let made_by_reader = ["posts.jsonl", "aupd.toml", "labels.json", "values.json"];
    let mut missing = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for name in named_files(&text) {
            let base = name.rsplit('/').next().unwrap_or(&name);
            if made_by_reader.contains(&base) || exists_from(&page, &name) {
                continue;
            }
            missing.push(format!(
                "{}: {name}",
                page.strip_prefix(root()).unwrap().display()
            ));
        }
    }
    assert!(missing.is_empty(), "named but missing: {missing:#?}");
}

#[test]
fn the_docs_name_no_ones_local_paths() {
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for local in ["/work/", "/home/", "/Users/", "/root/"] {
            assert!(
                !text.contains(local),
                "{} names a local path under {local}",
                page.display()
            );
        }
    }
}

#[test]
fn the_readme_story_is_the_script_ci_runs_with_the_data_it_ships() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("bash docs/examples/story.sh"));
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        ci.contains("docs/examples/story.sh"),
        ".ci/run runs the story"
    );
    assert!(readme.contains("bash docs/examples/review.sh"));
    assert!(
        ci.contains("docs/examples/review.sh"),
        ".ci/run runs the review walkthrough"
    );
    let script = std::fs::read_to_string(root().join("docs/examples/story.sh")).unwrap();
    assert!(script.contains("@docs/examples/posts.json"));
    let posts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/examples/posts.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(posts["items"].as_array().unwrap().len(), 100);
}
