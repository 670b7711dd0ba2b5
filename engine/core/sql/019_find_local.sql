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
--
-- The same migration adds the staging tables that let a first load COPY its notices on a
-- second connection beside its recipients (the end of this file).

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

-- ---- the notices' COPY beside the recipients' (a first load) --------------------------------
-- One connection carries one COPY at a time, so a load spooled its notice rows to a file
-- and sent them once the recipients' COPY had ended. A second connection can COPY them
-- while the recipients stream, but it cannot write into the load's uncommitted partition:
-- it fills a staging table of its own, in its own transaction (so with FREEZE), commits
-- it, and the load's transaction makes it the campaign's notice partition before the
-- attach. Should the load fail after that commit, the staging table is left over, in no
-- campaign; the next load of the campaign drops it (notice_stage_sweep).

-- notice_stage_create - on the second connection: crier.notice_stage_cID_PID_PASS shaped
-- as the campaign's notice partition, with the partial indexes partitions_create makes.
-- A pass of its own in the name: a load's second pass (duplicate refs) makes another
-- while its transaction has dropped, uncommitted, the first pass's.
CREATE FUNCTION crier.notice_stage_create(p_campaign bigint, p_pass integer) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stage text := format('notice_stage_c%s_%s_%s', p_campaign, pg_backend_pid(), p_pass);
    def text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crier.campaign WHERE id = p_campaign) THEN
        RAISE EXCEPTION 'campaign % does not exist', p_campaign USING ERRCODE = 'no_data_found';
    END IF;
    EXECUTE format('CREATE TABLE crier.%I (LIKE crier.notice INCLUDING DEFAULTS'
                   ' INCLUDING CONSTRAINTS, CHECK (campaign_id = %s))', stage, p_campaign);
    FOR def IN SELECT substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$')
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = 'crier.notice'::regclass AND i.indpred IS NOT NULL
                 AND c.relname <> 'notice_claim'
    LOOP
        EXECUTE format('CREATE INDEX ON crier.%I %s', stage, def);
    END LOOP;
    EXECUTE format('GRANT SELECT, INSERT ON crier.%I TO crier_operator', stage);
    RETURN stage;
END
$$;

-- notice_stage_sweep - staging tables of the campaign that no load is filling: the
-- caller holds the campaign row locked (a load), so none of them is another load's.
CREATE FUNCTION crier.notice_stage_sweep(p_campaign bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stage text;
    n integer := 0;
BEGIN
    FOR stage IN SELECT c.relname FROM pg_class c
                 WHERE c.relnamespace = 'crier'::regnamespace AND c.relkind = 'r'
                   AND c.relname ~ ('^notice_stage_c' || p_campaign || '_[0-9]+_[0-9]+$')
    LOOP
        EXECUTE format('DROP TABLE crier.%I', stage);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- notice_stage_adopt - in the load's transaction: the campaign's empty, unattached notice
-- partition (partitions_create) is replaced by the filled staging table, which the attach
-- then attaches. Both must be what crier made: a staging table of this campaign, and an
-- unattached partition without rows.
CREATE FUNCTION crier.notice_stage_adopt(p_campaign bigint, p_stage text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    part regclass := to_regclass(format('crier.notice_c%s', p_campaign));
    stage regclass := to_regclass(format('crier.%I', p_stage));
BEGIN
    IF p_stage !~ ('^notice_stage_c' || p_campaign || '_[0-9]+_[0-9]+$') OR stage IS NULL
       OR part IS NULL OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid IN (part, stage)) THEN
        RAISE EXCEPTION '% is not a staging table of campaign % beside its unattached partition',
                        p_stage, p_campaign USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('DROP TABLE crier.notice_c%s', p_campaign);
    EXECUTE format('ALTER TABLE crier.%I RENAME TO %I', p_stage, 'notice_c' || p_campaign);
END
$$;

REVOKE ALL ON FUNCTION crier.notice_stage_create(bigint, integer),
    crier.notice_stage_sweep(bigint), crier.notice_stage_adopt(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.notice_stage_create(bigint, integer),
    crier.notice_stage_sweep(bigint),
    crier.notice_stage_adopt(bigint, text) TO crier_operator;
