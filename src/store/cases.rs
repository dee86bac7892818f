//! The case repository: cases, their indexes and deadlines, and the one
//! transaction that commits an enforcement transition. (The outbox, token
//! and report records are also declared here; see `delivery`, `tokens` and
//! `reports` for their repositories.)

use jiff::Timestamp;

use super::{Batch, Claim, Record, Result, SharedStore, Store, StoreError, Tree, Version};
use crate::domain::{
    Case, CaseId, CaseState, Deadline, DeadlineId, OrderRef, OutboxMessage, Report, Tenant,
    TenantEnforcement, TenantStatus, TokenRecord, Transition,
};

impl Record for Case {
    const TREE: Tree = Tree::Cases;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        case_key(&self.id)
    }
}

impl Record for Deadline {
    const TREE: Tree = Tree::Deadlines;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.0.as_bytes().to_vec()
    }
}

impl Record for OutboxMessage {
    const TREE: Tree = Tree::Outbox;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

impl Record for TokenRecord {
    const TREE: Tree = Tree::Tokens;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.hash.as_bytes().to_vec()
    }
}

impl Record for Report {
    const TREE: Tree = Tree::Reports;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

/// One case.
pub fn get(store: &dyn Store, id: &CaseId) -> Result<Option<Case>> {
    store.get::<Case>(&case_key(id))
}

/// One case and the version read, for a write that must follow on from it.
/// A case not yet written has an absent version.
pub fn get_versioned(store: &dyn Store, id: &CaseId) -> Result<(Option<Case>, Version)> {
    Version::read::<Case>(store, case_key(id))
}

/// The version of a case that does not exist yet (for opening one without
/// reading first).
pub fn absent(id: &CaseId) -> Version {
    Version::absent::<Case>(case_key(id))
}

/// Every case.
pub fn all(store: &dyn Store) -> Result<Vec<Case>> {
    store.scan::<Case>(b"", usize::MAX, false)
}

/// Whether `e` is a conflict on a case or a tenant: a transition read a
/// case (or its tenant's status, which follows a suspension) that changed
/// before its commit, so it should be decided again.
pub fn is_case_or_tenant_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(tree)
        if *tree == Tree::Cases.name() || *tree == Tree::Tenants.name())
}

/// Key of a case.
pub(in crate::store) fn case_key(id: &CaseId) -> Vec<u8> {
    id.0.to_string().into_bytes()
}

/// Key of an open case in [`Tree::CaseIndex`].
pub(in crate::store) fn open_case_key(id: &CaseId) -> Vec<u8> {
    let mut key = b"o/".to_vec();
    key.extend_from_slice(&case_key(id));
    key
}

/// Prefix of a tenant's cases in [`Tree::CaseIndex`]: `t/tenant/`.
pub(in crate::store) fn tenant_cases_prefix(tenant: &str) -> Vec<u8> {
    format!("t/{tenant}/").into_bytes()
}

/// Adds `case`'s index entries to `batch`: under its tenant always, under
/// the open cases while it is open.
pub fn index_case(batch: &mut Batch, case: &Case) {
    let mut key = tenant_cases_prefix(case.tenant.as_str());
    key.extend_from_slice(&case_key(&case.id));
    batch.put_raw(Tree::CaseIndex, key, Vec::new());
    if case.state.is_open() {
        batch.put_raw(Tree::CaseIndex, open_case_key(&case.id), Vec::new());
    } else {
        batch.delete_raw(Tree::CaseIndex, open_case_key(&case.id));
    }
}

/// Key in [`Tree::CaseIndex`] of the slot for the case aupd opens on its
/// own (from evidence or a report) for `tenant` and `category`.
fn open_slot_key(tenant: &str, category: &str) -> Vec<u8> {
    format!("s/{tenant}/{category}").into_bytes()
}

