//! Webhook endpoints, the deliveries of outbox messages to them, action
//! receipts and the operator alerts delivery raises. Plain records.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Every event type aupd sends, and the one an operator's test sends.
pub const EVENT_TYPES: [&str; 10] = [
    "case.opened",
    "case.notice_sent",
    "case.deadline_approaching",
    "case.deadline_missed",
    "suspension.proposed",
    "suspension.approved",
    "enforcement.suspend",
    "enforcement.reinstate",
    "case.closed",
    "webhook.test",
];

/// A secret kept in a record: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

/// A previous signing secret, still valid until `until` after a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    /// The old `whsec_…` secret.
    pub secret: SecretText,
    /// When it stops being used.
    pub until: Timestamp,
}

/// A receiver of signed webhooks registered by an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `ep_` + a time-ordered UUID.
    pub id: String,
    /// Where messages are POSTed.
    pub url: String,
    /// Event types it wants; empty means all.
    pub event_types: Vec<String>,
    /// What it is, for operators.
    pub description: String,
    /// Mark `enforcement.*` orders to it as `"dry_run": true`.
    pub dry_run: bool,
    /// Whether new messages fan out to it.
    pub enabled: bool,
    /// Why aupd disabled it (410, failing too long), if it did.
    pub disabled_reason: Option<String>,
    /// The current signing secret.
    pub secret: SecretText,
    /// The secret before the last rotation, during the overlap window.
    pub previous: Option<PreviousSecret>,
    /// Since when every attempt to it has failed.
    pub failing_since: Option<Timestamp>,
    /// Bumped by every change, for optimistic concurrency.
    pub version: u64,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Endpoint {
    /// Whether messages of `event_type` go to this endpoint.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }

    /// The secrets to sign with at `now`: the current one, then the previous
    /// one while its overlap window lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&SecretText> {
        let mut out = vec![&self.secret];
        if let Some(p) = self.previous.as_ref().filter(|p| p.until > now) {
            out.push(&p.secret);
        }
        out
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answered it.
    Delivered,
    /// No attempts left (or the endpoint is gone or disabled); replayable.
    Dead,
}

impl DeliveryStatus {
    /// The snake_case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// When it started.
    pub at: Timestamp,
    /// The response status, if a response came.
    pub status: Option<u16>,
    /// Milliseconds from request to response (or failure).
    pub latency_ms: u64,
    /// What went wrong, if it failed.
    pub error: Option<String>,
    /// The replica that made it (`cluster.replica_id`); absent on attempts
    /// recorded before replicas were named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
}

/// A sender's hold on a delivery while it attempts it. The delivery's
/// due-index entry moves to `until`, so no other sender starts it; the
/// outcome is recorded only if the delivery still carries this lease
/// (`token`). If the sender dies, the delivery comes due again at `until`
/// and another sender takes it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendLease {
    /// The replica attempting it.
    pub holder: String,
    /// Random, new for every lease: what the outcome's precondition checks.
    pub token: String,
    /// When another sender may take it over.
    pub until: Timestamp,
}

/// One outbox message on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `dlv_` + a time-ordered UUID.
    pub id: String,
    /// The outbox message (its id is the `webhook-id`).
    pub message_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The message's event type.
    pub event_type: String,
    /// Whether the body says `"dry_run": true`; fixed at fan-out.
    pub dry_run: bool,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// Attempts since the last replay (drives the retry schedule).
    pub round_attempts: u32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<Timestamp>,
    /// When the message committed.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Set while a sender attempts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<SendLease>,
}

impl Delivery {
    /// Where its entry in the due-time index sits: at the end of its send
    /// lease while one is held, else at its next attempt (none once it is
    /// delivered or dead).
    pub fn due_at(&self) -> Option<Timestamp> {
        match &self.lease {
            Some(lease) => Some(lease.until),
            None => self.next_attempt_at,
        }
    }
}

/// What links an order's idempotency key to its case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderRef {
    /// The key the message carried.
    pub idempotency_key: String,
    /// The case.
    pub case_id: String,
    /// The message's event type.
    pub event_type: String,
    /// The message.
    pub message_id: String,
}

/// What the workflow system says it did with an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptOutcome {
    /// Carried out.
    Executed,
    /// Could not be carried out.
    Failed,
}

/// An action receipt, kept by idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order's idempotency key.
    pub idempotency_key: String,
    /// The case the order belongs to.
    pub case_id: String,
    /// The order's event type.
    pub event_type: String,
    /// What happened.
    pub outcome: ReceiptOutcome,
    /// The executor's details, as sent.
    pub details: serde_json::Value,
    /// Who sent it (token name).
    pub received_from: String,
    /// When it arrived.
    pub received_at: Timestamp,
}

/// Something an operator must look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorAlert {
    /// `alr_` + a time-ordered UUID.
    pub id: String,
    /// `endpoint_disabled`, `receipt_failed` or `receipt_overdue`.
    pub kind: String,
    /// The endpoint, case or order it concerns.
    pub subject: String,
    /// What happened, in words.
    pub message: String,
    /// When it was raised.
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(previous_until: Option<Timestamp>) -> Endpoint {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        Endpoint {
            id: "ep_1".into(),
            url: "https://hooks.example/aup".into(),
            event_types: vec!["enforcement.suspend".into()],
            description: String::new(),
            dry_run: false,
            enabled: true,
            disabled_reason: None,
            secret: SecretText("whsec_new".into()),
            previous: previous_until.map(|until| PreviousSecret {
                secret: SecretText("whsec_old".into()),
                until,
            }),
            failing_since: None,
            version: 1,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn the_previous_secret_signs_only_within_its_window_and_secrets_never_print() {
        let now = Timestamp::from_second(1_800_000_100).unwrap();
        let later = Timestamp::from_second(1_800_000_200).unwrap();
        let e = endpoint(Some(later));
        assert_eq!(e.signing_secrets(now).len(), 2);
        assert_eq!(e.signing_secrets(later).len(), 1);
        assert!(!format!("{e:?}").contains("whsec_"));
    }

    #[test]
    fn an_endpoint_with_event_types_wants_only_those() {
        let mut e = endpoint(None);
        assert!(e.wants("enforcement.suspend"));
        assert!(!e.wants("case.opened"));
        e.event_types.clear();
        assert!(e.wants("case.opened"));
    }
}
