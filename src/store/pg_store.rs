//! The PostgreSQL backend, for several replicas sharing one store.
//!
//! Most trees live in one table, `kv (tree, key, value)`, holding the same
//! bytes sled keeps: the event log under [`Tree::Events`] with big-endian
//! sequence keys, its head in [`Tree::Meta`], so every reader works as on
//! sled. Cases, deadlines, tenants, sources, tokens and reports have
//! tables of their own, with typed columns, and SQL indexes in place of
//! sled's index trees (see [`super::pg_tables`]).
//!
//! The [`Store`] trait is synchronous and is called from blocking threads and from async code alike, so the store owns a small runtime of
//! its own: each call runs there and the caller waits on a channel (never
//! `block_on`, which panics inside another runtime).
//!
//! A commit is one READ COMMITTED transaction. It first takes an advisory
//! lock per key it touches, in sorted order, so two writers of one key
//! queue and a precondition read under the lock cannot be raced; then it
//! checks the preconditions, applies the writes, and, when it has events,
//! calls `aupd_append_events` (migration 9), which takes one global event
//! lock, reads the chain head, seals the events and writes them with the
//! new head, all in the server. The event lock makes the log gapless: the
//! next committer reads the head only after the previous one committed.
//! Statements are prepared once per connection, and those that need no
//! answer in between are pipelined: the function call and COMMIT go out
//! together, so the event lock is held for no round trip to the replica.
//! (A batch that writes the chain's head itself, as only tests do, has
//! its events chained from that head: the function reads the head inside
//! the same transaction, after the batch's writes.)
//!
//! A claim ([`Store::claim_raw`]) is a transaction kept open in a task on
//! the store's runtime: it takes a claim lock (an advisory lock of its own
//! kind, tried, never waited for) on each row it returns, passing over rows
//! another claim holds, and commits the work done on them as above, each
//! attempt under a savepoint. Commits never take claim locks, so they never
//! wait for a claim.
//!
//! Processes wake each other with `NOTIFY` ([`Store::announce`]): each
//! topic someone waits on gets one connection of its own that `LISTEN`s.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, IsolationLevel, NoTls};

use super::pg_tables::{self, Place, TableExpects, TableWrites};
use super::{Batch, Claim, Op, Result, StoreEngine, StoreError, Topic, Tree};

/// One schema migration, applied once per database in version order.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its version; versions increase by one from 1.
    pub version: i32,
    /// A short name.
    pub name: &'static str,
    /// The SQL, run in one transaction with the others being applied.
    pub sql: &'static str,
}

/// Every migration this build knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "kv",
        sql: include_str!("migrations/0001_kv.sql"),
    },
    Migration {
        version: 2,
        name: "claims",
        sql: include_str!("migrations/0002_claims.sql"),
    },
    Migration {
        version: 3,
        name: "cases_and_deadlines",
        sql: include_str!("migrations/0003_cases_and_deadlines.sql"),
    },
    Migration {
        version: 4,
        name: "tenants_tokens_reports",
        sql: include_str!("migrations/0004_tenants_tokens_reports.sql"),
    },
    Migration {
        version: 5,
        name: "webhook_records",
        sql: include_str!("migrations/0005_webhook_records.sql"),
    },
    Migration {
        version: 6,
        name: "source_kind",
        sql: include_str!("migrations/0006_source_kind.sql"),
    },
    Migration {
        version: 7,
        name: "samples_and_reviews",
        sql: include_str!("migrations/0007_samples_and_reviews.sql"),
    },
    Migration {
        version: 8,
        name: "thresholds_and_intake",
        sql: include_str!("migrations/0008_thresholds_and_intake.sql"),
    },
    Migration {
        version: 9,
        name: "append_events",
        sql: include_str!("migrations/0009_append_events.sql"),
    },
];

/// Advisory lock (one bigint key) held while migrations are applied.
const MIGRATION_LOCK: i64 = 0x6175_7064_6d69_6772; // "aupdmigr"
/// Added to a tree's id to make the namespace of its claim locks (see
/// [`Store::claim_raw`]): claim locks never meet the (tree, key) locks of
/// commits, so a commit never waits for a claim.
const CLAIM_LOCKS: i32 = 0x4000;
/// Advisory lock (one bigint key) held by a commit that appends events.
/// Single-bigint keys do not overlap the (int4, int4) keys of the per-key
/// locks.
const EVENT_LOCK: i64 = 0x6175_7064_6576_6e74; // "aupdevnt"

/// The stable id a tree is stored under. Never renumber: these are on disk.
/// A new tree takes the next free id.
pub fn tree_id(tree: Tree) -> i16 {
    match tree {
        Tree::Meta => 0,
        Tree::Events => 1,
        Tree::Tenants => 2,
        Tree::Sources => 3,
        Tree::SourceState => 4,
        Tree::Samples => 5,
        Tree::Seen => 6,
        Tree::Findings => 7,
        Tree::Tallies => 8,
        Tree::Alerts => 9,
        Tree::Intake => 10,
        Tree::Cases => 11,
        Tree::Deadlines => 12,
        Tree::DeadlineDue => 13,
        Tree::Outbox => 14,
        Tree::Tokens => 15,
        Tree::Reports => 16,
        Tree::OutboxNew => 17,
        Tree::Endpoints => 18,
        Tree::Deliveries => 19,
        Tree::DeliveryDue => 20,
        Tree::Orders => 21,
        Tree::Receipts => 22,
        Tree::OperatorAlerts => 23,
        Tree::CaseEvents => 24,
        Tree::CaseIndex => 25,
        Tree::MessageDeliveries => 26,
        Tree::Labels => 27,
        Tree::ReviewState => 28,
    }
}

