-- Raised evidence thresholds, push-intake counters and the content hashes
-- already sampled leave the `kv` table for tables of their own (see
-- src/store/pg_tables.rs), so "which tenants have a raised threshold, and
-- on what figures" and "how much has each tenant pushed" are plain SQL. A
-- threshold is keyed `tenant/category`, an intake counter by its tenant, a
-- content hash by `tenant/hash`.
CREATE TABLE threshold_alerts (
    id text COLLATE "C" PRIMARY KEY,
    tenant text COLLATE "C",
    category text,
    reason text,
    raised_at timestamptz,
    sampled bigint,
    flagged bigint,
    lower_bound double precision,
    record bytea NOT NULL
);

CREATE TABLE intake_counters (
    id text COLLATE "C" PRIMARY KEY,
    window_start timestamptz,
    kept_in_window bigint,
    seen_total bigint,
    kept_total bigint,
    record bytea NOT NULL
);

-- The sample that took the hash: a pushed or fetched text seen again is
-- recorded as a duplicate of it.
CREATE TABLE seen_content (
    id text COLLATE "C" PRIMARY KEY,
    tenant text COLLATE "C",
    sample uuid,
    record bytea NOT NULL
);

-- Rows written by earlier builds move over. Tree ids (`tree_id` in
-- src/store/pg_store.rs): 6 seen, 9 alerts, 10 intake.
CREATE TEMPORARY TABLE moving AS
SELECT tree, convert_from(key, 'UTF8') AS id, value,
       convert_from(value, 'UTF8')::jsonb -> 'r' AS r
FROM kv WHERE tree IN (6, 9, 10);

INSERT INTO threshold_alerts (id, tenant, category, reason, raised_at, sampled, flagged,
                              lower_bound, record)
SELECT id, r ->> 'tenant', r ->> 'category', r ->> 'reason', (r ->> 'raised_at')::timestamptz,
       (r -> 'prevalence' ->> 'sampled')::bigint, (r -> 'prevalence' ->> 'flagged')::bigint,
       (r -> 'prevalence' ->> 'lower')::double precision, value
FROM moving WHERE tree = 9;

INSERT INTO intake_counters (id, window_start, kept_in_window, seen_total, kept_total, record)
SELECT id, (r ->> 'window_start')::timestamptz, (r ->> 'kept_in_window')::bigint,
       (r ->> 'seen_total')::bigint, (r ->> 'kept_total')::bigint, value
FROM moving WHERE tree = 10;

INSERT INTO seen_content (id, tenant, sample, record)
SELECT id, r ->> 'tenant', (r ->> 'sample')::uuid, value
FROM moving WHERE tree = 6;

DELETE FROM kv WHERE tree IN (6, 9, 10);
DROP TABLE moving;
