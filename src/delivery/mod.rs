//! The delivery room: Standard Webhooks signing, the retry schedule, the
//! dispatcher that drains the outbox, endpoint management and action
//! receipts.

pub mod dispatcher;
pub mod endpoints;
pub mod receipts;
pub mod schedule;
pub mod sealing;
pub mod signing;

use std::sync::Arc;

use anyhow::Context;
use jiff::Timestamp;
use serde::Serialize;

use crate::clock::Clock;
use crate::config::DeliverySettings;
use crate::domain::OutboxMessage;
use crate::sampling::guard::{Guard, Resolver};
use crate::service::cases::CaseService;
use crate::store::SharedStore;

/// Why a delivery-room request was not carried out. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No such endpoint, delivery or order.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is malformed.
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The request conflicts with what is stored.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// What conflicts.
        message: String,
    },
    /// The store or a task failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for WebhookError {
    fn from(e: crate::store::StoreError) -> Self {
        WebhookError::Internal(e.into())
    }
}

impl WebhookError {
    /// A 400-class refusal.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        WebhookError::Invalid {
            code,
            message: message.into(),
        }
    }
}

/// Results of the delivery room.
pub type Result<T, E = WebhookError> = std::result::Result<T, E>;

/// Endpoints, deliveries and receipts over the store; shared by the API and
/// the dispatcher.
#[derive(Debug, Clone)]
pub struct Webhooks {
    store: SharedStore,
    settings: DeliverySettings,
    guard: Arc<Guard>,
    clock: Arc<dyn Clock>,
    cases: CaseService,
    wake: Arc<tokio::sync::Notify>,
    key: Arc<sealing::SecretKey>,
}

impl Webhooks {
    /// The delivery room over `store`, checking endpoint URLs with a guard
    /// built from the delivery allow-list and `resolver`, sealing signing
    /// secrets with `key`.
    pub fn new(
        store: SharedStore,
        settings: DeliverySettings,
        resolver: Arc<dyn Resolver>,
        cases: CaseService,
        key: Arc<sealing::SecretKey>,
    ) -> anyhow::Result<Self> {
        let allow = settings
            .allow_nets()
            .map_err(|m| anyhow::anyhow!("delivery.allow_cidrs: {m}"))?;
        Ok(Webhooks {
            clock: cases.clock().clone(),
            store,
            settings,
            guard: Arc::new(Guard::new(allow, resolver)),
            cases,
            wake: Arc::new(tokio::sync::Notify::new()),
            key,
        })
    }

    /// The key that seals endpoints' signing secrets.
    pub fn key(&self) -> &sealing::SecretKey {
        &self.key
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &DeliverySettings {
        &self.settings
    }

    /// The SSRF guard endpoints pass.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// Now, by the service clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Tells the dispatcher to look now (new messages or replays).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs blocking store work off the reactor.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Webhooks) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .context("delivery task failed")?
    }
}

/// The body every delivery POSTs: a versioned envelope around the message's
/// payload.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    /// The event type, e.g. `enforcement.suspend`.
    #[serde(rename = "type")]
    pub event_type: &'a str,
    /// The message id, equal to the `webhook-id` header.
    pub id: &'a str,
    /// When the decision committed (RFC 3339).
    pub timestamp: Timestamp,
    /// Stable key of the action; receipts name it.
    pub idempotency_key: &'a str,
    /// Whether the receiver should only log the order.
    pub dry_run: bool,
    /// The tenant concerned.
    pub tenant: Option<&'a str>,
    /// The event's data (`"version": 1`).
    pub data: &'a serde_json::Value,
}

/// The JSON body of `message` as delivered.
pub fn envelope_body(message: &OutboxMessage, dry_run: bool) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        event_type: &message.event_type,
        id: &message.id,
        timestamp: message.created_at,
        idempotency_key: &message.idempotency_key,
        dry_run,
        tenant: message.tenant.as_ref().map(|t| t.as_str()),
        data: &message.payload,
    })
    .unwrap_or_default()
}
