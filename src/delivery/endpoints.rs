//! Endpoint management (register, change, rotate, remove, test) and the
//! operator's view of deliveries (list, replay).

use jiff::{SignedDuration, Timestamp};
use url::Url;

use super::sealing::SecretKey;
use super::signing::SigningSecret;
use super::{Result, WebhookError, Webhooks};
use crate::domain::webhook::EVENT_TYPES;
use crate::domain::{
    Delivery, DeliveryStatus, Endpoint, OperatorAlert, OutboxMessage, PreviousSecret, SecretText,
};
use crate::store::delivery::{new_id, put_delivery, queue_message};
use crate::store::meta::{self, Upgrade};
use crate::store::{Batch, StoreError};

/// Longest description.
const MAX_DESCRIPTION: usize = 500;

/// A validated registration.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEndpoint {
    /// Where to POST.
    pub url: Url,
    /// Event types wanted (empty: all).
    pub event_types: Vec<String>,
    /// For operators.
    pub description: String,
    /// Mark enforcement orders as dry runs.
    pub dry_run: bool,
}

/// A validated change; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointPatch {
    /// New URL.
    pub url: Option<Url>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// New description.
    pub description: Option<String>,
    /// New dry-run switch.
    pub dry_run: Option<bool>,
    /// Enable (clearing aupd's reason for disabling) or disable.
    pub enabled: Option<bool>,
}

/// Checks an endpoint URL's shape: http(s), a host, no credentials, and not
/// an address the guard refuses (the full check runs at every delivery).
pub fn parse_url(webhooks: &Webhooks, raw: &str) -> Result<Url> {
    use crate::domain::limits::{within, MAX_URL_BYTES};
    within("url", raw, MAX_URL_BYTES)
        .map_err(|e| WebhookError::invalid("too_long", e.to_string()))?;
    let url = Url::parse(raw.trim())
        .map_err(|e| WebhookError::invalid("invalid_url", format!("`{raw}` is not a URL: {e}")))?;
    webhooks
        .guard()
        .check_url_shape(&url)
        .map_err(|e| WebhookError::invalid("invalid_url", format!("`{raw}`: {e}")))?;
    Ok(url)
}

