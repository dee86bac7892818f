//! One way to start the real service for integration tests: on
//! `127.0.0.1:0`, with a temporary store and policy directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod receiver;

use std::path::{Path, PathBuf};

use aupd::app::Application;
use aupd::config::{Secret, Settings};

/// The admin token every test app accepts.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running test instance.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// A client with no default headers.
    pub client: reqwest::Client,
    /// The policy directory the app loaded (a private copy).
    pub policy_dir: PathBuf,
    /// The command path of the running app (drive cases without routes).
    pub cases: aupd::commands::CaseService,
    /// Keeps the temporary directories alive.
    _dirs: tempfile::TempDir,
}

impl TestApp {
    /// `POST path` with a JSON body and the admin token.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .expect("request failed")
    }

    /// `GET path` with the admin token; the status and the JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request failed");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST path` with the admin token; the status and the JSON body.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let r = self.post_json(path, body).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

/// The repository's shipped policy directory.
pub fn shipped_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// Copies a directory tree (policy files and models).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Starts the service with a private copy of the shipped policy.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like `spawn_app`, letting the test change the settings first.
pub async fn spawn_app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        aupd::telemetry::init(&Default::default());
    }
    let dirs = tempfile::tempdir().unwrap();
    let policy_dir = dirs.path().join("policies");
    copy_dir(&shipped_policies(), &policy_dir);
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.server.max_body_bytes = 64 * 1024;
    settings.store.path = dirs.path().join("store");
    settings.policy.dir = policy_dir.clone();
    settings.auth.admin_token = Some(Secret::new(ADMIN_TOKEN));
    change(&mut settings);
    let app = Application::build(&settings).expect("failed to build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let cases = app.cases();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        policy_dir,
        cases,
        _dirs: dirs,
    }
}
