-- 002_holds: law-enforcement holds, and the three roles with what each may do.
--
-- A hold is a fact recorded once and never changed: placing, lifting and confirming are
-- rows in three append-only tables (the database refuses UPDATE, DELETE and TRUNCATE for
-- every role, the owner included). Whether a hold is active, lapsed or past its review
-- date is computed from those rows and the clock (crier.hold_state), never stored.
-- Notices are never rewritten by a hold: the claim (engine/core/queue.c) skips every ready
-- notice an active hold covers, so a hold on a million notices is one row. docs/holds.md
-- explains the design and its guarantee.

-- ---- roles ---------------------------------------------------------------------------
-- Roles belong to the cluster, not to one database: create them once, and tolerate the
-- migration of another database of the same cluster creating them at the same moment.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['crier_operator', 'crier_legal', 'crier_auditor'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$$;

-- ---- the dispatch log learns the 'hold' event ----------------------------------------
-- Rebuilt from the events the CHECK already allows, so that events other migrations add
-- are kept.
DO $$
DECLARE
    events text[];
BEGIN
    SELECT array_agg(DISTINCT m[1]) INTO events
    FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') m
    WHERE c.conrelid = 'crier.dispatch_log'::regclass AND c.conname = 'dispatch_log_event_check';
    ALTER TABLE crier.dispatch_log DROP CONSTRAINT dispatch_log_event_check;
    EXECUTE format('ALTER TABLE crier.dispatch_log ADD CONSTRAINT dispatch_log_event_check'
                   ' CHECK (event = ANY (%L::text[]))', array_append(events, 'hold'));
END
$$;

-- Counts the holds ever placed on the campaign; bumped by the placement's trigger, in its
-- transaction. The claim compares it with the holds its snapshot sees: a hold committed
-- while a claim waited for the campaign row makes that claim take nothing (queue.c).
ALTER TABLE crier.campaign ADD COLUMN holds_placed integer NOT NULL DEFAULT 0;

-- ---- the facts -----------------------------------------------------------------------
-- A hold: its scope (a whole campaign, a region, or one recipient), who asked and why.
CREATE TABLE crier.hold (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     bigint NOT NULL REFERENCES crier.campaign,
    region          text CHECK (region = upper(region) AND btrim(region) <> ''),
    recipient_ref   text CHECK (recipient_ref <> ''),
    CHECK (region IS NULL OR recipient_ref IS NULL), -- neither: the whole campaign
    authority       text NOT NULL CHECK (btrim(authority) <> ''), -- the agency
    official        text NOT NULL CHECK (btrim(official) <> ''),  -- who at the agency
    case_ref        text NOT NULL CHECK (btrim(case_ref) <> ''),  -- the agency's case
    form            text NOT NULL CHECK (form IN ('written', 'oral')),
    reason          text NOT NULL CHECK (btrim(reason) <> ''),
    review_by       date,
    document_name   text,           -- the file's name as given, for the reader
    document_sha256 text,           -- hex SHA-256 of document, checked here
    document        bytea,          -- the agency's request, exactly as attached
    CHECK ((document IS NULL) = (document_sha256 IS NULL)
           AND (document IS NULL) = (document_name IS NULL)),
    CHECK (document_sha256 = encode(sha256(document), 'hex')),
    placed_at       timestamptz NOT NULL DEFAULT now(),            -- stamped by hold_stamp
    placed_by       text NOT NULL DEFAULT session_user,            -- the login
    placed_role     text NOT NULL DEFAULT current_user,            -- the role it acted as
    placed_as       text CHECK (btrim(placed_as) <> '')            -- --as NAME: the person
);
CREATE INDEX hold_campaign ON crier.hold (campaign_id);

-- Every hold event is a dispatch-log row naming its hold (written by the triggers below).
-- No foreign key: its check would run on every row the claims log.
ALTER TABLE crier.dispatch_log ADD COLUMN hold_id bigint;
CREATE INDEX dispatch_log_hold ON crier.dispatch_log (hold_id) WHERE hold_id IS NOT NULL;

-- Lifting: the agency says notice will no longer impede the investigation. Once per hold.
CREATE TABLE crier.hold_lift (
    hold_id         bigint PRIMARY KEY REFERENCES crier.hold,
    evidence        text NOT NULL CHECK (btrim(evidence) <> ''),
    document_name   text,
    document_sha256 text,
    document        bytea,
    CHECK ((document IS NULL) = (document_sha256 IS NULL)
           AND (document IS NULL) = (document_name IS NULL)),
    CHECK (document_sha256 = encode(sha256(document), 'hex')),
    lifted_at       timestamptz NOT NULL DEFAULT now(),
    lifted_by       text NOT NULL DEFAULT session_user,
    lifted_role     text NOT NULL DEFAULT current_user,
    lifted_as       text CHECK (btrim(lifted_as) <> ''),
    released        bigint NOT NULL DEFAULT 0 -- notices it released, counted by hold_released
);

-- An oral hold confirmed in writing (within its 30 days). Once per hold.
CREATE TABLE crier.hold_confirm (
    hold_id         bigint PRIMARY KEY REFERENCES crier.hold,
    document_name   text NOT NULL,
    document_sha256 text NOT NULL,
    document        bytea NOT NULL,
    CHECK (document_sha256 = encode(sha256(document), 'hex')),
    confirmed_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_by    text NOT NULL DEFAULT session_user,
    confirmed_role  text NOT NULL DEFAULT current_user,
    confirmed_as    text CHECK (btrim(confirmed_as) <> '')
);

-- ---- what the facts mean now ---------------------------------------------------------
-- hold_covers - does a hold's scope include a recipient? (inlined by the planner)
CREATE FUNCTION crier.hold_covers(hold_region text, hold_ref text, region text, ref text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (hold_region IS NULL AND hold_ref IS NULL) OR hold_region = upper(region)
           OR hold_ref = ref
$$;

-- hold_state - every hold as it stands at this moment. An oral hold lapses 720 hours
-- (30 days) after it was placed unless confirmed in writing or lifted first;
-- release_lapsed is the configuration's holds.oral_lapse = release, which makes a lapsed
-- hold inactive. past_review: not lifted, and its review date has passed (UTC).
CREATE FUNCTION crier.hold_state(release_lapsed boolean)
RETURNS TABLE (id bigint, campaign_id bigint, region text, recipient_ref text, form text,
               placed_at timestamptz, review_by date, lifted_at timestamptz,
               confirmed_at timestamptz, lapses_at timestamptz, lapsed boolean,
               past_review boolean, active boolean)
LANGUAGE sql STABLE AS $$
    SELECT h.id, h.campaign_id, h.region, h.recipient_ref, h.form, h.placed_at, h.review_by,
           l.lifted_at, c.confirmed_at, s.lapses_at, s.lapsed,
           l.hold_id IS NULL AND h.review_by < (now() AT TIME ZONE 'UTC')::date,
           l.hold_id IS NULL AND NOT (release_lapsed AND s.lapsed)
    FROM crier.hold h
    LEFT JOIN crier.hold_lift l ON l.hold_id = h.id
    LEFT JOIN crier.hold_confirm c ON c.hold_id = h.id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN h.form = 'oral' AND c.hold_id IS NULL
                    THEN h.placed_at + interval '720 hours' END AS lapses_at,
               h.form = 'oral' AND c.hold_id IS NULL
                    AND coalesce(l.lifted_at, now()) >= h.placed_at + interval '720 hours'
                    AS lapsed) s
$$;

-- notice_held - is this recipient's notice covered by an active hold right now?
CREATE FUNCTION crier.notice_held(p_campaign bigint, p_seq integer, release_lapsed boolean)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM crier.recipient r, crier.hold_state(release_lapsed) h
        WHERE r.campaign_id = p_campaign AND r.seq = p_seq AND h.campaign_id = p_campaign
          AND h.active AND crier.hold_covers(h.region, h.recipient_ref, r.region, r.ref))
