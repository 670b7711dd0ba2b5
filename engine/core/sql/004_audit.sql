-- 004_audit: the dispatch log becomes append-only and sealed; what was sent can be proven.
--
-- docs/audit.md explains the design. In short:
--  * the database refuses UPDATE, DELETE and TRUNCATE on the dispatch log (which also holds
--    the print batches' records), the seal blocks and the template snapshots, for every
--    role including the owner (triggers) and grants them to no crier role (privileges);
--  * the log is sealed in blocks, one chain per campaign: a block's SHA-256 covers the
--    previous block's hash and the canonical encoding of each of its rows (engine/core/seal.c),
--    so that an edit, deletion, insertion or reordering by someone who can bypass the
--    triggers (a superuser, the owner) breaks the chain;
--  * a campaign's templates are copied into the database when it starts, and each sent
--    message's log row says when its content was rendered: `crier audit show` re-renders
--    it from those and compares the SHA-256 recorded at sending.

-- ---- the content's inputs --------------------------------------------------------------
-- When the content was rendered: the email's Date header, the date printed on a letter
-- or fax (engine/core/queue.c records it with content_sha256).
ALTER TABLE crier.dispatch_log ADD COLUMN content_at timestamptz;

-- The campaign's templates as they were when it started; workers render from this copy,
-- never from files that may have changed since (engine/core/render.c).
CREATE TABLE crier.campaign_template (
    campaign_id bigint NOT NULL REFERENCES crier.campaign,
    name        text NOT NULL CHECK (name <> ''),   -- file name: "email.CA.txt"
    body        bytea NOT NULL,
    sha256      text NOT NULL CHECK (sha256 = encode(sha256(body), 'hex')),
    copied_from text NOT NULL,                      -- the directory, for the reader
    copied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, name)
);

-- ---- seal blocks -------------------------------------------------------------------------
-- Block seq of a campaign's chain covers the campaign's log rows with lo_id < id <= hi_id.
-- Every seal round covers every row up to its horizon, in all campaigns: so every log row
-- with an id at or below the highest hi_id is in exactly one block (seal.c relies on it).
CREATE TABLE crier.audit_block (
    campaign_id bigint NOT NULL,
    seq         integer NOT NULL CHECK (seq >= 1),
    version     smallint NOT NULL DEFAULT 1,  -- of the canonical row encoding (seal.c)
    lo_id       bigint NOT NULL,
    hi_id       bigint NOT NULL CHECK (hi_id > lo_id),
    rows        integer NOT NULL CHECK (rows >= 1),
    prev_sha256 text NOT NULL CHECK (prev_sha256 ~ '^[0-9a-f]{64}$'),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    locator     bytea NOT NULL,     -- per row: id (8 bytes) and its hash's first 8 bytes,
                                    -- so that verify can name the row that changed
    sealed_at   timestamptz NOT NULL DEFAULT now(),
    sealed_by   text NOT NULL DEFAULT session_user,
    PRIMARY KEY (campaign_id, seq)
);
CREATE INDEX audit_block_hi ON crier.audit_block (hi_id);

-- A block continues its chain: the next number, starting where the last one ended, naming
-- its hash. This keeps a confused or hostile sealer from forking a chain or reserving ids
-- that are not written yet; the hashes themselves are checked by `crier audit verify`.
CREATE FUNCTION crier.audit_block_links() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last crier.audit_block;
BEGIN
    NEW.sealed_at := now();
    NEW.sealed_by := session_user;
    SELECT * INTO last FROM crier.audit_block
    WHERE campaign_id = NEW.campaign_id ORDER BY seq DESC LIMIT 1;
    IF NEW.seq <> coalesce(last.seq, 0) + 1
       OR NEW.prev_sha256 <> coalesce(last.sha256, repeat('0', 64))
       OR NEW.lo_id < coalesce(last.hi_id, 0) THEN
        RAISE EXCEPTION 'block % of campaign % does not continue its chain', NEW.seq,
            NEW.campaign_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.hi_id > (SELECT coalesce(max(id), 0) FROM crier.dispatch_log) THEN
        RAISE EXCEPTION 'block % of campaign % ends past the log', NEW.seq, NEW.campaign_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_block_links BEFORE INSERT ON crier.audit_block
    FOR EACH ROW EXECUTE FUNCTION crier.audit_block_links();

-- The seal horizon: waits until no transaction that wrote the log is still open, then
-- returns the highest id written. Every id at or below it is then committed or never will
-- be, so a block ending there cannot later gain a row that was in flight. The lock (which
-- excludes writers only while it waits, and is released when the caller commits at once)
-- needs more than INSERT on the log, hence SECURITY DEFINER; callers set lock_timeout.
CREATE FUNCTION crier.audit_seal_horizon() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    LOCK TABLE crier.dispatch_log IN SHARE ROW EXCLUSIVE MODE;
    RETURN (SELECT coalesce(max(id), 0) FROM crier.dispatch_log);
END
$$;
REVOKE ALL ON FUNCTION crier.audit_seal_horizon() FROM PUBLIC;

-- ---- append-only, for every role --------------------------------------------------------
CREATE FUNCTION crier.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: its rows are never changed or removed', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- Statement triggers: they fire even when no row matches, and for TRUNCATE ... CASCADE.
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.dispatch_log
    FOR EACH STATEMENT EXECUTE FUNCTION crier.append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.audit_block
    FOR EACH STATEMENT EXECUTE FUNCTION crier.append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crier.campaign_template
    FOR EACH STATEMENT EXECUTE FUNCTION crier.append_only();

-- ---- who may do what ---------------------------------------------------------------------
REVOKE UPDATE, DELETE, TRUNCATE ON crier.dispatch_log, crier.audit_block,
    crier.campaign_template FROM PUBLIC, crier_operator, crier_legal, crier_auditor;
GRANT SELECT, INSERT ON crier.audit_block, crier.campaign_template TO crier_operator;
GRANT EXECUTE ON FUNCTION crier.audit_seal_horizon() TO crier_operator;
GRANT SELECT ON crier.audit_block, crier.campaign_template TO crier_legal, crier_auditor;
