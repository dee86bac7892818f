//! Reviewers' labels on sampled items.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::sample::SampleId;
use super::tenant::TenantId;

/// A reviewer's answer for one item and one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAnswer {
    /// The item violates the category.
    Violates,
    /// It does not.
    DoesNot,
    /// The reviewer could not tell: kept, but left out of every estimate.
    Unsure,
}

impl ReviewAnswer {
    /// Whether the answer takes a side.
    pub fn is_decisive(self) -> bool {
        !matches!(self, ReviewAnswer::Unsure)
    }
}

/// How the reviewer came to the item.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LabelOrigin {
    /// Served by the review queue (the stratified draw).
    #[default]
    Queue,
    /// Feedback on a verdict seen elsewhere (a wrong flag, a miss).
    Feedback,
}

/// One reviewer's label of one item in one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// The tenant the item was sampled from.
    pub tenant: TenantId,
    /// The sample labelled.
    pub sample: SampleId,
    /// The policy category.
    pub category: String,
    /// Who labelled it (the token holder's name); never shown to tenants.
    pub reviewer: String,
    /// The answer.
    pub answer: ReviewAnswer,
    /// How the reviewer came to the item.
    pub origin: LabelOrigin,
    /// An optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was given (a reviewer's later answer replaces it).
    pub at: Timestamp,
}

/// A tenant's review state: the seed of its draw order, fixed at the first
/// draw so that the queue's order never changes under the reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewState {
    /// The tenant.
    pub tenant: TenantId,
    /// Seed of `draw_key`.
    pub seed: u64,
}
