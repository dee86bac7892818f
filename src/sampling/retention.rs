//! Removing sampled content past its retention.
//!
//! Every sample keeps an excerpt of what a tenant published, its verdict,
//! a content hash (so it is not sampled twice) and, when flagged, findings.
//! Kept forever they grow the store (and sled's in-memory page table) with
//! every visit, and they hold tenants' text longer than enforcement needs.
//! After `sampling.retention_days` a sample goes, with its findings and its
//! content hash, unless it is evidence: cited by a case (open or closed) or
//! by a raised threshold alert. Hourly tallies go once they are older than
//! both the retention and the prevalence window. Each tenant's removals are
//! one transaction with a `sampling.samples_pruned` event.

use std::collections::HashSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use super::{blocking, Result, Sampling};
use crate::domain::EvidenceKind;
use crate::store::{rate, samples, Batch, Store, StoreError};

/// How often the retention pass runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Samples read per page.
const PAGE: usize = 256;

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Samples removed.
    pub samples: usize,
    /// Findings removed with them.
    pub findings: usize,
    /// Hourly tallies removed.
    pub tallies: usize,
    /// Old samples kept because a case or an alert cites them.
    pub kept_as_evidence: usize,
}

/// Sample ids that cases and raised alerts cite.
fn cited(store: &dyn Store) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for case in store.all_cases()? {
        for e in &case.evidence {
            if let EvidenceKind::Finding { finding_id, .. } = &e.kind {
                ids.insert(finding_id.clone());
            }
        }
    }
    for alert in store.threshold_alerts()? {
        ids.extend(alert.findings.iter().map(|s| s.0.to_string()));
    }
    Ok(ids)
}

/// Removes samples taken before `cutoff` that nothing cites, their findings
/// and content hashes, and tallies of hours before `tally_cutoff`.
pub fn prune(store: &dyn Store, cutoff: Timestamp, tally_cutoff: Timestamp) -> Result<Pruned> {
    let cited = cited(store)?;
    let mut pruned = Pruned::default();
    let tally_hour = u64::try_from(tally_cutoff.as_second().max(0)).unwrap_or(0) / 3600;
    for tenant in store.tenants()? {
        let id = &tenant.id;
        let t = id.as_str();
        let mut after = None;
        'pages: loop {
            let page = store.sample_page(id, after.as_ref(), PAGE)?;
            let mut batch = Batch::new();
            let (mut removed, mut findings) = (0usize, 0usize);
            let mut newer_reached = false;
            for (sample, version) in &page {
                if sample.fetched_at >= cutoff {
                    // Ids are minted in time order: every later one is newer.
                    newer_reached = true;
                    break;
                }
                if cited.contains(&sample.id.0.to_string()) {
                    pruned.kept_as_evidence += 1;
                    continue;
                }
                batch.expect_unchanged(version);
                batch.remove(sample);
                removed += 1;
                for flag in sample.verdict().map_or(&[][..], |v| &v.flagged[..]) {
                    if store.has_finding(id, &flag.category, &sample.id)? {
                        samples::delete_finding(&mut batch, id, &flag.category, &sample.id);
                        findings += 1;
                    }
                }
                // The content may be sampled again once its sample is gone;
                // a newer sample of the same content keeps its hash.
                if let (Some(seen), seen_version) =
                    store.seen_versioned(id, &sample.content_hash)?
                {
                    if seen.sample == sample.id {
                        batch.expect_unchanged(&seen_version);
                        batch.remove(&seen);
                    }
                }
            }
            if removed > 0 {
                batch.event(
                    "sampling.samples_pruned",
                    Some(t),
                    serde_json::json!({
                        "tenant": t,
                        "samples": removed,
                        "findings": findings,
                        "taken_before": cutoff,
                    }),
                )?;
                match store.commit(batch) {
                    Ok(_) => {
                        pruned.samples += removed;
                        pruned.findings += findings;
                    }
                    // Changed meanwhile: kept, looked at next time.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE && !newer_reached => {
                    after = Some(last.clone());
                }
                _ => break 'pages,
            }
        }

        // Tallies are keyed by big-endian hour: the old ones come first.
        let old = store.tallies_before(id, tally_hour)?;
        if !old.is_empty() {
            let mut batch = Batch::new();
            for tally in &old {
                batch.remove(tally);
            }
            batch.event(
                "sampling.tallies_pruned",
                Some(t),
                serde_json::json!({
                    "tenant": t,
                    "tallies": old.len(),
                    "hours_before": tally_cutoff,
                }),
            )?;
            store.commit(batch)?;
            pruned.tallies += old.len();
        }
    }
    Ok(pruned)
}

