//! The webhook repository: endpoints, the outbox, deliveries and their
//! due-time index, the order index, action receipts and operator alerts
//! ([`DeliveryRepository`]; sled: `sled_delivery.rs`, PostgreSQL:
//! `pg_delivery.rs`), and the dispatcher's queues.

use jiff::Timestamp;

use super::{decode, Batch, Claim, Record, Result, SharedStore, Store, Tree, Version};
use crate::domain::{
    Delivery, DeliveryStatus, Endpoint, OperatorAlert, OrderRef, OutboxMessage, Receipt, SendLease,
};

impl Record for Endpoint {
    const TREE: Tree = Tree::Endpoints;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

impl Record for Delivery {
    const TREE: Tree = Tree::Deliveries;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

impl Record for OrderRef {
    const TREE: Tree = Tree::Orders;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.idempotency_key.as_bytes().to_vec()
    }
}

impl Record for Receipt {
    const TREE: Tree = Tree::Receipts;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.idempotency_key.as_bytes().to_vec()
    }
}

impl Record for OperatorAlert {
    const TREE: Tree = Tree::OperatorAlerts;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

/// What the service reads of webhook records: endpoints, outbox messages,
/// deliveries, orders, receipts and operator alerts. Writes go into a
/// [`Batch`]. The queues the dispatcher claims from (new messages, due
/// deliveries, a message's deliveries) and the senders' beats are kept in
/// the engine's ordered key space on both backends, read by the functions
/// below.
pub trait DeliveryRepository {
    /// One endpoint.
    fn endpoint(&self, id: &str) -> Result<Option<Endpoint>>;
    /// One endpoint and the version read, for a write that must follow on
    /// from it.
    fn endpoint_versioned(&self, id: &str) -> Result<(Option<Endpoint>, Version)>;
    /// Every endpoint, by id.
    fn endpoints(&self) -> Result<Vec<Endpoint>>;
    /// Every endpoint, by id, each with the version read.
    fn endpoints_versioned(&self) -> Result<Vec<(Endpoint, Version)>>;
    /// How many endpoints there are.
    fn endpoint_count(&self) -> Result<usize>;
    /// One outbox message.
    fn message(&self, id: &str) -> Result<Option<OutboxMessage>>;
    /// Several outbox messages in one read (PostgreSQL: one round trip),
    /// in the order of `ids`.
    fn messages_by_id(&self, ids: &[&str]) -> Result<Vec<Option<OutboxMessage>>>;
    /// Every outbox message, oldest first.
    fn messages(&self) -> Result<Vec<OutboxMessage>>;
    /// At most `limit` outbox messages with ids above `after` (from the
    /// first when empty), oldest first, each with the version read.
    fn messages_after(&self, after: &str, limit: usize) -> Result<Vec<(OutboxMessage, Version)>>;
    /// One delivery.
    fn delivery(&self, id: &str) -> Result<Option<Delivery>>;
    /// One delivery and the version read.
    fn delivery_versioned(&self, id: &str) -> Result<(Option<Delivery>, Version)>;
    /// Every delivery (oldest first, or newest first).
    fn deliveries(&self, newest_first: bool) -> Result<Vec<Delivery>>;
    /// Every delivery, oldest first, each with the version read.
    fn deliveries_versioned(&self) -> Result<Vec<(Delivery, Version)>>;
    /// Several deliveries in one read (PostgreSQL: one round trip), in the
    /// order of `ids`, each with the version read.
    fn deliveries_by_id(&self, ids: &[&str]) -> Result<Vec<Option<(Delivery, Version)>>>;
    /// The order with this idempotency key.
    fn order(&self, idempotency_key: &str) -> Result<Option<OrderRef>>;
    /// The receipt for the order with this idempotency key.
    fn receipt(&self, idempotency_key: &str) -> Result<Option<Receipt>>;
    /// The newest operator alerts, at most `limit`.
    fn operator_alerts(&self, limit: usize) -> Result<Vec<OperatorAlert>>;
}

/// A replica that sends webhooks, as of its last beat. Every sender
/// beats while it runs; the senders seen recently share each endpoint's
/// concurrency cap.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SenderBeat {
    /// The replica's id.
    pub replica: String,
    /// When it last beat.
    pub seen_at: Timestamp,
}

