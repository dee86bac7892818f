//! The tenant, token and report repositories on PostgreSQL: the
//! `tenants`, `sources`, `source_states`, `tokens` and `reports` tables
//! (migration 4) read in SQL, in the same order sled gives.

use super::pg_read::byte_prefix;
use super::reports::ReportRepository;
use super::tenants::{source_key, tenant_record_key, TenantRepository};
use super::tokens::TokenRepository;
use super::{tenant_key, PgStore, Result, Version};
use crate::domain::{Report, Source, SourceId, SourceState, Tenant, TenantId, TokenRecord};

const TENANT: &str = "SELECT record FROM tenants WHERE id = $1";
const SOURCE_STATE: &str = "SELECT record FROM source_states WHERE key = $1";

impl TenantRepository for PgStore {
    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        self.record(TENANT, Box::new(id.as_str().to_string()))
    }

    fn tenant_versioned(&self, id: &TenantId) -> Result<(Option<Tenant>, Version)> {
        self.versioned(
            TENANT,
            tenant_record_key(id),
            Box::new(id.as_str().to_string()),
        )
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        self.records_where("SELECT record FROM tenants ORDER BY id", Vec::new())
    }

    fn source(&self, tenant: &TenantId, id: SourceId) -> Result<Option<Source>> {
        self.record(
            "SELECT record FROM sources WHERE key = $1",
            Box::new(source_key(tenant, id)),
        )
    }

    fn sources(&self, tenant: &TenantId) -> Result<Vec<Source>> {
        // `tenant/` is a whole prefix: no tenant name holds a `/`.
        self.records_where(
            "SELECT record FROM sources \
             WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key",
            byte_prefix(tenant_key(tenant.as_str(), b"")).into(),
        )
    }

    fn source_state(&self, tenant: &TenantId, id: SourceId) -> Result<Option<SourceState>> {
        self.record(SOURCE_STATE, Box::new(source_key(tenant, id)))
    }

    fn source_state_versioned(
        &self,
        tenant: &TenantId,
        id: SourceId,
    ) -> Result<(Option<SourceState>, Version)> {
        let key = source_key(tenant, id);
        self.versioned(SOURCE_STATE, key.clone(), Box::new(key))
    }

    fn source_states(&self) -> Result<Vec<SourceState>> {
        self.records_where("SELECT record FROM source_states ORDER BY key", Vec::new())
    }
}

impl TokenRepository for PgStore {
    fn token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        self.record(
            "SELECT record FROM tokens WHERE id = $1",
            Box::new(hash.to_string()),
        )
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.records_where("SELECT record FROM tokens ORDER BY id", Vec::new())
    }
}

impl ReportRepository for PgStore {
    fn reports(&self) -> Result<Vec<Report>> {
        self.records_where("SELECT record FROM reports ORDER BY id", Vec::new())
    }
}
