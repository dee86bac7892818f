//! The sampling and review repositories on PostgreSQL: the `samples`,
//! `findings`, `tallies`, `threshold_alerts`, `seen_content`,
//! `intake_counters`, `labels` and `review_states` tables (migrations 7 and
//! 8) read in SQL, in the order sled gives. A
//! tenant's samples, a tenant's findings in one category and a tenant's
//! tallies are each one range of the table's primary key.

use super::delivery::all_versioned;
use super::pg_read::{byte_prefix, text, text_prefix, Param};
use super::pg_store::limit_param;
use super::records::{finding_key, Seen};
use super::reviews::{item_prefix, review_state_key, ReviewRepository};
use super::samples::{
    alert_key, intake_key, page_bounds, sample_key, seen_key, tally_key, tenant_prefix,
    SampleRepository,
};
use super::{tenant_key, PgStore, Result, Version};
use crate::domain::{
    Finding, IntakeCounter, Label, ReviewState, Sample, SampleId, Tally, TenantId, ThresholdAlert,
};

/// A tenant-keyed range and a row limit, as `$1`, `$2`, `$3`.
fn prefix_and_limit(prefix: Vec<u8>, limit: usize) -> Vec<Param> {
    let [lo, hi] = byte_prefix(prefix);
    vec![lo, hi, Box::new(limit_param(limit))]
}

impl SampleRepository for PgStore {
    fn sample(&self, tenant: &TenantId, id: &SampleId) -> Result<Option<Sample>> {
        self.record(
            "SELECT record FROM samples WHERE key = $1",
            Box::new(sample_key(tenant, id)),
        )
    }

    fn newest_samples(&self, tenant: &TenantId, limit: usize) -> Result<Vec<Sample>> {
        self.records_where(
            "SELECT record FROM samples \
             WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key DESC LIMIT $3",
            prefix_and_limit(tenant_prefix(tenant), limit),
        )
    }

    fn sample_page(
        &self,
        tenant: &TenantId,
        after: Option<&Sample>,
        limit: usize,
    ) -> Result<Vec<(Sample, Version)>> {
        let (lo, hi) = page_bounds(tenant, after);
        all_versioned::<Sample>(self.keyed_rows(
            "SELECT key, record FROM samples \
             WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key LIMIT $3",
            vec![Box::new(lo), Box::new(hi), Box::new(limit_param(limit))],
        )?)
    }

    fn findings(&self, tenant: &TenantId, category: &str, limit: usize) -> Result<Vec<Finding>> {
        let mut rest = category.as_bytes().to_vec();
        rest.push(b'/');
        self.records_where(
            "SELECT record FROM findings \
             WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key DESC LIMIT $3",
            prefix_and_limit(tenant_key(tenant.as_str(), &rest), limit),
        )
    }

    fn has_finding(&self, tenant: &TenantId, category: &str, sample: &SampleId) -> Result<bool> {
        self.exists(
            "SELECT key FROM findings WHERE key = $1",
            Box::new(finding_key(tenant.as_str(), category, sample)),
        )
    }

    fn is_seen(&self, tenant: &TenantId, hash: &str) -> Result<bool> {
        self.exists(
            "SELECT record FROM seen_content WHERE id = $1",
            text(seen_key(tenant, hash)),
        )
    }

    fn seen_versioned(&self, tenant: &TenantId, hash: &str) -> Result<(Option<Seen>, Version)> {
        let key = seen_key(tenant, hash);
        self.versioned(
            "SELECT record FROM seen_content WHERE id = $1",
            key.clone(),
            text(key),
        )
    }

    fn tally_versioned(&self, tenant: &TenantId, hour: u64) -> Result<(Option<Tally>, Version)> {
        let key = tally_key(tenant, hour);
        self.versioned(
            "SELECT record FROM tallies WHERE key = $1",
            key.clone(),
            Box::new(key),
        )
    }

    fn tallies_between(&self, tenant: &TenantId, start: u64, end: u64) -> Result<Vec<Tally>> {
        self.records_where(
            "SELECT record FROM tallies WHERE key >= $1 AND key < $2 ORDER BY key",
            vec![
                Box::new(tally_key(tenant, start)),
                Box::new(tally_key(tenant, end)),
            ],
        )
    }

    fn tallies(&self, tenant: &TenantId) -> Result<Vec<Tally>> {
        self.records_where(
            "SELECT record FROM tallies \
             WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key",
            byte_prefix(tenant_prefix(tenant)).into(),
        )
    }

    fn tallies_before(&self, tenant: &TenantId, hour: u64) -> Result<Vec<Tally>> {
        self.records_where(
            "SELECT record FROM tallies WHERE key >= $1 AND key < $2 ORDER BY key",
            vec![
                Box::new(tenant_prefix(tenant)),
                Box::new(tally_key(tenant, hour)),
            ],
        )
    }

    fn threshold_alert(&self, tenant: &TenantId, category: &str) -> Result<Option<ThresholdAlert>> {
        self.record(
            "SELECT record FROM threshold_alerts WHERE id = $1",
            text(alert_key(tenant, category)),
        )
    }

    fn threshold_raised(&self, tenant: &TenantId, category: &str) -> Result<bool> {
        self.exists(
            "SELECT record FROM threshold_alerts WHERE id = $1",
            text(alert_key(tenant, category)),
        )
    }

    fn threshold_alerts(&self) -> Result<Vec<ThresholdAlert>> {
        self.records_where(
            "SELECT record FROM threshold_alerts ORDER BY id",
            Vec::new(),
        )
    }

    fn intake_counter(&self, tenant: &TenantId) -> Result<Option<IntakeCounter>> {
        self.record(
            "SELECT record FROM intake_counters WHERE id = $1",
            text(intake_key(tenant)),
        )
    }

    fn intake_counter_versioned(
        &self,
        tenant: &TenantId,
    ) -> Result<(Option<IntakeCounter>, Version)> {
        let key = intake_key(tenant);
        self.versioned(
            "SELECT record FROM intake_counters WHERE id = $1",
            key.clone(),
            text(key),
        )
    }
}

impl PgStore {
    /// The labels whose ids start with `prefix`, in id order.
    fn labels_under(&self, prefix: Vec<u8>) -> Result<Vec<Label>> {
        self.records_where(
            "SELECT record FROM labels \
             WHERE id >= $1 AND ($2::text IS NULL OR id < $2) ORDER BY id",
            text_prefix(prefix).into(),
        )
    }
}

impl ReviewRepository for PgStore {
    fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>> {
        self.labels_under(tenant_key(tenant.as_str(), b""))
    }

    fn all_labels(&self) -> Result<Vec<Label>> {
        self.records_where("SELECT record FROM labels ORDER BY id", Vec::new())
    }

    fn item_labels(&self, tenant: &TenantId, sample: &SampleId) -> Result<Vec<Label>> {
        self.labels_under(tenant_key(tenant.as_str(), &item_prefix(sample)))
    }

    fn review_state_versioned(&self, tenant: &TenantId) -> Result<(Option<ReviewState>, Version)> {
        let key = review_state_key(tenant);
        self.versioned(
            "SELECT record FROM review_states WHERE id = $1",
            key.clone(),
            text(key),
        )
    }
}
