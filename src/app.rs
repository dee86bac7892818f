//! Wiring: policy, HTTP server, signal handling, graceful shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::api::{self, auth::TokenRegistry, observe::RequestSpan, AppState};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::delivery::Webhooks;
use crate::policy::sync::PolicySync;
use crate::policy::PolicyHandle;
use crate::readiness::Readiness;
use crate::sampling::guard::{Resolver, SystemResolver};
use crate::sampling::{worker, Sampling};
use crate::service::cases::CaseService;
use crate::store::lease::{self, Lease};
use crate::store::SharedStore;
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
    readiness: web::Data<Readiness>,
    sampler_stale_after: Duration,
    enforcement_stale_after: Duration,
    grace: Duration,
    cases: CaseService,
    webhooks: Webhooks,
    dispatcher_enabled: bool,
    delivery_lease: Arc<Lease>,
    policy_sync: Arc<PolicySync>,
    policy_poll: Duration,
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
        let store: SharedStore = crate::store::open(&settings.store)?;
        let tokens = TokenRegistry::new(
            settings.auth.admin_token.as_ref().map(|s| s.expose()),
            store.clone(),
        );
        if !tokens.has_bootstrap() && !has_active_admin(&store) {
            tracing::warn!(
                "no admin token yet: stop aupd and run \
                 `aupd token create --role admin --name NAME`, or start it with \
                 AUPD__AUTH__ADMIN_TOKEN (or auth.admin_token_file) set to a secret \
                 of at least 16 characters"
            );
        }
        crate::store::ensure_indexes(&store).context("bringing the store's indexes up to date")?;
        log_audit_head(&store, "audit log head at start");
        let replica_id = settings.cluster.resolve_replica_id();
        tracing::info!(replica = %replica_id, "replica id");
        let cases = CaseService::with_policy(store.clone(), policy.clone(), clock.clone());
        if settings.store.backend == crate::config::StoreBackend::Postgres {
            // sled makes the directory; with PostgreSQL only the key file
            // may live there.
            std::fs::create_dir_all(&settings.store.path)
                .with_context(|| format!("creating {}", settings.store.path.display()))?;
        }
        let key = crate::delivery::sealing::SecretKey::configured(
            &settings.delivery,
            &settings.store.path,
        )?;
        if settings.store.backend == crate::config::StoreBackend::Postgres {
            // Replicas share one store, so they must share the key too.
            key.check_shared(&store)?;
        }
        let webhooks = Webhooks::new(
            store.clone(),
            settings.delivery.clone(),
            resolver.clone(),
            cases.clone(),
            Arc::new(key),
        )
        .context("setting up webhook delivery")?;
        webhooks
            .seal_plain_secrets()
            .context("sealing webhook secrets stored in plain text")?;
        let sampling = Arc::new(
            Sampling::new(
                store.clone(),
                policy.clone(),
                settings.sampling.clone(),
                resolver,
            )
            .context("setting up sampling")?
            .with_replica(
                &replica_id,
                Duration::from_millis(settings.cluster.lease_ms),
            ),
        );
        let enforcement_workers = Workers {
            cases: cases.clone(),
            sampling: sampling.clone(),
            tick: Duration::from_millis(settings.enforcement.tick_ms.max(1)),
            lease: Some(Arc::new(Lease::new(
                store.clone(),
                lease::ENFORCEMENT,
                &replica_id,
                Duration::from_millis(settings.cluster.lease_ms),
                clock.clone(),
            ))),
        };
        let delivery_lease = Arc::new(Lease::new(
            store.clone(),
            lease::DELIVERY,
            &replica_id,
            Duration::from_millis(settings.cluster.lease_ms),
            clock.clone(),
        ));
        let policy_sync = Arc::new(PolicySync::new(store.clone(), policy.clone(), &replica_id));
        let state = web::Data::new(AppState {
            policy_sync: policy_sync.clone(),
            policy: policy.clone(),
            tokens,
            max_body_bytes: settings.server.max_body_bytes,
            sampling: sampling.clone(),
            cases: cases.clone(),
            labels: crate::service::labels::Labels::new(
                store.clone(),
                policy.clone(),
                clock.clone(),
            ),
            reports: crate::service::reports::Reports::new(
                cases.clone(),
                sampling.clone(),
                policy.clone(),
                settings.enforcement.reports_per_hour,
            ),
            webhooks: webhooks.clone(),
            workers: enforcement_workers.clone(),
        });
        let workers = settings.enforcement.enabled.then_some(enforcement_workers);
        let listener = TcpListener::bind(&settings.server.bind)
            .with_context(|| format!("binding {}", settings.server.bind))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let readiness = web::Data::new(Readiness::default());
        let probe = readiness.clone();
        let max_body_bytes = settings.server.max_body_bytes;
        // Signals are ours (`run_until_stopped`): SIGTERM must stop the
        // workers and mark the service unready, not only the listener.
        let server = http_server(
            listener,
            settings.server.workers,
            settings.server.shutdown_grace_secs,
            move || {
                App::new()
                    .wrap(api::error::json_errors(max_body_bytes))
                    .wrap(TracingLogger::<RequestSpan>::new())
                    .app_data(probe.clone())
                    .configure(api::configure(state.clone()))
            },
        )?;
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
            readiness,
            // A sampler loop may wait for a free fetch slot (each fetch is
            // bounded by its timeout); a ticker pass may fire many deadlines.
            sampler_stale_after: Duration::from_millis(settings.sampling.tick_ms)
                .saturating_mul(10)
                .max(Duration::from_secs(settings.sampling.fetch_timeout_secs) * 2),
            enforcement_stale_after: Duration::from_millis(settings.enforcement.tick_ms)
                .saturating_mul(10)
                .max(Duration::from_secs(30)),
            grace: Duration::from_secs(settings.server.shutdown_grace_secs),
            cases,
            webhooks,
            dispatcher_enabled: settings.delivery.enabled,
            delivery_lease,
            policy_sync,
            policy_poll: Duration::from_millis(settings.cluster.policy_poll_ms),
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

    /// Runs until SIGTERM or SIGINT (or `handle().stop()`). Then it stops
    /// accepting connections, reports unready, lets in-flight requests and
    /// worker jobs finish within `server.shutdown_grace_secs`, and flushes
    /// the store. SIGHUP reloads the policy.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let reloader = tokio::spawn(reload_on_sighup(
            self.policy.clone(),
            self.policy_sync.clone(),
        ));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let follower = tokio::spawn(
            self.policy_sync
                .clone()
                .run(self.policy_poll, stopped.clone()),
        );
        let sampler = self.sampler_enabled.then(|| {
            let beat = self.readiness.register("sampler", self.sampler_stale_after);
            tokio::spawn(worker::run_with_heartbeat(
                self.sampling.clone(),
                stopped.clone(),
                beat,
            ))
        });
        // Push intake records samples even when the sampler does not run.
        let retention = tokio::spawn(crate::sampling::retention::run(
            self.sampling.clone(),
            stopped.clone(),
        ));
        let dispatcher = self.dispatcher_enabled.then(|| {
            tokio::spawn(crate::delivery::dispatcher::run_with_lease(
                self.webhooks.clone(),
                Some(self.delivery_lease.clone()),
                stopped.clone(),
            ))
        });
        let enforcement = self.workers.clone().map(|w| {
            let beat = self
                .readiness
                .register("enforcement", self.enforcement_stale_after);
            tokio::spawn(w.run_with_heartbeat(stopped, beat))
        });
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let result = tokio::select! {
            joined = &mut server => joined,
            signal = shutdown_signal() => {
                tracing::info!(signal, grace_secs = self.grace.as_secs(), "shutting down: draining requests and workers");
                self.readiness.start_draining();
                let _ = stop.send(true);
                // Graceful: stop accepting, wait up to the grace period for
                // requests in flight.
                handle.stop(true).await;
                server.await
            }
        };
        let result = match result {
            Ok(r) => r.context("HTTP server failed"),
            Err(e) => Err(anyhow::anyhow!("HTTP server task failed: {e}")),
        };
        reloader.abort();
        follower.abort();
        self.readiness.start_draining();
        let _ = stop.send(true);
        let workers = async {
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
            // A retention pass in progress runs to its end; each tenant's
            // removals are one transaction.
            if let Err(e) = retention.await {
                tracing::error!(error = %e, "sample retention task failed");
            }
        };
        if tokio::time::timeout(self.grace, workers).await.is_err() {
            tracing::warn!(
                grace_secs = self.grace.as_secs(),
                "workers did not finish within the grace period; what they had not committed is redone after restart"
            );
        }
        if let Some(dispatcher) = dispatcher {
            match dispatcher.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = ?e, "webhook dispatcher failed"),
                Err(e) => tracing::error!(error = %e, "webhook dispatcher task failed"),
            }
        }
        self.readiness.unregister("sampler");
        self.readiness.unregister("enforcement");
        crate::store::flush(&self.store)
            .await
            .context("flushing the store at shutdown")?;
        log_audit_head(&self.store, "audit log head at shutdown");
        tracing::info!("aupd stopped");
        result
    }
}

