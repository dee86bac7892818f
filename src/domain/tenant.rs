//! Tenants: the customers whose published content aupd samples.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::case::{CaseId, CaseState};
pub use super::ids::TenantId;

/// How closely a tenant is watched; scales every sampling budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RiskTier {
    /// Half the budget.
    Low,
    /// The budget as configured.
    #[default]
    Standard,
    /// Twice the budget.
    Elevated,
    /// Four times the budget.
    High,
}

impl RiskTier {
    /// Factor applied to sampling budgets.
    pub fn budget_factor(self) -> f64 {
        match self {
            RiskTier::Low => 0.5,
            RiskTier::Standard => 1.0,
            RiskTier::Elevated => 2.0,
            RiskTier::High => 4.0,
        }
    }

    /// `budget` scaled by the tier, at least one item.
    pub fn scale(self, budget: u32) -> u32 {
        ((f64::from(budget) * self.budget_factor()).round() as u32).max(1)
    }
}

/// Whether aupd samples the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Sampled.
    #[default]
    Active,
    /// Registered but not sampled.
    Paused,
    /// No longer a customer; kept for the record.
    Offboarded,
    /// Suspended by an enforcement case (set by the case, never by hand;
    /// lifted when the case is reinstated). Not sampled.
    Suspended,
}

/// The enforcement that last changed a tenant's status: the case that
/// suspended it, or reinstated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantEnforcement {
    /// The case.
    pub case: CaseId,
    /// What the case did: `suspended` or `reinstated`.
    pub state: CaseState,
    /// When.
    pub at: Timestamp,
    /// The status the tenant had before the suspension; it returns to it
    /// when the last suspending case is reinstated.
    pub status_before: TenantStatus,
}

/// Someone to reach at the tenant about abuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name or team.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

impl Contact {
    /// Checks the name and address look usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("contact name must be 1-200 characters".into());
        }
        let (local, domain) = self.email.split_once('@').unwrap_or(("", ""));
        if local.is_empty()
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || self.email.len() > 254
            || self.email.chars().any(char::is_whitespace)
        {
            return Err(format!("`{}` is not an e-mail address", self.email));
        }
        Ok(())
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    /// Slug.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Abuse contacts.
    pub contacts: Vec<Contact>,
    /// Risk tier.
    pub risk_tier: RiskTier,
    /// Status.
    pub status: TenantStatus,
    /// Push-intake items kept per hour before the tier factor.
    pub intake_budget_per_hour: u32,
    /// The case that last suspended or reinstated the tenant, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<TenantEnforcement>,
    /// When registered.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_lowercase_slugs() {
        for ok in ["parlor", "acme-forum", "t42", "abc"] {
            assert!(TenantId::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "Parlor",
            "-x1",
            "x1-",
            "a--b",
            "9lives",
            "a b",
            "a/b",
            "é-tenant",
        ] {
            assert!(TenantId::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert!(TenantId::try_from("a".repeat(64)).is_err());
    }

    #[test]
    fn risk_tier_scales_budgets() {
        assert_eq!(RiskTier::Low.scale(100), 50);
        assert_eq!(RiskTier::Standard.scale(100), 100);
        assert_eq!(RiskTier::High.scale(100), 400);
        assert_eq!(RiskTier::Low.scale(1), 1);
    }

    #[test]
    fn contacts_need_a_name_and_an_address() {
        let c = |n: &str, e: &str| Contact {
            name: n.into(),
            email: e.into(),
        };
        assert!(c("Abuse desk", "abuse@parlor.example").validate().is_ok());
        assert!(c("", "abuse@parlor.example").validate().is_err());
        assert!(c("x", "abuse").validate().is_err());
        assert!(c("x", "abuse@localhost").validate().is_err());
        assert!(c("x", "a b@x.example").validate().is_err());
    }
}
