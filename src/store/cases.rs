//! The case repository: cases and their deadlines, read through
//! [`CaseRepository`], which each backend implements in its own terms
//! (sled: records in trees with index trees beside them, kept by its
//! commit; PostgreSQL: the `cases` and `deadlines` tables and their SQL
//! indexes), and the one transaction that commits an enforcement
//! transition. (The outbox, token and report records are also declared
//! here; see `delivery`, `tokens` and `reports` for their repositories.)

use jiff::Timestamp;

use super::{Batch, Claim, Record, Result, SharedStore, StoreError, Tree, Version};
use crate::domain::{
    Case, CaseId, CaseState, Deadline, DeadlineId, OrderRef, OutboxMessage, Report,
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

/// What the service reads of cases and deadlines. Writes go into a
/// [`Batch`] ([`transition_batch`], [`schedule_deadline`],
/// [`drop_deadline`], [`take_open_slot`]); each backend keeps the indexes
/// it needs from the records themselves, so a batch names no index.
pub trait CaseRepository {
    /// One case.
    fn case(&self, id: &CaseId) -> Result<Option<Case>>;
    /// One case and the version read, for a write that must follow on from
    /// it. A case not yet written has an absent version.
    fn case_versioned(&self, id: &CaseId) -> Result<(Option<Case>, Version)>;
    /// Every case, in id order.
    fn all_cases(&self) -> Result<Vec<Case>>;
    /// Every open case ([`CaseState::is_open`]), in id order.
    fn open_cases(&self) -> Result<Vec<Case>>;
    /// Every case of `tenant`, in id order.
    fn tenant_cases(&self, tenant: &str) -> Result<Vec<Case>>;
    /// The case aupd last opened on its own (from evidence or a report) for
    /// `tenant` and `category`, if it is still open, with the slot's
    /// version. An opener that finds none takes the slot with
    /// [`take_open_slot`] in the transaction that opens its case, so two
    /// openers racing (two replicas, a report and the evidence intake)
    /// never both open one: the second's commit conflicts, and when it
    /// looks again it finds the first's case open and joins it. A slot
    /// naming a case that has closed since is free.
    fn open_slot(&self, tenant: &str, category: &str) -> Result<(Option<Case>, Version)>;
    /// One pending deadline.
    fn deadline(&self, id: &DeadlineId) -> Result<Option<Deadline>>;
    /// How many deadlines are pending.
    fn pending_deadlines(&self) -> Result<usize>;
    /// When the next pending deadline is due, if any.
    fn next_due(&self) -> Result<Option<Timestamp>>;
    /// Claims the first deadline due before `now` (after `from`, when a
    /// pass is under way) that no other replica has claimed; `None` when
    /// there is none. Deadlines are claimed oldest first. Only deadlines
    /// due in an earlier millisecond than `now` are surely due: one due
    /// later within this same millisecond waits for the next look.
    fn claim_due(&self, now: Timestamp, from: Option<&DueCursor>) -> Result<Option<DueClaim<'_>>>;
    /// Brings the backend's own case indexes up to date with cases written
    /// before they existed (sled; nothing to do where SQL indexes answer).
    /// Run at start-up.
    fn ensure_case_index(&self) -> Result<()> {
        Ok(())
    }
}

/// The version of a case that does not exist yet (for opening one without
/// reading first).
pub fn absent(id: &CaseId) -> Version {
    Version::absent::<Case>(case_key(id))
}

/// The due-order bounds of a claim for deadlines due before `now`, from
/// `from` (or the start): what both backends' [`CaseRepository::claim_due`]
/// scan.
pub(in crate::store) fn due_range(now: Timestamp, from: Option<&DueCursor>) -> (Vec<u8>, Vec<u8>) {
    let end = (now.as_millisecond().max(0) as u64).to_be_bytes().to_vec();
    let start = from.map_or_else(|| vec![0u8; 8], |c| c.0.clone());
    (start, end)
}

/// The due time a due-order key starts with.
pub(in crate::store) fn due_of_key(key: &[u8]) -> Option<Timestamp> {
    let ms = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    Timestamp::from_millisecond(ms as i64).ok()
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

/// Key in [`Tree::CaseIndex`] of the slot for the case aupd opens on its
/// own (from evidence or a report) for `tenant` and `category` (a record
/// of its own on both backends, not an index).
pub(in crate::store) fn open_slot_key(tenant: &str, category: &str) -> Vec<u8> {
    format!("s/{tenant}/{category}").into_bytes()
}

/// What reading the open slot at `key` found: its stored value `raw`
/// (`None`: free) and the case it names, `holder`, which counts only while
/// it is open. Both backends' [`CaseRepository::open_slot`] end here.
pub(in crate::store) fn slot_read(
    key: Vec<u8>,
    raw: Option<Vec<u8>>,
    holder: Option<Case>,
) -> (Option<Case>, Version) {
    (
        holder.filter(|c| c.state.is_open()),
        Version {
            tree: Tree::CaseIndex,
            key,
            raw,
        },
    )
}

/// Takes the slot read at `version` (see [`CaseRepository::open_slot`])
/// for the new case `id`, in `batch`: the batch commits only if the slot is unchanged.
pub fn take_open_slot(batch: &mut Batch, version: &Version, id: &CaseId) {
    batch.expect_unchanged(version);
    batch.put_raw(Tree::CaseIndex, version.key.clone(), case_key(id));
}

/// The order deadlines fire in, as bytes: due time in milliseconds
/// big-endian, then the id. sled keys its due-time index with it;
/// PostgreSQL keeps it in `deadlines.due_key`. A [`DueCursor`] holds one.
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
/// version that was read: `read`, from [`CaseRepository::case_versioned`] or
/// [`absent`]),
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
    let tenant = Some(case.tenant.as_str());
    for e in &transition.events {
        batch.event(&format!("case.{}", e.kind), tenant, e)?;
    }
    for d in &transition.schedule {
        schedule_deadline(&mut batch, d)?;
    }
    for id in transition.cancel.iter().chain(fired) {
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
    let (Some(mut tenant), version) = store.tenant_versioned(&case.tenant)? else {
        return Ok(());
    };
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
        let still = store
            .tenant_cases(case.tenant.as_str())?
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
    batch.expect_unchanged(&version);
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

/// Where the next [`CaseRepository::claim_due`] of one pass starts: after the last
/// deadline claimed, so a deadline kept for the next pass is not claimed
/// again in this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor(Vec<u8>);

/// A due deadline claimed for firing. While the claim holds, no other
/// replica claims it (PostgreSQL: its row's claim lock is held by the
/// claim's transaction, see [`super::StoreEngine::claim_raw`]), and its consequence
/// commits through [`DueClaim::commit`] in the claim's own transaction.
/// Dropped without a commit, the deadline is left for the next pass.
pub struct DueClaim<'a> {
    claim: Box<dyn Claim + 'a>,
    key: Vec<u8>,
    /// The deadline; `None` when the due index names a deadline that is
    /// gone (see [`DueClaim::forget`]).
    pub deadline: Option<Deadline>,
    /// What forgetting a due entry whose deadline is gone writes (sled:
    /// removes the stale index entry).
    orphan: Batch,
}

impl std::fmt::Debug for DueClaim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueClaim")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<'a> DueClaim<'a> {
    /// A claim on the due entry at `key` (in due order, see [`due_key`]),
    /// naming `deadline`; `orphan` is what forgetting the entry writes when
    /// the deadline is gone.
    pub(in crate::store) fn new(
        claim: Box<dyn Claim + 'a>,
        key: Vec<u8>,
        deadline: Option<Deadline>,
        orphan: Batch,
    ) -> Self {
        DueClaim {
            claim,
            key,
            deadline,
            orphan,
        }
    }

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
        let batch = match &self.deadline {
            Some(d) => {
                let mut batch = Batch::new();
                drop_deadline(&mut batch, d);
                batch
            }
            None => std::mem::take(&mut self.orphan),
        };
        self.claim.commit(batch).map(|_| ())
    }
}

/// Adds a pending deadline, in `batch`.
pub fn schedule_deadline(batch: &mut Batch, d: &Deadline) -> Result<()> {
    batch.put(d)?;
    Ok(())
}

/// Removes a deadline, in `batch`.
pub fn drop_deadline(batch: &mut Batch, d: &Deadline) {
    batch.remove(d);
}
