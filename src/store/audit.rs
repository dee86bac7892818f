//! Verifying the hash-chained event log (the audit log), and the head an
//! operator exports to check it against later.
//!
//! Every record's hash is recomputed over the bytes stored on disk, never
//! over a record parsed and printed again. A chain check alone cannot tell a
//! log rewritten and re-hashed from an untouched one; a head exported
//! earlier (`<hash>@<seq>`, printed by `aupd audit verify`, logged at start
//! and shutdown, served by `GET /v1/audit/head`) can.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::sled_store::{EVENT_HEAD, EVENT_SEQ};
use super::{split_sealed_event, EventRecord, Result, SharedStore, StoreError, Tree, GENESIS_HASH};

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

/// A point of the chain written down earlier: record `seq` had `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Hex SHA-256 of the record (lower case).
    pub hash: String,
    /// Its sequence number; 0 with the genesis hash for an empty log.
    pub seq: u64,
}

impl fmt::Display for ChainHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.hash, self.seq)
    }
}

impl FromStr for ChainHead {
    type Err = String;

    /// Parses `<64 hex digits>@<sequence number>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "expected <64 hex digits>@<sequence number>, as `aupd audit verify` prints it, got {s:?}"
            )
        };
        let (hash, seq) = s.trim().split_once('@').ok_or_else(bad)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let seq = seq.parse::<u64>().map_err(|_| bad())?;
        Ok(ChainHead {
            hash: hash.to_ascii_lowercase(),
            seq,
        })
    }
}

/// The head of the log as the store records it: the last record's hash and
/// sequence number (the genesis hash at 0 for an empty log). One read; no
/// walk, so the service can log it at start and shutdown.
pub fn head(store: &SharedStore) -> Result<ChainHead> {
    let seq = match store.get_raw(Tree::Meta, EVENT_SEQ)? {
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Decode {
                tree: Tree::Meta.name(),
                message: "the event sequence is corrupt".into(),
            })?,
        None => 0,
    };
    let hash = store
        .get_raw(Tree::Meta, EVENT_HEAD)?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_else(|| GENESIS_HASH.to_string());
    Ok(ChainHead { hash, seq })
}

/// Walks the log from the first record, recomputing every hash over the
/// stored bytes; with `expect`, also checks that record `expect.seq` still
/// has the hash exported earlier.
pub fn verify(store: &SharedStore, expect: Option<&ChainHead>) -> Result<AuditVerdict> {
    let mut expected_seq = 1u64;
    let mut prev = GENESIS_HASH.to_string();
    if let Some(broken) = check_expected(expect, 0, &prev) {
        return Ok(broken);
    }
    let start_after = |after: u64| after.saturating_add(1).to_be_bytes();
    let end = u64::MAX.to_be_bytes();
    let mut after = 0u64;
    loop {
        let page = store.range_raw_limited(Tree::Events, &start_after(after), &end, 10_000)?;
        if page.is_empty() {
            break;
        }
        for (_, stored) in &page {
            let e = match check(stored, expected_seq, &prev) {
                Ok(e) => e,
                Err(broken) => return Ok(broken),
            };
            if let Some(broken) = check_expected(expect, e.seq, &e.hash) {
                return Ok(broken);
            }
            prev = e.hash;
            after = e.seq;
            expected_seq += 1;
        }
    }
    let last = expected_seq - 1;
    if let Some(expect) = expect.filter(|x| x.seq > last) {
        return Ok(AuditVerdict::Broken {
            seq: expected_seq,
            problem: format!(
                "the expected head is record {}, but the log ends at record {last}",
                expect.seq
            ),
        });
    }
    let recorded = head(store)?;
    if recorded.hash != prev {
        return Ok(AuditVerdict::Broken {
            seq: expected_seq,
            problem: "records are missing at the end of the log".into(),
        });
    }
    Ok(AuditVerdict::Intact {
        records: last,
        head: prev,
    })
}

fn check_expected(expect: Option<&ChainHead>, seq: u64, hash: &str) -> Option<AuditVerdict> {
    let expect = expect.filter(|x| x.seq == seq)?;
    (expect.hash != hash).then(|| AuditVerdict::Broken {
        seq,
        problem: "its hash is not the expected head (the log up to it was changed and re-hashed)"
            .into(),
    })
}

