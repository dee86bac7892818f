//! `aupd review export`: a tenant's labels as the CSV that
//! `aupd policy train --labels` and `aupd policy eval --labels` read
//! (`docs/review.md`, "Label export format").

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;

use super::{consensus, Consensus};
use crate::domain::{Label, LabelOrigin, SampleId, TenantId};
use crate::store::Store;

/// Writes every labelled item and category of `tenant` to `out`: one row
/// each, the agreed answer once, an open disagreement (or only "unsure"
/// answers) as `unsure`. The origin is `feedback` when every label of the
/// item and category came as feedback, else `queue`. Returns the rows written.
pub fn export(store: &dyn Store, tenant: &TenantId, out: impl Write) -> anyhow::Result<u64> {
    let mut groups: BTreeMap<(SampleId, String), Vec<Label>> = BTreeMap::new();
    for l in store.labels(tenant).context("reading the labels")? {
        groups
            .entry((l.sample, l.category.clone()))
            .or_default()
            .push(l);
    }
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["sample_id", "tenant", "category", "label", "origin", "text"])?;
    let mut rows = 0;
    for ((sample, category), labels) in groups {
        let Some(item) = store.sample(tenant, &sample).context("reading a sample")? else {
            // Retention removed the sample: its text is gone, so is the row.
            continue;
        };
        let label = match consensus(&labels, &category).2 {
            Consensus::Violates => "violates",
            Consensus::DoesNot => "does_not",
            Consensus::Disputed | Consensus::None => "unsure",
        };
        let origin = if labels.iter().all(|l| l.origin == LabelOrigin::Feedback) {
            "feedback"
        } else {
            "queue"
        };
        csv.write_record([
            sample.to_string().as_str(),
            tenant.as_str(),
            category.as_str(),
            label,
            origin,
            item.excerpt.as_str(),
        ])?;
        rows += 1;
    }
    csv.flush()?;
    Ok(rows)
}
