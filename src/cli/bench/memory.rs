//! `aupd bench memory`: resident memory of a real `aupd serve` under a
//! steady, mixed load over loopback, printed at intervals for as long as
//! asked. It answers "does memory level off, and where": every line gives
//! the server's RSS next to the size of its store on disk. Never pass/fail.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::cli::bench::sampling::Scratch;
use crate::cli::bench::soak::{spawn_serve, wait_healthy};

const TOKEN: &str = "bench-memory-admin-token-0123456789";

/// What one run does.
#[derive(Debug, Clone)]
pub struct MemoryRun {
    /// Seconds of load.
    pub secs: u64,
    /// Requests started per second.
    pub rate: u64,
    /// Seconds between RSS lines.
    pub every: u64,
    /// Tenants the load is spread over.
    pub tenants: usize,
    /// `store.cache_mb` of the server (`None`: its default).
    pub cache_mb: Option<u64>,
}

/// Resident set size of process `pid` in MiB (Linux), if known.
fn rss_of(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The `i`th request of the mix: intake, scoring, reads, metrics, and the
/// bad requests outside testers send (unknown paths, wrong and made-up
/// methods), each kind a tenth of the load.
fn request(
    c: &reqwest::Client,
    base: &str,
    i: u64,
    tenants: usize,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let t = format!("mem-{}", i as usize % tenants.max(1));
    Ok(match i % 10 {
        0 => {
            let items: Vec<_> = (0..20)
                .map(|k| {
                    let n = i * 20 + k;
                    let text = if n.is_multiple_of(40) {
                        format!("post {n}: we must storm the capitol tomorrow, bring your guns")
                    } else {
                        format!("post {n}: the market opens at nine with bread and cheese")
                    };
                    json!({"id": n.to_string(), "url": format!("https://{t}.example/p/{n}"), "text": text})
                })
                .collect();
            c.post(format!("{base}/v1/tenants/{t}/content"))
                .json(&json!({ "items": items }))
        }
        1 => c
            .post(format!("{base}/v1/score"))
            .json(&json!({"text": format!("message {i}: see you at the game tonight")})),
        2 => c.get(format!("{base}/v1/tenants/{t}")),
        3 => c.get(format!("{base}/v1/cases?tenant={t}")),
        4 => c.get(format!("{base}/metrics")),
        5 => c.get(format!("{base}/v1/events?limit=50")),
        6 => c.get(format!("{base}/v1/tenants/{t}/prevalence")),
        7 => c.get(format!("{base}/v1/no/such/route/{i}")),
        8 => c.delete(format!("{base}/v1/tenants")),
        _ => {
            let method = reqwest::Method::from_bytes(format!("X{i}").as_bytes())
                .context("building a made-up method")?;
            c.request(method, format!("{base}/v1/tenants"))
        }
    })
}

/// Runs `aupd serve` (this executable) over a scratch store and drives it.
pub fn memory(exe: &Path, policy_dir: &Path, run: MemoryRun) -> anyhow::Result<i32> {
    let scratch = Scratch::new("memory")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cache = run
        .cache_mb
        .map(|mb| format!("cache_mb = {mb}\n"))
        .unwrap_or_default();
    let config = scratch.0.join("aupd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\n[store]\npath = {:?}\n{cache}\
             [policy]\ndir = {:?}\n[auth]\nadmin_token = \"{TOKEN}\"\n\
             [sampling]\nenabled = false\nintake_sample_rate = 1.0\n[log]\nlevel = \"error\"\n",
            scratch.0.join("store"),
            policy_dir
        ),
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the load runtime")?;
    let mut child = spawn_serve(exe, &config, &scratch.0)?;
    let pid = child.id();
    let result = runtime.block_on(drive(&scratch.0, port, pid, &run));
    let _ = child.kill();
    let _ = child.wait();
    result.map(|()| 0)
}

async fn drive(dir: &Path, port: u16, pid: u32, run: &MemoryRun) -> anyhow::Result<()> {
    let base = format!("http://127.0.0.1:{port}");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse()?);
    let c = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(10))
        .build()?;
    wait_healthy(&c, &base).await?;
    for t in 0..run.tenants.max(1) {
        let r = c
            .post(format!("{base}/v1/tenants"))
            .json(&json!({"id": format!("mem-{t}"), "name": "Bench", "intake_budget_per_hour": 1_000_000}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "creating a tenant: {}", r.status());
    }
    println!(
        "memory: {} requests/s for {} s over {} tenant(s), store.cache_mb {}; RSS of the server process",
        run.rate,
        run.secs,
        run.tenants,
        run.cache_mb
            .map_or("default".to_string(), |m| m.to_string())
    );
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // Bounded: at most this many requests in flight, whatever the server's speed.
    let slots = Arc::new(tokio::sync::Semaphore::new(64));
    let started = Instant::now();
    let end = started + Duration::from_secs(run.secs);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / run.rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_line = started;
    let mut first: Option<f64> = None;
    let mut peak = 0.0f64;
    let mut i = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        if Instant::now() >= next_line {
            let rss = rss_of(pid).unwrap_or(f64::NAN);
            first.get_or_insert(rss);
            peak = peak.max(rss);
            println!(
                "  t={:>5.0}s  rss={rss:>7.1} MiB  store={:>7.1} MiB  requests={}  errors={}",
                started.elapsed().as_secs_f64(),
                dir_bytes(&dir.join("store")) as f64 / (1024.0 * 1024.0),
                done.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed),
            );
            next_line += Duration::from_secs(run.every.max(1));
        }
        let permit = slots.clone().acquire_owned().await?;
        let req = request(&c, &base, i, run.tenants)?;
        let (done, failed) = (done.clone(), failed.clone());
        tokio::spawn(async move {
            match req.send().await {
                // 4xx are expected from the bad requests of the mix.
                Ok(r) if !r.status().is_server_error() => {
                    let _ = r.bytes().await;
                }
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        });
        i += 1;
    }
    let _ = slots.acquire_many(64).await;
    let last = rss_of(pid).unwrap_or(f64::NAN);
    println!(
        "  end: rss {last:.1} MiB (first {:.1}, peak {:.1}); {} requests, {} errors, {:.1} requests/s",
        first.unwrap_or(f64::NAN),
        peak.max(last),
        done.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}