/// Logs the audit log's head (`<hash>@<seq>`), so the log pipeline keeps a
/// copy outside the store that `aupd audit verify --expect-head` can check
/// the store against later.
fn log_audit_head(store: &SharedStore, message: &'static str) {
    match crate::store::audit::head(store) {
        Ok(head) => tracing::info!(audit_head = %head, "{message}"),
        Err(e) => tracing::warn!(error = %e, "cannot read the audit log head"),
    }
}

/// Whether an admin token is already kept in the store (so a first-run
/// hint would only be noise).
fn has_active_admin(store: &SharedStore) -> bool {
    crate::service::tokens::list(store).is_ok_and(|tokens| {
        tokens
            .iter()
            .any(|t| t.revoked_at.is_none() && t.role == crate::domain::Role::Admin)
    })
}

/// Resolves with the name of the first SIGTERM or SIGINT.
#[cfg(unix)]
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; stop with the process manager");
            std::future::pending().await
        }
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
async fn shutdown_signal() -> &'static str {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    "ctrl-c"
}

#[cfg(unix)]
async fn reload_on_sighup(policy: Arc<PolicyHandle>, sync: Arc<PolicySync>) {
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
                tracing::info!(version = %engine.version(), "policy reloaded on SIGHUP");
                let sync = sync.clone();
                match tokio::task::spawn_blocking(move || sync.reloaded_here()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "cannot record the wanted policy version; other replicas keep theirs")
                    }
                    Err(e) => tracing::error!(error = %e, "policy record task failed"),
                }
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
async fn reload_on_sighup(_policy: Arc<PolicyHandle>, _sync: Arc<PolicySync>) {}

