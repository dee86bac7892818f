//! The store: the only room that touches sled or PostgreSQL.
//!
//! **Repositories.** Other rooms read through one trait per aggregate, in
//! domain ids and types: [`cases::CaseRepository`] (cases, the open-case
//! slots, deadlines, claiming a due one), [`tenants::TenantRepository`]
//! (tenants, sources, source states), [`tokens::TokenRepository`],
//! [`reports::ReportRepository`], [`samples::SampleRepository`] (samples,
//! findings, tallies, raised thresholds, intake counters, content hashes),
//! [`reviews::ReviewRepository`] (labels, review states),
//! [`delivery::DeliveryRepository`] (endpoints, outbox messages,
//! deliveries, orders, receipts, operator alerts) and
//! [`events::AuditRepository`] (the hash-chained log). Each backend
//! implements each in its own terms: `sled_*.rs` read trees (sled's commit
//! keeps the index trees beside cases and deadlines from the records
//! written), `pg_*.rs` answer in SQL from each aggregate's table. A
//! [`Store`] is all of them over a [`StoreEngine`]; other rooms hold it as
//! a [`SharedStore`]. What is not a domain aggregate is built on the
//! engine's compare-and-set, the same on both backends: work leases and
//! fences ([`lease`]), consumer cursors, the wanted policy version and
//! one-off upgrades ([`meta`]), rate counters ([`rate`]), the dispatcher's
//! queues (in [`delivery`]) and the audit chain's check ([`audit`]).
//!
//! **Unit of work.** Every state change is one [`Batch`] (also named
//! [`UnitOfWork`]) committed in one transaction, on either backend,
//! together with the events it appends to the hash-chained log.
//! Repository modules add typed writes to it (`batch.put(&record)`,
//! `batch.remove(&record)`, helpers such as `cases::transition_batch`).
//! A read that a write must follow on from is a versioned read — e.g.
//! `let (case, version) = store.case_versioned(&id)?` — and the batch
//! takes `batch.expect_unchanged(&version)`: the commit fails with
//! [`StoreError::Conflict`] if someone changed the record meanwhile.
//!
//! **Engine and layout.** The [`StoreEngine`] commits batches, claims rows
//! for one process to act on, flushes, wakes other processes, and keeps an
//! ordered key space: on sled every record lives there, in typed trees
//! (`Tree`) under byte keys with a schema version (`encode`, `decode`); on
//! PostgreSQL ([`PgStore`]) it is the `kv (tree, key, value)` table and
//! holds only what is not a domain aggregate (leases, cursors, rate
//! counters, the dispatcher's queues, the audit log's rows), while each
//! aggregate has a table with typed columns and SQL indexes (`pg_tables`
//! maps a batch's writes to them). Trees, keys and raw reads are visible
//! only inside this module: the compiler keeps the layout here. Tests that
//! deliberately inspect or corrupt the on-disk layout use the hidden
//! `tamper` module.

pub mod audit;
pub mod cases;
#[cfg(test)]
mod conformance;
pub mod delivery;
pub mod events;
pub mod lease;
pub mod meta;
mod pg_cases;
mod pg_delivery;
mod pg_events;
mod pg_read;
mod pg_samples;
mod pg_store;
mod pg_tables;
mod pg_tenants;
pub mod rate;
pub mod records;
pub mod reports;
pub mod reviews;
pub mod samples;
mod sled_cases;
mod sled_delivery;
mod sled_events;
mod sled_samples;
mod sled_store;
mod sled_tenants;
#[doc(hidden)]
pub mod tamper;
pub mod tenants;
pub mod tokens;
mod tree;

use std::sync::Arc;

