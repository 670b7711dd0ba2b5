-- 020_load: each campaign's set of jurisdictions, kept as its people are loaded
-- and amended (issue 12: `campaign start` at 10,000,000 people).
--
-- `campaign start` checks the templates against the content rules of every jurisdiction
-- the campaign's people live in (content.c). It found them with a SELECT DISTINCT over every
-- recipient row: 12.6 s at 10,000,000 under load, and growing with the campaign. The
-- loader sees every row it writes anyway, so it keeps the few distinct (country, region)
-- pairs in memory and adds their jurisdictions here in the load's own transaction (all or
-- nothing with the rows); start reads a few rows.
--
-- A jurisdiction is what content.c always asked for: a US region, or a territory given as
-- the country (PR, GU, VI), for rows whose region is given. `campaign amend` writes new
-- versions of a person (crier.recipient_version), never the loaded row; the trigger below
-- adds the jurisdiction of each new version too, so a person corrected into another state
-- is checked under that state's rules as well as the one loaded. The set only grows: a
-- jurisdiction that no current version names any more is still checked (stricter, never
-- looser, and a set that shrank would need a scan of the campaign to know).

-- jurisdiction_of - the jurisdiction of a stored (country, region), or NULL for none.
CREATE FUNCTION crier.jurisdiction_of(p_country text, p_region text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN p_region IS NULL THEN NULL
                WHEN upper(btrim(p_country)) IN ('PR', 'GU', 'VI') THEN upper(btrim(p_country))
                WHEN upper(btrim(p_country)) = 'US' THEN upper(btrim(p_region)) END
$$;

CREATE TABLE crier.campaign_jurisdiction (
    campaign_id  bigint NOT NULL REFERENCES crier.campaign,
    jurisdiction text NOT NULL,
    PRIMARY KEY (campaign_id, jurisdiction)
);

-- campaign_jurisdiction_add - the jurisdictions of these (country, region) pairs, as the
-- loader saw them in its rows (the same strings it COPYed), added to the campaign's set.
CREATE FUNCTION crier.campaign_jurisdiction_add(p_campaign bigint, p_country text[],
                                                p_region text[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO crier.campaign_jurisdiction (campaign_id, jurisdiction)
    SELECT DISTINCT p_campaign, j FROM (
        SELECT crier.jurisdiction_of(c, r) AS j FROM unnest(p_country, p_region) AS t(c, r)) s
    WHERE j IS NOT NULL
    ON CONFLICT DO NOTHING
$$;

-- campaign_jurisdiction_scan - the same from one load's stored rows: for a list with more
-- distinct pairs than the loader keeps in memory (free text in the region column).
CREATE FUNCTION crier.campaign_jurisdiction_scan(p_campaign bigint, p_load bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO crier.campaign_jurisdiction (campaign_id, jurisdiction)
    SELECT DISTINCT p_campaign, j FROM (
        SELECT crier.jurisdiction_of(country, region) AS j FROM crier.recipient
        WHERE campaign_id = p_campaign AND load_id = p_load) s
    WHERE j IS NOT NULL
    ON CONFLICT DO NOTHING
$$;

-- An amended person's new versions add their jurisdictions (one statement per batch of
-- amend's corrections, so a statement trigger over the new rows).
CREATE FUNCTION crier.recipient_version_jurisdiction() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO crier.campaign_jurisdiction (campaign_id, jurisdiction)
    SELECT DISTINCT campaign_id, j FROM (
        SELECT campaign_id, crier.jurisdiction_of(country, region) AS j FROM added) s
    WHERE j IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER recipient_version_jurisdiction AFTER INSERT ON crier.recipient_version
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION crier.recipient_version_jurisdiction();

-- Campaigns loaded before this migration: their set from what is stored, once.
INSERT INTO crier.campaign_jurisdiction (campaign_id, jurisdiction)
SELECT DISTINCT campaign_id, j FROM (
    SELECT campaign_id, crier.jurisdiction_of(country, region) AS j FROM crier.recipient
    UNION ALL
    SELECT campaign_id, crier.jurisdiction_of(country, region) FROM crier.recipient_version) s
WHERE j IS NOT NULL;

REVOKE ALL ON crier.campaign_jurisdiction FROM PUBLIC;
GRANT SELECT ON crier.campaign_jurisdiction TO crier_operator, crier_legal, crier_auditor;
REVOKE ALL ON FUNCTION crier.campaign_jurisdiction_add(bigint, text[], text[]),
    crier.campaign_jurisdiction_scan(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.campaign_jurisdiction_add(bigint, text[], text[]),
    crier.campaign_jurisdiction_scan(bigint, bigint) TO crier_operator;

-- ---- a first load's recipients staged too, and every index built before the attach ----------
-- 019 staged a first load's notices on a second connection. The recipients' COPY stayed in
-- the load's transaction, so the partition's indexes could only be built there, one after
-- the other by ATTACH. Now a first load of a CSV file COPYs its recipients into a staging
-- table too (FREEZE, on a third connection), commits both, and builds the indexes the
-- commit needs on the two staging connections side by side: the recipients' key and
-- unique ref, the notices' key and claim index (load_stage_indexes also lists the five
-- find indexes, for a benchmark build that makes them here: import.c, LOAD_STAGE_FIND).
-- The load's transaction then adopts both tables (load_stage_adopt): the keys become the
-- constraints the parents' keys expect, so ATTACH takes the indexes as they are instead
-- of building its own. A duplicate ref
-- fails the unique build on a staging connection; the load lists the duplicates from the
-- committed staging table and loads again (import.c). All or nothing still: until the
-- load commits, a staging table is in no campaign, and the campaign's next load drops it.

-- recipient_stage_create - crier.recipient_stage_cID_LOAD_PASS, shaped as the campaign's
-- recipient partition. The load's list_load id in the name: never reused, so a new
-- staging table never waits on the name of a leftover that the load's own transaction
-- has dropped and not yet committed.
CREATE FUNCTION crier.recipient_stage_create(p_campaign bigint, p_load bigint, p_pass integer)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stage text := format('recipient_stage_c%s_%s_%s', p_campaign, p_load, p_pass);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crier.campaign WHERE id = p_campaign) THEN
        RAISE EXCEPTION 'campaign % does not exist', p_campaign USING ERRCODE = 'no_data_found';
    END IF;
    EXECUTE format('CREATE TABLE crier.%I (LIKE crier.recipient INCLUDING DEFAULTS'
                   ' INCLUDING CONSTRAINTS, CHECK (campaign_id = %s))', stage, p_campaign);
    EXECUTE format('GRANT SELECT, INSERT ON crier.%I TO crier_operator', stage);
    RETURN stage;
END
$$;

-- notice_stage_create, by the load's list_load id rather than the staging connection's
-- backend PID: a PID comes back, and a new staging table named as a leftover that the
-- load's own transaction has just dropped (uncommitted, notice_stage_sweep) would wait for
-- that transaction, which waits for it. The older form stays, for the PID.
CREATE FUNCTION crier.notice_stage_create(p_campaign bigint, p_load bigint, p_pass integer)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stage text := format('notice_stage_c%s_%s_%s', p_campaign, p_load, p_pass);
    def text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crier.campaign WHERE id = p_campaign) THEN
        RAISE EXCEPTION 'campaign % does not exist', p_campaign USING ERRCODE = 'no_data_found';
    END IF;
    EXECUTE format('CREATE TABLE crier.%I (LIKE crier.notice INCLUDING DEFAULTS'
                   ' INCLUDING CONSTRAINTS, CHECK (campaign_id = %s))', stage, p_campaign);
    -- the claim indexes are built after the COPY (load_stage_indexes), by a sort
    FOR def IN SELECT substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$')
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = 'crier.notice'::regclass AND i.indpred IS NOT NULL
                 AND c.relname NOT IN ('notice_claim', 'notice_claim_region')
    LOOP
        EXECUTE format('CREATE INDEX ON crier.%I %s', stage, def);
    END LOOP;
    EXECUTE format('GRANT SELECT, INSERT ON crier.%I TO crier_operator', stage);
    RETURN stage;
END
$$;

CREATE OR REPLACE FUNCTION crier.notice_stage_create(p_campaign bigint, p_pass integer)
RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT crier.notice_stage_create(p_campaign, pg_backend_pid()::bigint, p_pass)
$$;

-- load_stage_indexes - what load_stage_index builds on a staging table, largest first (the
-- two connections take them in this order): (table, suffix, unique, the part of CREATE
-- INDEX from the column list on). The keys are the parents' constraints; the claim indexes
-- are notice_claim's and (from 021_hold_region.sql on) notice_claim_region's own
-- definitions: a sort after the COPY costs less than keeping them row by row during it.
CREATE FUNCTION crier.load_stage_indexes(p_recipient_stage text, p_notice_stage text)
RETURNS TABLE (stage text, suffix text, is_unique boolean, definition text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM (VALUES (p_recipient_stage, 'ref', true, '(campaign_id, ref)')) r
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

-- load_stage_index - build one of them on a committed, unattached staging table of a load,
-- named <stage>_<suffix>. Runs as the schema owner, who owns the table.
CREATE FUNCTION crier.load_stage_index(p_stage text, p_suffix text, p_unique boolean,
                                       p_definition text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET maintenance_work_mem = '256MB' AS $$
BEGIN
    IF p_stage !~ '^(recipient|notice)_stage_c[0-9]+_[0-9]+_[0-9]+$'
       OR to_regclass(format('crier.%I', p_stage)) IS NULL
       OR NOT EXISTS (SELECT 1 FROM crier.load_stage_indexes(
                          regexp_replace(p_stage, '^notice', 'recipient'),
                          regexp_replace(p_stage, '^recipient', 'notice')) i
                      WHERE i.stage = p_stage AND i.suffix = p_suffix
                        AND i.is_unique = p_unique AND i.definition = p_definition) THEN
        RAISE EXCEPTION '% % is not an index of a load''s staging table', p_stage, p_suffix
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('CREATE %s INDEX %I ON crier.%I %s', CASE WHEN p_unique THEN 'UNIQUE' END,
                   p_stage || '_' || p_suffix, p_stage, p_definition);
END
$$;

-- notice_stage_sweep, again: the campaign's staging tables of both kinds.
CREATE OR REPLACE FUNCTION crier.notice_stage_sweep(p_campaign bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stage text;
    n integer := 0;
BEGIN
    FOR stage IN SELECT c.relname FROM pg_class c
                 WHERE c.relnamespace = 'crier'::regnamespace AND c.relkind = 'r'
                   AND c.relname ~ ('^(notice|recipient)_stage_c' || p_campaign || '_[0-9]+_[0-9]+$')
    LOOP
        EXECUTE format('DROP TABLE crier.%I', stage);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- load_stage_adopt - in the load's transaction: both staging tables, indexed, replace the
-- campaign's empty unattached partitions. The keys' unique indexes become the constraints
-- ATTACH looks for (named as ATTACH names its own), the find indexes take the names
-- find_index_missing looks for; the claim index is attached under its staging name.
CREATE FUNCTION crier.load_stage_adopt(p_campaign bigint, p_recipient_stage text,
                                       p_notice_stage text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    recipient regclass := to_regclass(format('crier.%I', p_recipient_stage));
    suffix text;
BEGIN
    IF p_recipient_stage !~ ('^recipient_stage_c' || p_campaign || '_[0-9]+_[0-9]+$')
       OR recipient IS NULL OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = recipient)
       OR to_regclass(format('crier.recipient_c%s', p_campaign)) IS NULL
       OR EXISTS (SELECT 1 FROM pg_inherits
                  WHERE inhrelid = format('crier.recipient_c%s', p_campaign)::regclass) THEN
        RAISE EXCEPTION '% is not a staging table of campaign % beside its unattached partition',
                        p_recipient_stage, p_campaign USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM crier.notice_stage_adopt(p_campaign, p_notice_stage);
    EXECUTE format('ALTER TABLE crier.notice_c%s ADD CONSTRAINT %I PRIMARY KEY USING INDEX %I',
                   p_campaign, 'notice_c' || p_campaign || '_pkey', p_notice_stage || '_key');
    EXECUTE format('DROP TABLE crier.recipient_c%s', p_campaign);
    EXECUTE format('ALTER TABLE crier.%I RENAME TO %I', p_recipient_stage,
                   'recipient_c' || p_campaign);
    EXECUTE format('ALTER TABLE crier.recipient_c%s ADD CONSTRAINT %I PRIMARY KEY USING INDEX %I',
                   p_campaign, 'recipient_c' || p_campaign || '_pkey', p_recipient_stage || '_key');
    EXECUTE format('ALTER TABLE crier.recipient_c%s ADD CONSTRAINT %I UNIQUE USING INDEX %I',
                   p_campaign, 'recipient_c' || p_campaign || '_campaign_id_ref_key',
                   p_recipient_stage || '_ref');
    FOR suffix IN SELECT d.suffix FROM crier.find_index_definitions() d
                  WHERE to_regclass(format('crier.%I', p_recipient_stage || '_' || d.suffix)) IS NOT NULL
    LOOP
        EXECUTE format('ALTER INDEX crier.%I RENAME TO %I', p_recipient_stage || '_' || suffix,
                       'recipient_c' || p_campaign || '_' || suffix);
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION crier.notice_stage_create(bigint, bigint, integer),
    crier.recipient_stage_create(bigint, bigint, integer),
    crier.load_stage_indexes(text, text), crier.load_stage_index(text, text, boolean, text),
    crier.load_stage_adopt(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.notice_stage_create(bigint, bigint, integer),
    crier.recipient_stage_create(bigint, bigint, integer),
    crier.load_stage_indexes(text, text), crier.load_stage_index(text, text, boolean, text),
    crier.load_stage_adopt(bigint, text, text) TO crier_operator;
