//! The webhook repository on sled: endpoints, outbox messages, deliveries,
//! orders, receipts and operator alerts in their trees, read in key order.

use super::delivery::{all_versioned, DeliveryRepository};
use super::{Result, SledStore, Tree, Version};
use crate::domain::{Delivery, Endpoint, OperatorAlert, OrderRef, OutboxMessage, Receipt};

impl DeliveryRepository for SledStore {
    fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        self.as_store().get::<Endpoint>(id.as_bytes())
    }

    fn endpoint_versioned(&self, id: &str) -> Result<(Option<Endpoint>, Version)> {
        Version::read::<Endpoint>(self, id.as_bytes().to_vec())
    }

    fn endpoints(&self) -> Result<Vec<Endpoint>> {
        self.as_store().scan::<Endpoint>(b"", usize::MAX, false)
    }

    fn endpoints_versioned(&self) -> Result<Vec<(Endpoint, Version)>> {
        all_versioned::<Endpoint>(self.as_store().scan_raw(
            Tree::Endpoints,
            b"",
            usize::MAX,
            false,
        )?)
    }

    fn endpoint_count(&self) -> Result<usize> {
        Ok(self.tree(Tree::Endpoints).len())
    }

    fn message(&self, id: &str) -> Result<Option<OutboxMessage>> {
        self.as_store().get::<OutboxMessage>(id.as_bytes())
    }

    fn messages_by_id(&self, ids: &[&str]) -> Result<Vec<Option<OutboxMessage>>> {
        ids.iter().map(|id| self.message(id)).collect()
    }

    fn messages(&self) -> Result<Vec<OutboxMessage>> {
        self.as_store()
            .scan::<OutboxMessage>(b"", usize::MAX, false)
    }

    fn messages_after(&self, after: &str, limit: usize) -> Result<Vec<(OutboxMessage, Version)>> {
        let mut start = after.as_bytes().to_vec();
        if !start.is_empty() {
            start.push(0);
        }
        // Message ids are ASCII (`msg_…`): every one sorts below 0xFF.
        all_versioned::<OutboxMessage>(self.as_store().range_raw_limited(
            Tree::Outbox,
            &start,
            &[0xFF],
            limit,
        )?)
    }

    fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        self.as_store().get::<Delivery>(id.as_bytes())
    }

    fn delivery_versioned(&self, id: &str) -> Result<(Option<Delivery>, Version)> {
        Version::read::<Delivery>(self, id.as_bytes().to_vec())
    }

    fn deliveries(&self, newest_first: bool) -> Result<Vec<Delivery>> {
        self.as_store()
            .scan::<Delivery>(b"", usize::MAX, newest_first)
    }

    fn deliveries_versioned(&self) -> Result<Vec<(Delivery, Version)>> {
        all_versioned::<Delivery>(self.as_store().scan_raw(
            Tree::Deliveries,
            b"",
            usize::MAX,
            false,
        )?)
    }

    fn deliveries_by_id(&self, ids: &[&str]) -> Result<Vec<Option<(Delivery, Version)>>> {
        ids.iter()
            .map(|id| {
                let (d, version) = self.delivery_versioned(id)?;
                Ok(d.map(|d| (d, version)))
            })
            .collect()
    }

    fn order(&self, idempotency_key: &str) -> Result<Option<OrderRef>> {
        self.as_store().get::<OrderRef>(idempotency_key.as_bytes())
    }

    fn receipt(&self, idempotency_key: &str) -> Result<Option<Receipt>> {
        self.as_store().get::<Receipt>(idempotency_key.as_bytes())
    }

    fn operator_alerts(&self, limit: usize) -> Result<Vec<OperatorAlert>> {
        self.as_store().scan::<OperatorAlert>(b"", limit, true)
    }
}
