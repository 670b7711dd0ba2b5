-- 013_substitute: substitute notice (crier substitute, docs/unreached.md).
--
-- When a jurisdiction's rules say the people cannot all be reached at reasonable cost or
-- by their contacts, the law asks for substitute notice: a website posting, notice in the
-- state's media, and email to every address known. crier records what was done here.
--
-- substitute_record: what was done and when, one row per act (the files written, the
-- posting, each media notice, the email queued). Each row has its dispatch-log row in the
-- same transaction (event 'substitute'), so the sealed log covers it; this table holds the
-- same facts with their types, for the report. Rows are only ever added.
CREATE TABLE crier.substitute_record (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    campaign_id  bigint NOT NULL REFERENCES crier.campaign (id),
    kind         text NOT NULL CHECK (kind IN ('written', 'posted', 'media', 'queued')),
    jurisdiction text,            -- media: the state it was for; NULL: the whole campaign
    url          text,            -- posted
    outlet       text,            -- media
    from_date    date,            -- posted: first day; media: the day it ran
    until_date   date,            -- posted: last day
    detail       text NOT NULL,   -- as in the dispatch log
    actor        text NOT NULL DEFAULT session_user,
    CHECK (kind <> 'posted' OR (url IS NOT NULL AND from_date IS NOT NULL
                                AND until_date IS NOT NULL AND until_date >= from_date)),
    CHECK (kind <> 'media' OR (outlet IS NOT NULL AND from_date IS NOT NULL
                               AND jurisdiction IS NOT NULL))
);
CREATE INDEX substitute_record_campaign ON crier.substitute_record (campaign_id);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.substitute_record
    FOR EACH STATEMENT EXECUTE FUNCTION crier.append_only();

-- substitute_email: the substitute email is its own notice kind, sent as a campaign of its
-- own (policy email, the substitute template set) through the ordinary claim and record
-- path. One per campaign: the primary key is what makes `substitute write` queue it once,
-- however often it is run; its people are unique by ref as in any campaign.
CREATE TABLE crier.substitute_email (
    campaign_id       bigint PRIMARY KEY REFERENCES crier.campaign (id),
    email_campaign_id bigint NOT NULL UNIQUE REFERENCES crier.campaign (id),
    at                timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor             text NOT NULL DEFAULT session_user,
    CHECK (email_campaign_id <> campaign_id)
);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.substitute_email
    FOR EACH STATEMENT EXECUTE FUNCTION crier.append_only();

-- 'substitute': the dispatch-log event of each record. Rebuilt as 007_jurisdictions.sql does.
DO $$
DECLARE
    definition text;
    events text[];
BEGIN
    SELECT pg_get_constraintdef(c.oid) INTO definition FROM pg_constraint c
    WHERE c.conrelid = 'crier.dispatch_log'::regclass AND c.conname = 'dispatch_log_event_check';
    IF definition ~ '\{' THEN
        events := substring(definition FROM '''(\{[^}]*\})''')::text[];
    ELSE
        SELECT array_agg(DISTINCT m[1]) INTO events
        FROM regexp_matches(definition, '''([a-z_]+)''', 'g') m;
    END IF;
    IF events IS NULL OR cardinality(events) < 2 THEN
        RAISE EXCEPTION 'cannot read the dispatch log''s event check: %', definition;
    END IF;
    IF NOT 'substitute' = ANY (events) THEN
        events := array_append(events, 'substitute');
    END IF;
    ALTER TABLE crier.dispatch_log DROP CONSTRAINT dispatch_log_event_check;
    EXECUTE format('ALTER TABLE crier.dispatch_log ADD CONSTRAINT dispatch_log_event_check'
                   ' CHECK (event = ANY (%L::text[]))', events);
END
$$;

-- Recording substitute notice is an operator action; legal and auditors read it.
REVOKE ALL ON crier.substitute_record, crier.substitute_email FROM PUBLIC;
GRANT SELECT, INSERT ON crier.substitute_record, crier.substitute_email TO crier_operator;
GRANT SELECT ON crier.substitute_record, crier.substitute_email TO crier_legal, crier_auditor;