use crate::domain::{
    Delivery, Endpoint, Finding, IntakeCounter, Label, OperatorAlert, OrderRef, OutboxMessage,
    Receipt, ReviewState, Sample, SampleId, Tally, TenantId, ThresholdAlert,
};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use pg_store::prefix_successor;
#[cfg(test)]
pub(crate) use pg_store::tests::TestDb;
pub use pg_store::{create_database, database_url, drop_database, PgStore, MIGRATIONS};
pub use sled_store::SledStore;
// `Tree` is public in a private module: nameable only inside the store, so
// no other room can reach a tree or a key (it still appears in the `Store`
// trait the backends implement, and in `Record`, whose impls all live here).
use tree::Tree;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A precondition of the batch no longer held (someone else changed the
    /// record first); nothing was written. Read again and retry.
    #[error("conflict: {0} changed since it was read")]
    Conflict(&'static str),
    /// The backend failed (I/O, corruption).
    #[error("store backend failed: {0}")]
    Backend(String),
    /// A record could not be encoded.
    #[error("encoding a {tree} record: {message}")]
    Encode {
        /// The tree.
        tree: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A stored record could not be read back.
    #[error("decoding a {tree} record: {message}")]
    Decode {
        /// The tree.
        tree: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Whether `e` is a store conflict: a precondition of the commit no longer
/// held, nothing was written, and the work can be read and made again.
pub fn is_conflict(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<StoreError>(),
        Some(StoreError::Conflict(_))
    )
}

/// Store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A record kept in a typed tree.
pub trait Record: Serialize + DeserializeOwned {
    /// The tree it lives in.
    const TREE: Tree;
    /// Schema version written with it; readers refuse newer versions.
    const VERSION: u32;
    /// Its key in the tree.
    fn key(&self) -> Vec<u8>;
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    r: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    v: u32,
    r: T,
}

/// Encodes a record with its schema version.
pub(in crate::store) fn encode<R: Record>(record: &R) -> Result<Vec<u8>> {
    serde_json::to_vec(&EnvelopeOut {
        v: R::VERSION,
        r: record,
    })
    .map_err(|e| StoreError::Encode {
        tree: R::TREE.name(),
        message: e.to_string(),
    })
}

/// Decodes a record, refusing a schema version newer than this build knows.
pub(in crate::store) fn decode<R: Record>(bytes: &[u8]) -> Result<R> {
    let env: EnvelopeIn<R> = serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        tree: R::TREE.name(),
        message: e.to_string(),
    })?;
    if env.v > R::VERSION {
        return Err(StoreError::Decode {
            tree: R::TREE.name(),
            message: format!(
                "schema version {} is newer than this build's {}",
                env.v,
                R::VERSION
            ),
        });
    }
    Ok(env.r)
}

/// One write of a batch.
#[derive(Debug, Clone)]
pub enum Op {
    /// Insert or replace.
    Put {
        /// Tree.
        tree: Tree,
        /// Key.
        key: Vec<u8>,
        /// Encoded record.
        value: Vec<u8>,
    },
    /// Remove if present.
    Delete {
        /// Tree.
        tree: Tree,
        /// Key.
        key: Vec<u8>,
    },
    /// Abort the whole batch unless the record is still exactly `value`
    /// (`None`: still absent). Optimistic concurrency for read-decide-write.
    Expect {
        /// Tree.
        tree: Tree,
        /// Key.
        key: Vec<u8>,
        /// The raw bytes read earlier.
        value: Option<Vec<u8>>,
    },
}

/// An event to append, before the store gives it a sequence number.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// What happened, e.g. `tenant.created`.
    pub kind: String,
    /// The tenant it concerns, if any.
    pub tenant: Option<String>,
    /// Details.
    pub data: serde_json::Value,
}

/// An event in the append-only log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EventRecord {
    /// Gapless, monotonic position in the log.
    pub seq: u64,
    /// When it was committed.
    pub at: jiff::Timestamp,
    /// What happened, e.g. `evidence.threshold_crossed`.
    pub kind: String,
    /// The tenant it concerns, if any.
    pub tenant: Option<String>,
    /// Details.
    pub data: serde_json::Value,
    /// Hash of the previous event (hex SHA-256; 64 zeros for the first).
    #[serde(default)]
    pub prev: String,
    /// Hash of this event: SHA-256 over `prev` and the event's other fields,
    /// so changing or removing any record breaks the chain after it.
    #[serde(default)]
    pub hash: String,
}

/// The writes that append `events` to the chain whose head is `seq_bytes`
/// (the stored `event_seq`) and `head_bytes` (the stored `event_head`):
/// each event sealed under its sequence key, its case-index entry, then
/// the new head. sled calls it inside its transaction; PostgreSQL does the
/// same in the server (`aupd_append_events`, migration 9, from
/// [`event_rest`]), to the same bytes. Returns the writes as (tree, key,
/// value) and the sequence numbers given.
#[allow(clippy::type_complexity)]
pub(in crate::store) fn chain_events(
    events: &[NewEvent],
    seq_bytes: Option<&[u8]>,
    head_bytes: Option<&[u8]>,
    at: jiff::Timestamp,
) -> Result<(Vec<(Tree, Vec<u8>, Vec<u8>)>, Vec<u64>)> {
    let mut seq = match seq_bytes {
        Some(v) => u64::from_be_bytes(
            v.try_into()
                .map_err(|_| StoreError::Backend("event sequence is corrupt".into()))?,
        ),
        None => 0,
    };
    let mut prev = match head_bytes {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => GENESIS_HASH.to_string(),
    };
    let mut writes = Vec::with_capacity(events.len() * 2 + 2);
    let mut seqs = Vec::with_capacity(events.len());
    for e in events {
        seq += 1;
        let mut record = EventRecord {
            seq,
            at,
            kind: e.kind.clone(),
            tenant: e.tenant.clone(),
            data: e.data.clone(),
            prev: prev.clone(),
            hash: String::new(),
        };
        let bytes = record
            .seal()
            .map_err(|e| StoreError::Backend(format!("sealing an event: {e}")))?;
        prev = record.hash.clone();
        writes.push((Tree::Events, seq.to_be_bytes().to_vec(), bytes));
        if let Some(case) = event_case(&e.kind, &e.data) {
            writes.push((Tree::CaseEvents, case_events_key(case, seq), Vec::new()));
        }
        seqs.push(seq);
    }
    writes.push((
        Tree::Meta,
        sled_store::EVENT_SEQ.to_vec(),
        seq.to_be_bytes().to_vec(),
    ));
    writes.push((
        Tree::Meta,
        sled_store::EVENT_HEAD.to_vec(),
        prev.into_bytes(),
    ));
    Ok((writes, seqs))
}