impl Sampling {
    /// One retention pass with the configured settings, at `now`.
    pub async fn prune_at(&self, now: Timestamp) -> Result<Pruned> {
        let days = self.settings.retention_days;
        let window = self.settings.window_secs;
        let store = self.store.clone();
        blocking(move || {
            let hours = i64::try_from(days.saturating_mul(24)).unwrap_or(i64::MAX / 3600);
            let cutoff = now
                .checked_sub(SignedDuration::from_hours(hours))
                .unwrap_or(Timestamp::MIN);
            // A tally inside the prevalence window still counts.
            let window_start = now
                .checked_sub(SignedDuration::from_secs(
                    i64::try_from(window).unwrap_or(i64::MAX),
                ))
                .unwrap_or(Timestamp::MIN);
            let pruned = prune(store.as_ref(), cutoff, cutoff.min(window_start))?;
            store.flush()?;
            Ok(pruned)
        })
        .await
    }
}

/// Runs a retention pass at start and then hourly until `stop` turns true
/// (no samples go when `sampling.retention_days` is 0). Each pass also
/// forgets the fetch pace of hosts not fetched from for an hour.
pub async fn run(sampling: std::sync::Arc<Sampling>, mut stop: watch::Receiver<bool>) {
    let days = sampling.settings.retention_days;
    loop {
        if days > 0 {
            match sampling.prune_at(Timestamp::now()).await {
                Ok(p) if p.samples > 0 || p.tallies > 0 => tracing::info!(
                    samples = p.samples,
                    findings = p.findings,
                    tallies = p.tallies,
                    kept_as_evidence = p.kept_as_evidence,
                    retention_days = days,
                    "removed sampled content past its retention"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = ?e, "removing old samples failed"),
            }
        }
        let store = sampling.store.clone();
        let idle_since = Timestamp::now() - SignedDuration::from_hours(1);
        match blocking(move || Ok(rate::forget_fetch_paces(store.as_ref(), idle_since)?)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(hosts = n, "forgot the fetch pace of idle hosts"),
            Err(e) => tracing::warn!(error = ?e, "forgetting idle hosts' fetch pace failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.changed() => {
                if *stop.borrow() { return; }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::domain::{
        Actor, Command, CrossingReason, EvidenceRef, Finding, FlaggedCategory, Prevalence,
        RiskTier, SampleId, SampleOrigin, SampleOutcome, SampleVerdict, Severity, Tally, TenantId,
        TenantStatus,
    };
    use crate::domain::{Sample, Tenant, ThresholdAlert};
    use crate::enforcement::{decide, Ladders};
    use crate::store::records::Seen;
    use crate::store::{SharedStore, SledStore};

    const CAT: &str = "violent-incitement";

    fn t0() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn days(n: i64) -> SignedDuration {
        SignedDuration::from_hours(24 * n)
    }

    fn tenant(id: &str) -> Tenant {
        Tenant {
            id: TenantId::try_from(id).unwrap(),
            name: id.into(),
            contacts: Vec::new(),
            risk_tier: RiskTier::Standard,
            status: TenantStatus::Active,
            intake_budget_per_hour: 100,
            enforcement: None,
            created_at: t0(),
            updated_at: t0(),
        }
    }

    /// Sample `n` of `tenant`, taken `age` days before `t0`, with a content
    /// hash of `hash`, flagged or not. Ids grow with `n` as time does.
    fn sample(tenant: &str, n: u128, age: i64, hash: &str, flagged: bool) -> Sample {
        let flags = if flagged {
            vec![FlaggedCategory {
                category: CAT.into(),
                severity: Severity::Critical,
                score: 0.9,
            }]
        } else {
            Vec::new()
        };
        Sample {
            id: SampleId(uuid::Uuid::from_u128(
                0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
            )),
            tenant: TenantId::try_from(tenant).unwrap(),
            origin: SampleOrigin::Intake,
            url: None,
            item_id: None,
            fetched_at: t0() - days(age),
            content_hash: hash.into(),
            excerpt: format!("text {n}"),
            outcome: SampleOutcome::Scored {
                verdict: SampleVerdict {
                    policy_version: "v".into(),
                    scores: BTreeMap::new(),
                    flagged: flags,
                    evidence: Vec::new(),
                },
            },
        }
    }

    fn put(batch: &mut Batch, s: &Sample) {
        batch.put(s).unwrap();
        batch
            .put(&Seen {
                tenant: s.tenant.as_str().into(),
                hash: s.content_hash.clone(),
                sample: s.id,
            })
            .unwrap();
        if let Some(f) = s.verdict().and_then(|v| v.flagged.first()) {
            batch
                .put(&Finding {
                    tenant: s.tenant.clone(),
                    category: f.category.clone(),
                    severity: f.severity,
                    score: f.score,
                    sample: s.id,
                    origin: s.origin,
                    url: None,
                    excerpt: s.excerpt.clone(),
                    evidence: Vec::new(),
                    policy_version: "v".into(),
                    found_at: s.fetched_at,
                })
                .unwrap();
        }
    }

    #[test]
    fn old_samples_go_with_their_findings_unless_a_case_or_an_alert_cites_them() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let gone = sample("parlor", 1, 120, "h1", true);
        let in_case = sample("parlor", 2, 110, "h2", true);
        let in_alert = sample("parlor", 3, 100, "h3", true);
        let resampled = sample("parlor", 4, 95, "h4", false);
        let recent = sample("parlor", 5, 10, "h5", true);
        // The same content as `resampled`, taken again: its hash now
        // points here and must stay.
        let again = sample("parlor", 6, 5, "h4", false);
        let other = sample("forum", 7, 200, "h1", false);

        let mut batch = Batch::new();
        batch.put(&tenant("parlor")).unwrap();
        batch.put(&tenant("forum")).unwrap();
        for s in [
            &gone, &in_case, &in_alert, &resampled, &recent, &again, &other,
        ] {
            put(&mut batch, s);
        }
        for (hour_age, t) in [(100, "parlor"), (1, "parlor")] {
            let hour = (t0() - days(hour_age)).as_second() as u64 / 3600;
            batch
                .put(&Tally {
                    tenant: TenantId::try_from(t).unwrap(),
                    hour,
                    sampled: 10,
                    flagged: BTreeMap::new(),
                })
                .unwrap();
        }
        let open = Command::Open {
            case_id: crate::domain::CaseId::new(),
            tenant: TenantId::try_from("parlor").unwrap(),
            categories: vec![CAT.into()],
            severity: Severity::Critical,
            evidence: vec![EvidenceRef {
                kind: EvidenceKind::Finding {
                    finding_id: in_case.id.0.to_string(),
                    score: 0.9,
                },
                category: CAT.into(),
                url: None,
                policy_version: None,
            }],
            report: None,
        };
        let opened = decide(
            None,
            &Actor::new(crate::domain::ActorKind::Operator, "op"),
            &open,
            &Ladders::default(),
            t0() - days(100),
        )
        .unwrap();
        batch.put(&opened.case).unwrap();
        batch
            .put(&ThresholdAlert {
                tenant: TenantId::try_from("parlor").unwrap(),
                category: CAT.into(),
                reason: CrossingReason::Prevalence,
                raised_at: t0(),
                prevalence: Prevalence::wilson(3, 10),
                findings: vec![in_alert.id],
                labels: None,
            })
            .unwrap();
        store.commit(batch).unwrap();
        let before = store.events_after(0, usize::MAX).unwrap().len();

        let cutoff = t0() - days(90);
        let pruned = prune(store.as_ref(), cutoff, cutoff).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                samples: 3,
                findings: 1,
                tallies: 1,
                kept_as_evidence: 2,
            }
        );

        let has = |s: &Sample| store.sample(&s.tenant, &s.id).unwrap().is_some();
        assert!(!has(&gone) && !has(&resampled) && !has(&other));
        assert!(has(&in_case) && has(&in_alert) && has(&recent) && has(&again));
        let finding = |s: &Sample| store.has_finding(&s.tenant, CAT, &s.id).unwrap();
        assert!(!finding(&gone));
        assert!(finding(&in_case) && finding(&in_alert));
        let seen = |t: &str, h: &str| {
            store
                .seen_versioned(&TenantId::try_from(t).unwrap(), h)
                .unwrap()
                .0
        };
        assert!(seen("parlor", "h1").is_none());
        assert!(seen("forum", "h1").is_none());
        assert_eq!(seen("parlor", "h4").map(|s| s.sample), Some(again.id));
        assert_eq!(seen("parlor", "h2").map(|s| s.sample), Some(in_case.id));
        let tallies = store
            .tallies(&TenantId::try_from("parlor").unwrap())
            .unwrap();
        assert_eq!(tallies.len(), 1);

        // One event per tenant that lost samples, one for the tallies.
        let events = store.events_after(before as u64, usize::MAX).unwrap();
        let kinds: Vec<(&str, Option<&str>)> = events
            .iter()
            .map(|e| (e.kind.as_str(), e.tenant.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("sampling.samples_pruned", Some("forum")),
                ("sampling.samples_pruned", Some("parlor")),
                ("sampling.tallies_pruned", Some("parlor")),
            ]
        );
        assert_eq!(events[1].data["samples"], 2);
        assert_eq!(events[1].data["findings"], 1);

        // A second pass finds nothing more to remove.
        let again = prune(store.as_ref(), cutoff, cutoff).unwrap();
        assert_eq!(again.samples + again.findings + again.tallies, 0);
        assert_eq!(again.kept_as_evidence, 2);
    }
}
