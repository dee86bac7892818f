//! `aupd audit verify` over a real store on disk: intact, then tampered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

// Tampering means writing the on-disk layout directly: these tests use
// `aupd::store::tamper` on purpose, bypassing every repository.
use aupd::store::{tamper, Batch, EventRecord, SharedStore};

fn verify(store_dir: &std::path::Path) -> (i32, String) {
    verify_with(store_dir, &[])
}

/// Runs `aupd audit verify` with `extra` arguments; stdout and stderr together.
fn verify_with(store_dir: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aupd"))
        .args(["audit", "verify"])
        .args(extra)
        .envs(common::store_env(store_dir))
        .env_remove("AUPD_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Appends one event per `(kind, data)` and flushes.
fn append(path: &std::path::Path, events: &[(&str, serde_json::Value)]) {
    let store: SharedStore = common::open_test_store(path);
    for (kind, data) in events {
        let mut b = Batch::new();
        b.event(kind, Some("parlor"), data.clone()).unwrap();
        store.commit(b).unwrap();
    }
    store.flush().unwrap();
}

/// The `<hash>@<seq>` that `aupd audit verify` prints as the head.
fn printed_head(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.contains('@'))
        .unwrap_or_else(|| panic!("no head in {out:?}"))
        .to_string()
}

/// What an intruder with write access does: changes record `seq` and
/// re-hashes every record after it, and the stored head, so that the chain
/// alone looks intact.
fn rewrite_and_rehash(path: &std::path::Path, seq: u64, data: serde_json::Value) {
    let store: SharedStore = common::open_test_store(path);
    let mut all = store.events_after(0, usize::MAX).unwrap();
    let mut prev = aupd::store::GENESIS_HASH.to_string();
    let mut writes = Vec::new();
    for e in &mut all {
        if e.seq == seq {
            e.data = data.clone();
        }
        e.prev = prev.clone();
        e.hash = e.compute_hash();
        prev = e.hash.clone();
        writes.push((
            "events",
            e.seq.to_be_bytes().to_vec(),
            serde_json::to_vec(&*e).unwrap(),
        ));
    }
    writes.push(("meta", b"event_head".to_vec(), prev.into_bytes()));
    tamper::overwrite(&store, &writes).unwrap();
}

#[test]
fn audit_verify_passes_an_intact_log_and_names_the_first_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store: SharedStore = common::open_test_store(&path);
        for i in 0..10 {
            let mut b = Batch::new();
            b.event(
                "case.notice_sent",
                Some("parlor"),
                serde_json::json!({ "n": i }),
            )
            .unwrap();
            store.commit(b).unwrap();
        }
        store.flush().unwrap();
    }
    let (code, out) = verify(&path);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("audit log intact: 10 records"), "{out}");

    {
        let store: SharedStore = common::open_test_store(&path);
        let key = 7u64.to_be_bytes().to_vec();
        let mut e: EventRecord =
            serde_json::from_slice(&tamper::get(&store, "events", &key).unwrap().unwrap()).unwrap();
        e.data = serde_json::json!({ "n": 700 });
        tamper::overwrite(&store, &[("events", key, serde_json::to_vec(&e).unwrap())]).unwrap();
    }
    let (code, out) = verify(&path);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "audit log broken at record 7: its content does not match its hash (changed after it was written)"
    );
}

