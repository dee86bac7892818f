//! Typed settings: built-in defaults, then an optional TOML file, then
//! `AUPD__SECTION__KEY` environment variables. Validated once at start-up;
//! nothing reads configuration files after that.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A secret value: never printed by `Debug`, `Display` or serialisation.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("********")
    }
}

/// A database URL: a secret, since it may hold a password. `Debug` and
/// serialisation show it with the password masked (see [`redact_url`]).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(value: impl Into<String>) -> Self {
        DatabaseUrl(value.into())
    }

    /// The URL itself, password included; call only to connect.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password masked, to show.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// A database URL fit to print: the password replaced by `***`. A
/// `key=value` connection string has its `password=` masked; anything that
/// cannot be read either way is masked whole.
pub fn redact_url(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("***"));
        }
        let mut query: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if query.iter().any(|(k, _)| k == "password") {
            for (k, v) in &mut query {
                if k == "password" {
                    *v = "***".into();
                }
            }
            parsed.query_pairs_mut().clear().extend_pairs(query);
        }
        return parsed.to_string();
    }
    if url.contains('=') && !url.contains("://") {
        return url
            .split_whitespace()
            .map(|part| match part.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => part.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    "***".into()
}

/// All settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// HTTP server.
    pub server: ServerSettings,
    /// The store: embedded sled or PostgreSQL.
    pub store: StoreSettings,
    /// Policy files.
    pub policy: PolicySettings,
    /// API authentication.
    pub auth: AuthSettings,
    /// Logging.
    pub log: LogSettings,
    /// Sampling tenants' content.
    pub sampling: SamplingSettings,
    /// Cases, deadlines and reports.
    pub enforcement: EnforcementSettings,
    /// Webhook delivery.
    pub delivery: DeliverySettings,
    /// Several replicas on one shared store.
    pub cluster: ClusterSettings,
}

/// Settings for running several replicas on one shared store: who this
/// replica is, how long the work leases last and how often the wanted
/// policy version is looked up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// This replica's id, unique among the replicas; unset: host name,
    /// process id and a random suffix.
    pub replica_id: Option<String>,
    /// Milliseconds a work lease lasts without renewal: how long the work of
    /// a replica that died waits before another takes it over.
    pub lease_ms: u64,
    /// Milliseconds between looks at the policy version the cluster wants.
    pub policy_poll_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            replica_id: None,
            lease_ms: 15_000,
            policy_poll_ms: 2_000,
        }
    }
}

impl ClusterSettings {
    /// The configured replica id, or one made of the host name, the process
    /// id and a random suffix (new at each call: call it once at start).
    pub fn resolve_replica_id(&self) -> String {
        if let Some(id) = &self.replica_id {
            return id.clone();
        }
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "aupd".to_string());
        format!(
            "{host}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    }
}

/// Webhook delivery settings: the dispatcher, its limits and the retry pace.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// Whether the dispatcher runs.
    pub enabled: bool,
    /// Mark every `enforcement.*` order `"dry_run": true` (receivers log
    /// instead of acting).
    pub dry_run: bool,
    /// Longest pause, in milliseconds, between the dispatcher's looks.
    pub poll_ms: u64,
    /// Seconds one attempt may take.
    pub timeout_secs: u64,
    /// Requests in flight to one endpoint, for the whole cluster: each
    /// replica that sends takes an equal share (at least one).
    pub per_endpoint_concurrency: usize,
    /// Requests in flight overall, per replica.
    pub max_in_flight: usize,
    /// Multiplies the retry schedule (5 s … 10 h); below 1 only in tests.
    pub retry_scale: f64,
    /// Seconds the previous secret keeps signing after a rotation.
    pub rotation_overlap_secs: u64,
    /// Seconds an endpoint may fail without a success before it is disabled.
    pub disable_after_failing_secs: u64,
    /// CIDR ranges endpoints may live in although private (a workflow system
    /// on the internal network; tests open loopback). Metadata stays closed.
    pub allow_cidrs: Vec<String>,
    /// `User-Agent` of deliveries.
    pub user_agent: String,
    /// Days a finished webhook message and its deliveries are kept before
    /// the dispatcher removes them (0: keep them forever).
    pub retention_days: u64,
    /// Key (64 hex digits) that seals endpoints' signing secrets in the
    /// store. Prefer `secret_key_file`; without either, aupd creates
    /// `webhook-secrets.key` in the store directory.
    pub secret_key: Option<Secret>,
    /// File holding that key (a mounted Kubernetes Secret).
    pub secret_key_file: Option<PathBuf>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            enabled: true,
            dry_run: false,
            poll_ms: 100,
            timeout_secs: 15,
            per_endpoint_concurrency: 8,
            max_in_flight: 256,
            retry_scale: 1.0,
            rotation_overlap_secs: 24 * 3600,
            disable_after_failing_secs: 5 * 24 * 3600,
            allow_cidrs: Vec::new(),
            user_agent: concat!("aupd-webhooks/", env!("CARGO_PKG_VERSION")).into(),
            retention_days: 90,
            secret_key: None,
            secret_key_file: None,
        }
    }
}

