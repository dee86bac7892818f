//! The case repository on sled. Cases and deadlines are records in their
//! trees; two index trees sit beside them, and only this backend knows of
//! them: [`Tree::CaseIndex`] lists every case under its tenant (`t/tenant/id`)
//! and the open ones (`o/id`), and [`Tree::DeadlineDue`] lists pending
//! deadlines in due order ([`due_key`]). sled's commit keeps both in step
//! with the records a batch writes ([`derive`]), inside the batch's own
//! transaction, so no caller writes an index entry. (The open-case slots,
//! `s/tenant/category` in the same tree, are records of their own, written
//! by [`super::cases::take_open_slot`].)

use jiff::Timestamp;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::cases::{
    case_key, due_key, due_of_key, due_range, open_slot_key, slot_read, CaseRepository, DueClaim,
    DueCursor,
};
use super::{build_once, decode, Batch, Op, Result, SledStore, StoreEngine, Tree, Version};
use crate::domain::{Case, CaseId, Deadline, DeadlineId};

/// Prefix of the open-case entries of [`Tree::CaseIndex`].
const OPEN: &[u8] = b"o/";

/// Marks a store whose cases are all in [`Tree::CaseIndex`].
const CASE_INDEX_BUILT: &[u8] = b"case_state_index_built";

/// Key of an open case in [`Tree::CaseIndex`].
fn open_case_key(id: &CaseId) -> Vec<u8> {
    let mut key = OPEN.to_vec();
    key.extend_from_slice(&case_key(id));
    key
}

/// Prefix of a tenant's cases in [`Tree::CaseIndex`]: `t/tenant/`.
fn tenant_cases_prefix(tenant: &str) -> Vec<u8> {
    format!("t/{tenant}/").into_bytes()
}

