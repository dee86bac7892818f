//! The review repository: reviewers' labels, and each tenant's review
//! state (the seed of its draw order) ([`ReviewRepository`]; sled:
//! `sled_samples.rs`, PostgreSQL: `pg_samples.rs`).
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

pub(in crate::store) fn item_prefix(sample: &SampleId) -> Vec<u8> {
    let mut rest = sample.0.to_string().into_bytes();
    rest.push(b'/');
    rest
}

/// What the service reads of reviewers' labels and review states. Writes go
/// into a [`Batch`] ([`put_label`]). The marks of tenants whose labels
/// await a look are store metadata, read by [`pending_checks`].
pub trait ReviewRepository {
    /// Every label of a tenant, by item, category and reviewer.
    fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>>;
    /// Every label of every tenant.
    fn all_labels(&self) -> Result<Vec<Label>>;
    /// The labels of one item, by category and reviewer.
    fn item_labels(&self, tenant: &TenantId, sample: &SampleId) -> Result<Vec<Label>>;
    /// A tenant's review state and the version read (absent before its
    /// first draw).
    fn review_state_versioned(&self, tenant: &TenantId) -> Result<(Option<ReviewState>, Version)>;
}

/// Puts a label (replacing the same reviewer's earlier answer), in `batch`,
/// and marks its tenant for a look at the rules resting on labels (see
/// [`pending_checks`]), so a crossing the label makes is raised even if
/// the process stops right after the commit.
pub fn put_label(batch: &mut Batch, label: &Label) -> Result<()> {
    batch.put(label)?;
    let mark = format!("{:032x}", rand::random::<u128>()).into_bytes();
    batch.put_raw(Tree::Meta, check_key(label.tenant.as_str()), mark);
    Ok(())
}

/// Prefix in [`Tree::Meta`] of the tenants whose new labels have not been
/// looked at yet.
const CHECK_PREFIX: &[u8] = b"label_check/";

fn check_key(tenant: &str) -> Vec<u8> {
    let mut key = CHECK_PREFIX.to_vec();
    key.extend_from_slice(tenant.as_bytes());
    key
}

/// Tenants with labels committed since their last look, each with the
/// mark's version: [`checked`] clears the mark only if no label came
/// after it was read.
pub fn pending_checks(store: &dyn Store, limit: usize) -> Result<Vec<(TenantId, Version)>> {
    Ok(store
        .scan_raw(Tree::Meta, CHECK_PREFIX, limit, false)?
        .into_iter()
        .filter_map(|(key, raw)| {
            let tenant = String::from_utf8(key[CHECK_PREFIX.len()..].to_vec()).ok()?;
            Some((
                TenantId::try_from(tenant).ok()?,
                Version {
                    tree: Tree::Meta,
                    key,
                    raw: Some(raw),
                },
            ))
        })
        .collect())
}

/// The mark of `tenant` as it stands (absent: nothing pending).
pub fn pending_check(store: &dyn Store, tenant: &TenantId) -> Result<Version> {
    let key = check_key(tenant.as_str());
    let raw = store.get_raw(Tree::Meta, &key)?;
    Ok(Version {
        tree: Tree::Meta,
        key,
        raw,
    })
}

/// Clears the mark read at `mark` once its tenant has been looked at;
/// a label committed meanwhile changed it, and the mark stays for the
/// next look. Returns whether it was cleared.
pub fn checked(store: &dyn Store, mark: &Version) -> Result<bool> {
    if mark.raw.is_none() {
        return Ok(true);
    }
    let mut batch = Batch::new();
    batch.expect_unchanged(mark);
    batch.delete_raw(Tree::Meta, mark.key.clone());
    match store.commit(batch) {
        Ok(_) => Ok(true),
        Err(super::StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Key of a tenant's review state.
pub(in crate::store) fn review_state_key(tenant: &TenantId) -> Vec<u8> {
    tenant.as_str().as_bytes().to_vec()
}