/// One event of every kind aupd writes, with the shapes of data they carry:
/// floats that the default float parser reads back wrong, nested objects,
/// escapes and non-ASCII text, large and negative numbers, nulls.
fn one_of_every_kind() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let floats = json!({
        "tenant": "parlor", "category": "violent-incitement",
        "rate": 0.4545454545454546, "lower": 0.018477023791270378,
        "upper": 1.0_f64 / 11.0, "flagged": 5, "sampled": 11,
    });
    let case = |kind: &str| {
        json!({
            "case": "cas_0193", "version": 3, "kind": kind,
            "actor": {"kind": "operator", "name": "olga"}, "reason": null,
            "at": "2026-12-04T05:19:03.123456789Z",
            "data": {"from": "open", "to": "noticed", "rate": 0.4545454545454546,
                     "due_at": "2026-12-05T05:19:03Z", "paused_remaining": {"secs": 3599, "nanos": 1}},
        })
    };
    let mut all = vec![
        ("evidence.threshold_crossed", floats.clone()),
        (
            "evidence.threshold_cleared",
            json!({"tenant": "parlor", "category": "spam"}),
        ),
        (
            "samples.recorded",
            json!({"samples": 200, "flagged": {"spam": 0.1, "hate": 0.018477023791270378}}),
        ),
        (
            "sample.recorded",
            json!({"sample": "smp_1", "scores": [0.4545454545454546, 1e-7, 0.30000000000000004]}),
        ),
        (
            "intake.received",
            json!({"received": 18446744073709551615_u64, "kept": -3}),
        ),
        (
            "sample.gone",
            json!({"url": "https://parlor.example/p/1?a=1&b=é", "http_status": 410, "sample": "smp_2"}),
        ),
        (
            "fetch.refused",
            json!({"url": "http://169.254.169.254/", "reason": "a \"metadata\" address\n"}),
        ),
        (
            "fetch.failed",
            json!({"url": "https://parlor.example/", "reason": "timed out — after 10 s"}),
        ),
        (
            "source.unhealthy",
            json!({"source": "src_1", "url": "https://parlor.example/feed", "reason": "404"}),
        ),
        (
            "sampling.samples_pruned",
            json!({"samples": 2, "findings": 1, "before": "2026-11-04T00:00:00Z"}),
        ),
        ("sampling.tallies_pruned", json!({"tallies": 24})),
        (
            "tenant.created",
            json!({"id": "parlor", "name": "Parlör ☕", "tier": "business"}),
        ),
        (
            "tenant.updated",
            json!({"id": "parlor", "name": "Parlor", "tier": "enterprise"}),
        ),
        (
            "source.created",
            json!({"id": "src_1", "kind": "rss", "every_secs": 3600}),
        ),
        (
            "source.updated",
            json!({"id": "src_1", "kind": "rss", "every_secs": 60}),
        ),
        ("source.deleted", json!({"id": "src_1"})),
        (
            "report.filed",
            json!({"report_id": "rep_1", "reporter": "rita", "urls": ["https://parlor.example/p/2"]}),
        ),
        (
            "token.created",
            json!({"token_id": "tok_1", "name": "ops", "role": "operator", "by": "command line"}),
        ),
        (
            "token.revoked",
            json!({"token_id": "tok_1", "by": "command line"}),
        ),
        (
            "webhook.endpoint_created",
            json!({"endpoint": "ep_1", "url": "https://hooks.example/aup", "events": null}),
        ),
        (
            "webhook.endpoint_updated",
            json!({"endpoint": "ep_1", "disabled": false}),
        ),
        (
            "webhook.endpoint_disabled",
            json!({"endpoint": "ep_1", "url": "https://hooks.example/aup", "reason": "410"}),
        ),
        ("webhook.endpoint_deleted", json!({"endpoint": "ep_1"})),
        ("webhook.secret_rotated", json!({"endpoint": "ep_1"})),
        ("webhook.secret_sealed", json!({"endpoint": "ep_1"})),
        (
            "webhook.delivery_dead",
            json!({"delivery": "dlv_1", "attempts": 12}),
        ),
        (
            "webhook.delivery_replayed",
            json!({"delivery": "dlv_1", "message": "msg_1", "endpoint": "ep_1"}),
        ),
        ("webhook.message_pruned", json!({"messages": 7})),
        (
            "action.receipt_recorded",
            json!({"receipt": "rcp_1", "status": "done", "at": "2026-12-04T05:19:03Z"}),
        ),
        (
            "alert.raised",
            json!({"alert": "alr_1", "kind": "receipt_overdue", "subject": "cas_0193", "message": "no receipt"}),
        ),
    ];
    for kind in [
        "opened",
        "assigned",
        "deadline_extended",
        "plan_submitted",
        "plan_accepted",
        "plan_rejected",
        "verification_failed",
        "escalated",
        "suspension_proposed",
        "suspension_approved",
        "suspension_ordered",
        "suspended",
        "appealed",
        "report_attached",
        "notice_sent",
        "reminder_sent",
        "deadline_missed",
        "receipt_overdue",
        "closed",
        "reinstated",
    ] {
        all.push((
            Box::leak(format!("case.{kind}").into_boxed_str()),
            case(kind),
        ));
    }
    all
}

