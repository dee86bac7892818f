//! What every backend must do alike: one function run against each.

use super::{Batch, Op, SharedStore, StoreError, Tree};

fn put(tree: Tree, key: &[u8], value: &[u8]) -> Op {
    Op::Put {
        tree,
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn batch(ops: Vec<Op>) -> Batch {
    let mut b = Batch::new();
    b.ops = ops;
    b
}

fn keys(rows: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    rows.iter().map(|(k, _)| k.clone()).collect()
}

/// Checks `store`, which must be empty.
pub(crate) fn run(store: &SharedStore) {
    // Round trip, trees kept apart.
    store
        .commit(batch(vec![
            put(Tree::OutboxNew, b"a", b"1"),
            put(Tree::MessageDeliveries, b"a", b"2"),
        ]))
        .unwrap();
    assert_eq!(store.get_raw(Tree::OutboxNew, b"a").unwrap().unwrap(), b"1");
    assert_eq!(
        store
            .get_raw(Tree::MessageDeliveries, b"a")
            .unwrap()
            .unwrap(),
        b"2"
    );
    assert!(store.get_raw(Tree::CaseEvents, b"a").unwrap().is_none());
    // Several at once, in the order asked, missing ones as such, a key
    // asked twice answered twice.
    assert_eq!(
        store
            .get_many_raw(
                Tree::OutboxNew,
                &[b"zz".to_vec(), b"a".to_vec(), b"a".to_vec()]
            )
            .unwrap(),
        vec![None, Some(b"1".to_vec()), Some(b"1".to_vec())]
    );
    assert!(store.get_many_raw(Tree::OutboxNew, &[]).unwrap().is_empty());

    // Prefix scans both ways, with 0xFF bytes in keys and prefixes.
    let ks: Vec<Vec<u8>> = vec![
        b"p/".to_vec(),
        b"p/1".to_vec(),
        b"p/2".to_vec(),
        vec![b'p', b'/', 0xFF],
        vec![b'p', b'/', 0xFF, 0xFF, 0],
        b"p0".to_vec(),
        b"q".to_vec(),
        vec![0xFF],
        vec![0xFF, 0xFF],
        vec![0xFF, 0xFF, 1],
    ];
    store
        .commit(batch(
            ks.iter().map(|k| put(Tree::CaseEvents, k, b"v")).collect(),
        ))
        .unwrap();
    let scan = |prefix: &[u8], limit, newest_first| {
        keys(
            &store
                .scan_raw(Tree::CaseEvents, prefix, limit, newest_first)
                .unwrap(),
        )
    };
    assert_eq!(scan(b"p/", usize::MAX, false), ks[0..5].to_vec());
    let mut rev = ks[0..5].to_vec();
    rev.reverse();
    assert_eq!(scan(b"p/", usize::MAX, true), rev);
    assert_eq!(scan(b"p/", 2, true), rev[0..2].to_vec());
    assert_eq!(scan(b"p/", 2, false), ks[0..2].to_vec());
    assert_eq!(scan(&[b'p', b'/', 0xFF], 10, false), ks[3..5].to_vec());
    assert_eq!(scan(&[0xFF], 10, false), ks[7..10].to_vec());
    assert_eq!(
        scan(&[0xFF, 0xFF], 10, true),
        vec![ks[9].clone(), ks[8].clone()]
    );
    assert_eq!(scan(b"", usize::MAX, false).len(), ks.len());
    assert_eq!(scan(b"", 1, true), vec![ks[9].clone()]);
    assert!(scan(b"p/", 0, false).is_empty());
    assert!(scan(b"zz", 10, false).is_empty());

    // Ranges: start inclusive, end exclusive, limited.
    let range = |start: &[u8], end: &[u8], limit| {
        keys(
            &store
                .range_raw_limited(Tree::CaseEvents, start, end, limit)
                .unwrap(),
        )
    };
    assert_eq!(range(b"p/1", b"p/2", 10), vec![b"p/1".to_vec()]);
    assert_eq!(range(b"p/", b"q", 2), ks[0..2].to_vec());
    assert_eq!(
        keys(
            &store
                .range_raw(Tree::CaseEvents, b"p0", &[0xFF, 0xFF])
                .unwrap()
        ),
        vec![b"p0".to_vec(), b"q".to_vec(), vec![0xFF]]
    );

    // A failed precondition writes nothing, events included.
    let head = super::audit::head(store).unwrap();
    let mut b = batch(vec![
        Op::Expect {
            tree: Tree::OutboxNew,
            key: b"a".to_vec(),
            value: Some(b"old".to_vec()),
        },
        put(Tree::OutboxNew, b"a", b"3"),
        put(Tree::OutboxNew, b"new", b"3"),
    ]);
    b.event("x.lost", None, serde_json::json!({})).unwrap();
    match store.commit(b) {
        Err(StoreError::Conflict(tree)) => assert_eq!(tree, "outbox_new"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.get_raw(Tree::OutboxNew, b"a").unwrap().unwrap(), b"1");
    assert!(store.get_raw(Tree::OutboxNew, b"new").unwrap().is_none());
    assert_eq!(super::audit::head(store).unwrap(), head);
    // Expecting absence of a present record conflicts; of an absent one holds.
    let absent = |key: &[u8]| Op::Expect {
        tree: Tree::OutboxNew,
        key: key.to_vec(),
        value: None,
    };
    assert!(matches!(
        store.commit(batch(vec![absent(b"a")])),
        Err(StoreError::Conflict(_))
    ));
    store
        .commit(batch(vec![
            absent(b"b"),
            Op::Expect {
                tree: Tree::OutboxNew,
                key: b"a".to_vec(),
                value: Some(b"1".to_vec()),
            },
            put(Tree::OutboxNew, b"b", b"4"),
        ]))
        .unwrap();
    assert_eq!(store.get_raw(Tree::OutboxNew, b"b").unwrap().unwrap(), b"4");

    // Writes of one key apply in order: the last wins.
    store
        .commit(batch(vec![
            put(Tree::OutboxNew, b"c", b"1"),
            Op::Delete {
                tree: Tree::OutboxNew,
                key: b"c".to_vec(),
            },
            put(Tree::OutboxNew, b"d", b"1"),
            put(Tree::OutboxNew, b"d", b"2"),
            Op::Delete {
                tree: Tree::OutboxNew,
                key: b"b".to_vec(),
            },
        ]))
        .unwrap();
    assert!(store.get_raw(Tree::OutboxNew, b"c").unwrap().is_none());
    assert!(store.get_raw(Tree::OutboxNew, b"b").unwrap().is_none());
    assert_eq!(store.get_raw(Tree::OutboxNew, b"d").unwrap().unwrap(), b"2");
    // Deleting what is not there is no error.
    store
        .commit(batch(vec![Op::Delete {
            tree: Tree::OutboxNew,
            key: b"nothing".to_vec(),
        }]))
        .unwrap();
    assert!(store.commit(Batch::new()).unwrap().is_empty());

    // Events: gapless, chained, indexed per case, written with the batch.
    let mut b = batch(vec![put(Tree::OutboxNew, b"c1", b"case")]);
    b.event("case.opened", Some("t"), serde_json::json!({"case": "c1"}))
        .unwrap();
    b.event("delivery.sent", None, serde_json::json!({"case": "c1"}))
        .unwrap();
    assert_eq!(store.commit(b).unwrap(), vec![1, 2]);
    let mut b = Batch::new();
    b.event(
        "case.closed",
        Some("t"),
        serde_json::json!({"case": "c1", "f": 0.1}),
    )
    .unwrap();
    assert_eq!(store.commit(b).unwrap(), vec![3]);
    store.flush().unwrap();
    let events = store.events_after(0, 10).unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(events[1].prev, events[0].hash);
    assert_eq!(events[2].prev, events[1].hash);
    assert_eq!(store.events_after(1, 1).unwrap()[0].seq, 2);
    let case: Vec<u64> = store
        .case_events("c1")
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(case, vec![1, 3]);
    let head = super::audit::head(store).unwrap();
    assert_eq!((head.seq, head.hash.as_str()), (3, events[2].hash.as_str()));
    assert_eq!(
        super::audit::verify(store, None).unwrap(),
        super::audit::AuditVerdict::Intact {
            records: 3,
            head: events[2].hash.clone()
        }
    );
    let raw = store.events_after_raw(2, 10).unwrap();
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].0, 3);

    // Claims: the rows in range, in key order, at most `limit`; a batch
    // whose precondition failed is undone alone and the claim commits the
    // next; after its commit the claim is over; a dropped claim writes
    // nothing.
    store
        .commit(batch(vec![
            put(Tree::DeliveryDue, b"d1", b"x"),
            put(Tree::DeliveryDue, b"d2", b"y"),
            put(Tree::DeliveryDue, b"d3", b"z"),
        ]))
        .unwrap();
    let mut claim = store.claim_raw(Tree::DeliveryDue, b"d1", b"d3", 5).unwrap();
    assert_eq!(keys(claim.rows()), vec![b"d1".to_vec(), b"d2".to_vec()]);
    let mut stale = batch(vec![Op::Delete {
        tree: Tree::DeliveryDue,
        key: b"d1".to_vec(),
    }]);
    stale.expect_raw(Tree::DeliveryDue, b"d1".to_vec(), Some(b"old".to_vec()));
    assert!(matches!(claim.commit(stale), Err(StoreError::Conflict(_))));
    assert!(store.get_raw(Tree::DeliveryDue, b"d1").unwrap().is_some());
    let mut fresh = batch(vec![Op::Delete {
        tree: Tree::DeliveryDue,
        key: b"d1".to_vec(),
    }]);
    fresh.expect_raw(Tree::DeliveryDue, b"d1".to_vec(), Some(b"x".to_vec()));
    fresh
        .event("deadline.claimed", None, serde_json::json!({}))
        .unwrap();
    assert_eq!(claim.commit(fresh).unwrap(), vec![4]);
    assert!(claim.commit(Batch::new()).is_err());
    drop(claim);
    assert!(store.get_raw(Tree::DeliveryDue, b"d1").unwrap().is_none());
    let claim = store.claim_raw(Tree::DeliveryDue, b"", b"e", 1).unwrap();
    assert_eq!(keys(claim.rows()), vec![b"d2".to_vec()]);
    drop(claim);
    let claim = store.claim_raw(Tree::DeliveryDue, b"", b"e", 9).unwrap();
    assert_eq!(keys(claim.rows()), vec![b"d2".to_vec(), b"d3".to_vec()]);
    drop(claim);
    assert!(store
        .claim_raw(Tree::DeliveryDue, b"e", b"f", 9)
        .unwrap()
        .rows()
        .is_empty());
    assert!(matches!(
        super::audit::verify(store, None).unwrap(),
        super::audit::AuditVerdict::Intact { records: 4, .. }
    ));

    // Review labels: one answer per reviewer, item and category; a
    // tenant's and an item's labels by prefix; the review state written
    // once, a second first write refused.
    review_records(store);

    // Cases and deadlines (tables of their own on PostgreSQL): read by id,
    // by tenant and while open; written only from the version read; due
    // deadlines claimed in due order, forgotten and fired.
    cases_and_deadlines(store);

    // Tenants, sources, tokens and reports (tables of their own on
    // PostgreSQL): by id, in key order, one tenant's sources only.
    tenants_tokens_reports(store);

    // Webhook records (tables of their own on PostgreSQL): messages read
    // several at once in the order asked, alerts newest first.
    webhook_records(store);
}

fn webhook_records(store: &SharedStore) {
    use crate::domain::{OperatorAlert, OutboxMessage};
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let message = |id: &str| OutboxMessage {
        id: id.into(),
        event_type: "case.noticed".into(),
        idempotency_key: format!("key-{id}"),
        tenant: None,
        payload: serde_json::json!({"n": id}),
        created_at: at,
        endpoint: None,
    };
    let alert = |id: &str| OperatorAlert {
        id: id.into(),
        kind: "delivery.failed".into(),
        subject: "ep_1".into(),
        message: "gave up".into(),
        at,
    };
    let (m1, m2) = (message("msg_1"), message("msg_2"));
    let mut w = Batch::new();
    w.put(&m2).unwrap();
    w.put(&m1).unwrap();
    for id in ["alt_1", "alt_3", "alt_2"] {
        w.put(&alert(id)).unwrap();
    }
    store.commit(w).unwrap();
    assert_eq!(store.message("msg_2").unwrap(), Some(m2.clone()));
    assert_eq!(
        store.messages_by_id(&["msg_2", "msg_9", "msg_1"]).unwrap(),
        vec![Some(m2.clone()), None, Some(m1.clone())]
    );
    assert!(store.messages_by_id(&[]).unwrap().is_empty());
    assert_eq!(store.messages().unwrap(), vec![m1, m2]);
    let ids = |v: Vec<OperatorAlert>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(store.operator_alerts(2).unwrap()), ["alt_3", "alt_2"]);
    assert_eq!(store.endpoint_count().unwrap(), 0);
    assert!(store.endpoints_versioned().unwrap().is_empty());
}

