//! How long each field a caller sends may be. Long enough for any real
//! value, short enough that one request cannot store megabytes in a field
//! (a URL is stored, fetched, signed into webhooks and shown in consoles).
//! Parsers at the edge check these and refuse with the field's name.

/// A URL: webhook endpoints, sources, reported and pushed URLs.
pub const MAX_URL_BYTES: usize = 2048;
/// An identifier: pushed item ids, finding ids, resource ids, owners,
/// category ids, idempotency keys.
pub const MAX_ID_BYTES: usize = 256;
/// The reason given with a case action.
pub const MAX_REASON_BYTES: usize = 4000;
/// A report's description.
pub const MAX_DESCRIPTION_BYTES: usize = 10_000;
/// A tenant's remediation plan field or appeal.
pub const MAX_TENANT_TEXT_BYTES: usize = 20_000;
/// A receipt's `details`, as JSON.
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;

/// A field longer than its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` is longer than {limit} bytes")]
pub struct TooLong {
    /// The field's path in the request (`urls[1]`, `items[0].id`).
    pub field: String,
    /// Its limit in bytes.
    pub limit: usize,
}

/// `value` if it is at most `limit` bytes long, else which field is too long.
pub fn within(field: impl Into<String>, value: &str, limit: usize) -> Result<&str, TooLong> {
    if value.len() <= limit {
        Ok(value)
    } else {
        Err(TooLong {
            field: field.into(),
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_at_the_limit_passes_and_one_byte_more_names_the_field() {
        assert_eq!(
            within("url", &"a".repeat(2048), MAX_URL_BYTES).map(str::len),
            Ok(2048)
        );
        let e = within("items[3].id", &"é".repeat(129), MAX_ID_BYTES).unwrap_err();
        assert_eq!(e.to_string(), "`items[3].id` is longer than 256 bytes");
    }
}
