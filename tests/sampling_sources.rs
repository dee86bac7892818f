//! The sampler against a fake tenant site on loopback: uniform samples,
//! de-duplication, budgets, politeness, health, prevalence and restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{
    eventually, posts_with_violations_at_the_end, spawn_app, spawn_app_with, FakeSite, Options,
    TestApp,
};
use serde_json::{json, Value};

fn json_feed(site: &FakeSite, budget: u32, interval: u64) -> Value {
    json!({"kind": "json_feed", "url": format!("{}/posts.json", site.base), "budget_per_hour": budget,
           "interval_secs": interval, "items_pointer": "/data/posts", "text_pointer": "/body",
           "url_pointer": "/link", "id_pointer": "/id"})
}

async fn wait_for_samples(app: &TestApp, tenant: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} samples"), || async {
        let s = app.samples(tenant).await;
        (s.len() >= n).then_some(s)
    })
    .await
}

async fn prevalence_of(app: &TestApp, tenant: &str, category: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/tenants/{tenant}/prevalence")).await;
    assert_eq!(status, 200, "{body}");
    body["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == category)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_feed_whose_violations_sit_at_its_end_is_still_estimated_within_the_interval() {
    let app = spawn_app().await;
    let site = FakeSite::start(posts_with_violations_at_the_end(300, 45), Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    app.create_source("parlor", json_feed(&site, 120, 3600))
        .await;

    let samples = wait_for_samples(&app, "parlor", 120).await;
    assert_eq!(samples.len(), 120);
    let ids: Vec<u64> = samples
        .iter()
        .map(|s| s["item_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.iter().any(|&i| i < 100), "the head is sampled");
    assert!(ids.iter().any(|&i| i >= 200), "the tail is sampled");

    let p = prevalence_of(&app, "parlor", "violent-incitement").await;
    assert_eq!(p["sampled"], 120);
    let (lower, upper) = (p["lower"].as_f64().unwrap(), p["upper"].as_f64().unwrap());
    assert!(
        lower <= 0.15 && 0.15 <= upper,
        "true share 0.15 outside [{lower}, {upper}]"
    );
    assert!(p["flagged"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn each_sample_records_url_hash_excerpt_verdict_and_policy_version() {
    let app = spawn_app().await;
    let site = FakeSite::start(posts_with_violations_at_the_end(10, 10), Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    app.create_source("parlor", json_feed(&site, 10, 3600))
        .await;
    let samples = wait_for_samples(&app, "parlor", 10).await;
    let s = &samples[0];
    assert_eq!(s["tenant"], "parlor");
    assert_eq!(s["origin"]["type"], "source");
    let item_url = format!("{}/p/{}", site.base, s["item_id"].as_str().unwrap());
    assert_eq!(
        s["url"], item_url,
        "relative links are resolved against the feed"
    );
    assert_eq!(s["content_hash"].as_str().unwrap().len(), 64);
    assert!(s["excerpt"].as_str().unwrap().contains("storm the capitol"));
    assert_eq!(s["status"], "scored");
    assert_eq!(s["verdict"]["flagged"][0]["category"], "violent-incitement");
    assert_eq!(s["verdict"]["policy_version"].as_str().unwrap().len(), 64);

    let (_, findings) = app.get("/v1/tenants/parlor/findings").await;
    let f = &findings["findings"][0];
    assert_eq!(f["category"], "violent-incitement");
    assert!(
        !f["evidence"].as_array().unwrap().is_empty(),
        "findings carry evidence"
    );
    assert_eq!(f["policy_version"], s["verdict"]["policy_version"]);
}

#[tokio::test]
async fn content_sampled_once_is_not_sampled_again_from_another_source() {
    let app = spawn_app().await;
    let site = FakeSite::start(posts_with_violations_at_the_end(50, 5), Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    app.create_source("parlor", json_feed(&site, 100, 3600))
        .await;
    wait_for_samples(&app, "parlor", 50).await;

    // The RSS feed carries the same posts (as HTML in the description).
    let rss = app
        .create_source(
            "parlor",
            json!({"kind": "rss", "url": format!("{}/rss.xml", site.base), "budget_per_hour": 100, "interval_secs": 3600}),
        )
        .await;
    let state = eventually("the RSS fetch", || async {
        let s = app.source("parlor", &rss).await;
        s["state"]["last_fetch_at"]
            .is_string()
            .then_some(s["state"].clone())
    })
    .await;
    assert_eq!(state["items_seen"], 50);
    assert_eq!(state["samples_taken"], 0);
    assert_eq!(app.samples("parlor").await.len(), 50);
}

#[tokio::test]
async fn a_source_never_samples_more_than_its_tier_scaled_budget_per_hour() {
    let app = spawn_app().await;
    let site = FakeSite::start(posts_with_violations_at_the_end(300, 30), Duration::ZERO).await;
    app.create_tenant("parlor", "low").await;
    let id = app.create_source("parlor", json_feed(&site, 40, 1)).await;
    assert_eq!(
        app.source("parlor", &id).await["effective_budget_per_hour"],
        20
    );
    wait_for_samples(&app, "parlor", 20).await;
    // Give the sampler time to come back (interval 1 s): the budget is spent.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let state = app.source("parlor", &id).await["state"].clone();
    assert_eq!(state["taken_in_window"], 20);
    assert_eq!(app.samples("parlor").await.len(), 20);
    assert_eq!(
        site.log.requests.load(Ordering::SeqCst),
        1,
        "no fetch once the budget is spent"
    );
}

#[tokio::test]
async fn rss_atom_html_sitemap_and_sitemap_index_sources_all_yield_scored_samples() {
    let app = spawn_app().await;
    let site = FakeSite::start(posts_with_violations_at_the_end(20, 4), Duration::ZERO).await;
    for (tenant, kind, path, expect) in [
        ("t-rss", "rss", "/rss.xml", 20),
        ("t-atom", "atom", "/atom.xml", 20),
        ("t-html", "html", "/p/19", 1),
        ("t-sitemap", "sitemap", "/sitemap.xml", 20),
        ("t-index", "sitemap", "/sitemap-index.xml", 20),
    ] {
        app.create_tenant(tenant, "standard").await;
        app.create_source(
            tenant,
            json!({"kind": kind, "url": format!("{}{path}", site.base), "budget_per_hour": 100, "interval_secs": 3600}),
        )
        .await;
        let samples = wait_for_samples(&app, tenant, expect).await;
        let flagged = samples
            .iter()
            .filter(|s| !s["verdict"]["flagged"].as_array().unwrap().is_empty())
            .count();
        let expected_flagged = if kind == "html" { 1 } else { 4 };
        assert_eq!(
            flagged, expected_flagged,
            "{kind}: the script's words are not the page's"
        );
    }
}

#[tokio::test]
async fn the_sampler_is_polite_to_each_host() {
    let app = spawn_app_with(Options {
        configure: Box::new(|s| {
            s.sampling.per_host_concurrency = 1;
            s.sampling.per_host_min_interval_ms = 60;
        }),
        ..Default::default()
    })
    .await;
    let site = FakeSite::start(
        posts_with_violations_at_the_end(30, 3),
        Duration::from_millis(5),
    )
    .await;
    app.create_tenant("parlor", "standard").await;
    app.create_source(
        "parlor",
        json!({"kind": "sitemap", "url": format!("{}/sitemap.xml", site.base), "budget_per_hour": 12, "interval_secs": 3600}),
    )
    .await;
    wait_for_samples(&app, "parlor", 12).await;
    assert_eq!(site.log.max_in_flight.load(Ordering::SeqCst), 1);
    let mut starts = site.log.page_starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 12);
    // The site's two workers may log starts out of order; the slack allows
    // for scheduling delay on a busy machine, not for a missing limiter
    // (without one, all twelve would start within a few milliseconds).
    starts.sort();
    let min_gap = starts.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    // The receiver sees arrival times, which scheduling on a busy machine can
    // bunch up a little; the sender spaces starts 60 ms apart.
    assert!(min_gap >= Duration::from_millis(30), "gap {min_gap:?}");
    let agents = site.log.user_agents.lock().unwrap().clone();
    assert!(
        agents.iter().all(|ua| ua.starts_with("aupd/")),
        "{agents:?}"
    );
}

/// Two fetchers, as two processes would have, each with its own
/// connections to the store at `store_path`, allowed to fetch from
/// loopback.
fn fetchers_on_one_store(
    store_path: &std::path::Path,
    per_host_concurrency: usize,
    per_host_min_interval: Duration,
) -> Vec<Arc<aupd::sampling::fetch::Fetcher>> {
    use aupd::sampling::fetch::{FetchLimits, Fetcher};
    use aupd::sampling::guard::{Guard, SystemResolver};
    let allow = aupd::config::SamplingSettings {
        allow_cidrs: vec!["127.0.0.0/8".into()],
        ..Default::default()
    }
    .allow_nets()
    .unwrap();
    (0..2)
        .map(|_| {
            let guard = Arc::new(Guard::new(allow.clone(), Arc::new(SystemResolver)));
            let limits = FetchLimits {
                timeout: Duration::from_secs(5),
                max_bytes: 1 << 20,
                max_redirects: 2,
                per_host_concurrency,
                per_host_min_interval,
                user_agent: "aupd/test".into(),
            };
            let store = common::open_test_store(store_path);
            Arc::new(Fetcher::new(guard, limits).unwrap().paced_through(store))
        })
        .collect()
}

/// Fetches `site`'s pages 0 to `pages` - 1 all at once, alternating
/// between `replicas`.
async fn fetch_pages(
    replicas: &[Arc<aupd::sampling::fetch::Fetcher>],
    site: &FakeSite,
    pages: usize,
) {
    let fetches: Vec<_> = (0..pages)
        .map(|i| {
            let fetcher = replicas[i % replicas.len()].clone();
            let url = url::Url::parse(&format!("{}/p/{i}", site.base)).unwrap();
            tokio::spawn(async move { fetcher.get(&url).await.map(drop) })
        })
        .collect();
    for fetch in fetches {
        fetch.await.unwrap().unwrap();
    }
}

/// Two replicas sharing one PostgreSQL store space their fetches to one
/// host as one process would: each start is reserved in the store.
#[tokio::test]
async fn two_replicas_keep_the_spacing_between_fetches_to_one_host() {
    if common::test_database_admin().is_none() {
        eprintln!("skipped: spacing across replicas needs PostgreSQL (AUPD_TEST_DATABASE_URL)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store");
    let site = FakeSite::start(posts_with_violations_at_the_end(12, 0), Duration::ZERO).await;
    // Two processes' fetchers, each with its own connections to the store.
    let replicas = fetchers_on_one_store(&store_path, 12, Duration::from_millis(80));
    fetch_pages(&replicas, &site, 12).await;
    drop(replicas);
    common::drop_test_database(&store_path);

    let mut starts = site.log.page_starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 12);
    starts.sort();
    // Spaced 80 ms apart by the sender; the slack is for arrival jitter.
    // Each replica pacing on its own would let the two interleave, a few
    // milliseconds apart.
    let min_gap = starts.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(min_gap >= Duration::from_millis(40), "gap {min_gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_hold_a_hosts_concurrency_between_them() {
    if common::test_database_admin().is_none() {
        eprintln!("skipped: concurrency across replicas needs PostgreSQL (AUPD_TEST_DATABASE_URL)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store");
    // Each page takes 150 ms to answer.
    let site = FakeSite::start(
        posts_with_violations_at_the_end(8, 0),
        Duration::from_millis(150),
    )
    .await;
    // Two processes' fetchers, one fetch at a time to a host, no spacing.
    let replicas = fetchers_on_one_store(&store_path, 1, Duration::ZERO);
    fetch_pages(&replicas, &site, 8).await;
    drop(replicas);
    common::drop_test_database(&store_path);

    let mut starts = site.log.page_starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 8);
    starts.sort();
    // One at a time: each request arrives after the one before answered
    // (150 ms); the slack is for arrival jitter. Each replica holding its
    // own place would let two arrive together.
    let min_gap = starts.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(min_gap >= Duration::from_millis(100), "gap {min_gap:?}");
}

#[tokio::test]
async fn a_redirect_to_the_metadata_address_marks_the_source_unhealthy_with_the_reason() {
    let app = spawn_app().await;
    let site = FakeSite::start(vec![], Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    let id = app
        .create_source(
            "parlor",
            json!({"kind": "html", "url": format!("{}/to-metadata", site.base), "budget_per_hour": 5, "interval_secs": 60}),
        )
        .await;
    let state = eventually("an unhealthy source", || async {
        let s = app.source("parlor", &id).await;
        (s["state"]["health"] == "unhealthy").then_some(s["state"].clone())
    })
    .await;
    let error = state["last_error"].as_str().unwrap();
    assert_eq!(
        error,
        "refused: 169.254.169.254 is a cloud metadata address"
    );
    let refused = app.events("fetch.refused").await;
    assert_eq!(refused[0]["data"]["reason"], error);
    assert_eq!(app.events("source.unhealthy").await.len(), 1);
}

#[tokio::test]
async fn a_rate_limited_source_backs_off_for_as_long_as_the_site_asks() {
    let app = spawn_app().await;
    let site = FakeSite::start(vec![], Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    let id = app
        .create_source(
            "parlor",
            json!({"kind": "html", "url": format!("{}/limited", site.base), "budget_per_hour": 5, "interval_secs": 1}),
        )
        .await;
    let state = eventually("a failed fetch", || async {
        let s = app.source("parlor", &id).await;
        (s["state"]["consecutive_failures"] == 1).then_some(s["state"].clone())
    })
    .await;
    assert_eq!(state["last_error"], "rate limited: HTTP 429");
    assert_eq!(
        state["health"], "unknown",
        "one failure is not yet unhealthy"
    );
    let due: jiff::Timestamp = state["next_due"].as_str().unwrap().parse().unwrap();
    let fetched: jiff::Timestamp = state["last_fetch_at"].as_str().unwrap().parse().unwrap();
    assert!(
        due.as_second() - fetched.as_second() >= 119,
        "Retry-After honoured"
    );
}

#[tokio::test]
async fn one_critical_item_raises_the_threshold_event_once_per_tenant_and_category() {
    let app = spawn_app().await;
    let site = FakeSite::start(posts_with_violations_at_the_end(40, 10), Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    let id = app.create_source("parlor", json_feed(&site, 1000, 1)).await;
    wait_for_samples(&app, "parlor", 40).await;
    site.add_posts((40..60).map(common::violating).collect());
    wait_for_samples(&app, "parlor", 60).await;
    let crossed = app.events("evidence.threshold_crossed").await;
    assert_eq!(crossed.len(), 1, "{crossed:?}");
    let data = &crossed[0]["data"];
    assert_eq!(data["tenant"], "parlor");
    assert_eq!(data["category"], "violent-incitement");
    assert_eq!(data["reason"], "critical_item");
    assert!(!data["findings"].as_array().unwrap().is_empty());
    assert!(app.source("parlor", &id).await["state"]["samples_taken"] == 60);
    assert_eq!(
        prevalence_of(&app, "parlor", "violent-incitement").await["threshold_crossed"],
        true
    );
}

#[tokio::test]
async fn the_sampler_resumes_from_the_store_after_a_restart() {
    let app = spawn_app().await;
    let site = FakeSite::start(posts_with_violations_at_the_end(30, 3), Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    let id = app.create_source("parlor", json_feed(&site, 1000, 1)).await;
    wait_for_samples(&app, "parlor", 30).await;
    let dir = app.stop().await;

    site.add_posts((30..40).map(common::clean).collect());
    let app = spawn_app_with(Options {
        store_dir: Some(dir),
        ..Default::default()
    })
    .await;
    let samples = wait_for_samples(&app, "parlor", 40).await;
    assert_eq!(
        samples.len(),
        40,
        "old posts stay de-duplicated across the restart"
    );
    let state = app.source("parlor", &id).await["state"].clone();
    assert_eq!(state["samples_taken"], 40);
    assert_eq!(state["taken_in_window"], 40);
}
