//! Creating, listing and revoking API tokens. A token's secret is shown
//! once, when it is made; the store keeps only its SHA-256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore;

use crate::domain::token::hash_token;
use crate::domain::{Role, TokenRecord};
use crate::store::{Batch, SharedStore};

/// A token just made: the secret is here and nowhere else.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NewToken {
    /// Public id.
    pub id: String,
    /// The bearer secret, shown once.
    pub token: String,
    /// Who holds it.
    pub name: String,
    /// What it may do: `admin`, `operator`, `approver`, `reporter`,
    /// `reviewer`, `service` or `tenant:<id>`.
    #[schema(value_type = String, example = "operator")]
    pub role: Role,
}

/// Why a token could not be made or revoked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The name is empty or too long.
    #[error("a token name is 1 to 100 printable characters")]
    BadName,
    /// No token has that id.
    #[error("no token with id {0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Makes a token for `name` with `role`, stores its hash with an audit
/// event naming who made it, and returns the secret once.
pub fn create(
    store: &SharedStore,
    role: Role,
    name: &str,
    by: &str,
) -> Result<NewToken, TokenError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(TokenError::BadName);
    }
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = format!("aupd_{}", B64.encode(secret));
    let id = format!("tok_{}", uuid::Uuid::now_v7().simple());
    let record = TokenRecord {
        id: id.clone(),
        hash: hex::encode(hash_token(&token)),
        name: name.to_string(),
        role: role.clone(),
        created_at: jiff::Timestamp::now(),
        revoked_at: None,
    };
    let mut batch = Batch::new();
    batch.put(&record)?;
    batch.event(
        "token.created",
        tenant_of(&role),
        serde_json::json!({ "token_id": id, "name": name, "role": role, "by": by }),
    )?;
    store.commit(batch)?;
    store.flush()?;
    Ok(NewToken {
        id,
        token,
        name: name.to_string(),
        role,
    })
}

/// Every token, newest first, without secrets.
pub fn list(store: &SharedStore) -> Result<Vec<TokenRecord>, TokenError> {
    let mut all = store.tokens()?;
    all.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    Ok(all)
}

/// Revokes the token with public id `id`; it stops working at once.
pub fn revoke(store: &SharedStore, id: &str, by: &str) -> Result<TokenRecord, TokenError> {
    let mut record = list(store)?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| TokenError::NotFound(id.to_string()))?;
    if record.revoked_at.is_none() {
        record.revoked_at = Some(jiff::Timestamp::now());
        let mut batch = Batch::new();
        batch.put(&record)?;
        batch.event(
            "token.revoked",
            tenant_of(&record.role),
            serde_json::json!({ "token_id": id, "by": by }),
        )?;
        store.commit(batch)?;
        store.flush()?;
    }
    Ok(record)
}

fn tenant_of(role: &Role) -> Option<&str> {
    match role {
        Role::Tenant(t) => Some(t.as_str()),
        _ => None,
    }
}