$$;

-- For auditors: each notice each hold covered, and from when to when it could have held
-- it (from the later of the placement and the notice's load, to the lift; NULL while not
-- lifted). Which notices went out delayed is in the dispatch log: their claim row says
-- "delayed for law enforcement (hold N)".
CREATE VIEW crier.hold_coverage AS
    SELECT h.id AS hold_id, h.campaign_id, n.id AS notice_id, r.ref AS recipient_ref,
           r.region, greatest(h.placed_at, ll.loaded_at) AS held_from, l.lifted_at AS held_until
    FROM crier.hold h
    JOIN crier.recipient r ON r.campaign_id = h.campaign_id
         AND crier.hold_covers(h.region, h.recipient_ref, r.region, r.ref)
    JOIN crier.notice n ON n.campaign_id = r.campaign_id AND n.recipient_seq = r.seq
    JOIN crier.list_load ll ON ll.id = r.load_id
    LEFT JOIN crier.hold_lift l ON l.hold_id = h.id
    WHERE l.lifted_at IS NULL OR l.lifted_at > ll.loaded_at;

-- ---- the database keeps the record honest --------------------------------------------

-- Append-only, for every role: the owner and superusers meet this trigger too.
CREATE FUNCTION crier.hold_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: a hold is never changed or removed; lift it with '
                    '"crier hold lift"', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Who and when are the session's, not the caller's to choose.
