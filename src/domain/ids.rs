//! Identifiers shared across rooms.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A tenant's stable slug, such as `parlor`: lower-case ASCII letters, digits
/// and inner hyphens, 1 to 63 characters (it appears in URLs and DNS names).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// Why a string is not a tenant slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant id {0:?}: use 1-63 lower-case letters, digits and inner hyphens")]
pub struct InvalidTenantId(pub String);

impl TenantId {
    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidTenantId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let ok = !value.is_empty()
            && value.len() <= 63
            && !value.starts_with('-')
            && !value.ends_with('-')
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(TenantId(value))
        } else {
            Err(InvalidTenantId(value))
        }
    }
}

impl TryFrom<&str> for TenantId {
    type Error = InvalidTenantId;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        TenantId::try_from(value.to_string())
    }
}

impl std::str::FromStr for TenantId {
    type Err = InvalidTenantId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::try_from(s.to_string())
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_slugs_are_lower_case_words_joined_by_hyphens() {
        assert!(TenantId::try_from("parlor").is_ok());
        assert!(TenantId::try_from("news-site-2").is_ok());
        for bad in ["", "Parlor", "-x", "x-", "a b", "a/b", &"x".repeat(64)] {
            assert!(TenantId::try_from(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tenant_ids_refuse_bad_slugs_when_deserialised() {
        let err = serde_json::from_str::<TenantId>("\"Bad Slug\"");
        assert!(err.is_err());
        let ok: TenantId = serde_json::from_str("\"parlor\"").unwrap();
        assert_eq!(ok.as_str(), "parlor");
    }
}
