-- 020_jurisdictions: each campaign's set of jurisdictions, kept as its people are loaded
-- and amended (issue 12: `campaign start` at 10,000,000 people).
--
-- `campaign start` checks the templates against the content rules of every jurisdiction
-- the campaign's people live in (content.c). It found them with a SELECT DISTINCT over every
-- recipient row: 12.6 s at 10,000,000 under load, and growing with the campaign. The
-- loader sees every row it writes anyway, so it keeps the few distinct (country, region)
-- pairs in memory and adds their jurisdictions here in the load's own transaction (all or
-- nothing with the rows); start reads a few rows.
--
-- A jurisdiction is what content.c always asked for: a US region, or a territory given as
-- the country (PR, GU, VI), for rows whose region is given. `campaign amend` writes new
-- versions of a person (crier.recipient_version), never the loaded row; the trigger below
-- adds the jurisdiction of each new version too, so a person corrected into another state
-- is checked under that state's rules as well as the one loaded. The set only grows: a
-- jurisdiction that no current version names any more is still checked (stricter, never
-- looser, and a set that shrank would need a scan of the campaign to know).

-- jurisdiction_of - the jurisdiction of a stored (country, region), or NULL for none.
CREATE FUNCTION crier.jurisdiction_of(p_country text, p_region text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN p_region IS NULL THEN NULL
                WHEN upper(btrim(p_country)) IN ('PR', 'GU', 'VI') THEN upper(btrim(p_country))
                WHEN upper(btrim(p_country)) = 'US' THEN upper(btrim(p_region)) END
$$;

CREATE TABLE crier.campaign_jurisdiction (
    campaign_id  bigint NOT NULL REFERENCES crier.campaign,
    jurisdiction text NOT NULL,
    PRIMARY KEY (campaign_id, jurisdiction)
);

-- campaign_jurisdiction_add - the jurisdictions of these (country, region) pairs, as the
-- loader saw them in its rows (the same strings it COPYed), added to the campaign's set.
CREATE FUNCTION crier.campaign_jurisdiction_add(p_campaign bigint, p_country text[],
                                                p_region text[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO crier.campaign_jurisdiction (campaign_id, jurisdiction)
    SELECT DISTINCT p_campaign, j FROM (
        SELECT crier.jurisdiction_of(c, r) AS j FROM unnest(p_country, p_region) AS t(c, r)) s
    WHERE j IS NOT NULL
    ON CONFLICT DO NOTHING
$$;

-- campaign_jurisdiction_scan - the same from one load's stored rows: for a list with more
-- distinct pairs than the loader keeps in memory (free text in the region column).
CREATE FUNCTION crier.campaign_jurisdiction_scan(p_campaign bigint, p_load bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO crier.campaign_jurisdiction (campaign_id, jurisdiction)
    SELECT DISTINCT p_campaign, j FROM (
        SELECT crier.jurisdiction_of(country, region) AS j FROM crier.recipient
        WHERE campaign_id = p_campaign AND load_id = p_load) s
    WHERE j IS NOT NULL
    ON CONFLICT DO NOTHING
$$;

-- An amended person's new versions add their jurisdictions (one statement per batch of
-- amend's corrections, so a statement trigger over the new rows).
CREATE FUNCTION crier.recipient_version_jurisdiction() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO crier.campaign_jurisdiction (campaign_id, jurisdiction)
    SELECT DISTINCT campaign_id, j FROM (
        SELECT campaign_id, crier.jurisdiction_of(country, region) AS j FROM added) s
    WHERE j IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER recipient_version_jurisdiction AFTER INSERT ON crier.recipient_version
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION crier.recipient_version_jurisdiction();

-- Campaigns loaded before this migration: their set from what is stored, once.
INSERT INTO crier.campaign_jurisdiction (campaign_id, jurisdiction)
SELECT DISTINCT campaign_id, j FROM (
    SELECT campaign_id, crier.jurisdiction_of(country, region) AS j FROM crier.recipient
    UNION ALL
    SELECT campaign_id, crier.jurisdiction_of(country, region) FROM crier.recipient_version) s
WHERE j IS NOT NULL;

REVOKE ALL ON crier.campaign_jurisdiction FROM PUBLIC;
GRANT SELECT ON crier.campaign_jurisdiction TO crier_operator, crier_legal, crier_auditor;
REVOKE ALL ON FUNCTION crier.campaign_jurisdiction_add(bigint, text[], text[]),
    crier.campaign_jurisdiction_scan(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crier.campaign_jurisdiction_add(bigint, text[], text[]),
    crier.campaign_jurisdiction_scan(bigint, bigint) TO crier_operator;
