//! The employee report repository (the per-reporter rate limit is in
//! `rate`).

use super::{Result, Store};
use crate::domain::Report;

/// Every report, by id.
pub fn list(store: &dyn Store) -> Result<Vec<Report>> {
    store.scan::<Report>(b"", usize::MAX, false)
}