fn tenants_tokens_reports(store: &SharedStore) {
    use crate::domain::{
        Report, RiskTier, Source, SourceId, SourceKind, SourceState, Tenant, TenantId,
        TenantStatus, TokenRecord,
    };
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let tenant = |id: &str| Tenant {
        id: TenantId::try_from(id).unwrap(),
        name: format!("{id} forum"),
        contacts: Vec::new(),
        risk_tier: RiskTier::Standard,
        status: TenantStatus::Active,
        intake_budget_per_hour: 100,
        enforcement: None,
        created_at: at,
        updated_at: at,
    };
    let source = |tenant: &str, n: u128| Source {
        id: SourceId(uuid::Uuid::from_u128(n)),
        tenant: TenantId::try_from(tenant).unwrap(),
        kind: SourceKind::Rss,
        url: format!("https://{tenant}.example/feed/{n}")
            .parse()
            .unwrap(),
        budget_per_hour: 10,
        interval_secs: 60,
        enabled: true,
        created_at: at,
        updated_at: at,
    };
    let (parlor, parlorx) = (tenant("parlor"), tenant("parlorx"));
    // The second source's id sorts first: sources come back in id order.
    let sources = [
        source("parlor", 2),
        source("parlor", 1),
        source("parlorx", 3),
    ];
    let mut w = Batch::new();
    w.put(&parlorx).unwrap();
    w.put(&parlor).unwrap();
    for s in &sources {
        w.put(s).unwrap();
        w.put(&SourceState::new(s.tenant.clone(), s.id, at))
            .unwrap();
    }
    let token = |n: u8, name: &str| TokenRecord {
        id: format!("tok_{n}"),
        hash: format!("{n:02x}").repeat(32),
        name: name.into(),
        role: crate::domain::Role::Operator,
        created_at: at,
        revoked_at: None,
    };
    let (t2, t1) = (token(2, "second"), token(1, "first"));
    w.put(&t2).unwrap();
    w.put(&t1).unwrap();
    let report = |id: &str| Report {
        id: id.into(),
        reporter: "ana".into(),
        tenant: parlor.id.clone(),
        category: "hate-speech".into(),
        urls: Vec::new(),
        description: "posts".into(),
        created_at: at,
        case: None,
    };
    let (r2, r1) = (report("rpt_2"), report("rpt_1"));
    w.put(&r2).unwrap();
    w.put(&r1).unwrap();
    store.commit(w).unwrap();

    assert_eq!(store.tenant(&parlor.id).unwrap(), Some(parlor.clone()));
    assert!(store
        .tenant(&TenantId::try_from("quill").unwrap())
        .unwrap()
        .is_none());
    assert_eq!(
        store.tenants().unwrap(),
        vec![parlor.clone(), parlorx.clone()]
    );
    assert_eq!(
        store.sources(&parlor.id).unwrap(),
        vec![sources[1].clone(), sources[0].clone()]
    );
    assert_eq!(
        store.sources(&parlorx.id).unwrap(),
        vec![sources[2].clone()]
    );
    assert!(store
        .sources(&TenantId::try_from("par").unwrap())
        .unwrap()
        .is_empty());
    assert_eq!(
        store.source(&parlor.id, sources[0].id).unwrap(),
        Some(sources[0].clone())
    );
    assert!(store.source(&parlorx.id, sources[0].id).unwrap().is_none());
    assert_eq!(store.source_states().unwrap().len(), 3);
    assert_eq!(
        store
            .source_state(&parlorx.id, sources[2].id)
            .unwrap()
            .map(|s| s.source),
        Some(sources[2].id)
    );
    assert_eq!(store.token(&t1.hash).unwrap(), Some(t1.clone()));
    assert!(store.token(&"ff".repeat(32)).unwrap().is_none());
    assert_eq!(store.tokens().unwrap(), vec![t1, t2]);
    assert_eq!(store.reports().unwrap(), vec![r1, r2]);

    // Writes that follow on from a versioned read commit once.
    let (read, version) = store.tenant_versioned(&parlor.id).unwrap();
    let mut paused = read.unwrap();
    paused.status = TenantStatus::Paused;
    let mut w = Batch::new();
    w.expect_unchanged(&version);
    w.put(&paused).unwrap();
    store.commit(w.clone()).unwrap();
    assert!(matches!(store.commit(w), Err(StoreError::Conflict(_))));
    assert_eq!(store.tenant(&parlor.id).unwrap(), Some(paused));
    let (state, version) = store
        .source_state_versioned(&parlor.id, sources[0].id)
        .unwrap();
    let mut claimed = state.unwrap();
    claimed.claimed_by = Some("replica-1".into());
    let mut w = Batch::new();
    w.expect_unchanged(&version);
    w.put(&claimed).unwrap();
    store.commit(w.clone()).unwrap();
    assert!(matches!(store.commit(w), Err(StoreError::Conflict(_))));
    let (_, absent) = store
        .source_state_versioned(&parlor.id, SourceId(uuid::Uuid::from_u128(9)))
        .unwrap();
    assert!(!absent.exists());
}

