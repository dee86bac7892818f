//! The trees records live in: the storage layout, known only inside the
//! store.

/// A named collection of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tree {
    /// Counters kept by the store itself (the event sequence).
    Meta,
    /// The append-only event log, keyed by a gapless big-endian sequence.
    Events,
    /// Tenants by id.
    Tenants,
    /// Sources by `tenant/source`.
    Sources,
    /// Each source's schedule and health by `tenant/source`.
    SourceState,
    /// Samples by `tenant/sample` (sample ids are time-ordered).
    Samples,
    /// Content hashes already sampled, by `tenant/hash`.
    Seen,
    /// Findings by `tenant/category/sample`.
    Findings,
    /// Hourly prevalence tallies by `tenant/hour`.
    Tallies,
    /// Raised evidence thresholds by `tenant/category`.
    Alerts,
    /// Push-intake counters by tenant.
    Intake,
    /// Enforcement cases by id.
    Cases,
    /// Pending deadlines by id.
    Deadlines,
    /// Index of pending deadlines: big-endian due time (ms) + id → id.
    DeadlineDue,
    /// Webhook messages queued with the decision that caused them, by id
    /// (time-ordered).
    Outbox,
    /// API tokens by the hex SHA-256 of their secret.
    Tokens,
    /// Employee reports by id.
    Reports,
    /// Outbox messages not yet fanned out to endpoints: message id → empty.
    OutboxNew,
    /// Webhook endpoints by id.
    Endpoints,
    /// Deliveries (one message to one endpoint) by id.
    Deliveries,
    /// Index of pending deliveries: big-endian due time (ms) + id → id.
    DeliveryDue,
    /// Orders by idempotency key → the case they belong to.
    Orders,
    /// Action receipts by idempotency key.
    Receipts,
    /// Alerts for operators (disabled endpoints, failed or overdue receipts) by id.
    OperatorAlerts,
    /// Index of each case's events: case id + big-endian sequence → empty.
    /// Written in the same transaction as the event.
    CaseEvents,
    /// Index of cases: `o/` + id while the case is open, and `t/` + tenant
    /// + `/` + id for every case. Written with the case.
    CaseIndex,
    /// Index of each outbox message's deliveries: message id + `/` +
    /// delivery id → empty. Written with the delivery.
    MessageDeliveries,
    /// Reviewers' labels by `tenant/sample/category/reviewer`.
    Labels,
    /// Each tenant's review state (the seed of its draw order) by tenant.
    ReviewState,
}

impl Tree {
    /// Every tree, in index order.
    pub const ALL: [Tree; 29] = [
        Tree::Meta,
        Tree::Events,
        Tree::Tenants,
        Tree::Sources,
        Tree::SourceState,
        Tree::Samples,
        Tree::Seen,
        Tree::Findings,
        Tree::Tallies,
        Tree::Alerts,
        Tree::Intake,
        Tree::Cases,
        Tree::Deadlines,
        Tree::DeadlineDue,
        Tree::Outbox,
        Tree::Tokens,
        Tree::Reports,
        Tree::OutboxNew,
        Tree::Endpoints,
        Tree::Deliveries,
        Tree::DeliveryDue,
        Tree::Orders,
        Tree::Receipts,
        Tree::OperatorAlerts,
        Tree::CaseEvents,
        Tree::CaseIndex,
        Tree::MessageDeliveries,
        Tree::Labels,
        Tree::ReviewState,
    ];

    /// The tree's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Events => "events",
            Tree::Tenants => "tenants",
            Tree::Sources => "sources",
            Tree::SourceState => "source_state",
            Tree::Samples => "samples",
            Tree::Seen => "seen",
            Tree::Findings => "findings",
            Tree::Tallies => "tallies",
            Tree::Alerts => "alerts",
            Tree::Intake => "intake",
            Tree::Cases => "cases",
            Tree::Deadlines => "deadlines",
            Tree::DeadlineDue => "deadline_due",
            Tree::Outbox => "outbox",
            Tree::Tokens => "tokens",
            Tree::Reports => "reports",
            Tree::OutboxNew => "outbox_new",
            Tree::Endpoints => "endpoints",
            Tree::Deliveries => "deliveries",
            Tree::DeliveryDue => "delivery_due",
            Tree::Orders => "orders",
            Tree::Receipts => "receipts",
            Tree::OperatorAlerts => "operator_alerts",
            Tree::CaseEvents => "case_events",
            Tree::CaseIndex => "case_index",
            Tree::MessageDeliveries => "message_deliveries",
            Tree::Labels => "labels",
            Tree::ReviewState => "review_state",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}
