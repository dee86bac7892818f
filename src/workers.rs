//! Background workers of the enforcement path: the deadline ticker, the
//! evidence intake that opens cases from the sampler's threshold events,
//! and the cure verifier. Each reads what is due from the store and goes
//! back through the command path, so a restart simply carries on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::domain::{
    Actor, Case, CaseId, CaseState, Command, DomainEvent, Effect, EvidenceKind, EvidenceRef,
    SampleOutcome, Severity, ThresholdAlert, Transition,
};
use crate::enforcement::Opening;
use crate::readiness::Heartbeat;
use crate::sampling::Sampling;
use crate::service::cases::{is_conflict, CaseService, CommandError};
use crate::store::lease::{self, Fence, Lease};
use crate::store::meta::{self, Cursor};
use crate::store::{Batch, StoreError};

/// Everything the workers need.
#[derive(Debug, Clone)]
pub struct Workers {
    /// The command path.
    pub cases: CaseService,
    /// The sampling room (targeted re-fetches).
    pub sampling: Arc<Sampling>,
    /// Longest pause between looks.
    pub tick: Duration,
    /// The `enforcement` lease: with several replicas on one store only its
    /// holder runs the loop. `None`: this process is the only one.
    pub lease: Option<Arc<Lease>>,
}

/// Whether this replica runs the enforcement loop on this pass.
enum Turn {
    /// Yes, committing under this fence (`None`: no lease in use).
    Work(Option<Fence>),
    /// No: another replica holds the lease.
    Wait,
}