/// The part of an event's hashed bytes between its `at` and its `prev`
/// fields: `,"kind":…,"tenant":…,"data":…`. PostgreSQL's
/// `aupd_append_events` (migration 9) puts the sequence number, the time
/// and the previous hash around it under the event lock, giving the bytes
/// [`EventRecord::seal`] would.
pub(in crate::store) fn event_rest(event: &NewEvent) -> Result<Vec<u8>> {
    #[derive(Serialize)]
    struct Rest<'a> {
        kind: &'a str,
        tenant: &'a Option<String>,
        data: &'a serde_json::Value,
    }
    let mut bytes = serde_json::to_vec(&Rest {
        kind: &event.kind,
        tenant: &event.tenant,
        data: &event.data,
    })
    .map_err(|e| StoreError::Encode {
        tree: Tree::Events.name(),
        message: e.to_string(),
    })?;
    // `{…}` becomes `,…`: the fields follow `at` inside the event.
    bytes[0] = b',';
    bytes.pop();
    Ok(bytes)
}

/// The `prev` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl EventRecord {
    /// The bytes the chain hash covers: every field but `hash`, in
    /// declaration order, as compact JSON.
    fn hashed_bytes(&self) -> serde_json::Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Hashed<'a> {
            seq: u64,
            at: &'a jiff::Timestamp,
            kind: &'a str,
            tenant: &'a Option<String>,
            data: &'a serde_json::Value,
            prev: &'a str,
        }
        serde_json::to_vec(&Hashed {
            seq: self.seq,
            at: &self.at,
            kind: &self.kind,
            tenant: &self.tenant,
            data: &self.data,
            prev: &self.prev,
        })
    }

    /// The chain hash of this event's content (everything but `hash`).
    pub fn compute_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.hashed_bytes().unwrap_or_default()))
    }

    /// Sets `hash` and returns the bytes to store: the hashed bytes with
    /// `,"hash":"…"` put before their closing brace. The verifier hashes
    /// what is on disk rather than a record parsed and printed again, so
    /// nothing a parser might round (a float's last digit) can break the
    /// chain. The bytes are what `serde_json::to_vec` gives for the record.
    pub fn seal(&mut self) -> serde_json::Result<Vec<u8>> {
        use sha2::{Digest, Sha256};
        let mut bytes = self.hashed_bytes()?;
        self.hash = hex::encode(Sha256::digest(&bytes));
        bytes.pop();
        bytes.extend_from_slice(HASH_FIELD);
        bytes.extend_from_slice(self.hash.as_bytes());
        bytes.extend_from_slice(b"\"}");
        Ok(bytes)
    }
}

/// What comes between the hashed bytes of a stored event and its hash.
const HASH_FIELD: &[u8] = b",\"hash\":\"";

/// Splits the stored bytes of an event into the bytes its hash covers and
/// the hash they state; `None` when the bytes are not in the form
/// [`EventRecord::seal`] writes.
pub fn split_sealed_event(stored: &[u8]) -> Option<(Vec<u8>, &str)> {
    let body = stored.strip_suffix(b"\"}")?;
    let hash_at = body.len().checked_sub(64)?;
    let (head, hash) = body.split_at(hash_at);
    let hash = std::str::from_utf8(hash).ok()?;
    if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut hashed = head.strip_suffix(HASH_FIELD)?.to_vec();
    hashed.push(b'}');
    Some((hashed, hash))
}

/// A record as it was read (or found absent), kept to make a later write
/// conditional on it: [`Batch::expect_unchanged`] aborts the commit with
/// [`StoreError::Conflict`] unless the record still holds exactly these
/// bytes. Where the record lives and what it looked like stay private to
/// the store; repositories hand one out with each versioned read
/// (`get_versioned`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    tree: Tree,
    key: Vec<u8>,
    raw: Option<Vec<u8>>,
}

impl Version {
    /// The version of `R`'s record at `key` as the store holds it now.
    fn read<R: Record>(store: &dyn Store, key: Vec<u8>) -> Result<(Option<R>, Version)> {
        let raw = store.get_raw(R::TREE, &key)?;
        Version::found::<R>(key, raw)
    }

    /// The version of `R`'s record at `key`, read as `raw` (`None`:
    /// absent), with the record decoded.
    fn found<R: Record>(key: Vec<u8>, raw: Option<Vec<u8>>) -> Result<(Option<R>, Version)> {
        let record = raw.as_deref().map(decode::<R>).transpose()?;
        Ok((
            record,
            Version {
                tree: R::TREE,
                key,
                raw,
            },
        ))
    }

    /// The version `record` will have once a batch that puts it commits:
    /// the precondition for the next write that follows on from it.
    pub fn of<R: Record>(record: &R) -> Result<Version> {
        Ok(Version {
            tree: R::TREE,
            key: record.key(),
            raw: Some(encode(record)?),
        })
    }

    /// The version of `R`'s record at `key` while it does not exist.
    fn absent<R: Record>(key: Vec<u8>) -> Version {
        Version {
            tree: R::TREE,
            key,
            raw: None,
        }
    }

    /// Whether the record existed when read.
    pub fn exists(&self) -> bool {
        self.raw.is_some()
    }
}

/// Writes and events that commit together or not at all: the store's unit
/// of work. Repositories add typed writes and preconditions to it
/// ([`put`](Batch::put), [`remove`](Batch::remove),
/// [`expect_unchanged`](Batch::expect_unchanged) and helpers such as
/// `cases::transition_batch`); one [`StoreEngine::commit`] applies it atomically
/// on either backend.
pub type UnitOfWork = Batch;