#[test]
fn audit_verify_passes_an_untouched_log_of_every_event_kind_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let events = one_of_every_kind();
    let (first, second) = events.split_at(events.len() / 2);
    append(&path, first);
    let (code, out) = verify(&path);
    assert_eq!(code, 0, "{out}");
    // The store is closed and opened again between the two halves, as at a
    // restart of the service.
    append(&path, second);
    let (code, out) = verify(&path);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!("audit log intact: {} records", events.len())),
        "{out}"
    );
}

#[test]
fn audit_verify_prints_the_head_as_hash_at_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    append(&path, &one_of_every_kind()[..3]);
    let (code, out) = verify(&path);
    assert_eq!(code, 0, "{out}");
    let store: SharedStore = common::open_test_store(&path);
    let last = store.events_after(2, 1).unwrap().remove(0);
    assert_eq!(
        out.trim(),
        format!("audit log intact: 3 records, head {}@3", last.hash)
    );
}

#[test]
fn an_exported_head_catches_a_changed_record_whose_chain_was_rehashed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let events: Vec<_> = (0..10)
        .map(|i| ("case.notice_sent", serde_json::json!({ "n": i })))
        .collect();
    append(&path, &events[..6]);
    let (_, out) = verify(&path);
    let exported_at_6 = printed_head(&out);
    append(&path, &events[6..]);
    let (_, out) = verify(&path);
    let exported_at_10 = printed_head(&out);

    // Untouched, the log matches every head exported from it.
    for head in [&exported_at_6, &exported_at_10] {
        let (code, out) = verify_with(&path, &["--expect-head", head]);
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("audit log intact: 10 records"), "{out}");
    }

    rewrite_and_rehash(&path, 4, serde_json::json!({ "n": 400 }));
    // The chain alone cannot tell: every link was recomputed.
    let (code, out) = verify(&path);
    assert_eq!(code, 0, "{out}");
    // The heads exported before the change can.
    let (code, out) = verify_with(&path, &["--expect-head", &exported_at_6]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "audit log broken at record 6: its hash is not the expected head \
         (the log up to it was changed and re-hashed)"
    );
    let (code, out) = verify_with(&path, &["--expect-head", &exported_at_10]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("audit log broken at record 10: "), "{out}");
}

#[test]
fn an_exported_head_past_the_end_of_the_log_means_records_were_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    append(&path, &one_of_every_kind()[..4]);
    let (_, out) = verify(&path);
    let head = printed_head(&out);
    let (hash, _) = head.split_once('@').unwrap();
    let (code, out) = verify_with(&path, &["--expect-head", &format!("{hash}@9")]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "audit log broken at record 5: the expected head is record 9, but the log ends at record 4"
    );
}

#[test]
fn a_malformed_expected_head_is_refused_before_the_store_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    for bad in ["abc@3", "nohash", &format!("{}@x", "a".repeat(64))] {
        let (code, out) = verify_with(&path, &["--expect-head", bad]);
        assert_eq!(code, 2, "{bad}: {out}");
        assert!(
            out.contains("expected <64 hex digits>@<sequence number>"),
            "{bad}: {out}"
        );
    }
    assert!(!path.exists(), "a refused command opened the store");
}
