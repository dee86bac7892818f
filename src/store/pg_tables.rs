//! PostgreSQL tables for the aggregates that have left the `kv` table:
//! cases and their deadlines (migrations/0003_cases_and_deadlines.sql).
//!
//! Each has a table with the columns an operator queries by (a case's
//! tenant and state, a deadline's case, kind and due time) beside the
//! versioned record the service reads, and SQL indexes replace the index
//! trees sled keeps beside them: `cases (tenant, id)` answers the
//! `case_index` entries under `t/`, the partial index on open cases those
//! under `o/`, and `deadlines (due_key)` the `deadline_due` tree. Writes of
//! those index entries are dropped here ([`Place::Derived`]); reads of them
//! are answered from the tables in the same key order sled gives, so the
//! repositories read and claim the same way on both backends.

use tokio_postgres::types::ToSql;

use super::{decode, Result, StoreError, Tree};
use crate::domain::{Case, Deadline};

/// Prefix of the open-case entries of [`Tree::CaseIndex`].
const OPEN: &[u8] = b"o/";
/// Prefix of the tenant entries of [`Tree::CaseIndex`].
const TENANT: &[u8] = b"t/";

/// Where a write to a tree's key goes on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// The `kv` table.
    Kv,
    /// The `cases` table.
    Cases,
    /// The `deadlines` table.
    Deadlines,
    /// Nowhere: an index entry sled keeps beside a record, which an SQL
    /// index over that record's table answers here.
    Derived,
}

/// Where `tree`'s record at `key` lives.
pub(super) fn place(tree: Tree, key: &[u8]) -> Place {
    match tree {
        Tree::Cases => Place::Cases,
        Tree::Deadlines => Place::Deadlines,
        Tree::DeadlineDue => Place::Derived,
        Tree::CaseIndex if key.starts_with(OPEN) || key.starts_with(TENANT) => Place::Derived,
        _ => Place::Kv,
    }
}

/// Whether reading `tree` needs more than the `kv` table.
pub(super) fn is_relational(tree: Tree) -> bool {
    matches!(
        tree,
        Tree::Cases | Tree::Deadlines | Tree::DeadlineDue | Tree::CaseIndex
    )
}

/// A key of the `cases` or `deadlines` table as its text id; `None` when
/// it is not UTF-8 (no such row can exist).
pub(super) fn text_key(key: &[u8]) -> Option<String> {
    std::str::from_utf8(key).ok().map(str::to_string)
}

/// Cases to upsert, as parallel columns.
#[derive(Debug, Default)]
pub(super) struct CaseRows {
    pub ids: Vec<String>,
    pub tenants: Vec<String>,
    pub states: Vec<&'static str>,
    pub open: Vec<bool>,
    pub updated_at: Vec<String>,
    pub records: Vec<Vec<u8>>,
}

impl CaseRows {
    /// Adds the case stored as `value` under `key`.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let case: Case = decode(value)?;
        let id = case.id.0.to_string();
        if id.as_bytes() != key {
            return Err(StoreError::Encode {
                tree: Tree::Cases.name(),
                message: format!("case {id} written under another key"),
            });
        }
        self.ids.push(id);
        self.tenants.push(case.tenant.as_str().to_string());
        self.states.push(case.state.as_str());
        self.open.push(case.state.is_open());
        self.updated_at.push(case.updated_at.to_string());
        self.records.push(value.to_vec());
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.ids,
            &self.tenants,
            &self.states,
            &self.open,
            &self.updated_at,
            &self.records,
        ]
    }
}

/// Deadlines to upsert, as parallel columns.
#[derive(Debug, Default)]
pub(super) struct DeadlineRows {
    pub ids: Vec<String>,
    pub cases: Vec<String>,
    pub kinds: Vec<&'static str>,
    pub due_at: Vec<String>,
    pub due_keys: Vec<Vec<u8>>,
    pub records: Vec<Vec<u8>>,
}

impl DeadlineRows {
    /// Adds the deadline stored as `value` under `key`.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let d: Deadline = decode(value)?;
        if d.id.0.as_bytes() != key {
            return Err(StoreError::Encode {
                tree: Tree::Deadlines.name(),
                message: format!("deadline {} written under another key", d.id),
            });
        }
        self.due_keys.push(super::cases::due_key(d.due_at, &d.id));
        self.ids.push(d.id.0);
        self.cases.push(d.case.0.to_string());
        self.kinds.push(d.kind.as_str());
        self.due_at.push(d.due_at.to_string());
        self.records.push(value.to_vec());
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.ids,
            &self.cases,
            &self.kinds,
            &self.due_at,
            &self.due_keys,
            &self.records,
        ]
    }
}

