//! Which tree each domain record lives in, under which key.

use super::{tenant_key, Record, Tree};
use crate::domain::{
    Finding, IntakeCounter, Sample, Source, SourceState, Tally, Tenant, ThresholdAlert,
};

impl Record for Tenant {
    const TREE: Tree = Tree::Tenants;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.as_str().as_bytes().to_vec()
    }
}

impl Record for Source {
    const TREE: Tree = Tree::Sources;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        tenant_key(self.tenant.as_str(), self.id.0.as_bytes())
    }
}

impl Record for SourceState {
    const TREE: Tree = Tree::SourceState;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        tenant_key(self.tenant.as_str(), self.source.0.as_bytes())
    }
}

impl Record for Sample {
    const TREE: Tree = Tree::Samples;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        tenant_key(self.tenant.as_str(), self.id.0.as_bytes())
    }
}

impl Record for Finding {
    const TREE: Tree = Tree::Findings;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        finding_key(self.tenant.as_str(), &self.category, &self.sample)
    }
}

/// The key of the finding of `sample` in `category`: `tenant/category/sample`.
pub(in crate::store) fn finding_key(
    tenant: &str,
    category: &str,
    sample: &crate::domain::SampleId,
) -> Vec<u8> {
    let mut rest = category.as_bytes().to_vec();
    rest.push(b'/');
    rest.extend_from_slice(sample.0.as_bytes());
    tenant_key(tenant, &rest)
}

impl Record for Tally {
    const TREE: Tree = Tree::Tallies;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        tenant_key(self.tenant.as_str(), &self.hour.to_be_bytes())
    }
}

impl Record for ThresholdAlert {
    const TREE: Tree = Tree::Alerts;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        tenant_key(self.tenant.as_str(), self.category.as_bytes())
    }
}

impl Record for IntakeCounter {
    const TREE: Tree = Tree::Intake;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        self.tenant.as_str().as_bytes().to_vec()
    }
}

/// A content hash already sampled for a tenant (the value is the sample id).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Seen {
    /// Tenant.
    pub tenant: String,
    /// SHA-256 hex of the folded text.
    pub hash: String,
    /// The sample that took it.
    pub sample: crate::domain::SampleId,
}

impl Record for Seen {
    const TREE: Tree = Tree::Seen;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        tenant_key(&self.tenant, self.hash.as_bytes())
    }
}