impl DeliverySettings {
    /// The allow-list as networks.
    pub fn allow_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        SamplingSettings {
            allow_cidrs: self.allow_cidrs.clone(),
            ..SamplingSettings::default()
        }
        .allow_nets()
    }
}

/// Sampling settings: the sampler worker, outbound fetch limits, the SSRF
/// allow-list, push intake and the prevalence window.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingSettings {
    /// Whether the background sampler runs.
    pub enabled: bool,
    /// Milliseconds between the sampler's looks for due sources.
    pub tick_ms: u64,
    /// Sources fetched at once.
    pub max_concurrent_fetches: usize,
    /// Requests in flight per host, per replica.
    pub per_host_concurrency: usize,
    /// Least milliseconds between two requests to one host (across every
    /// replica sharing a PostgreSQL store).
    pub per_host_min_interval_ms: u64,
    /// Seconds a fetch may take.
    pub fetch_timeout_secs: u64,
    /// Largest response body read, in bytes.
    pub max_response_bytes: usize,
    /// Redirect hops followed.
    pub max_redirects: usize,
    /// Longest backoff after failures, in seconds.
    pub max_backoff_secs: u64,
    /// Failed fetches in a row before a source is marked unhealthy.
    pub unhealthy_after: u32,
    /// `User-Agent` of outbound fetches.
    pub user_agent: String,
    /// CIDR ranges the SSRF guard lets through (e.g. a tenant on a private
    /// interconnect; tests open loopback). Metadata addresses stay closed.
    pub allow_cidrs: Vec<String>,
    /// Sliding prevalence window in seconds (whole hours).
    pub window_secs: u64,
    /// Characters of text kept as a sample's excerpt.
    pub excerpt_chars: usize,
    /// Most items in one push-intake batch.
    pub max_batch_items: usize,
    /// Share of pushed items kept (Bernoulli), within the tenant's budget.
    pub intake_sample_rate: f64,
    /// Pages fetched per sitemap visit at most.
    pub max_sitemap_pages: usize,
    /// Seed for sampling decisions (tests and benchmarks); random if unset.
    pub rng_seed: Option<u64>,
    /// Days a sample (excerpt, verdict, findings, content hash) is kept
    /// unless a case or a raised alert cites it; `0` keeps every sample.
    pub retention_days: u64,
    /// Items of a tenant's samples drawn for human review (stratified by
    /// score band). More labels narrow the label estimate's interval; each
    /// costs a reviewer's time.
    pub review_sample_size: u64,
}

impl Default for SamplingSettings {
    fn default() -> Self {
        SamplingSettings {
            enabled: true,
            tick_ms: 1000,
            max_concurrent_fetches: 8,
            per_host_concurrency: 2,
            per_host_min_interval_ms: 1000,
            fetch_timeout_secs: 15,
            max_response_bytes: 4 * 1024 * 1024,
            max_redirects: 5,
            max_backoff_secs: 6 * 3600,
            unhealthy_after: 3,
            user_agent: concat!(
                "aupd/",
                env!("CARGO_PKG_VERSION"),
                " (acceptable-use sampling by your cloud provider)"
            )
            .into(),
            allow_cidrs: Vec::new(),
            window_secs: 7 * 24 * 3600,
            excerpt_chars: 280,
            max_batch_items: 1000,
            intake_sample_rate: 0.05,
            max_sitemap_pages: 200,
            rng_seed: None,
            retention_days: 90,
            review_sample_size: crate::review::DEFAULT_SAMPLE_SIZE,
        }
    }
}

