//! The command path: read a case, let `enforcement::decide` judge the
//! command, and commit the transition — case, audit events, deadlines and
//! webhook messages — in one store transaction, flushed before the caller
//! hears back. API handlers and background workers (deadline ticker, cure
//! verifier, evidence intake) all come through here.

use std::sync::Arc;

use anyhow::Context;
use jiff::Timestamp;

use crate::clock::Clock;
use crate::domain::{
    Actor, Case, CaseId, Command, Deadline, EvidenceKind, EvidenceRef, Report, ReportRef, Severity,
    Transition,
};
use crate::enforcement::{decide, DecisionError, Ladders};
use crate::policy::PolicyHandle;
use crate::store::cases::{self, transition_batch};
use crate::store::Batch;
use crate::store::{SharedStore, StoreError};

/// How many times a command is retried when another writer changed the case
/// between read and commit.
const CONFLICT_RETRIES: usize = 8;

/// Why a command was not carried out. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No such case.
    #[error("case not found")]
    NotFound,
    /// The state machine refused it.
    #[error(transparent)]
    Refused(#[from] DecisionError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// A case an operator opens by hand (`POST /v1/cases`), its fields checked
/// for shape by whoever parsed them.
#[derive(Debug, Clone)]
pub struct HandOpen {
    /// The tenant.
    pub tenant: crate::domain::TenantId,
    /// The policy categories at stake: at least one.
    pub categories: Vec<String>,
    /// A severity to start from; the categories' own may raise it.
    pub severity: Option<Severity>,
    /// Findings cited as evidence.
    pub findings: Vec<String>,
    /// Why the case is opened.
    pub reason: String,
}

/// Why a case was not opened by hand. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No such tenant.
    #[error("no such tenant")]
    UnknownTenant,
    /// The policy in force has no such category.
    #[error("the policy has no category `{0}`")]
    UnknownCategory(String),
    /// No category was named.
    #[error("name at least one category")]
    NoCategory,
    /// The command failed.
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// Where a [`CaseService`] takes its escalation ladders from.
#[derive(Debug, Clone)]
enum LadderSource {
    /// The same ladders always (tests, benchmarks).
    Fixed(Arc<Ladders>),
    /// The ladders of the policy in force: a reload swaps them together
    /// with the categories, as one policy.
    Policy(Arc<PolicyHandle>),
}

/// Carries out enforcement commands against the store.
#[derive(Debug, Clone)]
pub struct CaseService {
    store: SharedStore,
    ladders: LadderSource,
    clock: Arc<dyn Clock>,
}

impl CaseService {
    /// A service over `store`, judging with fixed `ladders`, telling time
    /// with `clock`.
    pub fn new(store: SharedStore, ladders: Ladders, clock: Arc<dyn Clock>) -> Self {
        CaseService {
            store,
            ladders: LadderSource::Fixed(Arc::new(ladders)),
            clock,
        }
    }

    /// A service judging with the ladders of the policy in force in `policy`.
    pub fn with_policy(
        store: SharedStore,
        policy: Arc<PolicyHandle>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        CaseService {
            store,
            ladders: LadderSource::Policy(policy),
            clock,
        }
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The ladders in force.
    pub fn ladders(&self) -> Arc<Ladders> {
        match &self.ladders {
            LadderSource::Fixed(ladders) => ladders.clone(),
            LadderSource::Policy(policy) => policy.current().policy().ladders.clone(),
        }
    }

    /// The AUP clauses statements of reasons quote: the policy in force's,
    /// or none with fixed ladders (tests, benchmarks).
    pub fn clauses(&self) -> crate::domain::statement::PolicyClauses {
        match &self.ladders {
            LadderSource::Fixed(_) => Default::default(),
            LadderSource::Policy(policy) => {
                let engine = policy.current();
                let p = engine.policy();
                crate::domain::statement::PolicyClauses {
                    version: p.version.clone(),
                    clauses: p
                        .categories
                        .iter()
                        .map(|c| crate::domain::statement::Clause {
                            category: c.id.clone(),
                            title: c.title.clone(),
                            text: c.aup.clone(),
                        })
                        .collect(),
                }
            }
        }
    }

    /// Reads one case.
    pub async fn get(&self, id: &CaseId) -> anyhow::Result<Option<Case>> {
        let id = *id;
        self.read("reading a case", move |store| store.case(&id))
            .await
    }

    /// Every case, for filtering by the caller.
    pub async fn all(&self) -> anyhow::Result<Vec<Case>> {
        self.read("listing cases", |store| store.all_cases()).await
    }

    /// Every open case, read through the open-case index.
    pub async fn open(&self) -> anyhow::Result<Vec<Case>> {
        self.read("listing open cases", |store| store.open_cases())
            .await
    }

    /// Every case of one tenant, read through the tenant index.
    pub async fn of_tenant(&self, tenant: &str) -> anyhow::Result<Vec<Case>> {
        let tenant = tenant.to_string();
        self.read("listing a tenant's cases", move |store| {
            store.tenant_cases(&tenant)
        })
        .await
    }

    /// Runs the store work `f` off the reactor; `what` names it in errors.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&SharedStore) -> Result<T, StoreError> + Send + 'static,
    ) -> anyhow::Result<T> {
        let store = self.store.clone();
        super::blocking(what, move || f(&store).context(what)).await
    }

    /// Runs `command` on case `id` (`None` only for `Command::Open`), with an
    /// optional reason recorded on every event the command produces. When it
    /// returns `Ok`, the transition is on disk.
    #[tracing::instrument(skip_all, fields(case = ?id, command = command.name(), actor = %actor.id))]
    pub async fn execute(
        &self,
        id: Option<&CaseId>,
        actor: &Actor,
        command: Command,
        reason: Option<String>,
    ) -> Result<Transition, CommandError> {
        self.run(id.copied(), actor, command, reason, None).await
    }

    /// [`Self::execute`], committing `extra` (the caller's own writes and
    /// events) in the same transaction as the transition: both land or
    /// neither does. A conflict on one of `extra`'s own preconditions is
    /// returned at once, as a store conflict.
    pub async fn execute_with(
        &self,
        id: &CaseId,
        actor: &Actor,
        command: Command,
        reason: Option<String>,
        extra: Batch,
    ) -> Result<Transition, CommandError> {
        self.run(Some(*id), actor, command, reason, Some(extra))
            .await
    }

    /// [`Self::execute`] of a `Command::Open`, committing `extra` in the same
    /// transaction as the new case (the evidence intake's cursor advance, a
    /// report):
    /// both land or neither does. A conflict on one of `extra`'s own
    /// preconditions is returned at once, as a store conflict.
    pub async fn open_with(
        &self,
        actor: &Actor,
        command: Command,
        reason: Option<String>,
        extra: Batch,
    ) -> Result<Transition, CommandError> {
        self.run(None, actor, command, reason, Some(extra)).await
    }

    /// Files `report` (which names its `reporter`): joins the tenant's
    /// open case for its category or opens one, retrying when another
    /// opener won the race, and sets `report.case`.
    pub async fn file_report(
        &self,
        actor: &Actor,
        report: &mut Report,
        severity: Severity,
    ) -> Result<Transition, CommandError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.join_or_open(actor, report, severity).await {
                // Another report or the evidence intake opened the case
                // first: join it.
                Err(e) if attempts < 3 && is_conflict(&e) => continue,
                other => return other,
            }
        }
    }

    /// Opens the case an operator asks for by hand. The tenant must exist
    /// and every category must be the policy's; the case's severity is the
    /// most severe of the one asked for and its categories'. Each category
    /// whose open-case slot is free is taken for the new case in the same
    /// transaction, so a report or evidence arriving meanwhile joins this
    /// case instead of opening a second one. A category already on another
    /// open case keeps that case in its slot: the operator asked for a case
    /// of their own and gets it, and later reports join the older one.
    pub async fn open_by_hand(
        &self,
        actor: &Actor,
        engine: &crate::policy::Engine,
        request: HandOpen,
    ) -> Result<Transition, OpenError> {
        let tenant = request.tenant.clone();
        let known = self
            .read("reading the tenant", move |store| store.tenant(&tenant))
            .await
            .map_err(CommandError::Store)?;
        if known.is_none() {
            return Err(OpenError::UnknownTenant);
        }
        let mut severity = request.severity;
        for c in &request.categories {
            let category = engine
                .policy()
                .categories
                .iter()
                .find(|k| &k.id == c)
                .ok_or_else(|| OpenError::UnknownCategory(c.clone()))?;
            severity = Some(severity.map_or(category.severity, |s| s.min(category.severity)));
        }
        let severity = severity.ok_or(OpenError::NoCategory)?;
        let evidence: Vec<EvidenceRef> = request
            .findings
            .iter()
            .map(|f| EvidenceRef {
                kind: EvidenceKind::Finding {
                    finding_id: f.clone(),
                    score: 0.0,
                },
                category: request.categories.first().cloned().unwrap_or_default(),
                url: None,
                policy_version: None,
            })
            .collect();
        let case_id = CaseId::new();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (tenant, categories) = (request.tenant.clone(), request.categories.clone());
            let slots = self
                .read("reading the open-case slots", move |store| {
                    categories
                        .iter()
                        .map(|c| store.open_slot(tenant.as_str(), c))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await
                .map_err(CommandError::Store)?;
            let mut extra = Batch::new();
            for (held_by, slot) in &slots {
                if held_by.is_none() {
                    cases::take_open_slot(&mut extra, slot, &case_id);
                }
            }
            let command = Command::Open {
                case_id,
                tenant: request.tenant.clone(),
                categories: request.categories.clone(),
                severity,
                evidence: evidence.clone(),
                report: None,
            };
            match self
                .open_with(actor, command, Some(request.reason.clone()), extra)
                .await
            {
                // A report or the evidence intake took a slot first: read
                // the slots again and leave that one to its case.
                Err(e) if attempts < 3 && is_conflict(&e) => continue,
                other => return Ok(other?),
            }
        }
    }

    /// Commits `report` (with its `report.filed` event) joined to the
    /// tenant's open case for its category, or opening one, in one
    /// transaction: a report never names a case that is not there, nor a case
    /// a report that is not. A case is opened only by taking the tenant's
    /// open-case slot for the category, so two openers racing never both open
    /// one: the loser gets a conflict and joins the winner's case on its next
    /// try.
    async fn join_or_open(
        &self,
        actor: &Actor,
        report: &mut Report,
        severity: Severity,
    ) -> Result<Transition, CommandError> {
        let listed: Option<Case> = self.open().await?.into_iter().find(|c| {
            c.tenant == report.tenant
                && c.state.is_open()
                && c.categories.contains(&report.category)
        });
        let (tenant, category) = (report.tenant.clone(), report.category.clone());
        let (slotted, slot) = self
            .read("reading the open-case slot", move |store| {
                store.open_slot(tenant.as_str(), &category)
            })
            .await?;
        let open = listed.or(slotted);
        let case_id = open.as_ref().map_or_else(CaseId::new, |c| c.id);
        report.case = Some(case_id.0.to_string());
        let mut filed = Batch::new();
        filed.put(&*report).map_err(store_err)?;
        filed
            .event(
                "report.filed",
                Some(report.tenant.as_str()),
                serde_json::json!({ "report": report.id, "case": report.case, "category": report.category, "urls": report.urls.len() }),
            )
            .map_err(store_err)?;
        let reason = Some(format!("employee report {}", report.id));
        match open {
            Some(case) => {
                self.execute_with(
                    &case.id,
                    actor,
                    Command::AttachReport {
                        report_id: report.id.clone(),
                        reporter: report.reporter.clone(),
                    },
                    reason,
                    filed,
                )
                .await
            }
            None => {
                cases::take_open_slot(&mut filed, &slot, &case_id);
                let evidence = report
                    .urls
                    .iter()
                    .map(|u| EvidenceRef {
                        kind: EvidenceKind::Report {
                            report_id: report.id.clone(),
                        },
                        category: report.category.clone(),
                        url: Some(u.clone()),
                        policy_version: None,
                    })
                    .collect();
                self.open_with(
                    actor,
                    Command::Open {
                        case_id,
                        tenant: report.tenant.clone(),
                        categories: vec![report.category.clone()],
                        severity,
                        evidence,
                        report: Some(ReportRef {
                            report_id: report.id.clone(),
                            reporter: report.reporter.clone(),
                        }),
                    },
                    reason,
                    filed,
                )
                .await
            }
        }
    }

    /// Commits and flushes a command off the reactor.
    async fn run(
        &self,
        id: Option<CaseId>,
        actor: &Actor,
        command: Command,
        reason: Option<String>,
        extra: Option<Batch>,
    ) -> Result<Transition, CommandError> {
        let this = self.clone();
        let actor = actor.clone();
        tokio::task::spawn_blocking(move || {
            let t =
                this.execute_unflushed(id.as_ref(), &actor, &command, reason, extra.as_ref())?;
            this.store.flush().map_err(store_err)?;
            Ok(t)
        })
        .await
        .map_err(|e| CommandError::Store(anyhow::anyhow!("command task failed: {e}")))?
    }

    /// The blocking body of [`Self::execute`], for callers already off the reactor.
    pub fn execute_blocking(
        &self,
        id: Option<&CaseId>,
        actor: &Actor,
        command: &Command,
        reason: Option<String>,
    ) -> Result<Transition, CommandError> {
        let t = self.execute_unflushed(id, actor, command, reason, None)?;
        self.store.flush().map_err(store_err)?;
        Ok(t)
    }

    /// [`Self::execute_blocking`] without the flush: the caller flushes once
    /// for a run of commands before acting on any of them. Reads, decides
    /// and commits, retrying when the case changed between the read and the
    /// commit; `extra` commits in the same transaction.
    fn execute_unflushed(
        &self,
        id: Option<&CaseId>,
        actor: &Actor,
        command: &Command,
        reason: Option<String>,
        extra: Option<&Batch>,
    ) -> Result<Transition, CommandError> {
        let store = self.store.clone();
        self.execute_committing(id, actor, command, reason, extra, &mut |batch| {
            store.commit(batch)
        })
    }

    /// [`Self::execute_unflushed`], each attempt's batch committed by
    /// `commit` (a claim's transaction, for a deadline).
    fn execute_committing(
        &self,
        id: Option<&CaseId>,
        actor: &Actor,
        command: &Command,
        reason: Option<String>,
        extra: Option<&Batch>,
        commit: &mut dyn FnMut(Batch) -> Result<Vec<u64>, StoreError>,
    ) -> Result<Transition, CommandError> {
        let case_id = match (id, command) {
            (Some(id), _) => *id,
            (None, Command::Open { case_id, .. }) => *case_id,
            (None, _) => return Err(CommandError::NotFound),
        };
        let fired = match command {
            Command::DeadlineFired { deadline_id } => Some(deadline_id.clone()),
            _ => None,
        };
        for _ in 0..CONFLICT_RETRIES {
            let (case, version) = self.store.case_versioned(&case_id).map_err(store_err)?;
            if id.is_some() && case.is_none() {
                return Err(CommandError::NotFound);
            }
            let now = self.clock.now();
            let mut transition = decide(case.as_ref(), actor, command, &self.ladders(), now)?;
            self.state_labelled_evidence(&mut transition, command)?;
            crate::enforcement::statements::attach(&mut transition, actor, &self.clauses(), now);
            if let Some(reason) = &reason {
                for e in &mut transition.events {
                    if e.reason.is_none() {
                        e.reason = Some(reason.clone());
                    }
                }
            }
            let mut batch =
                transition_batch(&self.store, &transition, &version, fired.as_ref(), now)
                    .map_err(store_err)?;
            if let Some(extra) = extra {
                batch.extend(extra.clone());
            }
            match commit(batch) {
                Ok(_) => return Ok(transition),
                // The case, or its tenant's status (which follows a
                // suspension), changed since the read: decide again.
                Err(e) if cases::is_case_or_tenant_conflict(&e) => continue,
                Err(e @ StoreError::Conflict(_)) => return Err(store_err(e)),
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(CommandError::Store(anyhow::anyhow!(
            "the case kept changing under this command; try again"
        )))
    }

    /// A suspension proposal states how many items reviewers agree violate
    /// the case's categories, and which estimate the policy rests them on.
    /// When the policy asks for labels and no item has two agreeing
    /// reviewers, an operator may not propose and no one may approve: the
    /// ladder's own proposal (a missed deadline) goes ahead, states the
    /// count, and waits for reviewers before approvals can order anything.
    fn state_labelled_evidence(
        &self,
        transition: &mut Transition,
        command: &Command,
    ) -> Result<(), CommandError> {
        let approving = matches!(command, Command::ApproveSuspension { .. });
        let proposal = transition
            .events
            .iter()
            .position(|e| e.kind == "suspension_proposed");
        if proposal.is_none() && !approving {
            return Ok(());
        }
        let case = &transition.case;
        let estimates: Vec<(String, crate::policy::Estimate)> = match &self.ladders {
            LadderSource::Policy(policy) => policy
                .current()
                .policy()
                .categories
                .iter()
                .filter(|c| case.categories.contains(&c.id))
                .map(|c| (c.id.clone(), c.case.estimate))
                .collect(),
            LadderSource::Fixed(_) => Vec::new(),
        };
        let count = crate::review::labelled_evidence(&*self.store, &case.tenant, &case.categories)
            .map_err(store_err)?;
        let required: Vec<&str> = estimates
            .iter()
            .filter(|(_, e)| e.needs_labels())
            .map(|(c, _)| c.as_str())
            .collect();
        if count == 0 && !required.is_empty() {
            if approving {
                return Err(CommandError::Refused(DecisionError::NoLabelledEvidence(format!(
                    "the policy rests {} on reviewers' labels, and no item of this tenant has two reviewers agreeing it violates them: the suspension cannot be approved until reviewers agree on one (GET /v1/review/next)",
                    required.join(", ")
                ))));
            }
            if matches!(command, Command::ProposeSuspension { .. }) {
                return Err(CommandError::Refused(DecisionError::NoLabelledEvidence(format!(
                    "the policy rests {} on reviewers' labels, and no item of this tenant has two reviewers agreeing it violates them",
                    required.join(", ")
                ))));
            }
        }
        let Some(event) = proposal.map(|i| &mut transition.events[i]) else {
            return Ok(());
        };
        if let serde_json::Value::Object(data) = &mut event.data {
            data.insert("labelled_evidence".into(), serde_json::json!(count));
            data.insert(
                "estimates".into(),
                serde_json::json!(estimates
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()),
            );
        }
        Ok(())
    }

    /// Fires every deadline due by now, oldest first, at most `limit`:
    /// each claimed so that no other replica fires it meanwhile, and each
    /// through the command path, its removal committing with its
    /// consequence in the claim's transaction, so it fires once. Returns
    /// those that fired (stale ones are dropped).
    pub fn fire_due(&self, limit: usize) -> anyhow::Result<Vec<(Deadline, Transition)>> {
        let now = self.clock.now();
        let mut fired = Vec::new();
        let mut from = None;
        for _ in 0..limit {
            let Some(mut claim) = self
                .store
                .claim_due(now, from.as_ref())
                .context("claiming a due deadline")?
            else {
                break;
            };
            from = Some(claim.cursor());
            let Some(d) = claim.deadline.clone() else {
                claim.forget().context("dropping an orphan due entry")?;
                continue;
            };
            let cmd = Command::DeadlineFired {
                deadline_id: d.id.clone(),
            };
            let outcome = self.execute_committing(
                Some(&d.case),
                &Actor::system(),
                &cmd,
                None,
                None,
                &mut |batch| claim.commit(batch),
            );
            match outcome {
                Ok(t) => {
                    let lag = self.clock.now().duration_since(d.due_at);
                    crate::metrics::deadline_fired(
                        std::time::Duration::try_from(lag).unwrap_or_default(),
                    );
                    fired.push((d, t))
                }
                Err(CommandError::Refused(DecisionError::StaleDeadline(_))) => {
                    // Cancelled, superseded or already handled: drop it.
                    tracing::debug!(deadline = %d.id.0, "dropping a stale deadline");
                    claim.forget().context("dropping a stale deadline")?;
                }
                Err(CommandError::Refused(e)) => {
                    // Anything else (not due yet, a bug) keeps the deadline:
                    // a deadline is never lost, at worst it is tried again.
                    tracing::warn!(deadline = %d.id.0, reason = %e, "deadline not fired; kept for the next tick");
                }
                Err(CommandError::NotFound) => {
                    claim.forget().context("dropping an orphan deadline")?;
                }
                Err(e) if is_conflict(&e) => {
                    // The case kept changing under it: kept for the next tick.
                    tracing::info!(deadline = %d.id.0, "deadline met a concurrent change; kept for the next tick");
                }
                Err(CommandError::Store(e)) => return Err(e),
            }
        }
        // One flush for the whole run: the fired deadlines' consequences
        // are durable before anyone acts on them.
        if !fired.is_empty() {
            self.store.flush().context("flushing fired deadlines")?;
        }
        Ok(fired)
    }

    /// When the next pending deadline is due, if any.
    pub fn next_due(&self) -> anyhow::Result<Option<Timestamp>> {
        self.store.next_due().context("reading the next deadline")
    }
}

/// Whether a command failed on a store precondition (another writer got
/// there first).
pub fn is_conflict(e: &CommandError) -> bool {
    match e {
        CommandError::Store(e) => crate::store::is_conflict(e),
        _ => false,
    }
}

fn store_err(e: StoreError) -> CommandError {
    CommandError::Store(anyhow::Error::from(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::{ActorKind, EvidenceKind, EvidenceRef, Severity, TenantId};
    use crate::store::SledStore;

    #[test]
    fn a_deadline_due_later_in_the_current_millisecond_waits_and_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        // Half a millisecond past a whole millisecond.
        let opened = Timestamp::from_microsecond(1_800_000_000_000_500).unwrap();
        let clock = Arc::new(ManualClock::new(opened));
        let cases = CaseService::new(store.clone(), Ladders::default(), clock.clone());
        let open = open_command("parlor", "violent-incitement", Severity::Critical);
        let t = cases
            .execute_blocking(
                None,
                &Actor::new(ActorKind::Service, "sampler"),
                &open,
                None,
            )
            .unwrap();
        let due = t.case.deadline.unwrap().due_at;
        let pending = store.pending_deadlines().unwrap();

        clock.set(due - jiff::SignedDuration::from_micros(200));
        // Reminders are due earlier; fire them, then nothing else may go.
        let first: Vec<_> = cases
            .fire_due(100)
            .unwrap()
            .into_iter()
            .map(|(d, _)| d.id)
            .collect();
        assert!(
            first.iter().all(|id| !id.0.contains("cure_deadline")),
            "{first:?}"
        );
        let after = store.pending_deadlines().unwrap();
        assert_eq!(
            after,
            pending - first.len(),
            "a not-yet-due deadline was dropped"
        );

        clock.set(due + jiff::SignedDuration::from_millis(1));
        let fired = cases.fire_due(100).unwrap();
        assert_eq!(fired.len(), 1);
        assert!(fired[0].0.id.0.contains("cure_deadline"));
    }

    fn open_command(tenant: &str, category: &str, severity: Severity) -> Command {
        Command::Open {
            case_id: CaseId::new(),
            tenant: TenantId::try_from(tenant).unwrap(),
            categories: vec![category.into()],
            severity,
            evidence: vec![EvidenceRef {
                kind: EvidenceKind::Prevalence {
                    sampled: 50,
                    flagged: 9,
                    lower: 0.1,
                    upper: 0.3,
                },
                category: category.into(),
                url: None,
                policy_version: None,
            }],
            report: None,
        }
    }

    #[test]
    fn the_case_indexes_follow_every_transition() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_800_000_000).unwrap(),
        ));
        let cases = CaseService::new(store.clone(), Ladders::default(), clock);
        let actor = Actor::new(ActorKind::Operator, "ana");
        let mut ids = Vec::new();
        for tenant in ["parlor", "parlor", "quill"] {
            let t = cases
                .execute_blocking(
                    None,
                    &actor,
                    &open_command(tenant, "hate-speech", Severity::High),
                    None,
                )
                .unwrap();
            ids.push(t.case.id);
        }
        let dismiss = Command::Dismiss {
            reason: "false positive".into(),
        };
        cases
            .execute_blocking(Some(&ids[0]), &actor, &dismiss, None)
            .unwrap();

        let sorted = |v: Vec<Case>| {
            let mut ids: Vec<String> = v.into_iter().map(|c| c.id.0.to_string()).collect();
            ids.sort();
            ids
        };
        let expect = |v: &[&CaseId]| {
            let mut ids: Vec<String> = v.iter().map(|c| c.0.to_string()).collect();
            ids.sort();
            ids
        };
        let check = || {
            assert_eq!(
                sorted(store.open_cases().unwrap()),
                expect(&[&ids[1], &ids[2]])
            );
            assert_eq!(
                sorted(store.tenant_cases("parlor").unwrap()),
                expect(&[&ids[0], &ids[1]])
            );
            assert_eq!(
                sorted(store.tenant_cases("quill").unwrap()),
                expect(&[&ids[2]])
            );
            // A tenant whose name is a prefix of another's sees only its own.
            assert!(store.tenant_cases("par").unwrap().is_empty());
        };
        check();
    }
}
