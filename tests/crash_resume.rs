//! A killed aupd (SIGKILL, no shutdown) restarts from its store: what the
//! API acknowledged is there, and the sampler carries on from the due times
//! and de-duplication hashes it finds on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, posts_with_violations_at_the_end, FakeSite, TOKEN};
use serde_json::{json, Value};

struct Daemon {
    child: Child,
    base: String,
    client: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(dir: &std::path::Path) -> Daemon {
    let port = free_port();
    let config = dir.join("aupd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n[store]\npath = \"{}\"\n[policy]\ndir = \"{}\"\n\
             [auth]\nadmin_token = \"{TOKEN}\"\n[log]\nlevel = \"warn\"\n\
             [sampling]\ntick_ms = 20\nper_host_min_interval_ms = 0\nallow_cidrs = [\"127.0.0.0/8\"]\n",
            dir.join("store").display(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/policies"),
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_aupd"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let probe = client.clone();
    let ready = format!("{base}/readyz");
    eventually("aupd to be ready", || {
        let (probe, ready) = (probe.clone(), ready.clone());
        async move {
            probe
                .get(&ready)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await;
    Daemon {
        child,
        base,
        client,
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Never leave a daemon behind, even when an assertion fails.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    async fn samples(&self) -> usize {
        let body: Value = self
            .client
            .get(format!(
                "{}/v1/tenants/parlor/samples?limit=10000",
                self.base
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["samples"].as_array().map_or(0, Vec::len)
    }

    async fn wait_for_samples(&self, n: usize) {
        eventually(&format!("{n} samples"), || async {
            (self.samples().await >= n).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_killed_aupd_resumes_sampling_from_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let site = FakeSite::start(posts_with_violations_at_the_end(30, 3), Duration::ZERO).await;
    let mut aupd = start(dir.path()).await;
    let r = aupd
        .client
        .post(format!("{}/v1/tenants", aupd.base))
        .json(&json!({"id": "parlor", "name": "Parlor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = aupd
        .client
        .post(format!("{}/v1/tenants/parlor/sources", aupd.base))
        .json(
            &json!({"kind": "rss", "url": format!("{}/rss.xml", site.base),
                      "budget_per_hour": 1000, "interval_secs": 1}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    aupd.wait_for_samples(30).await;

    aupd.child.kill().unwrap(); // SIGKILL: no drain, no final flush
    aupd.child.wait().unwrap();
    drop(aupd);

    site.add_posts((30..40).map(common::clean).collect());
    let aupd = start(dir.path()).await;
    aupd.wait_for_samples(40).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        aupd.samples().await,
        40,
        "posts sampled before the crash stay de-duplicated"
    );
}
