//! Delivery figures (`aupd bench delivery`, `aupd bench soak-kill`): a
//! receiver on loopback, messages queued in an on-disk outbox, and — for the
//! soak — the real binary killed with SIGKILL under load and restarted.
//! They print figures; nothing here is a pass/fail test.

use crate::cli::bench::percentile;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use jiff::Timestamp;

use crate::cli::bench::cluster::{run_on_backends, Backend, BackendArgs, Figure};
use crate::clock::SystemClock;
use crate::config::DeliverySettings;
use crate::delivery::endpoints::NewEndpoint;
use crate::delivery::signing::{verify, SigningSecret};
use crate::delivery::Webhooks;
use crate::domain::OutboxMessage;
use crate::enforcement::Ladders;
use crate::sampling::guard::SystemResolver;
use crate::service::cases::CaseService;
use crate::store::delivery::queue_message;
use crate::store::lease::{Lease, DELIVERY};
use crate::store::{Batch, SharedStore};

/// What the bench receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// webhook-id → arrivals (first arrival time kept).
    arrivals: HashMap<String, (u32, Timestamp)>,
    /// Signatures that did not verify.
    bad_signatures: u64,
}

#[derive(Debug, Default)]
struct ReceiverState {
    secret: Mutex<Option<SigningSecret>>,
    seen: Mutex<Seen>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

async fn receive(
    state: web::Data<ReceiverState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let now = Timestamp::now();
    let h = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let id = h("webhook-id");
    let ts: i64 = h("webhook-timestamp").parse().unwrap_or(0);
    let ok = match &*locked(&state.secret) {
        Some(secret) => verify(
            secret,
            &id,
            ts,
            &body,
            &h("webhook-signature"),
            now.as_second(),
            300,
        )
        .is_ok(),
        None => true,
    };
    let mut seen = locked(&state.seen);
    if !ok {
        seen.bad_signatures += 1;
        return HttpResponse::Unauthorized().finish();
    }
    seen.arrivals.entry(id).or_insert((0, now)).0 += 1;
    HttpResponse::NoContent().finish()
}

/// Starts the bench receiver on loopback; returns its URL and state.
fn start_receiver() -> anyhow::Result<(String, Arc<ReceiverState>)> {
    let state = Arc::new(ReceiverState::default());
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(receive))
    })
    .workers(1)
    .max_connection_rate(100_000)
    .bind("127.0.0.1:0")
    .context("binding the bench receiver")?;
    let port = server
        .addrs()
        .first()
        .map(|a| a.port())
        .context("no receiver port")?;
    tokio::spawn(server.run());
    Ok((format!("http://127.0.0.1:{port}/hook"), state))
}

/// `aupd bench delivery`: queues `messages` messages in the outbox
/// (committed in batches of `batch`), runs the dispatcher against a
/// loopback receiver that verifies every signature, and prints deliveries
/// per second and commit-to-delivery latency, on each backend `args`
/// chooses. On PostgreSQL every replica runs a dispatcher on its own store
/// and every one sends, leasing deliveries apart; the bench prints how
/// many attempts each made.
pub fn bench_delivery(
    args: &BackendArgs,
    messages: usize,
    batch: usize,
    rate: u64,
    settings: DeliverySettings,
) -> anyhow::Result<i32> {
    run_on_backends("delivery", args, |backend| {
        bench_delivery_on(backend, messages, batch, rate, settings.clone())
    })
}