/// The HTTP server: actix-web's own wiring (as `HttpServer::listen` does
/// it), with each new connection's first request head screened first
/// ([`api::head`]), so the two heads the HTTP parser would refuse with an
/// empty body get a `{code, message}` answer instead. Signals are ours
/// (`run_until_stopped`).
fn http_server<F, I, S, B>(
    listener: TcpListener,
    workers: usize,
    grace_secs: u64,
    factory: F,
) -> anyhow::Result<actix_web::dev::Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: actix_service::IntoServiceFactory<S, actix_http::Request>,
    S: actix_service::ServiceFactory<actix_http::Request, Config = actix_web::dev::AppConfig>
        + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<actix_http::Response<B>> + 'static,
    <S::Service as actix_service::Service<actix_http::Request>>::Future: 'static,
    S::Service: 'static,
    B: actix_web::body::MessageBody + 'static,
{
    use actix_service::{fn_service, map_config, ServiceFactoryExt as _};
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(grace_secs);
    if workers > 0 {
        builder = builder.workers(workers);
    }
    let shutdown = builder.graceful_shutdown_signal();
    let builder = builder
        .listen("aupd-http", listener, move || {
            let shutdown = shutdown.clone();
            let http = actix_http::HttpService::build()
                .graceful_shutdown_signal(move || {
                    let signal = shutdown.clone();
                    async move { signal.notified().await }
                })
                .keep_alive(actix_http::KeepAlive::default())
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                .finish(map_config(
                    factory()
                        .into_factory()
                        .map_err(|err| err.into().error_response()),
                    |_| actix_web::dev::AppConfig::default(),
                ));
            fn_service(|io: actix_rt::net::TcpStream| async move {
                let io = api::head::screen(io)
                    .await
                    .map_err(actix_http::error::DispatchError::Io)?;
                let peer = io.peer_addr().ok();
                let _ = io.set_nodelay(true);
                Ok((
                    api::head::JsonParserErrors::new(io),
                    actix_http::Protocol::Http1,
                    peer,
                ))
            })
            .and_then(http)
        })
        .context("starting the HTTP server")?;
    Ok(builder.run())
}
