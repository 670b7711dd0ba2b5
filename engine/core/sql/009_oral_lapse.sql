-- 009_oral_lapse: an unconfirmed oral hold lapses after 30 days only where that rule
-- applies (issue 14). The lapse is HIPAA's (45 CFR 164.412(b)); no state law has it. Until
-- now crier.hold_state() lapsed every oral hold in every campaign, so `hold list/check` and
-- `status` flagged, and `holds.oral_lapse: release` released, an oral hold that the law of
-- the campaign does not limit. The report already decided per campaign; now the engine
-- decides the same way, from the same facts:
--   - the campaign's meta declares HIPAA among its `frameworks` (a string such as
--     "HIPAA, GLBA", or a JSON array; case-insensitive), or
--   - the session setting crier.oral_lapse_where is 'everywhere'. crier sets it on every
--     connection from the configuration's report.oral_lapse (engine/lib/db.c), the one key
--     that also decides it for `crier audit report`. Unset (psql, another client) means
--     HIPAA campaigns only.
-- docs/holds.md explains it.

-- oral_lapse_applies - does the 30-day oral-hold lapse apply to a campaign with this meta?
-- One expression without a subquery, so that the planner inlines it into hold_state: two
-- regular expressions per hold row, on the campaign's meta, and nothing per notice. In a
-- list, an element matches when it is the string HIPAA (any case, blanks around it): the
-- pattern runs over the list's JSON text, where a quote inside an element is escaped.
CREATE FUNCTION crier.oral_lapse_applies(meta jsonb)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('crier.oral_lapse_where', true), '') = 'everywhere'
        OR CASE jsonb_typeof(meta -> 'frameworks')
           WHEN 'string' THEN upper(meta ->> 'frameworks') ~ '(^|[\s,])HIPAA($|[\s,])'
           WHEN 'array' THEN upper((meta -> 'frameworks')::text) ~ '[\[,]\s*"\s*HIPAA\s*"\s*[,\]]'
           ELSE false END
$$;

-- hold_state - as in 002, but lapses_at and lapsed are computed only where the lapse
-- applies (one primary-key probe of the hold's campaign per hold; nothing per notice).
-- Elsewhere an oral hold has no lapse date and never lapses: it holds until lifted.
CREATE OR REPLACE FUNCTION crier.hold_state(release_lapsed boolean)
RETURNS TABLE (id bigint, campaign_id bigint, region text, recipient_ref text, form text,
               placed_at timestamptz, review_by date, lifted_at timestamptz,
               confirmed_at timestamptz, lapses_at timestamptz, lapsed boolean,
               past_review boolean, active boolean)
LANGUAGE sql STABLE AS $$
    SELECT h.id, h.campaign_id, h.region, h.recipient_ref, h.form, h.placed_at, h.review_by,
           l.lifted_at, c.confirmed_at, s.lapses_at, s.lapses_at IS NOT NULL
               AND coalesce(l.lifted_at, now()) >= s.lapses_at,
           l.hold_id IS NULL AND h.review_by < (now() AT TIME ZONE 'UTC')::date,
           l.hold_id IS NULL AND NOT (release_lapsed AND s.lapses_at IS NOT NULL
                                      AND coalesce(l.lifted_at, now()) >= s.lapses_at)
    FROM crier.hold h
    JOIN crier.campaign k ON k.id = h.campaign_id
    LEFT JOIN crier.hold_lift l ON l.hold_id = h.id
    LEFT JOIN crier.hold_confirm c ON c.hold_id = h.id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN h.form = 'oral' AND c.hold_id IS NULL
                         AND crier.oral_lapse_applies(k.meta)
                    THEN h.placed_at + interval '720 hours' END AS lapses_at) s
$$;

-- A confirmation is refused after the lapse only where the lapse applies; elsewhere an
-- oral hold can be confirmed in writing at any time before it is lifted.
CREATE OR REPLACE FUNCTION crier.hold_confirmable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    h crier.hold;
BEGIN
    SELECT * INTO h FROM crier.hold WHERE id = NEW.hold_id;
    IF h.form <> 'oral' THEN
        RAISE EXCEPTION 'hold % was placed in writing: there is nothing to confirm', h.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM crier.hold_lift WHERE hold_id = h.id) THEN
        RAISE EXCEPTION 'hold % was lifted: there is nothing to confirm', h.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF now() >= h.placed_at + interval '720 hours'
       AND crier.oral_lapse_applies((SELECT meta FROM crier.campaign WHERE id = h.campaign_id))
    THEN
        RAISE EXCEPTION 'hold % lapsed at % (30 days after it was placed orally): place a new '
                        'written hold and lift this one', h.id, h.placed_at + interval '720 hours'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