/// The key of a key's advisory lock within its tree: 32-bit FNV-1a, the
/// same in every replica and every build.
fn key_lock(key: &[u8]) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` when there is none (an empty prefix, or one of 0xFF bytes only).
pub(in crate::store) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A row limit as SQL takes it.
pub(super) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Maps a PostgreSQL failure: a serialization failure or deadlock is a
/// conflict (retry); everything else is a backend failure.
pub(super) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StoreError::Conflict("a record")
        }
        _ => StoreError::Backend(format!("postgres: {}", describe(&e))),
    }
}

/// The error with its database message (tokio-postgres's `Display` alone
/// says only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

pub(super) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        other => StoreError::Backend(format!("postgres connection pool: {other}")),
    }
}

/// PostgreSQL, shared by every replica.
pub struct PgStore {
    pool: Pool,
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    /// Where it connects, password masked (for Debug and messages).
    target: String,
    /// For the listening connections, which live outside the pool.
    config: tokio_postgres::Config,
    /// One listening connection per topic, started on first ask.
    listeners: Mutex<HashMap<Topic, Arc<Notify>>>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Safe from inside another runtime, unlike dropping the runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connects to `url` with at most `pool_size` connections and brings
    /// the schema up to date (see [`PgStore::migrate`]).
    pub fn open(url: &str, pool_size: usize) -> Result<Self> {
        let store = Self::connect(url, pool_size)?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects without touching the schema. Connections are made on
    /// first use.
    pub fn connect(url: &str, pool_size: usize) -> Result<Self> {
        let target = crate::config::redact_url(url);
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Backend(format!("the database URL {target} is not valid: {e}"))
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("aupd-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("starting the postgres runtime: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(15)))
            .wait_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| StoreError::Backend(format!("building the postgres pool: {e}")))?;
        let handle = runtime.handle().clone();
        Ok(PgStore {
            pool,
            runtime: Some(runtime),
            handle,
            target,
            config,
            listeners: Mutex::new(HashMap::new()),
        })
    }

    /// Claims at most `limit` rows of `of` with `start <= key < end` (see
    /// [`Store::claim_raw`]).
    fn claim(
        &self,
        of: ClaimOf,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Box<dyn Claim + '_>> {
        if limit == 0 || start >= end {
            return Ok(Box::new(PgClaim {
                rows: Vec::new(),
                requests: None,
                ended: None,
            }));
        }
        let (rows_to, rows_from) = mpsc::sync_channel(1);
        let (requests, requests_from) = tokio::sync::mpsc::unbounded_channel();
        let (ended_to, ended) = mpsc::sync_channel(1);
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let (start, end) = (start.to_vec(), end.to_vec());
        self.handle.spawn(hold_claim(
            self.pool.clone(),
            (of, start, end, limit),
            rows_to,
            (requests_from, ended_to),
        ));
        let rows = rows_from
            .recv()
            .map_err(|_| StoreError::Backend("the postgres runtime stopped".into()))??;
        let requests = (!rows.is_empty()).then_some(requests);
        Ok(Box::new(PgClaim {
            rows,
            requests,
            ended: Some(ended),
        }))
    }

    /// Claims at most `limit` pending deadlines with `start <= due_key <
    /// end`, in due order, passing over those another claim holds; each
    /// row is the due key and the deadline's id.
    pub(super) fn claim_due_rows(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Box<dyn Claim + '_>> {
        self.claim(ClaimOf::DueDeadlines, start, end, limit)
    }

    /// Where the store connects, password masked.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `work` on the store's runtime and waits for its answer.
    pub(super) fn run<T, F, Fut>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let fut = work(self.pool.clone());
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| StoreError::Backend("the postgres runtime stopped".into()))?
    }

    /// Applies the migrations the database lacks, under an advisory lock so
    /// replicas starting together apply each once. Returns those applied
    /// (version, name). Refuses a database migrated by a newer build.
    pub fn migrate(&self) -> Result<Vec<(i32, &'static str)>> {
        self.migrate_up_to(MIGRATIONS.last().map_or(0, |m| m.version))
    }

    /// Like [`migrate`](Self::migrate), applying none past `last` (tests
    /// build a database as an older build left it).
    fn migrate_up_to(&self, last: i32) -> Result<Vec<(i32, &'static str)>> {
        self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(pool_error)?;
            let tx = client.transaction().await.map_err(pg_error)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(pg_error)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS aupd_migrations (
                     version integer PRIMARY KEY,
                     name text NOT NULL,
                     applied_at timestamptz NOT NULL DEFAULT now()
                 )",
            )
            .await
            .map_err(pg_error)?;
            let row = tx
                .query_one("SELECT coalesce(max(version), 0) FROM aupd_migrations", &[])
                .await
                .map_err(pg_error)?;
            let current: i32 = row.get(0);
            let known = MIGRATIONS.last().map_or(0, |m| m.version);
            if current > known {
                return Err(StoreError::Backend(format!(
                    "the database's schema is at migration {current}, newer than this \
                     build knows ({known}): run a newer aupd against it"
                )));
            }
            let mut applied = Vec::new();
            for m in MIGRATIONS
                .iter()
                .filter(|m| m.version > current && m.version <= last)
            {
                tx.batch_execute(m.sql).await.map_err(|e| {
                    StoreError::Backend(format!(
                        "applying migration {} ({}): {}",
                        m.version,
                        m.name,
                        describe(&e)
                    ))
                })?;
                tx.execute(
                    "INSERT INTO aupd_migrations (version, name) VALUES ($1, $2)",
                    &[&m.version, &m.name],
                )
                .await
                .map_err(pg_error)?;
                applied.push((m.version, m.name));
            }
            tx.commit().await.map_err(pg_error)?;
            Ok(applied)
        })
    }
}

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

async fn select_rows(
    pool: Pool,
    sql: &'static str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Rows> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
    let rows = client.query(&stmt, params).await.map_err(pg_error)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
        .collect())
}

impl StoreEngine for PgStore {
    fn get_raw(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = key.to_vec();
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_error)?;
            if pg_tables::is_relational(tree) {
                return pg_tables::get(&client, tree, &key).await;
            }
            let stmt = client
                .prepare_cached("SELECT value FROM kv WHERE tree = $1 AND key = $2")
                .await
                .map_err(pg_error)?;
            let row = client
                .query_opt(&stmt, &[&tree_id(tree), &key])
                .await
                .map_err(pg_error)?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    fn get_many_raw(&self, tree: Tree, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(table) = pg_tables::table(tree) {
            let keys = keys.to_vec();
            return self.run(move |pool| async move {
                let client = pool.get().await.map_err(pool_error)?;
                pg_tables::get_many(&client, table, &keys).await
            });
        }
        if pg_tables::is_relational(tree) {
            return keys.iter().map(|k| self.get_raw(tree, k)).collect();
        }
        let wanted = keys.to_vec();
        let found = self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_error)?;
            let stmt = client
                .prepare_cached("SELECT key, value FROM kv WHERE tree = $1 AND key = ANY($2)")
                .await
                .map_err(pg_error)?;
            let rows = client
                .query(&stmt, &[&tree_id(tree), &wanted])
                .await
                .map_err(pg_error)?;
            Ok(rows
                .into_iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                .collect::<std::collections::HashMap<_, _>>())
        })?;
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn scan_raw(
        &self,
        tree: Tree,
        prefix: &[u8],
        limit: usize,
        newest_first: bool,
    ) -> Result<Rows> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let start = prefix.to_vec();
        let end = prefix_successor(prefix);
        let limit = limit_param(limit);
        if pg_tables::is_relational(tree) {
            return self.run(move |pool| async move {
                let client = pool.get().await.map_err(pool_error)?;
                pg_tables::read(&client, tree, &start, end.as_deref(), limit, newest_first).await
            });
        }
        self.run(move |pool| async move {
            let id = tree_id(tree);
            match (end, newest_first) {
                (Some(end), false) => {
                    select_rows(
                        pool,
                        "SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 AND key < $3 \
                         ORDER BY key LIMIT $4",
                        &[&id, &start, &end, &limit],
                    )
                    .await
                }
                (Some(end), true) => {
                    select_rows(
                        pool,
                        "SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 AND key < $3 \
                         ORDER BY key DESC LIMIT $4",
                        &[&id, &start, &end, &limit],
                    )
                    .await
                }
                (None, false) => {
                    select_rows(
                        pool,
                        "SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 \
                         ORDER BY key LIMIT $3",
                        &[&id, &start, &limit],
                    )
                    .await
                }
                (None, true) => {
                    select_rows(
                        pool,
                        "SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 \
                         ORDER BY key DESC LIMIT $3",
                        &[&id, &start, &limit],
                    )
                    .await
                }
            }
        })
    }

    fn range_raw(&self, tree: Tree, start: &[u8], end: &[u8]) -> Result<Rows> {
        self.range_raw_limited(tree, start, end, usize::MAX)
    }

    fn range_raw_limited(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Rows> {
        if limit == 0 || start >= end {
            return Ok(Vec::new());
        }
        let (start, end, limit) = (start.to_vec(), end.to_vec(), limit_param(limit));
        if pg_tables::is_relational(tree) {
            return self.run(move |pool| async move {
                let client = pool.get().await.map_err(pool_error)?;
                pg_tables::read(&client, tree, &start, Some(&end), limit, false).await
            });
        }
        self.run(move |pool| async move {
            select_rows(
                pool,
                "SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 AND key < $3 \
                 ORDER BY key LIMIT $4",
                &[&tree_id(tree), &start, &end, &limit],
            )
            .await
        })
    }

    fn commit(&self, batch: Batch) -> Result<Vec<u64>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |pool| commit(pool, batch))
    }

    fn claim_raw(
        &self,
        tree: Tree,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Box<dyn Claim + '_>> {
        self.claim(ClaimOf::Kv(tree), start, end, limit)
    }

    /// A commit is durable once PostgreSQL acknowledged it.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn announce(&self, topic: Topic) -> Result<()> {
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_error)?;
            client
                .execute("SELECT pg_notify($1, '')", &[&topic.channel()])
                .await
                .map_err(pg_error)?;
            Ok(())
        })
    }

    fn wakeups(&self, topic: Topic) -> Option<Arc<Notify>> {
        let mut listeners = match self.listeners.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let wake = listeners.entry(topic).or_insert_with(|| {
            let wake = Arc::new(Notify::new());
            self.handle.spawn(listen(
                self.config.clone(),
                self.target.clone(),
                topic,
                wake.clone(),
            ));
            wake
        });
        Some(wake.clone())
    }
}