/// The case aupd last opened on its own for `tenant` and `category`, if
/// it is still open, with the slot's version. An opener that finds none
/// takes the slot with [`take_open_slot`] in the transaction that opens
/// its case, so two openers racing (two replicas, a report and the
/// evidence intake) never both open one: the second's commit conflicts,
/// and when it looks again it finds the first's case open and joins it.
/// A slot naming a case that has closed since is free.
pub fn open_slot(
    store: &dyn Store,
    tenant: &str,
    category: &str,
) -> Result<(Option<Case>, Version)> {
    let key = open_slot_key(tenant, category);
    let raw = store.get_raw(Tree::CaseIndex, &key)?;
    let holder = raw
        .as_deref()
        .and_then(|id| uuid::Uuid::try_parse_ascii(id).ok())
        .map(CaseId);
    let case = match holder {
        Some(id) => get(store, &id)?.filter(|c| c.state.is_open()),
        None => None,
    };
    Ok((
        case,
        Version {
            tree: Tree::CaseIndex,
            key,
            raw,
        },
    ))
}

/// Takes the slot read at `version` (see [`open_slot`]) for the new case
/// `id`, in `batch`: the batch commits only if the slot is unchanged.
pub fn take_open_slot(batch: &mut Batch, version: &Version, id: &CaseId) {
    batch.expect_unchanged(version);
    batch.put_raw(Tree::CaseIndex, version.key.clone(), case_key(id));
}

/// Marks a store whose cases are all in [`Tree::CaseIndex`].
const CASE_INDEX_BUILT: &[u8] = b"case_state_index_built";

/// Indexes the cases of a store written before [`Tree::CaseIndex`] existed
/// (see [`super::ensure_indexes`]).
pub fn ensure_case_index(store: &SharedStore) -> Result<()> {
    super::build_once(store, CASE_INDEX_BUILT, || {
        let mut batch = Batch::new();
        for case in store.scan::<Case>(b"", usize::MAX, false)? {
            index_case(&mut batch, &case);
        }
        store.commit(batch).map(drop)
    })
}

/// The cases whose ids are listed under `prefix` in [`Tree::CaseIndex`].
fn indexed_cases(store: &SharedStore, prefix: &[u8]) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    for (key, _) in store.scan_raw(Tree::CaseIndex, prefix, usize::MAX, false)? {
        if let Some(case) = store.get::<Case>(&key[prefix.len()..])? {
            out.push(case);
        }
    }
    Ok(out)
}

/// Every open case, read through the index.
pub fn open_cases(store: &SharedStore) -> Result<Vec<Case>> {
    indexed_cases(store, b"o/")
}

/// Every case of `tenant`, read through the index.
pub fn tenant_cases(store: &SharedStore, tenant: &str) -> Result<Vec<Case>> {
    indexed_cases(store, &tenant_cases_prefix(tenant))
}

/// Key of a deadline in the due-time index: milliseconds big-endian, then id,
/// so a range scan from zero to now yields due deadlines in time order.
pub(in crate::store) fn due_key(due_at: Timestamp, id: &DeadlineId) -> Vec<u8> {
    let ms = due_at.as_millisecond().max(0) as u64;
    let mut key = ms.to_be_bytes().to_vec();
    key.extend_from_slice(id.0.as_bytes());
    key
}

