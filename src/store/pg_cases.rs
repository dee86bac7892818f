//! The case repository on PostgreSQL: the `cases` and `deadlines` tables
//! (migration 3) read in SQL, one round trip per question. The indexes sled
//! keeps in trees are SQL indexes here (`cases (tenant, id)`, the partial
//! index on open cases, `deadlines (due_key)`), kept by the database from
//! the rows themselves. The open-case slots stay records in `kv`.

use jiff::Timestamp;

use super::cases::{
    case_key, due_of_key, due_range, open_slot_key, slot_read, CaseRepository, DueClaim, DueCursor,
};
use super::pg_read::Param;
use super::pg_store::tree_id;
use super::{decode, Batch, PgStore, Result, Tree, Version};
use crate::domain::{Case, CaseId, Deadline, DeadlineId};

const CASE: &str = "SELECT record FROM cases WHERE id = $1";

impl CaseRepository for PgStore {
    fn case(&self, id: &CaseId) -> Result<Option<Case>> {
        self.record(CASE, Box::new(id.0.to_string()))
    }

    fn case_versioned(&self, id: &CaseId) -> Result<(Option<Case>, Version)> {
        self.versioned(CASE, case_key(id), Box::new(id.0.to_string()))
    }

    fn all_cases(&self) -> Result<Vec<Case>> {
        self.records_where("SELECT record FROM cases ORDER BY id", Vec::new())
    }

    fn open_cases(&self) -> Result<Vec<Case>> {
        self.records_where(
            "SELECT record FROM cases WHERE open ORDER BY id",
            Vec::new(),
        )
    }

    fn tenant_cases(&self, tenant: &str) -> Result<Vec<Case>> {
        self.records_where(
            "SELECT record FROM cases WHERE tenant = $1 ORDER BY id",
            vec![Box::new(tenant.to_string())],
        )
    }

    fn open_slot(&self, tenant: &str, category: &str) -> Result<(Option<Case>, Version)> {
        let key = open_slot_key(tenant, category);
        let params: Vec<Param> = vec![Box::new(tree_id(Tree::CaseIndex)), Box::new(key.clone())];
        // The slot and the case it names, in one round trip.
        let row = self
            .rows(
                "SELECT s.value, c.record FROM kv s \
                 LEFT JOIN cases c ON c.id = convert_from(s.value, 'UTF8') \
                 WHERE s.tree = $1 AND s.key = $2",
                params,
            )?
            .pop();
        let (raw, holder) = match row {
            Some(r) => (Some(r.get::<_, Vec<u8>>(0)), r.get::<_, Option<Vec<u8>>>(1)),
            None => (None, None),
        };
        let holder = holder.as_deref().map(decode::<Case>).transpose()?;
        Ok(slot_read(key, raw, holder))
    }

    fn deadline(&self, id: &DeadlineId) -> Result<Option<Deadline>> {
        self.record(
            "SELECT record FROM deadlines WHERE id = $1",
            Box::new(id.0.clone()),
        )
    }

    fn pending_deadlines(&self) -> Result<usize> {
        self.count("SELECT count(*) FROM deadlines")
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