impl Workers {
    /// Runs until `stop` turns true: fires due deadlines, opens cases from
    /// new evidence, and resumes cure verifications left unfinished.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        self.run_with_heartbeat(stop, Heartbeat::detached()).await
    }

    /// Like `run`, beating `heartbeat` once per loop so `/readyz` can tell
    /// a stuck ticker from a quiet one.
    pub async fn run_with_heartbeat(self, mut stop: watch::Receiver<bool>, heartbeat: Heartbeat) {
        // The acquisition the unfinished cure verifications were last
        // resumed for: once per process without a lease, and again each
        // time this replica takes the lease over.
        let mut resumed_for: Option<Option<String>> = None;
        loop {
            heartbeat.beat();
            let started = std::time::Instant::now();
            let turn = self.turn().await;
            // Every replica fires due deadlines: each is claimed, so one
            // replica fires it, and the work spreads over them all.
            if let Err(e) = self.fire_deadlines().await {
                tracing::error!(error = ?e, "firing deadlines failed");
            }
            // The evidence intake reads one shared cursor and cure
            // verifications resume once: the lease holder's work.
            if let Turn::Work(fence) = turn {
                let token = fence.as_ref().map(|f| f.token().to_string());
                if resumed_for.as_ref() != Some(&token) {
                    resumed_for = Some(token);
                    if let Err(e) = self.resume_verifications().await {
                        tracing::error!(error = ?e, "resuming cure verifications failed");
                    }
                }
                if let Err(e) = self.finish_label_checks().await {
                    tracing::error!(error = ?e, "looking at new reviewers' labels failed");
                }
                if let Err(e) = self.open_from_evidence(fence.as_ref()).await {
                    tracing::error!(error = ?e, "opening cases from evidence failed");
                }
            }
            let pause = self
                .tick
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(5));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {
                    if *stop.borrow() { break; }
                }
            }
        }
        if let Some(lease) = self.lease.clone() {
            let released = tokio::task::spawn_blocking(move || lease.release()).await;
            if let Ok(Err(e)) = released {
                tracing::warn!(error = %e, "releasing the enforcement lease failed; it lapses instead");
            }
        }
    }

    /// Takes or renews the lease when there is one.
    async fn turn(&self) -> Turn {
        let Some(lease) = self.lease.clone() else {
            return Turn::Work(None);
        };
        match tokio::task::spawn_blocking(move || lease.ensure()).await {
            Ok(Ok(Some(fence))) => Turn::Work(Some(fence)),
            Ok(Ok(None)) => Turn::Wait,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot renew the enforcement lease");
                Turn::Wait
            }
            Err(e) => {
                tracing::error!(error = %e, "lease task failed");
                Turn::Wait
            }
        }
    }

    /// After a commit under `fence` conflicted: if the lease was taken over,
    /// forget it, so this replica stops until it holds it again.
    fn check_fence(&self, fence: Option<&Fence>) {
        if let (Some(lease), Some(fence)) = (&self.lease, fence) {
            if !lease.still_holds(fence).unwrap_or(true) {
                lease.lost();
            }
        }
    }

    /// Raises what reviewers' labels committed without a look since have
    /// crossed (see [`crate::review::finish_pending_checks`]).
    async fn finish_label_checks(&self) -> anyhow::Result<()> {
        let store = self.cases.store().clone();
        let engine = self.sampling.policy().current();
        let raised = tokio::task::spawn_blocking(move || {
            crate::review::finish_pending_checks(&*store, &engine)
        })
        .await??;
        if raised > 0 {
            tracing::info!(alerts = raised, "reviewers' labels crossed a threshold");
        }
        Ok(())
    }

    /// One pass: due deadlines, labels left to look at, then new evidence.
    pub async fn tick_once(&self) -> anyhow::Result<()> {
        self.tick_fenced(None).await
    }

    /// [`Self::tick_once`], the evidence intake committing under `fence`.
    async fn tick_fenced(&self, fence: Option<&Fence>) -> anyhow::Result<()> {
        self.fire_deadlines().await?;
        self.finish_label_checks().await?;
        self.open_from_evidence(fence).await
    }

    /// Fires the deadlines due by now that no other replica has claimed,
    /// and carries out what they set off.
    #[tracing::instrument(name = "deadline_tick", skip_all)]
    async fn fire_deadlines(&self) -> anyhow::Result<()> {
        let cases = self.cases.clone();
        let fired = tokio::task::spawn_blocking(move || cases.fire_due(10_000))
            .await
            .context("deadline task failed")??;
        for (deadline, transition) in fired {
            tracing::info!(
                deadline = %deadline.id.0,
                case = %deadline.case.0,
                state = transition.case.state.as_str(),
                "deadline fired"
            );
            self.perform(&transition).await;
        }
        Ok(())
    }

    /// Carries out a committed transition's effects.
    pub async fn perform(&self, transition: &Transition) {
        for effect in &transition.effects {
            match effect {
                Effect::RefetchEvidence { case, urls } => {
                    if let Err(e) = self.verify_cure(case, urls).await {
                        tracing::error!(error = ?e, case = %case.0, "cure verification failed; it resumes on restart");
                    }
                }
            }
        }
    }

    /// Re-fetches the evidence URLs; gone (404/410) or no longer flagged for
    /// the case's categories counts as removed.
    async fn verify_cure(&self, case_id: &CaseId, urls: &[String]) -> anyhow::Result<()> {
        let Some(case) = self.cases.get(case_id).await? else {
            return Ok(());
        };
        let parsed: Vec<url::Url> = urls
            .iter()
            .filter_map(|u| url::Url::parse(u).ok())
            .collect();
        let results = self
            .sampling
            .targeted(&case.tenant, parsed)
            .await
            .map_err(|e| anyhow::anyhow!("targeted fetch: {e}"))?;
        let mut removed: BTreeMap<String, bool> = urls.iter().map(|u| (u.clone(), false)).collect();
        for r in results {
            use crate::sampling::TargetedResult as T;
            match r {
                T::Gone { url, .. } => {
                    mark(&mut removed, &url, true);
                }
                T::Sampled { url, sample } => {
                    let still = match &sample.outcome {
                        SampleOutcome::Scored { verdict } => verdict
                            .flagged
                            .iter()
                            .any(|f| case.categories.contains(&f.category)),
                        _ => true,
                    };
                    mark(&mut removed, &url, !still);
                }
                T::Refused { .. } | T::Failed { .. } => {}
            }
        }
        let actor = Actor::new(crate::domain::ActorKind::Service, "cure-verifier");
        match self
            .cases
            .execute(
                Some(case_id),
                &actor,
                Command::VerificationResult { removed },
                None,
            )
            .await
        {
            Ok(t) => {
                tracing::info!(case = %case_id.0, state = t.case.state.as_str(), "cure verified");
                Ok(())
            }
            Err(CommandError::Refused(e)) => {
                tracing::info!(case = %case_id.0, reason = %e, "verification result no longer applies");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn resume_verifications(&self) -> anyhow::Result<()> {
        for case in self.cases.open().await? {
            if case.state == CaseState::Verifying {
                let urls = case.evidence_urls();
                self.verify_cure(&case.id, &urls).await?;
            }
        }
        Ok(())
    }

    /// Opens a case for each new `evidence.threshold_crossed` event whose
    /// severity's ladder opens automatically and whose tenant has no open
    /// case for that category yet. The cursor advances with each event, in
    /// the same transaction as the case it opens and with a precondition on
    /// its old value (and on `fence`), so two consumers never open two cases
    /// for one event: the second one's commit conflicts and it stops.
    pub async fn open_from_evidence(&self, fence: Option<&Fence>) -> anyhow::Result<()> {
        let store = self.cases.store().clone();
        let (cursor, mut cursor_version) = meta::cursor(&*store, Cursor::Evidence)?;
        let events = store.events_after(cursor, 1000)?;
        if events.is_empty() {
            return Ok(());
        }
        let engine = self.sampling.policy().current();
        let ladders = self.cases.ladders();
        let mut open_cases: Option<Vec<Case>> = None;
        for e in events {
            let mut advance = Batch::new();
            advance.expect_unchanged(&cursor_version);
            lease::guard(&mut advance, fence);
            let next = meta::set_cursor(&mut advance, Cursor::Evidence, e.seq);
            let mut to_open = None;
            let event = e.domain_event();
            if let DomainEvent::Malformed { kind } = &event {
                tracing::warn!(event = e.seq, kind = %kind, "skipping an event whose data cannot be read");
            }
            if let DomainEvent::ThresholdCrossed { tenant, category } = event {
                if let Some(alert) = store.threshold_alert(&tenant, &category)? {
                    let severity = engine
                        .policy()
                        .categories
                        .iter()
                        .find(|c| c.id == alert.category)
                        .map_or(Severity::Medium, |c| c.severity);
                    if ladders.get(severity).opens == Opening::Automatically {
                        let cases = match &mut open_cases {
                            Some(c) => c,
                            None => open_cases.insert(self.cases.open().await?),
                        };
                        let already = cases.iter().any(|c| {
                            c.tenant == alert.tenant
                                && c.state.is_open()
                                && c.categories.contains(&alert.category)
                        });
                        if !already {
                            // Opened since the list was read (by a report
                            // on another replica, say)?
                            let (opened, slot) =
                                store.open_slot(alert.tenant.as_str(), &alert.category)?;
                            match opened {
                                Some(case) => cases.push(case),
                                None => to_open = Some((alert, severity, slot)),
                            }
                        }
                    }
                }
            }
            let committed = match to_open {
                Some((alert, severity, slot)) => {
                    match self.open_case(&alert, severity, &slot, advance).await {
                        Ok(t) => {
                            if let Some(cases) = &mut open_cases {
                                cases.push(t.case);
                            }
                            true
                        }
                        Err(e) if is_conflict(&e) => false,
                        Err(e) => return Err(anyhow::anyhow!("opening a case from evidence: {e}")),
                    }
                }
                None => match store.commit(advance) {
                    Ok(_) => true,
                    Err(StoreError::Conflict(_)) => false,
                    Err(e) => return Err(e.into()),
                },
            };
            if !committed {
                // Another consumer moved the cursor (or took the lease),
                // or someone opened the case first: what it did stands;
                // look again on the next pass.
                tracing::info!(
                    event = e.seq,
                    "evidence cursor or open-case slot moved under this consumer; this pass stops"
                );
                self.check_fence(fence);
                break;
            }
            cursor_version = next;
        }
        store.flush()?;
        Ok(())
    }

    /// Opens a case for `alert`, taking the tenant's open-case slot for the
    /// category read at `slot`, with `extra` in the same transaction.
    async fn open_case(
        &self,
        alert: &ThresholdAlert,
        severity: Severity,
        slot: &crate::store::Version,
        mut extra: Batch,
    ) -> Result<Transition, CommandError> {
        let mut evidence = vec![EvidenceRef {
            kind: EvidenceKind::Prevalence {
                sampled: alert.prevalence.sampled,
                flagged: alert.prevalence.flagged,
                lower: alert.prevalence.lower,
                upper: alert.prevalence.upper,
            },
            category: alert.category.clone(),
            url: None,
            policy_version: None,
        }];
        if let Some(l) = &alert.labels {
            evidence.push(EvidenceRef {
                kind: EvidenceKind::LabelEstimate {
                    estimate: l.estimate.clone(),
                    reviewed: l.reviewed,
                    rate: l.rate,
                    lower: l.lower,
                    upper: l.upper,
                },
                category: alert.category.clone(),
                url: None,
                policy_version: None,
            });
        }
        for sample_id in &alert.findings {
            let sample = self
                .sampling
                .store()
                .sample(&alert.tenant, sample_id)
                .map_err(|e| CommandError::Store(e.into()))?;
            let (url, score, version) = match &sample {
                Some(s) => match &s.outcome {
                    SampleOutcome::Scored { verdict } => (
                        s.url.clone(),
                        verdict
                            .flagged
                            .iter()
                            .find(|f| f.category == alert.category)
                            .map_or(0.0, |f| f.score),
                        Some(verdict.policy_version.clone()),
                    ),
                    _ => (s.url.clone(), 0.0, None),
                },
                None => (None, 0.0, None),
            };
            evidence.push(EvidenceRef {
                kind: EvidenceKind::Finding {
                    finding_id: sample_id.0.to_string(),
                    score,
                },
                category: alert.category.clone(),
                url,
                policy_version: version,
            });
        }
        let case_id = CaseId::new();
        crate::store::cases::take_open_slot(&mut extra, slot, &case_id);
        let command = Command::Open {
            case_id,
            tenant: alert.tenant.clone(),
            categories: vec![alert.category.clone()],
            severity,
            evidence,
            report: None,
        };
        let actor = Actor::new(crate::domain::ActorKind::Service, "sampler");
        let t = self
            .cases
            .open_with(
                &actor,
                command,
                Some(match &alert.labels {
                    Some(l) => format!(
                        "reviewers' labels put the {} estimate's 95% interval above the policy's tolerance ({} items reviewed)",
                        l.estimate, l.reviewed
                    ),
                    None => "sampled evidence crossed the policy's threshold".into(),
                }),
                extra,
            )
            .await?;
        tracing::info!(case = %t.case.id.0, tenant = %alert.tenant, category = %alert.category, "case opened from evidence");
        Ok(t)
    }
}

fn mark(removed: &mut BTreeMap<String, bool>, url: &str, gone: bool) {
    if let Some(v) = removed.get_mut(url) {
        *v = gone;
    } else if let Some((_, v)) = removed
        .iter_mut()
        .find(|(k, _)| k.trim_end_matches('/') == url.trim_end_matches('/'))
    {
        *v = gone;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::config::SamplingSettings;
    use crate::domain::{RiskTier, TenantId, TenantStatus};
    use crate::policy::PolicyHandle;
    use crate::sampling::extract::Item;
    use crate::sampling::registry::NewTenant;
    use crate::store::{SharedStore, SledStore};

    fn workers(store: &SharedStore, policy: &Arc<PolicyHandle>) -> Workers {
        let settings = SamplingSettings {
            intake_sample_rate: 1.0,
            ..SamplingSettings::default()
        };
        let sampling = Arc::new(
            Sampling::new(
                store.clone(),
                policy.clone(),
                settings,
                Arc::new(crate::sampling::guard::SystemResolver),
            )
            .unwrap(),
        );
        Workers {
            cases: CaseService::with_policy(store.clone(), policy.clone(), Arc::new(SystemClock)),
            sampling,
            tick: Duration::from_millis(50),
            lease: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_evidence_consumers_open_one_case_per_threshold_event() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let policy = Arc::new(
            PolicyHandle::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
                .unwrap(),
        );
        let (a, b) = (workers(&store, &policy), workers(&store, &policy));
        for n in 0..6 {
            let tenant = TenantId::try_from(format!("tenant{n}")).unwrap();
            a.sampling
                .create_tenant(NewTenant {
                    id: tenant.clone(),
                    name: format!("Tenant {n}"),
                    contacts: Vec::new(),
                    risk_tier: RiskTier::Standard,
                    status: TenantStatus::Active,
                    intake_budget_per_hour: 1000,
                })
                .await
                .unwrap();
            let items = (0..3)
                .map(|i| Item {
                    id: None,
                    url: Some(format!("https://tenant{n}.example/{i}")),
                    text: format!("post {i}: we must storm the capitol tomorrow, bring your guns"),
                })
                .collect();
            let outcome = a.sampling.intake(&tenant, items).await.unwrap();
            assert!(outcome.flagged > 0, "{outcome:?}");
        }
        let crossings = store
            .events_after(0, usize::MAX)
            .unwrap()
            .into_iter()
            .filter(|e| matches!(e.domain_event(), DomainEvent::ThresholdCrossed { .. }))
            .count();
        assert_eq!(crossings, 6);

        // Both consume the same log at once, several passes each.
        let run = |w: Workers| {
            tokio::spawn(async move {
                for _ in 0..5 {
                    w.open_from_evidence(None).await.unwrap();
                }
            })
        };
        let (ra, rb) = (run(a.clone()), run(b.clone()));
        ra.await.unwrap();
        rb.await.unwrap();

        let opened = store
            .events_after(0, usize::MAX)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "case.opened")
            .count();
        assert_eq!(
            opened, 6,
            "one case per threshold event, not one per consumer"
        );
        assert_eq!(a.cases.open().await.unwrap().len(), 6);
    }
}
