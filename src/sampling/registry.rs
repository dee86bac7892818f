//! Tenants and their sources: registration and changes, each one store
//! batch with its event, durable before the caller answers.

use jiff::Timestamp;
use serde::Serialize;
use url::Url;

use super::{blocking, Result, Sampling, SamplingError};
use crate::domain::{
    Contact, RiskTier, Source, SourceId, SourceKind, SourceState, Tenant, TenantId, TenantStatus,
};
use crate::store::{self, tenants, Batch};

/// A validated new tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    /// Slug.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Abuse contacts.
    pub contacts: Vec<Contact>,
    /// Risk tier.
    pub risk_tier: RiskTier,
    /// Status.
    pub status: TenantStatus,
    /// Intake budget per hour before the tier factor.
    pub intake_budget_per_hour: u32,
}

/// A validated change to a tenant; `None` keeps the field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantPatch {
    /// New name.
    pub name: Option<String>,
    /// New contacts.
    pub contacts: Option<Vec<Contact>>,
    /// New tier.
    pub risk_tier: Option<RiskTier>,
    /// New status.
    pub status: Option<TenantStatus>,
    /// New intake budget.
    pub intake_budget_per_hour: Option<u32>,
}

/// A validated new source.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSource {
    /// Kind.
    pub kind: SourceKind,
    /// URL.
    pub url: Url,
    /// Items per hour before the tier factor.
    pub budget_per_hour: u32,
    /// Seconds between fetches.
    pub interval_secs: u64,
    /// Whether sampled.
    pub enabled: bool,
}

/// A validated change to a source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourcePatch {
    /// New URL.
    pub url: Option<Url>,
    /// New budget.
    pub budget_per_hour: Option<u32>,
    /// New interval.
    pub interval_secs: Option<u64>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// A source with its schedule and health, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    /// The source.
    #[serde(flatten)]
    pub source: Source,
    /// Items per hour after the tenant's tier factor.
    pub effective_budget_per_hour: u32,
    /// Schedule, budget use and health.
    pub state: Option<SourceState>,
}

impl Sampling {
    /// Registers a tenant; an existing id is a conflict.
    #[tracing::instrument(skip_all, fields(tenant = %new.id))]
    pub async fn create_tenant(&self, new: NewTenant) -> Result<Tenant> {
        let _lock = self.lock(&new.id).await;
        if self.store.tenant(&new.id)?.is_some() {
            return Err(SamplingError::Conflict {
                code: "tenant_exists",
                message: format!("tenant `{}` already exists", new.id),
            });
        }
        let now = Timestamp::now();
        let tenant = Tenant {
            id: new.id,
            name: new.name,
            contacts: new.contacts,
            risk_tier: new.risk_tier,
            status: new.status,
            intake_budget_per_hour: new.intake_budget_per_hour,
            enforcement: None,
            created_at: now,
            updated_at: now,
        };
        let mut batch = Batch::new();
        batch.put(&tenant)?;
        batch.event("tenant.created", Some(tenant.id.as_str()), &tenant)?;
        store::commit_durably(&self.store, batch).await?;
        Ok(tenant)
    }

    /// One tenant.
    pub fn get_tenant(&self, id: &TenantId) -> Result<Tenant> {
        self.tenant(id)
    }

