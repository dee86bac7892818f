//! The audit log on PostgreSQL: events stay in `kv` (tree 1, keyed by
//! big-endian sequence number; a table of their own with an index was
//! measured slower, see docs/replicas.md), with a case's events listed
//! under tree 24. Each question is one SQL query: a case's events are one
//! join of its index entries to the events, not a read per event.

use super::events::{parse_event, parse_events, raw_events, AuditRepository};
use super::pg_read::byte_prefix;
use super::pg_store::{limit_param, tree_id};
use super::{case_events_prefix, EventRecord, PgStore, Result, Tree};

impl PgStore {
    /// The stored events with a sequence number above `after`, at most
    /// `limit`, as (key, value).
    fn event_rows(&self, after: u64, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if after == u64::MAX {
            return Ok(Vec::new());
        }
        let start = after.saturating_add(1).to_be_bytes().to_vec();
        self.keyed_rows(
            "SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 ORDER BY key LIMIT $3",
            vec![
                Box::new(tree_id(Tree::Events)),
                Box::new(start),
                Box::new(limit_param(limit)),
            ],
        )
    }
}

impl AuditRepository for PgStore {
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
        let [lo, hi] = byte_prefix(case_events_prefix(case));
        // An index entry's last 8 bytes are the event's sequence key.
        self.column(
            "SELECT e.value FROM kv c \
             JOIN kv e ON e.tree = $1 AND e.key = substring(c.key FROM length(c.key) - 7) \
             WHERE c.tree = $2 AND c.key >= $3 AND ($4::bytea IS NULL OR c.key < $4) \
             ORDER BY c.key",
            vec![
                Box::new(tree_id(Tree::Events)),
                Box::new(tree_id(Tree::CaseEvents)),
                lo,
                hi,
            ],
        )?
        .iter()
        .map(|v| parse_event(v))
        .collect()
    }
}
