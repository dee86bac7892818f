//! Recording a reviewer's labels on a sampled item: the tenant and the item
//! must exist and the item must have been scored (there is text to judge);
//! the labels and their `review.labelled` audit event commit in one
//! transaction, durably; then the label-based case rules are checked, since
//! the new labels may cross one. The check is marked pending in that same
//! transaction, so if this process stops before it looks, the enforcement
//! worker's sweep looks instead.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::{Label, LabelOrigin, ReviewAnswer, SampleId, TenantId};
use crate::policy::PolicyHandle;
use crate::review::{self, Consensus};
use crate::store::{self, reviews, SharedStore};

use super::blocking;

/// Labels a reviewer gave one item, already checked against the policy's
/// categories by whoever parsed them.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelInput {
    /// Answer per category.
    pub labels: BTreeMap<String, ReviewAnswer>,
    /// The note, trimmed; `None` when blank.
    pub note: Option<String>,
    /// How the reviewer came to the item.
    pub origin: LabelOrigin,
}

/// Why labels were not recorded. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// No such tenant.
    #[error("no such tenant")]
    UnknownTenant,
    /// The tenant has no such item.
    #[error("no such review item")]
    UnknownItem,
    /// The item's content was gone when it was sampled.
    #[error("the item's content was gone when sampled: there is no text to label")]
    NotScored,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<store::StoreError> for LabelError {
    fn from(e: store::StoreError) -> Self {
        LabelError::Store(e.into())
    }
}

/// Where an item stands in one category after a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// The category.
    pub category: String,
    /// Reviewers who said it violates.
    pub violates: u64,
    /// Reviewers who said it does not.
    pub does_not: u64,
    /// The majority answer.
    pub consensus: Consensus,
    /// Whether it is now suspension evidence (two agreeing reviewers).
    pub evidence: bool,
}

/// Labels recorded, and where the item now stands in each of their
/// categories.
#[derive(Debug)]
pub struct Labelled {
    /// The labels just stored.
    pub labels: Vec<Label>,
    /// Where the item stands in each labelled category, counting every
    /// reviewer's labels.
    pub standings: Vec<Standing>,
}

/// The label use cases.
#[derive(Debug, Clone)]
pub struct Labels {
    store: SharedStore,
    policy: Arc<PolicyHandle>,
    clock: Arc<dyn Clock>,
}

impl Labels {
    /// Label use cases over `store`, checking rules of the policy in force,
    /// dating labels with `clock`.
    pub fn new(store: SharedStore, policy: Arc<PolicyHandle>, clock: Arc<dyn Clock>) -> Self {
        Labels {
            store,
            policy,
            clock,
        }
    }

    /// Records `input` as `reviewer`'s labels on `item` of `tenant`.
    pub async fn record(
        &self,
        tenant: &TenantId,
        item: SampleId,
        reviewer: &str,
        input: LabelInput,
    ) -> Result<Labelled, LabelError> {
        let at = self.clock.now();
        let (store, t, who) = (self.store.clone(), tenant.clone(), reviewer.to_string());
        let (batch, stored) = blocking("recording labels", move || -> Result<_, LabelError> {
            store.tenant(&t)?.ok_or(LabelError::UnknownTenant)?;
            let sample = store.sample(&t, &item)?.ok_or(LabelError::UnknownItem)?;
            if sample.verdict().is_none() {
                return Err(LabelError::NotScored);
            }
            let mut batch = store::Batch::new();
            let mut stored = Vec::new();
            for (category, answer) in &input.labels {
                let label = Label {
                    tenant: t.clone(),
                    sample: item,
                    category: category.clone(),
                    reviewer: who.clone(),
                    answer: *answer,
                    origin: input.origin,
                    note: input.note.clone(),
                    at,
                };
                reviews::put_label(&mut batch, &label)?;
                stored.push(label);
            }
            batch.event(
                "review.labelled",
                Some(t.as_str()),
                serde_json::json!({
                    "tenant": t,
                    "item": item,
                    "reviewer": who,
                    "origin": input.origin,
                    "labels": input.labels,
                    "note": input.note,
                }),
            )?;
            Ok((batch, stored))
        })
        .await?;
        store::commit_durably(&self.store, batch).await?;

        // The labels are stored whatever happens next; a rule resting on
        // labels may now be crossed.
        let engine = self.policy.current();
        let (store, t) = (self.store.clone(), tenant.clone());
        match blocking("checking label rules", move || {
            review::check_labels(&*store, &engine, &t)
        })
        .await
        {
            Ok(raised) => {
                for a in raised {
                    tracing::info!(tenant = %a.tenant, category = %a.category, "reviewers' labels crossed the case rule");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check the label-based case rules; the next sweep checks again")
            }
        }

        let (store, t) = (self.store.clone(), tenant.clone());
        let all = blocking("reading an item's labels", move || {
            store.item_labels(&t, &item).map_err(anyhow::Error::from)
        })
        .await?;
        let standings = stored
            .iter()
            .map(|l| {
                let (violates, does_not, consensus) = review::consensus(&all, &l.category);
                Standing {
                    category: l.category.clone(),
                    violates,
                    does_not,
                    consensus,
                    evidence: review::is_evidence(&all, &l.category),
                }
            })
            .collect();
        Ok(Labelled {
            labels: stored,
            standings,
        })
    }
}
