-- 023_lane_batch: a print batch's per-letter state outlives the lane's connection (issue 16;
-- docs/architecture.md, "When PostgreSQL goes away").
--
-- A batch claimed in slices (a print batch of up to tens of thousands of letters) keeps a
-- line per letter on the server: its places in the claim's and the print order, its
-- numbers as claimed, its address columns and sort key, and what the channel said of it
-- (queue.c). Until now that was the session's temporary table, so a connection lost
-- mid-batch took the batch with it: the lane could not record it, its leases expired, the
-- reaper retried every letter and the batch's files were orphaned. Now the lines are
-- rows of a table of their own, keyed by the batch, and a lane that reconnects finds them
-- and records the batch as it would have.
--
-- Logged, not UNLOGGED: an unlogged table is emptied by crash recovery and is empty on a
-- promoted standby, so an immediate restart or a failover (docs/scaling.md) would still
-- cost the batch. The lines are written once per letter and updated twice (sort key and
-- place, what the channel said), which fillfactor 50 keeps on their page (HOT).
--
-- lane_batch is the batch: its lane (the lease owner) and how long its lines are kept.
-- The lane pushes kept_until forward with its leases; the record deletes the batch and
-- its lines in the transaction that records it, so lines exist exactly while a batch is
-- claimed and not recorded. The lease reaper deletes a batch (and its lines) whose
-- kept_until has passed, some time after its leases expired: what a lane killed with
-- kill -9, or stopped at an outage longer than that, left behind (queue_sweep).

CREATE TABLE crier.lane_batch (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner       text NOT NULL,        -- the lane, as its leases name it (host:pid:channel:lane)
    campaign_id bigint NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    kept_until  timestamptz NOT NULL  -- the reaper deletes the batch after this
);

CREATE TABLE crier.lane_batch_line (
    batch_id           bigint NOT NULL,   -- crier.lane_batch (no key: written by the claim)
    claim_pos          integer NOT NULL,  -- the place in the claim's order, from 0
    order_pos          integer,           -- the place in the channel's order, from 0
    id                 bigint NOT NULL,   -- the notice
    attempt            integer NOT NULL,
    channel_attempt    integer NOT NULL,
    channel_index      integer NOT NULL,
    channel_started_at double precision NOT NULL,
    version            integer NOT NULL,  -- the contacts' version claimed
    delayed            boolean NOT NULL,
    mailable           boolean,
    address1           text,
    city               text,
    postal_code        text,
    country            text,
    sort_key           bytea,             -- the channel's, CHANNEL_SORT_KEY bytes
    item               text,              -- what the channel said of the letter (queue_keep)
    PRIMARY KEY (batch_id, claim_pos)
) WITH (fillfactor = 50);
-- not unique: a numbering run again after a lost connection must not trip over the last
CREATE INDEX lane_batch_line_order ON crier.lane_batch_line (batch_id, order_pos);

GRANT SELECT, INSERT, UPDATE, DELETE ON crier.lane_batch, crier.lane_batch_line TO crier_operator;

-- lane_batch_analyze - fresh statistics of the lines, taken by a lane right after its claim
-- (queue.c), before any statement reads them. Without, the planner sized a new batch by
-- what the last ANALYZE saw, often none (every line of the last batch deleted): it then
-- took one row for 50,000 and ordered the batch in a nested loop that read every line per
-- line, minutes for a 50,000-letter batch. Only a table's owner may ANALYZE it: this lends
-- that one step to crier_operator, as 005_roles.sql lends the partitions'.
CREATE FUNCTION crier.lane_batch_analyze() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    ANALYZE crier.lane_batch_line;
END $$;
REVOKE ALL ON FUNCTION crier.lane_batch_analyze() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.lane_batch_analyze() TO crier_operator;