/// Key of a case under its tenant in [`Tree::CaseIndex`].
fn tenant_case_key(case: &Case) -> Vec<u8> {
    let mut key = tenant_cases_prefix(case.tenant.as_str());
    key.extend_from_slice(&case_key(&case.id));
    key
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<String>>;

fn abort(e: super::StoreError) -> ConflictableTransactionError<String> {
    ConflictableTransactionError::Abort(e.to_string())
}

/// Keeps the case and due-time indexes in step with one write of a batch,
/// inside sled's transaction `t` (one transactional tree per [`Tree`], in
/// [`Tree::ALL`] order). Called before the write is applied, so what it
/// reads is the record as it was.
pub(super) fn derive(t: &[TransactionalTree], op: &Op) -> TxResult<()> {
    let index = &t[Tree::CaseIndex.index()];
    let due = &t[Tree::DeadlineDue.index()];
    match op {
        Op::Put {
            tree: Tree::Cases,
            value,
            ..
        } => {
            let case: Case = decode(value).map_err(abort)?;
            index.insert(tenant_case_key(&case), Vec::new())?;
            if case.state.is_open() {
                index.insert(open_case_key(&case.id), Vec::new())?;
            } else {
                index.remove(open_case_key(&case.id))?;
            }
        }
        Op::Delete {
            tree: Tree::Cases,
            key,
        } => {
            if let Some(old) = t[Tree::Cases.index()].get(key)? {
                let case: Case = decode(&old).map_err(abort)?;
                index.remove(tenant_case_key(&case))?;
                index.remove(open_case_key(&case.id))?;
            }
        }
        Op::Put {
            tree: Tree::Deadlines,
            key,
            value,
        } => {
            if let Some(old) = t[Tree::Deadlines.index()].get(key)? {
                let d: Deadline = decode(&old).map_err(abort)?;
                due.remove(due_key(d.due_at, &d.id))?;
            }
            let d: Deadline = decode(value).map_err(abort)?;
            due.insert(due_key(d.due_at, &d.id), d.id.0.as_bytes().to_vec())?;
        }
        Op::Delete {
            tree: Tree::Deadlines,
            key,
        } => {
            if let Some(old) = t[Tree::Deadlines.index()].get(key)? {
                let d: Deadline = decode(&old).map_err(abort)?;
                due.remove(due_key(d.due_at, &d.id))?;
            }
        }
        _ => {}
    }
    Ok(())
}

impl SledStore {
    /// The cases whose ids are listed under `prefix` in [`Tree::CaseIndex`].
    fn indexed_cases(&self, prefix: &[u8]) -> Result<Vec<Case>> {
        let store = self.as_store();
        let mut out = Vec::new();
        for (key, _) in store.scan_raw(Tree::CaseIndex, prefix, usize::MAX, false)? {
            if let Some(case) = store.get::<Case>(&key[prefix.len()..])? {
                out.push(case);
            }
        }
        Ok(out)
    }
}

impl CaseRepository for SledStore {
    fn case(&self, id: &CaseId) -> Result<Option<Case>> {
        self.as_store().get::<Case>(&case_key(id))
    }

    fn case_versioned(&self, id: &CaseId) -> Result<(Option<Case>, Version)> {
        Version::read::<Case>(self, case_key(id))
    }

    fn all_cases(&self) -> Result<Vec<Case>> {
        self.as_store().scan::<Case>(b"", usize::MAX, false)
    }

    fn open_cases(&self) -> Result<Vec<Case>> {
        self.indexed_cases(OPEN)
    }

    fn tenant_cases(&self, tenant: &str) -> Result<Vec<Case>> {
        self.indexed_cases(&tenant_cases_prefix(tenant))
    }

    fn open_slot(&self, tenant: &str, category: &str) -> Result<(Option<Case>, Version)> {
        let key = open_slot_key(tenant, category);
        let raw = self.get_raw(Tree::CaseIndex, &key)?;
        let holder = raw
            .as_deref()
            .and_then(|id| uuid::Uuid::try_parse_ascii(id).ok())
            .map(CaseId);
        let holder = match holder {
            Some(id) => self.case(&id)?,
            None => None,
        };
        Ok(slot_read(key, raw, holder))
    }

    fn deadline(&self, id: &DeadlineId) -> Result<Option<Deadline>> {
        self.as_store().get::<Deadline>(id.0.as_bytes())
    }

    fn pending_deadlines(&self) -> Result<usize> {
        Ok(self.tree(Tree::DeadlineDue).len())
    }

    fn next_due(&self) -> Result<Option<Timestamp>> {
        let first = self.scan_raw(Tree::DeadlineDue, b"", 1, false)?;
        Ok(first.first().and_then(|(k, _)| due_of_key(k)))
    }

    fn claim_due(&self, now: Timestamp, from: Option<&DueCursor>) -> Result<Option<DueClaim<'_>>> {
        let (start, end) = due_range(now, from);
        let claim = self.claim_raw(Tree::DeadlineDue, &start, &end, 1)?;
        let Some((key, id)) = claim.rows().first().cloned() else {
            return Ok(None);
        };
        let deadline = self.as_store().get::<Deadline>(&id)?;
        let mut orphan = Batch::new();
        orphan.delete_raw(Tree::DeadlineDue, key.clone());
        Ok(Some(DueClaim::new(claim, key, deadline, orphan)))
    }

    fn ensure_case_index(&self) -> Result<()> {
        build_once(self, CASE_INDEX_BUILT, || {
            let mut batch = Batch::new();
            for case in self.all_cases()? {
                batch.put_raw(Tree::CaseIndex, tenant_case_key(&case), Vec::new());
                if case.state.is_open() {
                    batch.put_raw(Tree::CaseIndex, open_case_key(&case.id), Vec::new());
                }
            }
            self.commit(batch).map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CaseState;
    use crate::store::SharedStore;
    use std::sync::Arc;

    fn case(n: u128, tenant: &str, state: CaseState) -> Case {
        crate::store::conformance::test_case(n, tenant, state)
    }

    #[test]
    fn the_commit_keeps_the_indexes_and_an_older_store_is_indexed_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let sled = SledStore::open(dir.path()).unwrap();
        let store: SharedStore = Arc::new(sled.clone());
        let (a, b, c) = (
            case(1, "parlor", CaseState::Noticed),
            case(2, "parlor", CaseState::Dismissed),
            case(3, "quill", CaseState::Open),
        );
        let mut w = Batch::new();
        for x in [&a, &b, &c] {
            w.put(x).unwrap();
        }
        store.commit(w).unwrap();
        let ids = |v: Vec<Case>| v.iter().map(|c| c.id.0.as_u128()).collect::<Vec<_>>();
        let check = || {
            assert_eq!(ids(store.open_cases().unwrap()), vec![1, 3]);
            assert_eq!(ids(store.tenant_cases("parlor").unwrap()), vec![1, 2]);
            assert_eq!(ids(store.tenant_cases("quill").unwrap()), vec![3]);
            assert!(store.tenant_cases("par").unwrap().is_empty());
        };
        check();
        // Closing a case takes it off the open index; its tenant keeps it.
        let mut closed = a.clone();
        closed.state = CaseState::Dismissed;
        let mut w = Batch::new();
        w.put(&closed).unwrap();
        store.commit(w).unwrap();
        assert_eq!(ids(store.open_cases().unwrap()), vec![3]);
        assert_eq!(ids(store.tenant_cases("parlor").unwrap()), vec![1, 2]);
        let mut w = Batch::new();
        w.put(&a).unwrap();
        store.commit(w).unwrap();
        check();

        // A store written before the index: no entries, no marker.
        sled.tree(Tree::CaseIndex).clear().unwrap();
        sled.tree(Tree::Meta).remove(CASE_INDEX_BUILT).unwrap();
        assert!(store.open_cases().unwrap().is_empty());
        store.ensure_case_index().unwrap();
        check();
    }

    #[test]
    fn a_deadline_moved_or_removed_leaves_no_due_entry_behind() {
        let dir = tempfile::tempdir().unwrap();
        let sled = SledStore::open(dir.path()).unwrap();
        let store: SharedStore = Arc::new(sled.clone());
        let c = case(1, "parlor", CaseState::Noticed);
        let d = crate::store::conformance::test_deadline("dl-1", &c, 100);
        let mut w = Batch::new();
        super::super::cases::schedule_deadline(&mut w, &d).unwrap();
        store.commit(w).unwrap();
        let mut later = d.clone();
        later.due_at = d.due_at + jiff::SignedDuration::from_secs(50);
        let mut w = Batch::new();
        super::super::cases::schedule_deadline(&mut w, &later).unwrap();
        store.commit(w).unwrap();
        assert_eq!(store.pending_deadlines().unwrap(), 1);
        assert_eq!(store.next_due().unwrap(), Some(later.due_at));
        let mut w = Batch::new();
        super::super::cases::drop_deadline(&mut w, &later);
        store.commit(w).unwrap();
        assert_eq!(store.pending_deadlines().unwrap(), 0);
        assert_eq!(sled.tree(Tree::DeadlineDue).len(), 0);
    }
}
