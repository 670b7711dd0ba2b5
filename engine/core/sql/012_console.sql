-- 012_console: the web console's login log (crier serve, docs/console.md).
--
-- Logins and logouts are kept with the same protection as the dispatch log: rows are
-- only ever added (the append_only trigger of 004_audit.sql refuses UPDATE, DELETE and
-- TRUNCATE to every role, the owner included). They are not dispatch-log rows because
-- that log is per campaign (campaign_id NOT NULL) and sealed in per-campaign chains, and
-- a login belongs to no campaign.
--
-- Nobody inserts directly: crier.login_record() writes the session's own role
-- (session_user), so a console user cannot record a login or logout in another's name.
-- Each console session calls it on its own connection, made with the user's password.
CREATE TABLE crier.login_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    login   text NOT NULL,                -- the PostgreSQL role that logged in
    event   text NOT NULL CHECK (event IN ('login', 'logout', 'expired')),
    client  text NOT NULL                 -- the client's address as the console saw it
);

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.login_log
    FOR EACH STATEMENT EXECUTE FUNCTION crier.append_only();

CREATE FUNCTION crier.login_record(p_event text, p_client text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO crier.login_log (login, event, client)
    VALUES (session_user, p_event, left(p_client, 100)) RETURNING id
$$;

REVOKE ALL ON crier.login_log FROM PUBLIC;
REVOKE ALL ON FUNCTION crier.login_record(text, text) FROM PUBLIC;
-- a login with none of crier's roles cannot record its login, so the console refuses it
GRANT EXECUTE ON FUNCTION crier.login_record(text, text)
    TO crier_operator, crier_legal, crier_auditor;
GRANT SELECT ON crier.login_log TO crier_auditor, crier_legal;
