//! The tenant, token and report repositories on PostgreSQL: the
//! `tenants`, `sources`, `source_states`, `tokens` and `reports` tables
//! (migration 4) read in SQL, in the same order sled gives.

use super::pg_cases::Param;
use super::reports::ReportRepository;
use super::tenants::{source_key, tenant_record_key, TenantRepository};
use super::tokens::TokenRepository;
use super::{decode, prefix_successor, tenant_key, PgStore, Record, Result, Version};
use crate::domain::{Report, Source, SourceId, SourceState, Tenant, TenantId, TokenRecord};

impl PgStore {
    /// The records `sql` selects (its first column).
    pub(super) fn records_where<R: Record>(
        &self,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<Vec<R>> {
        self.column(sql, params)?
            .iter()
            .map(|raw| decode::<R>(raw))
            .collect()
    }

    /// The one record `sql` selects, if any, with the version read.
    pub(super) fn versioned<R: Record>(
        &self,
        sql: &'static str,
        key: Vec<u8>,
        param: Param,
    ) -> Result<(Option<R>, Version)> {
        let raw = self.column(sql, vec![param])?.pop();
        let record = raw.as_deref().map(decode::<R>).transpose()?;
        Ok((
            record,
            Version {
                tree: R::TREE,
                key,
                raw,
            },
        ))
    }
}

const TENANT: &str = "SELECT record FROM tenants WHERE id = $1";
const SOURCE_STATE: &str = "SELECT record FROM source_states WHERE key = $1";

impl TenantRepository for PgStore {
    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        Ok(self
            .records_where(TENANT, vec![Box::new(id.as_str().to_string())])?
            .pop())
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
        Ok(self
            .records_where(
                "SELECT record FROM sources WHERE key = $1",
                vec![Box::new(source_key(tenant, id))],
            )?
            .pop())
    }

    fn sources(&self, tenant: &TenantId) -> Result<Vec<Source>> {
        // `tenant/` is a whole prefix: no tenant name holds a `/`.
        let lo = tenant_key(tenant.as_str(), b"");
        let hi = prefix_successor(&lo);
        self.records_where(
            "SELECT record FROM sources \
             WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key",
            vec![Box::new(lo), Box::new(hi)],
        )
    }

    fn source_state(&self, tenant: &TenantId, id: SourceId) -> Result<Option<SourceState>> {
        Ok(self
            .records_where(SOURCE_STATE, vec![Box::new(source_key(tenant, id))])?
            .pop())
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
        Ok(self
            .records_where(
                "SELECT record FROM tokens WHERE id = $1",
                vec![Box::new(hash.to_string())],
            )?
            .pop())
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
