//! The tenant, token and report repositories on sled: records in their
//! trees, keyed as [`super::tenants`] says, read in key order.

use super::reports::ReportRepository;
use super::tenants::{source_key, tenant_record_key, TenantRepository};
use super::tokens::TokenRepository;
use super::{tenant_key, Result, SledStore, Version};
use crate::domain::{Report, Source, SourceId, SourceState, Tenant, TenantId, TokenRecord};

impl TenantRepository for SledStore {
    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        self.as_store().get::<Tenant>(&tenant_record_key(id))
    }

    fn tenant_versioned(&self, id: &TenantId) -> Result<(Option<Tenant>, Version)> {
        Version::read::<Tenant>(self, tenant_record_key(id))
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        self.as_store().scan::<Tenant>(b"", usize::MAX, false)
    }

    fn source(&self, tenant: &TenantId, id: SourceId) -> Result<Option<Source>> {
        self.as_store().get::<Source>(&source_key(tenant, id))
    }

    fn sources(&self, tenant: &TenantId) -> Result<Vec<Source>> {
        self.as_store()
            .scan::<Source>(&tenant_key(tenant.as_str(), b""), usize::MAX, false)
    }

    fn source_state(&self, tenant: &TenantId, id: SourceId) -> Result<Option<SourceState>> {
        self.as_store().get::<SourceState>(&source_key(tenant, id))
    }

    fn source_state_versioned(
        &self,
        tenant: &TenantId,
        id: SourceId,
    ) -> Result<(Option<SourceState>, Version)> {
        Version::read::<SourceState>(self, source_key(tenant, id))
    }

    fn source_states(&self) -> Result<Vec<SourceState>> {
        self.as_store().scan::<SourceState>(b"", usize::MAX, false)
    }
}

impl TokenRepository for SledStore {
    fn token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        self.as_store().get::<TokenRecord>(hash.as_bytes())
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.as_store().scan::<TokenRecord>(b"", usize::MAX, false)
    }
}

impl ReportRepository for SledStore {
    fn reports(&self) -> Result<Vec<Report>> {
        self.as_store().scan::<Report>(b"", usize::MAX, false)
    }
}
