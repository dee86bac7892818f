//! The embedded sled backend.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{chain_events, Batch, Claim, Op, Result, Store, StoreEngine, StoreError, Tree};

pub(super) const EVENT_SEQ: &[u8] = b"event_seq";
pub(super) const EVENT_HEAD: &[u8] = b"event_head";
const CONFLICT: &str = "\u{0}conflict";

/// sled on local disk.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    flushes: Arc<GroupFlush>,
}

/// Group commit: concurrent callers of `flush` share one fsync. A caller
/// whose commit was already covered by a flush that started after it
/// returns at once; otherwise it waits its turn and flushes everything
/// committed so far.
#[derive(Debug, Default)]
struct GroupFlush {
    committed: AtomicU64,
    flushed: AtomicU64,
    gate: Mutex<()>,
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the store in `path` with a 128 MiB cache.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, 128 * 1024 * 1024)
    }

    /// Opens (or creates) the store in `path`, caching at most `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Self> {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        // A store closed a moment ago in this process (a restart) may still
        // hold its directory lock while sled's background flusher winds
        // down: wait briefly for it; another process holding it is an error.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && attempts < 40 =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "opening {}: {e}",
                        path.display()
                    )))
                }
            }
        };
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()).map_err(backend))
            .collect::<Result<Vec<_>>>()?;
        Ok(SledStore {
            db,
            trees,
            flushes: Arc::new(GroupFlush::default()),
        })
    }

    /// This store as the engine its repositories read through.
    pub(super) fn as_store(&self) -> &dyn Store {
        self
    }

    pub(super) fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree.index()]
    }
}

fn collect(
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    iter.take(limit)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend))
        .collect()
}

impl StoreEngine for SledStore {
    fn get_raw(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    fn scan_raw(
        &self,
        tree: Tree,
        prefix: &[u8],
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let iter = self.tree(tree).scan_prefix(prefix);
        if newest_first {
            collect(iter.rev(), limit)
        } else {
            collect(iter, limit)
        }
    }

    fn range_raw(&self, tree: Tree, start: &[u8], end: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        collect(self.tree(tree).range(start..end), usize::MAX)
    }

    fn range_raw_limited(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        collect(self.tree(tree).range(start..end), limit)
    }

    fn claim_raw(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Box<dyn Claim + '_>> {
        Ok(Box::new(SledClaim {
            store: self,
            rows: self.range_raw_limited(tree, start, end, limit)?,
            ended: false,
        }))
    }

    fn commit(&self, batch: Batch) -> Result<Vec<u64>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let at = jiff::Timestamp::now();
        let result = self.trees.as_slice().transaction(|t| {
            for op in batch.ops() {
                if let Op::Expect { tree, key, value } = op {
                    let now = t[tree.index()].get(key.as_slice())?;
                    if now.as_deref() != value.as_deref() {
                        return Err(ConflictableTransactionError::Abort(format!(
                            "{CONFLICT}{}",
                            tree.name()
                        )));
                    }
                }
            }
            for op in batch.ops() {
                super::sled_cases::derive(t, op)?;
                match op {
                    Op::Expect { .. } => {}
                    Op::Put { tree, key, value } => {
                        t[tree.index()].insert(key.as_slice(), value.as_slice())?;
                    }
                    Op::Delete { tree, key } => {
                        t[tree.index()].remove(key.as_slice())?;
                    }
                }
            }
            let mut seqs = Vec::with_capacity(batch.events().len());
            if !batch.events().is_empty() {
                let meta = &t[Tree::Meta.index()];
                let (writes, given) = chain_events(
                    batch.events(),
                    meta.get(EVENT_SEQ)?.as_deref(),
                    meta.get(EVENT_HEAD)?.as_deref(),
                    at,
                )
                .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
                for (tree, key, value) in writes {
                    t[tree.index()].insert(key, value)?;
                }
                seqs = given;
            }
            Ok(seqs)
        });
        if result.is_ok() {
            self.flushes.committed.fetch_add(1, Ordering::SeqCst);
        }
        result.map_err(|e: TransactionError<String>| match e {
            TransactionError::Abort(m) => match m.strip_prefix(CONFLICT) {
                Some(tree) => StoreError::Conflict(
                    Tree::ALL
                        .iter()
                        .find(|t| t.name() == tree)
                        .map_or("a record", |t| t.name()),
                ),
                None => StoreError::Backend(m),
            },
            TransactionError::Storage(e) => backend(e),
        })
    }