/// Writes and events that commit together or not at all (see
/// [`UnitOfWork`]).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    ops: Vec<Op>,
    events: Vec<NewEvent>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Puts a record into its tree.
    pub fn put<R: Record>(&mut self, record: &R) -> Result<&mut Self> {
        let value = encode(record)?;
        self.ops.push(Op::Put {
            tree: R::TREE,
            key: record.key(),
            value,
        });
        Ok(self)
    }

    /// Adds a precondition: the batch aborts with [`StoreError::Conflict`]
    /// unless the record is still as `version` saw it (still absent if it
    /// was absent).
    pub fn expect_unchanged(&mut self, version: &Version) -> &mut Self {
        self.ops.push(Op::Expect {
            tree: version.tree,
            key: version.key.clone(),
            value: version.raw.clone(),
        });
        self
    }

    /// Removes `record` from its tree.
    pub fn remove<R: Record>(&mut self, record: &R) -> &mut Self {
        self.ops.push(Op::Delete {
            tree: R::TREE,
            key: record.key(),
        });
        self
    }

    /// Adds a precondition on a raw key (for records kept as plain bytes,
    /// such as cursors): the batch aborts with [`StoreError::Conflict`]
    /// unless it still holds exactly `value` (`None`: still absent).
    pub(in crate::store) fn expect_raw(
        &mut self,
        tree: Tree,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> &mut Self {
        self.ops.push(Op::Expect { tree, key, value });
        self
    }

    /// Puts raw bytes (for index trees that hold no typed record).
    pub(in crate::store) fn put_raw(
        &mut self,
        tree: Tree,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> &mut Self {
        self.ops.push(Op::Put { tree, key, value });
        self
    }

    /// Deletes a raw key.
    pub(in crate::store) fn delete_raw(&mut self, tree: Tree, key: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Delete { tree, key });
        self
    }

    /// Deletes the record with `key` from `R`'s tree.
    pub(in crate::store) fn delete<R: Record>(&mut self, key: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Delete { tree: R::TREE, key });
        self
    }

    /// Appends an event to the log.
    pub fn event(
        &mut self,
        kind: &str,
        tenant: Option<&str>,
        data: impl Serialize,
    ) -> Result<&mut Self> {
        let data = serde_json::to_value(data).map_err(|e| StoreError::Encode {
            tree: Tree::Events.name(),
            message: e.to_string(),
        })?;
        self.events.push(NewEvent {
            kind: kind.to_string(),
            tenant: tenant.map(str::to_string),
            data,
        });
        Ok(self)
    }

    /// Moves every write and event of `other` into this batch.
    pub fn extend(&mut self, other: Batch) {
        self.ops.extend(other.ops);
        self.events.extend(other.events);
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.events.is_empty()
    }

    /// The writes.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The events.
    pub fn events(&self) -> &[NewEvent] {
        &self.events
    }
}

/// A storage backend: every repository, over the engine that commits
/// their writes. Calls block: async callers use `spawn_blocking` for
/// commits, flushes and large scans.
pub trait Store:
    StoreEngine
    + cases::CaseRepository
    + tenants::TenantRepository
    + tokens::TokenRepository
    + reports::ReportRepository
    + samples::SampleRepository
    + reviews::ReviewRepository
    + delivery::DeliveryRepository
    + events::AuditRepository
{
}

impl Store for SledStore {}
impl Store for PgStore {}
impl<S: Store + ?Sized> Store for Arc<S> {}

