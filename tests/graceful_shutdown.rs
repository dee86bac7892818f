//! SIGTERM drains: a request in flight when the signal arrives is answered
//! in full, the process exits 0, and every write acknowledged before or
//! during the drain is in the store after a restart.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TOKEN: &str = "graceful-admin-token-0123456789";

struct Daemon {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Never leave a daemon behind, even when an assertion fails.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(dir: &Path, log_name: &str) -> Daemon {
    let port = free_port();
    let config = dir.join("aupd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nshutdown_grace_secs = 20\n\
             [store]\npath = \"{}\"\n[policy]\ndir = \"{}\"\n\
             [auth]\nadmin_token = \"{TOKEN}\"\n[log]\nformat = \"json\"\nlevel = \"info\"\n\
             [sampling]\ntick_ms = 50\n[enforcement]\ntick_ms = 50\n",
            dir.join("store").display(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/policies"),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(log_name)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_aupd"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "aupd did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Daemon {
        child,
        base,
        client,
    }
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
