//! PostgreSQL tables for the aggregates that have left the `kv` table
//! (migrations 3 to 5, 7 and 8): cases and their deadlines, tenants, sources
//! and their schedules, API tokens, employee reports, the webhook side
//! (outbox messages, deliveries, endpoints, orders, receipts, operator
//! alerts; the queues the dispatcher claims from stay in `kv`), samples,
//! findings, hourly tallies, raised thresholds, intake counters, the content
//! hashes already sampled, reviewers' labels and review states.
//!
//! Each aggregate has a table keyed by its record's key (as text, `id`; as
//! bytes, `key`, where the key holds a binary UUID), with the columns an operator queries by (a case's tenant and state, a
//! deadline's due time, a token's role, …) beside `record`, the versioned
//! JSON the service reads (the same bytes as on sled, so a precondition
//! still compares the exact record read). The columns are written from the
//! record in the same statement; [`TABLES`] says which.
//!
//! SQL indexes replace the index trees sled keeps beside two of them
//! (`cases (tenant, id)`, the partial index on open cases, `deadlines
//! (due_key)`): the case repository reads them in SQL (`pg_cases.rs`), and
//! those trees are never written or read here ([`Place::SledOnly`]).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{Result, StoreError, Tree};

/// Prefix of sled's open-case entries of [`Tree::CaseIndex`].
const OPEN: &[u8] = b"o/";
/// Prefix of sled's tenant entries of [`Tree::CaseIndex`].
const TENANT: &[u8] = b"t/";

/// How a column's value is taken from the stored record.
#[derive(Clone, Copy)]
enum Source {
    /// The field at this JSON pointer inside the record (`/tenant`): a
    /// string as itself, anything else as its JSON text; absent or null is
    /// NULL.
    Field(&'static str),
    /// Worked out from the record and its key.
    Derived(fn(&[u8], &Value) -> Option<String>),
}

/// A column besides `id` and `record`.
struct Column {
    name: &'static str,
    /// Its SQL type; values are sent as text and cast.
    sql_type: &'static str,
    source: Source,
}

/// How a table holds its records' keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    /// As text, column `id` (collation "C", so ids order as bytes): keys
    /// that are ids or names.
    Text,
    /// As bytes, column `key`: keys with raw bytes in them (a tenant then a
    /// binary UUID).
    Bytes,
}

impl Key {
    fn column(self) -> &'static str {
        match self {
            Key::Text => "id",
            Key::Bytes => "key",
        }
    }

    fn sql_type(self) -> &'static str {
        match self {
            Key::Text => "text",
            Key::Bytes => "bytea",
        }
    }

    /// The column as the bytes of the key.
    fn as_bytes(self) -> &'static str {
        match self {
            Key::Text => "convert_to(id, 'UTF8')",
            Key::Bytes => "key",
        }
    }
}

/// An aggregate's table.
pub(super) struct Table {
    tree: Tree,
    name: &'static str,
    key: Key,
    columns: &'static [Column],
}

const fn col(name: &'static str, sql_type: &'static str, field: &'static str) -> Column {
    Column {
        name,
        sql_type,
        source: Source::Field(field),
    }
}

fn case_open(_: &[u8], r: &Value) -> Option<String> {
    let state: crate::domain::CaseState = serde_json::from_value(r.get("state")?.clone()).ok()?;
    Some(state.is_open().to_string())
}

/// The due-order key sled keeps a deadline under in `deadline_due`, as
/// bytea input (`\x` + hex).
fn deadline_due_key(key: &[u8], r: &Value) -> Option<String> {
    let due: jiff::Timestamp = r.get("due_at")?.as_str()?.parse().ok()?;
    let id = crate::domain::DeadlineId(std::str::from_utf8(key).ok()?.to_string());
    Some(format!(
        "\\x{}",
        hex::encode(super::cases::due_key(due, &id))
    ))
}

