//! Verifying the hash-chained event log (the audit log).

use super::{EventRecord, Result, SharedStore, Tree, GENESIS_HASH};

/// What a walk of the audit log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    /// Every record is present, in order, and unchanged.
    Intact {
        /// Records checked.
        records: u64,
        /// Hash of the last record.
        head: String,
    },
    /// The first record that is changed, missing or out of place.
    Broken {
        /// Its sequence number (or the one expected where one is missing).
        seq: u64,
        /// What is wrong.
        problem: String,
    },
}

/// Walks the log from the first record, recomputing every hash.
pub fn verify(store: &SharedStore) -> Result<AuditVerdict> {
    let mut expected_seq = 1u64;
    let mut prev = GENESIS_HASH.to_string();
    let mut after = 0u64;
    loop {
        let page = store.events_after(after, 10_000)?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            if let Some(broken) = check(e, expected_seq, &prev) {
                return Ok(broken);
            }
            prev = e.hash.clone();
            expected_seq += 1;
            after = e.seq;
        }
    }
    let head = store
        .get_raw(Tree::Meta, b"event_head")?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_else(|| GENESIS_HASH.to_string());
    if head != prev {
        return Ok(AuditVerdict::Broken {
            seq: expected_seq,
            problem: "records are missing at the end of the log".into(),
        });
    }
    Ok(AuditVerdict::Intact {
        records: expected_seq - 1,
        head: prev,
    })
}

fn check(e: &EventRecord, expected_seq: u64, prev: &str) -> Option<AuditVerdict> {
    if e.seq != expected_seq {
        return Some(AuditVerdict::Broken {
            seq: expected_seq,
            problem: format!("record {expected_seq} is missing (next is {})", e.seq),
        });
    }
    if e.prev != prev {
        return Some(AuditVerdict::Broken {
            seq: e.seq,
            problem: "its link to the previous record does not match".into(),
        });
    }
    if e.compute_hash() != e.hash {
        return Some(AuditVerdict::Broken {
            seq: e.seq,
            problem: "its content does not match its hash (changed after it was written)".into(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, SledStore};
    use std::sync::Arc;

    fn store_with_events(n: usize) -> (tempfile::TempDir, SharedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        for i in 0..n {
            let mut b = Batch::new();
            b.event("test.event", Some("parlor"), serde_json::json!({ "i": i }))
                .unwrap();
            store.commit(b).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn an_untouched_log_verifies() {
        let (_d, store) = store_with_events(5);
        match verify(&store).unwrap() {
            AuditVerdict::Intact { records, .. } => assert_eq!(records, 5),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_changed_record_is_caught_by_number() {
        let (_d, store) = store_with_events(5);
        let key = 3u64.to_be_bytes().to_vec();
        let mut e: EventRecord =
            serde_json::from_slice(&store.get_raw(Tree::Events, &key).unwrap().unwrap()).unwrap();
        e.data = serde_json::json!({ "i": 99 });
        let mut b = Batch::new();
        b.put_raw(Tree::Events, key, serde_json::to_vec(&e).unwrap());
        store.commit(b).unwrap();
        assert_eq!(
            verify(&store).unwrap(),
            AuditVerdict::Broken {
                seq: 3,
                problem: "its content does not match its hash (changed after it was written)"
                    .into()
            }
        );
    }

    #[test]
    fn a_removed_record_is_caught() {
        let (_d, store) = store_with_events(5);
        let mut b = Batch::new();
        b.delete_raw(Tree::Events, 2u64.to_be_bytes().to_vec());
        store.commit(b).unwrap();
        assert!(matches!(
            verify(&store).unwrap(),
            AuditVerdict::Broken { seq: 2, .. }
        ));
        let (_d, store) = store_with_events(4);
        let mut b = Batch::new();
        b.delete_raw(Tree::Events, 4u64.to_be_bytes().to_vec());
        store.commit(b).unwrap();
        assert!(matches!(
            verify(&store).unwrap(),
            AuditVerdict::Broken { seq: 4, .. }
        ));
    }
}