CREATE FUNCTION crier.hold_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'hold' THEN
        NEW.placed_at := now();
        NEW.placed_by := session_user;
        NEW.placed_role := current_user;
    ELSIF TG_TABLE_NAME = 'hold_lift' THEN
        NEW.lifted_at := now();
        NEW.lifted_by := session_user;
        NEW.lifted_role := current_user;
    ELSE
        NEW.confirmed_at := now();
        NEW.confirmed_by := session_user;
        NEW.confirmed_role := current_user;
    END IF;
    RETURN NEW;
END
$$;

-- hold_scope_text - "the whole campaign", "region CA", "recipient R00000017".
CREATE FUNCTION crier.hold_scope_text(region text, recipient_ref text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN region IS NOT NULL THEN 'region ' || region
                WHEN recipient_ref IS NOT NULL THEN 'recipient ' || recipient_ref
                ELSE 'the whole campaign' END
$$;

-- A placement serializes with the claims of its campaign, then logs itself and every
-- notice in its scope that was already handed to a channel. SECURITY DEFINER: legal may
-- not update campaigns or write the dispatch log itself; this trigger does it for them.
CREATE FUNCTION crier.hold_placed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    in_flight bigint;
BEGIN
    -- Every claim and record holds the advisory lock (740119, campaign) shared while it
    -- runs (queue.c: CAMPAIGN_LOCK_CLASS). Taking it exclusively waits for the ones under
    -- way and queues the later ones behind this transaction: row locks alone let the
    -- lanes' overlapping FOR SHARE locks starve this placement.
    PERFORM pg_advisory_xact_lock(740119, NEW.campaign_id::integer);
    -- Then the campaign row, which claims also hold FOR SHARE: a claim whose snapshot
    -- predates this commit gets the row back updated, and claims nothing (queue.c).
    UPDATE crier.campaign SET holds_placed = holds_placed + 1 WHERE id = NEW.campaign_id;
    -- New statements, new snapshot: every claim committed before the lock is visible,
    -- and no other can commit on this campaign until this transaction ends.
    -- (from the few notices in flight to their recipients, one probe each: OFFSET 0 keeps
    -- the planner from hashing a million recipients to find a region's)
    SELECT count(*) INTO in_flight
    FROM crier.notice n, LATERAL (SELECT r.ref, r.region FROM crier.recipient r
                                 WHERE r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
                                 OFFSET 0) r
    WHERE n.campaign_id = NEW.campaign_id AND n.state = 'sending'
      AND crier.hold_covers(NEW.region, NEW.recipient_ref, r.region, r.ref);
    INSERT INTO crier.dispatch_log (campaign_id, event, hold_id, actor, detail, reason)
    VALUES (NEW.campaign_id, 'hold', NEW.id, session_user,
            format('hold %s placed on %s by %s%s: %s form, %s, %s, case %s%s%s; %s notices in '
                   'scope were already handed to a channel', NEW.id,
                   crier.hold_scope_text(NEW.region, NEW.recipient_ref), session_user,
                   coalesce(' as ' || NEW.placed_as, ''), NEW.form, NEW.authority, NEW.official,
                   NEW.case_ref, coalesce(', review by ' || NEW.review_by, ''),
                   coalesce(', document sha256 ' || NEW.document_sha256, ''), in_flight),
            NEW.reason);
    INSERT INTO crier.dispatch_log (campaign_id, event, hold_id, notice_id, recipient_ref,
                                    channel, from_state, attempt, actor, detail)
    SELECT n.campaign_id, 'hold', NEW.id, n.id, r.ref, n.channel, 'sending', n.attempt, session_user,
           format('in flight when hold %s was placed: handed to the channel (lease %s) before '
                  'the hold took effect', NEW.id, n.lease_owner)
    FROM crier.notice n, LATERAL (SELECT r.ref, r.region FROM crier.recipient r
                                 WHERE r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
                                 OFFSET 0) r
    WHERE n.campaign_id = NEW.campaign_id AND n.state = 'sending'
      AND crier.hold_covers(NEW.region, NEW.recipient_ref, r.region, r.ref)
    ORDER BY n.id;
    RETURN NULL;
END
$$;

-- A lift counts the notices it releases: in its scope, ready, and covered by no other
-- active hold. The setting crier.oral_lapse, which crier sets from holds.oral_lapse,
-- decides whether lapsed oral holds still count as active.
CREATE FUNCTION crier.hold_released() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    h crier.hold;
    release_lapsed boolean := coalesce(current_setting('crier.oral_lapse', true), '') = 'release';
BEGIN
    SELECT * INTO h FROM crier.hold WHERE id = NEW.hold_id;
    IF h.region IS NULL AND h.recipient_ref IS NULL AND NOT EXISTS (
           SELECT 1 FROM crier.hold_state(release_lapsed) o
           WHERE o.campaign_id = h.campaign_id AND o.id <> h.id AND o.active) THEN
        -- the only hold, on the whole campaign: every ready notice, without the recipients
        SELECT count(*) INTO NEW.released FROM crier.notice
        WHERE campaign_id = h.campaign_id AND state = 'ready';
        RETURN NEW;
    END IF;
    WITH others AS MATERIALIZED (   -- the campaign's other active holds, read once
        SELECT o.region, o.recipient_ref FROM crier.hold_state(release_lapsed) o
        WHERE o.campaign_id = h.campaign_id AND o.id <> h.id AND o.active)
    SELECT count(*) INTO NEW.released
    FROM crier.notice n JOIN crier.recipient r
         ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
    WHERE n.campaign_id = h.campaign_id AND n.state = 'ready'
      AND crier.hold_covers(h.region, h.recipient_ref, r.region, r.ref)
      AND NOT EXISTS (SELECT 1 FROM others o
                      WHERE crier.hold_covers(o.region, o.recipient_ref, r.region, r.ref));
    RETURN NEW;
END
$$;

CREATE FUNCTION crier.hold_lifted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h crier.hold;
BEGIN
    SELECT * INTO h FROM crier.hold WHERE id = NEW.hold_id;
    INSERT INTO crier.dispatch_log (campaign_id, event, hold_id, actor, detail, reason)
    VALUES (h.campaign_id, 'hold', h.id, session_user,
            format('hold %s on %s lifted by %s%s after %s%s; %s notices released', h.id,
                   crier.hold_scope_text(h.region, h.recipient_ref), session_user,
                   coalesce(' as ' || NEW.lifted_as, ''),
                   date_trunc('second', NEW.lifted_at - h.placed_at),
                   coalesce(', document sha256 ' || NEW.document_sha256, ''), NEW.released),
            NEW.evidence);
    RETURN NULL;
END
$$;

-- Only an oral hold, not lifted, within its 30 days, can be confirmed in writing; a
-- lapsed one is replaced by a new written hold (docs/holds.md).
CREATE FUNCTION crier.hold_confirmable() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF now() >= h.placed_at + interval '720 hours' THEN
        RAISE EXCEPTION 'hold % lapsed at % (30 days after it was placed orally): place a new '
                        'written hold and lift this one', h.id, h.placed_at + interval '720 hours'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION crier.hold_confirmed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h crier.hold;
BEGIN
    SELECT * INTO h FROM crier.hold WHERE id = NEW.hold_id;
    INSERT INTO crier.dispatch_log (campaign_id, event, hold_id, actor, detail)
    VALUES (h.campaign_id, 'hold', h.id, session_user,
            format('hold %s on %s confirmed in writing by %s%s: document sha256 %s', h.id,
                   crier.hold_scope_text(h.region, h.recipient_ref), session_user,
                   coalesce(' as ' || NEW.confirmed_as, ''), NEW.document_sha256));
    RETURN NULL;
END
$$;

CREATE TRIGGER hold_stamp BEFORE INSERT ON crier.hold
    FOR EACH ROW EXECUTE FUNCTION crier.hold_stamp();
CREATE TRIGGER hold_stamp BEFORE INSERT ON crier.hold_lift
    FOR EACH ROW EXECUTE FUNCTION crier.hold_stamp();
CREATE TRIGGER hold_stamp BEFORE INSERT ON crier.hold_confirm
    FOR EACH ROW EXECUTE FUNCTION crier.hold_stamp();
CREATE TRIGGER hold_released BEFORE INSERT ON crier.hold_lift
    FOR EACH ROW EXECUTE FUNCTION crier.hold_released();
CREATE TRIGGER hold_confirmable BEFORE INSERT ON crier.hold_confirm
    FOR EACH ROW EXECUTE FUNCTION crier.hold_confirmable();
CREATE TRIGGER hold_log AFTER INSERT ON crier.hold
    FOR EACH ROW EXECUTE FUNCTION crier.hold_placed();
CREATE TRIGGER hold_log AFTER INSERT ON crier.hold_lift
    FOR EACH ROW EXECUTE FUNCTION crier.hold_lifted();
CREATE TRIGGER hold_log AFTER INSERT ON crier.hold_confirm
    FOR EACH ROW EXECUTE FUNCTION crier.hold_confirmed();
-- Statement triggers: they fire even when no row matches, and for TRUNCATE ... CASCADE.
CREATE TRIGGER hold_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.hold
    FOR EACH STATEMENT EXECUTE FUNCTION crier.hold_append_only();
CREATE TRIGGER hold_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.hold_lift
    FOR EACH STATEMENT EXECUTE FUNCTION crier.hold_append_only();
CREATE TRIGGER hold_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.hold_confirm
    FOR EACH STATEMENT EXECUTE FUNCTION crier.hold_append_only();

-- ---- who may do what -----------------------------------------------------------------
-- crier_operator runs campaigns: it claims, sends and records, and reads the holds the
-- claim obeys, but cannot write one. crier_legal places, lifts and confirms holds, and
-- reads what it needs to (the triggers above write the log for it). crier_auditor reads.
-- The first load of a campaign creates and attaches its partitions, which PostgreSQL
-- allows only to the owner of crier.notice and crier.recipient (docs/holds.md).
GRANT USAGE ON SCHEMA crier TO crier_operator, crier_legal, crier_auditor;
GRANT SELECT ON crier.schema_migration TO crier_operator, crier_legal, crier_auditor;
GRANT SELECT, INSERT, UPDATE ON crier.campaign, crier.list_load, crier.recipient, crier.notice,
    crier.worker TO crier_operator;
GRANT DELETE ON crier.worker TO crier_operator;
GRANT SELECT, INSERT ON crier.dispatch_log TO crier_operator;
GRANT SELECT ON crier.hold, crier.hold_lift, crier.hold_confirm, crier.hold_coverage
    TO crier_operator;
GRANT SELECT ON crier.campaign, crier.list_load, crier.recipient, crier.notice, crier.worker,
    crier.dispatch_log, crier.hold, crier.hold_lift, crier.hold_confirm, crier.hold_coverage
    TO crier_legal;
GRANT INSERT ON crier.hold, crier.hold_lift, crier.hold_confirm TO crier_legal;
GRANT SELECT ON crier.campaign, crier.list_load, crier.recipient, crier.notice, crier.worker,
    crier.dispatch_log, crier.hold, crier.hold_lift, crier.hold_confirm, crier.hold_coverage
    TO crier_auditor;