impl Record for SenderBeat {
    const TREE: Tree = Tree::Meta;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        sender_key(&self.replica)
    }
}

const SENDER_PREFIX: &str = "sender/";

fn sender_key(replica: &str) -> Vec<u8> {
    format!("{SENDER_PREFIX}{replica}").into_bytes()
}

/// Senders read in one beat: far more replicas than anyone runs.
const SENDERS_READ: usize = 1024;

/// The senders alive at a beat, as the beating one sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Senders {
    /// Senders that beat within the window, the beating one included.
    pub live: usize,
    /// How many of them have an id ordered before the beating one's (its
    /// place when they share out a cap).
    pub rank: usize,
}

impl Senders {
    /// This sender's share of `cap`: an equal part, the remainder going
    /// one each to the first in id order, at least one.
    pub fn share(&self, cap: usize) -> usize {
        let live = self.live.max(1);
        let extra = usize::from(self.rank < cap % live);
        (cap / live + extra).max(1)
    }
}

/// Records that `replica` sends (beating at `now`) and counts the senders
/// that beat at or after `live_since`, this one included. Records of
/// senders silent for `forget_after` go in the same commit (a replica
/// restarted under a new id leaves its old one). A concurrent change to
/// one of those makes the commit conflict; the count still stands and the
/// next beat writes again. Blocking.
pub fn beat_sender(
    store: &dyn Store,
    replica: &str,
    now: Timestamp,
    live_since: Timestamp,
    forget_after: jiff::SignedDuration,
) -> Result<Senders> {
    let forget_before = now.checked_sub(forget_after).unwrap_or(Timestamp::MIN);
    let mut batch = Batch::new();
    let mut live = 1;
    let mut rank = 0;
    for (key, raw) in store.scan_raw(Tree::Meta, SENDER_PREFIX.as_bytes(), SENDERS_READ, false)? {
        let beat = decode::<SenderBeat>(&raw)?;
        if beat.replica == replica {
            continue;
        }
        if beat.seen_at >= live_since {
            live += 1;
            rank += usize::from(beat.replica.as_str() < replica);
        } else if beat.seen_at < forget_before {
            batch.expect_raw(Tree::Meta, key.clone(), Some(raw));
            batch.delete_raw(Tree::Meta, key);
        }
    }
    batch.put(&SenderBeat {
        replica: replica.to_string(),
        seen_at: now,
    })?;
    match store.commit(batch) {
        Ok(_) | Err(super::StoreError::Conflict(_)) => Ok(Senders { live, rank }),
        Err(e) => Err(e),
    }
}

/// Removes `replica`'s beat (it stops sending), so the others take up its
/// share at their next beat. Blocking.
pub fn forget_sender(store: &dyn Store, replica: &str) -> Result<()> {
    let mut batch = Batch::new();
    batch.delete_raw(Tree::Meta, sender_key(replica));
    store.commit(batch).map(drop)
}

/// Every sender's last beat, by replica id.
pub fn senders(store: &dyn Store) -> Result<Vec<SenderBeat>> {
    store
        .scan_raw(Tree::Meta, SENDER_PREFIX.as_bytes(), SENDERS_READ, false)?
        .iter()
        .map(|(_, raw)| decode::<SenderBeat>(raw))
        .collect()
}

/// The version of the receipt for an order while none was recorded: a
/// precondition that no other replica recorded one meanwhile.
pub fn receipt_absent(idempotency_key: &str) -> Version {
    Version::absent::<Receipt>(idempotency_key.as_bytes().to_vec())
}

