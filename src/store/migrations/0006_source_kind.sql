-- Migration 4 read a source's kind from `kind.kind`, but the kind's fields
-- are flattened into the source record: its name is the record's `kind`.
-- The column is filled again from the record (the service has written it
-- right since this migration).
UPDATE sources SET kind = convert_from(record, 'UTF8')::jsonb -> 'r' ->> 'kind';
