//! The sampling repository: samples, their findings, hourly prevalence
//! tallies, raised evidence thresholds, push-intake counters and the
//! content hashes already sampled ([`SampleRepository`]; sled:
//! `sled_samples.rs`, PostgreSQL: `pg_samples.rs`).

use super::records::{finding_key, Seen};
use super::{tenant_key, Batch, Result, StoreError, Tree, Version};
use crate::domain::{Finding, IntakeCounter, Sample, SampleId, Tally, TenantId, ThresholdAlert};

pub(in crate::store) fn sample_key(tenant: &TenantId, id: &SampleId) -> Vec<u8> {
    tenant_key(tenant.as_str(), id.0.as_bytes())
}

pub(in crate::store) fn seen_key(tenant: &TenantId, hash: &str) -> Vec<u8> {
    tenant_key(tenant.as_str(), hash.as_bytes())
}

pub(in crate::store) fn tally_key(tenant: &TenantId, hour: u64) -> Vec<u8> {
    tenant_key(tenant.as_str(), &hour.to_be_bytes())
}

pub(in crate::store) fn alert_key(tenant: &TenantId, category: &str) -> Vec<u8> {
    tenant_key(tenant.as_str(), category.as_bytes())
}

pub(in crate::store) fn intake_key(tenant: &TenantId) -> Vec<u8> {
    tenant.as_str().as_bytes().to_vec()
}

/// The prefix of a tenant's records in a tenant-keyed tree: `tenant/`.
pub(in crate::store) fn tenant_prefix(tenant: &TenantId) -> Vec<u8> {
    tenant_key(tenant.as_str(), b"")
}

/// Where a page of a tenant's samples starts (just after `after`, or at
/// the tenant's first) and the bound of the tenant's keys (`None`: none).
pub(in crate::store) fn page_bounds(
    tenant: &TenantId,
    after: Option<&Sample>,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let prefix = tenant_prefix(tenant);
    let end = super::prefix_successor(&prefix);
    let start = match after {
        Some(s) => {
            let mut k = sample_key(tenant, &s.id);
            k.push(0);
            k
        }
        None => prefix,
    };
    (start, end)
}

/// Whether `e` is a conflict on a record a recording reads and writes back
/// itself (a tally, a content hash, a threshold): the recording can be made
/// again from what the other writer left.
pub fn is_recording_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(t)
        if *t == Tree::Tallies.name() || *t == Tree::Seen.name() || *t == Tree::Alerts.name())
}

/// What the service reads of samples, findings, tallies, raised
/// thresholds, push-intake counters and sampled content hashes. Writes go
/// into a [`Batch`].
pub trait SampleRepository {
    /// One sample of a tenant.
    fn sample(&self, tenant: &TenantId, id: &SampleId) -> Result<Option<Sample>>;
    /// A tenant's samples, newest first, at most `limit`.
    fn newest_samples(&self, tenant: &TenantId, limit: usize) -> Result<Vec<Sample>>;
    /// A page of a tenant's samples, oldest first, after `after` (from the
    /// first when `None`), at most `limit`, each with the version read.
    fn sample_page(
        &self,
        tenant: &TenantId,
        after: Option<&Sample>,
        limit: usize,
    ) -> Result<Vec<(Sample, Version)>>;
    /// The newest findings of a tenant in one category, at most `limit`.
    fn findings(&self, tenant: &TenantId, category: &str, limit: usize) -> Result<Vec<Finding>>;
    /// Whether the finding of `sample` in `category` exists.
    fn has_finding(&self, tenant: &TenantId, category: &str, sample: &SampleId) -> Result<bool>;
    /// Whether content with this hash was sampled for the tenant already.
    fn is_seen(&self, tenant: &TenantId, hash: &str) -> Result<bool>;
    /// The claim on a content hash and the version read (absent when the
    /// content was not sampled yet).
    fn seen_versioned(&self, tenant: &TenantId, hash: &str) -> Result<(Option<Seen>, Version)>;
    /// The hour's tally of a tenant and the version read (absent before the
    /// hour's first random sample).
    fn tally_versioned(&self, tenant: &TenantId, hour: u64) -> Result<(Option<Tally>, Version)>;
    /// A tenant's tallies of hours `start <= hour < end`, oldest first.
    fn tallies_between(&self, tenant: &TenantId, start: u64, end: u64) -> Result<Vec<Tally>>;
    /// Every tally of a tenant, oldest first.
    fn tallies(&self, tenant: &TenantId) -> Result<Vec<Tally>>;
    /// A tenant's tallies of hours before `hour`, oldest first.
    fn tallies_before(&self, tenant: &TenantId, hour: u64) -> Result<Vec<Tally>>;
    /// A raised threshold of a tenant.
    fn threshold_alert(&self, tenant: &TenantId, category: &str) -> Result<Option<ThresholdAlert>>;
    /// Whether a tenant's threshold in `category` is raised.
    fn threshold_raised(&self, tenant: &TenantId, category: &str) -> Result<bool>;
    /// Every raised threshold.
    fn threshold_alerts(&self) -> Result<Vec<ThresholdAlert>>;
    /// A tenant's push-intake counter.
    fn intake_counter(&self, tenant: &TenantId) -> Result<Option<IntakeCounter>>;
    /// A tenant's push-intake counter and the version read (absent before
    /// its first push).
    fn intake_counter_versioned(
        &self,
        tenant: &TenantId,
    ) -> Result<(Option<IntakeCounter>, Version)>;
}

/// Removes the finding of `sample` in `category`, in `batch`.
pub fn delete_finding(batch: &mut Batch, tenant: &TenantId, category: &str, sample: &SampleId) {
    batch.delete::<Finding>(finding_key(tenant.as_str(), category, sample));
}

/// The version of the claim on a content hash while nobody claimed it: a
/// precondition that no other writer sampled the same content meanwhile.
pub fn seen_absent(tenant: &TenantId, hash: &str) -> Version {
    Version::absent::<Seen>(seen_key(tenant, hash))
}

/// The version of a tenant's threshold in `category` while it is not
/// raised: a precondition that nobody raised it meanwhile.
pub fn alert_absent(tenant: &TenantId, category: &str) -> Version {
    Version::absent::<ThresholdAlert>(alert_key(tenant, category))
}

/// Clears a raised threshold, in `batch`.
pub fn clear_alert(batch: &mut Batch, tenant: &TenantId, category: &str) {
    batch.delete::<ThresholdAlert>(alert_key(tenant, category));
}
