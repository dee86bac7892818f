//! Action receipts: the workflow system confirms what it did with an order.
//! An executed `enforcement.suspend` moves the case to `suspended` through
//! the command path; a failed one is recorded and raises an alert.

use crate::domain::{
    Actor, ActorKind, CaseId, CaseState, Command, OperatorAlert, Receipt, ReceiptOutcome,
};
use crate::service::cases::CommandError;
use crate::store::delivery::new_id;
use crate::store::Batch;

use super::dispatcher::raise;
use super::{Result, WebhookError, Webhooks};

/// A validated receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReceipt {
    /// What happened.
    pub outcome: ReceiptOutcome,
    /// The executor's details (a JSON object).
    pub details: serde_json::Value,
}

/// What a receipt did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptResult {
    /// The stored receipt (the first one, for a repeat).
    pub receipt: Receipt,
    /// The case's state after it.
    pub case_state: Option<CaseState>,
}

impl Webhooks {
    /// Records a receipt for the order with `key`, once. A repeat with the
    /// same outcome gets the same answer and changes nothing; a repeat with
    /// another outcome is a conflict.
    pub async fn record_receipt(
        &self,
        key: &str,
        from: &str,
        new: NewReceipt,
    ) -> Result<ReceiptResult> {
        let k = key.to_string();
        let (order, existing) = self
            .blocking(move |w| {
                let order = w
                    .store()
                    .order(&k)?
                    .ok_or(WebhookError::NotFound("action"))?;
                Ok((order, w.store().receipt(&k)?))
            })
            .await?;
        let case_id: Option<CaseId> = order.case_id.parse().ok().map(CaseId);
        if let Some(existing) = existing {
            if existing.outcome != new.outcome {
                return Err(WebhookError::Conflict {
                    code: "receipt_conflict",
                    message: format!(
                        "a receipt with outcome `{}` was already recorded for this action",
                        outcome_str(existing.outcome)
                    ),
                });
            }
            let case_state = self.case_state(case_id.as_ref()).await?;
            return Ok(ReceiptResult {
                receipt: existing,
                case_state,
            });
        }
        let receipt = Receipt {
            idempotency_key: order.idempotency_key.clone(),
            case_id: order.case_id.clone(),
            event_type: order.event_type.clone(),
            outcome: new.outcome,
            details: new.details,
            received_from: from.to_string(),
            received_at: self.now(),
        };
        let mut batch = Batch::new();
        batch.expect_unchanged(&crate::store::delivery::receipt_absent(
            &receipt.idempotency_key,
        ));
        batch.put(&receipt)?;
        batch.event(
            "action.receipt_recorded",
            None,
            serde_json::json!({
                "idempotency_key": receipt.idempotency_key,
                "case": receipt.case_id,
                "event_type": receipt.event_type,
                "outcome": outcome_str(receipt.outcome),
                "from": from,
            }),
        )?;
        if receipt.outcome == ReceiptOutcome::Failed {
            raise(
                &mut batch,
                OperatorAlert {
                    id: new_id("alr"),
                    kind: "receipt_failed".into(),
                    subject: receipt.case_id.clone(),
                    message: format!(
                        "the executor could not carry out {} for case {}",
                        receipt.event_type, receipt.case_id
                    ),
                    at: receipt.received_at,
                },
            )?;
        }
        // An executed suspension moves the case in the same transaction that
        // records the receipt: both land or neither does.
        let mut committed = false;
        if new.outcome == ReceiptOutcome::Executed && order.event_type == "enforcement.suspend" {
            if let Some(case_id) = &case_id {
                let actor = Actor::new(ActorKind::Service, from);
                let command = Command::ReceiptExecuted {
                    receipt_id: order.idempotency_key.clone(),
                };
                match self
                    .cases
                    .execute_with(case_id, &actor, command, None, batch.clone())
                    .await
                {
                    Ok(_) => committed = true,
                    Err(CommandError::Refused(e)) => {
                        // Reinstated meanwhile, or already suspended: the
                        // receipt is still worth keeping.
                        tracing::info!(case = %case_id, reason = %e, "receipt does not move the case");
                    }
                    Err(CommandError::NotFound) => {}
                    Err(CommandError::Store(e)) if crate::store::is_conflict(&e) => {
                        return Box::pin(self.record_receipt(key, from, new_from(&receipt))).await;
                    }
                    Err(CommandError::Store(e)) => return Err(WebhookError::Internal(e)),
                }
            }
        }
        if !committed {
            match crate::store::commit_durably(self.store(), batch).await {
                Ok(_) => {}
                Err(e) if crate::store::is_conflict(&e) => {
                    // A concurrent copy of this receipt won; answer with it.
                    return Box::pin(self.record_receipt(key, from, new_from(&receipt))).await;
                }
                Err(e) => return Err(WebhookError::Internal(e)),
            }
        }
        let case_state = self.case_state(case_id.as_ref()).await?;
        Ok(ReceiptResult {
            receipt,
            case_state,
        })
    }

    async fn case_state(&self, id: Option<&CaseId>) -> Result<Option<CaseState>> {
        Ok(match id {
            Some(id) => self.cases.get(id).await?.map(|c| c.state),
            None => None,
        })
    }
}

fn new_from(r: &Receipt) -> NewReceipt {
    NewReceipt {
        outcome: r.outcome,
        details: r.details.clone(),
    }
}

/// The snake_case name of an outcome.
pub fn outcome_str(o: ReceiptOutcome) -> &'static str {
    match o {
        ReceiptOutcome::Executed => "executed",
        ReceiptOutcome::Failed => "failed",
    }
}