/// The engine under the repositories: commits a [`Batch`] atomically,
/// claims rows for one process to act on, makes commits durable, wakes
/// other processes, and keeps an ordered key space. On sled that key space
/// holds every record (in trees); on PostgreSQL it is the `kv` table,
/// which holds only what is not a domain aggregate (leases, cursors, rate
/// counters, the dispatcher's queues, the audit log's rows): aggregates are
/// read through the repository traits, in SQL. Its raw reads take a
/// `Tree`, which only `src/store` can name.
pub trait StoreEngine: Send + Sync + std::fmt::Debug {
    /// Reads one raw record.
    fn get_raw(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Reads several raw records at once (PostgreSQL: one round trip), in
    /// the order of `keys`.
    fn get_many_raw(&self, tree: Tree, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get_raw(tree, k)).collect()
    }
    /// Raw records whose key starts with `prefix`, in key order (reversed
    /// with `newest_first`), at most `limit`.
    fn scan_raw(
        &self,
        tree: Tree,
        prefix: &[u8],
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Raw records with `start <= key < end`.
    fn range_raw(&self, tree: Tree, start: &[u8], end: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// At most `limit` raw records with `start <= key < end`, in key order
    /// (a page of a large range).
    fn range_raw_limited(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut all = self.range_raw(tree, start, end)?;
        all.truncate(limit);
        Ok(all)
    }
    /// Applies the batch atomically; returns the sequence numbers given to
    /// its events. Not yet durable until `flush`.
    fn commit(&self, batch: Batch) -> Result<Vec<u64>>;
    /// Claims at most `limit` rows with `start <= key < end` that no other
    /// claim holds, in key order, passing over those held (PostgreSQL:
    /// `SELECT … FOR UPDATE SKIP LOCKED` in a transaction that stays open
    /// until the claim commits or is dropped). The work done on them
    /// commits through [`Claim::commit`], in that same transaction, so two
    /// processes never act on one row at once and a process that dies
    /// mid-work lets its rows go with its connection. Any write to a
    /// claimed row must go through the claim: another commit touching it
    /// waits until the claim ends. sled serves one process, so its claim
    /// holds nothing and commits as [`StoreEngine::commit`] does.
    fn claim_raw(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Box<dyn Claim + '_>>;
    /// Makes every committed batch durable.
    fn flush(&self) -> Result<()>;
    /// Wakes every process sharing this store that waits on `topic`
    /// (PostgreSQL: `NOTIFY`). A wake-up only: the records stay the truth
    /// and waiters still poll them. A store no other process shares (sled)
    /// has no one to wake.
    fn announce(&self, topic: Topic) -> Result<()> {
        let _ = topic;
        Ok(())
    }
    /// What fires when any process announces `topic` (PostgreSQL: a
    /// connection that `LISTEN`s, reconnecting when it drops, and firing
    /// once after each reconnect since announcements may have been missed
    /// meanwhile). None when the store has no cross-process wake-ups.
    fn wakeups(&self, topic: Topic) -> Option<Arc<tokio::sync::Notify>> {
        let _ = topic;
        None
    }
    /// Whether this process is the only one that can open the store (sled
    /// locks its directory): at start, whatever an earlier life left
    /// claimed or leased is known to be abandoned.
    fn single_process(&self) -> bool {
        false
    }
}

/// Rows claimed to act on, with the transaction the work commits in (see
/// [`StoreEngine::claim_raw`]). Dropped without a commit, it lets them go.
pub trait Claim: Send {
    /// The claimed rows (key, value), in key order.
    fn rows(&self) -> &[(Vec<u8>, Vec<u8>)];
    /// Commits `batch` in the claim's transaction, which ends the claim.
    /// On [`StoreError::Conflict`] only this batch is undone: the claim
    /// still holds its rows, and the caller may read again, decide again
    /// and commit another batch.
    fn commit(&mut self, batch: Batch) -> Result<Vec<u64>>;
}

/// What processes sharing a store may wake each other about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A reload recorded a new wanted policy version.
    Policy,
}

impl Topic {
    /// The PostgreSQL channel it is announced on.
    pub fn channel(self) -> &'static str {
        match self {
            Topic::Policy => "aupd_policy",
        }
    }
}

/// The store shared by every room.
pub type SharedStore = Arc<dyn Store>;

/// A shared store is a store: repository functions take `&dyn Store`, and
/// a `&SharedStore` can be passed as one.
impl<S: Store + ?Sized> StoreEngine for Arc<S> {
    fn get_raw(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get_raw(tree, key)
    }
    fn get_many_raw(&self, tree: Tree, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        (**self).get_many_raw(tree, keys)
    }
    fn scan_raw(
        &self,
        tree: Tree,
        prefix: &[u8],
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        (**self).scan_raw(tree, prefix, limit, newest_first)
    }
    fn range_raw(&self, tree: Tree, start: &[u8], end: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        (**self).range_raw(tree, start, end)
    }
    fn range_raw_limited(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        (**self).range_raw_limited(tree, start, end, limit)
    }
    fn commit(&self, batch: Batch) -> Result<Vec<u64>> {
        (**self).commit(batch)
    }
    fn claim_raw(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Box<dyn Claim + '_>> {
        (**self).claim_raw(tree, start, end, limit)
    }
    fn flush(&self) -> Result<()> {
        (**self).flush()
    }
    fn announce(&self, topic: Topic) -> Result<()> {
        (**self).announce(topic)
    }
    fn wakeups(&self, topic: Topic) -> Option<Arc<tokio::sync::Notify>> {
        (**self).wakeups(topic)
    }
    fn single_process(&self) -> bool {
        (**self).single_process()
    }
}

/// A shared store is a case repository (see [`Store`]'s impl for `Arc`).
impl<S: Store + ?Sized> cases::CaseRepository for Arc<S> {
    fn case(&self, id: &crate::domain::CaseId) -> Result<Option<crate::domain::Case>> {
        (**self).case(id)
    }
    fn case_versioned(
        &self,
        id: &crate::domain::CaseId,
    ) -> Result<(Option<crate::domain::Case>, Version)> {
        (**self).case_versioned(id)
    }
    fn all_cases(&self) -> Result<Vec<crate::domain::Case>> {
        (**self).all_cases()
    }
    fn open_cases(&self) -> Result<Vec<crate::domain::Case>> {
        (**self).open_cases()
    }
    fn tenant_cases(&self, tenant: &str) -> Result<Vec<crate::domain::Case>> {
        (**self).tenant_cases(tenant)
    }
    fn open_slot(
        &self,
        tenant: &str,
        category: &str,
    ) -> Result<(Option<crate::domain::Case>, Version)> {
        (**self).open_slot(tenant, category)
    }
    fn deadline(&self, id: &crate::domain::DeadlineId) -> Result<Option<crate::domain::Deadline>> {
        (**self).deadline(id)
    }
    fn pending_deadlines(&self) -> Result<usize> {
        (**self).pending_deadlines()
    }
    fn next_due(&self) -> Result<Option<jiff::Timestamp>> {
        (**self).next_due()
    }
    fn claim_due(
        &self,
        now: jiff::Timestamp,
        from: Option<&cases::DueCursor>,
    ) -> Result<Option<cases::DueClaim<'_>>> {
        (**self).claim_due(now, from)
    }
    fn ensure_case_index(&self) -> Result<()> {
        (**self).ensure_case_index()
    }
}

