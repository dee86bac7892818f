-- Appends events to the hash-chained log inside the server, so that the
-- global event lock is held only while this function and the COMMIT sent
-- right behind it run, never across a round trip to the replica.
--
-- `rests` holds each event's JSON between its `at` and its `prev` fields
-- (`,"kind":…,"tenant":…,"data":…`), as the service serialises it;
-- `cases` the case each event is indexed under (NULL: none). Under the
-- lock this reads the head (tree 0, `event_seq` and `event_head`), gives
-- each event the next sequence number and the time (UTC, microseconds),
-- builds the exact bytes the chain hash covers, hashes them with SHA-256,
-- stores the sealed event under its big-endian sequence (tree 1) with its
-- case-index entry (tree 24), and writes the new head. The bytes are what
-- `EventRecord::seal` writes (src/store/mod.rs), so `aupd audit verify`
-- reads both alike. Returns the first sequence number given.
CREATE FUNCTION aupd_append_events(event_lock bigint, rests bytea[], cases bytea[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    seq bigint;
    first bigint;
    prev text;
    now_utc timestamp;
    frac text;
    at text;
    hashed bytea;
    hash text;
    i integer;
BEGIN
    PERFORM pg_advisory_xact_lock(event_lock);
    SELECT ('x' || encode(value, 'hex'))::bit(64)::bigint INTO seq
        FROM kv WHERE tree = 0 AND key = convert_to('event_seq', 'UTF8');
    SELECT convert_from(value, 'UTF8') INTO prev
        FROM kv WHERE tree = 0 AND key = convert_to('event_head', 'UTF8');
    seq := coalesce(seq, 0);
    prev := coalesce(prev, repeat('0', 64));
    first := seq + 1;
    now_utc := clock_timestamp() AT TIME ZONE 'UTC';
    frac := rtrim(to_char(now_utc, 'US'), '0');
    at := to_char(now_utc, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN frac = '' THEN '' ELSE '.' || frac END || 'Z';
    FOR i IN 1 .. coalesce(array_length(rests, 1), 0) LOOP
        seq := seq + 1;
        hashed := convert_to('{"seq":' || seq || ',"at":"' || at || '"', 'UTF8')
            || rests[i] || convert_to(',"prev":"' || prev || '"}', 'UTF8');
        hash := encode(sha256(hashed), 'hex');
        INSERT INTO kv (tree, key, value)
        VALUES (1, int8send(seq),
                substring(hashed FROM 1 FOR length(hashed) - 1)
                    || convert_to(',"hash":"' || hash || '"}', 'UTF8'))
        ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value;
        IF cases[i] IS NOT NULL THEN
            INSERT INTO kv (tree, key, value)
            VALUES (24, cases[i] || convert_to('/', 'UTF8') || int8send(seq), ''::bytea)
            ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value;
        END IF;
        prev := hash;
    END LOOP;
    INSERT INTO kv (tree, key, value)
    VALUES (0, convert_to('event_seq', 'UTF8'), int8send(seq)),
           (0, convert_to('event_head', 'UTF8'), convert_to(prev, 'UTF8'))
    ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value;
    RETURN first;
END;
$$;
