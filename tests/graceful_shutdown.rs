//! SIGTERM drains: a request in flight when the signal arrives is answered
//! in full, the process exits 0, and every write acknowledged before or
//! during the drain is in the store after a restart.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use common::{start_daemon, Daemon};
use serde_json::{json, Value};

async fn start(dir: &Path, log_name: &str) -> Daemon {
    let log = std::fs::File::create(dir.join(log_name)).unwrap();
    start_daemon(
        dir,
        "shutdown_grace_secs = 20\n",
        "[log]\nformat = \"json\"\nlevel = \"info\"\n\
         [sampling]\ntick_ms = 50\n[enforcement]\ntick_ms = 50\n",
        log.into(),
    )
    .await
}

fn wait_for_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "aupd did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn create_tenant(aupd: &Daemon, id: &str) {
    let r = aupd
        .client
        .post(format!("{}/v1/tenants", aupd.base))
        .json(&json!({"id": id, "name": format!("Tenant {id}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_request_in_flight_at_sigterm_completes_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut aupd = start(dir.path(), "first.log").await;
    let before: Vec<String> = (0..5).map(|i| format!("before-{i}")).collect();
    for id in &before {
        create_tenant(&aupd, id).await;
    }

    // Arrange a request that is in flight across the signal: its body is
    // streamed, half now and half after SIGTERM.
    let body = json!({"id": "in-flight", "name": "Sent across SIGTERM"}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let request = aupd
        .client
        .post(format!("{}/v1/tenants", aupd.base))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let in_flight = tokio::spawn(request);
    tx.send(first.as_bytes().to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Act: SIGTERM while the request is being read.
    let pid = aupd.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    // Longer than actix's first shutdown check (1 s), so a zero grace
    // period would cut the request off.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        aupd.child.try_wait().unwrap().is_none(),
        "aupd exited with a request in flight"
    );
    let newcomer = reqwest::Client::new()
        .get(format!("{}/healthz", aupd.base))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        newcomer.is_err(),
        "a new connection was served during the drain: {newcomer:?}"
    );
    tx.send(rest.as_bytes().to_vec()).await.unwrap();
    drop(tx);

    // Assert: the answer is complete, the exit clean.
    let response = tokio::time::timeout(Duration::from_secs(15), in_flight)
        .await
        .expect("the in-flight request was not answered")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["id"], "in-flight", "{created}");
    let status = wait_for_exit(&mut aupd.child, Duration::from_secs(20));
    let log = std::fs::read_to_string(dir.path().join("first.log")).unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("aupd stopped"), "{log}");
    drop(aupd);

    // Every acknowledged write survives a restart on the same store.
    let aupd = start(dir.path(), "second.log").await;
    for id in before.iter().map(String::as_str).chain(["in-flight"]) {
        let r = aupd
            .client
            .get(format!("{}/v1/tenants/{id}", aupd.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "tenant {id} lost over the restart");
    }
}
