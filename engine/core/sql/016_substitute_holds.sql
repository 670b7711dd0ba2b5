-- 016_substitute_holds: a law-enforcement hold on a campaign also holds its substitute
-- email (issue 15, docs/holds.md "The substitute email").
--
-- `crier substitute write` sends the substitute email as a campaign of its own,
-- CAMPAIGN.substitute, linked in crier.substitute_email. Until now a hold placed on the
-- campaign after `write` did not reach it: the claim, status and the placement's wait all
-- look at the holds of the notice's own campaign. A hold placed on a campaign now writes a
-- second hold, on its substitute email campaign, in the same transaction: a companion
-- (parent_hold_id names the hold it follows). The companion is an ordinary hold of the
-- email campaign, so the claim (queue.c), `crier status`, hold_coverage, notice_held and
-- the record's lock and in-flight log cover the email campaign with no change to the claim
-- and no cost to a campaign that has no substitute email. The companion follows its
-- parent: lifted and confirmed with it (the same transaction), and never on its own.

ALTER TABLE crier.hold ADD COLUMN parent_hold_id bigint REFERENCES crier.hold (id);
-- one companion per hold (a campaign has one substitute email campaign)
CREATE UNIQUE INDEX hold_parent ON crier.hold (parent_hold_id) WHERE parent_hold_id IS NOT NULL;

-- hold_follow - a companion is a copy of its parent: scope, agency, form and review date,
-- and, when placed in the parent's transaction, who placed it (the stamp would otherwise
-- name the owner of the trigger that writes it). Its lift and confirmation are refused
-- until its parent's, and then copy theirs. Runs after hold_stamp (trigger names sort).
CREATE FUNCTION crier.hold_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    h crier.hold;
    p crier.hold;
    pl crier.hold_lift;
    pc crier.hold_confirm;
BEGIN
    IF TG_TABLE_NAME = 'hold' THEN
        IF NEW.parent_hold_id IS NULL THEN
            -- `substitute write` holds the advisory lock (740120, campaign) for its whole
            -- run (SUBSTITUTE_LOCK_CLASS, substitute_write.c): a placement waits for a write
            -- under way, so either the write sees this hold (and leaves its people out) or
            -- hold_cascade sees the email campaign the write created (and follows it
            -- there). Taken here, before hold_placed's lock on the claims (740119): a
            -- placement waiting for a write does not stop the campaign's lanes meanwhile.
            PERFORM pg_advisory_xact_lock(740120, NEW.campaign_id::integer);
            RETURN NEW;
        END IF;
        SELECT * INTO p FROM crier.hold WHERE id = NEW.parent_hold_id;
        IF p.parent_hold_id IS NOT NULL OR NOT EXISTS (
               SELECT 1 FROM crier.substitute_email s
               WHERE s.campaign_id = p.campaign_id AND s.email_campaign_id = NEW.campaign_id)
           OR EXISTS (SELECT 1 FROM crier.hold_lift WHERE hold_id = p.id) THEN
            RAISE EXCEPTION 'hold % can only be followed, while not lifted, on the substitute '
                            'email campaign of its own campaign', p.id
                USING ERRCODE = 'check_violation';
        END IF;
        NEW.region := p.region;
        NEW.recipient_ref := p.recipient_ref;
        NEW.authority := p.authority;
        NEW.official := p.official;
        NEW.case_ref := p.case_ref;
        NEW.form := p.form;
        NEW.reason := p.reason;
        NEW.review_by := p.review_by;
        NEW.document_name := NULL; -- kept once, on the parent
        NEW.document_sha256 := NULL;
        NEW.document := NULL;
        IF p.placed_at = NEW.placed_at THEN -- the same transaction: the parent's placer
            NEW.placed_by := p.placed_by;
            NEW.placed_role := p.placed_role;
            NEW.placed_as := p.placed_as;
        END IF;
        RETURN NEW;
    END IF;
    SELECT * INTO h FROM crier.hold WHERE id = NEW.hold_id;
    IF h.parent_hold_id IS NULL THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'hold_lift' THEN
        SELECT * INTO pl FROM crier.hold_lift WHERE hold_id = h.parent_hold_id;
        IF pl.hold_id IS NULL THEN
            RAISE EXCEPTION 'hold % follows hold % (the substitute email of its campaign): '
                            'lift hold %, which lifts both', h.id, h.parent_hold_id,
                            h.parent_hold_id
                USING ERRCODE = 'check_violation';
        END IF;
        NEW.evidence := pl.evidence;
        NEW.lifted_by := pl.lifted_by;
        NEW.lifted_role := pl.lifted_role;
        NEW.lifted_as := pl.lifted_as;
        NEW.document_name := NULL;
        NEW.document_sha256 := NULL;
        NEW.document := NULL;
        RETURN NEW;
    END IF;
    SELECT * INTO pc FROM crier.hold_confirm WHERE hold_id = h.parent_hold_id;
    IF pc.hold_id IS NULL THEN
        RAISE EXCEPTION 'hold % follows hold % (the substitute email of its campaign): '
                        'confirm hold %, which confirms both', h.id, h.parent_hold_id,
                        h.parent_hold_id
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.document_name := pc.document_name;
    NEW.document_sha256 := pc.document_sha256;
    NEW.document := pc.document;
    NEW.confirmed_by := pc.confirmed_by;
    NEW.confirmed_role := pc.confirmed_role;
    NEW.confirmed_as := pc.confirmed_as;
    RETURN NEW;