/// The statements a commit uses on these tables, prepared once per
/// connection.
pub(super) struct TableStatements {
    pub read_cases: tokio_postgres::Statement,
    pub read_deadlines: tokio_postgres::Statement,
    pub delete_cases: tokio_postgres::Statement,
    pub delete_deadlines: tokio_postgres::Statement,
    pub upsert_cases: tokio_postgres::Statement,
    pub upsert_deadlines: tokio_postgres::Statement,
}

impl TableStatements {
    pub async fn prepare(client: &deadpool_postgres::Object) -> Result<Self> {
        let (
            read_cases,
            read_deadlines,
            delete_cases,
            delete_deadlines,
            upsert_cases,
            upsert_deadlines,
        ) = futures_util::try_join!(
            client.prepare_cached(
                "SELECT u.n, c.record \
                     FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n) \
                     LEFT JOIN cases c ON c.id = u.k ORDER BY u.n",
            ),
            client.prepare_cached(
                "SELECT u.n, d.record \
                     FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n) \
                     LEFT JOIN deadlines d ON d.id = u.k ORDER BY u.n",
            ),
            client.prepare_cached("DELETE FROM cases WHERE id = ANY($1::text[])"),
            client.prepare_cached("DELETE FROM deadlines WHERE id = ANY($1::text[])"),
            client.prepare_cached(
                "INSERT INTO cases (id, tenant, state, open, updated_at, record) \
                     SELECT i, t, s, o, u::timestamptz, r \
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], \
                                 $6::bytea[]) AS x(i, t, s, o, u, r) \
                     ON CONFLICT (id) DO UPDATE SET tenant = EXCLUDED.tenant, \
                         state = EXCLUDED.state, open = EXCLUDED.open, \
                         updated_at = EXCLUDED.updated_at, record = EXCLUDED.record",
            ),
            client.prepare_cached(
                "INSERT INTO deadlines (id, case_id, kind, due_at, due_key, record) \
                     SELECT i, c, k, d::timestamptz, dk, r \
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], \
                                 $6::bytea[]) AS x(i, c, k, d, dk, r) \
                     ON CONFLICT (id) DO UPDATE SET case_id = EXCLUDED.case_id, \
                         kind = EXCLUDED.kind, due_at = EXCLUDED.due_at, \
                         due_key = EXCLUDED.due_key, record = EXCLUDED.record",
            ),
        )
        .map_err(super::pg_store::pg_error)?;
        Ok(TableStatements {
            read_cases,
            read_deadlines,
            delete_cases,
            delete_deadlines,
            upsert_cases,
            upsert_deadlines,
        })
    }
}

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Whether some key starting with `prefix` lies in `lo <= key < hi`.
fn reaches(prefix: &[u8], lo: &[u8], hi: Option<&[u8]>) -> bool {
    let above_lo = match super::pg_store::prefix_successor(prefix) {
        Some(end) => lo < end.as_slice(),
        None => true,
    };
    above_lo && hi.is_none_or(|hi| hi > prefix)
}

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
    let mut rows = match tree {
        Tree::Cases => {
            let sql = format!(
                "SELECT convert_to(id, 'UTF8'), record FROM cases \
                 WHERE convert_to(id, 'UTF8') >= $1 \
                   AND ($2::bytea IS NULL OR convert_to(id, 'UTF8') < $2) \
                 ORDER BY id {order} LIMIT $3"
            );
            query(client, &sql, &[&lo, &hi, &limit]).await?
        }
        Tree::Deadlines => {
            let sql = format!(
                "SELECT convert_to(id, 'UTF8'), record FROM deadlines \
                 WHERE convert_to(id, 'UTF8') >= $1 \
                   AND ($2::bytea IS NULL OR convert_to(id, 'UTF8') < $2) \
                 ORDER BY id {order} LIMIT $3"
            );
            query(client, &sql, &[&lo, &hi, &limit]).await?
        }
        Tree::DeadlineDue => {
            let sql = format!(
                "SELECT due_key, convert_to(id, 'UTF8') FROM deadlines \
                 WHERE due_key >= $1 AND ($2::bytea IS NULL OR due_key < $2) \
                 ORDER BY due_key {order} LIMIT $3"
            );
            query(client, &sql, &[&lo, &hi, &limit]).await?
        }
        Tree::CaseIndex => {
            let mut rows = Vec::new();
            // The entries kept as they are (the open slots, `s/`).
            let kv = super::pg_store::tree_id(Tree::CaseIndex);
            let sql = format!(
                "SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 \
                   AND ($3::bytea IS NULL OR key < $3) ORDER BY key {order} LIMIT $4"
            );
            rows.extend(query(client, &sql, &[&kv, &lo, &hi, &limit]).await?);
            if reaches(OPEN, lo, hi) {
                let sql = format!(
                    "SELECT 'o/'::bytea || convert_to(id, 'UTF8'), ''::bytea FROM cases \
                     WHERE open AND 'o/'::bytea || convert_to(id, 'UTF8') >= $1 \
                       AND ($2::bytea IS NULL OR 'o/'::bytea || convert_to(id, 'UTF8') < $2) \
                     ORDER BY id {order} LIMIT $3"
                );
                rows.extend(query(client, &sql, &[&lo, &hi, &limit]).await?);
            }
            if reaches(TENANT, lo, hi) {
                rows.extend(tenant_entries(client, lo, hi, limit, order).await?);
            }
            rows
        }
        other => {
            return Err(StoreError::Backend(format!(
                "the {} tree has no table of its own",
                other.name()
            )))
        }
    };
    // Parts read separately (the case index) come together in key order.
    if desc {
        rows.sort_by(|a, b| b.0.cmp(&a.0));
    } else {
        rows.sort_by(|a, b| a.0.cmp(&b.0));
    }
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(rows)
}

