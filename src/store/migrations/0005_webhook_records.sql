-- The webhook side's records leave the `kv` table for tables of their own,
-- as in migrations 3 and 4 (see src/store/pg_tables.rs): outbox messages,
-- deliveries, endpoints, orders, receipts and operator alerts. The queues
-- the dispatcher claims work from (`outbox_new`, `delivery_due`) and the
-- index of each message's deliveries stay in `kv`. An endpoint's signing
-- secret stays sealed inside its record and has no column.
CREATE TABLE outbox (
    id text COLLATE "C" PRIMARY KEY,
    event_type text,
    idempotency_key text,
    tenant text COLLATE "C",
    endpoint text,
    created_at timestamptz,
    record bytea NOT NULL
);
CREATE INDEX outbox_by_tenant ON outbox (tenant, created_at);

CREATE TABLE deliveries (
    id text COLLATE "C" PRIMARY KEY,
    message_id text COLLATE "C",
    endpoint_id text,
    event_type text,
    status text,
    next_attempt_at timestamptz,
    updated_at timestamptz,
    record bytea NOT NULL
);
CREATE INDEX deliveries_by_message ON deliveries (message_id);
CREATE INDEX deliveries_by_status ON deliveries (status, updated_at);

CREATE TABLE endpoints (
    id text COLLATE "C" PRIMARY KEY,
    url text,
    enabled boolean,
    dry_run boolean,
    failing_since timestamptz,
    record bytea NOT NULL
);

CREATE TABLE orders (
    id text COLLATE "C" PRIMARY KEY,
    case_id text,
    event_type text,
    message_id text,
    record bytea NOT NULL
);
CREATE INDEX orders_by_case ON orders (case_id);

CREATE TABLE receipts (
    id text COLLATE "C" PRIMARY KEY,
    case_id text,
    event_type text,
    outcome text,
    received_at timestamptz,
    record bytea NOT NULL
);
CREATE INDEX receipts_by_case ON receipts (case_id);

CREATE TABLE operator_alerts (
    id text COLLATE "C" PRIMARY KEY,
    kind text,
    subject text,
    at timestamptz,
    record bytea NOT NULL
);
CREATE INDEX operator_alerts_by_time ON operator_alerts (at);

-- Rows written by earlier builds move over. Tree ids (`tree_id` in
-- src/store/pg_store.rs): 14 outbox, 18 endpoints, 19 deliveries,
-- 21 orders, 22 receipts, 23 operator_alerts.
CREATE TEMPORARY TABLE moving AS
SELECT tree, convert_from(key, 'UTF8') AS id, value,
       convert_from(value, 'UTF8')::jsonb -> 'r' AS r
FROM kv WHERE tree IN (14, 18, 19, 21, 22, 23);

INSERT INTO outbox (id, event_type, idempotency_key, tenant, endpoint, created_at, record)
SELECT id, r ->> 'event_type', r ->> 'idempotency_key', r ->> 'tenant', r ->> 'endpoint',
       (r ->> 'created_at')::timestamptz, value
FROM moving WHERE tree = 14;

INSERT INTO endpoints (id, url, enabled, dry_run, failing_since, record)
SELECT id, r ->> 'url', (r ->> 'enabled')::boolean, (r ->> 'dry_run')::boolean,
       (r ->> 'failing_since')::timestamptz, value
FROM moving WHERE tree = 18;

INSERT INTO deliveries (id, message_id, endpoint_id, event_type, status, next_attempt_at,
                        updated_at, record)
SELECT id, r ->> 'message_id', r ->> 'endpoint_id', r ->> 'event_type', r ->> 'status',
       (r ->> 'next_attempt_at')::timestamptz, (r ->> 'updated_at')::timestamptz, value
FROM moving WHERE tree = 19;

INSERT INTO orders (id, case_id, event_type, message_id, record)
SELECT id, r ->> 'case_id', r ->> 'event_type', r ->> 'message_id', value
FROM moving WHERE tree = 21;

INSERT INTO receipts (id, case_id, event_type, outcome, received_at, record)
SELECT id, r ->> 'case_id', r ->> 'event_type', r ->> 'outcome',
       (r ->> 'received_at')::timestamptz, value
FROM moving WHERE tree = 22;

INSERT INTO operator_alerts (id, kind, subject, at, record)
SELECT id, r ->> 'kind', r ->> 'subject', (r ->> 'at')::timestamptz, value
FROM moving WHERE tree = 23;

DELETE FROM kv WHERE tree IN (14, 18, 19, 21, 22, 23);
DROP TABLE moving;