/// A new outbox message id: `msg_` + a time-ordered UUID (v7).
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// Builds the batch for a transition: the case (only if it is still the
/// version that was read: `read`, from [`get_versioned`] or [`absent`]),
/// its audit events, the deadlines it schedules and cancels (plus the one
/// that fired, if any), and its webhook messages with the order index that
/// lets a receipt find them — one transaction.
pub fn transition_batch(
    store: &SharedStore,
    transition: &Transition,
    read: &Version,
    fired: Option<&DeadlineId>,
    now: Timestamp,
) -> Result<Batch> {
    let mut batch = Batch::new();
    let case = &transition.case;
    let before = read
        .raw
        .as_deref()
        .map(super::decode::<Case>)
        .transpose()?
        .map(|c| c.state);
    if read.tree != Tree::Cases || read.key != case_key(&case.id) {
        return Err(StoreError::Encode {
            tree: Tree::Cases.name(),
            message: "a transition's precondition is not on its own case".into(),
        });
    }
    batch.expect_unchanged(read);
    follow_enforcement(store, &mut batch, case, before, now)?;
    batch.put(case)?;
    index_case(&mut batch, case);
    let tenant = Some(case.tenant.as_str());
    for e in &transition.events {
        batch.event(&format!("case.{}", e.kind), tenant, e)?;
    }
    for d in &transition.schedule {
        schedule_deadline(&mut batch, d)?;
    }
    for id in transition.cancel.iter().chain(fired) {
        if let Some(d) = store.get::<Deadline>(id.0.as_bytes())? {
            batch.delete_raw(Tree::DeadlineDue, due_key(d.due_at, &d.id));
        }
        batch.delete::<Deadline>(id.0.as_bytes().to_vec());
    }
    for m in &transition.outbox {
        let message = OutboxMessage {
            id: new_message_id(),
            event_type: m.event_type.clone(),
            idempotency_key: m.idempotency_key.clone(),
            tenant: Some(case.tenant.clone()),
            payload: m.payload.clone(),
            created_at: now,
            endpoint: None,
        };
        super::delivery::queue_message(&mut batch, &message)?;
        // The order exists from this commit: its receipt may arrive before
        // the dispatcher has sent it (or while the dispatcher is down).
        batch.put(&OrderRef {
            idempotency_key: message.idempotency_key.clone(),
            case_id: case.id.to_string(),
            event_type: message.event_type.clone(),
            message_id: message.id.clone(),
        })?;
    }
    Ok(batch)
}

/// Keeps the tenant's status in step with its enforcement, in the
/// transition's own batch: a case that becomes `suspended` suspends its
/// tenant, and reinstating it restores the status the tenant had before,
/// unless another case still holds the tenant suspended. The tenant record
/// names the case that did it. A case about a tenant that was never
/// registered changes no tenant.
fn follow_enforcement(
    store: &SharedStore,
    batch: &mut Batch,
    case: &Case,
    before: Option<CaseState>,
    now: Timestamp,
) -> Result<()> {
    let suspends = case.state == CaseState::Suspended && before != Some(CaseState::Suspended);
    let lifts = case.state == CaseState::Reinstated && before == Some(CaseState::Suspended);
    if !suspends && !lifts {
        return Ok(());
    }
    let key = case.tenant.as_str().as_bytes().to_vec();
    let Some(raw) = store.get_raw(Tree::Tenants, &key)? else {
        return Ok(());
    };
    let mut tenant: Tenant = super::decode(&raw)?;
    let from = tenant.status;
    let status_before = match (&tenant.enforcement, tenant.status) {
        (Some(e), TenantStatus::Suspended) => e.status_before,
        (_, status) => status,
    };
    if suspends {
        tenant.status = TenantStatus::Suspended;
        tenant.enforcement = Some(TenantEnforcement {
            case: case.id,
            state: CaseState::Suspended,
            at: now,
            status_before,
        });
    } else {
        let still = tenant_cases(store, case.tenant.as_str())?
            .into_iter()
            .find(|c| c.id != case.id && c.state == CaseState::Suspended);
        tenant.enforcement = Some(match still {
            Some(other) => TenantEnforcement {
                case: other.id,
                state: CaseState::Suspended,
                at: other.updated_at,
                status_before,
            },
            None => {
                tenant.status = status_before;
                TenantEnforcement {
                    case: case.id,
                    state: CaseState::Reinstated,
                    at: now,
                    status_before,
                }
            }
        });
    }
    tenant.updated_at = now;
    batch.expect::<Tenant>(key, Some(raw));
    batch.put(&tenant)?;
    batch.event(
        "tenant.status_changed",
        Some(case.tenant.as_str()),
        serde_json::json!({
            "from": from,
            "to": tenant.status,
            "case": case.id,
            "case_state": case.state,
        }),
    )?;
    Ok(())
}

/// Where the next [`claim_due`] of one pass starts: after the last
/// deadline claimed, so a deadline kept for the next pass is not claimed
/// again in this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor(Vec<u8>);

/// A due deadline claimed for firing. While the claim holds, no other
/// replica claims it (PostgreSQL: its due-index row is locked with `FOR
/// UPDATE SKIP LOCKED`, see [`Store::claim_raw`]), and its consequence
/// commits through [`DueClaim::commit`] in the claim's own transaction.
/// Dropped without a commit, the deadline is left for the next pass.
pub struct DueClaim<'a> {
    claim: Box<dyn Claim + 'a>,
    key: Vec<u8>,
    /// The deadline; `None` when the due index names a deadline that is
    /// gone (see [`DueClaim::forget`]).
    pub deadline: Option<Deadline>,
}

