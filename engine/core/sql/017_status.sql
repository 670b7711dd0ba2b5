-- 017_status: status's progress (rate, per-day counts) without reading the campaign's log
-- (issue 12).
--
-- `crier status NAME --json` is what monitoring polls. Its progress read the dispatch log:
-- the per-day counts every row of the campaign's log (two rows a notice, so two million on
-- a campaign of a million), and the rate the newest 2,000 finished attempts, which on
-- statistics taken before the campaign grew the planner did as a bitmap pass over the whole
-- campaign and a sort. On a running campaign of 1,000,000 that took seconds, beside the
-- lanes writing the same index pages.
--
-- progress_tally counts what status reports, as the log is written: per campaign and UTC
-- minute, the notices that finished (sent: handed over; undeliverable) and the finished
-- attempts (the rate's). A statement trigger adds one delta row per (campaign, minute) a
-- statement wrote, as notice_tally does (006_scale.sql), so concurrent lanes never update
-- one row; notice_tally_fold, which the workers run, folds these too. Status then sums a
-- few dozen rows however large the campaign.

CREATE TABLE crier.progress_tally (
    campaign_id   bigint NOT NULL,
    minute        timestamptz NOT NULL, -- date_trunc('minute') in UTC; a day's start once folded
    sent          bigint NOT NULL,      -- finished other than undeliverable
    undeliverable bigint NOT NULL,
    attempts      bigint NOT NULL,      -- attempts that left 'sending' other than to 'ready'
    first_at      timestamptz           -- the first of those attempts (the rate's span)
);
CREATE INDEX progress_tally_campaign ON crier.progress_tally (campaign_id, minute);

-- What finished, as status.c's per-day counts and rate define it: an attempt that left
-- 'sending' other than back to 'ready', or a notice found undeliverable without one.
CREATE FUNCTION crier.progress_tally_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO crier.progress_tally (campaign_id, minute, sent, undeliverable, attempts, first_at)
    SELECT campaign_id, date_trunc('minute', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
           count(*) FILTER (WHERE to_state <> 'undeliverable'),
           count(*) FILTER (WHERE to_state = 'undeliverable'),
           count(*) FILTER (WHERE from_state = 'sending' AND to_state <> 'ready'),
           min(at) FILTER (WHERE from_state = 'sending' AND to_state <> 'ready')
    FROM new_rows
    WHERE event = 'transition'
      AND (from_state = 'sending' AND to_state <> 'ready' OR to_state = 'undeliverable')
    GROUP BY 1, 2;
    RETURN NULL;
END
$$;

CREATE TRIGGER progress_tally_insert AFTER INSERT ON crier.dispatch_log
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION crier.progress_tally_count();

-- the log written before this migration, once
INSERT INTO crier.progress_tally (campaign_id, minute, sent, undeliverable, attempts, first_at)
SELECT campaign_id, date_trunc('minute', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       count(*) FILTER (WHERE to_state <> 'undeliverable'),
       count(*) FILTER (WHERE to_state = 'undeliverable'),
       count(*) FILTER (WHERE from_state = 'sending' AND to_state <> 'ready'),
       min(at) FILTER (WHERE from_state = 'sending' AND to_state <> 'ready')
FROM crier.dispatch_log
WHERE event = 'transition'
  AND (from_state = 'sending' AND to_state <> 'ready' OR to_state = 'undeliverable')
GROUP BY 1, 2;

-- notice_tally_fold folds the campaign's progress deltas too: one row per minute of the
-- last hour (the rate reads the last 15), one per UTC day before that (the per-day counts
-- need no finer), so a campaign keeps at most about 60 rows plus one a day. Safe beside
-- writers and other folds for the reason the notice tallies' part is.
CREATE OR REPLACE FUNCTION crier.notice_tally_fold(p_campaign bigint) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (DELETE FROM crier.notice_tally WHERE campaign_id = p_campaign RETURNING *),
    kept AS (INSERT INTO crier.notice_tally (campaign_id, channel, state, n)
             SELECT campaign_id, channel, state, sum(n) FROM gone
             GROUP BY 1, 2, 3 HAVING sum(n) <> 0 RETURNING 1),
    progress AS (DELETE FROM crier.progress_tally WHERE campaign_id = p_campaign RETURNING *),
    progress_kept AS (
        INSERT INTO crier.progress_tally (campaign_id, minute, sent, undeliverable, attempts,
                                          first_at)
        SELECT campaign_id, CASE WHEN minute < now() - interval '1 hour'
                            THEN date_trunc('day', minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                            ELSE minute END,
               sum(sent), sum(undeliverable), sum(attempts), min(first_at)
        FROM progress GROUP BY 1, 2 RETURNING 1)
    SELECT count(*) FROM gone
$$;

REVOKE ALL ON crier.progress_tally FROM PUBLIC;
GRANT SELECT ON crier.progress_tally TO crier_operator, crier_legal, crier_auditor;
REVOKE ALL ON FUNCTION crier.progress_tally_count() FROM PUBLIC;
