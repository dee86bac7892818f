//! The tenant repository: tenants, their sources and each source's
//! schedule and health ([`TenantRepository`]; sled: `sled_tenants.rs`,
//! PostgreSQL: `pg_tenants.rs`).

use super::{tenant_key, Batch, Result, Version};
use crate::domain::{Source, SourceId, SourceState, Tenant, TenantId};

pub(in crate::store) fn tenant_record_key(id: &TenantId) -> Vec<u8> {
    id.as_str().as_bytes().to_vec()
}

pub(in crate::store) fn source_key(tenant: &TenantId, id: SourceId) -> Vec<u8> {
    tenant_key(tenant.as_str(), id.0.as_bytes())
}

/// What the service reads of tenants, their sources and each source's
/// schedule and health. Writes go into a [`Batch`].
pub trait TenantRepository {
    /// One tenant.
    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>>;
    /// One tenant and the version read, for a write that must follow on
    /// from it.
    fn tenant_versioned(&self, id: &TenantId) -> Result<(Option<Tenant>, Version)>;
    /// Every tenant, by id.
    fn tenants(&self) -> Result<Vec<Tenant>>;
    /// One source of a tenant.
    fn source(&self, tenant: &TenantId, id: SourceId) -> Result<Option<Source>>;
    /// A tenant's sources.
    fn sources(&self, tenant: &TenantId) -> Result<Vec<Source>>;
    /// A source's schedule and health.
    fn source_state(&self, tenant: &TenantId, id: SourceId) -> Result<Option<SourceState>>;
    /// A source's schedule and health and the version read (absent for a
    /// source without one), for a claim that must follow on from it.
    fn source_state_versioned(
        &self,
        tenant: &TenantId,
        id: SourceId,
    ) -> Result<(Option<SourceState>, Version)>;
    /// The schedule and health of every source of every tenant.
    fn source_states(&self) -> Result<Vec<SourceState>>;
}

/// Removes a source and its schedule, in `batch`.
pub fn delete_source(batch: &mut Batch, tenant: &TenantId, id: SourceId) {
    batch.delete::<Source>(source_key(tenant, id));
    delete_source_state(batch, tenant, id);
}

/// Removes a source's schedule (left behind by a deleted source), in `batch`.
pub fn delete_source_state(batch: &mut Batch, tenant: &TenantId, id: SourceId) {
    batch.delete::<SourceState>(source_key(tenant, id));
}
