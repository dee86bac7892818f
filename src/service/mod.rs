//! The application's use cases: the one place API handlers and background
//! workers call to change state. Handlers parse and check the shape of a
//! request, call a use case here, and shape the reply; workers claim their
//! work and call the same functions. The rules themselves live here and in
//! the pure rooms these call (`enforcement::decide`, `policy`).
//!
//! - [`cases`]: act on a case, open one (by hand, from evidence, from a
//!   report), fire due deadlines: read, let `enforcement::decide` judge,
//!   commit the transition — case, audit events, deadlines, webhook
//!   messages — in one transaction.
//! - [`reports`]: file an employee report and list a reporter's own.
//! - [`labels`]: record a reviewer's labels on a sampled item and check
//!   the label-based case rules they may cross.
//! - [`tokens`]: create, list and revoke API tokens (the API and the
//!   command line both call it).
//!
//! Tenants, sources and pushed content go through the sampling room's
//! [`crate::sampling::Sampling`], and webhook endpoints through
//! [`crate::delivery::Webhooks`]; both already hold their rules in one
//! place and handlers only call them.

pub mod cases;
pub mod labels;
pub mod reports;
pub mod tokens;

/// Runs blocking store work off the async workers; `what` names it if the
/// task itself dies.
async fn blocking<T, E>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<anyhow::Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| E::from(anyhow::anyhow!("{what} task failed: {e}")))?
}

#[cfg(test)]
mod tests;
