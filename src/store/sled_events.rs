//! The audit log on sled: events under their big-endian sequence numbers
//! in the `events` tree, and a case's events listed in `case_events`
//! (`case/` + sequence), both written by the commit that chains them.

use super::events::{parse_event, parse_events, raw_events, AuditRepository};
use super::{case_events_prefix, EventRecord, Result, SledStore, Tree};

impl SledStore {
    /// The stored events with a sequence number above `after`, at most
    /// `limit`, as (key, value).
    fn event_rows(&self, after: u64, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let start = after.saturating_add(1).to_be_bytes();
        let end = u64::MAX.to_be_bytes();
        self.as_store()
            .range_raw_limited(Tree::Events, &start, &end, limit)
    }
}

impl AuditRepository for SledStore {
    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>> {
        parse_events(self.event_rows(after, limit)?)
    }

    fn events_after_raw(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Box<serde_json::value::RawValue>)>> {
        raw_events(self.event_rows(after, limit)?)
    }

    fn case_events(&self, case: &str) -> Result<Vec<EventRecord>> {
        let mut out = Vec::new();
        for (key, _) in self.as_store().scan_raw(
            Tree::CaseEvents,
            &case_events_prefix(case),
            usize::MAX,
            false,
        )? {
            let Some(seq) = key.get(key.len().saturating_sub(8)..) else {
                continue;
            };
            if let Some(v) = self.as_store().get_raw(Tree::Events, seq)? {
                out.push(parse_event(&v)?);
            }
        }
        Ok(out)
    }
}