/// A shared store is a tenant repository.
impl<S: Store + ?Sized> tenants::TenantRepository for Arc<S> {
    fn tenant(&self, id: &crate::domain::TenantId) -> Result<Option<crate::domain::Tenant>> {
        (**self).tenant(id)
    }
    fn tenant_versioned(
        &self,
        id: &crate::domain::TenantId,
    ) -> Result<(Option<crate::domain::Tenant>, Version)> {
        (**self).tenant_versioned(id)
    }
    fn tenants(&self) -> Result<Vec<crate::domain::Tenant>> {
        (**self).tenants()
    }
    fn source(
        &self,
        tenant: &crate::domain::TenantId,
        id: crate::domain::SourceId,
    ) -> Result<Option<crate::domain::Source>> {
        (**self).source(tenant, id)
    }
    fn sources(&self, tenant: &crate::domain::TenantId) -> Result<Vec<crate::domain::Source>> {
        (**self).sources(tenant)
    }
    fn source_state(
        &self,
        tenant: &crate::domain::TenantId,
        id: crate::domain::SourceId,
    ) -> Result<Option<crate::domain::SourceState>> {
        (**self).source_state(tenant, id)
    }
    fn source_state_versioned(
        &self,
        tenant: &crate::domain::TenantId,
        id: crate::domain::SourceId,
    ) -> Result<(Option<crate::domain::SourceState>, Version)> {
        (**self).source_state_versioned(tenant, id)
    }
    fn source_states(&self) -> Result<Vec<crate::domain::SourceState>> {
        (**self).source_states()
    }
}

/// A shared store is a token repository.
impl<S: Store + ?Sized> tokens::TokenRepository for Arc<S> {
    fn token(&self, hash: &str) -> Result<Option<crate::domain::TokenRecord>> {
        (**self).token(hash)
    }
    fn tokens(&self) -> Result<Vec<crate::domain::TokenRecord>> {
        (**self).tokens()
    }
}

/// A shared store is a report repository.
impl<S: Store + ?Sized> reports::ReportRepository for Arc<S> {
    fn reports(&self) -> Result<Vec<crate::domain::Report>> {
        (**self).reports()
    }
}

/// A shared store is a sampling repository.
impl<S: Store + ?Sized> samples::SampleRepository for Arc<S> {
    fn sample(&self, tenant: &TenantId, id: &SampleId) -> Result<Option<Sample>> {
        (**self).sample(tenant, id)
    }
    fn newest_samples(&self, tenant: &TenantId, limit: usize) -> Result<Vec<Sample>> {
        (**self).newest_samples(tenant, limit)
    }
    fn sample_page(
        &self,
        tenant: &TenantId,
        after: Option<&Sample>,
        limit: usize,
    ) -> Result<Vec<(Sample, Version)>> {
        (**self).sample_page(tenant, after, limit)
    }
    fn findings(&self, tenant: &TenantId, category: &str, limit: usize) -> Result<Vec<Finding>> {
        (**self).findings(tenant, category, limit)
    }
    fn has_finding(&self, tenant: &TenantId, category: &str, sample: &SampleId) -> Result<bool> {
        (**self).has_finding(tenant, category, sample)
    }
    fn is_seen(&self, tenant: &TenantId, hash: &str) -> Result<bool> {
        (**self).is_seen(tenant, hash)
    }
    fn seen_versioned(
        &self,
        tenant: &TenantId,
        hash: &str,
    ) -> Result<(Option<records::Seen>, Version)> {
        (**self).seen_versioned(tenant, hash)
    }
    fn tally_versioned(&self, tenant: &TenantId, hour: u64) -> Result<(Option<Tally>, Version)> {
        (**self).tally_versioned(tenant, hour)
    }
    fn tallies_between(&self, tenant: &TenantId, start: u64, end: u64) -> Result<Vec<Tally>> {
        (**self).tallies_between(tenant, start, end)
    }
    fn tallies(&self, tenant: &TenantId) -> Result<Vec<Tally>> {
        (**self).tallies(tenant)
    }
    fn tallies_before(&self, tenant: &TenantId, hour: u64) -> Result<Vec<Tally>> {
        (**self).tallies_before(tenant, hour)
    }
    fn threshold_alert(&self, tenant: &TenantId, category: &str) -> Result<Option<ThresholdAlert>> {
        (**self).threshold_alert(tenant, category)
    }
    fn threshold_raised(&self, tenant: &TenantId, category: &str) -> Result<bool> {
        (**self).threshold_raised(tenant, category)
    }
    fn threshold_alerts(&self) -> Result<Vec<ThresholdAlert>> {
        (**self).threshold_alerts()
    }
    fn intake_counter(&self, tenant: &TenantId) -> Result<Option<IntakeCounter>> {
        (**self).intake_counter(tenant)
    }
    fn intake_counter_versioned(
        &self,
        tenant: &TenantId,
    ) -> Result<(Option<IntakeCounter>, Version)> {
        (**self).intake_counter_versioned(tenant)
    }
}

