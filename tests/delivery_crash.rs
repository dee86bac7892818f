//! Invariant 2: a queued webhook is never lost. The real `aupd` binary runs
//! as a child process with a store on disk, is killed with SIGKILL while
//! messages are in flight, and restarted; every message it acknowledged
//! must reach the receiver with its original `webhook-id`. On sled the
//! restarted process sends again at once what it was sending; on
//! PostgreSQL (`AUPD_TEST_DATABASE_URL`) each start has a new replica id,
//! so those deliveries wait for their send leases to end: the test keeps
//! them short.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{shipped_policies, ADMIN_TOKEN};

fn start(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_aupd"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting aupd")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "aupd did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn messages_acknowledged_before_a_sigkill_arrive_after_restart_with_their_original_ids() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("aupd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\n\
             {}[policy]\ndir = {:?}\n\
             [auth]\nadmin_token = \"{ADMIN_TOKEN}\"\n[sampling]\nenabled = false\n\
             [log]\nlevel = \"warn\"\n\
             [delivery]\nallow_cidrs = [\"127.0.0.0/8\"]\npoll_ms = 20\nretry_scale = 0.0001\ntimeout_secs = 5\n\
             [cluster]\nlease_ms = 2000\n",
            common::store_toml(&dir.path().join("store")),
            shipped_policies()
        ),
    )
    .unwrap();
    let log = dir.path().join("aupd.log");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let receiver = Receiver::start().await;

    let mut child = start(&config, &log);
    wait_healthy(&client, &base).await;
    let created: serde_json::Value = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "url": receiver.url("crash") }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = created["id"].as_str().unwrap().to_string();
    receiver.trust("crash", &[created["secret"].as_str().unwrap()]);

    let committed: Arc<Mutex<Vec<String>>> = Arc::default();
    for cycle in 0..3 {
        if cycle > 0 {
            child = start(&config, &log);
            wait_healthy(&client, &base).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut loaders = Vec::new();
        for _ in 0..4 {
            let (client, base, endpoint, stop, committed) = (
                client.clone(),
                base.clone(),
                endpoint.clone(),
                stop.clone(),
                committed.clone(),
            );
            loaders.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(r) = client
                        .post(format!("{base}/v1/webhooks/{endpoint}/test"))
                        .bearer_auth(ADMIN_TOKEN)
                        .send()
                        .await
                    else {
                        continue;
                    };
                    if r.status().as_u16() == 202 {
                        if let Ok(v) = r.json::<serde_json::Value>().await {
                            committed
                                .lock()
                                .unwrap()
                                .push(v["message_id"].as_str().unwrap().to_string());
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(400 + 150 * cycle)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for l in loaders {
            l.await.unwrap();
        }
    }
    let committed: Vec<String> = committed.lock().unwrap().clone();
    assert!(committed.len() > 10, "the load queued messages");
    let arrived_before_restart: HashSet<String> = receiver
        .received("crash")
        .into_iter()
        .map(|r| r.id)
        .collect();

    let mut child = start(&config, &log);
    wait_healthy(&client, &base).await;
    let started = Instant::now();
    let missing = loop {
        let arrived: HashSet<String> = receiver
            .received("crash")
            .into_iter()
            .filter(|r| r.verified == vec![true] && (200..300).contains(&r.answered))
            .map(|r| r.id)
            .collect();
        let missing: Vec<&String> = committed.iter().filter(|m| !arrived.contains(*m)).collect();
        if missing.is_empty() || started.elapsed() > Duration::from_secs(60) {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages never arrived (before the last restart {} had): {:?}\n{}",
        missing.len(),
        committed.len(),
        arrived_before_restart.len(),
        &missing[..missing.len().min(5)],
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
