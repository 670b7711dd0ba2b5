-- 025_ref_bytes: the recipients' unique ref key compares bytes, not the database's
-- collation (issue 12, item 4: `campaign load` against `psql \copy`).
--
-- Every load builds the unique (campaign_id, ref) key of the campaign's people, by a sort
-- (a first load on its staging table, 020_load.sql; ATTACH otherwise). Under the column's
-- collation that sort calls strcoll() per comparison: on a cluster created under
-- en_US.UTF-8, Debian's usual server locale, a list whose refs come in no particular order
-- took 4.6-5.5 s per 1,000,000 for this one index, against 1.4-1.8 s by bytes
-- (docs/benchmarks.md, "Seventh round" and "Eighth round"); under C.UTF-8 the two are close.
--
-- Uniqueness is the same either way: every collation PostgreSQL takes from the C library is
-- deterministic, so two refs are equal exactly when their bytes are, and text_pattern_ops'
-- operator family serves `=` (and `= ANY`), the only way crier compares a ref. Nothing
-- orders or ranges by it through this index. The columns compared with it (holds'
-- recipient_ref, the log's) keep their collation, so no comparison changes.
--
-- The key stops being a constraint: `ADD CONSTRAINT ... USING INDEX`, which 020's adopt
-- used, takes only default operator classes. A unique index on the partitioned parent
-- enforces the same thing, and ATTACH matches each partition's index to it by definition
-- (columns and operator classes), as it did the constraint. A duplicate still fails with
-- SQLSTATE 23505, which is all the loader reads of it.
--
-- Existing campaigns' keys are rebuilt by the CREATE INDEX below, one sort each (about
-- 1.5 s per million people): `crier db migrate` takes that long on a large database, holding
-- the recipients' lock meanwhile.
ALTER TABLE crier.recipient DROP CONSTRAINT recipient_campaign_id_ref_key;
CREATE UNIQUE INDEX recipient_ref ON crier.recipient (campaign_id, ref text_pattern_ops);

-- load_stage_indexes - as 020's, the ref key by its bytes.
CREATE OR REPLACE FUNCTION crier.load_stage_indexes(p_recipient_stage text, p_notice_stage text)
RETURNS TABLE (stage text, suffix text, is_unique boolean, definition text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM (VALUES (p_recipient_stage, 'ref', true, '(campaign_id, ref text_pattern_ops)')) r
    UNION ALL
    SELECT p_recipient_stage, d.suffix, false, d.definition
    FROM crier.find_index_definitions() d WHERE d.suffix = 'email'
    UNION ALL
    SELECT p_notice_stage, 'claim', false,
           substring(pg_get_indexdef('crier.notice_claim'::regclass) FROM ' USING btree (.*)$')
    UNION ALL
    SELECT p_notice_stage, 'claim_region', false,
           substring(pg_get_indexdef(x.oid) FROM ' USING btree (.*)$')
    FROM (SELECT to_regclass('crier.notice_claim_region') AS oid) x WHERE x.oid IS NOT NULL
    UNION ALL
    SELECT p_recipient_stage, d.suffix, false, d.definition
    FROM crier.find_index_definitions() d WHERE d.suffix <> 'email'
    UNION ALL
    VALUES (p_recipient_stage, 'key', true, '(campaign_id, seq)'),
           (p_notice_stage, 'key', true, '(id, campaign_id)')
$$;

-- load_stage_adopt - as 020's, but the staging table's ref index stays an index: ATTACH
-- takes it for the parent's recipient_ref. It is named as CREATE INDEX on the parent names
-- a partition's own (recipient_cN_campaign_id_ref_idx).
CREATE OR REPLACE FUNCTION crier.load_stage_adopt(p_campaign bigint, p_recipient_stage text,
                                                  p_notice_stage text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    recipient regclass := to_regclass(format('crier.%I', p_recipient_stage));
    part text := 'recipient_c' || p_campaign;
    suffix text;
BEGIN
    IF p_recipient_stage !~ ('^recipient_stage_c' || p_campaign || '_[0-9]+_[0-9]+$')
       OR recipient IS NULL OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = recipient)
       OR to_regclass(format('crier.%I', part)) IS NULL
       OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = format('crier.%I', part)::regclass) THEN
        RAISE EXCEPTION '% is not a staging table of campaign % beside its unattached partition',
                        p_recipient_stage, p_campaign USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM crier.notice_stage_adopt(p_campaign, p_notice_stage);
    EXECUTE format('ALTER TABLE crier.notice_c%s ADD CONSTRAINT %I PRIMARY KEY USING INDEX %I',
                   p_campaign, 'notice_c' || p_campaign || '_pkey', p_notice_stage || '_key');
    EXECUTE format('DROP TABLE crier.%I', part);
    EXECUTE format('ALTER TABLE crier.%I RENAME TO %I', p_recipient_stage, part);
    EXECUTE format('ALTER TABLE crier.%I ADD CONSTRAINT %I PRIMARY KEY USING INDEX %I',
                   part, part || '_pkey', p_recipient_stage || '_key');
    EXECUTE format('ALTER INDEX crier.%I RENAME TO %I', p_recipient_stage || '_ref',
                   part || '_campaign_id_ref_idx');
    FOR suffix IN SELECT d.suffix FROM crier.find_index_definitions() d
                  WHERE to_regclass(format('crier.%I', p_recipient_stage || '_' || d.suffix)) IS NOT NULL
    LOOP
        EXECUTE format('ALTER INDEX crier.%I RENAME TO %I', p_recipient_stage || '_' || suffix,
                       part || '_' || suffix);
    END LOOP;
END
$$;
