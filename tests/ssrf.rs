//! Every outbound fetch goes through the SSRF guard: targeted sampling and
//! the sampler refuse private, loopback, metadata and other forbidden
//! addresses in every spelling, through redirects and DNS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aupd::sampling::guard::Resolver;
use common::{
    posts_with_violations_at_the_end, spawn_app, spawn_app_with, FakeSite, Options, TestApp,
};
use futures_util::future::BoxFuture;
use serde_json::{json, Value};

async fn sample_now(app: &TestApp, urls: &[String]) -> Vec<Value> {
    let (status, body) = app
        .post("/v1/tenants/parlor/sample", &json!({ "urls": urls }))
        .await;
    assert_eq!(status, 200, "{body}");
    body["results"].as_array().unwrap().clone()
}

fn closed_app_options(hosts: Vec<(String, Vec<IpAddr>)>) -> Options {
    Options {
        configure: Box::new(|s| s.sampling.allow_cidrs = vec![]),
        hosts: Some(hosts),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_forbidden_address_form_is_refused_and_nothing_is_fetched() {
    let site = FakeSite::start(posts_with_violations_at_the_end(5, 1), Duration::ZERO).await;
    let port = site.base.rsplit(':').next().unwrap().to_string();
    let app = spawn_app_with(closed_app_options(vec![
        ("evil.test".into(), vec!["10.0.0.5".parse().unwrap()]),
        ("meta.test".into(), vec!["169.254.169.254".parse().unwrap()]),
        ("loop.test".into(), vec!["127.0.0.1".parse().unwrap()]),
    ]))
    .await;
    app.create_tenant("parlor", "standard").await;
    let cases = [
        (
            format!("http://127.0.0.1:{port}/p/1"),
            "127.0.0.1 is a loopback address",
        ),
        (
            format!("http://2130706433:{port}/p/1"),
            "127.0.0.1 is a loopback address",
        ),
        (
            format!("http://0x7f.1:{port}/p/1"),
            "127.0.0.1 is a loopback address",
        ),
        (
            format!("http://0177.0.0.1:{port}/p/1"),
            "127.0.0.1 is a loopback address",
        ),
        (
            format!("http://[::1]:{port}/p/1"),
            "::1 is a loopback address",
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            "::ffff:127.0.0.1 is a loopback address",
        ),
        (
            format!("http://loop.test:{port}/p/1"),
            "127.0.0.1 is a loopback address",
        ),
        ("http://evil.test/".into(), "10.0.0.5 is a private address"),
        (
            "http://meta.test/latest/".into(),
            "169.254.169.254 is a cloud metadata address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            "169.254.169.254 is a cloud metadata address",
        ),
        (
            "http://[fd00:ec2::254]/".into(),
            "fd00:ec2::254 is a cloud metadata address",
        ),
        (
            "http://[64:ff9b::a9fe:a9fe]/".into(),
            "64:ff9b::a9fe:a9fe is a cloud metadata address",
        ),
        (
            "http://100.64.0.1/".into(),
            "100.64.0.1 is a carrier-grade NAT (shared) address",
        ),
        (
            "http://192.168.1.1/".into(),
            "192.168.1.1 is a private address",
        ),
        (
            "http://[fe80::1]/".into(),
            "fe80::1 is a link-local address",
        ),
        (
            "http://224.0.0.1/".into(),
            "224.0.0.1 is a multicast address",
        ),
        (
            "http://0.0.0.0/".into(),
            "0.0.0.0 is a unspecified (this-network) address",
        ),
        (
            "file:///etc/passwd".into(),
            "scheme `file` is not allowed (only http and https)",
        ),
        (
            "ftp://example.com/".into(),
            "scheme `ftp` is not allowed (only http and https)",
        ),
        (
            "http://user:pw@example.com/".into(),
            "URLs with credentials are not allowed",
        ),
    ];
    let urls: Vec<String> = cases.iter().map(|(u, _)| u.clone()).collect();
    let results = sample_now(&app, &urls).await;
    assert_eq!(results.len(), cases.len());
    for (result, (url, reason)) in results.iter().zip(&cases) {
        assert_eq!(result["status"], "refused", "{url}: {result}");
        assert_eq!(result["reason"], *reason, "{url}");
    }
    assert_eq!(
        site.log.requests.load(Ordering::SeqCst),
        0,
        "the site was never reached"
    );
    assert_eq!(app.events("fetch.refused").await.len(), cases.len());
}

/// Answers a public address first, then loopback: a rebinding attack.
#[derive(Debug, Default)]
struct RebindingResolver(AtomicUsize);

impl Resolver for RebindingResolver {
    fn resolve(&self, _host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let ip: IpAddr = if n == 0 { "93.184.216.34" } else { "127.0.0.1" }
            .parse()
            .unwrap();
        Box::pin(async move { Ok(vec![ip]) })
    }
}

#[tokio::test]
async fn a_host_that_rebinds_to_loopback_between_check_and_connect_is_refused() {
    let site = FakeSite::start(posts_with_violations_at_the_end(5, 1), Duration::ZERO).await;
    let port = site.base.rsplit(':').next().unwrap().to_string();
    let closed = Options {
        configure: Box::new(|s| s.sampling.allow_cidrs = vec![]),
        ..Default::default()
    };
    let app = common::spawn_app_with_resolver(closed, Arc::new(RebindingResolver::default())).await;
    app.create_tenant("parlor", "standard").await;
    let results = sample_now(&app, &[format!("http://rebind.test:{port}/p/1")]).await;
    assert_eq!(results[0]["status"], "refused", "{}", results[0]);
    assert_eq!(results[0]["reason"], "127.0.0.1 is a loopback address");
    assert_eq!(site.log.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirects_to_metadata_or_private_addresses_and_redirect_loops_are_refused() {
    let app = spawn_app().await;
    let site = FakeSite::start(posts_with_violations_at_the_end(5, 1), Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    let results = sample_now(
        &app,
        &[
            format!("{}/to-metadata", site.base),
            format!("{}/to-private", site.base),
            format!("{}/loop", site.base),
        ],
    )
    .await;
    assert_eq!(
        results[0]["reason"],
        "169.254.169.254 is a cloud metadata address"
    );
    assert_eq!(results[1]["reason"], "10.0.0.7 is a private address");
    assert_eq!(results[2]["reason"], "more than 5 redirects");
    assert!(results.iter().all(|r| r["status"] == "refused"));
}

#[tokio::test]
async fn targeted_sampling_scores_live_pages_and_records_gone_ones() {
    let app = spawn_app_with(Options {
        configure: Box::new(|s| s.sampling.max_response_bytes = 100_000),
        ..Default::default()
    })
    .await;
    let site = FakeSite::start(posts_with_violations_at_the_end(5, 1), Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    let results = sample_now(
        &app,
        &[
            format!("{}/p/4", site.base),
            format!("{}/p/0", site.base),
            format!("{}/gone", site.base),
            format!("{}/p/99", site.base),
            format!("{}/big", site.base),
        ],
    )
    .await;
    assert_eq!(results[0]["status"], "sampled");
    assert_eq!(
        results[0]["sample"]["verdict"]["flagged"][0]["category"],
        "violent-incitement"
    );
    assert_eq!(results[0]["sample"]["origin"]["type"], "targeted");
    assert_eq!(results[1]["status"], "sampled");
    assert!(results[1]["sample"]["verdict"]["flagged"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        (
            results[2]["status"].as_str(),
            results[2]["http_status"].as_u64()
        ),
        (Some("gone"), Some(410))
    );
    assert_eq!(
        (
            results[3]["status"].as_str(),
            results[3]["http_status"].as_u64()
        ),
        (Some("gone"), Some(404))
    );
    assert_eq!(results[4]["status"], "failed");
    assert_eq!(results[4]["reason"], "response larger than 100000 bytes");

    let samples = app.samples("parlor").await;
    assert_eq!(samples.iter().filter(|s| s["status"] == "gone").count(), 2);
    // Targeted samples are not uniform, so they do not count in prevalence.
    let (_, p) = app.get("/v1/tenants/parlor/prevalence").await;
    assert_eq!(p["categories"][0]["sampled"], 0);
    assert_eq!(app.events("sample.gone").await.len(), 2);
}

#[tokio::test]
async fn a_malformed_targeted_request_is_refused_and_fetches_nothing() {
    let app = spawn_app().await;
    let site = FakeSite::start(posts_with_violations_at_the_end(5, 1), Duration::ZERO).await;
    app.create_tenant("parlor", "standard").await;
    app.create_source(
        "parlor",
        json!({"kind": "rss", "url": format!("{}/rss.xml", site.base), "budget_per_hour": 5, "interval_secs": 3600, "enabled": false}),
    )
    .await;
    let (status, body) = app
        .post_raw("/v1/tenants/parlor/sample", "{\"urls\": [")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, body) = app
        .post("/v1/tenants/parlor/sample", &json!({"url": "x"}))
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    let (status, body) = app
        .post("/v1/tenants/parlor/sample", &json!({"urls": ["not a url"]}))
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_url")));
    assert_eq!(site.log.requests.load(Ordering::SeqCst), 0);
    assert!(app.samples("parlor").await.is_empty());
}

#[tokio::test]
async fn a_source_whose_address_is_forbidden_is_refused_at_registration_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.create_tenant("parlor", "standard").await;
    for (url, reason) in [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://10.0.0.5/feed.xml", "private"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("ftp://example.com/feed.xml", "http or https"),
    ] {
        let (status, body) = app
            .post(
                "/v1/tenants/parlor/sources",
                &json!({"kind": "rss", "url": url, "budget_per_hour": 10}),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["code"], "invalid_url", "{url}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(reason),
            "{url}: {body}"
        );
    }
    let (_, sources) = app.get("/v1/tenants/parlor/sources").await;
    assert_eq!(sources["sources"], json!([]));
}