fn check(
    stored: &[u8],
    expected_seq: u64,
    prev: &str,
) -> std::result::Result<EventRecord, AuditVerdict> {
    let changed = |seq| AuditVerdict::Broken {
        seq,
        problem: "its content does not match its hash (changed after it was written)".into(),
    };
    let e: EventRecord = serde_json::from_slice(stored).map_err(|_| changed(expected_seq))?;
    if e.seq != expected_seq {
        return Err(AuditVerdict::Broken {
            seq: expected_seq,
            problem: format!("record {expected_seq} is missing (next is {})", e.seq),
        });
    }
    if e.prev != prev {
        return Err(AuditVerdict::Broken {
            seq: e.seq,
            problem: "its link to the previous record does not match".into(),
        });
    }
    let Some((hashed, stated)) = split_sealed_event(stored) else {
        return Err(changed(e.seq));
    };
    if stated != e.hash || hex::encode(Sha256::digest(&hashed)) != e.hash {
        return Err(changed(e.seq));
    }
    Ok(e)
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
        match verify(&store, None).unwrap() {
            AuditVerdict::Intact { records, .. } => assert_eq!(records, 5),
            other => panic!("{other:?}"),
        }
    }

    /// The figures of a real `evidence.threshold_crossed` record whose last
    /// digit serde_json's default float parser reads back wrong.
    fn threshold_crossing() -> serde_json::Value {
        serde_json::json!({
            "tenant": "parlor",
            "category": "violent-incitement",
            "rate": 0.4545454545454546,
            "lower": 0.018477023791270378,
            "one_eleventh": 1.0_f64 / 11.0,
            "flagged": 5,
            "sampled": 11,
        })
    }

    /// Commits one `evidence.threshold_crossed` event holding those floats.
    fn commit_threshold_crossing(store: &SharedStore) {
        let mut b = Batch::new();
        b.event(
            "evidence.threshold_crossed",
            Some("parlor"),
            threshold_crossing(),
        )
        .unwrap();
        store.commit(b).unwrap();
    }

    #[test]
    fn a_log_holding_the_floats_of_a_threshold_crossing_verifies() {
        let (_d, store) = store_with_events(2);
        commit_threshold_crossing(&store);
        match verify(&store, None).unwrap() {
            AuditVerdict::Intact { records, .. } => assert_eq!(records, 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn events_read_back_hold_exactly_the_floats_written() {
        let (_d, store) = store_with_events(0);
        commit_threshold_crossing(&store);
        let read = store.events_after(0, 10).unwrap();
        assert_eq!(read[0].data, threshold_crossing());
    }

    #[test]
    fn sealed_bytes_are_what_serde_writes_for_the_record_so_older_stores_still_verify() {
        let mut e = EventRecord {
            seq: 7,
            at: jiff::Timestamp::from_second(1_780_000_000).unwrap(),
            kind: "evidence.threshold_crossed".into(),
            tenant: Some("parlor".into()),
            data: threshold_crossing(),
            prev: GENESIS_HASH.into(),
            hash: String::new(),
        };
        let sealed = e.seal().unwrap();
        assert_eq!(sealed, serde_json::to_vec(&e).unwrap());
        assert_eq!(e.hash, e.compute_hash());
    }

    #[test]
    fn a_record_stored_in_other_bytes_with_the_same_values_is_caught() {
        let (_d, store) = store_with_events(3);
        let key = 2u64.to_be_bytes().to_vec();
        let stored =
            String::from_utf8(store.get_raw(Tree::Events, &key).unwrap().unwrap()).unwrap();
        // Parsed, the record is the same; its bytes are not what was hashed.
        let respaced = stored.replacen(r#""data":{"i":1}"#, r#""data":{"i": 1}"#, 1);
        assert_ne!(respaced, stored);
        let reparsed: EventRecord = serde_json::from_str(&respaced).unwrap();
        assert_eq!(reparsed.compute_hash(), reparsed.hash);
        let mut b = Batch::new();
        b.put_raw(Tree::Events, key, respaced.into_bytes());
        store.commit(b).unwrap();
        assert_eq!(
            verify(&store, None).unwrap(),
            AuditVerdict::Broken {
                seq: 2,
                problem: "its content does not match its hash (changed after it was written)"
                    .into()
            }
        );
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
            verify(&store, None).unwrap(),
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
            verify(&store, None).unwrap(),
            AuditVerdict::Broken { seq: 2, .. }
        ));
        let (_d, store) = store_with_events(4);
        let mut b = Batch::new();
        b.delete_raw(Tree::Events, 4u64.to_be_bytes().to_vec());
        store.commit(b).unwrap();
        assert!(matches!(
            verify(&store, None).unwrap(),
            AuditVerdict::Broken { seq: 4, .. }
        ));
    }
}
