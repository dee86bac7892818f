//! Identifiers shared across rooms.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A tenant's stable slug, such as `parlor`: 3 to 63 characters of `a-z`,
/// `0-9` and single hyphens, starting with a letter and not ending with a
/// hyphen (it appears in URLs, store keys and logs).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let ok_len = (3..=63).contains(&s.len());
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_ends = s.starts_with(|c: char| c.is_ascii_lowercase()) && !s.ends_with('-');
        if ok_len && ok_chars && ok_ends && !s.contains("--") {
            Ok(TenantId(s))
        } else {
            Err(format!(
                "tenant id `{}` must be 3-63 characters of a-z, 0-9 and single hyphens, \
                 start with a letter and not end with a hyphen",
                s.chars().take(80).collect::<String>()
            ))
        }
    }
}

impl TryFrom<&str> for TenantId {
    type Error = String;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        TenantId::try_from(value.to_string())
    }
}

impl std::str::FromStr for TenantId {
    type Err = String;

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