    fn single_process(&self) -> bool {
        true
    }
    fn flush(&self) -> Result<()> {
        let g = &self.flushes;
        let target = g.committed.load(Ordering::SeqCst);
        if g.flushed.load(Ordering::SeqCst) >= target && target > 0 {
            return Ok(());
        }
        let _turn = match g.gate.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        if g.flushed.load(Ordering::SeqCst) >= target && target > 0 {
            return Ok(());
        }
        // Everything committed before this read is on disk after the flush.
        let upto = g.committed.load(Ordering::SeqCst);
        self.db.flush().map(|_| ()).map_err(backend)?;
        g.flushed.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }
}

/// A claim on sled: one process uses the store, so there is no one to
/// keep out; the rows are read and the work commits as any batch does.
struct SledClaim<'a> {
    store: &'a SledStore,
    rows: Vec<(Vec<u8>, Vec<u8>)>,
    ended: bool,
}

impl Claim for SledClaim<'_> {
    fn rows(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.rows
    }

    fn commit(&mut self, batch: Batch) -> Result<Vec<u64>> {
        if self.ended {
            return Err(StoreError::Backend(
                "the claim has already committed".into(),
            ));
        }
        let result = self.store.commit(batch);
        self.ended = !matches!(result, Err(StoreError::Conflict(_)));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SharedStore;
    use std::sync::Arc;

    #[test]
    fn conformance_on_sled() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        crate::store::conformance::run(&store);
    }

    #[test]
    fn a_batch_commits_writes_and_gapless_events_together() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let mut b = Batch::new();
        b.ops.push(Op::Put {
            tree: Tree::Tenants,
            key: b"a".to_vec(),
            value: b"1".to_vec(),
        });
        b.event("x.one", Some("a"), serde_json::json!({"n": 1}))
            .unwrap();
        b.event("x.two", None, serde_json::json!({})).unwrap();
        assert_eq!(store.commit(b).unwrap(), vec![1, 2]);
        let mut b = Batch::new();
        b.event("x.three", None, serde_json::json!({})).unwrap();
        assert_eq!(store.commit(b).unwrap(), vec![3]);
        store.flush().unwrap();
        let events = store.events_after(1, 10).unwrap();
        assert_eq!(
            events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["x.two", "x.three"]
        );
        assert_eq!(store.get_raw(Tree::Tenants, b"a").unwrap().unwrap(), b"1");
    }

    #[test]
    fn a_case_reads_its_own_events_through_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let mut b = Batch::new();
        b.event("case.opened", Some("t"), serde_json::json!({"case": "c1"}))
            .unwrap();
        b.event("case.opened", Some("t"), serde_json::json!({"case": "c2"}))
            .unwrap();
        // Not a case event, though it names the case.
        b.event("delivery.sent", None, serde_json::json!({"case": "c1"}))
            .unwrap();
        store.commit(b).unwrap();
        let mut b = Batch::new();
        b.event("case.noticed", Some("t"), serde_json::json!({"case": "c1"}))
            .unwrap();
        store.commit(b).unwrap();
        let seqs = |case: &str| -> Vec<(u64, String)> {
            store
                .case_events(case)
                .unwrap()
                .into_iter()
                .map(|e| (e.seq, e.kind))
                .collect()
        };
        assert_eq!(
            seqs("c1"),
            [
                (1, "case.opened".to_string()),
                (4, "case.noticed".to_string())
            ]
        );
        assert_eq!(seqs("c2"), [(2, "case.opened".to_string())]);
        assert!(seqs("c").is_empty());
    }

    #[test]
    fn a_store_written_before_the_case_index_is_indexed_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            let mut b = Batch::new();
            b.event("case.opened", Some("t"), serde_json::json!({"case": "c1"}))
                .unwrap();
            b.event("case.closed", Some("t"), serde_json::json!({"case": "c1"}))
                .unwrap();
            store.commit(b).unwrap();
            // What an older store looks like: events, no index, no marker.
            store.tree(Tree::CaseEvents).clear().unwrap();
            store.tree(Tree::Meta).remove(b"case_index_built").unwrap();
            store.flush().unwrap();
            let shared: SharedStore = Arc::new(store);
            assert!(shared.case_events("c1").unwrap().is_empty());
        }
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        crate::store::ensure_indexes(&store).unwrap();
        let kinds: Vec<String> = store
            .case_events("c1")
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["case.opened", "case.closed"]);
    }

    #[test]
    fn committed_records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            let mut b = Batch::new();
            b.ops.push(Op::Put {
                tree: Tree::Samples,
                key: b"t/1".to_vec(),
                value: b"v".to_vec(),
            });
            b.event("sample.recorded", Some("t"), serde_json::json!({}))
                .unwrap();
            store.commit(b).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert!(store.get_raw(Tree::Samples, b"t/1").unwrap().is_some());
        let mut b = Batch::new();
        b.event("next", None, serde_json::json!({})).unwrap();
        assert_eq!(store.commit(b).unwrap(), vec![2]);
    }
}
