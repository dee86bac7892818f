-- Claims rows for a replica to act on (see `Store::claim_raw` in
-- src/store/mod.rs): the first `lim` rows of tree `t` with
-- `lo <= key < hi`, in key order, whose claim lock no one else holds, and
-- which still exist once locked (another claim may have removed a row
-- between the scan and the lock). A claim lock is an advisory lock taken
-- only by claims, in namespace `ns`, and held to the end of the
-- transaction; commits never take one, so they never wait for a claim.
-- The scan is a cursor, so it reads only as far as it needs to.
CREATE FUNCTION aupd_claim(t smallint, lo bytea, hi bytea, lim integer, ns integer)
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
        SELECT kv.key FROM kv WHERE kv.tree = t AND kv.key >= lo AND kv.key < hi ORDER BY kv.key
    LOOP
        IF pg_try_advisory_xact_lock(ns, hashtext(encode(candidate, 'hex'))) THEN
            RETURN QUERY SELECT kv.key, kv.value FROM kv WHERE kv.tree = t AND kv.key = candidate;
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
