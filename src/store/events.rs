//! The event log: reading the hash-chained audit events back, for a case,
//! for consumers that follow the log, and for the audit route.

use super::{EventRecord, Result, Store};
use crate::domain::DomainEvent;

impl EventRecord {
    /// This event as a domain event, for consumers that act on it.
    pub fn domain_event(&self) -> DomainEvent {
        DomainEvent::parse(&self.kind, self.tenant.as_deref(), &self.data)
    }
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
