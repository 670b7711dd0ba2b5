-- 006_scale: a campaign's cost stays linear in its size (docs/benchmarks.md, "Scale").
--
-- Three statements read rows in proportion to a campaign's size or progress, on paths
-- that run all the time: `crier status` counted every notice (1 s at 1,000,000), the
-- worker's completion check walked the queue from its first, long-finished notice to
-- find one still open, and the audit report and export scanned the whole dispatch log
-- for one campaign's rows. What follows gives each a structure of its own size.

-- ---- notice tallies ----------------------------------------------------------------------
-- How many of a campaign's notices are in each (channel, state), kept as signed deltas:
-- every statement that changes notices appends one row per (campaign, channel, state) it
-- moved, and readers sum them. Appending, not updating a counter row, so that lanes and
-- processes claiming side by side never wait on one hot row. crier run folds a running
-- campaign's deltas into one row per (channel, state) as it goes (notice_tally_fold), so
-- a reader sums a few dozen rows whatever the campaign's size.
--
-- Exact by construction: the triggers see every row every statement changes, whoever
-- wrote it. Only the schema owner writes the table (the functions are SECURITY DEFINER),
-- so a role that may update notices cannot make the tallies disagree with them. The
-- tallies serve status and monitoring; nothing that decides a notice's fate reads them
-- (the completion check below counts the notices themselves).
CREATE TABLE crier.notice_tally (
    campaign_id bigint NOT NULL,
    channel     text NOT NULL,
    state       text NOT NULL,
    n           bigint NOT NULL
);
CREATE INDEX notice_tally_campaign ON crier.notice_tally (campaign_id);

-- One function for the three events: a statement's rows before (old_rows: UPDATE, DELETE)
-- and after (new_rows: INSERT, UPDATE), netted per (campaign, channel, state).
CREATE FUNCTION crier.notice_tally_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO crier.notice_tally (campaign_id, channel, state, n)
        SELECT campaign_id, channel, state, count(*) FROM new_rows GROUP BY 1, 2, 3;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO crier.notice_tally (campaign_id, channel, state, n)
        SELECT campaign_id, channel, state, -count(*) FROM old_rows GROUP BY 1, 2, 3;
    ELSE
        INSERT INTO crier.notice_tally (campaign_id, channel, state, n)
        SELECT campaign_id, channel, state, sum(d) FROM (
            SELECT campaign_id, channel, state, -1 AS d FROM old_rows
            UNION ALL
            SELECT campaign_id, channel, state, 1 FROM new_rows) moved
        GROUP BY 1, 2, 3 HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END
$$;

-- Statement triggers on a partitioned table fire for statements that name it; every
-- UPDATE of notices does. A load COPYs into the campaign's partition by name (import.c),
-- which fires none of them: the load recounts its campaign instead (notice_tally_recount).
CREATE TRIGGER notice_tally_insert AFTER INSERT ON crier.notice
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION crier.notice_tally_count();
CREATE TRIGGER notice_tally_update AFTER UPDATE ON crier.notice
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION crier.notice_tally_count();
CREATE TRIGGER notice_tally_delete AFTER DELETE ON crier.notice
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION crier.notice_tally_count();

-- notice_tally_recount - a campaign's tallies counted from its notices, in place of what
-- they were: what a load calls once its rows are in (a trigger on the partition would copy
-- every loaded row into a transition table; this reads them once, while they are still in
-- the cache). Safe beside claims: the deltas of statements this one's snapshot cannot see
-- are not deleted and add to the count afterwards, as they should. Callable by operators:
-- it can only make the tallies agree with the notices.
CREATE FUNCTION crier.notice_tally_recount(p_campaign bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (DELETE FROM crier.notice_tally WHERE campaign_id = p_campaign)
    INSERT INTO crier.notice_tally (campaign_id, channel, state, n)
    SELECT campaign_id, channel, state, count(*) FROM crier.notice
    WHERE campaign_id = p_campaign GROUP BY 1, 2, 3
$$;

SELECT crier.notice_tally_recount(id) FROM crier.campaign;

-- notice_tally_fold - one row per (channel, state) of a campaign instead of its deltas.
-- Safe beside writers and other folds: it deletes only committed rows it sees, and sums
-- only what it deleted (a row another fold took first is skipped, not counted twice).
CREATE FUNCTION crier.notice_tally_fold(p_campaign bigint) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (DELETE FROM crier.notice_tally WHERE campaign_id = p_campaign RETURNING *),
    kept AS (INSERT INTO crier.notice_tally (campaign_id, channel, state, n)
             SELECT campaign_id, channel, state, sum(n) FROM gone
             GROUP BY 1, 2, 3 HAVING sum(n) <> 0 RETURNING 1)
    SELECT count(*) FROM gone
$$;

REVOKE ALL ON crier.notice_tally FROM PUBLIC;
GRANT SELECT ON crier.notice_tally TO crier_operator, crier_legal, crier_auditor;
REVOKE ALL ON FUNCTION crier.notice_tally_count(), crier.notice_tally_fold(bigint),
    crier.notice_tally_recount(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.notice_tally_fold(bigint), crier.notice_tally_recount(bigint)
    TO crier_operator;

-- ---- the completion check --------------------------------------------------------------
-- A campaign is complete when none of its notices is open. ready and sending have their
-- partial indexes (notice_claim, notice_lease); this one covers the other open states, so
-- that each test is an index probe instead of a scan past every finished notice.
CREATE INDEX notice_parked ON crier.notice (campaign_id) WHERE state IN ('held', 'submitted', 'batched');

-- The fax poller's due notices, across campaigns, oldest due first (poll.c); without it
-- each poll round read every notice of every campaign to find the submitted ones.
CREATE INDEX notice_submitted ON crier.notice (channel, next_attempt_at, id)
    WHERE state = 'submitted';

-- ---- the dispatch log by campaign ---------------------------------------------------------
-- audit report, export, log and verify read one campaign's rows in id order: this index
-- makes that cost the campaign's rows, not the whole log's. It is appended to at its right
-- edge within each campaign, which a running campaign's inserts keep hot in memory.
CREATE INDEX dispatch_log_campaign ON crier.dispatch_log (campaign_id, id);
