-- 022_region_index_lazy: the claim's region index only for campaigns under a region hold
-- (issue 12, item 4: `campaign load` against `psql \copy`).
--
-- 021_hold_region.sql put notice_claim_region on the partitioned parent crier.notice, so
-- every campaign's first load built it over every notice: on a quiet machine ~1.8 s of a
-- 1,000,000-row load, +49 % until the commit (docs/benchmarks.md, "The stop's final main").
-- The claim reads it only while a region hold is active on the campaign (queue.c, the skip
-- scan over the regions), and most campaigns never have one.
--
-- It becomes partition-local, as 019 made the find indexes: the parent loses it (and with
-- it every partition's copy), and a campaign's notice partition gets its own,
-- crier.notice_cN_claim_region, with the same definition, when the campaign has a region
-- hold not lifted:
--   - placing a region hold builds it once the hold is in effect (hold.c, its own
--     transaction after the placement's commit: the lanes' claims and records, which
--     write the partition, wait for the build);
--   - a load builds it after its commit when the campaign already has one (a hold placed
--     before the campaign's first load);
--     a later load into a partition that has it keeps it row by row, as any index;
--   - `crier db migrate` builds what an interrupted placement or load left missing, and
--     this migration builds it for every campaign upgraded under such a hold.
-- The claim checks that the index exists (to_regclass of its name) before it takes the
-- skip scan; without it, it walks notice_claim from the lane's cursor and compares each
-- row's region with the held ones, as it did before 021 but without a probe of the
-- recipient: correct, and slower by the held notices it steps over.
--
-- 020's staged load keeps asking for the parent's index (load_stage_indexes): it finds
-- none from here on and builds three keys and notice_claim.

DROP INDEX crier.notice_claim_region;

-- claim_region_index - the name of a campaign's region index (queue.c writes the same).
CREATE FUNCTION crier.claim_region_index(p_campaign bigint) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'notice_c' || p_campaign || '_claim_region'
$$;

-- claim_region_missing - the campaigns (one, or NULL: all) with a region hold not lifted
-- whose attached notice partition lacks its region index. A hold that lapsed unlifted
-- (an oral one, holds.oral_lapse) still counts: an index too many costs the claim nothing.
CREATE FUNCTION crier.claim_region_missing(p_campaign bigint) RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT DISTINCT h.campaign_id FROM crier.hold h
    WHERE h.region IS NOT NULL AND (p_campaign IS NULL OR h.campaign_id = p_campaign)
      AND NOT EXISTS (SELECT 1 FROM crier.hold_lift l WHERE l.hold_id = h.id)
      AND EXISTS (SELECT 1 FROM pg_inherits
                  WHERE inhrelid = to_regclass(format('crier.notice_c%s', h.campaign_id))
                    AND inhparent = 'crier.notice'::regclass)
      AND to_regclass('crier.' || crier.claim_region_index(h.campaign_id)) IS NULL
    ORDER BY 1
$$;

-- claim_region_build - build a campaign's region index if claim_region_missing names it;
-- whether it did. 021's definition. The advisory lock on the name lets a placement, a
-- load and `db migrate` ask at once: the second waits, then finds it made. Run in a
-- transaction of its own: CREATE INDEX holds the partition against the lanes' writes
-- until the commit, and a transaction holding the claims' advisory lock (740119) as well
-- could deadlock with a lane that planned its statement (locking the partition) before
-- taking that lock. Runs as the schema owner, who owns the partition.
CREATE FUNCTION crier.claim_region_build(p_campaign bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET maintenance_work_mem = '256MB' AS $$
DECLARE
    name text := crier.claim_region_index(p_campaign);
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('crier.claim_region ' || name)::bigint);
    IF NOT EXISTS (SELECT 1 FROM crier.claim_region_missing(p_campaign)) THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE INDEX %I ON crier.%I (campaign_id, channel, region, next_attempt_at, id)'
                   ' WHERE state = ''ready''', name, 'notice_c' || p_campaign);
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION crier.claim_region_missing(bigint), crier.claim_region_build(bigint)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.claim_region_missing(bigint)
    TO crier_operator, crier_legal, crier_auditor;
GRANT EXECUTE ON FUNCTION crier.claim_region_build(bigint) TO crier_operator, crier_legal;

-- Campaigns under a region hold now: their index at once, so that an upgrade does not
-- send their claims back to the walk.
SELECT count(crier.claim_region_build(m)) FROM crier.claim_region_missing(NULL) m;
