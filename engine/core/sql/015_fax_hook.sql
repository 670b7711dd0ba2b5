-- 015_fax_hook: the fax status webhook of crier serve (engine/web/hooks.c, docs/fax.md,
-- "The status webhook").
--
-- The webhook is the one route of crier serve that a peer on the Internet reaches without
-- a person's login: a fax gateway posts there when a fax is final. Its requests run on a
-- connection of their own, made with a login that is a member of crier_fax_hook
-- (serve.fax_webhook.conninfo), and that role may do what recording a fax's final status
-- needs, as the poller records it (transition.c, transition_record_polled), and nothing
-- else: read a submitted notice, its recipient's current contacts (a failed fax falls back
-- to the policy's next channel that reaches the person) and its campaign's name, policy
-- and state; move the notice on; and add its dispatch-log row. It cannot read the log,
-- holds, logins or other campaigns' metadata, change a campaign, or send anything.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crier_fax_hook') THEN
        BEGIN
            CREATE ROLE crier_fax_hook NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database of the cluster migrated at the same moment
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA crier TO crier_fax_hook;
GRANT SELECT ON crier.schema_migration TO crier_fax_hook;
GRANT SELECT ON crier.notice, crier.recipient_now TO crier_fax_hook;
GRANT SELECT (id, name, policy, state) ON crier.campaign TO crier_fax_hook;
-- exactly the columns transition_record_polled sets
GRANT UPDATE (state, channel, channel_index, next_attempt_at, channel_attempt,
              channel_started_at, reasons, transport_id, updated_at)
    ON crier.notice TO crier_fax_hook;
GRANT INSERT ON crier.dispatch_log TO crier_fax_hook;

-- campaign_share - the campaigns' states, locked FOR SHARE until the transaction ends: what
-- the poller's record reads so that a cancel cannot slip between its decision and its
-- write (a notice that would be ready again in a cancelled campaign is cancelled instead).
-- PostgreSQL grants FOR SHARE only to a role that may UPDATE a column of the table; this
-- function lends the lock alone, so the webhook role needs no right to change a campaign.
CREATE FUNCTION crier.campaign_share(p_ids bigint[]) RETURNS TABLE (id bigint, state text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.id, c.state FROM crier.campaign c WHERE c.id = ANY (p_ids) ORDER BY c.id FOR SHARE
$$;
REVOKE ALL ON FUNCTION crier.campaign_share(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.campaign_share(bigint[]) TO crier_operator, crier_fax_hook;