/// Checks event types against the ones aupd sends; sorted and unique.
pub fn parse_event_types(types: Vec<String>) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(types.len());
    for t in types {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(WebhookError::invalid(
                "invalid_event_type",
                format!(
                    "unknown event type `{t}`; known: {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Checks a description's length.
pub fn parse_description(d: String) -> Result<String> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(WebhookError::invalid(
            "invalid_description",
            format!("`description` must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(d.trim().to_string())
}

/// Which deliveries a list or bulk replay selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only to this endpoint.
    pub endpoint: Option<String>,
    /// Only messages about this case (their idempotency keys start with it).
    pub case: Option<String>,
}

impl DeliveryFilter {
    fn matches(&self, d: &Delivery) -> bool {
        self.status.is_none_or(|s| s == d.status)
            && self.endpoint.as_ref().is_none_or(|e| e == &d.endpoint_id)
    }
}

impl Webhooks {
    /// Registers an endpoint with a fresh secret; returns it and the secret,
    /// which is never shown again.
    pub async fn create_endpoint(&self, new: NewEndpoint) -> Result<(Endpoint, SigningSecret)> {
        let secret = SigningSecret::generate();
        let now = self.now();
        let id = new_id("ep");
        let endpoint = Endpoint {
            secret: SecretText(self.key.seal(&id, &secret.expose())),
            id,
            url: new.url.to_string(),
            event_types: new.event_types,
            description: new.description,
            dry_run: new.dry_run,
            enabled: true,
            disabled_reason: None,
            previous: None,
            failing_since: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut batch = Batch::new();
        batch.put(&endpoint)?;
        batch.event("webhook.endpoint_created", None, endpoint_event(&endpoint))?;
        crate::store::commit_durably(&self.store, batch).await?;
        tracing::info!(endpoint = %endpoint.id, url = %endpoint.url, "webhook endpoint registered");
        Ok((endpoint, secret))
    }

    /// Every endpoint, oldest first.
    pub async fn list_endpoints(&self) -> Result<Vec<Endpoint>> {
        self.blocking(|w| Ok(w.store.endpoints()?)).await
    }

    /// One endpoint.
    pub async fn get_endpoint(&self, id: &str) -> Result<Endpoint> {
        let id = id.to_string();
        self.blocking(move |w| {
            w.store
                .endpoint(&id)?
                .ok_or(WebhookError::NotFound("webhook endpoint"))
        })
        .await
    }

    /// Applies `change` to an endpoint with optimistic concurrency (the
    /// dispatcher also writes endpoints), recording `event`.
    pub async fn change_endpoint(
        &self,
        id: &str,
        event: &'static str,
        change: impl Fn(&mut Endpoint, Timestamp) -> Result<()> + Send + 'static,
    ) -> Result<Endpoint> {
        let id = id.to_string();
        self.blocking(move |w| {
            for _ in 0..8 {
                let (endpoint, version) = w.store.endpoint_versioned(&id)?;
                let mut endpoint = endpoint.ok_or(WebhookError::NotFound("webhook endpoint"))?;
                let now = w.now();
                change(&mut endpoint, now)?;
                endpoint.version += 1;
                endpoint.updated_at = now;
                let mut batch = Batch::new();
                batch.expect_unchanged(&version);
                batch.put(&endpoint)?;
                batch.event(event, None, endpoint_event(&endpoint))?;
                match w.store.commit(batch) {
                    Ok(_) => {
                        w.store.flush()?;
                        return Ok(endpoint);
                    }
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(WebhookError::Internal(anyhow::anyhow!(
                "the endpoint kept changing; try again"
            )))
        })
        .await
    }

    /// Changes an endpoint's settings.
    pub async fn update_endpoint(&self, id: &str, patch: EndpointPatch) -> Result<Endpoint> {
        self.change_endpoint(id, "webhook.endpoint_updated", move |e, _| {
            if let Some(url) = &patch.url {
                e.url = url.to_string();
            }
            if let Some(t) = &patch.event_types {
                e.event_types = t.clone();
            }
            if let Some(d) = &patch.description {
                e.description = d.clone();
            }
            if let Some(d) = patch.dry_run {
                e.dry_run = d;
            }
            if let Some(enabled) = patch.enabled {
                e.enabled = enabled;
                if enabled {
                    e.disabled_reason = None;
                    e.failing_since = None;
                }
            }
            Ok(())
        })
        .await
    }

    /// Seals the signing secrets that a store written before sealing holds
    /// in plain text, each endpoint in one transaction with a
    /// `webhook.secret_sealed` event. Blocks; run at start-up. Returns how
    /// many endpoints changed.
    pub fn seal_plain_secrets(&self) -> Result<usize> {
        let mut sealed = 0;
        let seal = |text: &mut SecretText, id: &str| {
            let plain = !SecretKey::is_sealed(&text.0);
            if plain {
                *text = SecretText(self.key.seal(id, &text.0));
            }
            plain
        };
        meta::run_once(&self.store, Upgrade::WebhookSecretsSealed, || {
            for (mut e, version) in self.store.endpoints_versioned()? {
                let id = e.id.clone();
                let current = seal(&mut e.secret, &id);
                let previous = e
                    .previous
                    .as_mut()
                    .is_some_and(|p| seal(&mut p.secret, &id));
                if !(current || previous) {
                    continue;
                }
                let mut batch = Batch::new();
                batch.expect_unchanged(&version);
                batch.put(&e)?;
                batch.event(
                    "webhook.secret_sealed",
                    None,
                    serde_json::json!({"endpoint": e.id}),
                )?;
                self.store.commit(batch)?;
                sealed += 1;
            }
            Ok(())
        })?;
        if sealed > 0 {
            tracing::info!(
                endpoints = sealed,
                "sealed webhook secrets stored in plain text by an older aupd"
            );
        }
        Ok(sealed)
    }

    /// Makes a new secret; the old one keeps signing for the overlap window.
    pub async fn rotate_secret(&self, id: &str) -> Result<(Endpoint, SigningSecret)> {
        let secret = SigningSecret::generate();
        let new = SecretText(self.key.seal(id, &secret.expose()));
        let overlap = SignedDuration::from_secs(
            i64::try_from(self.settings.rotation_overlap_secs).unwrap_or(i64::MAX / 2),
        );
        let endpoint = self
            .change_endpoint(id, "webhook.secret_rotated", move |e, now| {
                let until = now.checked_add(overlap).unwrap_or(now);
                let old = std::mem::replace(&mut e.secret, new.clone());
                e.previous = Some(PreviousSecret { secret: old, until });
                Ok(())
            })
            .await?;
        Ok((endpoint, secret))
    }

    /// Removes an endpoint; its pending deliveries die at their next attempt.
    pub async fn delete_endpoint(&self, id: &str) -> Result<()> {
        let endpoint = self.get_endpoint(id).await?;
        let mut batch = Batch::new();
        batch.remove(&endpoint);
        batch.event("webhook.endpoint_deleted", None, endpoint_event(&endpoint))?;
        crate::store::commit_durably(&self.store, batch).await?;
        Ok(())
    }

    /// Queues a `webhook.test` message for one endpoint; returns its id once
    /// it is on disk.
    pub async fn send_test(&self, id: &str) -> Result<OutboxMessage> {
        let endpoint = self.get_endpoint(id).await?;
        if !endpoint.enabled {
            return Err(WebhookError::Conflict {
                code: "endpoint_disabled",
                message: "the endpoint is disabled; enable it first".into(),
            });
        }
        let message = OutboxMessage {
            id: crate::store::cases::new_message_id(),
            event_type: "webhook.test".into(),
            idempotency_key: new_id("test"),
            tenant: None,
            payload: serde_json::json!({ "version": 1, "endpoint_id": endpoint.id }),
            created_at: self.now(),
            endpoint: Some(endpoint.id.clone()),
        };
        let mut batch = Batch::new();
        queue_message(&mut batch, &message)?;
        crate::store::commit_durably(&self.store, batch).await?;
        self.wake();
        Ok(message)
    }

    /// Deliveries matching `filter`, newest first, at most `limit`.
    pub async fn list_deliveries(
        &self,
        filter: DeliveryFilter,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.blocking(move |w| {
            let mut out = Vec::new();
            for d in w.store.deliveries(true)? {
                if let Some(case) = &filter.case {
                    let message = w.store.message(&d.message_id)?;
                    let prefix = format!("{case}:");
                    if !message.is_some_and(|m| m.idempotency_key.starts_with(&prefix)) {
                        continue;
                    }
                }
                if filter.matches(&d) {
                    out.push(d);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// One delivery.
    pub async fn get_delivery(&self, id: &str) -> Result<Delivery> {
        let id = id.to_string();
        self.blocking(move |w| {
            w.store
                .delivery(&id)?
                .ok_or(WebhookError::NotFound("delivery"))
        })
        .await
    }

    /// Sends a dead or delivered delivery again now (same `webhook-id`).
    pub async fn replay(&self, id: &str) -> Result<Delivery> {
        let id = id.to_string();
        let replayed = self
            .blocking(move |w| {
                let (d, version) = w.store.delivery_versioned(&id)?;
                let d = d.ok_or(WebhookError::NotFound("delivery"))?;
                if d.status == DeliveryStatus::Pending {
                    return Err(WebhookError::Conflict {
                        code: "delivery_pending",
                        message: "the delivery is still pending; it will be attempted".into(),
                    });
                }
                let mut batch = Batch::new();
                batch.expect_unchanged(&version);
                let d = w.replay_into(&mut batch, d)?;
                w.store.commit(batch)?;
                w.store.flush()?;
                Ok(d)
            })
            .await?;
        self.wake();
        Ok(replayed)
    }

    /// Replays every dead or delivered delivery matching `filter` (status
    /// defaults to dead); returns how many.
    pub async fn replay_matching(&self, filter: DeliveryFilter) -> Result<usize> {
        if filter.status == Some(DeliveryStatus::Pending) {
            return Err(WebhookError::invalid(
                "invalid_filter",
                "pending deliveries are attempted anyway; replay dead or delivered ones",
            ));
        }
        let filter = DeliveryFilter {
            status: Some(filter.status.unwrap_or(DeliveryStatus::Dead)),
            ..filter
        };
        let count = self
            .blocking(move |w| {
                let mut count = 0;
                let mut batch = Batch::new();
                for (d, version) in w.store.deliveries_versioned()? {
                    if !filter.matches(&d) {
                        continue;
                    }
                    batch.expect_unchanged(&version);
                    w.replay_into(&mut batch, d)?;
                    count += 1;
                    if count % 500 == 0 {
                        w.store.commit(std::mem::take(&mut batch))?;
                    }
                }
                w.store.commit(batch)?;
                w.store.flush()?;
                Ok(count)
            })
            .await?;
        self.wake();
        Ok(count)
    }

    fn replay_into(&self, batch: &mut Batch, mut d: Delivery) -> Result<Delivery> {
        let now = self.now();
        d.status = DeliveryStatus::Pending;
        d.round_attempts = 0;
        d.next_attempt_at = Some(now);
        d.updated_at = now;
        put_delivery(batch, &d, None)?;
        batch.event(
            "webhook.delivery_replayed",
            None,
            serde_json::json!({ "delivery": d.id, "message": d.message_id, "endpoint": d.endpoint_id }),
        )?;
        Ok(d)
    }

    /// Alerts for operators, newest first.
    pub async fn list_alerts(&self, limit: usize) -> Result<Vec<OperatorAlert>> {
        self.blocking(move |w| Ok(w.store.operator_alerts(limit)?))
            .await
    }
}

/// What an endpoint event records (never the secret).
fn endpoint_event(e: &Endpoint) -> serde_json::Value {
    serde_json::json!({
        "endpoint": e.id,
        "url": e.url,
        "event_types": e.event_types,
        "dry_run": e.dry_run,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "version": e.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_must_be_known_and_come_back_sorted_and_unique() {
        assert_eq!(
            parse_event_types(vec![
                "enforcement.suspend".into(),
                "case.opened".into(),
                "case.opened".into()
            ])
            .unwrap(),
            vec!["case.opened", "enforcement.suspend"]
        );
        let err = parse_event_types(vec!["case.exploded".into()]).unwrap_err();
        assert!(matches!(
            err,
            WebhookError::Invalid {
                code: "invalid_event_type",
                ..
            }
        ));
    }

    #[test]
    fn descriptions_have_a_length_limit() {
        assert!(parse_description("x".repeat(501)).is_err());
        assert_eq!(parse_description(" ok ".into()).unwrap(), "ok");
    }
}
