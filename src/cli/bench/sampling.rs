//! Sampling benchmarks (`aupd bench sampler`, `aupd bench intake`): start
//! the real application over a scratch store, drive it from loopback, and
//! print figures. Never pass/fail.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use serde_json::json;

use crate::app::{Application, BuildOptions};
use crate::cli::bench::cluster::{run_on_backends, Backend, BackendArgs, Cluster, Figure};
use crate::config::{Secret, Settings};

const TOKEN: &str = "bench-admin-token-0123456789";

/// Resident set size of this process in MiB (Linux), if known.
pub fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("aupd-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench_settings(base: &Settings, store: PathBuf) -> Settings {
    let mut s = base.clone();
    s.server.bind = "127.0.0.1:0".into();
    s.store.path = store;
    s.auth.admin_token = Some(Secret::new(TOKEN));
    s.sampling.allow_cidrs = vec!["127.0.0.0/8".into()];
    s.sampling.per_host_min_interval_ms = 0;
    s
}

fn client() -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {TOKEN}")
            .parse()
            .context("building the auth header")?,
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(256)
        .build()
        .context("building the HTTP client")
}

async fn post_ok(c: &reqwest::Client, url: String, body: serde_json::Value) -> anyhow::Result<()> {
    let r = c
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    anyhow::ensure!(r.status().is_success(), "POST {url}: {}", r.status());
    Ok(())
}

fn post_text(i: u64) -> String {
    if i.is_multiple_of(20) {
        format!("post {i}: we must storm the capitol tomorrow, bring your guns")
    } else {
        format!(
            "post {i}: the farmers market opens at nine on saturday, with bread, cheese \
             and the first strawberries of the season; bring a bag and say hello"
        )
    }
}

/// `aupd bench sampler`: loopback JSON feeds that publish fresh posts on
/// every fetch; figures are items fetched and samples stored per second.
pub fn sampler(base: &Settings, sources: usize, items: usize, secs: u64) -> anyhow::Result<i32> {
    let scratch = Scratch::new("sampler")?;
    let mut settings = bench_settings(base, scratch.0.join("store"));
    settings.sampling.tick_ms = 10;
    settings.sampling.max_concurrent_fetches = sources.max(1);
    settings.sampling.per_host_concurrency = sources.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        // The fake site: every fetch of a feed publishes `items` new posts.
        let counter = web::Data::new(AtomicU64::new(0));
        let per_feed = items as u64;
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the fake site")?;
        let site = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let data = counter.clone();
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route(
                "/feed/{k}",
                web::get().to(move |c: web::Data<AtomicU64>| async move {
                    let start = c.fetch_add(per_feed, Ordering::Relaxed);
                    let posts: Vec<_> = (start..start + per_feed)
                        .map(|i| json!({"id": i, "body": post_text(i), "link": format!("/p/{i}")}))
                        .collect();
                    HttpResponse::Ok().json(json!({ "posts": posts }))
                }),
            )
        })
        .workers(1)
        .listen(listener)?
        .run();
        let site_handle = server.handle();
        tokio::spawn(server);

        let app = Application::build(&settings)?;
        let api = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let running = tokio::spawn(app.run_until_stopped());
        let c = client()?;
        post_ok(&c, format!("{api}/v1/tenants"), json!({"id": "bench", "name": "Bench", "risk_tier": "standard"})).await?;
        let rss_start = rss_mib();
        let t0 = Instant::now();
        for k in 0..sources {
            post_ok(
                &c,
                format!("{api}/v1/tenants/bench/sources"),
                json!({"kind": "json_feed", "url": format!("{site}/feed/{k}"), "budget_per_hour": 1_000_000,
                       "interval_secs": 1, "items_pointer": "/posts", "text_pointer": "/body",
                       "url_pointer": "/link", "id_pointer": "/id"}),
            )
            .await?;
        }
        let mut last = (0u64, 0u64);
        let mut peak_rss = rss_start.unwrap_or(0.0);
        let mut reported = 0u64;
        while t0.elapsed() < Duration::from_secs(secs) {
            tokio::time::sleep(Duration::from_secs(5).min(Duration::from_secs(secs))).await;
            let (seen, taken) = totals(&c, &api).await?;
            let rss = rss_mib().unwrap_or(0.0);
            peak_rss = peak_rss.max(rss);
            reported += 1;
            println!(
                "  t={:>4.0}s  fetched {:>8}  stored {:>8}  ({:>6.0} stored/s over the last interval)  rss {:.1} MiB",
                t0.elapsed().as_secs_f64(),
                seen,
                taken,
                (taken - last.1) as f64 / 5.0,
                rss
            );
            last = (seen, taken);
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let (seen, taken) = totals(&c, &api).await?;
        let rss_end = rss_mib();
        println!(
            "sampler: {sources} loopback JSON feeds x {items} fresh posts per fetch, {elapsed:.1} s, {reported} reports"
        );
        println!(
            "  fetched+extracted {:.0} items/s; scored+stored (one transaction and flush per fetch) {:.0} items/s; {} samples",
            seen as f64 / elapsed,
            taken as f64 / elapsed,
            taken
        );
        println!(
            "  RSS at start {:.1} MiB, peak {:.1} MiB, at end {:.1} MiB",
            rss_start.unwrap_or(f64::NAN),
            peak_rss,
            rss_end.unwrap_or(f64::NAN)
        );
        handle.stop(true).await;
        running.await.context("joining the application")??;
        site_handle.stop(false).await;
        Ok::<_, anyhow::Error>(0)
    })
}

