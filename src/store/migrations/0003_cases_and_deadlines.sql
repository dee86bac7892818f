-- Cases and deadlines leave the `kv` table for tables of their own, with
-- the columns an operator queries by and the indexes the service reads
-- through (see src/store/pg_tables.rs):
--
-- * `cases`: one row per case. `open` is true in the states a case is
--   worked in (`CaseState::is_open`). The indexes on `(tenant, id)` and on
--   open cases answer what sled keeps in the `case_index` tree under `t/`
--   and `o/`, so those entries are not stored here.
-- * `deadlines`: one row per pending deadline. `due_key` is the due time in
--   milliseconds (big-endian) followed by the id, the order deadlines fire
--   in; its unique index answers what sled keeps in the `deadline_due` tree.
--
-- `record` holds the versioned JSON the service reads and writes (the same
-- bytes as on sled), so a precondition still compares the exact record read.
-- The other columns are written from it in the same statement.
CREATE TABLE cases (
    id text COLLATE "C" PRIMARY KEY,
    tenant text COLLATE "C" NOT NULL,
    state text NOT NULL,
    open boolean NOT NULL,
    updated_at timestamptz NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX cases_by_tenant ON cases (tenant, id);
CREATE INDEX open_cases ON cases (id) WHERE open;

CREATE TABLE deadlines (
    id text COLLATE "C" PRIMARY KEY,
    case_id text COLLATE "C" NOT NULL,
    kind text NOT NULL,
    due_at timestamptz NOT NULL,
    due_key bytea NOT NULL UNIQUE,
    record bytea NOT NULL
);
CREATE INDEX deadlines_by_case ON deadlines (case_id);

-- Rows written by earlier builds move over. Tree ids (`tree_id` in
-- src/store/pg_store.rs): 11 cases, 12 deadlines, 13 deadline_due,
-- 25 case_index.
INSERT INTO cases (id, tenant, state, open, updated_at, record)
SELECT convert_from(key, 'UTF8'),
       r ->> 'tenant',
       r ->> 'state',
       (r ->> 'state') IN ('open', 'noticed', 'plan_submitted', 'verifying',
                           'escalated', 'suspension_proposed'),
       (r ->> 'updated_at')::timestamptz,
       value
FROM (SELECT key, value, convert_from(value, 'UTF8')::jsonb -> 'r' AS r
      FROM kv WHERE tree = 11) AS old;

INSERT INTO deadlines (id, case_id, kind, due_at, due_key, record)
SELECT convert_from(key, 'UTF8'),
       r ->> 'case',
       r ->> 'kind',
       (r ->> 'due_at')::timestamptz,
       int8send(greatest(floor(extract(epoch FROM (r ->> 'due_at')::timestamptz) * 1000), 0)::bigint)
           || key,
       value
FROM (SELECT key, value, convert_from(value, 'UTF8')::jsonb -> 'r' AS r
      FROM kv WHERE tree = 12) AS old;

DELETE FROM kv
WHERE tree IN (11, 12, 13)
   OR (tree = 25 AND substring(key FROM 1 FOR 2) IN ('\x6f2f'::bytea, '\x742f'::bytea));

-- Claims due deadlines for a replica to fire, as `aupd_claim` does for a
-- tree of `kv`: the first `lim` deadlines with `lo <= due_key < hi`, in
-- due order, whose claim lock no one else holds and which still exist once
-- locked. Each row comes back as the due key and the deadline's id.
CREATE FUNCTION aupd_claim_due(lo bytea, hi bytea, lim integer, ns integer)
RETURNS TABLE (claimed_key bytea, claimed_value bytea)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    candidate bytea;
    got integer := 0;
BEGIN
    IF lim <= 0 THEN
        RETURN;
    END IF;
    FOR candidate IN
        SELECT d.due_key FROM deadlines d WHERE d.due_key >= lo AND d.due_key < hi ORDER BY d.due_key
    LOOP
        IF pg_try_advisory_xact_lock(ns, hashtext(encode(candidate, 'hex'))) THEN
            RETURN QUERY SELECT d.due_key, convert_to(d.id, 'UTF8') FROM deadlines d
                WHERE d.due_key = candidate;
            IF FOUND THEN
                got := got + 1;
                IF got >= lim THEN
                    RETURN;
                END IF;
            END IF;
        END IF;
    END LOOP;
END
$$;
