-- Tenants, their sources and each source's schedule, API tokens and
-- employee reports leave the `kv` table for tables of their own, as cases
-- and deadlines did in migration 3 (see src/store/pg_tables.rs): `id` is
-- the record's key, `record` the versioned JSON the service reads, and the
-- other columns are written from it in the same statement.
CREATE TABLE tenants (
    id text COLLATE "C" PRIMARY KEY,
    name text,
    status text,
    risk_tier text,
    updated_at timestamptz,
    record bytea NOT NULL
);

-- `key` is the tenant, `/`, then the source's UUID as 16 bytes (as on
-- sled), so a tenant's sources are one range of the key; `source` is that
-- UUID as a column.
CREATE TABLE sources (
    key bytea PRIMARY KEY,
    tenant text COLLATE "C",
    source uuid,
    kind text,
    url text,
    enabled boolean,
    record bytea NOT NULL
);

CREATE TABLE source_states (
    key bytea PRIMARY KEY,
    tenant text COLLATE "C",
    source uuid,
    next_due timestamptz,
    health text,
    claimed_by text,
    record bytea NOT NULL
);
CREATE INDEX source_states_by_due ON source_states (next_due);

-- `id` is the hex SHA-256 of the token's secret; the secret is never stored.
CREATE TABLE tokens (
    id text COLLATE "C" PRIMARY KEY,
    name text,
    role text,
    created_at timestamptz,
    revoked_at timestamptz,
    record bytea NOT NULL
);

CREATE TABLE reports (
    id text COLLATE "C" PRIMARY KEY,
    tenant text COLLATE "C",
    reporter text,
    category text,
    created_at timestamptz,
    record bytea NOT NULL
);
CREATE INDEX reports_by_tenant ON reports (tenant, created_at);
CREATE INDEX reports_by_reporter ON reports (reporter, created_at);

-- Rows written by earlier builds move over. Tree ids (`tree_id` in
-- src/store/pg_store.rs): 2 tenants, 3 sources, 4 source_state,
-- 15 tokens, 16 reports.
CREATE TEMPORARY TABLE moving AS
SELECT tree, key, value, convert_from(value, 'UTF8')::jsonb -> 'r' AS r
FROM kv WHERE tree IN (2, 3, 4, 15, 16);

INSERT INTO tenants (id, name, status, risk_tier, updated_at, record)
SELECT convert_from(key, 'UTF8'), r ->> 'name', r ->> 'status', r ->> 'risk_tier',
       (r ->> 'updated_at')::timestamptz, value
FROM moving WHERE tree = 2;

INSERT INTO sources (key, tenant, source, kind, url, enabled, record)
SELECT key, r ->> 'tenant', (r ->> 'id')::uuid, r -> 'kind' ->> 'kind', r ->> 'url',
       (r ->> 'enabled')::boolean, value
FROM moving WHERE tree = 3;

INSERT INTO source_states (key, tenant, source, next_due, health, claimed_by, record)
SELECT key, r ->> 'tenant', (r ->> 'source')::uuid, (r ->> 'next_due')::timestamptz, r ->> 'health',
       r ->> 'claimed_by', value
FROM moving WHERE tree = 4;

INSERT INTO tokens (id, name, role, created_at, revoked_at, record)
SELECT convert_from(key, 'UTF8'), r ->> 'name', r ->> 'role', (r ->> 'created_at')::timestamptz,
       (r ->> 'revoked_at')::timestamptz, value
FROM moving WHERE tree = 15;

INSERT INTO reports (id, tenant, reporter, category, created_at, record)
SELECT convert_from(key, 'UTF8'), r ->> 'tenant', r ->> 'reporter', r ->> 'category',
       (r ->> 'created_at')::timestamptz, value
FROM moving WHERE tree = 16;

DELETE FROM kv WHERE tree IN (2, 3, 4, 15, 16);
DROP TABLE moving;
