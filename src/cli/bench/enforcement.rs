//! Enforcement benchmarks (`aupd bench deadlines`, `aupd bench actions`):
//! they build real stores and servers and print figures. Never pass/fail.

use crate::cli::bench::percentile;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::cli::bench::cluster::{run_on_backends, Backend, BackendArgs, Cluster, Figure};
use crate::cli::bench::sampling::{rss_mib, Scratch};
use crate::clock::{ManualClock, SystemClock};
use crate::config::{Secret, Settings};
use crate::domain::{
    Actor, ActorKind, CaseId, Command, EvidenceKind, EvidenceRef, Severity, TenantId,
};
use crate::enforcement::{decide, Ladders};
use crate::service::cases::CaseService;
use crate::store::cases::transition_batch;
use crate::store::{Batch, SharedStore};

const TOKEN: &str = "bench-admin-token-0123456789";

/// Cases opened per commit during set-up (one round trip per commit on
/// PostgreSQL; one at a time would take minutes there).
const SETUP_BATCH: usize = 500;

/// `aupd bench deadlines`: `cases` open cases with running deadlines, of
/// which `due` come due during a `window_secs` window after a restart (a
/// hundred are already overdue at the restart). Prints restart-to-first-fire
/// time, fire lag percentiles and resident memory; with several replicas,
/// every replica runs its own ticker on its own store instance against the
/// one database at once, as replicas do, each deadline claimed by the one
/// that fires it, and the run counts deadlines fired by more than one.
pub fn deadlines(
    args: &BackendArgs,
    cases: usize,
    due: usize,
    window_secs: u64,
    tick_ms: u64,
) -> anyhow::Result<i32> {
    run_on_backends("deadlines", args, |backend| {
        deadlines_on(backend, cases, due, window_secs, tick_ms)
    })
}

/// What one replica's ticker did through the window.
#[derive(Default)]
struct TickerRun {
    lags: Vec<f64>,
    overdue: usize,
    fired: Vec<String>,
    errors: usize,
}