/// Each stored row (key, record) of `R` with the version read.
pub(in crate::store) fn all_versioned<R: Record>(
    rows: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<(R, Version)>> {
    rows.into_iter()
        .map(|(key, raw)| {
            Ok((
                super::decode::<R>(&raw)?,
                Version {
                    tree: R::TREE,
                    key,
                    raw: Some(raw),
                },
            ))
        })
        .collect()
}

/// Takes `message` off the fan-out queue in `batch`, on condition that it
/// is still waiting (so two fan-outs never both route it).
pub fn mark_routed(batch: &mut Batch, message: &OutboxMessage) {
    let key = message.id.as_bytes().to_vec();
    batch.expect_raw(Tree::OutboxNew, key.clone(), Some(Vec::new()));
    batch.delete_raw(Tree::OutboxNew, key);
}

/// Puts a message into the outbox and marks it for fan-out, in `batch`.
///
/// A "not yet fanned out" index rather than a cursor over message ids:
/// ids are minted before their transaction commits, so a cursor could pass
/// an id whose transaction commits a moment later, and that message would
/// never be delivered.
pub fn queue_message(batch: &mut Batch, message: &OutboxMessage) -> Result<()> {
    batch.put(message)?;
    batch.put_raw(Tree::OutboxNew, message.id.as_bytes().to_vec(), Vec::new());
    Ok(())
}

/// Messages waiting for fan-out, claimed so that no other replica fans
/// them out meanwhile (see [`StoreEngine::claim_raw`](super::StoreEngine::claim_raw)); the fan-out commits
/// through [`RoutingClaim::commit`], in the claim's transaction.
pub struct RoutingClaim<'a> {
    claim: Box<dyn Claim + 'a>,
    /// The claimed messages, oldest id first.
    pub messages: Vec<OutboxMessage>,
    /// Fan-out entries whose message is gone.
    orphans: Vec<Vec<u8>>,
}

impl std::fmt::Debug for RoutingClaim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingClaim")
            .field("messages", &self.messages.len())
            .finish_non_exhaustive()
    }
}

impl RoutingClaim<'_> {
    /// Whether nothing was claimed.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.orphans.is_empty()
    }

    /// Commits the fan-out `batch` (which marks the messages routed with
    /// [`mark_routed`]), dropping fan-out entries whose message is gone.
    pub fn commit(&mut self, mut batch: Batch) -> Result<Vec<u64>> {
        for key in &self.orphans {
            batch.delete_raw(Tree::OutboxNew, key.clone());
        }
        self.claim.commit(batch)
    }
}

/// Claims up to `limit` messages waiting for fan-out, oldest id first,
/// passing over those another replica has claimed.
pub fn claim_unrouted(store: &dyn Store, limit: usize) -> Result<RoutingClaim<'_>> {
    // Message ids are ASCII (`msg_…`): every one sorts below 0xFF.
    let claim = store.claim_raw(Tree::OutboxNew, b"", &[0xFF], limit)?;
    let mut messages = Vec::new();
    let mut orphans = Vec::new();
    let ids: Vec<String> = claim
        .rows()
        .iter()
        .map(|(id, _)| String::from_utf8_lossy(id).into_owned())
        .collect();
    let wanted: Vec<&str> = ids.iter().map(String::as_str).collect();
    let found = store.messages_by_id(&wanted)?;
    for (id, message) in ids.iter().zip(found) {
        match message {
            Some(message) => messages.push(message),
            None => orphans.push(id.as_bytes().to_vec()),
        }
    }
    Ok(RoutingClaim {
        claim,
        messages,
        orphans,
    })
}

/// Key in the due-time index: milliseconds big-endian, then the id.
pub(in crate::store) fn delivery_due_key(due_at: Timestamp, id: &str) -> Vec<u8> {
    let ms = due_at.as_millisecond().max(0) as u64;
    let mut key = ms.to_be_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// One page of the due-time index, claimed (see [`StoreEngine::claim_raw`](super::StoreEngine::claim_raw)) so
/// that no other replica leases these deliveries meanwhile. The sender
/// leases what it will attempt with [`lease_delivery`] and commits through
/// [`DuePage::commit`]; entries it leaves alone are free again once the
/// page is committed or dropped.
pub struct DuePage<'a> {
    claim: Box<dyn Claim + 'a>,
    /// Each entry's (index key, delivery id, endpoint id), due order.
    pub entries: Vec<(Vec<u8>, String, String)>,
    full: bool,
}

