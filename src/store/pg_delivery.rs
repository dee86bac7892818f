//! The webhook repository on PostgreSQL: the `endpoints`, `outbox`,
//! `deliveries`, `orders`, `receipts` and `operator_alerts` tables
//! (migration 5) read in SQL, in the order sled gives.

use super::delivery::{all_versioned, DeliveryRepository};
use super::pg_store::limit_param;
use super::{PgStore, Result, Version};
use crate::domain::{Delivery, Endpoint, OperatorAlert, OrderRef, OutboxMessage, Receipt};

const ENDPOINT: &str = "SELECT record FROM endpoints WHERE id = $1";
const DELIVERY: &str = "SELECT record FROM deliveries WHERE id = $1";
const MESSAGE: &str = "SELECT record FROM outbox WHERE id = $1";

impl DeliveryRepository for PgStore {
    fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        self.record(ENDPOINT, Box::new(id.to_string()))
    }

    fn endpoint_versioned(&self, id: &str) -> Result<(Option<Endpoint>, Version)> {
        self.versioned(ENDPOINT, id.as_bytes().to_vec(), Box::new(id.to_string()))
    }

    fn endpoints(&self) -> Result<Vec<Endpoint>> {
        self.records_where("SELECT record FROM endpoints ORDER BY id", Vec::new())
    }

    fn endpoints_versioned(&self) -> Result<Vec<(Endpoint, Version)>> {
        all_versioned::<Endpoint>(self.keyed_rows(
            "SELECT convert_to(id, 'UTF8'), record FROM endpoints ORDER BY id",
            Vec::new(),
        )?)
    }

    fn endpoint_count(&self) -> Result<usize> {
        self.count("SELECT count(*) FROM endpoints")
    }

    fn message(&self, id: &str) -> Result<Option<OutboxMessage>> {
        self.record(MESSAGE, Box::new(id.to_string()))
    }

    fn messages_by_id(&self, ids: &[&str]) -> Result<Vec<Option<OutboxMessage>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let found: std::collections::HashMap<Vec<u8>, Vec<u8>> = self
            .keyed_rows(
                "SELECT convert_to(id, 'UTF8'), record FROM outbox WHERE id = ANY($1)",
                vec![Box::new(wanted)],
            )?
            .into_iter()
            .collect();
        ids.iter()
            .map(|id| {
                found
                    .get(id.as_bytes())
                    .map(|raw| super::decode::<OutboxMessage>(raw))
                    .transpose()
            })
            .collect()
    }

    fn messages(&self) -> Result<Vec<OutboxMessage>> {
        self.records_where("SELECT record FROM outbox ORDER BY id", Vec::new())
    }

    fn messages_after(&self, after: &str, limit: usize) -> Result<Vec<(OutboxMessage, Version)>> {
        all_versioned::<OutboxMessage>(self.keyed_rows(
            "SELECT convert_to(id, 'UTF8'), record FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
            vec![Box::new(after.to_string()), Box::new(limit_param(limit))],
        )?)
    }

    fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        self.record(DELIVERY, Box::new(id.to_string()))
    }

    fn delivery_versioned(&self, id: &str) -> Result<(Option<Delivery>, Version)> {
        self.versioned(DELIVERY, id.as_bytes().to_vec(), Box::new(id.to_string()))
    }

    fn deliveries(&self, newest_first: bool) -> Result<Vec<Delivery>> {
        if newest_first {
            self.records_where("SELECT record FROM deliveries ORDER BY id DESC", Vec::new())
        } else {
            self.records_where("SELECT record FROM deliveries ORDER BY id", Vec::new())
        }
    }

    fn deliveries_versioned(&self) -> Result<Vec<(Delivery, Version)>> {
        all_versioned::<Delivery>(self.keyed_rows(
            "SELECT convert_to(id, 'UTF8'), record FROM deliveries ORDER BY id",
            Vec::new(),
        )?)
    }

    fn deliveries_by_id(&self, ids: &[&str]) -> Result<Vec<Option<(Delivery, Version)>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let mut found: std::collections::HashMap<Vec<u8>, (Delivery, Version)> =
            all_versioned::<Delivery>(self.keyed_rows(
                "SELECT convert_to(id, 'UTF8'), record FROM deliveries WHERE id = ANY($1)",
                vec![Box::new(wanted)],
            )?)?
            .into_iter()
            .map(|(d, v)| (d.id.as_bytes().to_vec(), (d, v)))
            .collect();
        Ok(ids.iter().map(|id| found.remove(id.as_bytes())).collect())
    }

    fn order(&self, idempotency_key: &str) -> Result<Option<OrderRef>> {
        self.record(
            "SELECT record FROM orders WHERE id = $1",
            Box::new(idempotency_key.to_string()),
        )
    }

    fn receipt(&self, idempotency_key: &str) -> Result<Option<Receipt>> {
        self.record(
            "SELECT record FROM receipts WHERE id = $1",
            Box::new(idempotency_key.to_string()),
        )
    }

    fn operator_alerts(&self, limit: usize) -> Result<Vec<OperatorAlert>> {
        self.records_where(
            "SELECT record FROM operator_alerts ORDER BY id DESC LIMIT $1",
            vec![Box::new(limit_param(limit))],
        )
    }
}
