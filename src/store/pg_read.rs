//! How the PostgreSQL repositories read: one prepared query on a pooled
//! connection, its parameters owned by the query's task, and the rows
//! turned into records and versions. Every `pg_*.rs` repository reads
//! through these.

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::pg_store::{pg_error, pool_error};
use super::{decode, prefix_successor, PgStore, Record, Result, Version};

/// A query parameter owned by the query's task.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// A text key (the tables keyed by text ids hold only UTF-8 keys).
pub(super) fn text(key: Vec<u8>) -> Param {
    Box::new(String::from_utf8_lossy(&key).into_owned())
}

/// The keys starting with `prefix`, as the parameters of `key >= $n AND
/// ($m::bytea IS NULL OR key < $m)`.
pub(super) fn byte_prefix(prefix: Vec<u8>) -> [Param; 2] {
    let hi = prefix_successor(&prefix);
    [Box::new(prefix), Box::new(hi)]
}

/// The text ids starting with `prefix`, as the parameters of `id >= $n AND
/// ($m::text IS NULL OR id < $m)`.
pub(super) fn text_prefix(prefix: Vec<u8>) -> [Param; 2] {
    let hi = prefix_successor(&prefix).map(|h| String::from_utf8_lossy(&h).into_owned());
    [text(prefix), Box::new(hi)]
}

impl PgStore {
    /// Every row `sql` returns.
    pub(super) fn rows(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<Row>> {
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_error)?;
            let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            client.query(&stmt, &refs).await.map_err(pg_error)
        })
    }

    /// The first column (bytes) of every row `sql` returns.
    pub(super) fn column(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .rows(sql, params)?
            .iter()
            .map(|r| r.get::<_, Vec<u8>>(0))
            .collect())
    }

    /// The (key, record) rows `sql` selects.
    pub(super) fn keyed_rows(
        &self,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .rows(sql, params)?
            .iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
            .collect())
    }

    /// The records `sql` selects (its first column).
    pub(super) fn records_where<R: Record>(
        &self,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<Vec<R>> {
        self.column(sql, params)?
            .iter()
            .map(|raw| decode::<R>(raw))
            .collect()
    }

    /// The one record `sql` selects with `param` (its key), if any.
    pub(super) fn record<R: Record>(&self, sql: &'static str, param: Param) -> Result<Option<R>> {
        Ok(self.records_where(sql, vec![param])?.pop())
    }

    /// The one record `sql` selects with `param`, if any, with the version
    /// read of `R`'s record at `key`.
    pub(super) fn versioned<R: Record>(
        &self,
        sql: &'static str,
        key: Vec<u8>,
        param: Param,
    ) -> Result<(Option<R>, Version)> {
        Version::found::<R>(key, self.column(sql, vec![param])?.pop())
    }

    /// How many rows `sql` counts.
    pub(super) fn count(&self, sql: &'static str) -> Result<usize> {
        let n = self
            .rows(sql, Vec::new())?
            .first()
            .map_or(0, |r| r.get::<_, i64>(0));
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Whether `sql` finds a row with `param`.
    pub(super) fn exists(&self, sql: &'static str, param: Param) -> Result<bool> {
        Ok(!self.rows(sql, vec![param])?.is_empty())
    }
}
