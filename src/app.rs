//! Wiring: policy, HTTP server, signal handling, graceful shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::api::{self, auth::TokenRegistry, AppState};
use crate::clock::{Clock, SystemClock};
use crate::commands::CaseService;
use crate::config::Settings;
use crate::delivery::Webhooks;
use crate::enforcement::Ladders;
use crate::policy::PolicyHandle;
use crate::sampling::guard::{Resolver, SystemResolver};
use crate::sampling::{worker, Sampling};
use crate::store::{SharedStore, SledStore};
use crate::workers::Workers;

/// A built application: its listener is bound, nothing runs yet.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    policy: Arc<PolicyHandle>,
    sampling: Arc<Sampling>,
    store: SharedStore,
    sampler_enabled: bool,
    workers: Option<Workers>,
    cases: CaseService,
    webhooks: Webhooks,
    dispatcher_enabled: bool,
}

/// What a caller may swap in when building the application (tests use a
/// fixed resolver and a manual clock).
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Resolves tenant host names (before the SSRF guard checks them).
    pub resolver: Arc<dyn Resolver>,
    /// Tells time for deadlines and cases.
    pub clock: Arc<dyn Clock>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            resolver: Arc::new(SystemResolver),
            clock: Arc::new(SystemClock),
        }
    }
}

impl Application {
    /// Loads the policy, binds the listener and builds the server. Binding
    /// here lets a caller ask for port 0 and read the real port back.
    pub fn build(settings: &Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, BuildOptions::default())
    }

    /// Like `build`, resolving tenant hosts with `resolver` (tests use a
    /// fixed table to make a host name resolve to a private address).
    pub fn build_with_resolver(
        settings: &Settings,
        resolver: Arc<dyn Resolver>,
    ) -> anyhow::Result<Self> {
        Self::build_with(
            settings,
            BuildOptions {
                resolver,
                ..BuildOptions::default()
            },
        )
    }

    /// Like `build`, with the given resolver and clock.
    pub fn build_with(settings: &Settings, options: BuildOptions) -> anyhow::Result<Self> {
        let BuildOptions { resolver, clock } = options;
        let policy = Arc::new(PolicyHandle::load(&settings.policy.dir).with_context(|| {
            format!("loading the policy from {}", settings.policy.dir.display())
        })?);
        let ladders = Ladders::load_from_policy_dir(&settings.policy.dir)
            .map_err(|e| anyhow::anyhow!("loading the escalation ladders: {e}"))?;
        let store: SharedStore =
            Arc::new(SledStore::open(&settings.store.path).with_context(|| {
                format!("opening the store in {}", settings.store.path.display())
            })?);
        let tokens = TokenRegistry::new(
            settings.auth.admin_token.as_ref().map(|s| s.expose()),
            store.clone(),
        );
        if !tokens.has_bootstrap() {
            tracing::info!(
                "no bootstrap admin token configured; create tokens with \
                 `aupd token create --role admin --name NAME` while the service is stopped"
            );
        }
        let cases = CaseService::new(store.clone(), ladders, clock);
        let webhooks = Webhooks::new(
            store.clone(),
            settings.delivery.clone(),
            resolver.clone(),
            cases.clone(),
        )
        .context("setting up webhook delivery")?;
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
            cases: cases.clone(),
            reports_per_hour: settings.enforcement.reports_per_hour,
            report_limiter: Default::default(),
            webhooks: webhooks.clone(),
        });
        let workers = settings.enforcement.enabled.then(|| Workers {
            cases: cases.clone(),
            sampling: sampling.clone(),
            tick: Duration::from_millis(settings.enforcement.tick_ms.max(1)),
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
            workers,
            cases,
            webhooks,
            dispatcher_enabled: settings.delivery.enabled,
        })
    }

    /// The port the server is bound to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The command path (tests drive cases through it).
    pub fn cases(&self) -> CaseService {
        self.cases.clone()
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
            .then(|| tokio::spawn(worker::run(self.sampling.clone(), stopped.clone())));
        let dispatcher = self.dispatcher_enabled.then(|| {
            tokio::spawn(crate::delivery::dispatcher::run(
                self.webhooks.clone(),
                stopped.clone(),
            ))
        });
        let enforcement = self.workers.clone().map(|w| tokio::spawn(w.run(stopped)));
        let result = self.server.await.context("HTTP server failed");
        reloader.abort();
        let _ = stop.send(true);
        if let Some(sampler) = sampler {
            if let Err(e) = sampler.await {
                tracing::error!(error = %e, "sampler task failed");
            }
        }
        if let Some(enforcement) = enforcement {
            if let Err(e) = enforcement.await {
                tracing::error!(error = %e, "enforcement worker failed");
            }
        }
        if let Some(dispatcher) = dispatcher {
            match dispatcher.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = ?e, "webhook dispatcher failed"),
                Err(e) => tracing::error!(error = %e, "webhook dispatcher task failed"),
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
