//! Webhook messages waiting in the outbox, and employee reports.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::ids::TenantId;

/// A webhook message committed together with the decision that caused it.
/// Its `id` is the `webhook-id` every delivery attempt carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// `msg_` + a time-ordered UUID; stable across retries.
    pub id: String,
    /// e.g. `enforcement.suspend`.
    pub event_type: String,
    /// Stable key of the action the message orders.
    pub idempotency_key: String,
    /// The tenant it concerns.
    pub tenant: Option<TenantId>,
    /// The versioned JSON body.
    pub payload: serde_json::Value,
    /// When the decision committed.
    pub created_at: Timestamp,
    /// Only to this endpoint (an operator's test message); `None`: to every
    /// subscribed endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// An employee's report about a tenant's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Id shown to the reporter.
    pub id: String,
    /// The token id of the reporter (never shown to the tenant).
    pub reporter: String,
    /// The tenant reported.
    pub tenant: TenantId,
    /// The policy category the reporter thinks is broken.
    pub category: String,
    /// Where the content is.
    pub urls: Vec<String>,
    /// What the reporter saw.
    pub description: String,
    /// When it was filed.
    pub created_at: Timestamp,
    /// The case it joined or opened.
    pub case: Option<String>,
}
