-- 011_unreached: finding people, correcting their contacts, sending again (issue 15,
-- docs/unreached.md).
--
-- The recipient rows stay the snapshot the load wrote (001_init.sql): a correction never
-- rewrites one. It appends a version to crier.recipient_version, and crier.recipient_now
-- reads a person's newest version where there is one, the loaded row where there is not.
-- The claim reads recipient_now, so a corrected contact is what the next attempt uses,
-- and the audit shows every version beside the loaded row.

-- ---- contact versions --------------------------------------------------------------------
CREATE TABLE crier.recipient_version (
    campaign_id bigint NOT NULL,
    seq         integer NOT NULL,     -- the recipient (crier.recipient's key)
    version     integer NOT NULL CHECK (version >= 1), -- the loaded row is version 0
    ref         text NOT NULL,
    name        text NOT NULL,
    email       text,                 -- normalised as a load normalises (validate.c)
    fax         text,
    address1    text,
    address2    text,
    city        text,
    region      text,
    postal_code text,
    country     text NOT NULL,
    mailable    boolean NOT NULL,
    source      text NOT NULL CHECK (source IN ('amend', 'forwarding')),
    source_row  text NOT NULL,        -- "corrections.csv line 3", "returns.csv line 7"
    reason      text NOT NULL CHECK (reason <> ''),
    at          timestamptz NOT NULL DEFAULT now(),
    by          text NOT NULL DEFAULT session_user,
    PRIMARY KEY (campaign_id, seq, version)
);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.recipient_version
    FOR EACH STATEMENT EXECUTE FUNCTION crier.append_only();

-- recipient_now - each person with their current contacts. The version is a LATERAL probe
-- of recipient_version's key, so that a query naming (campaign_id, seq) reads one index
-- entry of each table (the claim's per-notice probe stays a probe).
CREATE VIEW crier.recipient_now AS
SELECT r.campaign_id, r.seq, r.load_id, r.source_row, r.ref,
       CASE WHEN v.version IS NULL THEN r.name ELSE v.name END AS name,
       CASE WHEN v.version IS NULL THEN r.email ELSE v.email END AS email,
       CASE WHEN v.version IS NULL THEN r.fax ELSE v.fax END AS fax,
       CASE WHEN v.version IS NULL THEN r.address1 ELSE v.address1 END AS address1,
       CASE WHEN v.version IS NULL THEN r.address2 ELSE v.address2 END AS address2,
       CASE WHEN v.version IS NULL THEN r.city ELSE v.city END AS city,
       CASE WHEN v.version IS NULL THEN r.region ELSE v.region END AS region,
       CASE WHEN v.version IS NULL THEN r.postal_code ELSE v.postal_code END AS postal_code,
       CASE WHEN v.version IS NULL THEN r.country ELSE v.country END AS country,
       CASE WHEN v.version IS NULL THEN r.mailable ELSE v.mailable END AS mailable,
       r.vars, r.notes, coalesce(v.version, 0) AS version
FROM crier.recipient r
LEFT JOIN LATERAL (SELECT * FROM crier.recipient_version v
                   WHERE v.campaign_id = r.campaign_id AND v.seq = r.seq
                   ORDER BY v.version DESC LIMIT 1) v ON true;

-- ---- finding people (crier audit find) --------------------------------------------------
-- Exact on the normalised contacts, prefix on the name or its last word, each an index
-- probe per campaign partition (a campaign named prunes to its own). Partial: a person
-- without the contact costs no entry. These are built when a load attaches a campaign's
-- partitions, in the same sorted pass as the others.
CREATE INDEX recipient_email ON crier.recipient (email) WHERE email IS NOT NULL;
CREATE INDEX recipient_fax ON crier.recipient (fax) WHERE fax IS NOT NULL;
CREATE INDEX recipient_postal ON crier.recipient (postal_code text_pattern_ops) WHERE postal_code IS NOT NULL;
CREATE INDEX recipient_name ON crier.recipient (lower(name) text_pattern_ops);
CREATE INDEX recipient_last_name
    ON crier.recipient (lower(regexp_replace(name, '^.*\s', '')) text_pattern_ops);
CREATE INDEX recipient_version_email ON crier.recipient_version (email) WHERE email IS NOT NULL;
CREATE INDEX recipient_version_fax ON crier.recipient_version (fax) WHERE fax IS NOT NULL;
CREATE INDEX recipient_version_postal ON crier.recipient_version (postal_code text_pattern_ops)
    WHERE postal_code IS NOT NULL;
CREATE INDEX recipient_version_name ON crier.recipient_version (lower(name) text_pattern_ops);

-- ---- the unreached list (crier audit unreached) -----------------------------------------
-- Who is not reached: undeliverable notices (notice_unreached), and mailed letters that
-- came back ('returned' log rows, found through dispatch_log_campaign).
CREATE INDEX notice_unreached ON crier.notice (campaign_id, id) WHERE state = 'undeliverable';

-- ---- the log -------------------------------------------------------------------------
-- 'amend': a contact corrected (old and new values in detail, --reason in reason);
-- 'resend': another copy asked for, never a retry. Rebuilt as 007_jurisdictions.sql does.
DO $$
DECLARE
    definition text;
    events text[];
    e text;
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
    FOREACH e IN ARRAY ARRAY['amend', 'resend'] LOOP
        IF NOT e = ANY (events) THEN
            events := array_append(events, e);
        END IF;
    END LOOP;
    ALTER TABLE crier.dispatch_log DROP CONSTRAINT dispatch_log_event_check;
    EXECUTE format('ALTER TABLE crier.dispatch_log ADD CONSTRAINT dispatch_log_event_check'
                   ' CHECK (event = ANY (%L::text[]))', events);
END
$$;

-- ---- who may do what ---------------------------------------------------------------------
-- Correcting and re-sending are operator actions; finding and listing are for auditors
-- and legal too. Nobody changes a version once written (the trigger above).
REVOKE ALL ON crier.recipient_version, crier.recipient_now FROM PUBLIC;
GRANT SELECT, INSERT ON crier.recipient_version TO crier_operator;
GRANT SELECT ON crier.recipient_version, crier.recipient_now
    TO crier_operator, crier_legal, crier_auditor;

-- Letters that came back, per campaign: few rows, so the index costs nothing on the
-- transitions that make up the log, and the unreached list reads them without scanning it.
CREATE INDEX dispatch_log_returned ON crier.dispatch_log (campaign_id, notice_id)
    WHERE event = 'returned';
CREATE INDEX recipient_version_last_name
    ON crier.recipient_version (lower(regexp_replace(name, '^.*\s', '')) text_pattern_ops);
