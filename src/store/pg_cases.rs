//! The case repository on PostgreSQL: the `cases` and `deadlines` tables
//! (migration 3) read in SQL, one round trip per question. The indexes sled
//! keeps in trees are SQL indexes here (`cases (tenant, id)`, the partial
//! index on open cases, `deadlines (due_key)`), kept by the database from
//! the rows themselves. The open-case slots stay records in `kv`.

use jiff::Timestamp;
use tokio_postgres::types::ToSql;

use super::cases::{
    case_key, due_of_key, due_range, open_slot_key, CaseRepository, DueClaim, DueCursor,
};
use super::pg_store::{pg_error, pool_error, tree_id};
use super::{decode, Batch, PgStore, Result, Tree, Version};
use crate::domain::{Case, CaseId, Deadline, DeadlineId};

/// A query parameter owned by the query's task.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

impl PgStore {
    /// The first column (bytes) of every row `sql` returns.
    pub(super) fn column(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<Vec<u8>>> {
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_error)?;
            let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = client.query(&stmt, &refs).await.map_err(pg_error)?;
            Ok(rows.into_iter().map(|r| r.get::<_, Vec<u8>>(0)).collect())
        })
    }

    /// The cases `sql` selects (their `record` column).
    fn cases_where(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<Case>> {
        self.column(sql, params)?
            .iter()
            .map(|raw| decode::<Case>(raw))
            .collect()
    }

    /// One case's stored bytes.
    fn case_raw(&self, id: &CaseId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .column(
                "SELECT record FROM cases WHERE id = $1",
                vec![Box::new(id.0.to_string())],
            )?
            .pop())
    }
}

impl CaseRepository for PgStore {
    fn case(&self, id: &CaseId) -> Result<Option<Case>> {
        self.case_raw(id)?
            .as_deref()
            .map(decode::<Case>)
            .transpose()
    }

    fn case_versioned(&self, id: &CaseId) -> Result<(Option<Case>, Version)> {
        let raw = self.case_raw(id)?;
        let case = raw.as_deref().map(decode::<Case>).transpose()?;
        Ok((
            case,
            Version {
                tree: Tree::Cases,
                key: case_key(id),
                raw,
            },
        ))
    }

    fn all_cases(&self) -> Result<Vec<Case>> {
        self.cases_where("SELECT record FROM cases ORDER BY id", Vec::new())
    }

    fn open_cases(&self) -> Result<Vec<Case>> {
        self.cases_where(
            "SELECT record FROM cases WHERE open ORDER BY id",
            Vec::new(),
        )
    }

    fn tenant_cases(&self, tenant: &str) -> Result<Vec<Case>> {
        self.cases_where(
            "SELECT record FROM cases WHERE tenant = $1 ORDER BY id",
            vec![Box::new(tenant.to_string())],
        )
    }

    fn open_slot(&self, tenant: &str, category: &str) -> Result<(Option<Case>, Version)> {
        let key = open_slot_key(tenant, category);
        let params: Vec<Param> = vec![Box::new(tree_id(Tree::CaseIndex)), Box::new(key.clone())];
        // The slot and the case it names, in one round trip.
        let row = self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_error)?;
            let stmt = client
                .prepare_cached(
                    "SELECT s.value, c.record FROM kv s \
                     LEFT JOIN cases c ON c.id = convert_from(s.value, 'UTF8') \
                     WHERE s.tree = $1 AND s.key = $2",
                )
                .await
                .map_err(pg_error)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let row = client.query_opt(&stmt, &refs).await.map_err(pg_error)?;
            Ok(row.map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Option<Vec<u8>>>(1))))
        })?;
        let (raw, case) = match row {
            Some((slot, record)) => (Some(slot), record),
            None => (None, None),
        };
        let case = case
            .as_deref()
            .map(decode::<Case>)
            .transpose()?
            .filter(|c| c.state.is_open());
        Ok((
            case,
            Version {
                tree: Tree::CaseIndex,
                key,
                raw,
            },
        ))
    }

    fn deadline(&self, id: &DeadlineId) -> Result<Option<Deadline>> {
        self.column(
            "SELECT record FROM deadlines WHERE id = $1",
            vec![Box::new(id.0.clone())],
        )?
        .first()
        .map(|raw| decode::<Deadline>(raw))
        .transpose()
    }

    fn pending_deadlines(&self) -> Result<usize> {
        let n = self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_error)?;
            let stmt = client
                .prepare_cached("SELECT count(*) FROM deadlines")
                .await
                .map_err(pg_error)?;
            let row = client.query_one(&stmt, &[]).await.map_err(pg_error)?;
            Ok(row.get::<_, i64>(0))
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn next_due(&self) -> Result<Option<Timestamp>> {
        Ok(self
            .column(
                "SELECT due_key FROM deadlines ORDER BY due_key LIMIT 1",
                Vec::new(),
            )?
            .first()
            .and_then(|k| due_of_key(k)))
    }

    fn claim_due(&self, now: Timestamp, from: Option<&DueCursor>) -> Result<Option<DueClaim<'_>>> {
        let (start, end) = due_range(now, from);
        let claim = self.claim_due_rows(&start, &end, 1)?;
        let Some((key, id)) = claim.rows().first().cloned() else {
            return Ok(None);
        };
        let id = DeadlineId(String::from_utf8_lossy(&id).into_owned());
        let deadline = self.deadline(&id)?;
        // The claim found the row once locked, so it exists; if it has gone
        // since, forgetting it has nothing left to remove.
        Ok(Some(DueClaim::new(claim, key, deadline, Batch::new())))
    }
}
