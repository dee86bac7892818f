//! API tokens and the roles they carry.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ids::TenantId;

/// What a token may do. Least privilege: each role reaches only the routes
/// its audience needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Role {
    /// Manages tokens and the policy; may do everything an operator may.
    Admin,
    /// Abuse-team member: tenants, sources, cases and their actions, deliveries.
    Operator,
    /// Reads cases and approves suspensions (never on cases they reported).
    Approver,
    /// An employee who reports tenants; sees only their own reports.
    Reporter,
    /// Labels sampled items through the review routes, and nothing else.
    Reviewer,
    /// A tenant's dashboard: its own cases, plans and appeals, nothing else.
    Tenant(TenantId),
    /// A provider system: pushes content, confirms actions with receipts.
    Service,
}

/// Why a role string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?}: use admin, operator, approver, reporter, reviewer, service or tenant:<id>"
)]
pub struct InvalidRole(pub String);

impl std::str::FromStr for Role {
    type Err = InvalidRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            "approver" => Role::Approver,
            "reporter" => Role::Reporter,
            "reviewer" => Role::Reviewer,
            "service" => Role::Service,
            _ => match s.strip_prefix("tenant:") {
                Some(id) => {
                    Role::Tenant(TenantId::try_from(id).map_err(|_| InvalidRole(s.to_string()))?)
                }
                None => return Err(InvalidRole(s.to_string())),
            },
        })
    }
}

impl TryFrom<String> for Role {
    type Error = InvalidRole;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Role> for String {
    fn from(r: Role) -> String {
        r.to_string()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Admin => f.write_str("admin"),
            Role::Operator => f.write_str("operator"),
            Role::Approver => f.write_str("approver"),
            Role::Reporter => f.write_str("reporter"),
            Role::Reviewer => f.write_str("reviewer"),
            Role::Service => f.write_str("service"),
            Role::Tenant(id) => write!(f, "tenant:{}", id.as_str()),
        }
    }
}

/// A token as stored: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public id, shown in lists and the audit log (never the secret).
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    /// Who or what holds it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: jiff::Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<jiff::Timestamp>,
}

/// A bearer token's SHA-256: all the store keeps of it, and what a
/// presented token is compared with.
pub type TokenHash = [u8; 32];

/// Hashes a bearer token for storage and comparison.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print_the_same() {
        for s in [
            "admin",
            "operator",
            "approver",
            "reporter",
            "reviewer",
            "service",
            "tenant:parlor",
        ] {
            let r: Role = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
        }
        assert_eq!(
            "tenant:parlor".parse::<Role>().unwrap(),
            Role::Tenant(TenantId::try_from("parlor").unwrap())
        );
    }

    #[test]
    fn unknown_roles_and_bad_tenant_ids_are_refused() {
        assert!("root".parse::<Role>().is_err());
        assert!("tenant:".parse::<Role>().is_err());
        assert!("tenant:Bad Id".parse::<Role>().is_err());
    }
}