    /// Every tenant, by id.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let store = self.store.clone();
        blocking(move || Ok(store.tenants()?)).await
    }

    /// Changes a tenant.
    #[tracing::instrument(skip_all, fields(tenant = %id))]
    pub async fn update_tenant(&self, id: &TenantId, patch: TenantPatch) -> Result<Tenant> {
        let _lock = self.lock(id).await;
        // An enforcement transition may change the status between our read
        // and our write: the write carries the read as a precondition and
        // is tried again on a conflict, so neither overwrites the other.
        for _ in 0..8 {
            let (tenant, version) = self.store.tenant_versioned(id)?;
            let tenant = tenant.ok_or(SamplingError::NotFound("tenant"))?;
            let tenant = apply_patch(tenant, &patch)?;
            let mut batch = Batch::new();
            batch.expect_unchanged(&version);
            batch.put(&tenant)?;
            batch.event("tenant.updated", Some(id.as_str()), &tenant)?;
            match store::commit_durably(&self.store, batch).await {
                Ok(_) => return Ok(tenant),
                Err(e) if store::is_conflict(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SamplingError::Internal(anyhow::anyhow!(
            "the tenant kept changing under this update; try again"
        )))
    }

    fn view(&self, tenant: &Tenant, source: Source) -> Result<SourceView> {
        let state = self.store.source_state(&tenant.id, source.id)?;
        Ok(SourceView {
            effective_budget_per_hour: source.effective_budget(tenant.risk_tier),
            source,
            state,
        })
    }

    /// Adds a source to a tenant; it is due at once.
    #[tracing::instrument(skip_all, fields(tenant = %tenant_id))]
    pub async fn create_source(&self, tenant_id: &TenantId, new: NewSource) -> Result<SourceView> {
        let tenant = self.tenant(tenant_id)?;
        self.check_source_url(&new.url)?;
        let now = Timestamp::now();
        let source = Source {
            id: SourceId::new(),
            tenant: tenant_id.clone(),
            kind: new.kind,
            url: new.url,
            budget_per_hour: new.budget_per_hour,
            interval_secs: new.interval_secs,
            enabled: new.enabled,
            created_at: now,
            updated_at: now,
        };
        let state = SourceState::new(tenant_id.clone(), source.id, now);
        let mut batch = Batch::new();
        batch.put(&source)?;
        batch.put(&state)?;
        batch.event("source.created", Some(tenant_id.as_str()), &source)?;
        store::commit_durably(&self.store, batch).await?;
        self.view(&tenant, source)
    }

    /// Refuses at registration a URL whose shape alone the SSRF guard would
    /// refuse at every fetch (an IP literal in a forbidden range, another
    /// scheme, credentials). Host names are resolved and checked per fetch.
    fn check_source_url(&self, url: &url::Url) -> Result<()> {
        self.fetcher
            .guard()
            .check_url_shape(url)
            .map(|_| ())
            .map_err(|r| SamplingError::Invalid {
                code: "invalid_url",
                message: format!("`{url}`: {r}"),
            })
    }

    /// A tenant's sources.
    pub async fn list_sources(&self, tenant_id: &TenantId) -> Result<Vec<SourceView>> {
        let tenant = self.tenant(tenant_id)?;
        let sources = self.store.sources(tenant_id)?;
        sources.into_iter().map(|s| self.view(&tenant, s)).collect()
    }

    fn source(&self, tenant_id: &TenantId, id: SourceId) -> Result<Source> {
        self.store
            .source(tenant_id, id)?
            .ok_or(SamplingError::NotFound("source"))
    }

    /// One source.
    pub fn get_source(&self, tenant_id: &TenantId, id: SourceId) -> Result<SourceView> {
        let tenant = self.tenant(tenant_id)?;
        let source = self.source(tenant_id, id)?;
        self.view(&tenant, source)
    }

    /// Changes a source; a new URL or re-enabling makes it due at once.
    pub async fn update_source(
        &self,
        tenant_id: &TenantId,
        id: SourceId,
        patch: SourcePatch,
    ) -> Result<SourceView> {
        let tenant = self.tenant(tenant_id)?;
        let _lock = self.lock(tenant_id).await;
        let mut source = self.source(tenant_id, id)?;
        let now = Timestamp::now();
        let mut state = self
            .store
            .source_state(tenant_id, id)?
            .unwrap_or_else(|| SourceState::new(tenant_id.clone(), id, now));
        if let Some(url) = patch.url {
            self.check_source_url(&url)?;
            source.url = url;
            state.next_due = now;
            state.consecutive_failures = 0;
        }
        if let Some(v) = patch.budget_per_hour {
            source.budget_per_hour = v;
        }
        if let Some(v) = patch.interval_secs {
            source.interval_secs = v;
        }
        if let Some(v) = patch.enabled {
            if v && !source.enabled {
                state.next_due = now;
            }
            source.enabled = v;
        }
        source.updated_at = now;
        let mut batch = Batch::new();
        batch.put(&source)?;
        batch.put(&state)?;
        batch.event("source.updated", Some(tenant_id.as_str()), &source)?;
        store::commit_durably(&self.store, batch).await?;
        self.view(&tenant, source)
    }

    /// Removes a source (its samples stay).
    pub async fn delete_source(&self, tenant_id: &TenantId, id: SourceId) -> Result<()> {
        self.tenant(tenant_id)?;
        let source = self.source(tenant_id, id)?;
        let mut batch = Batch::new();
        tenants::delete_source(&mut batch, tenant_id, id);
        batch.event("source.deleted", Some(tenant_id.as_str()), &source)?;
        store::commit_durably(&self.store, batch).await?;
        Ok(())
    }
}

/// `tenant` with `patch` applied. While a case suspends the tenant its
/// status follows the case: only reinstating that case lifts it.
fn apply_patch(mut tenant: Tenant, patch: &TenantPatch) -> Result<Tenant> {
    if patch.status.is_some() && tenant.status == TenantStatus::Suspended {
        let case = tenant
            .enforcement
            .as_ref()
            .map(|e| e.case.to_string())
            .unwrap_or_default();
        return Err(SamplingError::Conflict {
            code: "tenant_suspended",
            message: format!(
                "the tenant is suspended by case {case}; reinstate it through that case"
            ),
        });
    }
    if let Some(v) = patch.status {
        tenant.status = v;
    }
    if let Some(v) = patch.name.clone() {
        tenant.name = v;
    }
    if let Some(v) = patch.contacts.clone() {
        tenant.contacts = v;
    }
    if let Some(v) = patch.risk_tier {
        tenant.risk_tier = v;
    }
    if let Some(v) = patch.intake_budget_per_hour {
        tenant.intake_budget_per_hour = v;
    }
    tenant.updated_at = Timestamp::now();
    Ok(tenant)
}
