//! Samples of what tenants publish, the findings among them, and prevalence.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::source::SourceId;
use super::tenant::TenantId;
use super::Severity;

/// A sample id (UUID v7, time-ordered).
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
pub struct SampleId(pub uuid::Uuid);

impl SampleId {
    /// A new id.
    pub fn new() -> Self {
        SampleId(uuid::Uuid::now_v7())
    }
}

impl Default for SampleId {
    fn default() -> Self {
        SampleId::new()
    }
}

impl fmt::Display for SampleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a sample was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SampleOrigin {
    /// Uniformly from a source's fetch; counts towards prevalence.
    Source {
        /// The source.
        source: SourceId,
    },
    /// Uniformly from pushed content; counts towards prevalence.
    Intake,
    /// Fetched on request (a report, a cure check); not uniform, so it does
    /// not count towards prevalence.
    Targeted,
}

impl SampleOrigin {
    /// Whether the sample was drawn at random and so estimates prevalence.
    pub fn is_random(self) -> bool {
        !matches!(self, SampleOrigin::Targeted)
    }
}

/// One category a sample was flagged for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlaggedCategory {
    /// Category id.
    pub category: String,
    /// Severity.
    pub severity: Severity,
    /// Score in [0, 1].
    pub score: f32,
}

/// A matched span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceSpan {
    /// Category id.
    pub category: String,
    /// Detector id.
    pub detector: String,
    /// The matched text.
    pub text: String,
    /// Byte offset of the span's start in the sample's excerpt; absent when
    /// the span lies beyond the excerpt (or for samples recorded before
    /// offsets were kept). The excerpt folds runs of whitespace to one
    /// space, and so does `excerpt[start..end]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<usize>,
    /// Byte offset of the span's end in the excerpt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<usize>,
}

/// The policy's judgement on a sample, as kept with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SampleVerdict {
    /// Content hash of the policy that judged it.
    pub policy_version: String,
    /// Every category's score.
    pub scores: BTreeMap<String, f32>,
    /// Flagged categories, most severe first.
    pub flagged: Vec<FlaggedCategory>,
    /// What the detectors matched.
    pub evidence: Vec<EvidenceSpan>,
}

/// What came of fetching or receiving an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SampleOutcome {
    /// Text was scored.
    Scored {
        /// The verdict.
        verdict: SampleVerdict,
    },
    /// The URL answered 404 or 410: the content is gone.
    Gone {
        /// The HTTP status.
        http_status: u16,
    },
}

/// One sampled item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sample {
    /// Id.
    pub id: SampleId,
    /// Tenant.
    pub tenant: TenantId,
    /// How it was drawn.
    pub origin: SampleOrigin,
    /// Where it was published, if known.
    pub url: Option<String>,
    /// The tenant's id for the item, if known.
    pub item_id: Option<String>,
    /// When aupd fetched or received it.
    pub fetched_at: Timestamp,
    /// SHA-256 (hex) of the item's whitespace-folded text.
    pub content_hash: String,
    /// The start of the text, bounded.
    pub excerpt: String,
    /// The outcome.
    #[serde(flatten)]
    // Described as an open object: client generators cannot combine
    // `allOf` with the variants' `oneOf`; the variants are the `SampleOutcome`
    // schema of the document.
    #[schema(value_type = Object)]
    pub outcome: SampleOutcome,
}

impl Sample {
    /// The verdict, if the sample was scored.
    pub fn verdict(&self) -> Option<&SampleVerdict> {
        match &self.outcome {
            SampleOutcome::Scored { verdict } => Some(verdict),
            SampleOutcome::Gone { .. } => None,
        }
    }
}

/// A sample flagged for a category: evidence against the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// Tenant.
    pub tenant: TenantId,
    /// Category.
    pub category: String,
    /// Severity.
    pub severity: Severity,
    /// The category score.
    pub score: f32,
    /// The sample (also the finding's id).
    pub sample: SampleId,
    /// How the sample was drawn.
    pub origin: SampleOrigin,
    /// Where it was published.
    pub url: Option<String>,
    /// Bounded excerpt.
    pub excerpt: String,
    /// The spans that matched in this category.
    pub evidence: Vec<EvidenceSpan>,
    /// Policy version that produced it.
    pub policy_version: String,
    /// When the sample was taken.
    pub found_at: Timestamp,
}

