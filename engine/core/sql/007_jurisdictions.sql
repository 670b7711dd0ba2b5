-- 007_jurisdictions.sql - the regulator notices enter the dispatch log (docs/jurisdictions.md,
-- `crier regulators`): event 'regulator', to_state 'packet' for each file of a packet written
-- (its SHA-256 in content_sha256) and 'filed' when an operator records that a regulator notice
-- was filed (date, how, reference in detail). The log stays append-only and sealed as before.

-- Rebuilt from the events the CHECK already allows, so that events other migrations add are
-- kept. Since 002 the constraint reads CHECK (event = ANY ('{...}'::text[])); 001's form was
-- event IN ('...', ...): both are read.
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
    IF NOT 'regulator' = ANY (events) THEN
        events := array_append(events, 'regulator');
    END IF;
    ALTER TABLE crier.dispatch_log DROP CONSTRAINT dispatch_log_event_check;
    EXECUTE format('ALTER TABLE crier.dispatch_log ADD CONSTRAINT dispatch_log_event_check'
                   ' CHECK (event = ANY (%L::text[]))', events);
END
$$;
