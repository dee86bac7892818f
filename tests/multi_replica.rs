//! Three `aupd serve` processes on one PostgreSQL database, with short
//! leases, while tenants' pushes open cases whose cure deadlines pass a few
//! seconds later and webhook messages stream to a loopback receiver. One
//! replica is killed (SIGKILL) mid-delivery and restarted, then another is
//! killed. Afterwards: every deadline fired exactly once, every outbox
//! message arrived at least once with its original `webhook-id`, no case
//! was opened twice for one piece of evidence, the prevalence tallies
//! equal the samples stored, and `aupd audit verify` passes.
//!
//! Runs when `AUPD_TEST_DATABASE_URL` names a PostgreSQL server (`.ci/run`
//! starts one); says so and passes vacuously otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::receiver::{Behavior, Receiver};
use common::TOKEN;
use serde_json::{json, Value};

/// Tenants, each with one case opened from its evidence.
const TENANTS: usize = 12;
/// The sealing key every replica shares (webhook secrets are sealed with it).
const SEALING_KEY: &str = "6b1f0e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1";

struct Replica {
    child: Option<Child>,
    config: PathBuf,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, i: usize, db: &str, policies: &Path) -> (PathBuf, String) {
    let port = free_port();
    let home = dir.join(format!("replica-{i}"));
    std::fs::create_dir_all(&home).unwrap();
    let config = home.join("aupd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n\
             [store]\nbackend = \"postgres\"\ndatabase_url = \"{db}\"\npath = \"{}\"\npool_size = 8\n\
             [policy]\ndir = \"{}\"\n\
             [auth]\nadmin_token = \"{TOKEN}\"\n\
             [log]\nlevel = \"warn\"\n\
             [cluster]\nreplica_id = \"replica-{i}\"\nlease_ms = 1500\n\
             [enforcement]\ntick_ms = 50\n\
             [sampling]\nintake_sample_rate = 1.0\n\
             [delivery]\npoll_ms = 50\nretry_scale = 0.01\ntimeout_secs = 5\n\
             allow_cidrs = [\"127.0.0.0/8\"]\nsecret_key = \"{SEALING_KEY}\"\n",
            home.join("store").display(),
            policies.display(),
        ),
    )
    .unwrap();
    (config, format!("http://127.0.0.1:{port}"))
}

