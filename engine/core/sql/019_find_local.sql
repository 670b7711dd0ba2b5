-- 019_find_local: the `audit find` indexes of crier.recipient built after a load commits
-- (issue 12, item 4: `campaign load` against `psql \copy`).
--
-- 011_unreached.sql and 018_find_name.sql put five indexes on the partitioned parent
-- crier.recipient (email, fax, postal code, lower(name), lower(last word of the name)). A
-- campaign's first load builds every index of the parent when it attaches the campaign's
-- partition, inside the load's one transaction: those five were about half of the load's
-- index building (docs/benchmarks.md, "Load"), and the campaign's rows stayed invisible
-- until the last of them was done.
--
-- They become partition-local: the parent loses them, and each attached partition
-- crier.recipient_cN gets recipient_cN_email, _fax, _postal, _name and _last_name, with the
-- same definitions. `crier campaign load` commits the campaign's rows all or nothing as
-- before, then builds the partition's missing ones before it returns (find_index.c). Should
-- it die between the two, `crier db migrate` and the next `campaign load` build what is
-- missing (crier.find_index_missing), and `crier status` says so meanwhile. `audit find`
-- and the console's person search stay correct without them: the planner reads that one
-- campaign's partition instead of probing an index.
--
-- crier.recipient_version is not partitioned and no load writes it: its find indexes stay.

-- find_index_definitions - the five, as "suffix", "the part of CREATE INDEX from the column
-- list on". engine/cmd/unreached.c's conditions are written against these expressions.
CREATE FUNCTION crier.find_index_definitions()
RETURNS TABLE (suffix text, definition text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    VALUES ('email', '(email) WHERE email IS NOT NULL'),
           ('fax', '(fax) WHERE fax IS NOT NULL'),
           ('postal', '(postal_code text_pattern_ops) WHERE postal_code IS NOT NULL'),
           ('name', '(lower(name) text_pattern_ops)'),
           ('last_name', '(lower(split_part(name, '' '', -1)) text_pattern_ops)')
$$;

-- find_index_lock - the advisory lock key of building one find index.
CREATE FUNCTION crier.find_index_lock(p_index text) RETURNS bigint
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT hashtext('crier.find_index ' || p_index)::bigint
$$;

-- find_index_missing - the find indexes that attached recipient partitions lack, of one
-- campaign or (NULL) of all, and whether a session is building each right now (holds
-- find_index_build's advisory lock on it). Only the catalog and the lock table are read:
-- cheap enough for `crier status`.
CREATE FUNCTION crier.find_index_missing(p_campaign bigint)
RETURNS TABLE (campaign_id bigint, index_name text, building boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.campaign_id, m.index_name,
           EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                     AND l.classid::bigint = ((crier.find_index_lock(m.index_name) >> 32) & 4294967295)
                     AND l.objid::bigint = (crier.find_index_lock(m.index_name) & 4294967295))
    FROM (SELECT substring(c.relname FROM '^recipient_c([0-9]+)$')::bigint AS campaign_id,
                 c.relname || '_' || d.suffix AS index_name
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          CROSS JOIN crier.find_index_definitions() d
          WHERE i.inhparent = 'crier.recipient'::regclass
            AND c.relname ~ '^recipient_c[0-9]+$'
            AND (p_campaign IS NULL OR c.relname = 'recipient_c' || p_campaign)
            AND to_regclass('crier.' || c.relname || '_' || d.suffix) IS NULL) m
    ORDER BY 1, 2
$$;

-- find_index_build - build one find index of a campaign's attached partition, named by
-- find_index_missing, unless it exists. Returns whether it built it. The advisory lock
-- (on the index's name) lets two sessions ask for the same index at once (a load and
-- `db migrate`): the second waits and then finds it made, instead of failing on the
-- catalog's unique name. Runs as the schema owner, who owns the partition.
CREATE FUNCTION crier.find_index_build(p_campaign bigint, p_index text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET maintenance_work_mem = '256MB' AS $$
DECLARE
    part text := 'recipient_c' || p_campaign;
    def text;
BEGIN
    SELECT d.definition INTO def FROM crier.find_index_definitions() d
    WHERE part || '_' || d.suffix = p_index;
    IF def IS NULL OR NOT EXISTS (SELECT 1 FROM pg_inherits
                                  WHERE inhrelid = to_regclass('crier.' || part)
                                    AND inhparent = 'crier.recipient'::regclass) THEN
        RAISE EXCEPTION '% is not a find index of an attached partition', p_index
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(crier.find_index_lock(p_index));
    IF to_regclass('crier.' || p_index) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE INDEX %I ON crier.%I %s', p_index, part, def);
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION crier.find_index_missing(bigint), crier.find_index_build(bigint, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.find_index_missing(bigint)
    TO crier_operator, crier_legal, crier_auditor;
GRANT EXECUTE ON FUNCTION crier.find_index_build(bigint, text) TO crier_operator;

-- The parent's indexes go, and with them every partition's copy; each attached partition
-- gets its own at once, so an upgraded database finds people as fast as before.
DROP INDEX crier.recipient_email, crier.recipient_fax, crier.recipient_postal,
    crier.recipient_name, crier.recipient_last_name;
SELECT count(crier.find_index_build(m.campaign_id, m.index_name))
FROM crier.find_index_missing(NULL) m;