fn deadlines_on(
    backend: &Backend,
    cases: usize,
    due: usize,
    window_secs: u64,
    tick_ms: u64,
) -> anyhow::Result<Vec<Figure>> {
    let scratch = Scratch::new("deadlines")?;
    let path = scratch.0.join("store");
    let mut ladders = Ladders::default();
    // One deadline per case: reminders would only add more of the same.
    ladders.critical.reminders.clear();
    let cure = ladders.critical.cure_window;
    let overdue = 100.min(due);
    let far = cases.saturating_sub(due);
    let t0 = Timestamp::now();
    let actor = Actor::new(ActorKind::Service, "bench");
    let open_one = |store: &SharedStore,
                    batch: &mut Batch,
                    i: usize,
                    due_at: Timestamp|
     -> anyhow::Result<()> {
        let opened_at = due_at - cure;
        let command = Command::Open {
            case_id: CaseId::new(),
            tenant: TenantId::try_from(format!("tenant-{}", i % 1000))
                .map_err(anyhow::Error::msg)?,
            categories: vec!["violent-incitement".into()],
            severity: Severity::Critical,
            evidence: vec![EvidenceRef {
                kind: EvidenceKind::Prevalence {
                    sampled: 100,
                    flagged: 9,
                    lower: 0.05,
                    upper: 0.16,
                },
                category: "violent-incitement".into(),
                url: None,
                policy_version: None,
            }],
            report: None,
        };
        let t = decide(None, &actor, &command, &ladders, opened_at)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        batch.extend(transition_batch(
            store,
            &t,
            &crate::store::cases::absent(&t.case.id),
            None,
            opened_at,
        )?);
        Ok(())
    };
    // Opens cases `from..to` with their due times, SETUP_BATCH per commit.
    let open_many = |store: &SharedStore,
                     from: usize,
                     to: usize,
                     due_at: &dyn Fn(usize) -> Timestamp|
     -> anyhow::Result<()> {
        let mut i = from;
        while i < to {
            let mut batch = Batch::new();
            for k in i..(i + SETUP_BATCH).min(to) {
                open_one(store, &mut batch, k, due_at(k))?;
            }
            store.commit(batch)?;
            i = (i + SETUP_BATCH).min(to);
        }
        Ok(())
    };

    let setup = Instant::now();
    let window_start;
    {
        let store = backend.open_store(&path)?;
        // First the cases whose deadlines lie a day away ...
        open_many(&store, 0, far, &|i| {
            t0 + SignedDuration::from_hours(24) + SignedDuration::from_secs(i as i64)
        })?;
        // ... then those that come due in the window, which starts once
        // they are all written (well under 1 ms each, with room to spare).
        window_start = Timestamp::now() + SignedDuration::from_millis(3000 + due as i64);
        open_many(&store, far, far + due, &|i| {
            let k = i - far;
            if k < overdue {
                window_start - SignedDuration::from_secs(3600)
            } else {
                let span = window_secs as f64 * 1000.0;
                window_start
                    + SignedDuration::from_millis(
                        ((k - overdue) as f64 / (due - overdue).max(1) as f64 * span) as i64,
                    )
            }
        })?;
        store.flush()?;
    }
    let pending = cases;
    let setup_secs = setup.elapsed().as_secs_f64();
    println!(
        "set-up: {cases} open cases with a running cure deadline ({due} due in the window, {overdue} overdue at restart) in {setup_secs:.1}s, {SETUP_BATCH} per commit; RSS {:.0} MiB",
        rss_mib().unwrap_or(0.0)
    );
    let now = Timestamp::now();
    if now < window_start {
        std::thread::sleep(Duration::from_millis(
            window_start.duration_since(now).as_millis().max(0) as u64,
        ));
    }

    // Restart: every replica opens its own store; the first fires what is
    // overdue.
    let restart = Instant::now();
    let services = (0..backend.replicas())
        .map(|_| {
            let store = backend.open_store(&path)?;
            Ok(CaseService::new(
                store,
                ladders.clone(),
                Arc::new(SystemClock),
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opened = restart.elapsed();
    let first = services[0].fire_due(1)?;
    let to_first_fire = restart.elapsed();
    anyhow::ensure!(!first.is_empty(), "nothing was overdue at restart");
    println!(
        "restart: {} store(s) open in {:.0} ms, first overdue deadline fired {:.0} ms after start",
        services.len(),
        opened.as_secs_f64() * 1000.0,
        to_first_fire.as_secs_f64() * 1000.0
    );

    // Every replica runs the ticker through the window at once, recording
    // how late each of its fires is.
    let started = Timestamp::now();
    let end = Instant::now() + Duration::from_secs(window_secs + 2);
    let tick = Duration::from_millis(tick_ms.max(1));
    let mut runs: Vec<TickerRun> = std::thread::scope(|s| {
        let tickers: Vec<_> = services
            .iter()
            .map(|service| {
                s.spawn(move || {
                    let mut run = TickerRun::default();
                    while Instant::now() < end {
                        match service.fire_due(10_000) {
                            Ok(fired) => {
                                for (d, _) in fired {
                                    let lag =
                                        Timestamp::now().duration_since(d.due_at).as_secs_f64();
                                    if d.due_at >= started {
                                        run.lags.push(lag);
                                    } else {
                                        run.overdue += 1;
                                    }
                                    run.fired.push(d.id.0.clone());
                                }
                            }
                            Err(e) => {
                                run.errors += 1;
                                if run.errors <= 3 {
                                    eprintln!("a ticker pass failed: {e:#}");
                                }
                            }
                        }
                        let pause = match service.next_due() {
                            Ok(Some(next)) => {
                                let until = next.duration_since(Timestamp::now());
                                Duration::from_millis(
                                    until.as_millis().clamp(1, tick.as_millis() as i128) as u64,
                                )
                            }
                            _ => tick,
                        };
                        std::thread::sleep(pause);
                    }
                    run
                })
            })
            .collect();
        tickers
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .collect()
    });
    if let Some(r) = runs.first_mut() {
        r.overdue += first.len();
        r.fired.extend(first.iter().map(|(d, _)| d.id.0.clone()));
    }
    let mut times: HashMap<&str, usize> = HashMap::new();
    for r in &runs {
        for id in &r.fired {
            *times.entry(id.as_str()).or_default() += 1;
        }
    }
    let duplicated = times.values().filter(|n| **n > 1).count();
    let mut lags: Vec<f64> = runs.iter().flat_map(|r| r.lags.iter().copied()).collect();
    lags.sort_by(f64::total_cmp);
    let fired_overdue: usize = runs.iter().map(|r| r.overdue).sum();
    let errors: usize = runs.iter().map(|r| r.errors).sum();
    let remaining = services[0].store().pending_deadlines()?;
    let (p50, p99, max) = (
        percentile(&lags, 0.5) * 1000.0,
        percentile(&lags, 0.99) * 1000.0,
        lags.last().copied().unwrap_or(0.0) * 1000.0,
    );
    println!(
        "ticker: {} deadlines fired on time-window ({} overdue ones at restart); lag p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms; {} of {pending} still pending; RSS {:.0} MiB",
        lags.len(),
        fired_overdue,
        remaining,
        rss_mib().unwrap_or(0.0)
    );
    let per_replica: Vec<String> = runs.iter().map(|r| r.fired.len().to_string()).collect();
    println!(
        "replicas: {} ticker(s) at once, each on its own store, each deadline claimed by one; fired per replica [{}]; duplicated deadlines {duplicated}; failed ticker passes {errors}",
        runs.len(),
        per_replica.join(", ")
    );
    Ok(vec![
        Figure::new("set-up s", format!("{setup_secs:.1}"), ""),
        Figure::new("fire lag p50 ms", format!("{p50:.0}"), ""),
        Figure::new(
            "fire lag p99 ms",
            format!("{p99:.0}"),
            "< 1,000 with 100,000 open cases",
        ),
        Figure::new("fire lag max ms", format!("{max:.0}"), ""),
        Figure::new("duplicated deadlines", duplicated.to_string(), "0"),
        Figure::new("fired per replica", per_replica.join("/"), ""),
    ])
}

/// `aupd bench actions`: case actions through the HTTP API on loopback,
/// from `connections` concurrent clients for `secs` seconds, spread
/// round-robin over the replicas, on each backend `args` chooses.
pub fn actions(
    base: &Settings,
    args: &BackendArgs,
    cases: usize,
    connections: usize,
    secs: u64,
) -> anyhow::Result<i32> {
    run_on_backends("actions", args, |backend| {
        actions_on(base, backend, cases, connections, secs)
    })
}

fn actions_on(
    base: &Settings,
    backend: &Backend,
    cases: usize,
    connections: usize,
    secs: u64,
) -> anyhow::Result<Vec<Figure>> {
    let scratch = Scratch::new("actions")?;
    let mut settings = base.clone();
    settings.auth.admin_token = Some(Secret::new(TOKEN));
    settings.sampling.enabled = false;
    // One clock for every replica, as one wall clock would be.
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let cluster = Cluster::start(&settings, backend, &scratch.0, || {
        crate::app::BuildOptions {
            clock: clock.clone(),
            ..Default::default()
        }
    })?;
    let urls = cluster.urls.clone();
    type Load = (u64, Vec<f64>, f64, Reads);
    let load = std::thread::spawn(move || -> anyhow::Result<Load> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the load runtime")?;
        rt.block_on(async move {
            let c = reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .context("building the client")?;
            let reader = c.clone();
            let post = move |api: String, path: String, body: serde_json::Value| {
                let c = c.clone();
                async move {
                    let r = c.post(format!("{api}{path}")).bearer_auth(TOKEN).json(&body).send().await?;
                    let status = r.status();
                    let v: serde_json::Value = r.json().await.unwrap_or_default();
                    anyhow::ensure!(status.is_success(), "POST {path}: {status} {v}");
                    Ok::<_, anyhow::Error>(v)
                }
            };
            post(urls[0].clone(), "/v1/tenants".into(), json!({"id": "bench-actions", "name": "Bench"})).await?;
            let mut ids = Vec::new();
            for k in 0..cases {
                let v = post(
                    urls[k % urls.len()].clone(),
                    "/v1/cases".into(),
                    json!({"tenant": "bench-actions", "categories": ["harassment"], "findings": ["bench-finding"], "reason": "bench"}),
                )
                .await?;
                ids.push(v["id"].as_str().unwrap_or_default().to_string());
            }
            let ids = Arc::new(ids);
            let t0 = Instant::now();
            let deadline = t0 + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for w in 0..connections {
                let ids = ids.clone();
                let post = post.clone();
                // Round-robin over the replicas' ports.
                let api = urls[w % urls.len()].clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut n = 0usize;
                    while Instant::now() < deadline {
                        // Each client works its own cases, so actions do not
                        // fight over one record.
                        let id = &ids[(w + n * connections) % ids.len()];
                        let owner = if n.is_multiple_of(2) { "olivia" } else { "oscar" };
                        let sent = Instant::now();
                        post(
                            api.clone(),
                            format!("/v1/cases/{id}/actions"),
                            json!({"action": "assign", "owner": owner, "reason": "rebalancing the queue"}),
                        )
                        .await?;
                        lat.push(sent.elapsed().as_secs_f64());
                        n += 1;
                    }
                    Ok::<_, anyhow::Error>(lat)
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.context("load task")??);
            }
            let elapsed = t0.elapsed().as_secs_f64();
            // Reads after the load: the tenant's case list, and case views
            // (each with the events the actions appended).
            let get = |api: &str, path: String| {
                let (c, url) = (reader.clone(), format!("{api}{path}"));
                async move {
                    let sent = Instant::now();
                    let r = c.get(&url).bearer_auth(TOKEN).send().await?;
                    let status = r.status();
                    r.bytes().await?;
                    anyhow::ensure!(status.is_success(), "GET {url}: {status}");
                    Ok::<_, anyhow::Error>(sent.elapsed().as_secs_f64())
                }
            };
            let mut reads = Reads::default();
            for k in 0..20 {
                let api = &urls[k % urls.len()];
                reads.list.push(get(api, "/v1/cases?tenant=bench-actions".into()).await?);
            }
            for k in 0..100 {
                let api = &urls[k % urls.len()];
                reads.view.push(get(api, format!("/v1/cases/{}", ids[k % ids.len()])).await?);
            }
            Ok((all.len() as u64, all, elapsed, reads))
        })
    });
    let result = load
        .join()
        .map_err(|_| anyhow::anyhow!("load thread panicked"));
    let stopped = cluster.stop();
    let (count, mut lat, elapsed, mut reads) = result??;
    stopped?;
    lat.sort_by(f64::total_cmp);
    reads.list.sort_by(f64::total_cmp);
    reads.view.sort_by(f64::total_cmp);
    let ms = |v: &[f64], q: f64| format!("{:.1}", percentile(v, q) * 1000.0);
    println!(
        "case reads: the tenant's {cases} cases listed in p50 {} ms (20 reads), a case with its events viewed in p50 {} ms, p99 {} ms (100 reads)",
        ms(&reads.list, 0.5),
        ms(&reads.view, 0.5),
        ms(&reads.view, 0.99)
    );
    let rate = count as f64 / elapsed;
    println!(
        "case actions: {count} in {elapsed:.1}s = {rate:.0} actions/s over {connections} connections to {} replica(s) on {cases} cases; latency p50 {:.1} ms, p99 {:.1} ms (each one read, decided, committed with its audit event and flushed)",
        backend.replicas(),
        percentile(&lat, 0.5) * 1000.0,
        percentile(&lat, 0.99) * 1000.0
    );
    Ok(vec![
        Figure::new("actions/s", format!("{rate:.0}"), ">= 1,000"),
        Figure::new(
            "latency p50 ms",
            format!("{:.1}", percentile(&lat, 0.5) * 1000.0),
            "",
        ),
        Figure::new(
            "latency p99 ms",
            format!("{:.1}", percentile(&lat, 0.99) * 1000.0),
            "",
        ),
        Figure::new("case list p50 ms", ms(&reads.list, 0.5), ""),
        Figure::new("case view p50 ms", ms(&reads.view, 0.5), ""),
    ])
}

/// Read latencies (seconds) measured after the actions.
#[derive(Default)]
struct Reads {
    list: Vec<f64>,
    view: Vec<f64>,
}
