//! Enforcement benchmarks (`aupd bench deadlines`, `aupd bench actions`):
//! they build real stores and servers and print figures. Never pass/fail.

use crate::bench::percentile;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::bench_sampling::{rss_mib, Scratch};
use crate::clock::{ManualClock, SystemClock};
use crate::commands::CaseService;
use crate::config::{Secret, Settings};
use crate::domain::{
    Actor, ActorKind, CaseId, Command, EvidenceKind, EvidenceRef, Severity, TenantId,
};
use crate::enforcement::{decide, Ladders};
use crate::store::cases::transition_batch;
use crate::store::{SharedStore, SledStore};

const TOKEN: &str = "bench-admin-token-0123456789";

fn open_store(path: &std::path::Path) -> anyhow::Result<SharedStore> {
    Ok(Arc::new(
        SledStore::open_with_cache(path, 128 * 1024 * 1024).context("opening the bench store")?,
    ))
}

/// `aupd bench deadlines`: `cases` open cases with running deadlines, of
/// which `due` come due during a `window_secs` window after a restart (a
/// hundred are already overdue at the restart). Prints restart-to-first-fire
/// time, fire lag percentiles and resident memory.
pub fn deadlines(cases: usize, due: usize, window_secs: u64, tick_ms: u64) -> anyhow::Result<i32> {
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
    let open_one = |store: &SharedStore, i: usize, due_at: Timestamp| -> anyhow::Result<()> {
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
        let batch = transition_batch(
            store,
            &t,
            &crate::store::cases::absent(&t.case.id),
            None,
            opened_at,
        )?;
        store.commit(batch)?;
        Ok(())
    };

    let setup = Instant::now();
    let window_start;
    {
        let store = open_store(&path)?;
        // First the cases whose deadlines lie a day away ...
        for i in 0..far {
            open_one(
                &store,
                i,
                t0 + SignedDuration::from_hours(24) + SignedDuration::from_secs(i as i64),
            )?;
        }
        // ... then those that come due in the window, which starts once
        // they are all written (about 1 ms each, with room to spare).
        window_start = Timestamp::now() + SignedDuration::from_millis(3000 + 3 * due as i64);
        for k in 0..due {
            let due_at = if k < overdue {
                window_start - SignedDuration::from_secs(3600)
            } else {
                let span = window_secs as f64 * 1000.0;
                window_start
                    + SignedDuration::from_millis(
                        ((k - overdue) as f64 / (due - overdue).max(1) as f64 * span) as i64,
                    )
            };
            open_one(&store, far + k, due_at)?;
        }
        store.flush()?;
    }
    let pending = cases;
    println!(
        "set-up: {cases} open cases with a running cure deadline ({due} due in the window, {overdue} overdue at restart) in {:.1}s; RSS {:.0} MiB",
        setup.elapsed().as_secs_f64(),
        rss_mib().unwrap_or(0.0)
    );
    let now = Timestamp::now();
    if now < window_start {
        std::thread::sleep(Duration::from_millis(
            window_start.duration_since(now).as_millis().max(0) as u64,
        ));
    }

    // Restart: open the store and fire what is overdue.
    let restart = Instant::now();
    let store = open_store(&path)?;
    let service = CaseService::new(store.clone(), ladders.clone(), Arc::new(SystemClock));
    let opened = restart.elapsed();
    let first = service.fire_due(1)?;
    let to_first_fire = restart.elapsed();
    anyhow::ensure!(!first.is_empty(), "nothing was overdue at restart");
    println!(
        "restart: store open in {:.0} ms, first overdue deadline fired {:.0} ms after start",
        opened.as_secs_f64() * 1000.0,
        to_first_fire.as_secs_f64() * 1000.0
    );

    // Run the ticker through the window, recording how late each fire is.
    let started = Timestamp::now();
    let mut lags: Vec<f64> = Vec::new();
    let mut fired_overdue = first.len();
    let end = Instant::now() + Duration::from_secs(window_secs + 2);
    let tick = Duration::from_millis(tick_ms.max(1));
    while Instant::now() < end {
        for (d, _) in service.fire_due(10_000)? {
            let lag = Timestamp::now().duration_since(d.due_at).as_secs_f64();
            if d.due_at >= started {
                lags.push(lag);
            } else {
                fired_overdue += 1;
            }
        }
        let pause = match service.next_due()? {
            Some(next) => {
                let until = next.duration_since(Timestamp::now());
                Duration::from_millis(until.as_millis().clamp(1, tick.as_millis() as i128) as u64)
            }
            None => tick,
        };
        std::thread::sleep(pause);
    }
    lags.sort_by(f64::total_cmp);
    let remaining = crate::store::cases::pending_deadlines(&store)?;
    println!(
        "ticker: {} deadlines fired on time-window ({} overdue ones at restart); lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} of {pending} still pending; RSS {:.0} MiB",
        lags.len(),
        fired_overdue,
        percentile(&lags, 0.5) * 1000.0,
        percentile(&lags, 0.99) * 1000.0,
        lags.last().copied().unwrap_or(0.0) * 1000.0,
        remaining,
        rss_mib().unwrap_or(0.0)
    );
    Ok(0)
}

/// `aupd bench actions`: case actions through the HTTP API on loopback,
/// from `connections` concurrent clients for `secs` seconds.
pub fn actions(
    base: &Settings,
    cases: usize,
    connections: usize,
    secs: u64,
) -> anyhow::Result<i32> {
    let scratch = Scratch::new("actions")?;
    let mut settings = base.clone();
    settings.server.bind = "127.0.0.1:0".into();
    settings.store.path = scratch.0.join("store");
    settings.auth.admin_token = Some(Secret::new(TOKEN));
    settings.sampling.enabled = false;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server runtime")?;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let (api, handle, running) = server_rt.block_on(async {
        let app = crate::app::Application::build_with(
            &settings,
            crate::app::BuildOptions {
                clock,
                ..Default::default()
            },
        )?;
        let api = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let running = tokio::spawn(app.run_until_stopped());
        Ok::<_, anyhow::Error>((api, handle, running))
    })?;
    let load = std::thread::spawn(move || -> anyhow::Result<(u64, Vec<f64>, f64)> {
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
            let post = move |path: String, body: serde_json::Value| {
                let c = c.clone();
                let api = api.clone();
                async move {
                    let r = c.post(format!("{api}{path}")).bearer_auth(TOKEN).json(&body).send().await?;
                    let status = r.status();
                    let v: serde_json::Value = r.json().await.unwrap_or_default();
                    anyhow::ensure!(status.is_success(), "POST {path}: {status} {v}");
                    Ok::<_, anyhow::Error>(v)
                }
            };
            post("/v1/tenants".into(), json!({"id": "bench-actions", "name": "Bench"})).await?;
            let mut ids = Vec::new();
            for _ in 0..cases {
                let v = post(
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
            Ok((all.len() as u64, all, t0.elapsed().as_secs_f64()))
        })
    });
    let result = load
        .join()
        .map_err(|_| anyhow::anyhow!("load thread panicked"))?;
    server_rt.block_on(async {
        handle.stop(true).await;
        let _ = running.await;
    });
    let (count, mut lat, elapsed) = result?;
    lat.sort_by(f64::total_cmp);
    println!(
        "case actions: {count} in {elapsed:.1}s = {:.0} actions/s over {connections} connections on {cases} cases; latency p50 {:.1} ms, p99 {:.1} ms (each one read, decided, committed with its audit event and flushed)",
        count as f64 / elapsed,
        percentile(&lat, 0.5) * 1000.0,
        percentile(&lat, 0.99) * 1000.0
    );
    Ok(0)
}
