//! Who is calling. Handlers name the caller they accept in their signature;
//! a handler without one is visibly public.

use std::future::{ready, Ready};

use actix_web::{web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

/// The SHA-256 of a token: all aupd keeps of a token.
pub type TokenHash = [u8; 32];

/// Hashes a bearer token for storage and comparison.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Known tokens, held only as hashes.
#[derive(Debug, Default, Clone)]
pub struct TokenRegistry {
    admin: Option<TokenHash>,
}

impl TokenRegistry {
    /// A registry with the bootstrap admin token from the settings.
    pub fn with_admin(admin: Option<&str>) -> Self {
        TokenRegistry {
            admin: admin.map(hash_token),
        }
    }

    /// Whether any token is configured.
    pub fn is_empty(&self) -> bool {
        self.admin.is_none()
    }

    fn is_admin(&self, presented: &TokenHash) -> bool {
        // Compare digests in constant time so timing reveals nothing.
        self.admin
            .as_ref()
            .is_some_and(|known| bool::from(known.ct_eq(presented)))
    }
}

/// A caller holding the bootstrap admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::Internal(anyhow::anyhow!(
                "application state missing"
            ))));
        };
        let Some(token) = bearer(req) else {
            return ready(Err(ApiError::Unauthenticated));
        };
        if state.tokens.is_admin(&hash_token(token)) {
            ready(Ok(Admin))
        } else {
            ready(Err(ApiError::Unauthenticated))
        }
    }
}