/// Holds a connection that `LISTEN`s on `topic`'s channel and fires `wake`
/// on each notification, for as long as the store's runtime lives. A lost
/// connection is made again after a second. `wake` also fires each time
/// the `LISTEN` takes effect, since announcements made before it were not
/// heard.
async fn listen(config: tokio_postgres::Config, target: String, topic: Topic, wake: Arc<Notify>) {
    let channel = topic.channel();
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let fire = wake.clone();
                let driver = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => fire.notify_one(),
                            Ok(_) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(())
                });
                match client.batch_execute(&format!("LISTEN {channel}")).await {
                    Ok(()) => {
                        tracing::debug!(%channel, %target, "listening for wake-ups");
                        wake.notify_one();
                        match driver.await {
                            Ok(Err(e)) => {
                                tracing::warn!(%channel, %target, error = %describe(&e), "the listening connection failed; connecting again")
                            }
                            _ => {
                                tracing::warn!(%channel, %target, "the listening connection closed; connecting again")
                            }
                        }
                    }
                    Err(e) => {
                        driver.abort();
                        tracing::warn!(%channel, %target, error = %describe(&e), "cannot LISTEN; trying again");
                    }
                }
                drop(client);
            }
            Err(e) => {
                tracing::warn!(%channel, %target, error = %describe(&e), "cannot connect to listen for wake-ups; trying again")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A write's place and its value (`None`: a delete).
type Write<'a> = (Place, Option<&'a [u8]>);

/// A precondition: tree, key, the value it must still hold.
type Expected<'a> = (Tree, &'a [u8], Option<&'a [u8]>);

/// The statements a commit uses, prepared once per connection.
struct CommitStatements {
    lock_keys: tokio_postgres::Statement,
    read_expects: tokio_postgres::Statement,
    delete: tokio_postgres::Statement,
    upsert: tokio_postgres::Statement,
    append_events: tokio_postgres::Statement,
}

impl CommitStatements {
    /// Prepares them (cached on the connection), in one round trip.
    async fn prepare(client: &deadpool_postgres::Object) -> Result<Self> {
        let (lock_keys, read_expects, delete, upsert, append_events) = futures_util::try_join!(
            client.prepare_cached(
                "SELECT pg_advisory_xact_lock(t, k) \
                 FROM unnest($1::int4[], $2::int4[]) WITH ORDINALITY AS u(t, k, n) ORDER BY n",
            ),
            client.prepare_cached(
                "SELECT u.n, kv.value \
                 FROM unnest($1::smallint[], $2::bytea[]) WITH ORDINALITY AS u(t, k, n) \
                 LEFT JOIN kv ON kv.tree = u.t AND kv.key = u.k ORDER BY u.n",
            ),
            client.prepare_cached(
                "DELETE FROM kv WHERE (tree, key) IN \
                 (SELECT t, k FROM unnest($1::smallint[], $2::bytea[]) AS u(t, k))",
            ),
            client.prepare_cached(
                "INSERT INTO kv (tree, key, value) \
                 SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[]) \
                 ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value",
            ),
            client.prepare_cached("SELECT aupd_append_events($1, $2, $3)"),
        )
        .map_err(pg_error)?;
        Ok(CommitStatements {
            lock_keys,
            read_expects,
            delete,
            upsert,
            append_events,
        })
    }
}

/// What is left of a batch once [`apply`] made its writes: its events,
/// which [`finish`] sends together with COMMIT to `aupd_append_events`
/// (migration 9), which chains them in the server under the event lock:
/// each event's JSON between `at` and `prev` ([`super::event_rest`]), and
/// the case it is indexed under. Empty when the batch has no events.
struct Applied {
    rests: Vec<Vec<u8>>,
    cases: Vec<Option<Vec<u8>>>,
}

