//! One way to start the real service for integration tests: on
//! `127.0.0.1:0`, with a temporary store and policy directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

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
    let app = Application::build(&settings).expect("failed to build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        policy_dir,
        _dirs: dirs,
    }
}
