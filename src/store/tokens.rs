//! The API token repository.

use super::{Result, Store};
use crate::domain::TokenRecord;

/// The token whose secret hashes to `hash` (hex SHA-256).
pub fn get(store: &dyn Store, hash: &str) -> Result<Option<TokenRecord>> {
    store.get::<TokenRecord>(hash.as_bytes())
}

/// Every token, by hash.
pub fn list(store: &dyn Store) -> Result<Vec<TokenRecord>> {
    store.scan::<TokenRecord>(b"", usize::MAX, false)
}
