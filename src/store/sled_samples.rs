//! The sampling and review repositories on sled: samples, findings,
//! tallies, raised thresholds, intake counters, content hashes, labels and
//! review states in their trees, keyed as [`super::samples`] and
//! [`super::reviews`] say, read in key order.

use super::records::{finding_key, Seen};
use super::reviews::{item_prefix, review_state_key, ReviewRepository};
use super::samples::{
    alert_key, intake_key, page_bounds, sample_key, seen_key, tally_key, tenant_prefix,
    SampleRepository,
};
use super::{decode, tenant_key, Result, SledStore, StoreEngine, Tree, Version};
use crate::domain::{
    Finding, IntakeCounter, Label, ReviewState, Sample, SampleId, Tally, TenantId, ThresholdAlert,
};

impl SampleRepository for SledStore {
    fn sample(&self, tenant: &TenantId, id: &SampleId) -> Result<Option<Sample>> {
        self.as_store().get::<Sample>(&sample_key(tenant, id))
    }

    fn newest_samples(&self, tenant: &TenantId, limit: usize) -> Result<Vec<Sample>> {
        self.as_store()
            .scan::<Sample>(&tenant_prefix(tenant), limit, true)
    }

    fn sample_page(
        &self,
        tenant: &TenantId,
        after: Option<&Sample>,
        limit: usize,
    ) -> Result<Vec<(Sample, Version)>> {
        let (start, end) = page_bounds(tenant, after);
        let rows = match end {
            Some(end) => self
                .as_store()
                .range_raw_limited(Tree::Samples, &start, &end, limit)?,
            None => Vec::new(),
        };
        rows.into_iter()
            .map(|(key, raw)| {
                let sample = decode::<Sample>(&raw)?;
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

    fn findings(&self, tenant: &TenantId, category: &str, limit: usize) -> Result<Vec<Finding>> {
        let mut rest = category.as_bytes().to_vec();
        rest.push(b'/');
        self.as_store()
            .scan::<Finding>(&tenant_key(tenant.as_str(), &rest), limit, true)
    }

    fn has_finding(&self, tenant: &TenantId, category: &str, sample: &SampleId) -> Result<bool> {
        Ok(self
            .get_raw(
                Tree::Findings,
                &finding_key(tenant.as_str(), category, sample),
            )?
            .is_some())
    }

    fn is_seen(&self, tenant: &TenantId, hash: &str) -> Result<bool> {
        Ok(self.get_raw(Tree::Seen, &seen_key(tenant, hash))?.is_some())
    }

    fn seen_versioned(&self, tenant: &TenantId, hash: &str) -> Result<(Option<Seen>, Version)> {
        Version::read::<Seen>(self, seen_key(tenant, hash))
    }

    fn tally_versioned(&self, tenant: &TenantId, hour: u64) -> Result<(Option<Tally>, Version)> {
        Version::read::<Tally>(self, tally_key(tenant, hour))
    }

    fn tallies_between(&self, tenant: &TenantId, start: u64, end: u64) -> Result<Vec<Tally>> {
        self.as_store()
            .range::<Tally>(&tally_key(tenant, start), &tally_key(tenant, end))
    }

    fn tallies(&self, tenant: &TenantId) -> Result<Vec<Tally>> {
        self.as_store()
            .scan::<Tally>(&tenant_prefix(tenant), usize::MAX, false)
    }

    fn tallies_before(&self, tenant: &TenantId, hour: u64) -> Result<Vec<Tally>> {
        self.as_store()
            .range::<Tally>(&tenant_prefix(tenant), &tally_key(tenant, hour))
    }

    fn threshold_alert(&self, tenant: &TenantId, category: &str) -> Result<Option<ThresholdAlert>> {
        self.as_store()
            .get::<ThresholdAlert>(&alert_key(tenant, category))
    }

    fn threshold_raised(&self, tenant: &TenantId, category: &str) -> Result<bool> {
        Ok(self
            .get_raw(Tree::Alerts, &alert_key(tenant, category))?
            .is_some())
    }

    fn threshold_alerts(&self) -> Result<Vec<ThresholdAlert>> {
        self.as_store()
            .scan::<ThresholdAlert>(b"", usize::MAX, false)
    }

    fn intake_counter(&self, tenant: &TenantId) -> Result<Option<IntakeCounter>> {
        self.as_store().get::<IntakeCounter>(&intake_key(tenant))
    }

    fn intake_counter_versioned(
        &self,
        tenant: &TenantId,
    ) -> Result<(Option<IntakeCounter>, Version)> {
        Version::read::<IntakeCounter>(self, intake_key(tenant))
    }
}

impl ReviewRepository for SledStore {
    fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>> {
        self.as_store()
            .scan::<Label>(&tenant_key(tenant.as_str(), b""), usize::MAX, false)
    }

    fn all_labels(&self) -> Result<Vec<Label>> {
        self.as_store().scan::<Label>(b"", usize::MAX, false)
    }

    fn item_labels(&self, tenant: &TenantId, sample: &SampleId) -> Result<Vec<Label>> {
        self.as_store().scan::<Label>(
            &tenant_key(tenant.as_str(), &item_prefix(sample)),
            usize::MAX,
            false,
        )
    }

    fn review_state_versioned(&self, tenant: &TenantId) -> Result<(Option<ReviewState>, Version)> {
        Version::read::<ReviewState>(self, review_state_key(tenant))
    }
}
