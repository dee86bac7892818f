//! Who is calling, and what their role lets them do. Handlers name the
//! caller they accept in their signature (`Operator`, `CaseReader`,
//! `Reporter`, `TenantCaller`, `Service`, `Admin`); a handler without one is
//! visibly public. No token or an unknown one is 401; a role that may not is 403.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;
use crate::domain::token::{hash_token, TokenHash};
use crate::domain::{Actor, ActorKind, Role, TenantId};
use crate::store::SharedStore;

/// Id of the bootstrap admin token from the settings.
pub const BOOTSTRAP_ID: &str = "bootstrap-admin";

/// Resolves bearer tokens: the bootstrap admin token from the settings, and
/// the tokens in the store (held only as hashes).
#[derive(Debug, Clone)]
pub struct TokenRegistry {
    admin: Option<TokenHash>,
    store: SharedStore,
}

impl TokenRegistry {
    /// A registry over `store` plus an optional bootstrap admin token.
    pub fn new(admin: Option<&str>, store: SharedStore) -> Self {
        TokenRegistry {
            admin: admin.map(hash_token),
            store,
        }
    }

    /// Whether a bootstrap admin token is configured.
    pub fn has_bootstrap(&self) -> bool {
        self.admin.is_some()
    }

    /// The caller a presented token stands for, if any.
    pub fn resolve(&self, presented: &str) -> Result<Option<Caller>, anyhow::Error> {
        let hash = hash_token(presented);
        if let Some(admin) = &self.admin {
            // Compare digests in constant time so timing reveals nothing.
            if bool::from(admin.ct_eq(&hash)) {
                return Ok(Some(Caller {
                    token_id: BOOTSTRAP_ID.into(),
                    name: BOOTSTRAP_ID.into(),
                    role: Role::Admin,
                }));
            }
        }
        let key = hex::encode(hash);
        let Some(record) = self.store.token(&key)? else {
            return Ok(None);
        };
        // The lookup was by hash; check the stored hash in constant time too.
        if !bool::from(record.hash.as_bytes().ct_eq(key.as_bytes())) || record.revoked_at.is_some()
        {
            return Ok(None);
        }
        Ok(Some(Caller {
            token_id: record.id,
            name: record.name,
            role: record.role,
        }))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's public id.
    pub token_id: String,
    /// The person or system holding it; separation of duties compares these.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl Caller {
    /// The actor this caller is in enforcement commands.
    pub fn actor(&self) -> Actor {
        let kind = match &self.role {
            Role::Admin | Role::Operator => ActorKind::Operator,
            Role::Approver => ActorKind::Approver,
            // A reviewer reaches no enforcement command (its extractors
            // refuse every case route); it acts as the least of the kinds.
            Role::Reporter | Role::Reviewer => ActorKind::Reporter,
            Role::Tenant(_) => ActorKind::Tenant,
            Role::Service => ActorKind::Service,
        };
        let id = match &self.role {
            Role::Tenant(t) => t.as_str().to_string(),
            _ => self.name.clone(),
        };
        Actor::new(kind, id)
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

type CallerFuture = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

fn authenticate(req: &HttpRequest) -> CallerFuture {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let token = bearer(req);
    Box::pin(async move {
        let Some(state) = state else {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "application state missing"
            )));
        };
        let Some(token) = token else {
            return Err(ApiError::Unauthenticated);
        };
        let registry = state.tokens.clone();
        let resolved = web::block(move || registry.resolve(&token))
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("token lookup task failed: {e}")))?
            .map_err(ApiError::Internal)?;
        resolved.ok_or(ApiError::Unauthenticated)
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = CallerFuture;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        authenticate(req)
    }
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $what:literal, $allowed:pat) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

            fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
                let caller = authenticate(req);
                Box::pin(async move {
                    let caller = caller.await?;
                    if matches!(caller.role, $allowed) {
                        Ok($name(caller))
                    } else {
                        Err(ApiError::Forbidden($what))
                    }
                })
            }
        }
    };
}

role_extractor!(
    /// The admin role: tokens and the policy.
    Admin, "manage tokens or the policy", Role::Admin);
role_extractor!(
    /// Abuse-team operators (and admins): tenants, sources, cases, deliveries.
    Operator, "do operator work", Role::Admin | Role::Operator);
role_extractor!(
    /// Anyone who works cases: operators, admins and approvers.
    CaseReader, "read or act on cases", Role::Admin | Role::Operator | Role::Approver);
role_extractor!(
    /// Employees filing reports.
    Reporter, "file or read reports", Role::Reporter);
role_extractor!(
    /// Who may label sampled items: reviewers, operators and admins.
    Reviewer, "review sampled items", Role::Admin | Role::Operator | Role::Reviewer);
role_extractor!(
    /// Provider systems: content intake and action receipts.
    Service, "act as a provider system", Role::Admin | Role::Service);
role_extractor!(
    /// Who may push mirrored content: provider systems, operators, admins.
    Intake, "push tenant content", Role::Admin | Role::Operator | Role::Service);
role_extractor!(
    /// Who may score text directly.
    Scorer, "score text", Role::Admin | Role::Operator | Role::Service);

/// A tenant's dashboard token, scoped to one tenant.
#[derive(Debug, Clone)]
pub struct TenantCaller(pub TenantId, pub Caller);

impl FromRequest for TenantCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let caller = authenticate(req);
        Box::pin(async move {
            let caller = caller.await?;
            match &caller.role {
                Role::Tenant(t) => Ok(TenantCaller(t.clone(), caller.clone())),
                _ => Err(ApiError::Forbidden(
                    "use the tenant routes (they need a tenant token)",
                )),
            }
        })
    }
}
