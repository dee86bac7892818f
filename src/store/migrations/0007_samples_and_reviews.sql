-- Samples, their findings, the hourly prevalence tallies, reviewers'
-- labels and each tenant's review state leave the `kv` table for tables
-- of their own, as the aggregates of migrations 3 to 5 did (see
-- src/store/pg_tables.rs). Samples, findings and tallies keep sled's key
-- as `key bytea` (a tenant, `/`, then a binary UUID or a big-endian hour),
-- so a tenant's rows stay one range of the primary key; labels and review
-- states are keyed by text. Only primary keys are indexed: samples and
-- findings are written on the intake path, and every index would lengthen
-- it.
CREATE TABLE samples (
    key bytea PRIMARY KEY,
    tenant text COLLATE "C",
    sample uuid,
    origin text,
    source uuid,
    status text,
    fetched_at timestamptz,
    content_hash text,
    policy_version text,
    scores jsonb,
    record bytea NOT NULL
);

CREATE TABLE findings (
    key bytea PRIMARY KEY,
    tenant text COLLATE "C",
    category text,
    sample uuid,
    severity text,
    score real,
    policy_version text,
    found_at timestamptz,
    record bytea NOT NULL
);

CREATE TABLE tallies (
    key bytea PRIMARY KEY,
    tenant text COLLATE "C",
    hour bigint,
    sampled bigint,
    flagged jsonb,
    record bytea NOT NULL
);

CREATE TABLE labels (
    id text COLLATE "C" PRIMARY KEY,
    tenant text COLLATE "C",
    sample uuid,
    category text,
    reviewer text,
    answer text,
    origin text,
    at timestamptz,
    record bytea NOT NULL
);

-- `seed` is a u64: numeric, since it may not fit a bigint.
CREATE TABLE review_states (
    id text COLLATE "C" PRIMARY KEY,
    seed numeric,
    record bytea NOT NULL
);

-- Rows written by earlier builds move over. Tree ids (`tree_id` in
-- src/store/pg_store.rs): 5 samples, 7 findings, 8 tallies, 27 labels,
-- 28 review_state.
CREATE TEMPORARY TABLE moving AS
SELECT tree, key, value, convert_from(value, 'UTF8')::jsonb -> 'r' AS r
FROM kv WHERE tree IN (5, 7, 8, 27, 28);

INSERT INTO samples (key, tenant, sample, origin, source, status, fetched_at, content_hash,
                     policy_version, scores, record)
SELECT key, r ->> 'tenant', (r ->> 'id')::uuid, r -> 'origin' ->> 'type',
       (r -> 'origin' ->> 'source')::uuid, r ->> 'status', (r ->> 'fetched_at')::timestamptz,
       r ->> 'content_hash', r -> 'verdict' ->> 'policy_version', r -> 'verdict' -> 'scores',
       value
FROM moving WHERE tree = 5;

INSERT INTO findings (key, tenant, category, sample, severity, score, policy_version, found_at,
                      record)
SELECT key, r ->> 'tenant', r ->> 'category', (r ->> 'sample')::uuid, r ->> 'severity',
       (r ->> 'score')::real, r ->> 'policy_version', (r ->> 'found_at')::timestamptz, value
FROM moving WHERE tree = 7;

INSERT INTO tallies (key, tenant, hour, sampled, flagged, record)
SELECT key, r ->> 'tenant', (r ->> 'hour')::bigint, (r ->> 'sampled')::bigint, r -> 'flagged',
       value
FROM moving WHERE tree = 8;

INSERT INTO labels (id, tenant, sample, category, reviewer, answer, origin, at, record)
SELECT convert_from(key, 'UTF8'), r ->> 'tenant', (r ->> 'sample')::uuid, r ->> 'category',
       r ->> 'reviewer', r ->> 'answer', r ->> 'origin', (r ->> 'at')::timestamptz, value
FROM moving WHERE tree = 27;

INSERT INTO review_states (id, seed, record)
SELECT convert_from(key, 'UTF8'), (r ->> 'seed')::numeric, value
FROM moving WHERE tree = 28;

DELETE FROM kv WHERE tree IN (5, 7, 8, 27, 28);
DROP TABLE moving;
