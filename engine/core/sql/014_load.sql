-- 014_load: a campaign's first load scans its fresh notice partition fewer times (issue 12).
--
-- 010_load.sql creates three partial indexes (notice_lease, notice_parked,
-- notice_submitted) on the empty partition, so that ATTACH adopts them instead of scanning
-- a million notices to index none of them. Two later partial indexes had the same shape
-- and were still built by ATTACH: notice_poll (003_fax.sql, state 'submitted', which no
-- load writes) and notice_unreached (011_unreached.sql, state 'undeliverable': the few
-- notices a load finds no channel for). Each was a full scan of the partition, and the
-- unreached one a sort, for a handful of entries at most.
--
-- The rule is now "every partial index of crier.notice except notice_claim": the claim's
-- index is the one a load fills (every 'ready' notice), and it stays a sorted bulk build.
-- A partial index that a later migration adds is covered without a change here; an index
-- without a predicate is still built by ATTACH. Only the function changes: campaigns
-- already loaded keep the partitions and indexes they have.

CREATE OR REPLACE FUNCTION crier.partitions_create(p_campaign bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def text;
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
    -- "CREATE INDEX name ON ONLY crier.notice USING btree (...) WHERE (...)": the part
    -- from USING on, for the partition
    FOR def IN SELECT substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$')
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = 'crier.notice'::regclass AND i.indpred IS NOT NULL
                 AND c.relname <> 'notice_claim'
    LOOP
        EXECUTE format('CREATE INDEX ON crier.notice_c%s %s', p_campaign, def);
    END LOOP;
    -- the COPYs write the partitions by name; once attached, every other access goes
    -- through the parents and their grants
    EXECUTE format('GRANT SELECT, INSERT ON crier.recipient_c%1$s, crier.notice_c%1$s'
                   ' TO crier_operator', p_campaign);
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION crier.partitions_create(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.partitions_create(bigint) TO crier_operator;