impl SamplingSettings {
    /// The allow-list as networks.
    pub fn allow_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.allow_cidrs
            .iter()
            .map(|c| {
                c.parse::<ipnet::IpNet>()
                    .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("`{c}` is not a CIDR like 10.0.0.0/8"))
            })
            .collect()
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub bind: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// HTTP worker threads (0 = one per core).
    pub workers: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
}

/// Store settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Directory of the embedded store (and, with either backend, of the
    /// webhook secret key file aupd creates when none is configured).
    pub path: PathBuf,
    /// Page cache of the embedded store in MiB; bounds its memory.
    pub cache_mb: u64,
    /// Which backend keeps the data.
    pub backend: StoreBackend,
    /// The PostgreSQL database (with `backend = "postgres"`). A secret.
    pub database_url: Option<DatabaseUrl>,
    /// File holding the database URL; wins over `database_url`.
    pub database_url_file: Option<PathBuf>,
    /// Most connections to PostgreSQL one replica keeps open.
    pub pool_size: usize,
}

/// Where the store keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// sled in `store.path`: one process at a time.
    Sled,
    /// A PostgreSQL database shared by several replicas.
    Postgres,
}

/// Policy settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// Directory holding `*.toml` policy files and `models/`.
    pub dir: PathBuf,
}

/// Enforcement settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnforcementSettings {
    /// Whether the deadline ticker and evidence intake run.
    pub enabled: bool,
    /// Longest pause, in milliseconds, between the deadline ticker's looks.
    pub tick_ms: u64,
    /// Reports one reporter may file per hour.
    pub reports_per_hour: u32,
}

impl Default for EnforcementSettings {
    fn default() -> Self {
        EnforcementSettings {
            enabled: true,
            tick_ms: 1000,
            reports_per_hour: 30,
        }
    }
}

/// Authentication settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Bootstrap admin bearer token. Prefer `admin_token_file`.
    pub admin_token: Option<Secret>,
    /// File holding the bootstrap admin token (a mounted Kubernetes Secret).
    pub admin_token_file: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// Filter in `tracing` syntax; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            workers: 0,
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            path: PathBuf::from("aupd-data"),
            cache_mb: 128,
            backend: StoreBackend::Sled,
            database_url: None,
            database_url_file: None,
            pool_size: 16,
        }
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            dir: PathBuf::from("policies"),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Auto,
            level: "info".into(),
        }
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file or an override has a bad key or value.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the problem is (file and line, or the environment variable).
        origin: String,
        /// What is wrong.
        message: String,
    },
}

const ENV_PREFIX: &str = "AUPD__";

