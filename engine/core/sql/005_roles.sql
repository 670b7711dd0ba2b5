-- 005_roles: crier_operator runs a campaign from start to end without the schema owner,
-- and may change no more of a campaign than running it needs (docs/security.md).
--
-- Until now a campaign's first load had to run as the owner of crier.notice and
-- crier.recipient: it creates the campaign's two partitions and attaches them, and
-- PostgreSQL lets only the owner of a partitioned table attach a partition. An operator
-- therefore needed the owner's login for every new incident, which defeats the roles.
-- Two SECURITY DEFINER functions now do exactly those two steps for a member of
-- crier_operator (engine/core/import.c calls them); nothing else of the owner's is lent.

-- partitions_create - the campaign's unattached partitions, owned by the schema owner,
-- which the loader fills with COPY; false when they exist already (a later load).
CREATE FUNCTION crier.partitions_create(p_campaign bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crier.campaign WHERE id = p_campaign) THEN
        RAISE EXCEPTION 'campaign % does not exist', p_campaign USING ERRCODE = 'no_data_found';
    END IF;
    IF to_regclass(format('crier.notice_c%s', p_campaign)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- the CHECK lets ATTACH skip its validation scan
    EXECUTE format('CREATE TABLE crier.recipient_c%1$s (LIKE crier.recipient INCLUDING DEFAULTS'
                   ' INCLUDING CONSTRAINTS, CHECK (campaign_id = %1$s))', p_campaign);
    EXECUTE format('CREATE TABLE crier.notice_c%1$s (LIKE crier.notice INCLUDING DEFAULTS'
                   ' INCLUDING CONSTRAINTS, CHECK (campaign_id = %1$s))', p_campaign);
    -- the COPYs write the partitions by name; once attached, every other access goes
    -- through the parents and their grants
    EXECUTE format('GRANT SELECT, INSERT ON crier.recipient_c%1$s, crier.notice_c%1$s'
                   ' TO crier_operator', p_campaign);
    RETURN true;
END
$$;

-- partitions_attach - attach what partitions_create made, in the loader's transaction.
-- Only a partition the owner created for this campaign and not yet attached: the
-- function attaches nothing an operator made.
CREATE FUNCTION crier.partitions_attach(p_campaign bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parent text;
    part regclass;
BEGIN
    FOREACH parent IN ARRAY ARRAY['recipient', 'notice'] LOOP
        part := to_regclass(format('crier.%s_c%s', parent, p_campaign));
        IF part IS NULL OR (SELECT relowner FROM pg_class WHERE oid = part)
                           <> (SELECT relowner FROM pg_class WHERE oid = format('crier.%s', parent)::regclass)
           OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = part) THEN
            RAISE EXCEPTION 'crier.%_c% is not an unattached partition made by crier.partitions_create',
                            parent, p_campaign USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('ALTER TABLE crier.%1$s ATTACH PARTITION crier.%1$s_c%2$s FOR VALUES IN (%2$s)',
                       parent, p_campaign);
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION crier.partitions_create(bigint), crier.partitions_attach(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.partitions_create(bigint), crier.partitions_attach(bigint)
    TO crier_operator;

-- What running a campaign changes of it: its state and when it started and finished.
-- Not its name, incident, policy, templates or metadata once created, not who created it,
-- and not holds_placed, which only a hold's placement counts (002_holds.sql).
-- (SELECT ... FOR SHARE/UPDATE needs UPDATE on one column: these suffice.)
REVOKE UPDATE ON crier.campaign FROM crier_operator;
GRANT UPDATE (state, started_at, finished_at) ON crier.campaign TO crier_operator;

-- The recipients are a snapshot, never changed after the load (001_init.sql): nothing
-- crier does updates them.
REVOKE UPDATE ON crier.recipient FROM crier_operator;