async fn totals(c: &reqwest::Client, api: &str) -> anyhow::Result<(u64, u64)> {
    let body: serde_json::Value = c
        .get(format!("{api}/v1/tenants/bench/sources"))
        .send()
        .await?
        .json()
        .await?;
    let mut seen = 0;
    let mut taken = 0;
    for s in body["sources"].as_array().into_iter().flatten() {
        seen += s["state"]["items_seen"].as_u64().unwrap_or(0);
        taken += s["state"]["samples_taken"].as_u64().unwrap_or(0);
    }
    Ok((seen, taken))
}

/// `aupd bench intake`: a load generator on its own thread and runtime
/// posts batches to `POST /v1/tenants/{id}/content` over loopback, spread
/// round-robin over the replicas, on each backend `args` chooses.
pub fn intake(
    base: &Settings,
    args: &BackendArgs,
    batch: usize,
    connections: usize,
    tenants: usize,
    secs: u64,
) -> anyhow::Result<i32> {
    run_on_backends("intake", args, |backend| {
        intake_on(base, backend, batch, connections, tenants, secs)
    })
}

fn intake_on(
    base: &Settings,
    backend: &Backend,
    batch: usize,
    connections: usize,
    tenants: usize,
    secs: u64,
) -> anyhow::Result<Vec<Figure>> {
    let scratch = Scratch::new("intake")?;
    let mut settings = bench_settings(base, scratch.0.join("store"));
    settings.sampling.enabled = false;
    settings.sampling.max_batch_items = settings.sampling.max_batch_items.max(batch);
    let cluster = Cluster::start(&settings, backend, &scratch.0, BuildOptions::default)?;
    let rss_start = rss_mib();
    let rate = settings.sampling.intake_sample_rate;
    let urls = cluster.urls.clone();
    let load = std::thread::spawn(
        move || -> anyhow::Result<(u64, Vec<Duration>, f64, Vec<u16>)> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("starting the load runtime")?;
            rt.block_on(async move {
                let c = client()?;
                for t in 0..tenants {
                    post_ok(
                        &c,
                        format!("{}/v1/tenants", urls[0]),
                        json!({"id": format!("bench-{t}"), "name": "Bench", "risk_tier": "high",
                           "intake_budget_per_hour": 1_000_000}),
                    )
                    .await?;
                }
                let next = Arc::new(AtomicU64::new(0));
                let t0 = Instant::now();
                let deadline = t0 + Duration::from_secs(secs);
                let mut tasks = Vec::new();
                for w in 0..connections {
                    let (c, next) = (c.clone(), next.clone());
                    // Round-robin over the replicas' ports.
                    let api = urls[w % urls.len()].clone();
                    tasks.push(tokio::spawn(async move {
                        let mut latencies = Vec::new();
                        let mut errors: Vec<u16> = Vec::new();
                        let url = format!("{api}/v1/tenants/bench-{}/content", w % tenants.max(1));
                        while Instant::now() < deadline {
                            let start = next.fetch_add(batch as u64, Ordering::Relaxed);
                            let items: Vec<_> = (start..start + batch as u64)
                                .map(|i| json!({"id": i.to_string(), "text": post_text(i)}))
                                .collect();
                            let body = serde_json::to_vec(&json!({ "items": items }))?;
                            let sent = Instant::now();
                            let r = c
                                .post(&url)
                                .header("content-type", "application/json")
                                .body(body)
                                .send()
                                .await?;
                            let status = r.status();
                            let _ = r.bytes().await?;
                            if status.is_success() {
                                latencies.push(sent.elapsed());
                            } else {
                                // Counted, not fatal: the figure says how many.
                                errors.push(status.as_u16());
                            }
                        }
                        Ok::<_, anyhow::Error>((latencies, errors))
                    }));
                }
                let mut all = Vec::new();
                let mut errors = Vec::new();
                for t in tasks {
                    let (l, e) = t.await.context("joining a load task")??;
                    all.extend(l);
                    errors.extend(e);
                }
                Ok((
                    all.len() as u64 * batch as u64,
                    all,
                    t0.elapsed().as_secs_f64(),
                    errors,
                ))
            })
        },
    );
    let joined = load
        .join()
        .map_err(|_| anyhow::anyhow!("the load thread panicked"));
    let stopped = cluster.stop();
    let (items, mut latencies, elapsed, errors) = joined??;
    stopped?;
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    let replicas = backend.replicas();
    println!(
        "intake: {} requests of {batch} items from {connections} connections to {tenants} tenant(s) over {replicas} replica(s), {elapsed:.1} s, Bernoulli rate {rate}",
        latencies.len()
    );
    let items_s = items as f64 / elapsed;
    let requests_s = latencies.len() as f64 / elapsed;
    println!(
        "  accepted {:.0} items/s ({:.0} requests/s); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        items_s,
        requests_s,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    let mut statuses: std::collections::BTreeMap<u16, usize> = Default::default();
    for e in &errors {
        *statuses.entry(*e).or_default() += 1;
    }
    println!(
        "  refused requests {} {:?} (not counted as accepted)",
        errors.len(),
        statuses
    );
    println!(
        "  RSS at start {:.1} MiB, at end {:.1} MiB (servers and load generator share the process)",
        rss_start.unwrap_or(f64::NAN),
        rss_mib().unwrap_or(f64::NAN)
    );
    let target = match backend {
        Backend::Sled => "",
        Backend::Postgres { .. } => ">= 20,000 (postgres, 3 replicas)",
    };
    Ok(vec![
        Figure::new("accepted items/s", format!("{items_s:.0}"), target),
        Figure::new("requests/s", format!("{requests_s:.0}"), ""),
        Figure::new("latency p50 ms", format!("{:.2}", pct(0.50)), ""),
        Figure::new("latency p99 ms", format!("{:.2}", pct(0.99)), ""),
        Figure::new("refused requests", errors.len().to_string(), ""),
    ])
}
