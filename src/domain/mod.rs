//! Ids and records shared by every room. No I/O here.

pub mod case;
pub mod events;
pub mod ids;
pub mod limits;
pub mod outbox;
pub mod review;
pub mod sample;
pub mod source;
pub mod statement;
pub mod tenant;
pub mod token;
pub mod transparency;
pub mod webhook;

pub use case::*;
pub use events::DomainEvent;
pub use ids::*;
pub use outbox::{OutboxMessage, Report};
pub use review::{Label, LabelOrigin, ReviewAnswer, ReviewState};
pub use sample::{
    CrossingReason, EvidenceSpan, Finding, FlaggedCategory, IntakeCounter, LabelCrossing,
    Prevalence, Sample, SampleId, SampleOrigin, SampleOutcome, SampleVerdict, Tally,
    ThresholdAlert,
};
pub use source::{Health, JsonPointers, Source, SourceId, SourceKind, SourceState};
pub use tenant::{Contact, RiskTier, Tenant, TenantEnforcement, TenantStatus};
pub use token::{Role, TokenRecord};
pub use webhook::{
    Attempt, Delivery, DeliveryStatus, Endpoint, OperatorAlert, OrderRef, PreviousSecret, Receipt,
    ReceiptOutcome, SecretText, SendLease,
};

use serde::{Deserialize, Serialize};

/// How serious a policy category is; drives the escalation ladder.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Handle now (e.g. incitement to violence).
    Critical,
    /// Handle within a day.
    High,
    /// Handle within days.
    Medium,
    /// Handle when convenient.
    Low,
}

impl Severity {
    /// The lowercase name used in files and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}
