-- 024_find_bytes: the email and fax find indexes compare bytes, not the database's
-- collation (issue 12, item 4: `campaign load` against `psql \copy`).
--
-- `audit find`, `crier unreached` and the console look a person up by email or fax with
-- `=` only (engine/cmd/unreached.c, find_condition). 019's email and fax indexes used the
-- column's collation, so building them sorted a million addresses with strcoll(): on a
-- cluster created under en_US.UTF-8, Debian's usual server locale, 4.7 s for the email
-- index of 1,000,000 rows on one backend, against 1.7 s with text_pattern_ops, which
-- compares bytes (2.1 against 1.6 s under C.UTF-8; docs/benchmarks.md, "Seventh round").
-- The other three find indexes were text_pattern_ops already.
--
-- Equality is the same either way: every collation PostgreSQL takes from the C library is
-- deterministic, so `=` is byte equality, and text_pattern_ops' operator family serves
-- `=` as the default one does. Nothing that reads these indexes orders or ranges by them.
--
-- Only the definitions change: the indexes of campaigns loaded before keep theirs (found
-- by name, so find_index_missing does not count them missing) and serve the same queries;
-- every load from here on builds the new ones, and so do `crier db migrate` and 020's
-- staged builds, which read these definitions.
CREATE OR REPLACE FUNCTION crier.find_index_definitions()
RETURNS TABLE (suffix text, definition text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    VALUES ('email', '(email text_pattern_ops) WHERE email IS NOT NULL'),
           ('fax', '(fax text_pattern_ops) WHERE fax IS NOT NULL'),
           ('postal', '(postal_code text_pattern_ops) WHERE postal_code IS NOT NULL'),
           ('name', '(lower(name) text_pattern_ops)'),
           ('last_name', '(lower(split_part(name, '' '', -1)) text_pattern_ops)')
$$;