async fn commit(pool: Pool, batch: Batch) -> Result<Vec<u64>> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let st = CommitStatements::prepare(&client).await?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(pg_error)?;
    match apply(&tx, &st, &batch).await {
        Ok(applied) => finish(tx, &st, applied).await,
        Err(e @ StoreError::Conflict(_)) => {
            tx.rollback().await.map_err(pg_error)?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Applies `batch` in the open transaction `tx`: the key locks, the
/// preconditions read under them, the writes, and, when it has events, the
/// event lock and the chain head read. Returns the sealed events for
/// [`finish`]. On [`StoreError::Conflict`] a precondition no longer held and
/// the caller rolls back (the whole transaction, or to a savepoint).
async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    st: &CommitStatements,
    batch: &Batch,
) -> Result<Applied> {
    // The last write of each key wins, as when sled applies them in order;
    // one upsert may touch a row only once.
    // Each op's place is worked out once, here.
    let mut writes: BTreeMap<(i16, &[u8]), Write> = BTreeMap::new();
    let mut expects: Vec<(Place, Expected)> = Vec::new();
    let mut locks: Vec<(i32, i32)> = Vec::new();
    for op in batch.ops() {
        let (tree, key) = match op {
            Op::Put { tree, key, .. } | Op::Delete { tree, key } | Op::Expect { tree, key, .. } => {
                (*tree, key.as_slice())
            }
        };
        let place = pg_tables::place(tree, key);
        match (op, place) {
            // Index entries sled keeps beside records: an SQL index
            // answers them here, and no batch names one.
            (_, Place::SledOnly) => {
                return Err(StoreError::Backend(format!(
                    "a write or precondition on sled's {} index, which PostgreSQL \
                     answers from its tables",
                    tree.name()
                )));
            }
            (Op::Put { value, .. }, _) => {
                writes.insert((tree_id(tree), key), (place, Some(value)));
            }
            (Op::Delete { .. }, _) => {
                writes.insert((tree_id(tree), key), (place, None));
            }
            (Op::Expect { value, .. }, _) => {
                expects.push((place, (tree, key, value.as_deref())));
            }
        }
        locks.push((i32::from(tree_id(tree)), key_lock(key)));
    }
    locks.sort_unstable();
    locks.dedup();

    // Statements that do not depend on each other's answers are pipelined
    // (sent together, in order: in READ COMMITTED each one still reads
    // after the one before it finished, so a read sent behind a lock reads
    // under the lock). The key locks, then the preconditions read under
    // them: one round trip.
    let (trees, keys): (Vec<i32>, Vec<i32>) = locks.into_iter().unzip();
    // Preconditions by where their records live: `kv_at` maps the kv
    // query's rows back to `expects`, `in_tables` does for the tables.
    let mut kv_at: Vec<usize> = Vec::new();
    let mut expect_trees: Vec<i16> = Vec::new();
    let mut expect_keys: Vec<&[u8]> = Vec::new();
    let mut in_tables = TableExpects::default();
    for (i, (place, (tree, key, expected))) in expects.iter().enumerate() {
        match place {
            Place::Table(table) => {
                // No row has a key that is not an id: only "still absent"
                // holds for it.
                if !in_tables.add(i, table, key) && expected.is_some() {
                    return Err(StoreError::Conflict(tree.name()));
                }
            }
            _ => {
                kv_at.push(i);
                expect_trees.push(tree_id(*tree));
                expect_keys.push(key);
            }
        }
    }
    let take_locks = async {
        if trees.is_empty() {
            return Ok(0);
        }
        tx.execute(&st.lock_keys, &[&trees, &keys]).await
    };
    let read_kv = async {
        if expect_trees.is_empty() {
            return Ok(Vec::new());
        }
        tx.query(&st.read_expects, &[&expect_trees, &expect_keys])
            .await
    };
    let (_, kv_rows, table_rows) =
        futures_util::try_join!(take_locks, read_kv, in_tables.read(tx)).map_err(pg_error)?;
    let now_kv = kv_rows.into_iter().filter_map(|row| {
        let n: i64 = row.get(0);
        let i = *kv_at.get(usize::try_from(n - 1).ok()?)?;
        Some((i, row.get::<_, Option<Vec<u8>>>(1)))
    });
    for (i, now) in now_kv.chain(table_rows) {
        let Some((_, (tree, _, expected))) = expects.get(i) else {
            continue;
        };
        if now.as_deref() != *expected {
            return Err(StoreError::Conflict(tree.name()));
        }
    }

    // The batch's own writes, before the event lock (which they do not
    // need): one round trip. Event writes made under the lock come later
    // and so replace any of these to the same key, as on sled.
    let mut put_trees: Vec<i16> = Vec::new();
    let mut put_keys: Vec<&[u8]> = Vec::new();
    let mut put_values: Vec<&[u8]> = Vec::new();
    let mut del_trees: Vec<i16> = Vec::new();
    let mut del_keys: Vec<&[u8]> = Vec::new();
    let mut in_tables = TableWrites::default();
    for ((tree, key), (place, value)) in &writes {
        match (value, place) {
            (Some(v), Place::Table(table)) => in_tables.put(table, key, v)?,
            (None, Place::Table(table)) => in_tables.delete(table, key),
            (Some(v), _) => {
                put_trees.push(*tree);
                put_keys.push(key);
                put_values.push(v);
            }
            (None, _) => {
                del_trees.push(*tree);
                del_keys.push(key);
            }
        }
    }
    let deletes = async {
        if del_trees.is_empty() {
            return Ok(0);
        }
        tx.execute(&st.delete, &[&del_trees, &del_keys]).await
    };
    let puts = async {
        if put_trees.is_empty() {
            return Ok(0);
        }
        tx.execute(&st.upsert, &[&put_trees, &put_keys, &put_values])
            .await
    };
    let table_writes = in_tables.apply(tx);
    futures_util::try_join!(deletes, puts, table_writes).map_err(pg_error)?;

    // The function chains from the head as it stands in this transaction,
    // this batch's own writes to it included, as on sled.
    let rests = batch
        .events()
        .iter()
        .map(super::event_rest)
        .collect::<Result<Vec<_>>>()?;
    let cases = batch
        .events()
        .iter()
        .map(|e| super::event_case(&e.kind, &e.data).map(|c| c.as_bytes().to_vec()))
        .collect();
    Ok(Applied { rests, cases })
}

/// Commits what [`apply`] left. With events, the call that appends them
/// and COMMIT go out together (should the call fail, the server turns that
/// COMMIT into a ROLLBACK): `aupd_append_events` takes the event lock,
/// chains and writes the events and the new head in the server, so the
/// lock is held for no round trip to this process.
async fn finish(
    tx: deadpool_postgres::Transaction<'_>,
    st: &CommitStatements,
    applied: Applied,
) -> Result<Vec<u64>> {
    let Applied { rests, cases } = applied;
    if rests.is_empty() {
        tx.commit().await.map_err(pg_error)?;
        return Ok(Vec::new());
    }
    let params: [&(dyn ToSql + Sync); 3] = [&EVENT_LOCK, &rests, &cases];
    let (appended, committed) = futures_util::join!(
        tx.query_one(&st.append_events, &params),
        tx.batch_execute("COMMIT"),
    );
    let first: i64 = appended.map_err(pg_error)?.get(0);
    committed.map_err(pg_error)?;
    let first = u64::try_from(first)
        .map_err(|_| StoreError::Backend("event sequence is corrupt".into()))?;
    // Committed: dropping the handle would send a needless ROLLBACK.
    std::mem::forget(tx);
    Ok((first..first + rests.len() as u64).collect())
}

/// A batch sent to a claim's transaction, and where its outcome goes.
type ClaimRequest = (Batch, mpsc::SyncSender<Result<Vec<u64>>>);

/// What a claim takes rows from.
#[derive(Debug, Clone, Copy)]
enum ClaimOf {
    /// A queue kept in `kv`.
    Kv(Tree),
    /// Pending deadlines, in due order (the `deadlines` table).
    DueDeadlines,
}

/// The number that stands for pending deadlines in their claim locks'
/// namespace: what the due-time index tree was numbered when it lived in
/// `kv`, so replicas of older and newer builds keep out of each other's
/// claims during a rolling upgrade.
const DUE_CLAIM_TREE_ID: i16 = 13;

/// A claim on PostgreSQL: its transaction lives in a task on the store's
/// runtime ([`hold_claim`]), which holds the rows' locks until a batch
/// commits or this handle is dropped.
struct PgClaim {
    rows: Rows,
    /// To the task; `None` once the claim has ended (or held no rows).
    requests: Option<tokio::sync::mpsc::UnboundedSender<ClaimRequest>>,
    /// Disconnected once the task has ended the claim's transaction.
    ended: Option<mpsc::Receiver<()>>,
}

/// How long dropping a claim waits for its rollback.
const CLAIM_ROLLBACK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for PgClaim {
    /// Ends the claim and waits until its transaction has rolled back, so
    /// its rows are free to the next claim as soon as the handle is gone
    /// (a rollback left to the connection would let a claim started just
    /// after pass them over).
    fn drop(&mut self) {
        if self.requests.take().is_some() {
            if let Some(ended) = self.ended.take() {
                let _ = ended.recv_timeout(CLAIM_ROLLBACK_WAIT);
            }
        }
    }
}

impl Claim for PgClaim {
    fn rows(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.rows
    }

    fn commit(&mut self, batch: Batch) -> Result<Vec<u64>> {
        let ended = || StoreError::Backend("the claim's transaction has ended".into());
        let requests = self.requests.as_ref().ok_or_else(ended)?;
        let (reply_to, reply) = mpsc::sync_channel(1);
        requests.send((batch, reply_to)).map_err(|_| ended())?;
        let result = reply.recv().map_err(|_| ended())?;
        if !matches!(result, Err(StoreError::Conflict(_))) {
            self.requests = None;
        }
        result
    }
}

/// Opens a claim's transaction on `client` and takes the rows no one
/// else holds: `aupd_claim` passes over rows whose claim lock another claim
/// holds (migrations/0002_claims.sql).
async fn open_claim<'c>(
    client: &'c mut deadpool_postgres::Object,
    (of, start, end, limit): &(ClaimOf, Vec<u8>, Vec<u8>, i32),
) -> Result<(deadpool_postgres::Transaction<'c>, CommitStatements, Rows)> {
    let st = CommitStatements::prepare(client).await?;
    // Due deadlines are claimed from their table (`aupd_claim_due`, in
    // migrations/0003_cases_and_deadlines.sql), queues from `kv`.
    let (due, tree) = match *of {
        ClaimOf::DueDeadlines => (true, None),
        ClaimOf::Kv(tree) if pg_tables::is_relational(tree) => {
            return Err(StoreError::Backend(format!(
                "the {} tree cannot be claimed",
                tree.name()
            )))
        }
        ClaimOf::Kv(tree) => (false, Some(tree)),
    };
    let claim = client
        .prepare_cached(if due {
            "SELECT claimed_key, claimed_value FROM aupd_claim_due($1, $2, $3, $4)"
        } else {
            "SELECT claimed_key, claimed_value FROM aupd_claim($1, $2, $3, $4, $5)"
        })
        .await
        .map_err(pg_error)?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(pg_error)?;
    let ns = CLAIM_LOCKS | i32::from(tree.map_or(DUE_CLAIM_TREE_ID, tree_id));
    let tree_param = tree.map_or(DUE_CLAIM_TREE_ID, tree_id);
    let params: Vec<&(dyn ToSql + Sync)> = if due {
        vec![start, end, limit, &ns]
    } else {
        vec![&tree_param, start, end, limit, &ns]
    };
    let rows = tx
        .query(&claim, &params)
        .await
        .map_err(pg_error)?
        .into_iter()
        .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
        .collect();
    Ok((tx, st, rows))
}