/// Every aggregate with a table of its own; the rest stay in `kv`.
static TABLES: &[Table] = &[
    Table {
        key: Key::Text,
        tree: Tree::Cases,
        name: "cases",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("state", "text", "/state"),
            Column {
                name: "open",
                sql_type: "boolean",
                source: Source::Derived(case_open),
            },
            col("updated_at", "timestamptz", "/updated_at"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Deadlines,
        name: "deadlines",
        columns: &[
            col("case_id", "text", "/case"),
            col("kind", "text", "/kind"),
            col("due_at", "timestamptz", "/due_at"),
            Column {
                name: "due_key",
                sql_type: "bytea",
                source: Source::Derived(deadline_due_key),
            },
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Tenants,
        name: "tenants",
        columns: &[
            col("name", "text", "/name"),
            col("status", "text", "/status"),
            col("risk_tier", "text", "/risk_tier"),
            col("updated_at", "timestamptz", "/updated_at"),
        ],
    },
    Table {
        key: Key::Bytes,
        tree: Tree::Sources,
        name: "sources",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("source", "uuid", "/id"),
            // The kind's fields are flattened into the source.
            col("kind", "text", "/kind"),
            col("url", "text", "/url"),
            col("enabled", "boolean", "/enabled"),
        ],
    },
    Table {
        key: Key::Bytes,
        tree: Tree::SourceState,
        name: "source_states",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("source", "uuid", "/source"),
            col("next_due", "timestamptz", "/next_due"),
            col("health", "text", "/health"),
            col("claimed_by", "text", "/claimed_by"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Tokens,
        name: "tokens",
        columns: &[
            col("name", "text", "/name"),
            col("role", "text", "/role"),
            col("created_at", "timestamptz", "/created_at"),
            col("revoked_at", "timestamptz", "/revoked_at"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Reports,
        name: "reports",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("reporter", "text", "/reporter"),
            col("category", "text", "/category"),
            col("created_at", "timestamptz", "/created_at"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Outbox,
        name: "outbox",
        columns: &[
            col("event_type", "text", "/event_type"),
            col("idempotency_key", "text", "/idempotency_key"),
            col("tenant", "text", "/tenant"),
            col("endpoint", "text", "/endpoint"),
            col("created_at", "timestamptz", "/created_at"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Deliveries,
        name: "deliveries",
        columns: &[
            col("message_id", "text", "/message_id"),
            col("endpoint_id", "text", "/endpoint_id"),
            col("event_type", "text", "/event_type"),
            col("status", "text", "/status"),
            col("next_attempt_at", "timestamptz", "/next_attempt_at"),
            col("updated_at", "timestamptz", "/updated_at"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Endpoints,
        name: "endpoints",
        columns: &[
            col("url", "text", "/url"),
            col("enabled", "boolean", "/enabled"),
            col("dry_run", "boolean", "/dry_run"),
            col("failing_since", "timestamptz", "/failing_since"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Orders,
        name: "orders",
        columns: &[
            col("case_id", "text", "/case_id"),
            col("event_type", "text", "/event_type"),
            col("message_id", "text", "/message_id"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Receipts,
        name: "receipts",
        columns: &[
            col("case_id", "text", "/case_id"),
            col("event_type", "text", "/event_type"),
            col("outcome", "text", "/outcome"),
            col("received_at", "timestamptz", "/received_at"),
        ],
    },
    Table {
        key: Key::Bytes,
        tree: Tree::Samples,
        name: "samples",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("sample", "uuid", "/id"),
            col("origin", "text", "/origin/type"),
            col("source", "uuid", "/origin/source"),
            // The outcome's fields are flattened into the sample.
            col("status", "text", "/status"),
            col("fetched_at", "timestamptz", "/fetched_at"),
            col("content_hash", "text", "/content_hash"),
            col("policy_version", "text", "/verdict/policy_version"),
            col("scores", "jsonb", "/verdict/scores"),
        ],
    },
    Table {
        key: Key::Bytes,
        tree: Tree::Findings,
        name: "findings",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("category", "text", "/category"),
            col("sample", "uuid", "/sample"),
            col("severity", "text", "/severity"),
            col("score", "real", "/score"),
            col("policy_version", "text", "/policy_version"),
            col("found_at", "timestamptz", "/found_at"),
        ],
    },
    Table {
        key: Key::Bytes,
        tree: Tree::Tallies,
        name: "tallies",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("hour", "bigint", "/hour"),
            col("sampled", "bigint", "/sampled"),
            col("flagged", "jsonb", "/flagged"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Alerts,
        name: "threshold_alerts",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("category", "text", "/category"),
            col("reason", "text", "/reason"),
            col("raised_at", "timestamptz", "/raised_at"),
            col("sampled", "bigint", "/prevalence/sampled"),
            col("flagged", "bigint", "/prevalence/flagged"),
            col("lower_bound", "double precision", "/prevalence/lower"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Intake,
        name: "intake_counters",
        columns: &[
            col("window_start", "timestamptz", "/window_start"),
            col("kept_in_window", "bigint", "/kept_in_window"),
            col("seen_total", "bigint", "/seen_total"),
            col("kept_total", "bigint", "/kept_total"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Seen,
        name: "seen_content",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("sample", "uuid", "/sample"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::Labels,
        name: "labels",
        columns: &[
            col("tenant", "text", "/tenant"),
            col("sample", "uuid", "/sample"),
            col("category", "text", "/category"),
            col("reviewer", "text", "/reviewer"),
            col("answer", "text", "/answer"),
            col("origin", "text", "/origin"),
            col("at", "timestamptz", "/at"),
        ],
    },
    Table {
        key: Key::Text,
        tree: Tree::ReviewState,
        name: "review_states",
        columns: &[col("seed", "numeric", "/seed")],
    },
    Table {
        key: Key::Text,
        tree: Tree::OperatorAlerts,
        name: "operator_alerts",
        columns: &[
            col("kind", "text", "/kind"),
            col("subject", "text", "/subject"),
            col("at", "timestamptz", "/at"),
        ],
    },
];

/// The table `tree` lives in, if it has one.
pub(super) fn table(tree: Tree) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.tree == tree)
}

/// Where a write to a tree's key goes on PostgreSQL.
#[derive(Clone, Copy)]
pub(super) enum Place {
    /// The `kv` table.
    Kv,
    /// The aggregate's own table.
    Table(&'static Table),
    /// Nowhere: an index entry sled's commit keeps beside a record, which
    /// an SQL index over that record's table answers here. No batch names
    /// one; one that did is refused.
    SledOnly,
}

/// Where `tree`'s record at `key` lives.
pub(super) fn place(tree: Tree, key: &[u8]) -> Place {
    if let Some(t) = table(tree) {
        return Place::Table(t);
    }
    match tree {
        Tree::DeadlineDue => Place::SledOnly,
        Tree::CaseIndex if key.starts_with(OPEN) || key.starts_with(TENANT) => Place::SledOnly,
        _ => Place::Kv,
    }
}

/// Whether reading `tree` needs more than the `kv` table.
pub(super) fn is_relational(tree: Tree) -> bool {
    table(tree).is_some() || tree == Tree::DeadlineDue
}

/// A key as a table's text id; `None` when it is not UTF-8 (no such row
/// can exist).
fn text_key(key: &[u8]) -> Option<String> {
    std::str::from_utf8(key).ok().map(str::to_string)
}

/// The SQL each table's writes and reads use, made once.
struct TableSql {
    upsert: String,
    delete: String,
    read_records: String,
    get: String,
    get_many: String,
}

static SQL: LazyLock<BTreeMap<&'static str, TableSql>> = LazyLock::new(|| {
    TABLES
        .iter()
        .map(|t| {
            let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            let n = t.columns.len();
            let (k, k_type, k_bytes) = (t.key.column(), t.key.sql_type(), t.key.as_bytes());
            let params: Vec<String> = [format!("$1::{k_type}[]")]
                .into_iter()
                .chain((2..=n + 1).map(|i| format!("${i}::text[]")))
                .chain([format!("${}::bytea[]", n + 2)])
                .collect();
            let casts: Vec<String> = t
                .columns
                .iter()
                .map(|c| format!("x.{}::{}", c.name, c.sql_type))
                .collect();
            let updates: Vec<String> = names
                .iter()
                .chain(["record"].iter())
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            let sql = TableSql {
                upsert: format!(
                    "INSERT INTO {table} ({k}, {cols}, record) \
                     SELECT x.k, {casts}, x.record \
                     FROM unnest({params}) AS x(k, {cols}, record) \
                     ON CONFLICT ({k}) DO UPDATE SET {updates}",
                    table = t.name,
                    cols = names.join(", "),
                    casts = casts.join(", "),
                    params = params.join(", "),
                    updates = updates.join(", "),
                ),
                delete: format!("DELETE FROM {} WHERE {k} = ANY($1::{k_type}[])", t.name),
                read_records: format!(
                    "SELECT u.n, t.record FROM unnest($1::{k_type}[]) WITH ORDINALITY AS u(k, n) \
                     LEFT JOIN {} t ON t.{k} = u.k ORDER BY u.n",
                    t.name
                ),
                get: format!("SELECT record FROM {} WHERE {k} = $1", t.name),
                get_many: format!(
                    "SELECT {k_bytes}, record FROM {} WHERE {k} = ANY($1::{k_type}[])",
                    t.name
                ),
            };
            (t.name, sql)
        })
        .collect()
});

/// The SQL of `table` (every entry of [`TABLES`] has some).
fn sql(table: &Table) -> &'static TableSql {
    &SQL[table.name]
}

/// Keys as a table takes them (see [`Key`]).
#[derive(Debug)]
enum Keys {
    Text(Vec<String>),
    Bytes(Vec<Vec<u8>>),
}

impl Keys {
    fn new(key: Key) -> Self {
        match key {
            Key::Text => Keys::Text(Vec::new()),
            Key::Bytes => Keys::Bytes(Vec::new()),
        }
    }

    /// Adds `key`; false when the table cannot hold it (a text table and
    /// a key that is not UTF-8).
    fn push(&mut self, key: &[u8]) -> bool {
        match self {
            Keys::Text(ids) => match text_key(key) {
                Some(id) => {
                    ids.push(id);
                    true
                }
                None => false,
            },
            Keys::Bytes(keys) => {
                keys.push(key.to_vec());
                true
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Keys::Text(ids) => ids.is_empty(),
            Keys::Bytes(keys) => keys.is_empty(),
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Keys::Text(ids) => ids,
            Keys::Bytes(keys) => keys,
        }
    }
}

/// One table's rows to upsert, as parallel columns, and keys to delete.
struct Writes {
    keys: Keys,
    columns: Vec<Vec<Option<String>>>,
    records: Vec<Vec<u8>>,
    deletes: Keys,
}

/// The writes of one commit to the tables.
#[derive(Default)]
pub(super) struct TableWrites(BTreeMap<&'static str, (&'static Table, Writes)>);

impl TableWrites {
    fn of(&mut self, table: &'static Table) -> &mut Writes {
        &mut self
            .0
            .entry(table.name)
            .or_insert_with(|| {
                (
                    table,
                    Writes {
                        keys: Keys::new(table.key),
                        columns: vec![Vec::new(); table.columns.len()],
                        records: Vec::new(),
                        deletes: Keys::new(table.key),
                    },
                )
            })
            .1
    }

    /// Adds the record stored as `value` under `key`.
    pub fn put(&mut self, table: &'static Table, key: &[u8], value: &[u8]) -> Result<()> {
        let encode = |message: String| StoreError::Encode {
            tree: table.tree.name(),
            message,
        };
        if table.key == Key::Text && text_key(key).is_none() {
            return Err(encode("its key is not UTF-8".into()));
        }
        let envelope: Value =
            serde_json::from_slice(value).map_err(|e| encode(format!("not JSON: {e}")))?;
        let record = envelope
            .get("r")
            .ok_or_else(|| encode("no record in its envelope".into()))?;
        let w = self.of(table);
        for (c, out) in table.columns.iter().zip(w.columns.iter_mut()) {
            out.push(match c.source {
                Source::Field(pointer) => match record.pointer(pointer) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                },
                Source::Derived(f) => f(key, record),
            });
        }
        w.keys.push(key);
        w.records.push(value.to_vec());
        Ok(())
    }

    /// Deletes the record under `key`.
    pub fn delete(&mut self, table: &'static Table, key: &[u8]) {
        // A key a text table cannot hold names no row: nothing to delete.
        self.of(table).deletes.push(key);
    }

    /// Sends every write, pipelined: deletes and upserts of distinct keys
    /// (the batch keeps only the last write of each key). Statements are
    /// prepared once per connection, for the tables a commit touches.
    pub async fn apply(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> std::result::Result<(), tokio_postgres::Error> {
        let mut sends = Vec::new();
        for (table, w) in self.0.values() {
            let sql = sql(table);
            if !w.deletes.is_empty() {
                sends.push(Box::pin(async move {
                    let delete = tx.prepare_cached(&sql.delete).await?;
                    tx.execute(&delete, &[w.deletes.param()]).await
                })
                    as std::pin::Pin<
                        Box<dyn std::future::Future<Output = _> + Send + '_>,
                    >);
            }
            if !w.keys.is_empty() {
                sends.push(Box::pin(async move {
                    let upsert = tx.prepare_cached(&sql.upsert).await?;
                    let mut params: Vec<&(dyn ToSql + Sync)> = vec![w.keys.param()];
                    params.extend(w.columns.iter().map(|c| c as &(dyn ToSql + Sync)));
                    params.push(&w.records);
                    tx.execute(&upsert, &params).await
                }));
            }
        }
        futures_util::future::try_join_all(sends).await.map(drop)
    }
}

/// Preconditions on records in the tables: which of a batch's expects
/// (by position) reads which table's row.
#[derive(Default)]
pub(super) struct TableExpects(BTreeMap<&'static str, (&'static Table, Vec<usize>, Keys)>);

impl TableExpects {
    /// Adds the batch's expect number `at`, on `key` of `table`. Returns
    /// false when no row can have that key (a text table's key that is not
    /// UTF-8).
    pub fn add(&mut self, at: usize, table: &'static Table, key: &[u8]) -> bool {
        let e = self
            .0
            .entry(table.name)
            .or_insert_with(|| (table, Vec::new(), Keys::new(table.key)));
        if !e.2.push(key) {
            return false;
        }
        e.1.push(at);
        true
    }

    /// The records as stored now, each with the expect number it answers.
    pub async fn read(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> std::result::Result<Vec<(usize, Option<Vec<u8>>)>, tokio_postgres::Error> {
        let reads = self.0.values().map(|(table, at, ids)| async move {
            let read = tx.prepare_cached(&sql(table).read_records).await?;
            let rows = tx.query(&read, &[ids.param()]).await?;
            Ok::<_, tokio_postgres::Error>(
                rows.into_iter()
                    .filter_map(|row| {
                        let n: i64 = row.get(0);
                        let i = *at.get(usize::try_from(n - 1).ok()?)?;
                        Some((i, row.get::<_, Option<Vec<u8>>>(1)))
                    })
                    .collect::<Vec<_>>(),
            )
        });
        let all = futures_util::future::try_join_all(reads).await?;
        Ok(all.into_iter().flatten().collect())
    }
}

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

async fn query(
    client: &deadpool_postgres::Object,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Rows> {
    let stmt = client
        .prepare_cached(sql)
        .await
        .map_err(super::pg_store::pg_error)?;
    let rows = client
        .query(&stmt, params)
        .await
        .map_err(super::pg_store::pg_error)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
        .collect())
}

/// The rows of `tree` (one [`is_relational`] says needs more than `kv`)
/// with `lo <= key < hi` (no upper bound when `hi` is `None`), in key
/// order (reversed with `desc`), at most `limit`: the keys and values sled
/// would hold.
pub(super) async fn read(
    client: &deadpool_postgres::Object,
    tree: Tree,
    lo: &[u8],
    hi: Option<&[u8]>,
    limit: i64,
    desc: bool,
) -> Result<Rows> {
    let order = if desc { "DESC" } else { "ASC" };
    if let Some(table) = table(tree) {
        // Ids compare as bytes (collation "C"), so text bounds read the
        // primary key index in sled's order; bounds that are not UTF-8
        // compare as bytes instead.
        let name = table.name;
        if table.key == Key::Bytes {
            let sql = format!(
                "SELECT key, record FROM {name} \
                 WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) \
                 ORDER BY key {order} LIMIT $3"
            );
            return query(client, &sql, &[&lo, &hi, &limit]).await;
        }
        // A bound that starts with a byte UTF-8 never uses is above every
        // id: no bound at all.
        let hi = hi.filter(|h| h.first().is_none_or(|b| *b < 0xF5));
        return match (text_key(lo), hi.map(text_key)) {
            (Some(lo), None | Some(Some(_))) => {
                let hi = hi.and_then(text_key);
                let sql = format!(
                    "SELECT convert_to(id, 'UTF8'), record FROM {name} \
                     WHERE id >= $1 AND ($2::text IS NULL OR id < $2) \
                     ORDER BY id {order} LIMIT $3"
                );
                query(client, &sql, &[&lo, &hi, &limit]).await
            }
            _ => {
                let sql = format!(
                    "SELECT convert_to(id, 'UTF8'), record FROM {name} \
                     WHERE convert_to(id, 'UTF8') >= $1 \
                       AND ($2::bytea IS NULL OR convert_to(id, 'UTF8') < $2) \
                     ORDER BY id {order} LIMIT $3"
                );
                query(client, &sql, &[&lo, &hi, &limit]).await
            }
        };
    }
    Err(StoreError::Backend(format!(
        "the {} tree is sled's own index: PostgreSQL answers it from its tables",
        tree.name()
    )))
}

/// The records of `table` at `keys`, in the order asked (one round trip).
pub(super) async fn get_many(
    client: &deadpool_postgres::Object,
    table: &Table,
    keys: &[Vec<u8>],
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut ids = Keys::new(table.key);
    for k in keys {
        ids.push(k);
    }
    let found: std::collections::HashMap<Vec<u8>, Vec<u8>> =
        query(client, &sql(table).get_many, &[ids.param()])
            .await?
            .into_iter()
            .collect();
    Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
}

/// `tree`'s record at `key`, for a tree [`is_relational`] says needs more
/// than `kv`.
pub(super) async fn get(
    client: &deadpool_postgres::Object,
    tree: Tree,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    if let Some(table) = table(tree) {
        let stmt = client
            .prepare_cached(&sql(table).get)
            .await
            .map_err(super::pg_store::pg_error)?;
        let row = match table.key {
            Key::Text => {
                let Some(id) = text_key(key) else {
                    return Ok(None);
                };
                client.query_opt(&stmt, &[&id]).await
            }
            Key::Bytes => client.query_opt(&stmt, &[&key]).await,
        }
        .map_err(super::pg_store::pg_error)?;
        return Ok(row.map(|r| r.get::<_, Vec<u8>>(0)));
    }
    Err(StoreError::Backend(format!(
        "the {} tree is sled's own index: PostgreSQL answers it from its tables",
        tree.name()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn where_(tree: Tree, key: &[u8]) -> String {
        match place(tree, key) {
            Place::Kv => "kv".into(),
            Place::Table(t) => t.name.into(),
            Place::SledOnly => "sled only".into(),
        }
    }

    #[test]
    fn sleds_index_entries_are_refused_and_slots_stay_in_kv() {
        assert_eq!(where_(Tree::Cases, b"x"), "cases");
        assert_eq!(where_(Tree::Deadlines, b"x"), "deadlines");
        assert_eq!(where_(Tree::Tenants, b"o/1"), "tenants");
        assert_eq!(where_(Tree::DeadlineDue, b"x"), "sled only");
        assert_eq!(where_(Tree::CaseIndex, b"o/1"), "sled only");
        assert_eq!(where_(Tree::CaseIndex, b"t/a/1"), "sled only");
        assert_eq!(where_(Tree::CaseIndex, b"s/a/hate"), "kv");
        assert_eq!(where_(Tree::Samples, b"o/1"), "samples");
        assert_eq!(where_(Tree::Seen, b"o/1"), "seen_content");
        assert_eq!(where_(Tree::OutboxNew, b"o/1"), "kv");
    }

    #[test]
    fn every_table_is_a_distinct_tree_and_name() {
        for (i, a) in TABLES.iter().enumerate() {
            for b in &TABLES[i + 1..] {
                assert!(a.tree != b.tree && a.name != b.name);
            }
        }
        assert_eq!(SQL.len(), TABLES.len());
        assert!(
            SQL["cases"].upsert.contains("x.open::boolean"),
            "{}",
            SQL["cases"].upsert
        );
    }

    #[test]
    fn a_source_written_by_its_repository_fills_its_columns() {
        use crate::domain::{Source, SourceId, SourceKind, TenantId};
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let source = Source {
            id: SourceId(uuid::Uuid::from_u128(7)),
            tenant: TenantId::try_from("parlor").unwrap(),
            kind: SourceKind::Rss,
            url: "https://parlor.example/feed.xml".parse().unwrap(),
            budget_per_hour: 50,
            interval_secs: 600,
            enabled: true,
            created_at: at,
            updated_at: at,
        };
        let mut w = TableWrites::default();
        let sources = table(Tree::Sources).unwrap();
        w.put(
            sources,
            &super::super::Record::key(&source),
            &super::super::encode(&source).unwrap(),
        )
        .unwrap();
        let (_, got) = &w.0["sources"];
        let columns: Vec<Option<String>> = got.columns.iter().map(|c| c[0].clone()).collect();
        assert_eq!(
            columns,
            vec![
                Some("parlor".into()),
                Some(uuid::Uuid::from_u128(7).to_string()),
                Some("rss".into()),
                Some("https://parlor.example/feed.xml".into()),
                Some("true".into()),
            ]
        );
    }

    /// The columns `record` fills in its table.
    fn columns_of<R: super::super::Record>(record: &R) -> Vec<Option<String>> {
        let mut w = TableWrites::default();
        let t = table(R::TREE).unwrap();
        w.put(
            t,
            &super::super::Record::key(record),
            &super::super::encode(record).unwrap(),
        )
        .unwrap();
        let (_, got) = &w.0[t.name];
        got.columns.iter().map(|c| c[0].clone()).collect()
    }

    #[test]
    fn sampling_and_review_records_fill_their_columns() {
        use crate::domain::{Label, LabelOrigin, ReviewAnswer, ReviewState, TenantId};
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let tenant = TenantId::try_from("parlor").unwrap();
        let sample = crate::store::conformance::test_sample(9, "parlor");
        let (id, source) = (sample.id, uuid::Uuid::from_u128(7));
        assert_eq!(
            columns_of(&sample),
            vec![
                Some("parlor".into()),
                Some(id.0.to_string()),
                Some("source".into()),
                Some(source.to_string()),
                Some("scored".into()),
                Some("2027-01-15T08:00:00Z".into()),
                Some("ab".repeat(32)),
                Some("pv1".into()),
                Some(r#"{"hate-speech":0.5}"#.into()),
            ]
        );
        let finding = crate::store::conformance::test_finding(&sample);
        assert_eq!(
            columns_of(&finding),
            vec![
                Some("parlor".into()),
                Some("hate-speech".into()),
                Some(id.0.to_string()),
                Some("high".into()),
                Some("0.5".into()),
                Some("pv1".into()),
                Some("2027-01-15T08:00:00Z".into()),
            ]
        );
        let tally = crate::store::conformance::test_tally("parlor");
        assert_eq!(
            columns_of(&tally),
            vec![
                Some("parlor".into()),
                Some("500000".into()),
                Some("40".into()),
                Some(r#"{"hate-speech":3}"#.into()),
            ]
        );
        let label = Label {
            answer: ReviewAnswer::DoesNot,
            origin: LabelOrigin::Feedback,
            ..crate::store::conformance::test_label(&sample)
        };
        assert_eq!(
            columns_of(&label),
            vec![
                Some("parlor".into()),
                Some(id.0.to_string()),
                Some("harassment".into()),
                Some("ana".into()),
                Some("does_not".into()),
                Some("feedback".into()),
                Some("2027-01-15T08:00:00Z".into()),
            ]
        );
        let state = ReviewState {
            tenant: tenant.clone(),
            seed: u64::MAX,
        };
        assert_eq!(columns_of(&state), vec![Some(u64::MAX.to_string())]);
        let alert = crate::domain::ThresholdAlert {
            tenant,
            category: "hate-speech".into(),
            reason: crate::domain::CrossingReason::Prevalence,
            raised_at: at,
            prevalence: crate::domain::Prevalence {
                sampled: 200,
                flagged: 30,
                rate: 0.15,
                lower: 0.107,
                upper: 0.206,
            },
            findings: vec![id],
            labels: None,
        };
        assert_eq!(
            columns_of(&alert),
            vec![
                Some("parlor".into()),
                Some("hate-speech".into()),
                Some("prevalence".into()),
                Some("2027-01-15T08:00:00Z".into()),
                Some("200".into()),
                Some("30".into()),
                Some("0.107".into()),
            ]
        );
        let counter = crate::store::conformance::test_intake_counter("parlor");
        assert_eq!(
            columns_of(&counter),
            vec![
                Some("2027-01-15T08:00:00Z".into()),
                Some("12".into()),
                Some("2000".into()),
                Some("100".into()),
            ]
        );
    }

    #[test]
    fn columns_come_from_the_record_and_derived_ones_from_code() {
        let mut w = TableWrites::default();
        let deadlines = table(Tree::Deadlines).unwrap();
        w.put(
            deadlines,
            b"dl-1",
            br#"{"v":1,"r":{"id":"dl-1","case":"c","kind":"reminder","due_at":"2027-01-15T12:00:00Z"}}"#,
        )
        .unwrap();
        let (_, got) = &w.0["deadlines"];
        assert!(matches!(&got.keys, Keys::Text(ids) if ids == &["dl-1"]));
        assert_eq!(got.columns[0], vec![Some("c".to_string())]);
        assert_eq!(got.columns[1], vec![Some("reminder".to_string())]);
        let due: jiff::Timestamp = "2027-01-15T12:00:00Z".parse().unwrap();
        let key = super::super::cases::due_key(due, &crate::domain::DeadlineId("dl-1".into()));
        assert_eq!(
            got.columns[3],
            vec![Some(format!("\\x{}", hex::encode(key)))]
        );
        // Not a record: refused, nothing half-written.
        let err = w.put(deadlines, b"dl-2", b"not json").unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }
}