/// A shared store is a review repository.
impl<S: Store + ?Sized> reviews::ReviewRepository for Arc<S> {
    fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>> {
        (**self).labels(tenant)
    }
    fn all_labels(&self) -> Result<Vec<Label>> {
        (**self).all_labels()
    }
    fn item_labels(&self, tenant: &TenantId, sample: &SampleId) -> Result<Vec<Label>> {
        (**self).item_labels(tenant, sample)
    }
    fn review_state_versioned(&self, tenant: &TenantId) -> Result<(Option<ReviewState>, Version)> {
        (**self).review_state_versioned(tenant)
    }
}

/// A shared store is a webhook repository.
impl<S: Store + ?Sized> delivery::DeliveryRepository for Arc<S> {
    fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        (**self).endpoint(id)
    }
    fn endpoint_versioned(&self, id: &str) -> Result<(Option<Endpoint>, Version)> {
        (**self).endpoint_versioned(id)
    }
    fn endpoints(&self) -> Result<Vec<Endpoint>> {
        (**self).endpoints()
    }
    fn endpoints_versioned(&self) -> Result<Vec<(Endpoint, Version)>> {
        (**self).endpoints_versioned()
    }
    fn endpoint_count(&self) -> Result<usize> {
        (**self).endpoint_count()
    }
    fn message(&self, id: &str) -> Result<Option<OutboxMessage>> {
        (**self).message(id)
    }
    fn messages_by_id(&self, ids: &[&str]) -> Result<Vec<Option<OutboxMessage>>> {
        (**self).messages_by_id(ids)
    }
    fn messages(&self) -> Result<Vec<OutboxMessage>> {
        (**self).messages()
    }
    fn messages_after(&self, after: &str, limit: usize) -> Result<Vec<(OutboxMessage, Version)>> {
        (**self).messages_after(after, limit)
    }
    fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        (**self).delivery(id)
    }
    fn delivery_versioned(&self, id: &str) -> Result<(Option<Delivery>, Version)> {
        (**self).delivery_versioned(id)
    }
    fn deliveries(&self, newest_first: bool) -> Result<Vec<Delivery>> {
        (**self).deliveries(newest_first)
    }
    fn deliveries_versioned(&self) -> Result<Vec<(Delivery, Version)>> {
        (**self).deliveries_versioned()
    }
    fn deliveries_by_id(&self, ids: &[&str]) -> Result<Vec<Option<(Delivery, Version)>>> {
        (**self).deliveries_by_id(ids)
    }
    fn order(&self, idempotency_key: &str) -> Result<Option<OrderRef>> {
        (**self).order(idempotency_key)
    }
    fn receipt(&self, idempotency_key: &str) -> Result<Option<Receipt>> {
        (**self).receipt(idempotency_key)
    }
    fn operator_alerts(&self, limit: usize) -> Result<Vec<OperatorAlert>> {
        (**self).operator_alerts(limit)
    }
}

/// A shared store is the audit log's repository.
impl<S: Store + ?Sized> events::AuditRepository for Arc<S> {
    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>> {
        (**self).events_after(after, limit)
    }
    fn events_after_raw(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Box<serde_json::value::RawValue>)>> {
        (**self).events_after_raw(after, limit)
    }
    fn case_events(&self, case: &str) -> Result<Vec<EventRecord>> {
        (**self).case_events(case)
    }
}

impl<'a> dyn Store + 'a {
    /// Reads one typed record.
    pub(in crate::store) fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>> {
        self.get_raw(R::TREE, key)?
            .map(|b| decode::<R>(&b))
            .transpose()
    }

    /// Typed records whose key starts with `prefix`.
    pub(in crate::store) fn scan<R: Record>(
        &self,
        prefix: &[u8],
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<R>> {
        self.scan_raw(R::TREE, prefix, limit, newest_first)?
            .iter()
            .map(|(_, v)| decode::<R>(v))
            .collect()
    }

    /// Typed records with `start <= key < end`.
    pub(in crate::store) fn range<R: Record>(&self, start: &[u8], end: &[u8]) -> Result<Vec<R>> {
        self.range_raw(R::TREE, start, end)?
            .iter()
            .map(|(_, v)| decode::<R>(v))
            .collect()
    }
}

/// Opens the configured backend: sled in `store.path`, or the PostgreSQL
/// database at `store.database_url` with its migrations applied.
pub fn open(settings: &crate::config::StoreSettings) -> anyhow::Result<SharedStore> {
    use anyhow::Context;
    match settings.backend {
        crate::config::StoreBackend::Sled => {
            let store = SledStore::open_with_cache(&settings.path, settings.cache_mb * 1024 * 1024)
                .with_context(|| format!("opening the store in {}", settings.path.display()))?;
            Ok(Arc::new(store))
        }
        crate::config::StoreBackend::Postgres => {
            let url = settings
                .database_url
                .as_ref()
                .context("store.database_url is required with store.backend = \"postgres\"")?;
            let store = PgStore::open(url.expose(), settings.pool_size)
                .with_context(|| format!("opening the PostgreSQL store at {}", url.redacted()))?;
            Ok(Arc::new(store))
        }
    }
}

/// Commits a batch and flushes it off the async reactor; when this returns
/// `Ok`, the batch is on disk.
pub async fn commit_durably(store: &SharedStore, batch: Batch) -> anyhow::Result<Vec<u64>> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || -> Result<Vec<u64>> {
        let seqs = store.commit(batch)?;
        store.flush()?;
        Ok(seqs)
    })
    .await
    .map_err(|e| anyhow::anyhow!("store task failed: {e}"))?
    .map_err(anyhow::Error::from)
}

