//! Wiring: policy, HTTP server, signal handling, graceful shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::api::{self, auth::TokenRegistry, AppState};
use crate::config::Settings;
use crate::policy::PolicyHandle;
use crate::sampling::guard::{Resolver, SystemResolver};
use crate::sampling::{worker, Sampling};
use crate::store::{SharedStore, SledStore};

/// A built application: its listener is bound, nothing runs yet.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    policy: Arc<PolicyHandle>,
    sampling: Arc<Sampling>,
    store: SharedStore,
    sampler_enabled: bool,
}

impl Application {
    /// Loads the policy, binds the listener and builds the server. Binding
    /// here lets a caller ask for port 0 and read the real port back.
    pub fn build(settings: &Settings) -> anyhow::Result<Self> {
        Self::build_with_resolver(settings, Arc::new(SystemResolver))
    }

    /// Like `build`, resolving tenant hosts with `resolver` (tests use a
    /// fixed table to make a host name resolve to a private address).
    pub fn build_with_resolver(
        settings: &Settings,
        resolver: Arc<dyn Resolver>,
    ) -> anyhow::Result<Self> {
        let policy = Arc::new(PolicyHandle::load(&settings.policy.dir).with_context(|| {
            format!("loading the policy from {}", settings.policy.dir.display())
        })?);
        let tokens =
            TokenRegistry::with_admin(settings.auth.admin_token.as_ref().map(|s| s.expose()));
        if tokens.is_empty() {
            tracing::warn!(
                "no admin token configured: every /v1 route will answer 401; \
                 set AUPD__AUTH__ADMIN_TOKEN or auth.admin_token_file"
            );
        }
        let store: SharedStore = Arc::new(
            SledStore::open_with_cache(&settings.store.path, settings.store.cache_mb * 1024 * 1024)
                .with_context(|| {
                    format!("opening the store in {}", settings.store.path.display())
                })?,
        );
        let sampling = Arc::new(
            Sampling::new(
                store.clone(),
                policy.clone(),
                settings.sampling.clone(),
                resolver,
            )
            .context("setting up sampling")?,
        );
        let state = web::Data::new(AppState {
            policy: policy.clone(),
            tokens,
            max_body_bytes: settings.server.max_body_bytes,
            sampling: sampling.clone(),
        });
        let listener = TcpListener::bind(&settings.server.bind)
            .with_context(|| format!("binding {}", settings.server.bind))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .configure(api::configure(state.clone()))
        })
        .shutdown_timeout(settings.server.shutdown_grace_secs);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server
            .listen(listener)
            .context("starting the HTTP server")?
            .run();
        tracing::info!(
            port,
            policy_version = %policy.current().version(),
            "aupd listening"
        );
        Ok(Application {
            port,
            server,
            policy,
            sampling,
            store,
            sampler_enabled: settings.sampling.enabled,
        })
    }

    /// The port the server is bound to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the HTTP server (and so the whole application).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs until SIGTERM or SIGINT (or `handle().stop()`), then drains
    /// in-flight requests, stops the sampler and flushes the store.
    /// SIGHUP reloads the policy.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let reloader = tokio::spawn(reload_on_sighup(self.policy.clone()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let sampler = self
            .sampler_enabled
            .then(|| tokio::spawn(worker::run(self.sampling.clone(), stopped)));
        let result = self.server.await.context("HTTP server failed");
        reloader.abort();
        let _ = stop.send(true);
        if let Some(sampler) = sampler {
            if let Err(e) = sampler.await {
                tracing::error!(error = %e, "sampler task failed");
            }
        }
        crate::store::flush(&self.store)
            .await
            .context("flushing the store at shutdown")?;
        tracing::info!("aupd stopped");
        result
    }
}

#[cfg(unix)]
async fn reload_on_sighup(policy: Arc<PolicyHandle>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload via the API only");
            return;
        }
    };
    while hup.recv().await.is_some() {
        let handle = policy.clone();
        match tokio::task::spawn_blocking(move || handle.reload()).await {
            Ok(Ok(engine)) => {
                tracing::info!(version = %engine.version(), "policy reloaded on SIGHUP")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "policy reload refused; the policy in force stays")
            }
            Err(e) => tracing::error!(error = %e, "policy reload task failed"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_policy: Arc<PolicyHandle>) {}