/// The `t/tenant/id` entries of the case index in `lo <= key < hi`: one
/// tenant's cases through the `(tenant, id)` index when the range is
/// exactly one tenant's prefix (what the repository asks), else every
/// case's entry filtered by the bounds.
async fn tenant_entries(
    client: &deadpool_postgres::Object,
    lo: &[u8],
    hi: Option<&[u8]>,
    limit: i64,
    order: &str,
) -> Result<Rows> {
    let one_tenant = lo
        .strip_prefix(TENANT)
        .and_then(|rest| rest.strip_suffix(b"/"))
        .filter(|t| !t.contains(&b'/'))
        .and_then(|t| std::str::from_utf8(t).ok())
        .filter(|_| hi == super::pg_store::prefix_successor(lo).as_deref());
    if let Some(tenant) = one_tenant {
        let sql = format!(
            "SELECT $2::bytea || convert_to(id, 'UTF8'), ''::bytea FROM cases \
             WHERE tenant = $1 ORDER BY id {order} LIMIT $3"
        );
        return query(client, &sql, &[&tenant, &lo, &limit]).await;
    }
    let sql = format!(
        "SELECT k, ''::bytea FROM \
           (SELECT convert_to('t/' || tenant || '/' || id, 'UTF8') AS k FROM cases) AS e \
         WHERE k >= $1 AND ($2::bytea IS NULL OR k < $2) ORDER BY k {order} LIMIT $3"
    );
    query(client, &sql, &[&lo, &hi, &limit]).await
}

/// `tree`'s record at `key`, for a tree [`is_relational`] says needs more
/// than `kv`.
pub(super) async fn get(
    client: &deadpool_postgres::Object,
    tree: Tree,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    let table = match tree {
        Tree::Cases => Some("SELECT record FROM cases WHERE id = $1"),
        Tree::Deadlines => Some("SELECT record FROM deadlines WHERE id = $1"),
        _ => None,
    };
    if let Some(sql) = table {
        let Some(id) = text_key(key) else {
            return Ok(None);
        };
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(super::pg_store::pg_error)?;
        let row = client
            .query_opt(&stmt, &[&id])
            .await
            .map_err(super::pg_store::pg_error)?;
        return Ok(row.map(|r| r.get::<_, Vec<u8>>(0)));
    }
    // An index entry: the one row of the range holding just this key.
    let mut next = key.to_vec();
    next.push(0);
    Ok(read(client, tree, key, Some(&next), 1, false)
        .await?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_go_nowhere_and_slots_stay_in_kv() {
        assert_eq!(place(Tree::Cases, b"x"), Place::Cases);
        assert_eq!(place(Tree::Deadlines, b"x"), Place::Deadlines);
        assert_eq!(place(Tree::DeadlineDue, b"x"), Place::Derived);
        assert_eq!(place(Tree::CaseIndex, b"o/1"), Place::Derived);
        assert_eq!(place(Tree::CaseIndex, b"t/a/1"), Place::Derived);
        assert_eq!(place(Tree::CaseIndex, b"s/a/hate"), Place::Kv);
        assert_eq!(place(Tree::Tenants, b"o/1"), Place::Kv);
    }

    #[test]
    fn a_range_reaches_a_prefix_only_when_they_overlap() {
        assert!(reaches(b"o/", b"", None));
        assert!(reaches(b"o/", b"o/", Some(b"o0")));
        assert!(reaches(b"o/", b"o/abc", Some(b"o/abd")));
        assert!(!reaches(b"o/", b"t/", Some(b"t0")));
        assert!(!reaches(b"t/", b"o/", Some(b"o0")));
        assert!(!reaches(b"o/", b"s/", None));
    }
}
