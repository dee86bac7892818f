//! The per-reporter report rate limit, kept in the store so it holds across
//! every replica: each reporter's report times of the last hour in one
//! record, updated by compare-and-set.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{decode, Batch, Record, Result, SharedStore, StoreError, Tree};

/// A reporter's reports in the last hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRate {
    /// The reporter (token name).
    pub reporter: String,
    /// When each report of the last hour was filed.
    pub times: Vec<Timestamp>,
}

impl Record for ReportRate {
    const TREE: Tree = Tree::Meta;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        rate_key(&self.reporter)
    }
}

fn rate_key(reporter: &str) -> Vec<u8> {
    format!("report_rate/{reporter}").into_bytes()
}

/// Counts a report by `reporter` at `now` unless `per_hour` were filed in
/// the hour before; `false`: over the limit, nothing counted. A concurrent
/// report (on this replica or another) makes the commit conflict, and the
/// count is read again. Blocking.
pub fn take_report_slot(
    store: &SharedStore,
    reporter: &str,
    per_hour: u32,
    now: Timestamp,
) -> Result<bool> {
    let key = rate_key(reporter);
    let hour_ago = now - SignedDuration::from_hours(1);
    for _ in 0..32 {
        let raw = store.get_raw(Tree::Meta, &key)?;
        let mut rate = match raw.as_deref() {
            Some(bytes) => decode::<ReportRate>(bytes)?,
            None => ReportRate {
                reporter: reporter.to_string(),
                times: Vec::new(),
            },
        };
        rate.times.retain(|t| *t > hour_ago);
        if rate.times.len() >= per_hour as usize {
            return Ok(false);
        }
        rate.times.push(now);
        let mut batch = Batch::new();
        batch.expect_raw(Tree::Meta, key.clone(), raw);
        batch.put(&rate)?;
        match store.commit(batch) {
            Ok(_) => return Ok(true),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(
        "the report rate kept changing under this report; try again".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use std::sync::Arc;

    #[test]
    fn the_limit_holds_for_reports_racing_on_two_replicas_and_frees_up_after_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        // Two replicas, each filing ten reports for one reporter at once.
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..10)
                        .filter(|_| take_report_slot(&store, "ana", 5, now).unwrap())
                        .count()
                })
            })
            .collect();
        let taken: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(taken, 5);
        assert!(
            take_report_slot(&store, "ben", 5, now).unwrap(),
            "another reporter has a limit of their own"
        );
        let later = now + SignedDuration::from_mins(61);
        assert!(take_report_slot(&store, "ana", 5, later).unwrap());
    }
}