impl std::fmt::Debug for DueClaim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueClaim")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl DueClaim<'_> {
    /// Where the pass goes on from.
    pub fn cursor(&self) -> DueCursor {
        let mut next = self.key.clone();
        next.push(0);
        DueCursor(next)
    }

    /// Commits `batch` (the deadline's consequence, which removes it) in
    /// the claim's transaction. On a conflict the claim still holds and
    /// another batch may be committed.
    pub fn commit(&mut self, batch: Batch) -> Result<Vec<u64>> {
        self.claim.commit(batch)
    }

    /// Removes the deadline without firing it (cancelled, superseded, or
    /// its case is gone), or the due-index entry alone when the deadline
    /// record is already gone.
    pub fn forget(mut self) -> Result<()> {
        let mut batch = Batch::new();
        match &self.deadline {
            Some(d) => drop_deadline(&mut batch, d),
            None => {
                batch.delete_raw(Tree::DeadlineDue, self.key.clone());
            }
        }
        self.claim.commit(batch).map(|_| ())
    }
}

/// Claims the first deadline due at or before `now` (after `from`, when a
/// pass is under way) that no other replica has claimed; `None` when there
/// is none. Deadlines are claimed oldest first.
pub fn claim_due<'a>(
    store: &'a dyn Store,
    now: Timestamp,
    from: Option<&DueCursor>,
) -> Result<Option<DueClaim<'a>>> {
    // Keys hold whole milliseconds: only deadlines due in an earlier
    // millisecond than `now` are surely due (one due later within this same
    // millisecond waits for the next look).
    let end = (now.as_millisecond().max(0) as u64).to_be_bytes().to_vec();
    let start = from.map_or_else(|| vec![0u8; 8], |c| c.0.clone());
    let claim = store.claim_raw(Tree::DeadlineDue, &start, &end, 1)?;
    let Some((key, id)) = claim.rows().first().cloned() else {
        return Ok(None);
    };
    let deadline = store.get::<Deadline>(&id)?;
    Ok(Some(DueClaim {
        claim,
        key,
        deadline,
    }))
}

/// How many deadlines are pending.
pub fn pending_deadlines(store: &dyn Store) -> Result<usize> {
    Ok(store
        .scan_raw(Tree::DeadlineDue, b"", usize::MAX, false)?
        .len())
}

/// When the next pending deadline is due, if any.
pub fn next_due(store: &dyn Store) -> Result<Option<Timestamp>> {
    let first = store.scan_raw(Tree::DeadlineDue, b"", 1, false)?;
    Ok(first.first().and_then(|(k, _)| {
        let ms = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
        Timestamp::from_millisecond(ms as i64).ok()
    }))
}

/// Adds a pending deadline and its due-time index entry, in `batch`.
pub fn schedule_deadline(batch: &mut Batch, d: &Deadline) -> Result<()> {
    batch.put(d)?;
    batch.put_raw(
        Tree::DeadlineDue,
        due_key(d.due_at, &d.id),
        d.id.0.as_bytes().to_vec(),
    );
    Ok(())
}

/// Removes a deadline and its due-time index entry, in `batch`.
pub fn drop_deadline(batch: &mut Batch, d: &Deadline) {
    batch.delete_raw(Tree::DeadlineDue, due_key(d.due_at, &d.id));
    batch.remove(d);
}

/// Removes every entry of the case index and its built marker, as a store
/// written before the index existed would be.
#[cfg(test)]
pub(crate) fn forget_case_index(store: &SharedStore) -> Result<()> {
    let mut wipe = Batch::new();
    for (key, _) in store.scan_raw(Tree::CaseIndex, b"", usize::MAX, false)? {
        wipe.delete_raw(Tree::CaseIndex, key);
    }
    wipe.delete_raw(Tree::Meta, CASE_INDEX_BUILT.to_vec());
    store.commit(wipe).map(drop)
}
