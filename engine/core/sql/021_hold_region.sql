-- 021_hold_region: a region hold costs the claim by regions, not by held notices (issue 12,
-- item 1; docs/holds.md "What it costs", docs/benchmarks.md "Region holds at 1,000,000").
--
-- Until now the claim learned a notice's region from its recipient, one primary-key probe
-- per candidate row, and a held notice stayed in the claim index (notice_claim) among the
-- others: once only held notices were left, every claim, empty, walked and probed all of
-- them (0.8 s at 92,000 held notices), at every idle poll of every lane, for as long as the
-- hold lasted; and a notice that became due behind them cost the same walk.
--
-- Now the notice carries its recipient's region, written by the load beside the rest of
-- the row (import.c), and a second partial index orders the ready notices by region
-- first. While a region hold is active the claim finds, one probe per region that has
-- ready notices (a skip scan of notice_claim_region) and one more per region not held,
-- the first due notice not held; it starts its walk of notice_claim there, or claims
-- nothing without reading a notice when there is none. The rows it walks are compared
-- with the held regions in the row: no probe. queue.c has the statement.
--
-- The region is the loaded row's (crier.recipient, never rewritten; an amend appends a
-- version and leaves the hold scope as it was), exactly as the claim read it before:
--   region NULL  not known: a notice loaded before this migration, or written by a path
--                that does not fill it. The claim probes the recipient, as it did, so a
--                notice is never let through for lack of the column.
--   ''           the recipient has no region: no region hold covers it.
--   otherwise    the recipient's region, as loaded (the claim compares it upper-cased,
--                as crier.hold_covers does).

ALTER TABLE crier.notice ADD COLUMN region text;

-- Ready notices only: the claim reads no other, and an index entry per ready notice is
-- what notice_claim already keeps. Partial, so partitions_create (014) makes it on a first
-- load's empty partition and the COPY fills it in load order, appending to each region's
-- run of keys. A first CSV load's staging table leaves it out, as notice_claim, and builds
-- it after the COPY beside the other keys (020_load.sql's notice_stage_create and
-- load_stage_indexes name it): kept row by row during that COPY it made the load ~25 %
-- slower. What it adds to a load: docs/benchmarks.md, "Region holds at 1,000,000".
CREATE INDEX notice_claim_region ON crier.notice (campaign_id, channel, region, next_attempt_at, id)
    WHERE state = 'ready';

-- The ready notices of campaigns loaded before: filled once, so that a campaign under way
-- does not fall back to the probe. Notices in other states keep NULL (the probe) should
-- they ever be ready again.
UPDATE crier.notice n SET region = coalesce(r.region, '')
FROM crier.recipient r
WHERE n.state = 'ready' AND r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq;
