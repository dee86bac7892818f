//! Polite, guarded HTTP fetching: every hop checked by the SSRF guard,
//! redirects followed by hand, per-host concurrency and spacing, timeouts
//! and a response size cap.
//!
//! The spacing between two fetches to one host holds across replicas when
//! the store is shared (PostgreSQL): each start is reserved in the store.
//! On sled, one process, it is kept in memory. The per-host concurrency
//! is per process either way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use super::guard::{Guard, GuardedDns, Refusal};
use crate::store::{rate, SharedStore};

/// Limits for outbound fetches.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Largest body read.
    pub max_bytes: usize,
    /// Redirect hops followed.
    pub max_redirects: usize,
    /// Requests in flight per host.
    pub per_host_concurrency: usize,
    /// Least time between two requests to one host.
    pub per_host_min_interval: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
}

/// A fetched document.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL after redirects.
    pub url: Url,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a fetch failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The guard refused a hop.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// 404 or 410.
    #[error("gone: HTTP {0}")]
    Gone(u16),
    /// 429 or 503 with a `Retry-After`.
    #[error("rate limited: HTTP {status}")]
    RateLimited {
        /// The status.
        status: u16,
        /// How long the site asked us to wait.
        retry_after: Option<Duration>,
    },
    /// Another non-success status.
    #[error("HTTP {0}")]
    Status(u16),
    /// Larger than the cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// Timed out.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connection or protocol failure.
    #[error("transport: {0}")]
    Transport(String),
}

#[derive(Debug)]
struct HostSlot {
    permits: Arc<Semaphore>,
    next_start: tokio::sync::Mutex<Instant>,
}

/// Host slots kept before the idle ones are dropped.
const MAX_IDLE_HOSTS: usize = 1024;
/// How much longer than the request timeout a fetch place in the store is
/// held if its fetcher never gives it back.
const PLACE_MARGIN: Duration = Duration::from_secs(5);

/// Runs the store call `f` for `host` off the async workers; a failure is a
/// transport error naming `what`.
async fn on_store<T: Send + 'static>(
    store: &SharedStore,
    host: &str,
    what: &'static str,
    f: impl FnOnce(&dyn crate::store::Store, &str) -> crate::store::Result<T> + Send + 'static,
) -> Result<T, FetchError> {
    let (store, host) = (store.clone(), host.to_string());
    tokio::task::spawn_blocking(move || f(store.as_ref(), &host))
        .await
        .map_err(|e| FetchError::Transport(format!("{what}: {e}")))?
        .map_err(|e| FetchError::Transport(format!("{what}: {e}")))
}

/// The fetcher shared by the sampler and targeted sampling.
#[derive(Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    guard: Arc<Guard>,
    limits: FetchLimits,
    hosts: Mutex<HashMap<String, Arc<HostSlot>>>,
    /// Where fetch starts are reserved and a host's places taken when
    /// several processes share the store; `None`: both kept in memory.
    shared: Option<SharedStore>,
}

