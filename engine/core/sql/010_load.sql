-- 010_load: a campaign's first load builds fewer indexes after its COPY (issue 12).
--
-- ATTACH PARTITION builds every index of the parent that the partition lacks, each with a
-- scan of the partition. Three of notice's indexes are partial on states that no freshly
-- loaded notice is in (a load writes only 'ready' and 'undeliverable'): notice_lease,
-- notice_parked and notice_submitted (001_init.sql, 006_scale.sql). Built after the COPY,
-- each was a full scan of a million notices to index none of them, about a fifth of the
-- attach. Created on the empty partition instead, they cost the COPY one predicate test
-- per row, and ATTACH adopts them as they are.
--
-- The definitions are taken from the parent's own indexes (pg_get_indexdef), so they
-- cannot drift from them; an index that ATTACH would not adopt is built by ATTACH as
-- before. Indexes that loaded rows do enter (the keys, notice_claim) stay bulk builds:
-- measured row by row during the COPY they cost more than a sorted build after it.

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
               WHERE i.indrelid = 'crier.notice'::regclass
                 AND c.relname IN ('notice_lease', 'notice_parked', 'notice_submitted')
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