/// Opens a claim ([`open_claim`]) and sends its rows to `rows_to`; then
/// commits the first batch that applies, each attempt under a savepoint so
/// a failed precondition undoes only that attempt. The transaction rolls
/// back when the handle is dropped first.
async fn hold_claim(
    pool: Pool,
    range: (ClaimOf, Vec<u8>, Vec<u8>, i32),
    rows_to: mpsc::SyncSender<Result<Rows>>,
    (mut requests, _ended): (
        tokio::sync::mpsc::UnboundedReceiver<ClaimRequest>,
        mpsc::SyncSender<()>,
    ),
) {
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(e) => {
            let _ = rows_to.send(Err(pool_error(e)));
            return;
        }
    };
    let (tx, st, rows) = match open_claim(&mut client, &range).await {
        Ok(opened) => opened,
        Err(e) => {
            let _ = rows_to.send(Err(e));
            return;
        }
    };
    let held = !rows.is_empty();
    if rows_to.send(Ok(rows)).is_err() || !held {
        return;
    }
    while let Some((batch, reply_to)) = requests.recv().await {
        if let Err(e) = tx.batch_execute("SAVEPOINT claim_attempt").await {
            let _ = reply_to.send(Err(pg_error(e)));
            return;
        }
        match apply(&tx, &st, &batch).await {
            Ok(applied) => {
                let _ = reply_to.send(finish(tx, &st, applied).await);
                return;
            }
            Err(conflict @ StoreError::Conflict(_)) => {
                match tx
                    .batch_execute("ROLLBACK TO SAVEPOINT claim_attempt")
                    .await
                {
                    Ok(()) => {
                        let _ = reply_to.send(Err(conflict));
                    }
                    Err(e) => {
                        let _ = reply_to.send(Err(pg_error(e)));
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = reply_to.send(Err(e));
                return;
            }
        }
    }
    // The handle was dropped: let the rows go before `_ended` tells it so.
    if let Err(e) = tx.rollback().await {
        tracing::warn!(error = %e, "rolling back a dropped claim failed; it ends with its connection");
    }
}

/// Creates database `name` through `admin_url` and returns the URL of the
/// new database. For tests and tools; blocks the calling thread.
pub fn create_database(admin_url: &str, name: &str) -> Result<String> {
    let url = database_url(admin_url, name)?;
    admin(admin_url, format!("CREATE DATABASE \"{name}\""))?;
    Ok(url)
}

/// Drops database `name` through `admin_url`, closing its connections.
pub fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    admin(
        admin_url,
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
}

/// `admin_url` with its database replaced by `name`.
pub fn database_url(admin_url: &str, name: &str) -> Result<String> {
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::Backend(format!(
            "`{name}` is not a plain database name"
        )));
    }
    let mut url = url::Url::parse(admin_url).map_err(|e| {
        StoreError::Backend(format!(
            "{} is not a URL: {e}",
            crate::config::redact_url(admin_url)
        ))
    })?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Runs one statement outside any transaction, on a thread and runtime of
