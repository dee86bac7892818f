//! `aupd config check`: the effective settings with secrets masked, or the
//! offending key, file and line and a non-zero exit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn aupd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aupd"));
    cmd.args(args).env_remove("AUPD_CONFIG");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AUPD__")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn config_check_names_the_file_line_and_key_of_an_unknown_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nbind = \"127.0.0.1:9000\"\nport = 3\n").unwrap();

    let out = aupd(
        &["--config", file.to_str().unwrap(), "config", "check"],
        &[],
    );

    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:3"), "{stderr}");
    assert!(stderr.contains("unknown field `port`"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn config_check_names_the_variable_or_key_of_a_bad_value() {
    let out = aupd(&["config", "check"], &[("AUPD__STORE__CACHE_MB", "2")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("store.cache_mb"), "{stderr}");
}

#[test]
fn config_check_prints_the_effective_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, "file-secret-admin-token-42\n").unwrap();
    let file = dir.path().join("aupd.toml");
    std::fs::write(&file, "[store]\ncache_mb = 64\n").unwrap();

    let out = aupd(
        &["--config", file.to_str().unwrap(), "config", "check"],
        &[
            ("AUPD__AUTH__ADMIN_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AUPD__SERVER__BIND", "0.0.0.0:8080"),
        ],
    );

    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let printed: toml::Table = stdout.parse().unwrap();
    assert_eq!(printed["store"]["cache_mb"].as_integer(), Some(64));
    assert_eq!(printed["server"]["bind"].as_str(), Some("0.0.0.0:8080"));
    assert_eq!(printed["auth"]["admin_token"].as_str(), Some("********"));
    let everything = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!everything.contains("file-secret"), "{everything}");
}

#[test]
fn the_printed_defaults_load_back_as_a_settings_file() {
    let out = aupd(&["config", "check", "--defaults"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("defaults.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    let loaded = aupd::config::Settings::load(Some(&file), Vec::new()).unwrap();
    assert_eq!(loaded.server.bind, "127.0.0.1:8080");
    assert_eq!(loaded.store.path, std::path::PathBuf::from("aupd-data"));
}
