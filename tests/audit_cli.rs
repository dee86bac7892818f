//! `aupd audit verify` over a real store on disk: intact, then tampered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;

use aupd::store::{Batch, EventRecord, SharedStore, SledStore, Tree};

fn verify(store_dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aupd"))
        .args(["audit", "verify"])
        .env("AUPD__STORE__PATH", store_dir)
        .env_remove("AUPD_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn audit_verify_passes_an_intact_log_and_names_the_first_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store: SharedStore = Arc::new(SledStore::open(&path).unwrap());
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
        let store: SharedStore = Arc::new(SledStore::open(&path).unwrap());
        let key = 7u64.to_be_bytes().to_vec();
        let mut e: EventRecord =
            serde_json::from_slice(&store.get_raw(Tree::Events, &key).unwrap().unwrap()).unwrap();
        e.data = serde_json::json!({ "n": 700 });
        let mut b = Batch::new();
        b.put_raw(Tree::Events, key, serde_json::to_vec(&e).unwrap());
        store.commit(b).unwrap();
        store.flush().unwrap();
    }
    let (code, out) = verify(&path);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "audit log broken at record 7: its content does not match its hash (changed after it was written)"
    );
}
