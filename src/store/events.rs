//! The event log: reading the hash-chained audit events back, for a case,
//! for consumers that follow the log, and for the audit route
//! ([`AuditRepository`]; sled: `sled_events.rs`, PostgreSQL:
//! `pg_events.rs`).

use super::{EventRecord, Result, Store, StoreError, Tree};
use crate::domain::DomainEvent;

impl EventRecord {
    /// This event as a domain event, for consumers that act on it.
    pub fn domain_event(&self) -> DomainEvent {
        DomainEvent::parse(&self.kind, self.tenant.as_deref(), &self.data)
    }
}

/// What the service reads of the hash-chained audit log. Events are
/// appended only by a [`super::Batch`]'s commit, which chains them.
pub trait AuditRepository {
    /// Events with a sequence number above `after`, oldest first, at most
    /// `limit`.
    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>>;
    /// Like [`events_after`](Self::events_after), each event as the exact
    /// JSON stored, with its sequence number: what the audit route serves,
    /// so a reader sees the very bytes the chain hash covers.
    fn events_after_raw(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Box<serde_json::value::RawValue>)>>;
    /// The events of one case, oldest first, read through the log's case
    /// index (no scan of the whole log).
    fn case_events(&self, case: &str) -> Result<Vec<EventRecord>>;
}

/// Parses a stored event.
pub(in crate::store) fn parse_event(bytes: &[u8]) -> Result<EventRecord> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        tree: Tree::Events.name(),
        message: e.to_string(),
    })
}

/// Stored events (sequence key, bytes) parsed.
pub(in crate::store) fn parse_events(rows: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Vec<EventRecord>> {
    rows.iter().map(|(_, v)| parse_event(v)).collect()
}

/// Stored events (sequence key, bytes) as their exact JSON.
pub(in crate::store) fn raw_events(
    rows: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<(u64, Box<serde_json::value::RawValue>)>> {
    rows.into_iter().map(|(k, v)| raw_event(&k, v)).collect()
}

/// A stored event as its exact JSON, with the sequence number its key holds.
fn raw_event(key: &[u8], value: Vec<u8>) -> Result<(u64, Box<serde_json::value::RawValue>)> {
    let decode = |message: String| StoreError::Decode {
        tree: Tree::Events.name(),
        message,
    };
    let seq = <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| decode("an event key is not a sequence number".into()))?;
    let text = String::from_utf8(value).map_err(|e| decode(e.to_string()))?;
    let raw = serde_json::value::RawValue::from_string(text).map_err(|e| decode(e.to_string()))?;
    Ok((seq, raw))
}

/// Events with a sequence number above `after`, oldest first, at most
/// `limit`.
pub fn after(store: &dyn Store, after: u64, limit: usize) -> Result<Vec<EventRecord>> {
    store.events_after(after, limit)
}

/// Like [`after`], each event as the exact JSON stored, with its sequence
/// number: what the audit route serves, so a reader sees the very bytes the
/// chain hash covers.
pub fn stored_after(
    store: &dyn Store,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, Box<serde_json::value::RawValue>)>> {
    store.events_after_raw(after, limit)
}

/// The events of one case, oldest first.
pub fn of_case(store: &dyn Store, case: &crate::domain::CaseId) -> Result<Vec<EventRecord>> {
    store.case_events(&case.0.to_string())
}