/// `GET base + path` as the admin, its JSON body (a replica that hangs
/// fails the test within 10 s).
async fn get_json(base: &str, path: &str) -> Value {
    common::admin_client()
        .get(format!("{base}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

impl Replica {
    async fn start(config: PathBuf, base: String, log: &Path) -> Replica {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_aupd"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap();
        let r = Replica {
            child: Some(child),
            config,
            base,
        };
        let c = common::admin_client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = c.get(format!("{}/readyz", r.base)).send().await;
            if ready.is_ok_and(|x| x.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "a replica did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        r
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }
}

/// Which live replica holds `lease` (from each one's `aupd_lease_held`),
/// waiting up to 10 s for one to take it.
async fn holder(replicas: &[Replica], lease: &str) -> usize {
    let c = common::admin_client();
    let line = format!("aupd_lease_held{{lease=\"{lease}\"}} 1");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for (i, r) in replicas.iter().enumerate().filter(|(_, r)| r.alive()) {
            let Ok(resp) = c.get(format!("{}/metrics", r.base)).send().await else {
                continue;
            };
            let text = resp.text().await.unwrap_or_default();
            if text.lines().any(|l| l.trim() == line) {
                return i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no replica holds the {lease} lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every audit record, oldest first, read through `base`.
async fn audit(base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let page = get_json(base, &format!("/v1/audit?after={after}&limit=1000")).await;
        let records = page["records"].as_array().unwrap().clone();
        if records.is_empty() {
            return out;
        }
        after = page["next_after"].as_u64().unwrap();
        out.extend(records);
    }
}

/// Every delivery aupd made, read through `base`.
async fn deliveries(base: &str) -> Vec<Value> {
    let page = get_json(base, "/v1/deliveries?limit=1000").await;
    page["deliveries"].as_array().cloned().unwrap_or_default()
}

/// One run of the scenario on a fresh database.
async fn scenario(round: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = common::test_database(&dir.path().join("store")).unwrap();
    // A private copy of the policy whose critical ladder runs in seconds:
    // notice at once, a reminder after 2 s, the deadline after 4 s, then an
    // automatic suspension order.
    let policies = dir.path().join("policies");
    common::copy_dir(&common::shipped_policies(), &policies);
    let ladders = policies.join("escalation/ladders.toml");
    let text = std::fs::read_to_string(&ladders).unwrap();
    let critical = "[critical]\n# Incitement and the like: every hour online does harm.\nopens = \"automatically\"\ncure_window = \"1h\"\nreminders = [\"30m\", \"10m\"]\non_miss = \"propose_suspension\"\napprovals = 2\n";
    assert!(
        text.contains(critical),
        "the shipped critical ladder changed"
    );
    std::fs::write(
        &ladders,
        text.replace(
            critical,
            "[critical]\nopens = \"automatically\"\ncure_window = \"4s\"\nreminders = [\"2s\"]\non_miss = \"propose_suspension\"\napprovals = 0\n",
        ),
    )
    .unwrap();
    let log = dir.path().join("replicas.log");
    let mut replicas = Vec::new();
    for i in 0..3 {
        let (config, base) = write_config(dir.path(), i, &db, &policies);
        replicas.push(Replica::start(config, base, &log).await);
    }
    let c = common::admin_client();
    let receiver = Receiver::start().await;
    // Slow answers, so a kill lands while sends are in flight.
    receiver.behave(
        "executor",
        Behavior {
            delay: Duration::from_millis(300),
            ..Behavior::default()
        },
    );
    let created: Value = c
        .post(format!("{}/v1/webhooks", replicas[0].base))
        .json(&json!({ "url": receiver.url("executor"), "description": "executor" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    receiver.trust("executor", &[created["secret"].as_str().unwrap()]);

    // Tenants and their pushes, spread over the replicas; each push holds
    // one critical item, which opens a case at once.
    for t in 0..TENANTS {
        let base = &replicas[t % 3].base;
        let r = c
            .post(format!("{base}/v1/tenants"))
            .json(&json!({ "id": format!("tenant-{t}"), "name": format!("Tenant {t}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let mut pushed = BTreeMap::new();
    for round_of_pushes in 0..3 {
        for t in 0..TENANTS {
            let base = &replicas[(t + round_of_pushes) % 3].base;
            let items: Vec<Value> = (0..4)
                .map(|i| {
                    let text = if i == 0 && round_of_pushes == 0 {
                        common::violating(t)
                    } else {
                        common::clean(t * 100 + round_of_pushes * 10 + i)
                    };
                    json!({ "id": format!("{t}-{round_of_pushes}-{i}"), "text": text })
                })
                .collect();
            let r = c
                .post(format!("{base}/v1/tenants/tenant-{t}/content"))
                .json(&json!({ "items": items }))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            let body: Value = r.json().await.unwrap();
            *pushed.entry(t).or_insert(0u64) += body["sampled"].as_u64().unwrap();
        }
    }

    // Kill a replica while it holds send leases (every replica sends; the
    // deliveries say who is sending), bring it back, then kill the holder
    // of the enforcement lease before the cure deadlines come due: the
    // killed sender's deliveries are taken over when their send leases
    // end, the lease moves, and the replicas left claim and fire the
    // deadlines.
    let wait = Instant::now() + Duration::from_secs(30);
    let sender = loop {
        let all = deliveries(&replicas[0].base).await;
        let sending = all
            .iter()
            .find_map(|d| d["sending"]["replica"].as_str().map(str::to_string));
        if let Some(replica) = sending {
            break replica
                .strip_prefix("replica-")
                .and_then(|i| i.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("a sender named {replica}"));
        }
        assert!(Instant::now() < wait, "no delivery was seen in flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let in_flight = receiver.received("executor").len();
    replicas[sender].kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (config, base) = (
        replicas[sender].config.clone(),
        replicas[sender].base.clone(),
    );
    replicas[sender] = Replica::start(config, base, &log).await;
    let ticker = holder(&replicas, "enforcement").await;
    replicas[ticker].kill();
    let live = replicas
        .iter()
        .find(|r| r.alive())
        .map(|r| r.base.clone())
        .unwrap();
    let taken_over = holder(&replicas, "enforcement").await;
    assert_ne!(taken_over, ticker);

    // Every case reaches its suspension order, and every delivery lands.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (records, delivered) = loop {
        let records = audit(&live).await;
        let ordered = records
            .iter()
            .filter(|r| r["kind"] == json!("case.suspension_ordered"))
            .count();
        let all = deliveries(&live).await;
        let pending = all
            .iter()
            .filter(|d| d["status"] != json!("delivered"))
            .count();
        if ordered >= TENANTS && pending == 0 && !all.is_empty() {
            break (records, all);
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: {ordered} of {TENANTS} suspension orders and {pending} deliveries still pending after 90 s; logs in {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    assert!(
        receiver.received("executor").len() > in_flight,
        "round {round}: nothing was delivered after the sending replica was killed"
    );

    // No case opened twice for one piece of evidence: one case per tenant.
    let mut opened: BTreeMap<String, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r["kind"] == json!("case.opened")) {
        *opened
            .entry(r["tenant"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(opened.len(), TENANTS, "round {round}: {opened:?}");
    assert!(
        opened.values().all(|&n| n == 1),
        "round {round}: a tenant got two cases: {opened:?}"
    );

    // Every deadline fired exactly once: each reminder and each cure
    // deadline appears once in the log, one of each per case.
    for kind in ["case.reminder_sent", "case.deadline_missed"] {
        let fired: Vec<&str> = records
            .iter()
            .filter(|r| r["kind"] == json!(kind))
            .map(|r| r["data"]["data"]["deadline_id"].as_str().unwrap())
            .collect();
        let distinct: BTreeSet<&str> = fired.iter().copied().collect();
        assert_eq!(
            fired.len(),
            distinct.len(),
            "round {round}: a deadline fired twice ({kind})"
        );
        assert_eq!(fired.len(), TENANTS, "round {round}: {kind} once per case");
    }

    // Every outbox message arrived at least once with its original id.
    let got: BTreeSet<String> = receiver
        .received("executor")
        .iter()
        .filter(|r| (200..300).contains(&r.answered))
        .map(|r| r.id.clone())
        .collect();
    let messages: BTreeSet<String> = delivered
        .iter()
        .map(|d| d["message_id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        messages.len() >= TENANTS * 4,
        "round {round}: only {} messages",
        messages.len()
    );
    let missing: Vec<&String> = messages.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "round {round}: messages never received: {missing:?}"
    );
    let arrivals = receiver.received("executor");
    let resent = arrivals.len()
        - arrivals
            .iter()
            .map(|r| &r.id)
            .collect::<BTreeSet<_>>()
            .len();
    // Every replica sends: with each capped at the endpoint's concurrency
    // and slow answers, one replica alone cannot take every delivery.
    let mut senders: BTreeMap<String, usize> = BTreeMap::new();
    for d in &delivered {
        for a in d["attempts"].as_array().unwrap() {
            *senders
                .entry(a["sender"].as_str().unwrap_or("unnamed").to_string())
                .or_default() += 1;
        }
    }
    assert!(
        senders.len() >= 2,
        "round {round}: attempts came from {senders:?} only"
    );
    eprintln!(
        "round {round}: {} messages, {} arrivals ({resent} sent again after a kill), {in_flight} had arrived when replica-{sender} was killed; recorded attempts by replica {senders:?}",
        messages.len(),
        arrivals.len()
    );
    let per_message: BTreeMap<&str, usize> = delivered.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d["message_id"].as_str().unwrap()).or_default() += 1;
        m
    });
    assert!(
        per_message.values().all(|&n| n == 1),
        "round {round}: a message was fanned out twice to one endpoint"
    );

    // The prevalence tallies equal the samples stored.
    for t in 0..TENANTS {
        let samples = get_json(&live, &format!("/v1/tenants/tenant-{t}/samples?limit=1000")).await;
        let stored = samples["samples"].as_array().unwrap().len() as u64;
        let prevalence = get_json(&live, &format!("/v1/tenants/tenant-{t}/prevalence")).await;
        let tallied = prevalence["categories"][0]["sampled"].as_u64().unwrap();
        assert_eq!(
            stored, pushed[&t],
            "round {round}: tenant tenant-{t}'s samples"
        );
        assert_eq!(tallied, stored, "round {round}: tenant tenant-{t}'s tally");
    }

    // The audit chain verifies, read straight from the database.
    for r in &mut replicas {
        r.kill();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aupd"))
        .arg("--config")
        .arg(&replicas[2].config)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "round {round}: audit verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_kills_with_every_deadline_once_and_every_message_delivered() {
    if common::test_database_admin().is_none() {
        eprintln!("skipped: AUPD_TEST_DATABASE_URL is not set (.ci/run starts a PostgreSQL for this test)");
        return;
    }
    let rounds = std::env::var("AUPD_MULTI_REPLICA_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for round in 0..rounds {
        scenario(round).await;
        eprintln!("multi-replica round {} of {rounds} passed", round + 1);
    }
}