impl std::fmt::Debug for DuePage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuePage")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl DuePage<'_> {
    /// Where the next page starts, if the index may hold more due entries.
    pub fn next_start(&self) -> Option<Vec<u8>> {
        let (last, _, _) = self.entries.last().filter(|_| self.full)?;
        let mut next = last.clone();
        next.push(0);
        Some(next)
    }

    /// Commits `batch` (the leases taken) in the claim's transaction.
    pub fn commit(&mut self, batch: Batch) -> Result<Vec<u64>> {
        self.claim.commit(batch)
    }
}

/// Claims up to `limit` entries of the due-time index from `start` (the
/// beginning: empty) to `now`, passing over entries another replica has
/// claimed. The index holds both ids, so a sender can skip a busy
/// endpoint without reading its deliveries.
pub fn claim_due_page<'a>(
    store: &'a dyn Store,
    now: Timestamp,
    start: &[u8],
    limit: usize,
) -> Result<DuePage<'a>> {
    let end = (now.as_millisecond().max(0) as u64 + 1).to_be_bytes();
    let claim = store.claim_raw(Tree::DeliveryDue, start, &end, limit)?;
    let entries: Vec<(Vec<u8>, String, String)> = claim
        .rows()
        .iter()
        .map(|(key, v)| {
            let v = String::from_utf8_lossy(v);
            let (id, endpoint) = v.split_once(' ').unwrap_or((&v, ""));
            (key.clone(), id.to_string(), endpoint.to_string())
        })
        .collect();
    let full = entries.len() == limit;
    Ok(DuePage {
        claim,
        entries,
        full,
    })
}

/// Reads the deliveries behind due entries (index key, delivery id) in
/// one go, each with its version; `None` where the entry leads nowhere
/// (the delivery is gone or no longer due there), to be dropped with
/// [`drop_due_entry`].
pub fn due_entries(
    store: &dyn Store,
    entries: &[(&[u8], &str)],
) -> Result<Vec<Option<(Delivery, Version)>>> {
    let ids: Vec<&str> = entries.iter().map(|(_, id)| *id).collect();
    let found = store.deliveries_by_id(&ids)?;
    Ok(entries
        .iter()
        .zip(found)
        .map(|((due_key, _), found)| {
            found.filter(|(d, _)| {
                d.due_at()
                    .map(|due| delivery_due_key(due, &d.id))
                    .as_deref()
                    == Some(*due_key)
            })
        })
        .collect())
}

/// Drops a due entry that leads nowhere (see [`due_entry`]).
pub fn drop_due_entry(batch: &mut Batch, key: &[u8]) {
    batch.delete_raw(Tree::DeliveryDue, key.to_vec());
}

/// Leases `delivery` (read at `version`) to a sender in `batch`: it carries
/// `lease`, and its due entry moves to the lease's end. Returns the
/// delivery as it will be stored, whose [`Version::of`] the outcome's
/// commit expects.
pub fn lease_delivery(
    batch: &mut Batch,
    mut delivery: Delivery,
    version: &Version,
    lease: SendLease,
) -> Result<Delivery> {
    batch.expect_unchanged(version);
    let previous = delivery.due_at();
    delivery.lease = Some(lease);
    put_delivery(batch, &delivery, previous)?;
    Ok(delivery)
}

/// Writes a delivery and keeps its due-time index entry in step: removes
/// the entry for `previous_due` (the stored delivery's
/// [`Delivery::due_at`]) and adds one at its own.
pub fn put_delivery(
    batch: &mut Batch,
    delivery: &Delivery,
    previous_due: Option<Timestamp>,
) -> Result<()> {
    if let Some(due) = previous_due {
        batch.delete_raw(Tree::DeliveryDue, delivery_due_key(due, &delivery.id));
    }
    if let Some(due) = delivery.due_at() {
        batch.put_raw(
            Tree::DeliveryDue,
            delivery_due_key(due, &delivery.id),
            format!("{} {}", delivery.id, delivery.endpoint_id).into_bytes(),
        );
    }
    batch.put_raw(
        Tree::MessageDeliveries,
        message_delivery_key(&delivery.message_id, &delivery.id),
        Vec::new(),
    );
    batch.put(delivery)?;
    Ok(())
}

