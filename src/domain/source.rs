//! Sources: where aupd samples a tenant's published content from.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use url::Url;

use super::tenant::{RiskTier, TenantId};

/// A source id (UUID v7, time-ordered).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct SourceId(pub uuid::Uuid);

impl SourceId {
    /// A new id.
    pub fn new() -> Self {
        SourceId(uuid::Uuid::now_v7())
    }
}

impl Default for SourceId {
    fn default() -> Self {
        SourceId::new()
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// JSON pointers (RFC 6901) that find posts in a JSON feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JsonPointers {
    /// The array of posts in the document (`""` for a top-level array).
    pub items: String,
    /// The post's text, relative to the post.
    pub text: String,
    /// The post's URL, relative to the post.
    pub url: Option<String>,
    /// The post's id, relative to the post.
    pub id: Option<String>,
}

/// What a source is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceKind {
    /// A URL answering JSON posts.
    JsonFeed {
        /// Where posts are in the document.
        pointers: JsonPointers,
    },
    /// An RSS 2.0 feed.
    Rss,
    /// An Atom feed.
    Atom,
    /// One HTML page.
    Html,
    /// A sitemap whose pages are sampled.
    Sitemap,
}

impl SourceKind {
    /// The kind's name in the API.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::JsonFeed { .. } => "json_feed",
            SourceKind::Rss => "rss",
            SourceKind::Atom => "atom",
            SourceKind::Html => "html",
            SourceKind::Sitemap => "sitemap",
        }
    }
}

/// A tenant's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Source {
    /// Id.
    pub id: SourceId,
    /// Owner.
    pub tenant: TenantId,
    /// Kind and reading instructions.
    #[serde(flatten)]
    // Described as an open object: client generators cannot combine
    // `allOf` with the variants' `oneOf`; the variants are the `SourceKind`
    // schema of the document.
    #[schema(value_type = Object)]
    pub kind: SourceKind,
    /// Where to fetch (http or https).
    #[schema(value_type = String, format = "uri")]
    pub url: Url,
    /// Items sampled per hour before the tenant's tier factor.
    pub budget_per_hour: u32,
    /// Seconds between fetches.
    pub interval_secs: u64,
    /// Whether the sampler visits it.
    pub enabled: bool,
    /// When registered.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl Source {
    /// Items per hour after the tenant's tier factor.
    pub fn effective_budget(&self, tier: RiskTier) -> u32 {
        tier.scale(self.budget_per_hour)
    }
}

/// Whether fetching a source works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not fetched yet.
    Unknown,
    /// The last fetch worked.
    Healthy,
    /// Failing for a while (see `last_error`).
    Unhealthy,
}

/// A source's schedule, budget use and health. Kept apart from `Source` so
/// the sampler and an operator's edit never overwrite each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceState {
    /// Owner.
    pub tenant: TenantId,
    /// Source.
    pub source: SourceId,
    /// When the sampler should fetch next.
    pub next_due: Timestamp,
    /// Start of the current one-hour budget window.
    pub window_start: Timestamp,
    /// Items sampled in the current window.
    pub taken_in_window: u32,
    /// Failed fetches in a row.
    pub consecutive_failures: u32,
    /// Health.
    pub health: Health,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// When the last fetch ended.
    pub last_fetch_at: Option<Timestamp>,
    /// Items seen over all fetches.
    pub items_seen: u64,
    /// Items sampled over all fetches.
    pub samples_taken: u64,
    /// The replica visiting the source right now; its claim lasts until
    /// `next_due`, after which another replica may take the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
}

impl SourceState {
    /// The state of a source that was just registered: due now.
    pub fn new(tenant: TenantId, source: SourceId, now: Timestamp) -> Self {
        SourceState {
            tenant,
            source,
            next_due: now,
            window_start: now,
            taken_in_window: 0,
            consecutive_failures: 0,
            health: Health::Unknown,
            last_error: None,
            last_fetch_at: None,
            items_seen: 0,
            samples_taken: 0,
            claimed_by: None,
        }
    }
}
