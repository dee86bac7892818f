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

/// Deliveries due at or before `now`, oldest first, as (delivery id,
/// endpoint id): the index holds both, so a dispatcher can skip an endpoint
/// that is busy without reading its deliveries.
pub fn due_deliveries(store: &SharedStore, now: Timestamp) -> Result<Vec<(String, String)>> {
    let ms = now.as_millisecond().max(0) as u64 + 1;
    Ok(store
        .range_raw(Tree::DeliveryDue, &[0u8; 8], &ms.to_be_bytes())?
        .into_iter()
        .map(|(_, v)| {
            let v = String::from_utf8_lossy(&v);
            match v.split_once(' ') {
                Some((id, endpoint)) => (id.to_string(), endpoint.to_string()),
                None => (v.into_owned(), String::new()),
            }
        })
        .collect())
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
