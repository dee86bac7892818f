//! The employee report repository ([`ReportRepository`]; sled:
//! `sled_tenants.rs`, PostgreSQL: `pg_tenants.rs`). The per-reporter rate
//! limit is in `rate`.

use super::Result;
use crate::domain::Report;

/// What the service reads of employee reports. Writes go into a
/// [`super::Batch`].
pub trait ReportRepository {
    /// Every report, by id.
    fn reports(&self) -> Result<Vec<Report>>;
}
