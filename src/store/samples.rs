//! The sampling repository: samples, their findings, hourly prevalence
//! tallies, raised evidence thresholds, push-intake counters and the
//! content hashes already sampled.

use super::records::{finding_key, Seen};
use super::{tenant_key, Batch, Result, Store, StoreError, Tree, Version};
use crate::domain::{Finding, IntakeCounter, Sample, SampleId, Tally, TenantId, ThresholdAlert};

fn sample_key(tenant: &TenantId, id: &SampleId) -> Vec<u8> {
    tenant_key(tenant.as_str(), id.0.as_bytes())
}

fn seen_key(tenant: &TenantId, hash: &str) -> Vec<u8> {
    tenant_key(tenant.as_str(), hash.as_bytes())
}

fn tally_key(tenant: &TenantId, hour: u64) -> Vec<u8> {
    tenant_key(tenant.as_str(), &hour.to_be_bytes())
}

fn alert_key(tenant: &TenantId, category: &str) -> Vec<u8> {
    tenant_key(tenant.as_str(), category.as_bytes())
}

fn intake_key(tenant: &TenantId) -> Vec<u8> {
    tenant.as_str().as_bytes().to_vec()
}

/// Whether `e` is a conflict on a record a recording reads and writes back
/// itself (a tally, a content hash, a threshold): the recording can be made
/// again from what the other writer left.
pub fn is_recording_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(t)
        if *t == Tree::Tallies.name() || *t == Tree::Seen.name() || *t == Tree::Alerts.name())
}

/// One sample of a tenant.
pub fn get(store: &dyn Store, tenant: &TenantId, id: &SampleId) -> Result<Option<Sample>> {
    store.get::<Sample>(&sample_key(tenant, id))
}

/// A tenant's samples, newest first, at most `limit`.
pub fn newest(store: &dyn Store, tenant: &TenantId, limit: usize) -> Result<Vec<Sample>> {
    store.scan::<Sample>(&tenant_key(tenant.as_str(), b""), limit, true)
}

/// A page of a tenant's samples, oldest first, after `after` (from the
/// first when `None`), at most `limit`, each with the version read.
pub fn page(
    store: &dyn Store,
    tenant: &TenantId,
    after: Option<&Sample>,
    limit: usize,
) -> Result<Vec<(Sample, Version)>> {
    let prefix = tenant_key(tenant.as_str(), b"");
    let mut end = prefix.clone();
    end.push(0xff);
    let start = match after {
        Some(s) => {
            let mut k = sample_key(tenant, &s.id);
            k.push(0);
            k
        }
        None => prefix,
    };
    store
        .range_raw_limited(Tree::Samples, &start, &end, limit)?
        .into_iter()
        .map(|(key, raw)| {
            let sample = super::decode::<Sample>(&raw)?;
            Ok((
                sample,
                Version {
                    tree: Tree::Samples,
                    key,
                    raw: Some(raw),
                },
            ))
        })
        .collect()
}

/// The newest findings of a tenant in one category, at most `limit`.
pub fn findings(
    store: &dyn Store,
    tenant: &TenantId,
    category: &str,
    limit: usize,
) -> Result<Vec<Finding>> {
    let mut rest = category.as_bytes().to_vec();
    rest.push(b'/');
    store.scan::<Finding>(&tenant_key(tenant.as_str(), &rest), limit, true)
}

/// Whether the finding of `sample` in `category` exists.
pub fn has_finding(
    store: &dyn Store,
    tenant: &TenantId,
    category: &str,
    sample: &SampleId,
) -> Result<bool> {
    Ok(store
        .get_raw(
            Tree::Findings,
            &finding_key(tenant.as_str(), category, sample),
        )?
        .is_some())
}

/// Removes the finding of `sample` in `category`, in `batch`.
pub fn delete_finding(batch: &mut Batch, tenant: &TenantId, category: &str, sample: &SampleId) {
    batch.delete::<Finding>(finding_key(tenant.as_str(), category, sample));
}

