//! The API token repository ([`TokenRepository`]; sled: `sled_tenants.rs`,
//! PostgreSQL: `pg_tenants.rs`).

use super::Result;
use crate::domain::TokenRecord;

/// What the service reads of API tokens. Writes go into a
/// [`super::Batch`].
pub trait TokenRepository {
    /// The token whose secret hashes to `hash` (hex SHA-256).
    fn token(&self, hash: &str) -> Result<Option<TokenRecord>>;
    /// Every token, by hash.
    fn tokens(&self) -> Result<Vec<TokenRecord>>;
}
