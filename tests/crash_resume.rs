//! A killed aupd (SIGKILL, no shutdown) restarts from its store: what the
//! API acknowledged is there, and the sampler carries on from the due times
//! and de-duplication hashes it finds on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{eventually, posts_with_violations_at_the_end, start_daemon, Daemon, FakeSite};
use serde_json::{json, Value};

async fn start(dir: &std::path::Path) -> Daemon {
    start_daemon(
        dir,
        "",
        "[log]\nlevel = \"warn\"\n\
         [sampling]\ntick_ms = 20\nper_host_min_interval_ms = 0\nallow_cidrs = [\"127.0.0.0/8\"]\n",
        Stdio::null(),
    )
    .await
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