/// Key of a delivery under its message in [`Tree::MessageDeliveries`].
fn message_delivery_key(message: &str, delivery: &str) -> Vec<u8> {
    format!("{message}/{delivery}").into_bytes()
}

/// Marks a store whose deliveries are all in [`Tree::MessageDeliveries`].
const MESSAGE_INDEX_BUILT: &[u8] = b"message_deliveries_built";

/// Indexes the deliveries of a store written before
/// [`Tree::MessageDeliveries`] existed (see [`super::ensure_indexes`]).
pub fn ensure_message_index(store: &SharedStore) -> Result<()> {
    super::build_once(store, MESSAGE_INDEX_BUILT, || {
        let mut batch = Batch::new();
        for d in store.deliveries(false)? {
            batch.put_raw(
                Tree::MessageDeliveries,
                message_delivery_key(&d.message_id, &d.id),
                Vec::new(),
            );
        }
        store.commit(batch).map(drop)
    })
}

/// What one retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Outbox messages removed.
    pub messages: usize,
    /// Their deliveries removed.
    pub deliveries: usize,
}

/// Removes outbox messages created before `cutoff` whose every delivery is
/// finished (delivered or dead) and last changed before `cutoff`, with those
/// deliveries: the webhook history older than the retention period. A
/// message not yet fanned out, or with a delivery still pending or recently
/// replayed, is kept. Each message goes in its own transaction, with a
/// precondition on every record it removes, so a replay racing the pass wins
/// and the message is kept. Orders and receipts are kept, and so is the
/// audit log, which records every message and attempt. At most `limit`
/// messages are removed per call.
pub fn prune_messages(store: &SharedStore, cutoff: Timestamp, limit: usize) -> Result<Pruned> {
    const PAGE: usize = 256;
    let mut pruned = Pruned::default();
    let mut after = String::new();
    loop {
        let page = store.messages_after(&after, PAGE)?;
        for (m, version) in &page {
            if pruned.messages >= limit {
                return Ok(pruned);
            }
            let key = m.id.as_bytes().to_vec();
            if m.created_at >= cutoff {
                // Ids are minted in time order: every later one is newer.
                return Ok(pruned);
            }
            if store.get_raw(Tree::OutboxNew, &key)?.is_some() {
                continue;
            }
            let mut prefix = key.clone();
            prefix.push(b'/');
            let mut batch = Batch::new();
            let mut deliveries = 0usize;
            let mut keep = false;
            for (index_key, _) in
                store.scan_raw(Tree::MessageDeliveries, &prefix, usize::MAX, false)?
            {
                let id = String::from_utf8_lossy(&index_key[prefix.len()..]).into_owned();
                let (Some(d), d_version) = store.delivery_versioned(&id)? else {
                    batch.delete_raw(Tree::MessageDeliveries, index_key.clone());
                    continue;
                };
                if d.status == DeliveryStatus::Pending || d.updated_at >= cutoff {
                    keep = true;
                    break;
                }
                batch.expect_unchanged(&d_version);
                batch.remove(&d);
                batch.delete_raw(Tree::MessageDeliveries, index_key.clone());
                deliveries += 1;
            }
            if keep {
                continue;
            }
            batch.expect_unchanged(version);
            batch.remove(m);
            batch.event(
                "webhook.message_pruned",
                m.tenant.as_ref().map(|t| t.as_str()),
                serde_json::json!({
                    "message": m.id,
                    "event_type": m.event_type,
                    "created_at": m.created_at,
                    "deliveries": deliveries,
                }),
            )?;
            match store.commit(batch) {
                Ok(_) => {
                    pruned.messages += 1;
                    pruned.deliveries += deliveries;
                }
                // Replayed or changed meanwhile: kept, looked at next time.
                Err(super::StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match page.last() {
            Some((last, _)) if page.len() == PAGE => after = last.id.clone(),
            _ => return Ok(pruned),
        }
    }
}

/// A new id with a prefix: `prefix_` + a time-ordered UUID (v7).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeliveryStatus;
    use crate::store::SledStore;
    use std::sync::Arc;

    fn delivery(n: usize, due: Timestamp) -> Delivery {
        Delivery {
            id: format!("dlv_{n:05}"),
            message_id: format!("msg_{n}"),
            endpoint_id: format!("ep_{}", n % 3),
            event_type: "case.opened".into(),
            dry_run: false,
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            round_attempts: 0,
            next_attempt_at: Some(due),
            created_at: due,
            updated_at: due,
            lease: None,
        }
    }

    #[test]
    fn due_pages_run_through_a_large_backlog_in_time_order_and_stop_at_now() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let mut batch = Batch::new();
        for n in 0..1500 {
            let due = t0 + jiff::SignedDuration::from_millis(n as i64);
            put_delivery(&mut batch, &delivery(n, due), None).unwrap();
        }
        store.commit(batch).unwrap();
        let now = t0 + jiff::SignedDuration::from_millis(1199);
        let mut seen = Vec::new();
        let mut start = Vec::new();
        loop {
            let page = claim_due_page(&*store, now, &start, 500).unwrap();
            seen.extend(
                page.entries
                    .iter()
                    .map(|(_, id, ep)| (id.clone(), ep.clone())),
            );
            match page.next_start() {
                Some(next) => start = next,
                None => break,
            }
        }
        assert_eq!(seen.len(), 1200);
        assert_eq!(seen[0], ("dlv_00000".to_string(), "ep_0".to_string()));
        assert_eq!(seen[1199].0, "dlv_01199");
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in due order");
    }

    #[test]
    fn a_lease_moves_the_due_entry_to_its_end_and_a_stale_entry_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let d = delivery(1, t0);
        let mut batch = Batch::new();
        put_delivery(&mut batch, &d, None).unwrap();
        // An entry whose delivery does not sit there (left by a bug or an
        // older version).
        batch.put_raw(
            Tree::DeliveryDue,
            delivery_due_key(t0, "dlv_gone"),
            b"dlv_gone ep_0".to_vec(),
        );
        store.commit(batch).unwrap();
        let mut page = claim_due_page(&*store, t0, b"", 10).unwrap();
        assert_eq!(page.entries.len(), 2);
        let entries: Vec<(&[u8], &str)> = page
            .entries
            .iter()
            .map(|(k, id, _)| (k.as_slice(), id.as_str()))
            .collect();
        let found = due_entries(&*store, &entries).unwrap();
        let mut batch = Batch::new();
        for ((key, id), found) in entries.iter().zip(found) {
            let (key, id) = (key.to_vec(), id.to_string());
            match found {
                Some((d, version)) => {
                    let until = t0 + jiff::SignedDuration::from_secs(30);
                    let leased = lease_delivery(
                        &mut batch,
                        d,
                        &version,
                        SendLease {
                            holder: "r1".into(),
                            token: "t".into(),
                            until,
                        },
                    )
                    .unwrap();
                    assert_eq!(leased.due_at(), Some(until));
                    assert_eq!(leased.next_attempt_at, Some(t0), "the schedule stays");
                }
                None => {
                    assert_eq!(id, "dlv_gone");
                    drop_due_entry(&mut batch, &key);
                }
            }
        }
        page.commit(batch).unwrap();
        drop(page);
        assert!(claim_due_page(&*store, t0, b"", 10)
            .unwrap()
            .entries
            .is_empty());
        let later =
            claim_due_page(&*store, t0 + jiff::SignedDuration::from_secs(30), b"", 10).unwrap();
        let ids: Vec<&str> = later.entries.iter().map(|(_, id, _)| id.as_str()).collect();
        assert_eq!(ids, ["dlv_00001"], "due again once the lease runs out");
    }

    #[test]
    fn moving_a_delivery_replaces_its_due_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let mut d = delivery(1, t0);
        let mut batch = Batch::new();
        put_delivery(&mut batch, &d, None).unwrap();
        store.commit(batch).unwrap();
        let previous = d.next_attempt_at;
        d.next_attempt_at = None;
        d.status = DeliveryStatus::Delivered;
        let mut batch = Batch::new();
        put_delivery(&mut batch, &d, previous).unwrap();
        store.commit(batch).unwrap();
        assert!(store
            .scan_raw(Tree::DeliveryDue, b"", 10, false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn retention_removes_only_finished_messages_past_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let hour = jiff::SignedDuration::from_hours(1);
        let cutoff = t0 + hour * 10;
        let message = |n: usize, at: Timestamp| OutboxMessage {
            id: format!("msg_{n}"),
            event_type: "case.opened".into(),
            idempotency_key: format!("case-{n}:case.opened:v1"),
            tenant: None,
            payload: serde_json::json!({}),
            created_at: at,
            endpoint: None,
        };
        let finished = |id: &str, msg: usize, status: DeliveryStatus, changed: Timestamp| {
            let mut d = delivery(0, changed);
            d.id = id.into();
            d.message_id = format!("msg_{msg}");
            d.status = status;
            d.next_attempt_at = None;
            d.updated_at = changed;
            d
        };
        let mut batch = Batch::new();
        // 1: delivered twice, long ago: removed with both deliveries.
        batch.put(&message(1, t0)).unwrap();
        put_delivery(
            &mut batch,
            &finished("dlv_1a", 1, DeliveryStatus::Delivered, t0),
            None,
        )
        .unwrap();
        put_delivery(
            &mut batch,
            &finished("dlv_1b", 1, DeliveryStatus::Delivered, t0),
            None,
        )
        .unwrap();
        // 2: dead long ago: removed.
        batch.put(&message(2, t0)).unwrap();
        put_delivery(
            &mut batch,
            &finished("dlv_2", 2, DeliveryStatus::Dead, t0),
            None,
        )
        .unwrap();
        // 3: one delivery still pending: kept, both deliveries too.
        batch.put(&message(3, t0)).unwrap();
        put_delivery(
            &mut batch,
            &finished("dlv_3a", 3, DeliveryStatus::Delivered, t0),
            None,
        )
        .unwrap();
        put_delivery(&mut batch, &delivery(3, t0), None).unwrap();
        // 4: replayed recently: kept.
        batch.put(&message(4, t0)).unwrap();
        put_delivery(
            &mut batch,
            &finished("dlv_4", 4, DeliveryStatus::Delivered, cutoff + hour),
            None,
        )
        .unwrap();
        // 5: not fanned out yet: kept.
        queue_message(&mut batch, &message(5, t0)).unwrap();
        // 6: no subscriber ever: removed.
        batch.put(&message(6, t0)).unwrap();
        // 7: newer than the cutoff: kept.
        batch.put(&message(7, cutoff + hour)).unwrap();
        put_delivery(
            &mut batch,
            &finished("dlv_7", 7, DeliveryStatus::Delivered, cutoff + hour),
            None,
        )
        .unwrap();
        store.commit(batch).unwrap();

        let pruned = prune_messages(&store, cutoff, 100).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                messages: 3,
                deliveries: 3
            }
        );
        let left = |tree: Tree| -> Vec<String> {
            store
                .scan_raw(tree, b"", usize::MAX, false)
                .unwrap()
                .into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect()
        };
        assert_eq!(left(Tree::Outbox), ["msg_3", "msg_4", "msg_5", "msg_7"]);
        assert_eq!(
            left(Tree::Deliveries),
            ["dlv_00003", "dlv_3a", "dlv_4", "dlv_7"]
        );
        assert_eq!(
            left(Tree::MessageDeliveries),
            [
                "msg_3/dlv_00003",
                "msg_3/dlv_3a",
                "msg_4/dlv_4",
                "msg_7/dlv_7"
            ]
        );
        let events = store.events_after(0, 100).unwrap();
        let pruned_ids: Vec<&str> = events
            .iter()
            .filter(|e| e.kind == "webhook.message_pruned")
            .filter_map(|e| e.data["message"].as_str())
            .collect();
        assert_eq!(pruned_ids, ["msg_1", "msg_2", "msg_6"]);
        // A second pass finds nothing more.
        assert_eq!(
            prune_messages(&store, cutoff, 100).unwrap(),
            Pruned::default()
        );
    }

    #[test]
    fn deliveries_of_an_older_store_are_indexed_by_message_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let mut batch = Batch::new();
        // Written the way an older store holds them: no index entries.
        batch.put(&delivery(1, t0)).unwrap();
        batch.put(&delivery(2, t0)).unwrap();
        store.commit(batch).unwrap();
        ensure_message_index(&store).unwrap();
        let keys: Vec<Vec<u8>> = store
            .scan_raw(Tree::MessageDeliveries, b"", usize::MAX, false)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [b"msg_1/dlv_00001".to_vec(), b"msg_2/dlv_00002".to_vec()]
        );
        assert!(store
            .get_raw(Tree::Meta, MESSAGE_INDEX_BUILT)
            .unwrap()
            .is_some());
    }

    #[test]
    fn senders_count_those_seen_within_the_window_and_forget_the_long_silent() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let secs = jiff::SignedDuration::from_secs;
        let hour = jiff::SignedDuration::from_hours(1);
        let beat = |who: &str, at: Timestamp| {
            beat_sender(store.as_ref(), who, at, at - secs(15), hour)
                .unwrap()
                .live
        };
        assert_eq!(beat("old", t0), 1, "alone");
        assert_eq!(beat("a", t0 + secs(10)), 2, "old beat 10 s ago");
        assert_eq!(beat("b", t0 + secs(20)), 2, "old is past the 15 s window");
        assert_eq!(beat("a", t0 + secs(21)), 2, "a counts itself once");
        assert_eq!(
            senders(store.as_ref()).unwrap().len(),
            3,
            "old is kept a while"
        );
        // An hour on, the next beat forgets the silent one.
        let later = t0 + hour + secs(5);
        assert_eq!(beat("a", later), 1);
        let left: Vec<String> = senders(store.as_ref())
            .unwrap()
            .into_iter()
            .map(|s| s.replica)
            .collect();
        assert_eq!(left, vec!["a".to_string(), "b".to_string()]);
        forget_sender(store.as_ref(), "b").unwrap();
        assert_eq!(senders(store.as_ref()).unwrap().len(), 1);
    }

    #[test]
    fn shares_of_a_cap_add_up_to_it_and_give_each_sender_at_least_one() {
        for (cap, live) in [(8, 3), (8, 1), (8, 8), (7, 2), (2, 3), (1, 4), (64, 5)] {
            let shares: Vec<usize> = (0..live)
                .map(|rank| Senders { live, rank }.share(cap))
                .collect();
            assert!(shares.iter().all(|&s| s >= 1), "{cap}/{live}: {shares:?}");
            let total: usize = shares.iter().sum();
            assert_eq!(total, cap.max(live), "{cap}/{live}: {shares:?}");
        }
        assert_eq!(
            (0..3)
                .map(|rank| Senders { live: 3, rank }.share(8))
                .collect::<Vec<_>>(),
            vec![3, 3, 2]
        );
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let window = t0 - jiff::SignedDuration::from_secs(15);
        let hour = jiff::SignedDuration::from_hours(1);
        for who in ["r-b", "r-a", "r-c"] {
            beat_sender(store.as_ref(), who, t0, window, hour).unwrap();
        }
        let seen = |who| beat_sender(store.as_ref(), who, t0, window, hour).unwrap();
        assert_eq!(seen("r-a"), Senders { live: 3, rank: 0 });
        assert_eq!(seen("r-b"), Senders { live: 3, rank: 1 });
        assert_eq!(seen("r-c"), Senders { live: 3, rank: 2 });
    }
}