/// its own (so it may be called from anywhere).
fn admin(admin_url: &str, sql: String) -> Result<()> {
    let url = admin_url.to_string();
    let worker = std::thread::spawn(move || -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&url, NoTls)
                .await
                .map_err(pg_error)?;
            let conn = tokio::spawn(conn);
            let result = client.batch_execute(&sql).await.map_err(pg_error);
            drop(client);
            let _ = conn.await;
            result
        })
    });
    worker
        .join()
        .map_err(|_| StoreError::Backend("the admin thread panicked".into()))?
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::cases::CaseRepository;
    use crate::store::conformance::{self, test_case, test_deadline};
    use crate::store::sled_store::{EVENT_HEAD, EVENT_SEQ};
    use crate::store::SharedStore;
    use std::sync::Arc;

    /// A fresh database for one test, dropped with it.
    pub(crate) struct TestDb {
        admin: String,
        name: String,
        url: String,
    }

    impl TestDb {
        /// A new database on `AUPD_TEST_DATABASE_URL`'s server; `None`
        /// (the caller skips) when it is not set.
        pub(crate) fn new() -> Option<TestDb> {
            let Ok(admin) = std::env::var("AUPD_TEST_DATABASE_URL") else {
                eprintln!("skipped: AUPD_TEST_DATABASE_URL is not set (PostgreSQL store tests)");
                return None;
            };
            let name = format!("aupd_t_{}", uuid::Uuid::now_v7().simple());
            let url = create_database(&admin, &name).unwrap();
            Some(TestDb { admin, name, url })
        }

        /// A store on it, migrated.
        pub(crate) fn open(&self) -> PgStore {
            PgStore::open(&self.url, 8).unwrap()
        }
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            let _ = drop_database(&self.admin, &self.name);
        }
    }

    #[test]
    fn an_announcement_wakes_a_listener_on_another_connection() {
        let Some(db) = TestDb::new() else { return };
        let listener = db.open();
        let announcer = db.open();
        let wake = listener.wakeups(Topic::Policy).unwrap();
        let same = listener.wakeups(Topic::Policy).unwrap();
        assert!(
            Arc::ptr_eq(&wake, &same),
            "one listening connection per topic"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The first wake-up is the LISTEN taking effect; after it, each
        // announcement from the other store is heard.
        let heard = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(20), wake.notified()).await?;
            announcer.announce(Topic::Policy).unwrap();
            tokio::time::timeout(Duration::from_secs(20), wake.notified()).await
        });
        assert!(heard.is_ok(), "the announcement was not heard");
    }

    #[test]
    fn a_reload_reaches_another_replica_at_once_not_at_its_next_poll() {
        use crate::policy::sync::PolicySync;
        use crate::policy::{copy_dir, shipped_dir, PolicyHandle};
        let Some(db) = TestDb::new() else { return };
        let replica = |name: &str| {
            let store: super::super::SharedStore = Arc::new(db.open());
            let dir = tempfile::tempdir().unwrap();
            copy_dir(&shipped_dir(), dir.path());
            let ladders = dir.path().join("escalation/ladders.toml");
            let shipped = std::fs::read_to_string(&ladders).unwrap();
            std::fs::write(&ladders, shipped.replacen("\"24h\"", "\"48h\"", 1)).unwrap();
            let handle = Arc::new(PolicyHandle::load(dir.path()).unwrap());
            let sync = Arc::new(PolicySync::new(store, handle.clone(), name));
            (dir, handle, sync)
        };
        let (dir_a, a, sync_a) = replica("a");
        let (dir_b, b, sync_b) = replica("b");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (_stop, stop) = tokio::sync::watch::channel(false);
        // b polls once an hour: only a wake-up can bring it the reload.
        runtime.spawn(sync_b.run(Duration::from_secs(3600), stop));
        let ladders = dir_a.path().join("escalation/ladders.toml");
        let edited = std::fs::read_to_string(&ladders).unwrap();
        std::fs::write(&ladders, edited.replacen("\"48h\"", "\"36h\"", 1)).unwrap();
        let before = b.current().version().to_string();
        let wanted = a.reload().unwrap().version().to_string();
        assert_ne!(before, wanted);
        // b's files do not give `wanted`, so it must stay; then give b the
        // same files and reload again: b follows within seconds.
        sync_a.reloaded_here().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            b.current().version(),
            before,
            "b keeps its policy when its files differ"
        );
        let b_ladders = dir_b.path().join("escalation/ladders.toml");
        std::fs::write(&b_ladders, std::fs::read_to_string(&ladders).unwrap()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while b.current().version() != wanted {
            assert!(
                std::time::Instant::now() < deadline,
                "b did not follow the reload within 20 s while polling hourly"
            );
            // Announce again: the first may have come before b listened.
            sync_a.reloaded_here().unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
        drop(runtime);
    }

    #[test]
    fn prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn tree_ids_are_distinct() {
        let mut ids: Vec<i16> = Tree::ALL.iter().map(|t| tree_id(*t)).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Tree::ALL.len());
    }

    #[test]
    fn conformance_on_postgres() {
        let Some(db) = TestDb::new() else { return };
        let store: SharedStore = Arc::new(db.open());
        conformance::run(&store);
    }

    #[test]
    fn migrations_apply_once_and_a_newer_database_is_refused() {
        let Some(db) = TestDb::new() else { return };
        let store = PgStore::connect(&db.url, 2).unwrap();
        assert_eq!(
            store.migrate().unwrap(),
            vec![
                (1, "kv"),
                (2, "claims"),
                (3, "cases_and_deadlines"),
                (4, "tenants_tokens_reports"),
                (5, "webhook_records"),
                (6, "source_kind"),
                (7, "samples_and_reviews"),
                (8, "thresholds_and_intake"),
                (9, "append_events")
            ]
        );
        assert!(store.migrate().unwrap().is_empty());
        let url = db.url.clone();
        admin(
            &url,
            "INSERT INTO aupd_migrations (version, name) VALUES (999, 'future')".into(),
        )
        .unwrap();
        let err = store.migrate().unwrap_err().to_string();
        assert!(
            err.contains("migration 999, newer than this build"),
            "{err}"
        );
    }

    #[test]
    fn replicas_starting_together_migrate_once() {
        let Some(db) = TestDb::new() else { return };
        let applied: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        PgStore::connect(&db.url, 1)
                            .unwrap()
                            .migrate()
                            .unwrap()
                            .len()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // One replica applied every migration, the others none.
        let mut applied = applied;
        applied.sort_unstable();
        assert_eq!(applied, vec![0, 0, 0, MIGRATIONS.len()]);
    }

    #[test]
    fn concurrent_committers_keep_a_gapless_verifiable_chain() {
        let Some(db) = TestDb::new() else { return };
        let store: SharedStore = Arc::new(db.open());
        let threads = 6;
        let per_thread = 40;
        std::thread::scope(|s| {
            for t in 0..threads {
                let store = store.clone();
                s.spawn(move || {
                    for i in 0..per_thread {
                        let mut b = Batch::new();
                        b.put_raw(Tree::OutboxNew, format!("t{t}/{i}").into_bytes(), vec![1]);
                        b.event(
                            "case.noted",
                            Some("t"),
                            serde_json::json!({"case": format!("c{t}"), "i": i}),
                        )
                        .unwrap();
                        b.event("x.other", None, serde_json::json!({})).unwrap();
                        let seqs = store.commit(b).unwrap();
                        assert_eq!(seqs.len(), 2);
                        assert_eq!(seqs[1], seqs[0] + 1);
                    }
                });
            }
        });
        let total = (threads * per_thread * 2) as u64;
        match crate::store::audit::verify(&store, None).unwrap() {
            crate::store::audit::AuditVerdict::Intact { records, .. } => {
                assert_eq!(records, total)
            }
            broken => panic!("{broken:?}"),
        }
        let events = store.events_after(0, usize::MAX).unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
        assert_eq!(store.case_events("c3").unwrap().len(), per_thread);
    }

    #[test]
    fn events_chained_in_the_server_hold_the_bytes_the_service_seals() {
        let Some(db) = TestDb::new() else { return };
        let store: SharedStore = Arc::new(db.open());
        let mut b = Batch::new();
        b.event(
            "case.opened",
            Some("parlor"),
            serde_json::json!({"case": "c1", "note": "ü \"quoted\"\n", "f": 0.1}),
        )
        .unwrap();
        b.event(
            "tenant.updated",
            None,
            serde_json::json!({"list": [1, null]}),
        )
        .unwrap();
        assert_eq!(store.commit(b).unwrap(), vec![1, 2]);
        let mut b = Batch::new();
        b.event(
            "case.closed",
            Some("parlor"),
            serde_json::json!({"case": "c1"}),
        )
        .unwrap();
        assert_eq!(store.commit(b).unwrap(), vec![3]);
        let events = store.events_after(0, 10).unwrap();
        assert_eq!(events.len(), 3);
        for (i, e) in events.iter().enumerate() {
            // What the server hashed is what serialising the record gives.
            assert_eq!(e.compute_hash(), e.hash, "event {}", e.seq);
            if i > 0 {
                assert_eq!(e.prev, events[i - 1].hash);
                assert!(e.at >= events[i - 1].at);
            }
        }
        assert_eq!(events[0].prev, crate::store::GENESIS_HASH);
        assert_eq!(events[0].data["note"], "ü \"quoted\"\n");
        let of_case: Vec<u64> = store
            .case_events("c1")
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(of_case, vec![1, 3]);
        let verdict = crate::store::audit::verify(&store, None).unwrap();
        assert!(
            matches!(
                verdict,
                crate::store::audit::AuditVerdict::Intact { records: 3, .. }
            ),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_batch_that_writes_the_chain_head_has_its_events_chained_from_it() {
        let Some(db) = TestDb::new() else { return };
        let store: SharedStore = Arc::new(db.open());
        let mut b = Batch::new();
        b.put_raw(Tree::Meta, EVENT_SEQ.to_vec(), 10u64.to_be_bytes().to_vec());
        b.put_raw(
            Tree::Meta,
            EVENT_HEAD.to_vec(),
            "cd".repeat(32).into_bytes(),
        );
        b.event("case.opened", Some("t"), serde_json::json!({"case": "c1"}))
            .unwrap();
        assert_eq!(store.commit(b).unwrap(), vec![11]);
        let mut b = Batch::new();
        b.event("case.closed", Some("t"), serde_json::json!({"case": "c1"}))
            .unwrap();
        assert_eq!(store.commit(b).unwrap(), vec![12]);
        let events = store.events_after(10, 10).unwrap();
        assert_eq!(events[0].prev, "cd".repeat(32));
        assert_eq!(events[1].prev, events[0].hash);
        assert_eq!(events[0].compute_hash(), events[0].hash);
    }

    #[test]
    fn a_due_deadline_claimed_by_one_replica_is_passed_over_by_another() {
        use crate::store::cases;
        let Some(db) = TestDb::new() else { return };
        let (one, two) = (db.open(), db.open());
        let case = test_case(1, "parlor", crate::domain::CaseState::Noticed);
        let mut w = Batch::new();
        for (id, s) in [("dl-2", 10), ("dl-1", 20)] {
            cases::schedule_deadline(&mut w, &test_deadline(id, &case, s)).unwrap();
        }
        one.commit(w).unwrap();
        let now = jiff::Timestamp::from_second(1_800_000_100).unwrap();
        let first = one.claim_due(now, None).unwrap().unwrap();
        assert_eq!(first.deadline.as_ref().unwrap().id.0, "dl-2");
        let second = two.claim_due(now, None).unwrap().unwrap();
        assert_eq!(second.deadline.as_ref().unwrap().id.0, "dl-1");
        assert!(two.claim_due(now, None).unwrap().is_none());
        drop(second);
        first.forget().unwrap();
        let again = two.claim_due(now, None).unwrap().unwrap();
        assert_eq!(again.deadline.as_ref().unwrap().id.0, "dl-1");
    }

    #[test]
    fn a_database_from_before_the_tables_keeps_its_records() {
        use crate::domain::CaseState;
        use crate::store::{cases, encode, Record};
        let Some(db) = TestDb::new() else { return };
        let store = PgStore::connect(&db.url, 2).unwrap();
        store.migrate_up_to(2).unwrap();
        // The rows an older build wrote into `kv`, index entries included.
        let open = test_case(1, "parlor", CaseState::Noticed);
        let closed = test_case(2, "parlor", CaseState::Dismissed);
        let d = test_deadline("dl-1", &open, 10);
        let token = crate::domain::TokenRecord {
            id: "tok_1".into(),
            hash: "ab".repeat(32),
            name: "parlor dashboard".into(),
            role: crate::domain::Role::Tenant(crate::domain::TenantId::try_from("parlor").unwrap()),
            created_at: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            revoked_at: Some(jiff::Timestamp::from_second(1_800_000_500).unwrap()),
        };
        let tenant = crate::domain::TenantId::try_from("parlor").unwrap();
        let sample = conformance::test_sample(9, "parlor");
        let tally = conformance::test_tally("parlor");
        let label = conformance::test_label(&sample);
        let counter = conformance::test_intake_counter("parlor");
        let finding = conformance::test_finding(&sample);
        let seen = crate::store::records::Seen {
            tenant: "parlor".into(),
            hash: sample.content_hash.clone(),
            sample: sample.id,
        };
        let id = |c: &crate::domain::Case| c.id.0.to_string().into_bytes();
        let mut rows: Vec<(Tree, Vec<u8>, Vec<u8>)> = vec![
            (Tree::Tallies, tally.key(), encode(&tally).unwrap()),
            (Tree::Labels, label.key(), encode(&label).unwrap()),
            (Tree::Intake, counter.key(), encode(&counter).unwrap()),
            (Tree::Samples, sample.key(), encode(&sample).unwrap()),
            (Tree::Findings, finding.key(), encode(&finding).unwrap()),
            (Tree::Seen, seen.key(), encode(&seen).unwrap()),
            (Tree::Cases, id(&open), encode(&open).unwrap()),
            (Tree::Cases, id(&closed), encode(&closed).unwrap()),
            (Tree::Deadlines, b"dl-1".to_vec(), encode(&d).unwrap()),
            (
                Tree::DeadlineDue,
                cases::due_key(d.due_at, &d.id),
                b"dl-1".to_vec(),
            ),
            (
                Tree::CaseIndex,
                [b"o/".as_slice(), &id(&open)].concat(),
                vec![],
            ),
            (Tree::CaseIndex, b"s/parlor/hate-speech".to_vec(), id(&open)),
            (
                Tree::Tokens,
                token.hash.clone().into_bytes(),
                encode(&token).unwrap(),
            ),
            // A source: its key holds the UUID as 16 raw bytes.
            (
                Tree::Sources,
                [b"parlor/".as_slice(), uuid::Uuid::from_u128(7).as_bytes()].concat(),
                serde_json::to_vec(&serde_json::json!({"v": 1, "r": {
                    "id": uuid::Uuid::from_u128(7), "tenant": "parlor",
                    "kind": "rss", "url": "https://parlor.example/feed",
                    "enabled": true,
                }}))
                .unwrap(),
            ),
        ];
        for c in [&open, &closed] {
            rows.push((
                Tree::CaseIndex,
                [b"t/parlor/".as_slice(), &id(c)].concat(),
                vec![],
            ));
        }
        store
            .run(move |pool| async move {
                let client = pool.get().await.map_err(pool_error)?;
                for (tree, key, value) in rows {
                    client
                        .execute(
                            "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3)",
                            &[&tree_id(tree), &key, &value],
                        )
                        .await
                        .map_err(pg_error)?;
                }
                Ok(())
            })
            .unwrap();

        assert_eq!(
            store.migrate().unwrap(),
            vec![
                (3, "cases_and_deadlines"),
                (4, "tenants_tokens_reports"),
                (5, "webhook_records"),
                (6, "source_kind"),
                (7, "samples_and_reviews"),
                (8, "thresholds_and_intake"),
                (9, "append_events")
            ]
        );
        let store: SharedStore = Arc::new(store);
        assert_eq!(store.case(&open.id).unwrap().unwrap(), open);
        let ids = |v: Vec<crate::domain::Case>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(store.open_cases().unwrap()), vec![open.id]);
        assert_eq!(
            ids(store.tenant_cases("parlor").unwrap()),
            vec![open.id, closed.id]
        );
        let (holder, _) = store.open_slot("parlor", "hate-speech").unwrap();
        assert_eq!(holder.map(|c| c.id), Some(open.id));
        assert_eq!(store.pending_deadlines().unwrap(), 1);
        assert_eq!(store.next_due().unwrap(), Some(d.due_at));
        let now = jiff::Timestamp::from_second(1_800_000_100).unwrap();
        let due = store.claim_due(now, None).unwrap().unwrap();
        assert_eq!(due.deadline.as_ref(), Some(&d));
        drop(due);
        assert_eq!(store.token(&token.hash).unwrap(), Some(token.clone()));
        // The columns say what the record says.
        let role = serde_json::to_value(&token.role).unwrap();
        let revoked = admin_count(
            &db.url,
            format!(
                "SELECT count(*) FROM tokens WHERE role = '{}' AND name = 'parlor dashboard' \
                 AND revoked_at = '2027-01-15T08:08:20Z'",
                role.as_str().unwrap()
            ),
        );
        assert_eq!(revoked, 1);
        let sources = admin_count(
            &db.url,
            format!(
                "SELECT count(*) FROM sources WHERE tenant = 'parlor' AND kind = 'rss' \
                 AND enabled AND source = '{}' AND key = '\\x{}'::bytea",
                uuid::Uuid::from_u128(7),
                hex::encode([b"parlor/".as_slice(), uuid::Uuid::from_u128(7).as_bytes()].concat())
            ),
        );
        assert_eq!(sources, 1);
        assert_eq!(store.tallies(&tenant).unwrap(), vec![tally]);
        assert_eq!(store.labels(&tenant).unwrap(), vec![label]);
        let columns = admin_count(
            &db.url,
            "SELECT (SELECT count(*) FROM tallies WHERE tenant = 'parlor' AND hour = 500000 \
               AND sampled = 40 AND (flagged ->> 'hate-speech')::int = 3) \
             + (SELECT count(*) FROM labels WHERE answer = 'violates' AND reviewer = 'ana') \
             + (SELECT count(*) FROM intake_counters WHERE id = 'parlor' AND seen_total = 2000) \
             + (SELECT count(*) FROM samples WHERE tenant = 'parlor' AND origin = 'source' \
                AND source = '00000000-0000-0000-0000-000000000007' AND status = 'scored' \
                AND policy_version = 'pv1' AND (scores ->> 'hate-speech')::real = 0.5) \
             + (SELECT count(*) FROM findings WHERE category = 'hate-speech' AND severity = 'high' \
                AND score = 0.5 AND sample = '00000000-0000-0000-0000-000000000009') \
             + (SELECT count(*) FROM seen_content WHERE tenant = 'parlor' \
                AND sample = '00000000-0000-0000-0000-000000000009')"
                .into(),
        );
        assert_eq!(columns, 6);
        assert!(store.is_seen(&tenant, &seen.hash).unwrap());
        assert_eq!(store.sample(&tenant, &sample.id).unwrap(), Some(sample));
        assert_eq!(
            store.findings(&tenant, "hate-speech", 10).unwrap(),
            vec![finding]
        );
        assert_eq!(store.intake_counter(&tenant).unwrap(), Some(counter));
        // Nothing of them is left in `kv` but the slot.
        let left = admin_count(
            &db.url,
            "SELECT count(*) FROM kv WHERE tree IN (3, 5, 6, 7, 8, 10, 11, 12, 13, 15, 25, 27)"
                .into(),
        );
        assert_eq!(left, 1);
    }

    /// One number a query answers, on a connection of its own.
    fn admin_count(url: &str, sql: String) -> i64 {
        let store = PgStore::connect(url, 1).unwrap();
        store
            .run(move |pool| async move {
                let client = pool.get().await.map_err(pool_error)?;
                let row = client.query_one(&sql, &[]).await.map_err(pg_error)?;
                Ok(row.get::<_, i64>(0))
            })
            .unwrap()
    }

    #[test]
    fn a_claimed_row_is_passed_over_by_other_claims_until_its_claim_ends() {
        let Some(db) = TestDb::new() else { return };
        let store: SharedStore = Arc::new(db.open());
        let mut rows = Batch::new();
        for k in [b"k1", b"k2", b"k3"] {
            rows.put_raw(Tree::DeliveryDue, k.to_vec(), b"v".to_vec());
        }
        store.commit(rows).unwrap();
        let keys = |c: &dyn Claim| c.rows().iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();

        let mut first = store.claim_raw(Tree::DeliveryDue, b"k", b"l", 1).unwrap();
        assert_eq!(keys(&*first), vec![b"k1".to_vec()]);
        // Another replica's claim, at the same time, gets the others.
        let second = store.claim_raw(Tree::DeliveryDue, b"k", b"l", 5).unwrap();
        assert_eq!(keys(&*second), vec![b"k2".to_vec(), b"k3".to_vec()]);
        assert!(store
            .claim_raw(Tree::DeliveryDue, b"k", b"l", 5)
            .unwrap()
            .rows()
            .is_empty());
        // Dropped without a commit: its rows are free again.
        drop(second);
        let third = store.claim_raw(Tree::DeliveryDue, b"k", b"l", 5).unwrap();
        assert_eq!(keys(&*third), vec![b"k2".to_vec(), b"k3".to_vec()]);
        drop(third);

        // A plain commit touching the claimed row does not wait for the
        // claim (no deadlock with a case action cancelling a claimed
        // deadline): the claim's own commit then finds its precondition
        // broken, and may decide again.
        let mut b = Batch::new();
        b.put_raw(Tree::DeliveryDue, b"k1".to_vec(), b"cancelled".to_vec());
        store.commit(b).unwrap();
        let fire = |seen: &[u8]| {
            let mut b = Batch::new();
            b.expect_raw(Tree::DeliveryDue, b"k1".to_vec(), Some(seen.to_vec()));
            b.delete_raw(Tree::DeliveryDue, b"k1".to_vec());
            b
        };
        assert!(matches!(
            first.commit(fire(b"v")),
            Err(StoreError::Conflict(_))
        ));
        // Still claimed after the conflict.
        assert!(store
            .claim_raw(Tree::DeliveryDue, b"k1", b"k2", 1)
            .unwrap()
            .rows()
            .is_empty());
        first.commit(fire(b"cancelled")).unwrap();
        assert!(store.get_raw(Tree::DeliveryDue, b"k1").unwrap().is_none());
        let after = store.claim_raw(Tree::DeliveryDue, b"k", b"l", 5).unwrap();
        assert_eq!(keys(&*after), vec![b"k2".to_vec(), b"k3".to_vec()]);
    }

    #[test]
    fn concurrent_expects_on_one_key_let_exactly_one_win_each_round() {
        let Some(db) = TestDb::new() else { return };
        let store: SharedStore = Arc::new(db.open());
        // A counter bumped by read-check-write from several threads: every
        // increment that commits must be counted once.
        let committed = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let store = store.clone();
                let committed = &committed;
                s.spawn(move || {
                    for _ in 0..30 {
                        loop {
                            let now = store.get_raw(Tree::OutboxNew, b"n").unwrap();
                            let n = now
                                .as_deref()
                                .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                            let mut b = Batch::new();
                            b.ops.push(Op::Expect {
                                tree: Tree::OutboxNew,
                                key: b"n".to_vec(),
                                value: now,
                            });
                            b.put_raw(
                                Tree::OutboxNew,
                                b"n".to_vec(),
                                (n + 1).to_be_bytes().to_vec(),
                            );
                            match store.commit(b) {
                                Ok(_) => {
                                    committed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                    break;
                                }
                                Err(StoreError::Conflict(_)) => continue,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                });
            }
        });
        let n = store.get_raw(Tree::OutboxNew, b"n").unwrap().unwrap();
        assert_eq!(u64::from_be_bytes(n.try_into().unwrap()), 120);
        assert_eq!(committed.load(std::sync::atomic::Ordering::SeqCst), 120);
    }

    #[test]
    fn dropping_the_store_inside_an_async_context_does_not_panic() {
        let Some(db) = TestDb::new() else { return };
        let store = db.open();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            // Called straight from async code, as the service does for reads.
            assert!(store.get_raw(Tree::Meta, b"x").unwrap().is_none());
            drop(store);
        });
    }

    /// Small commits per second, each a put and an event, with 1 and 8
    /// committing threads. `cargo test --lib pg_store -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn commit_rate() {
        let Some(db) = TestDb::new() else { return };
        let store: SharedStore = Arc::new(PgStore::open(&db.url, 16).unwrap());
        for threads in [1usize, 8] {
            let per_thread = 4000 / threads;
            let started = std::time::Instant::now();
            std::thread::scope(|s| {
                for t in 0..threads {
                    let store = store.clone();
                    s.spawn(move || {
                        for i in 0..per_thread {
                            let mut b = Batch::new();
                            b.put_raw(
                                Tree::OutboxNew,
                                format!("{threads}/{t}/{i}").into_bytes(),
                                vec![0; 64],
                            );
                            b.event("bench.commit", Some("t"), serde_json::json!({"i": i}))
                                .unwrap();
                            store.commit(b).unwrap();
                        }
                    });
                }
            });
            let secs = started.elapsed().as_secs_f64();
            println!(
                "postgres commits with {threads} thread(s): {:.0}/s ({} in {secs:.2} s)",
                (threads * per_thread) as f64 / secs,
                threads * per_thread
            );
        }
        assert!(matches!(
            crate::store::audit::verify(&store, None).unwrap(),
            crate::store::audit::AuditVerdict::Intact { .. }
        ));
    }
}