fn cases_and_deadlines(store: &SharedStore) {
    use crate::domain::{Case, CaseId, CaseState};
    use crate::store::cases;
    use jiff::Timestamp;
    let at = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
    let a = test_case(1, "parlor", CaseState::Noticed);
    let b = test_case(2, "parlor", CaseState::Dismissed);
    // A tenant whose name starts with another's.
    let c = test_case(3, "parlorx", CaseState::Open);
    let mut w = Batch::new();
    for x in [&a, &b, &c] {
        w.put(x).unwrap();
    }
    store.commit(w).unwrap();
    let ids = |v: Vec<Case>| {
        let mut v: Vec<u128> = v.iter().map(|c| c.id.0.as_u128()).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(store.case(&a.id).unwrap().unwrap(), a);
    assert!(store
        .case(&CaseId(uuid::Uuid::from_u128(9)))
        .unwrap()
        .is_none());
    assert_eq!(ids(store.all_cases().unwrap()), vec![1, 2, 3]);
    assert_eq!(ids(store.open_cases().unwrap()), vec![1, 3]);
    assert_eq!(ids(store.tenant_cases("parlor").unwrap()), vec![1, 2]);
    assert_eq!(ids(store.tenant_cases("parlorx").unwrap()), vec![3]);
    assert!(store.tenant_cases("par").unwrap().is_empty());

    // A write from the version read commits once; again, it conflicts and
    // changes nothing. A case that must not exist yet cannot be opened twice.
    let (read, version) = store.case_versioned(&a.id).unwrap();
    let mut cured = read.unwrap();
    cured.state = CaseState::Cured;
    cured.version = 2;
    cured.updated_at = at(5);
    let mut w = Batch::new();
    w.expect_unchanged(&version);
    w.put(&cured).unwrap();
    store.commit(w.clone()).unwrap();
    assert!(matches!(store.commit(w), Err(StoreError::Conflict(_))));
    assert_eq!(store.case(&a.id).unwrap().unwrap(), cured);
    assert_eq!(ids(store.open_cases().unwrap()), vec![3]);
    assert_eq!(ids(store.tenant_cases("parlor").unwrap()), vec![1, 2]);
    let mut again = Batch::new();
    again.expect_unchanged(&cases::absent(&c.id));
    again.put(&c).unwrap();
    assert!(matches!(store.commit(again), Err(StoreError::Conflict(_))));

    // Deadlines fire in due order, whatever their ids.
    let deadline = |id: &str, s: i64| test_deadline(id, &c, s);
    let (d1, d2, d3) = (
        deadline("dl-b", 100),
        deadline("dl-a", 200),
        deadline("dl-c", 9_000),
    );
    let mut w = Batch::new();
    for d in [&d1, &d2, &d3] {
        cases::schedule_deadline(&mut w, d).unwrap();
    }
    store.commit(w).unwrap();
    assert_eq!(store.pending_deadlines().unwrap(), 3);
    assert_eq!(store.next_due().unwrap(), Some(at(100)));
    let now = at(1_000);
    let first = store.claim_due(now, None).unwrap().unwrap();
    assert_eq!(first.deadline.as_ref(), Some(&d1));
    let second = store
        .claim_due(now, Some(&first.cursor()))
        .unwrap()
        .unwrap();
    assert_eq!(second.deadline.as_ref(), Some(&d2));
    // The third is not due yet.
    assert!(store
        .claim_due(now, Some(&second.cursor()))
        .unwrap()
        .is_none());
    drop(second);
    first.forget().unwrap();
    assert_eq!(store.pending_deadlines().unwrap(), 2);
    assert_eq!(store.next_due().unwrap(), Some(at(200)));
    let mut fire = store.claim_due(now, None).unwrap().unwrap();
    assert_eq!(fire.deadline.as_ref(), Some(&d2));
    let mut w = Batch::new();
    cases::drop_deadline(&mut w, &d2);
    w.event(
        "case.deadline_fired",
        Some("parlorx"),
        serde_json::json!({"case": c.id}),
    )
    .unwrap();
    fire.commit(w).unwrap();
    drop(fire);
    assert_eq!(store.pending_deadlines().unwrap(), 1);
    assert_eq!(store.next_due().unwrap(), Some(at(9_000)));
    assert!(store.claim_due(now, None).unwrap().is_none());
    assert_eq!(
        store
            .case_events(&c.id.0.to_string())
            .unwrap()
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        vec!["case.deadline_fired"]
    );
}

fn review_records(store: &SharedStore) {
    use crate::domain::{Label, LabelOrigin, ReviewAnswer, ReviewState, SampleId, TenantId};
    use crate::store::reviews;
    let t = TenantId::try_from("rev").unwrap();
    let other = TenantId::try_from("rev-two").unwrap();
    let (a, b) = (SampleId::new(), SampleId::new());
    let label = |tenant: &TenantId, sample: SampleId, reviewer: &str, answer| Label {
        tenant: tenant.clone(),
        sample,
        category: "spam".into(),
        reviewer: reviewer.into(),
        answer,
        origin: LabelOrigin::Queue,
        note: None,
        at: jiff::Timestamp::UNIX_EPOCH,
    };
    let mut batch = Batch::new();
    for l in [
        label(&t, a, "ann", ReviewAnswer::Violates),
        label(&t, a, "bob", ReviewAnswer::DoesNot),
        label(&t, b, "ann", ReviewAnswer::Unsure),
        label(&other, a, "ann", ReviewAnswer::Violates),
    ] {
        reviews::put_label(&mut batch, &l).unwrap();
    }
    batch
        .event("review.labelled", Some("rev"), serde_json::json!({}))
        .unwrap();
    store.commit(batch).unwrap();
    let mut batch = Batch::new();
    reviews::put_label(&mut batch, &label(&t, a, "bob", ReviewAnswer::Violates)).unwrap();
    store.commit(batch).unwrap();
    assert_eq!(store.labels(&t).unwrap().len(), 3);
    let item = store.item_labels(&t, &a).unwrap();
    assert_eq!(
        item.iter().map(|l| l.answer).collect::<Vec<_>>(),
        vec![ReviewAnswer::Violates, ReviewAnswer::Violates]
    );
    assert_eq!(store.all_labels().unwrap().len(), 4);

    let (none, version) = store.review_state_versioned(&t).unwrap();
    assert!(none.is_none());
    let state = ReviewState {
        tenant: t.clone(),
        seed: 7,
    };
    let mut first = Batch::new();
    first.expect_unchanged(&version).put(&state).unwrap();
    let mut second = first.clone();
    store.commit(first).unwrap();
    assert!(matches!(
        store.commit(std::mem::take(&mut second)),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.review_state_versioned(&t).unwrap().0, Some(state));
}

/// A case for store tests: one category, opened and updated at
/// 1,800,000,000 s.
pub(crate) fn test_case(
    n: u128,
    tenant: &str,
    state: crate::domain::CaseState,
) -> crate::domain::Case {
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    crate::domain::Case {
        id: crate::domain::CaseId(uuid::Uuid::from_u128(n)),
        tenant: crate::domain::TenantId::try_from(tenant.to_string()).unwrap(),
        categories: vec!["hate-speech".into()],
        severity: crate::domain::Severity::High,
        state,
        owner: None,
        evidence: vec![],
        reports: vec![],
        plan: None,
        suspension: None,
        approvals: vec![],
        deadline: None,
        reminders: vec![],
        paused_remaining: None,
        appeals: vec![],
        participants: vec![],
        statements: vec![],
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

/// A cure deadline of `case`, due `s` seconds after 1,800,000,000 s.
pub(crate) fn test_deadline(
    id: &str,
    case: &crate::domain::Case,
    s: i64,
) -> crate::domain::Deadline {
    crate::domain::Deadline {
        id: crate::domain::DeadlineId(id.into()),
        case: case.id,
        kind: crate::domain::DeadlineKind::CureDeadline,
        due_at: jiff::Timestamp::from_second(1_800_000_000 + s).unwrap(),
    }
}

/// A scored sample of `tenant` drawn from source 7, flagged `hate-speech`
/// at 0.5, fetched at 1,800,000,000 s.
pub(crate) fn test_sample(n: u128, tenant: &str) -> crate::domain::Sample {
    use crate::domain::{
        FlaggedCategory, Sample, SampleId, SampleOrigin, SampleOutcome, SampleVerdict, Severity,
        SourceId, TenantId,
    };
    Sample {
        id: SampleId(uuid::Uuid::from_u128(n)),
        tenant: TenantId::try_from(tenant.to_string()).unwrap(),
        origin: SampleOrigin::Source {
            source: SourceId(uuid::Uuid::from_u128(7)),
        },
        url: Some("https://parlor.example/p/1".into()),
        item_id: None,
        fetched_at: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        content_hash: "ab".repeat(32),
        excerpt: "text".into(),
        outcome: SampleOutcome::Scored {
            verdict: SampleVerdict {
                policy_version: "pv1".into(),
                scores: [("hate-speech".to_string(), 0.5f32)].into(),
                flagged: vec![FlaggedCategory {
                    category: "hate-speech".into(),
                    severity: Severity::High,
                    score: 0.5,
                }],
                evidence: Vec::new(),
            },
        },
    }
}

/// The `hate-speech` finding of `sample`.
pub(crate) fn test_finding(sample: &crate::domain::Sample) -> crate::domain::Finding {
    crate::domain::Finding {
        tenant: sample.tenant.clone(),
        category: "hate-speech".into(),
        severity: crate::domain::Severity::High,
        score: 0.5,
        sample: sample.id,
        origin: sample.origin,
        url: sample.url.clone(),
        excerpt: sample.excerpt.clone(),
        evidence: Vec::new(),
        policy_version: "pv1".into(),
        found_at: sample.fetched_at,
    }
}

/// An hour of `tenant`'s prevalence tally: 40 sampled, 3 of them flagged
/// `hate-speech`.
pub(crate) fn test_tally(tenant: &str) -> crate::domain::Tally {
    crate::domain::Tally {
        tenant: crate::domain::TenantId::try_from(tenant.to_string()).unwrap(),
        hour: 500_000,
        sampled: 40,
        flagged: [("hate-speech".to_string(), 3)].into(),
    }
}

/// Reviewer ana's `harassment` answer on `sample`: violates, from the
/// review queue, at 1,800,000,000 s.
pub(crate) fn test_label(sample: &crate::domain::Sample) -> crate::domain::Label {
    crate::domain::Label {
        tenant: sample.tenant.clone(),
        sample: sample.id,
        category: "harassment".into(),
        reviewer: "ana".into(),
        answer: crate::domain::ReviewAnswer::Violates,
        origin: crate::domain::LabelOrigin::Queue,
        note: None,
        at: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
    }
}

/// `tenant`'s push-intake counter: a window opened at 1,800,000,000 s with
/// 12 items kept, 2,000 seen and 100 kept in all.
pub(crate) fn test_intake_counter(tenant: &str) -> crate::domain::IntakeCounter {
    crate::domain::IntakeCounter {
        tenant: crate::domain::TenantId::try_from(tenant.to_string()).unwrap(),
        window_start: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        kept_in_window: 12,
        seen_total: 2_000,
        kept_total: 100,
    }
}
