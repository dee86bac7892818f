//! Endpoints, deliveries and their due-time index, the order index, action
//! receipts and operator alerts in the store.

use jiff::Timestamp;

use super::{Batch, Record, Result, SharedStore, Tree};
use crate::domain::{Delivery, Endpoint, OperatorAlert, OrderRef, OutboxMessage, Receipt};

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

/// Messages waiting for fan-out, oldest id first, at most `limit`.
pub fn unrouted_messages(store: &SharedStore, limit: usize) -> Result<Vec<OutboxMessage>> {
    let mut out = Vec::new();
    for (id, _) in store.scan_raw(Tree::OutboxNew, b"", limit, false)? {
        if let Some(m) = store.get::<OutboxMessage>(&id)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// Key in the due-time index: milliseconds big-endian, then the id.
pub fn delivery_due_key(due_at: Timestamp, id: &str) -> Vec<u8> {
    let ms = due_at.as_millisecond().max(0) as u64;
    let mut key = ms.to_be_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// Walks deliveries due at or before `now`, oldest first, a page at a time,
/// calling `visit(delivery id, endpoint id)` until it returns `false`. The
/// index holds both ids, so a dispatcher can skip a busy endpoint without
/// reading its deliveries, and stop early without reading the whole backlog.
pub fn walk_due_deliveries(
    store: &SharedStore,
    now: Timestamp,
    mut visit: impl FnMut(&str, &str) -> Result<bool>,
) -> Result<()> {
    const PAGE: usize = 512;
    let end = (now.as_millisecond().max(0) as u64 + 1).to_be_bytes();
    let mut start = vec![0u8; 8];
    loop {
        let page = store.range_raw_limited(Tree::DeliveryDue, &start, &end, PAGE)?;
        for (_, v) in &page {
            let v = String::from_utf8_lossy(v);
            let (id, endpoint) = v.split_once(' ').unwrap_or((&v, ""));
            if !visit(id, endpoint)? {
                return Ok(());
            }
        }
        match page.last() {
            Some((last, _)) if page.len() == PAGE => {
                start = last.clone();
                start.push(0);
            }
            _ => return Ok(()),
        }
    }
}

/// Writes a delivery and keeps its due-time index entry in step: removes
/// the entry for `previous_due` and adds one for its next attempt.
pub fn put_delivery(
    batch: &mut Batch,
    delivery: &Delivery,
    previous_due: Option<Timestamp>,
) -> Result<()> {
    if let Some(due) = previous_due {
        batch.delete_raw(Tree::DeliveryDue, delivery_due_key(due, &delivery.id));
    }
    if let Some(due) = delivery.next_attempt_at {
        batch.put_raw(
            Tree::DeliveryDue,
            delivery_due_key(due, &delivery.id),
            format!("{} {}", delivery.id, delivery.endpoint_id).into_bytes(),
        );
    }
    batch.put(delivery)?;
    Ok(())
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
        }
    }

    #[test]
    fn the_due_walk_pages_through_a_large_backlog_in_time_order_and_stops_at_now() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let mut batch = Batch::new();
        for n in 0..1500 {
            let due = t0 + jiff::SignedDuration::from_millis(n as i64);
            put_delivery(&mut batch, &delivery(n, due), None).unwrap();
        }
        store.commit(batch).unwrap();
        let mut seen = Vec::new();
        walk_due_deliveries(
            &store,
            t0 + jiff::SignedDuration::from_millis(1199),
            |id, ep| {
                seen.push((id.to_string(), ep.to_string()));
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(seen.len(), 1200);
        assert_eq!(seen[0], ("dlv_00000".to_string(), "ep_0".to_string()));
        assert_eq!(seen[1199].0, "dlv_01199");
        let mut count = 0;
        walk_due_deliveries(&store, t0 + jiff::SignedDuration::from_secs(10), |_, _| {
            count += 1;
            Ok(count < 10)
        })
        .unwrap();
        assert_eq!(count, 10, "the walk stops when asked");
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
}
