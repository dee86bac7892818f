//! The review repository: reviewers' labels, and each tenant's review
//! state (the seed of its draw order).
//!
//! Labels are keyed `tenant/sample/category/reviewer`, so one reviewer has
//! one answer per item and category (a later one replaces it), a tenant's
//! labels are one prefix scan, and an item's labels are a shorter one.

use super::{tenant_key, Batch, Record, Result, Store, Tree, Version};
use crate::domain::{Label, ReviewState, SampleId, TenantId};

impl Record for Label {
    const TREE: Tree = Tree::Labels;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        let mut rest = item_prefix(&self.sample);
        rest.extend_from_slice(self.category.as_bytes());
        rest.push(b'/');
        rest.extend_from_slice(self.reviewer.as_bytes());
        tenant_key(self.tenant.as_str(), &rest)
    }
}

impl Record for ReviewState {
    const TREE: Tree = Tree::ReviewState;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.tenant.as_str().as_bytes().to_vec()
    }
}

fn item_prefix(sample: &SampleId) -> Vec<u8> {
    let mut rest = sample.0.to_string().into_bytes();
    rest.push(b'/');
    rest
}

/// Every label of a tenant, by item, category and reviewer.
pub fn labels(store: &dyn Store, tenant: &TenantId) -> Result<Vec<Label>> {
    store.scan::<Label>(&tenant_key(tenant.as_str(), b""), usize::MAX, false)
}

/// Every label of every tenant.
pub fn all_labels(store: &dyn Store) -> Result<Vec<Label>> {
    store.scan::<Label>(b"", usize::MAX, false)
}

/// The labels of one item, by category and reviewer.
pub fn item_labels(store: &dyn Store, tenant: &TenantId, sample: &SampleId) -> Result<Vec<Label>> {
    store.scan::<Label>(
        &tenant_key(tenant.as_str(), &item_prefix(sample)),
        usize::MAX,
        false,
    )
}

/// Puts a label (replacing the same reviewer's earlier answer), in `batch`.
pub fn put_label(batch: &mut Batch, label: &Label) -> Result<()> {
    batch.put(label)?;
    Ok(())
}

/// A tenant's review state and the version read (absent before its first
/// draw).
pub fn state_versioned(
    store: &dyn Store,
    tenant: &TenantId,
) -> Result<(Option<ReviewState>, Version)> {
    Version::read::<ReviewState>(store, tenant.as_str().as_bytes().to_vec())
}