/// Random samples and flags of a tenant in one hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Tenant.
    pub tenant: TenantId,
    /// Hours since the Unix epoch.
    pub hour: u64,
    /// Random samples scored.
    pub sampled: u64,
    /// Of those, flagged per category.
    pub flagged: BTreeMap<String, u64>,
}

/// Why evidence crossed a category's case rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CrossingReason {
    /// The lower bound of the prevalence interval exceeds the tolerance.
    Prevalence,
    /// One item scored at or above the critical score.
    CriticalItem,
}

/// A raised `evidence.threshold_crossed`, kept so it is raised once per
/// tenant and category until cleared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdAlert {
    /// Tenant.
    pub tenant: TenantId,
    /// Category.
    pub category: String,
    /// Why.
    pub reason: CrossingReason,
    /// When raised.
    pub raised_at: Timestamp,
    /// The figures at the time.
    pub prevalence: Prevalence,
    /// Findings that support it (newest first, bounded).
    pub findings: Vec<SampleId>,
    /// When the category's rule rests on reviewers' labels: the estimate
    /// that crossed (absent when the model's count did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelCrossing>,
}

/// The label-based estimate that raised a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelCrossing {
    /// `labelled` or `corrected`.
    pub estimate: String,
    /// Items of the stratified review sample with a decisive answer.
    pub reviewed: u64,
    /// The estimated rate.
    pub rate: f64,
    /// Lower bound of its 95% interval.
    pub lower: f64,
    /// Upper bound of its 95% interval.
    pub upper: f64,
}

/// Sampled count, flagged count and the 95% Wilson interval of their ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Prevalence {
    /// Random samples in the window.
    pub sampled: u64,
    /// Of those, flagged.
    pub flagged: u64,
    /// `flagged / sampled` (0 when nothing was sampled).
    pub rate: f64,
    /// Lower bound of the 95% interval.
    pub lower: f64,
    /// Upper bound of the 95% interval.
    pub upper: f64,
}

impl Prevalence {
    /// The figures for `flagged` of `sampled`, with a 95% Wilson interval.
    pub fn wilson(flagged: u64, sampled: u64) -> Self {
        if sampled == 0 {
            return Prevalence {
                sampled,
                flagged,
                rate: 0.0,
                lower: 0.0,
                upper: 1.0,
            };
        }
        let z = 1.959_963_984_540_054_f64;
        let n = sampled as f64;
        let p = flagged.min(sampled) as f64 / n;
        let z2 = z * z;
        let denom = 1.0 + z2 / n;
        let centre = (p + z2 / (2.0 * n)) / denom;
        let half = z * ((p * (1.0 - p) / n) + z2 / (4.0 * n * n)).sqrt() / denom;
        // At the edges the bounds are exact; rounding would leave 1e-18.
        let lower = if flagged == 0 {
            0.0
        } else {
            (centre - half).max(0.0)
        };
        let upper = if flagged >= sampled {
            1.0
        } else {
            (centre + half).min(1.0)
        };
        Prevalence {
            sampled,
            flagged,
            rate: p,
            lower,
            upper,
        }
    }
}

/// Push-intake counters of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntakeCounter {
    /// Tenant.
    pub tenant: TenantId,
    /// Start of the current one-hour budget window.
    pub window_start: Timestamp,
    /// Items kept in the current window.
    pub kept_in_window: u32,
    /// Items received, ever.
    pub seen_total: u64,
    /// Items kept, ever.
    pub kept_total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn wilson_interval_matches_published_values() {
        let p = Prevalence::wilson(5, 10);
        assert!(close(p.lower, 0.2366) && close(p.upper, 0.7634), "{p:?}");
        let p = Prevalence::wilson(0, 10);
        assert!(p.lower == 0.0 && close(p.upper, 0.2775), "{p:?}");
        let p = Prevalence::wilson(10, 10);
        assert!(close(p.lower, 0.7225) && p.upper == 1.0, "{p:?}");
        let p = Prevalence::wilson(62, 2000);
        assert!(
            p.lower < 0.031 && p.upper > 0.031 && p.upper - p.lower < 0.02,
            "{p:?}"
        );
    }

    #[test]
    fn nothing_sampled_means_nothing_known() {
        let p = Prevalence::wilson(0, 0);
        assert_eq!((p.lower, p.upper), (0.0, 1.0));
    }
}