impl Settings {
    /// Loads defaults, then `file` (if any), then `AUPD__…` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = toml::Table::new();
        let mut origin = "defaults".to_string();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Invalid {
                    origin: with_line(path, &text, e.span()),
                    message: e.message().to_string(),
                })?;
            // Check the file alone first so its errors name the file and line.
            if let Err(e) = toml::from_str::<Settings>(&text) {
                return Err(ConfigError::Invalid {
                    origin: with_line(path, &text, e.span()),
                    message: e.message().to_string(),
                });
            }
            origin = path.display().to_string();
        }
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        overrides.sort();
        for (key, value) in &overrides {
            let path: Vec<String> = key[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            if path.iter().any(String::is_empty) {
                return Err(ConfigError::Invalid {
                    origin: key.clone(),
                    message: "empty key segment (use AUPD__SECTION__KEY)".into(),
                });
            }
            set_path(&mut table, &path, parse_env_value(value)).map_err(|message| {
                ConfigError::Invalid {
                    origin: key.clone(),
                    message,
                }
            })?;
            if let Err(e) = toml::Value::Table(table.clone()).try_into::<Settings>() {
                // A list setting given as plain text: a comma-separated list.
                let as_list = toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(|v| toml::Value::String(v.to_string()))
                        .collect(),
                );
                let mut retry = table.clone();
                let list_ok = e.message().contains("expected a sequence")
                    && set_path(&mut retry, &path, as_list).is_ok()
                    && toml::Value::Table(retry.clone())
                        .try_into::<Settings>()
                        .is_ok();
                if !list_ok {
                    return Err(ConfigError::Invalid {
                        origin: key.clone(),
                        message: e.message().to_string(),
                    });
                }
                table = retry;
            }
        }
        let mut settings: Settings =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: origin.clone(),
                    message: e.message().to_string(),
                })?;
        settings.resolve_files()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The settings as TOML, secrets masked; unset optional settings are
    /// left out.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Every setting's dotted key (`server.bind`) with its value as JSON
    /// (`null` when unset), in file order: what the documentation lists.
    pub fn dotted(&self) -> Vec<(String, serde_json::Value)> {
        fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&key, v, out);
                    }
                }
                other => out.push((prefix.to_string(), other.clone())),
            }
        }
        let mut out = Vec::new();
        if let Ok(value) = serde_json::to_value(self) {
            walk("", &value, &mut out);
        }
        out
    }

    /// Reads secrets given as `*_file` paths; a file wins over the value.
    fn resolve_files(&mut self) -> Result<(), ConfigError> {
        fn read(file: &Option<PathBuf>, value: &mut Option<Secret>) -> Result<(), ConfigError> {
            if let Some(path) = file {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                *value = Some(Secret::new(text.trim()));
            }
            Ok(())
        }
        read(&self.auth.admin_token_file, &mut self.auth.admin_token)?;
        if let Some(path) = &self.store.database_url_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            self.store.database_url = Some(DatabaseUrl::new(text.trim()));
        }
        read(
            &self.delivery.secret_key_file,
            &mut self.delivery.secret_key,
        )
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: key.to_string(),
            message,
        };
        if self.server.bind.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "server.bind",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080",
                    self.server.bind
                ),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid(
                "server.max_body_bytes",
                "must be at least 1024".into(),
            ));
        }
        if self.store.cache_mb < 8 {
            return Err(invalid("store.cache_mb", "must be at least 8".into()));
        }
        if self.store.backend == StoreBackend::Postgres {
            let Some(url) = &self.store.database_url else {
                return Err(invalid(
                    "store.database_url",
                    "required with store.backend = \"postgres\" (or store.database_url_file)"
                        .into(),
                ));
            };
            if let Err(e) = url.expose().parse::<tokio_postgres::Config>() {
                return Err(invalid(
                    "store.database_url",
                    format!("`{}` is not a PostgreSQL URL: {e}", url.redacted()),
                ));
            }
            if !(1..=1024).contains(&self.store.pool_size) {
                return Err(invalid(
                    "store.pool_size",
                    "must be between 1 and 1024".into(),
                ));
            }
        }
        if let Some(key) = &self.delivery.secret_key {
            if let Err(message) = crate::delivery::sealing::SecretKey::parse(key.expose()) {
                return Err(invalid("delivery.secret_key", message));
            }
        }
        let sampling = &self.sampling;
        if let Err(message) = sampling.allow_nets() {
            return Err(invalid("sampling.allow_cidrs", message));
        }
        if sampling.window_secs < 3600 || !sampling.window_secs.is_multiple_of(3600) {
            return Err(invalid(
                "sampling.window_secs",
                "must be a whole number of hours (a multiple of 3600)".into(),
            ));
        }
        if !(10..=100_000).contains(&sampling.review_sample_size) {
            return Err(invalid(
                "sampling.review_sample_size",
                "must be between 10 and 100000 items".into(),
            ));
        }
        if !(sampling.intake_sample_rate > 0.0 && sampling.intake_sample_rate <= 1.0) {
            return Err(invalid(
                "sampling.intake_sample_rate",
                "must be in (0, 1]".into(),
            ));
        }
        for (key, value) in [
            ("sampling.tick_ms", sampling.tick_ms as usize),
            (
                "sampling.max_concurrent_fetches",
                sampling.max_concurrent_fetches,
            ),
            (
                "sampling.per_host_concurrency",
                sampling.per_host_concurrency,
            ),
            (
                "sampling.fetch_timeout_secs",
                sampling.fetch_timeout_secs as usize,
            ),
            ("sampling.max_response_bytes", sampling.max_response_bytes),
            ("sampling.max_batch_items", sampling.max_batch_items),
            (
                "sampling.unhealthy_after",
                sampling.unhealthy_after as usize,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if sampling.user_agent.trim().is_empty() || !sampling.user_agent.contains("aupd") {
            return Err(invalid(
                "sampling.user_agent",
                "must name aupd so tenants know who is fetching".into(),
            ));
        }
        let delivery = &self.delivery;
        if let Err(message) = delivery.allow_nets() {
            return Err(invalid("delivery.allow_cidrs", message));
        }
        if !(delivery.retry_scale > 0.0 && delivery.retry_scale <= 100.0) {
            return Err(invalid(
                "delivery.retry_scale",
                "must be in (0, 100]".into(),
            ));
        }
        for (key, value) in [
            ("delivery.poll_ms", delivery.poll_ms),
            ("delivery.timeout_secs", delivery.timeout_secs),
            (
                "delivery.per_endpoint_concurrency",
                delivery.per_endpoint_concurrency as u64,
            ),
            ("delivery.max_in_flight", delivery.max_in_flight as u64),
            (
                "delivery.disable_after_failing_secs",
                delivery.disable_after_failing_secs,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if !delivery.user_agent.contains("aupd") {
            return Err(invalid(
                "delivery.user_agent",
                "must name aupd so receivers know who is calling".into(),
            ));
        }
        let cluster = &self.cluster;
        if let Some(id) = &cluster.replica_id {
            if id.trim().is_empty() || id.len() > 200 {
                return Err(invalid(
                    "cluster.replica_id",
                    "must be 1 to 200 characters".into(),
                ));
            }
        }
        if cluster.lease_ms < 1000 {
            return Err(invalid("cluster.lease_ms", "must be at least 1000".into()));
        }
        if cluster.policy_poll_ms == 0 {
            return Err(invalid(
                "cluster.policy_poll_ms",
                "must be at least 1".into(),
            ));
        }
        if let Some(token) = &self.auth.admin_token {
            if token.expose().len() < 16 {
                return Err(invalid(
                    "auth.admin_token",
                    "must be at least 16 characters".into(),
                ));
            }
        }
        Ok(())
    }
}

fn with_line(path: &Path, text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text.as_bytes()[..span.start.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("{}:{line}", path.display())
        }
        None => path.display().to_string(),
    }
}

/// Environment values are TOML literals when they parse as numbers or
/// booleans, strings otherwise; a list setting takes comma-separated text.
fn parse_env_value(value: &str) -> toml::Value {
    if let Ok(b) = value.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(i) = value.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(f) = value.parse::<f64>() {
        if value.contains('.') {
            return toml::Value::Float(f);
        }
    }
    toml::Value::String(value.to_string())
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is not a section"))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_cluster_section_reads_from_the_environment_and_refuses_a_short_lease() {
        let s = Settings::load(
            None,
            env(&[
                ("AUPD__CLUSTER__REPLICA_ID", "aupd-0"),
                ("AUPD__CLUSTER__LEASE_MS", "5000"),
            ]),
        )
        .unwrap();
        assert_eq!(s.cluster.resolve_replica_id(), "aupd-0");
        assert_eq!(s.cluster.lease_ms, 5000);
        let derived = Settings::default().cluster;
        assert_ne!(
            derived.resolve_replica_id(),
            derived.resolve_replica_id(),
            "two processes on one host must not share a derived id"
        );
        let err = Settings::load(None, env(&[("AUPD__CLUSTER__LEASE_MS", "10")])).unwrap_err();
        assert!(err.to_string().contains("cluster.lease_ms"), "{err}");
    }

    #[test]
    fn defaults_bind_loopback_and_keep_data_locally() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert_eq!(s.store.path, PathBuf::from("aupd-data"));
        assert_eq!(s.policy.dir, PathBuf::from("policies"));
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let s = Settings::load(
            None,
            env(&[
                ("AUPD__SERVER__BIND", "0.0.0.0:9000"),
                ("AUPD__SERVER__MAX_BODY_BYTES", "2048"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.bind, "0.0.0.0:9000");
        assert_eq!(s.server.max_body_bytes, 2048);
    }

    #[test]
    fn unknown_environment_key_is_named_in_the_error() {
        let err = Settings::load(None, env(&[("AUPD__SERVER__BINDD", "x")])).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("AUPD__SERVER__BINDD:"), "{text}");
        assert!(text.contains("unknown field `bindd`"), "{text}");
    }

    #[test]
    fn unknown_file_key_reports_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aupd.toml");
        std::fs::write(&path, "[server]\nbind = \"127.0.0.1:1\"\nport = 3\n").unwrap();
        let err = Settings::load(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("aupd.toml:3"), "{err}");
        assert!(err.contains("unknown field `port`"), "{err}");
    }

    #[test]
    fn list_settings_take_comma_separated_environment_values() {
        let s = Settings::load(
            None,
            env(&[("AUPD__SAMPLING__ALLOW_CIDRS", "127.0.0.0/8, ::1/128")]),
        )
        .unwrap();
        assert_eq!(s.sampling.allow_cidrs, vec!["127.0.0.0/8", "::1/128"]);
    }

    #[test]
    fn bad_bind_address_is_refused() {
        let err = Settings::load(None, env(&[("AUPD__SERVER__BIND", "localhost")])).unwrap_err();
        assert!(err.to_string().contains("server.bind"));
    }

    #[test]
    fn store_cache_is_bounded_and_configurable() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.store.cache_mb, 128);
        let s = Settings::load(None, env(&[("AUPD__STORE__CACHE_MB", "64")])).unwrap();
        assert_eq!(s.store.cache_mb, 64);
        let err = Settings::load(None, env(&[("AUPD__STORE__CACHE_MB", "1")])).unwrap_err();
        assert!(err.to_string().contains("store.cache_mb"), "{err}");
    }

    #[test]
    fn sampling_defaults_are_polite_and_closed() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(s.sampling.allow_cidrs.is_empty());
        assert_eq!(s.sampling.window_secs, 7 * 24 * 3600);
        assert!(s.sampling.user_agent.starts_with("aupd/"));
        assert_eq!(s.sampling.per_host_concurrency, 2);
    }

    #[test]
    fn sampling_settings_come_from_the_environment_and_are_checked() {
        let s = Settings::load(
            None,
            env(&[
                ("AUPD__SAMPLING__TICK_MS", "50"),
                ("AUPD__SAMPLING__INTAKE_SAMPLE_RATE", "0.5"),
            ]),
        )
        .unwrap();
        assert_eq!(s.sampling.tick_ms, 50);
        assert_eq!(s.sampling.intake_sample_rate, 0.5);
        let err = Settings::load(None, env(&[("AUPD__SAMPLING__WINDOW_SECS", "100")])).unwrap_err();
        assert!(err.to_string().contains("sampling.window_secs"), "{err}");
        let err =
            Settings::load(None, env(&[("AUPD__SAMPLING__REVIEW_SAMPLE_SIZE", "0")])).unwrap_err();
        assert!(
            err.to_string().contains("sampling.review_sample_size"),
            "{err}"
        );
        let err = Settings::load(None, env(&[("AUPD__SAMPLING__USER_AGENT", "curl")])).unwrap_err();
        assert!(err.to_string().contains("sampling.user_agent"), "{err}");
    }

    #[test]
    fn allow_list_entries_must_be_networks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aupd.toml");
        std::fs::write(
            &path,
            "[sampling]\nallow_cidrs = [\"127.0.0.0/8\", \"::1\"]\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path), env(&[])).unwrap();
        assert_eq!(s.sampling.allow_nets().unwrap().len(), 2);
        std::fs::write(&path, "[sampling]\nallow_cidrs = [\"localhost\"]\n").unwrap();
        let err = Settings::load(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sampling.allow_cidrs"), "{err}");
    }

    /// The rows of the settings table in docs/configuration.md: key → default cell.
    fn documented_settings() -> std::collections::BTreeMap<String, String> {
        let doc = include_str!("../docs/configuration.md");
        let table = doc
            .split("## Every setting")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap();
        table
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_string(), cells[2].to_string())
            })
            .collect()
    }

    #[test]
    fn every_setting_is_documented_with_its_default() {
        let documented = documented_settings();
        let defaults = Settings::default().dotted();
        assert!(defaults.len() > 20, "{defaults:?}");
        for (key, value) in &defaults {
            let cell = documented
                .get(key)
                .unwrap_or_else(|| panic!("`{key}` is missing from docs/configuration.md"));
            if value.is_null() {
                assert_eq!(cell, "none", "{key}");
                continue;
            }
            let literal = cell.trim_matches('`');
            let parsed: toml::Table = format!("v = {literal}").parse().unwrap();
            let doc_value = serde_json::to_value(&parsed["v"]).unwrap();
            assert_eq!(
                &doc_value, value,
                "default of `{key}` in docs/configuration.md"
            );
        }
        for key in documented.keys() {
            assert!(
                defaults.iter().any(|(k, _)| k == key),
                "docs/configuration.md lists `{key}`, which is not a setting"
            );
        }
    }

    #[test]
    fn every_secret_setting_has_a_file_form() {
        let mut s = Settings::default();
        s.auth.admin_token = Some(Secret::new("x"));
        let keys = s.dotted();
        let secrets: Vec<&String> = keys
            .iter()
            .filter(|(_, v)| v == "********")
            .map(|(k, _)| k)
            .collect();
        assert!(!secrets.is_empty());
        for key in secrets {
            let file_key = format!("{key}_file");
            assert!(
                keys.iter().any(|(k, _)| *k == file_key),
                "{key} has no {file_key}"
            );
        }
    }

    #[test]
    fn a_secret_from_the_environment_never_reaches_the_printed_settings() {
        let s = Settings::load(
            None,
            env(&[("AUPD__AUTH__ADMIN_TOKEN", "env-secret-admin-token-1234")]),
        )
        .unwrap();
        let printed = s.to_toml().unwrap();
        assert!(printed.contains("admin_token = \"********\""), "{printed}");
        assert!(!printed.contains("env-secret"));
        assert!(!format!("{s:?}").contains("env-secret"));
        assert!(!format!("{:?}", s.dotted()).contains("env-secret"));
    }

    #[test]
    fn the_postgres_backend_needs_a_url_whose_password_is_never_printed() {
        let err = Settings::load(None, env(&[("AUPD__STORE__BACKEND", "postgres")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.database_url"), "{err}");
        let err = Settings::load(None, env(&[("AUPD__STORE__BACKEND", "mysql")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("AUPD__STORE__BACKEND"), "{err}");
        let s = Settings::load(
            None,
            env(&[
                ("AUPD__STORE__BACKEND", "postgres"),
                (
                    "AUPD__STORE__DATABASE_URL",
                    "postgres://aupd:pg-pass-4711@db.internal:5432/aupd",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.store.backend, StoreBackend::Postgres);
        assert_eq!(s.store.pool_size, 16);
        assert_eq!(
            s.store.database_url.as_ref().unwrap().expose(),
            "postgres://aupd:pg-pass-4711@db.internal:5432/aupd"
        );
        let printed = s.to_toml().unwrap();
        assert!(
            printed.contains("database_url = \"postgres://aupd:***@db.internal:5432/aupd\""),
            "{printed}"
        );
        for shown in [printed, format!("{s:?}"), format!("{:?}", s.dotted())] {
            assert!(!shown.contains("pg-pass-4711"), "{shown}");
        }
        let err = Settings::load(
            None,
            env(&[
                ("AUPD__STORE__BACKEND", "postgres"),
                ("AUPD__STORE__DATABASE_URL", "postgres://u:pg-pass-4711@h/d"),
                ("AUPD__STORE__POOL_SIZE", "0"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("store.pool_size") && !err.contains("pg-pass"),
            "{err}"
        );
    }

    #[test]
    fn redacting_masks_passwords_in_every_form() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db?sslmode=disable"),
            "postgres://u:***@h:5432/db?sslmode=disable"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert!(!redact_url("postgres://u@h/db?password=secret").contains("secret"));
        assert_eq!(
            redact_url("host=h user=u password=secret dbname=d"),
            "host=h user=u password=*** dbname=d"
        );
        assert_eq!(redact_url("not a url: secret"), "***");
    }

    #[test]
    fn admin_token_can_come_from_a_file_and_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-admin-token-value\n").unwrap();
        let s = Settings::load(
            None,
            env(&[("AUPD__AUTH__ADMIN_TOKEN_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(
            s.auth.admin_token.as_ref().unwrap().expose(),
            "s3cret-admin-token-value"
        );
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(!toml::to_string(&s).unwrap().contains("s3cret"));
    }
}