/// Whether content with this hash was sampled for the tenant already.
pub fn is_seen(store: &dyn Store, tenant: &TenantId, hash: &str) -> Result<bool> {
    Ok(store
        .get_raw(Tree::Seen, &seen_key(tenant, hash))?
        .is_some())
}

/// The claim on a content hash and the version read (absent when the
/// content was not sampled yet).
pub fn seen_versioned(
    store: &dyn Store,
    tenant: &TenantId,
    hash: &str,
) -> Result<(Option<Seen>, Version)> {
    Version::read::<Seen>(store, seen_key(tenant, hash))
}

/// The version of the claim on a content hash while nobody claimed it: a
/// precondition that no other writer sampled the same content meanwhile.
pub fn seen_absent(tenant: &TenantId, hash: &str) -> Version {
    Version::absent::<Seen>(seen_key(tenant, hash))
}

/// The hour's tally of a tenant and the version read (absent before the
/// hour's first random sample).
pub fn tally_versioned(
    store: &dyn Store,
    tenant: &TenantId,
    hour: u64,
) -> Result<(Option<Tally>, Version)> {
    Version::read::<Tally>(store, tally_key(tenant, hour))
}

/// A tenant's tallies of hours `start <= hour < end`, oldest first.
pub fn tallies_between(
    store: &dyn Store,
    tenant: &TenantId,
    start: u64,
    end: u64,
) -> Result<Vec<Tally>> {
    store.range::<Tally>(&tally_key(tenant, start), &tally_key(tenant, end))
}

/// Every tally of a tenant, oldest first.
pub fn tallies(store: &dyn Store, tenant: &TenantId) -> Result<Vec<Tally>> {
    store.scan::<Tally>(&tenant_key(tenant.as_str(), b""), usize::MAX, false)
}

/// A tenant's tallies of hours before `hour`, oldest first.
pub fn tallies_before(store: &dyn Store, tenant: &TenantId, hour: u64) -> Result<Vec<Tally>> {
    store.range::<Tally>(&tenant_key(tenant.as_str(), b""), &tally_key(tenant, hour))
}

/// A raised threshold of a tenant.
pub fn alert(
    store: &dyn Store,
    tenant: &TenantId,
    category: &str,
) -> Result<Option<ThresholdAlert>> {
    store.get::<ThresholdAlert>(&alert_key(tenant, category))
}

/// Whether a tenant's threshold in `category` is raised.
pub fn alert_raised(store: &dyn Store, tenant: &TenantId, category: &str) -> Result<bool> {
    Ok(store
        .get_raw(Tree::Alerts, &alert_key(tenant, category))?
        .is_some())
}

/// The version of a tenant's threshold in `category` while it is not
/// raised: a precondition that nobody raised it meanwhile.
pub fn alert_absent(tenant: &TenantId, category: &str) -> Version {
    Version::absent::<ThresholdAlert>(alert_key(tenant, category))
}

/// Every raised threshold.
pub fn alerts(store: &dyn Store) -> Result<Vec<ThresholdAlert>> {
    store.scan::<ThresholdAlert>(b"", usize::MAX, false)
}

/// Clears a raised threshold, in `batch`.
pub fn clear_alert(batch: &mut Batch, tenant: &TenantId, category: &str) {
    batch.delete::<ThresholdAlert>(alert_key(tenant, category));
}

/// A tenant's push-intake counter.
pub fn intake(store: &dyn Store, tenant: &TenantId) -> Result<Option<IntakeCounter>> {
    store.get::<IntakeCounter>(&intake_key(tenant))
}

/// A tenant's push-intake counter and the version read (absent before its
/// first push).
pub fn intake_versioned(
    store: &dyn Store,
    tenant: &TenantId,
) -> Result<(Option<IntakeCounter>, Version)> {
    Version::read::<IntakeCounter>(store, intake_key(tenant))
}