/// Flushes off the async reactor.
pub async fn flush(store: &SharedStore) -> anyhow::Result<()> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.flush())
        .await
        .map_err(|e| anyhow::anyhow!("store task failed: {e}"))?
        .map_err(anyhow::Error::from)
}

/// Builds, once per store, the entries of an index that was added after
/// some of the records it covers were written: `build` writes them (it must
/// be safe to run again), then `marker` is set in [`Tree::Meta`], so an
/// interrupted build simply runs again at the next start.
pub(in crate::store) fn build_once(
    store: &dyn Store,
    marker: &[u8],
    build: impl FnOnce() -> Result<()>,
) -> Result<()> {
    if store.get_raw(Tree::Meta, marker)?.is_some() {
        return Ok(());
    }
    build()?;
    let mut batch = Batch::new();
    batch.put_raw(Tree::Meta, marker.to_vec(), vec![1]);
    store.commit(batch)?;
    store.flush()
}

/// Marks a store whose case events are all in [`Tree::CaseEvents`].
const CASE_EVENTS_BUILT: &[u8] = b"case_index_built";

/// Brings every index up to date with the records written before it
/// existed. Run at start-up, before any command; one read each once done.
pub fn ensure_indexes(store: &SharedStore) -> Result<()> {
    build_once(store, CASE_EVENTS_BUILT, || {
        let mut after = 0;
        loop {
            let page = store.events_after(after, 10_000)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            let mut batch = Batch::new();
            for e in &page {
                if let Some(case) = event_case(&e.kind, &e.data) {
                    batch.put_raw(Tree::CaseEvents, case_events_key(case, e.seq), Vec::new());
                }
            }
            store.commit(batch)?;
        }
    })?;
    store.ensure_case_index()?;
    delivery::ensure_message_index(store)
}

/// The case an event belongs to, if any: `data.case` of a `case.*` event.
pub fn event_case<'a>(kind: &str, data: &'a serde_json::Value) -> Option<&'a str> {
    if !kind.starts_with("case.") {
        return None;
    }
    data.get("case").and_then(|c| c.as_str())
}

/// Prefix of a case's keys in [`Tree::CaseEvents`]: `case/`.
pub(in crate::store) fn case_events_prefix(case: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(case.len() + 9);
    key.extend_from_slice(case.as_bytes());
    key.push(b'/');
    key
}

/// Key of one event in [`Tree::CaseEvents`]: `case/` + big-endian sequence.
pub(in crate::store) fn case_events_key(case: &str, seq: u64) -> Vec<u8> {
    let mut key = case_events_prefix(case);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Key of a tenant-scoped record: `tenant/rest`.
pub(in crate::store) fn tenant_key(tenant: &str, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(tenant.len() + 1 + rest.len());
    key.extend_from_slice(tenant.as_bytes());
    key.push(b'/');
    key.extend_from_slice(rest);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        id: String,
    }

    impl Record for Thing {
        const TREE: Tree = Tree::Meta;
        const VERSION: u32 = 2;
        fn key(&self) -> Vec<u8> {
            self.id.as_bytes().to_vec()
        }
    }

    #[test]
    fn records_round_trip_with_their_schema_version() {
        let t = Thing { id: "a".into() };
        let bytes = encode(&t).unwrap();
        assert_eq!(bytes, br#"{"v":2,"r":{"id":"a"}}"#);
        assert_eq!(decode::<Thing>(&bytes).unwrap(), t);
        assert_eq!(decode::<Thing>(br#"{"v":1,"r":{"id":"a"}}"#).unwrap(), t);
    }

    #[test]
    fn an_events_rest_is_what_its_hashed_bytes_hold_between_at_and_prev() {
        let event = NewEvent {
            kind: "case.opened".into(),
            tenant: Some("parlor \"quoted\" ü".into()),
            data: serde_json::json!({"case": "c1", "score": 0.1, "list": [1, null]}),
        };
        let record = EventRecord {
            seq: 42,
            at: "2027-01-15T08:00:00.12345Z".parse().unwrap(),
            kind: event.kind.clone(),
            tenant: event.tenant.clone(),
            data: event.data.clone(),
            prev: "ab".repeat(32),
            hash: String::new(),
        };
        let mut built = br#"{"seq":42,"at":"2027-01-15T08:00:00.12345Z""#.to_vec();
        built.extend(event_rest(&event).unwrap());
        built.extend(format!(r#","prev":"{}"}}"#, "ab".repeat(32)).into_bytes());
        assert_eq!(
            String::from_utf8(built).unwrap(),
            String::from_utf8(record.hashed_bytes().unwrap()).unwrap()
        );
        let none = NewEvent {
            tenant: None,
            ..event
        };
        assert!(String::from_utf8(event_rest(&none).unwrap())
            .unwrap()
            .starts_with(r#","kind":"case.opened","tenant":null,"data":"#));
    }

    #[test]
    fn a_record_from_a_newer_schema_is_refused_not_misread() {
        let err = decode::<Thing>(br#"{"v":3,"r":{"id":"a"}}"#).unwrap_err();
        assert!(
            err.to_string().contains("schema version 3 is newer"),
            "{err}"
        );
    }
}
