//! Sampling what tenants publish: tenants and their sources, guarded
//! fetching, extraction, uniform sampling within budgets, scoring, findings
//! and prevalence. Every state change is one store batch with its events.

pub mod extract;
pub mod fetch;
pub mod guard;
pub mod labelled;
pub mod registry;
pub mod reservoir;
pub mod retention;
pub mod worker;

mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::config::SamplingSettings;
use crate::domain::TenantId;
use crate::policy::PolicyHandle;
use crate::store::SharedStore;

pub use extract::Item;
pub use record::{CategoryPrevalence, IntakeOutcome, Recorded, TargetedResult};

/// Why a sampling operation failed, in terms the API can answer with.
#[derive(Debug, thiserror::Error)]
pub enum SamplingError {
    /// No such tenant or source.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// It already exists.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Words.
        message: String,
    },
    /// The request cannot be carried out as asked.
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// Words.
        message: String,
    },
    /// Other writers kept changing what this needed (replicas recording
    /// for one tenant at once); nothing was written. Try again.
    #[error("{0}")]
    Busy(String),
    /// Something broke inside aupd.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for SamplingError {
    fn from(e: crate::store::StoreError) -> Self {
        SamplingError::Internal(e.into())
    }
}

/// Sampling results.
pub type Result<T, E = SamplingError> = std::result::Result<T, E>;

/// The sampling room's shared state: store, policy, fetcher, settings.
#[derive(Debug)]
pub struct Sampling {
    store: SharedStore,
    policy: Arc<PolicyHandle>,
    fetcher: fetch::Fetcher,
    settings: SamplingSettings,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    rng: Mutex<StdRng>,
    /// This replica's id, written on the sources it claims.
    replica: String,
    /// How long a claim on a source lasts before another replica may take
    /// the source over (the visit of a replica that died).
    claim_for: std::time::Duration,
}

/// Tenant locks kept before the unused ones are dropped.
const MAX_IDLE_LOCKS: usize = 256;

impl Sampling {
    /// Builds the room over `store`, resolving hosts with `resolver`.
    pub fn new(
        store: SharedStore,
        policy: Arc<PolicyHandle>,
        settings: SamplingSettings,
        resolver: Arc<dyn guard::Resolver>,
    ) -> anyhow::Result<Self> {
        let allow = settings
            .allow_nets()
            .map_err(|e| anyhow::anyhow!("sampling.allow_cidrs: {e}"))?;
        let guard = Arc::new(guard::Guard::new(allow, resolver));
        let fetcher = fetch::Fetcher::new(
            guard,
            fetch::FetchLimits {
                timeout: Duration::from_secs(settings.fetch_timeout_secs),
                max_bytes: settings.max_response_bytes,
                max_redirects: settings.max_redirects,
                per_host_concurrency: settings.per_host_concurrency,
                per_host_min_interval: Duration::from_millis(settings.per_host_min_interval_ms),
                user_agent: settings.user_agent.clone(),
            },
        )?
        .paced_through(store.clone());
        let rng = match settings.rng_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        let claim_for =
            std::time::Duration::from_secs(settings.fetch_timeout_secs.saturating_mul(4).max(15));
        Ok(Sampling {
            claim_for,
            store,
            policy,
            fetcher,
            settings,
            locks: Mutex::new(HashMap::new()),
            rng: Mutex::new(rng),
            replica: "local".to_string(),
        })
    }

    /// Names this replica on the sources it claims, and makes a claim last
    /// at least `lease` (and at least four fetch timeouts, so a slow visit
    /// is not taken over while it is still running).
    pub fn with_replica(mut self, replica: &str, lease: std::time::Duration) -> Self {
        self.replica = replica.to_string();
        self.claim_for = self.claim_for.max(lease);
        self
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<PolicyHandle> {
        &self.policy
    }

    /// The settings in force.
    pub fn settings(&self) -> &SamplingSettings {
        &self.settings
    }

    /// Serialises read-decide-write sequences of one tenant within this
    /// process (dedup, budgets, tallies and alerts read then write).
    async fn lock(&self, tenant: &TenantId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = match self.locks.lock() {
                Ok(l) => l,
                Err(p) => p.into_inner(),
            };
            if locks.len() >= MAX_IDLE_LOCKS {
                // Forget the locks no one holds or waits for, so the map
                // stays as small as the tenants being worked right now.
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks
                .entry(tenant.as_str().to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone()
        };
        lock.lock_owned().await
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        let mut rng = match self.rng.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        f(&mut rng)
    }
}

/// Runs blocking store work off the reactor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SamplingError::Internal(anyhow::anyhow!("store task failed: {e}")))?
}