fn bench_delivery_on(
    backend: &Backend,
    messages: usize,
    batch: usize,
    rate: u64,
    settings: DeliverySettings,
) -> anyhow::Result<Vec<Figure>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let dir = tempfile_dir()?;
        let mut settings = settings;
        settings.allow_cidrs = vec!["127.0.0.0/8".into()];
        // One key for every replica, as a configured `delivery.secret_key`.
        let key = Arc::new(crate::delivery::sealing::SecretKey::generate());
        let mut replicas = Vec::new();
        for i in 0..backend.replicas() {
            let store: SharedStore = backend.open_store(&dir.join("store"))?;
            let cases = CaseService::new(store.clone(), Ladders::default(), Arc::new(SystemClock));
            let webhooks = Webhooks::new(
                store.clone(),
                settings.clone(),
                Arc::new(SystemResolver),
                cases,
                key.clone(),
            )?;
            let lease = Arc::new(Lease::new(
                store.clone(),
                DELIVERY,
                &format!("bench-{i}"),
                Duration::from_secs(15),
                Arc::new(SystemClock),
            ));
            replicas.push((store, webhooks, lease));
        }
        let (store, webhooks, _) = replicas[0].clone();
        let (url, state) = start_receiver()?;
        let (_, secret) = webhooks
            .create_endpoint(NewEndpoint {
                url: url::Url::parse(&url)?,
                event_types: Vec::new(),
                description: "bench".into(),
                dry_run: false,
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        *locked(&state.secret) = Some(secret);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let leased = matches!(backend, Backend::Postgres { .. });
        let dispatchers: Vec<_> = replicas
            .iter()
            .map(|(_, w, l)| {
                tokio::spawn(crate::delivery::dispatcher::run_with_lease(
                    w.clone(),
                    leased.then(|| l.clone()),
                    stopped.clone(),
                ))
            })
            .collect();
        let started = Instant::now();
        let mut queued = 0;
        while queued < messages {
            let n = batch.min(messages - queued);
            let mut b = Batch::new();
            for i in 0..n {
                queue_message(&mut b, &bench_message(queued + i))?;
            }
            crate::store::commit_durably(&store, b).await?;
            queued += n;
            for (_, w, _) in &replicas {
                w.wake();
            }
            if rate > 0 {
                let due = Duration::from_secs_f64(queued as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        let queued_in = started.elapsed();
        loop {
            let got = locked(&state.seen).arrivals.len();
            if got >= messages || started.elapsed() > Duration::from_secs(600) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let total = started.elapsed();
        let _ = stop.send(true);
        for d in dispatchers {
            let _ = d.await;
        }
        let mut per_sender: std::collections::BTreeMap<String, usize> = Default::default();
        for d in store.deliveries(false)? {
            for a in d.attempts {
                *per_sender.entry(a.sender.unwrap_or_default()).or_default() += 1;
            }
        }
        let per_sender = per_sender
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let created: HashMap<String, Timestamp> = store.messages()?
            .into_iter()
            .map(|m| (m.id, m.created_at))
            .collect();
        let seen = locked(&state.seen);
        let mut latencies: Vec<f64> = seen
            .arrivals
            .iter()
            .filter_map(|(id, (_, at))| {
                created
                    .get(id)
                    .map(|c| at.duration_since(*c).as_secs_f64() * 1000.0)
            })
            .collect();
        latencies.sort_by(|a, b| a.total_cmp(b));
        let duplicates: u32 = seen.arrivals.values().map(|(n, _)| n - 1).sum();
        let rate_s = seen.arrivals.len() as f64 / total.as_secs_f64();
        println!(
            "delivery: {} messages queued in the {} outbox in batches of {batch} ({:.2}s{}), one endpoint, per-endpoint concurrency {} (shared by the replicas that send)",
            messages,
            backend.name(),
            queued_in.as_secs_f64(),
            if rate > 0 { format!(", paced at {rate}/s") } else { ", as fast as possible".to_string() },
            settings.per_endpoint_concurrency
        );
        println!(
            "dispatchers: {}, every one sending; attempts per replica: {per_sender}",
            replicas.len()
        );
        println!(
            "delivered {} in {:.2}s: {:.0} deliveries/s; lost {}, duplicated {}, bad signatures {}",
            seen.arrivals.len(),
            total.as_secs_f64(),
            rate_s,
            messages.saturating_sub(seen.arrivals.len()),
            duplicates,
            seen.bad_signatures
        );
        let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
        println!(
            "commit to delivery: p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
            latencies.last().copied().unwrap_or(0.0)
        );
        drop(seen);
        drop(replicas);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(vec![
            Figure::new("deliveries/s", format!("{rate_s:.0}"), ">= 1,000"),
            Figure::new("duplicated", duplicates.to_string(), "0"),
            Figure::new("commit to delivery p50 ms", format!("{p50:.1}"), ""),
            Figure::new("commit to delivery p99 ms", format!("{p99:.1}"), ""),
            Figure::new("attempts per replica", per_sender, ""),
        ])
    })
}

fn bench_message(i: usize) -> OutboxMessage {
    OutboxMessage {
        id: crate::store::cases::new_message_id(),
        event_type: "case.opened".into(),
        idempotency_key: format!("bench:{i}"),
        tenant: None,
        payload: serde_json::json!({ "version": 1, "n": i }),
        created_at: Timestamp::now(),
        endpoint: None,
    }
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("aupd-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `aupd bench soak-kill`: runs the real binary (`exe serve`) against a
/// loopback receiver, queues test messages over the API from `loaders`
/// clients, kills the process with SIGKILL `cycles` times mid-load,
/// restarts it, and finally counts committed messages that never arrived
/// (lost) and arrivals beyond the first (duplicated).
pub fn soak_kill(
    exe: &Path,
    policy_dir: &Path,
    cycles: usize,
    loaders: usize,
) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let dir = tempfile_dir()?;
        let (url, state) = start_receiver()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let token = "soak-admin-token-0123456789";
        let config = dir.join("aupd.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\n[store]\npath = {:?}\n[policy]\ndir = {:?}\n\
                 [auth]\nadmin_token = \"{token}\"\n[sampling]\nenabled = false\n[log]\nlevel = \"error\"\n\
                 [delivery]\nallow_cidrs = [\"127.0.0.0/8\"]\npoll_ms = 20\nretry_scale = 0.0001\n",
                dir.join("store"),
                policy_dir
            ),
        )?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        let committed: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut endpoint: Option<String> = None;
        for cycle in 0..=cycles {
            let mut child = spawn_serve(exe, &config, &dir)?;
            wait_healthy(&client, &base).await?;
            let id = match &endpoint {
                Some(id) => id.clone(),
                None => {
                    let created: serde_json::Value = client
                        .post(format!("{base}/v1/webhooks"))
                        .bearer_auth(token)
                        .json(&serde_json::json!({ "url": url, "description": "soak" }))
                        .send()
                        .await?
                        .json()
                        .await?;
                    let secret = created["secret"].as_str().context("no secret")?;
                    *locked(&state.secret) = Some(SigningSecret::parse(secret)?);
                    let id = created["id"].as_str().context("no id")?.to_string();
                    endpoint = Some(id.clone());
                    id
                }
            };
            if cycle == cycles {
                // The last start only drains what is queued.
                let expected = locked(&committed).len();
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(120) {
                    let all = {
                        let seen = locked(&state.seen);
                        locked(&committed)
                            .iter()
                            .all(|m| seen.arrivals.contains_key(m))
                    };
                    if all {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = child.kill();
                let _ = child.wait();
                let seen = locked(&state.seen);
                let lost = locked(&committed)
                    .iter()
                    .filter(|m| !seen.arrivals.contains_key(*m))
                    .count();
                let duplicated: u32 = seen.arrivals.values().map(|(n, _)| n - 1).sum();
                println!(
                    "soak-kill: {cycles} SIGKILL/restart cycles, {expected} messages committed, {} arrived, lost {lost}, duplicated {duplicated}, bad signatures {}",
                    seen.arrivals.len(),
                    seen.bad_signatures
                );
                let _ = std::fs::remove_dir_all(&dir);
                return Ok(i32::from(lost > 0));
            }
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut tasks = Vec::new();
            for _ in 0..loaders {
                let (client, base, id, stop, committed) =
                    (client.clone(), base.clone(), id.clone(), stop.clone(), committed.clone());
                tasks.push(tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let sent = client
                            .post(format!("{base}/v1/webhooks/{id}/test"))
                            .bearer_auth(token)
                            .send()
                            .await;
                        if let Ok(r) = sent {
                            if r.status().as_u16() == 202 {
                                if let Ok(v) = r.json::<serde_json::Value>().await {
                                    if let Some(m) = v["message_id"].as_str() {
                                        locked(&committed).push(m.to_string());
                                    }
                                }
                            }
                        }
                    }
                }));
            }
            let run_for = Duration::from_millis(300 + rand::random::<u64>() % 700);
            tokio::time::sleep(run_for).await;
            child.kill().context("killing aupd")?;
            let _ = child.wait();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for t in tasks {
                let _ = t.await;
            }
        }
        Ok(0)
    })
}

/// Starts `exe serve` with `config`, its log in `dir/aupd.log`.
pub(crate) fn spawn_serve(
    exe: &Path,
    config: &Path,
    dir: &Path,
) -> anyhow::Result<std::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("aupd.log"))?;
    std::process::Command::new(exe)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))
}

/// Waits up to 30 s for `base/healthz` to answer 2xx.
pub(crate) async fn wait_healthy(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("aupd did not become healthy within 30s")
}
