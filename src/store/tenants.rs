//! The tenant repository: tenants, their sources and each source's
//! schedule and health.

use super::{tenant_key, Batch, Result, Store, Version};
use crate::domain::{Source, SourceId, SourceState, Tenant, TenantId};

fn tenant_record_key(id: &TenantId) -> Vec<u8> {
    id.as_str().as_bytes().to_vec()
}

fn source_key(tenant: &TenantId, id: SourceId) -> Vec<u8> {
    tenant_key(tenant.as_str(), id.0.as_bytes())
}

/// One tenant.
pub fn get(store: &dyn Store, id: &TenantId) -> Result<Option<Tenant>> {
    store.get::<Tenant>(&tenant_record_key(id))
}

/// One tenant and the version read, for a write that must follow on from it.
pub fn get_versioned(store: &dyn Store, id: &TenantId) -> Result<(Option<Tenant>, Version)> {
    Version::read::<Tenant>(store, tenant_record_key(id))
}

/// Every tenant, by id.
pub fn list(store: &dyn Store) -> Result<Vec<Tenant>> {
    store.scan::<Tenant>(b"", usize::MAX, false)
}

/// One source of a tenant.
pub fn source(store: &dyn Store, tenant: &TenantId, id: SourceId) -> Result<Option<Source>> {
    store.get::<Source>(&source_key(tenant, id))
}

/// A tenant's sources.
pub fn sources(store: &dyn Store, tenant: &TenantId) -> Result<Vec<Source>> {
    store.scan::<Source>(&tenant_key(tenant.as_str(), b""), usize::MAX, false)
}

/// A source's schedule and health.
pub fn source_state(
    store: &dyn Store,
    tenant: &TenantId,
    id: SourceId,
) -> Result<Option<SourceState>> {
    store.get::<SourceState>(&source_key(tenant, id))
}

/// A source's schedule and health and the version read (absent for a
/// source without one), for a claim that must follow on from it.
pub fn source_state_versioned(
    store: &dyn Store,
    tenant: &TenantId,
    id: SourceId,
) -> Result<(Option<SourceState>, Version)> {
    Version::read::<SourceState>(store, source_key(tenant, id))
}

/// The schedule and health of every source of every tenant.
pub fn source_states(store: &dyn Store) -> Result<Vec<SourceState>> {
    store.scan::<SourceState>(b"", usize::MAX, false)
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