END
$$;

-- hold_cascade - after a hold's own triggers (hold_log: lock, log, in-flight rows), place,
-- lift or confirm its companion. SECURITY DEFINER as hold_placed: legal inserts the hold,
-- the trigger writes the companion's rows and, through their own triggers, takes the email
-- campaign's lock and bumps its holds_placed, which closes the claim race there too.
CREATE FUNCTION crier.hold_cascade() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    email bigint;
BEGIN
    IF TG_TABLE_NAME = 'hold' THEN
        IF NEW.parent_hold_id IS NOT NULL THEN
            RETURN NULL;
        END IF;
        SELECT email_campaign_id INTO email FROM crier.substitute_email
        WHERE campaign_id = NEW.campaign_id;
        IF email IS NOT NULL THEN
            -- hold_follow copies the rest from the parent
            INSERT INTO crier.hold (campaign_id, parent_hold_id, authority, official, case_ref,
                                    form, reason)
            VALUES (email, NEW.id, NEW.authority, NEW.official, NEW.case_ref, NEW.form,
                    NEW.reason);
        END IF;
    ELSIF TG_TABLE_NAME = 'hold_lift' THEN
        INSERT INTO crier.hold_lift (hold_id, evidence)
        SELECT c.id, NEW.evidence FROM crier.hold c
        WHERE c.parent_hold_id = NEW.hold_id
          AND NOT EXISTS (SELECT 1 FROM crier.hold_lift l WHERE l.hold_id = c.id);
    ELSE
        INSERT INTO crier.hold_confirm (hold_id, document_name, document_sha256, document)
        SELECT c.id, NEW.document_name, NEW.document_sha256, NEW.document FROM crier.hold c
        WHERE c.parent_hold_id = NEW.hold_id
          AND NOT EXISTS (SELECT 1 FROM crier.hold_lift l WHERE l.hold_id = c.id)
          AND NOT EXISTS (SELECT 1 FROM crier.hold_confirm f WHERE f.hold_id = c.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER hold_stamp_follow BEFORE INSERT ON crier.hold
    FOR EACH ROW EXECUTE FUNCTION crier.hold_follow();
CREATE TRIGGER hold_stamp_follow BEFORE INSERT ON crier.hold_lift
    FOR EACH ROW EXECUTE FUNCTION crier.hold_follow();
CREATE TRIGGER hold_stamp_follow BEFORE INSERT ON crier.hold_confirm
    FOR EACH ROW EXECUTE FUNCTION crier.hold_follow();
-- AFTER row triggers fire in name order: hold_log (the parent's own record) first.
CREATE TRIGGER hold_substitute AFTER INSERT ON crier.hold
    FOR EACH ROW EXECUTE FUNCTION crier.hold_cascade();
CREATE TRIGGER hold_substitute AFTER INSERT ON crier.hold_lift
    FOR EACH ROW EXECUTE FUNCTION crier.hold_cascade();
CREATE TRIGGER hold_substitute AFTER INSERT ON crier.hold_confirm
    FOR EACH ROW EXECUTE FUNCTION crier.hold_cascade();
