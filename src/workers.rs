//! Background workers of the enforcement path: the deadline ticker, the
//! evidence intake that opens cases from the sampler's threshold events,
//! and the cure verifier. Each reads what is due from the store and goes
//! back through the command path, so a restart simply carries on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::commands::{CaseService, CommandError};
use crate::domain::{
    Actor, Case, CaseId, CaseState, Command, Effect, EvidenceKind, EvidenceRef, SampleOutcome,
    Severity, ThresholdAlert, Transition,
};
use crate::enforcement::Opening;
use crate::readiness::Heartbeat;
use crate::sampling::Sampling;
use crate::store::{Batch, Tree};

const EVIDENCE_CURSOR: &[u8] = b"cursor.evidence";

/// Everything the workers need.
#[derive(Debug, Clone)]
pub struct Workers {
    /// The command path.
    pub cases: CaseService,
    /// The sampling room (targeted re-fetches).
    pub sampling: Arc<Sampling>,
    /// Longest pause between looks.
    pub tick: Duration,
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
        heartbeat.beat();
        if let Err(e) = self.resume_verifications().await {
            tracing::error!(error = ?e, "resuming cure verifications failed");
        }
        loop {
            heartbeat.beat();
            let started = std::time::Instant::now();
            if let Err(e) = self.tick_once().await {
                tracing::error!(error = ?e, "enforcement tick failed");
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
    }

    /// One pass: due deadlines, then new evidence.
    #[tracing::instrument(name = "enforcement_tick", skip_all)]
    pub async fn tick_once(&self) -> anyhow::Result<()> {
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
        self.open_from_evidence().await
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
    /// case for that category yet. The cursor advances with each event.
    async fn open_from_evidence(&self) -> anyhow::Result<()> {
        let store = self.cases.store().clone();
        let cursor = store
            .get_raw(Tree::Meta, EVIDENCE_CURSOR)?
            .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let events = store.events_after(cursor, 1000)?;
        if events.is_empty() {
            return Ok(());
        }
        let engine = self.sampling.policy().current();
        let ladders = self.cases.ladders();
        let mut open_cases: Option<Vec<Case>> = None;
        for e in events {
            if e.kind == "evidence.threshold_crossed" {
                let alert = match (&e.tenant, e.data.get("category").and_then(|c| c.as_str())) {
                    (Some(t), Some(c)) => {
                        store.get::<ThresholdAlert>(&crate::store::tenant_key(t, c.as_bytes()))?
                    }
                    _ => None,
                };
                if let Some(alert) = alert {
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
                            let t = self.open_case(&alert, severity).await?;
                            cases.push(t.case);
                        }
                    }
                }
            }
            let mut b = Batch::new();
            b.put_raw(
                Tree::Meta,
                EVIDENCE_CURSOR.to_vec(),
                e.seq.to_be_bytes().to_vec(),
            );
            store.commit(b)?;
        }
        store.flush()?;
        Ok(())
    }

    async fn open_case(
        &self,
        alert: &ThresholdAlert,
        severity: Severity,
    ) -> anyhow::Result<Transition> {
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
        for sample_id in &alert.findings {
            let sample =
                self.sampling
                    .store()
                    .get::<crate::domain::Sample>(&crate::store::tenant_key(
                        alert.tenant.as_str(),
                        sample_id.0.as_bytes(),
                    ))?;
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
        let command = Command::Open {
            case_id: CaseId::new(),
            tenant: alert.tenant.clone(),
            categories: vec![alert.category.clone()],
            severity,
            evidence,
            report: None,
        };
        let actor = Actor::new(crate::domain::ActorKind::Service, "sampler");
        let t = self
            .cases
            .execute(
                None,
                &actor,
                command,
                Some("sampled evidence crossed the policy's threshold".into()),
            )
            .await
            .map_err(|e| anyhow::anyhow!("opening a case from evidence: {e}"))?;
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
