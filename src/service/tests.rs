//! The use cases called directly, as a worker or a second replica would:
//! one store (sled on disk, or PostgreSQL with `AUPD_TEST_DATABASE_URL`),
//! two sets of services over it, a clock that moves only when told.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use super::cases::{CaseService, HandOpen, OpenError};
use super::labels::{LabelError, LabelInput, Labels};
use super::reports::{NewReport, ReportError, Reports};
use crate::clock::{Clock, ManualClock};
use crate::domain::{
    Actor, ActorKind, LabelOrigin, ReviewAnswer, RiskTier, Tenant, TenantId, TenantStatus,
};
use crate::policy::PolicyHandle;
use crate::sampling::{Item, Sampling};
use crate::store::{self, Batch, SharedStore, SledStore};

/// Keeps the store's backing alive for the test.
enum Backing {
    Disk(#[allow(dead_code)] tempfile::TempDir),
    Database(#[allow(dead_code)] crate::store::TestDb),
}

struct Fixture {
    _backing: Backing,
    store: SharedStore,
    policy: Arc<PolicyHandle>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
}

/// A store with one tenant: sled on disk, or a fresh PostgreSQL database
/// when `AUPD_TEST_DATABASE_URL` names a server.
fn fixture() -> Fixture {
    let (backing, store): (Backing, SharedStore) = match crate::store::TestDb::new() {
        Some(db) => {
            let store = Arc::new(db.open());
            (Backing::Database(db), store)
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(SledStore::open(dir.path()).unwrap());
            (Backing::Disk(dir), store)
        }
    };
    let start: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
    let tenant = TenantId::try_from("parlor").unwrap();
    let mut batch = Batch::new();
    batch
        .put(&Tenant {
            id: tenant.clone(),
            name: "Parlor".into(),
            contacts: Vec::new(),
            risk_tier: RiskTier::High,
            status: TenantStatus::Active,
            intake_budget_per_hour: 1_000,
            enforcement: None,
            created_at: start,
            updated_at: start,
        })
        .unwrap();
    store.commit(batch).unwrap();
    Fixture {
        _backing: backing,
        store,
        policy: Arc::new(PolicyHandle::load(&crate::policy::shipped_dir()).unwrap()),
        clock: Arc::new(ManualClock::new(start)),
        tenant,
    }
}

impl Fixture {
    fn sampling(&self) -> Arc<Sampling> {
        let settings = crate::config::SamplingSettings {
            intake_sample_rate: 1.0,
            ..Default::default()
        };
        Arc::new(
            Sampling::new(
                self.store.clone(),
                self.policy.clone(),
                settings,
                Arc::new(crate::sampling::guard::SystemResolver),
            )
            .unwrap(),
        )
    }

    /// The case use cases of one replica.
    fn cases(&self) -> CaseService {
        let clock: Arc<dyn Clock> = self.clock.clone();
        CaseService::with_policy(self.store.clone(), self.policy.clone(), clock)
    }

    /// The report use cases of one replica.
    fn reports(&self, per_hour: u32) -> Reports {
        Reports::new(self.cases(), self.sampling(), self.policy.clone(), per_hour)
    }

    /// Events in the log, leaving out the outcomes of the background
    /// fetches a report starts (they land whenever the fetch ends).
    fn events(&self) -> usize {
        store::events::after(&self.store, 0, usize::MAX)
            .unwrap()
            .iter()
            .filter(|e| !e.kind.starts_with("fetch.") && !e.kind.starts_with("sample."))
            .count()
    }
}

fn report(tenant: &TenantId, category: &str) -> NewReport {
    NewReport {
        tenant: tenant.clone(),
        category: category.into(),
        // Port 9 on loopback: the background sampling of the URL is
        // refused by the SSRF guard and only logged.
        urls: vec!["http://127.0.0.1:9/p/1".parse().unwrap()],
        description: "a call to march armed on the town hall".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_join_one_case_and_the_hourly_limit_holds_across_replicas() {
    let f = fixture();
    let (a, b) = (f.reports(2), f.reports(2));
    let carol = Actor::new(ActorKind::Reporter, "carol");
    let category = f.policy.current().policy().categories[0].id.clone();

    let first = a
        .file(&carol, "carol", report(&f.tenant, &category))
        .await
        .unwrap();
    let second = b
        .file(&carol, "carol", report(&f.tenant, &category))
        .await
        .unwrap();
    assert_eq!(
        first.case.id, second.case.id,
        "the second report joins the open case"
    );
    assert_eq!(second.report.case, Some(first.case.id.0.to_string()));

    // Two reports an hour per reporter, counted in the store: the other
    // replica refuses the third, and it writes nothing.
    let before = f.events();
    let third = a.file(&carol, "carol", report(&f.tenant, &category)).await;
    assert!(
        matches!(third, Err(ReportError::RateLimited(2))),
        "{third:?}"
    );
    assert_eq!(f.events(), before);
    // Another reporter has their own allowance.
    let dan = Actor::new(ActorKind::Reporter, "dan");
    b.file(&dan, "dan", report(&f.tenant, &category))
        .await
        .unwrap();
    // An hour on, carol may file again.
    f.clock.advance(jiff::SignedDuration::from_hours(1));
    a.file(&carol, "carol", report(&f.tenant, &category))
        .await
        .unwrap();

    let mine = b.of_reporter("carol").await.unwrap();
    assert_eq!(mine.len(), 3);
    assert!(mine
        .iter()
        .all(|(r, c)| r.reporter == "carol" && c.as_ref().is_some_and(|c| c.id == first.case.id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_report_writes_nothing_and_counts_nothing() {
    let f = fixture();
    let reports = f.reports(1);
    let carol = Actor::new(ActorKind::Reporter, "carol");
    let category = f.policy.current().policy().categories[0].id.clone();
    let before = f.events();
    let unknown = reports
        .file(&carol, "carol", report(&f.tenant, "no-such-category"))
        .await;
    assert!(matches!(unknown, Err(ReportError::UnknownCategory(ref c)) if c == "no-such-category"));
    let nobody = TenantId::try_from("nobody").unwrap();
    let absent = reports
        .file(&carol, "carol", report(&nobody, &category))
        .await;
    assert!(
        matches!(absent, Err(ReportError::UnknownTenant)),
        "{absent:?}"
    );
    assert_eq!(f.events(), before, "a refused report leaves no event");
    assert!(f.store.reports().unwrap().is_empty());
    // Neither refusal took the one report this hour allows.
    reports
        .file(&carol, "carol", report(&f.tenant, &category))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_are_dated_by_the_service_clock_and_refusals_write_nothing() {
    let f = fixture();
    let sampling = f.sampling();
    let items = vec![Item {
        id: None,
        url: None,
        text: "we will storm the capitol tomorrow, bring rifles".into(),
    }];
    sampling.intake(&f.tenant, items).await.unwrap();
    let sample = f.store.newest_samples(&f.tenant, 1).unwrap().remove(0);
    let category = f.policy.current().policy().categories[0].id.clone();
    let labels = Labels::new(f.store.clone(), f.policy.clone(), f.clock.clone());
    let input = |answer| LabelInput {
        labels: BTreeMap::from([(category.clone(), answer)]),
        note: None,
        origin: LabelOrigin::Queue,
    };

    let before = f.events();
    let one = labels
        .record(&f.tenant, sample.id, "rita", input(ReviewAnswer::Violates))
        .await
        .unwrap();
    assert_eq!(one.labels.len(), 1);
    assert_eq!(
        one.labels[0].at,
        f.clock.now(),
        "dated by the service clock"
    );
    assert_eq!(f.events(), before + 1, "one review.labelled event");
    assert_eq!(
        (one.standings[0].violates, one.standings[0].evidence),
        (1, false)
    );

    let two = labels
        .record(&f.tenant, sample.id, "sam", input(ReviewAnswer::Violates))
        .await
        .unwrap();
    assert_eq!(
        two.standings[0].violates, 2,
        "standings count every reviewer"
    );
    assert!(
        two.standings[0].evidence,
        "two agreeing reviewers make evidence"
    );

    let after = f.events();
    let missing = labels
        .record(
            &f.tenant,
            crate::domain::SampleId(uuid::Uuid::now_v7()),
            "rita",
            input(ReviewAnswer::DoesNot),
        )
        .await;
    assert!(
        matches!(missing, Err(LabelError::UnknownItem)),
        "{missing:?}"
    );
    let nobody = TenantId::try_from("nobody").unwrap();
    let foreign = labels
        .record(&nobody, sample.id, "rita", input(ReviewAnswer::DoesNot))
        .await;
    assert!(
        matches!(foreign, Err(LabelError::UnknownTenant)),
        "{foreign:?}"
    );
    assert_eq!(f.events(), after, "refused labels leave no event");
    assert_eq!(f.store.item_labels(&f.tenant, &sample.id).unwrap().len(), 2);
}

fn hand_open(tenant: &TenantId, categories: &[&str]) -> HandOpen {
    HandOpen {
        tenant: tenant.clone(),
        categories: categories.iter().map(|c| c.to_string()).collect(),
        severity: None,
        findings: vec!["finding-1".into()],
        reason: "seen on the front page".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_opened_by_hand_takes_the_free_slot_so_reports_join_it() {
    let f = fixture();
    let cases = f.cases();
    let engine = f.policy.current();
    let category = engine.policy().categories[0].id.clone();
    let ops = Actor::new(ActorKind::Operator, "olga");

    // Read the slot as a racing opener would, before the hand-opened case.
    let (_, stale) = f.store.open_slot(f.tenant.as_str(), &category).unwrap();
    let first = cases
        .open_by_hand(&ops, &engine, hand_open(&f.tenant, &[&category]))
        .await
        .unwrap();
    let (holder, _) = f.store.open_slot(f.tenant.as_str(), &category).unwrap();
    assert_eq!(
        holder.map(|c| c.id),
        Some(first.case.id),
        "the slot names the hand-opened case"
    );
    // The racing opener's commit, made on the slot it read before, fails.
    let mut racing = Batch::new();
    store::cases::take_open_slot(&mut racing, &stale, &crate::domain::CaseId::new());
    assert!(matches!(
        f.store.commit(racing),
        Err(store::StoreError::Conflict(_))
    ));

    // A second case by hand for the same category opens, and leaves the
    // slot with the first: reports join the first.
    let second = cases
        .open_by_hand(&ops, &engine, hand_open(&f.tenant, &[&category]))
        .await
        .unwrap();
    assert_ne!(second.case.id, first.case.id);
    let (holder, _) = f.store.open_slot(f.tenant.as_str(), &category).unwrap();
    assert_eq!(holder.map(|c| c.id), Some(first.case.id));
    let carol = Actor::new(ActorKind::Reporter, "carol");
    let filed = f
        .reports(5)
        .file(&carol, "carol", report(&f.tenant, &category))
        .await
        .unwrap();
    assert_eq!(filed.case.id, first.case.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_by_hand_needs_a_known_tenant_and_policy_categories() {
    let f = fixture();
    let cases = f.cases();
    let engine = f.policy.current();
    let ops = Actor::new(ActorKind::Operator, "olga");
    let before = f.events();
    let nobody = TenantId::try_from("nobody").unwrap();
    let category = engine.policy().categories[0].id.clone();
    let r = cases
        .open_by_hand(&ops, &engine, hand_open(&nobody, &[&category]))
        .await;
    assert!(matches!(r, Err(OpenError::UnknownTenant)), "{r:?}");
    let r = cases
        .open_by_hand(&ops, &engine, hand_open(&f.tenant, &[&category, "no-such"]))
        .await;
    assert!(
        matches!(r, Err(OpenError::UnknownCategory(ref c)) if c == "no-such"),
        "{r:?}"
    );
    let r = cases
        .open_by_hand(&ops, &engine, hand_open(&f.tenant, &[]))
        .await;
    assert!(matches!(r, Err(OpenError::NoCategory)), "{r:?}");
    assert_eq!(f.events(), before, "nothing written");
    assert!(cases.all().await.unwrap().is_empty());
}