impl Fetcher {
    /// A fetcher whose client resolves only through `guard`.
    pub fn new(guard: Arc<Guard>, limits: FetchLimits) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(limits.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedDns(guard.clone())))
            .no_proxy()
            .connect_timeout(limits.timeout)
            .timeout(limits.timeout)
            .pool_max_idle_per_host(limits.per_host_concurrency.max(1))
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
        Ok(Fetcher {
            client,
            guard,
            limits,
            hosts: Mutex::new(HashMap::new()),
            shared: None,
        })
    }

    /// Spaces fetches to one host, and holds its concurrency, through
    /// `store`, so that both hold across every process sharing it. A store
    /// that serves one process only (sled) is not used: memory does the
    /// same job there.
    pub fn paced_through(mut self, store: SharedStore) -> Self {
        if !store.single_process() {
            self.shared = Some(store);
        }
        self
    }

    /// The guard every fetch goes through.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    fn host_key(url: &Url) -> String {
        format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    fn slot(&self, key: &str) -> Arc<HostSlot> {
        let mut hosts = match self.hosts.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        if hosts.len() >= MAX_IDLE_HOSTS {
            // Targeted sampling may visit any number of hosts: forget those
            // with no fetch running and no spacing still to keep.
            let now = Instant::now();
            hosts.retain(|_, s| {
                Arc::strong_count(s) > 1 || s.next_start.try_lock().map_or(true, |t| *t > now)
            });
        }
        hosts
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(HostSlot {
                    permits: Arc::new(Semaphore::new(self.limits.per_host_concurrency.max(1))),
                    next_start: tokio::sync::Mutex::new(Instant::now()),
                })
            })
            .clone()
    }

    /// GETs `url`, following redirects by hand and checking every hop.
    #[tracing::instrument(skip_all, fields(url = %url))]
    pub async fn get(&self, url: &Url) -> Result<Fetched, FetchError> {
        let mut current = url.clone();
        for _ in 0..=self.limits.max_redirects {
            self.guard.check_url(&current).await?;
            let response = self.send_politely(&current).await?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| Refusal::BadRedirect("missing".into()))?;
                current = current
                    .join(location)
                    .map_err(|e| Refusal::BadRedirect(format!("{location}: {e}")))?;
                continue;
            }
            return self.read(current, response).await;
        }
        Err(Refusal::TooManyRedirects(self.limits.max_redirects).into())
    }

    async fn send_politely(&self, url: &Url) -> Result<reqwest::Response, FetchError> {
        let host = Self::host_key(url);
        let slot = self.slot(&host);
        let _permit = slot
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| FetchError::Transport("host limiter closed".into()))?;
        // Across replicas, the host's places are in the store too: this
        // process's permit alone would let every replica fetch at once.
        let place = match &self.shared {
            Some(store) => Some(self.take_place(store, &host).await?),
            None => None,
        };
        let response = self.send_paced(url, &host, &slot).await;
        if let (Some(store), Some(place)) = (&self.shared, place) {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = rate::give_back_host_place(store.as_ref(), &place) {
                    tracing::warn!(host = %place.host, error = %e, "giving back a fetch place failed; it frees itself when its time runs out");
                }
            });
        }
        response
    }

    /// Takes one of the host's places in the store, waiting while every
    /// place is taken by a fetch under way on some replica.
    async fn take_place(
        &self,
        store: &SharedStore,
        host: &str,
    ) -> Result<rate::HostFetch, FetchError> {
        let places = self.limits.per_host_concurrency.max(1);
        // Held at most as long as the fetch may take: waiting for its start
        // behind the other places' (one interval each), the request, and a
        // margin.
        let pacing = self.limits.per_host_min_interval * places as u32;
        let hold = SignedDuration::try_from(self.limits.timeout + pacing + PLACE_MARGIN)
            .unwrap_or(SignedDuration::from_secs(60));
        loop {
            let now = Timestamp::now();
            let taken = on_store(store, host, "taking a fetch place", move |store, host| {
                rate::take_host_place(store, host, places, now + hold, now)
            })
            .await?;
            if let Some(place) = taken {
                return Ok(place);
            }
            let wait = rand::random::<u64>() % 40 + 20;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    /// Waits for the host's next start (in the store across replicas, in
    /// memory otherwise), then sends.
    async fn send_paced(
        &self,
        url: &Url,
        host: &str,
        slot: &HostSlot,
    ) -> Result<reqwest::Response, FetchError> {
        let interval = self.limits.per_host_min_interval;
        match &self.shared {
            Some(store) if !interval.is_zero() => {
                let start = on_store(
                    store,
                    host,
                    "reserving a fetch start",
                    move |store, host| {
                        rate::reserve_fetch_start(store, host, interval, Timestamp::now())
                    },
                )
                .await?;
                let wait = Timestamp::now().duration_until(start);
                if wait.is_positive() {
                    tokio::time::sleep(wait.unsigned_abs()).await;
                }
            }
            _ => {
                let mut next = slot.next_start.lock().await;
                let now = Instant::now();
                if *next > now {
                    tokio::time::sleep_until(*next).await;
                }
                *next = Instant::now() + interval;
            }
        }
        self.client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.transport(e))
    }

    fn transport(&self, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            return FetchError::Timeout(self.limits.timeout);
        }
        // A refusal at connect time (the guarded resolver) keeps its reason.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(r) = err.downcast_ref::<Refusal>() {
                return FetchError::Refused(r.clone());
            }
            source = err.source();
        }
        FetchError::Transport(format!("{e:#}"))
    }

    async fn read(&self, url: Url, mut response: reqwest::Response) -> Result<Fetched, FetchError> {
        let status = response.status().as_u16();
        match status {
            200..=299 => {}
            404 | 410 => return Err(FetchError::Gone(status)),
            429 | 503 => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                return Err(FetchError::RateLimited {
                    status,
                    retry_after,
                });
            }
            _ => return Err(FetchError::Status(status)),
        }
        let max = self.limits.max_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(FetchError::TooLarge(max));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > max {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            url,
            content_type,
            body,
        })
    }
}
