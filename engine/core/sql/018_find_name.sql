-- 018_find_name: the last-name index of `crier audit find --name` without a regular
-- expression (issue 12, item 4: `campaign load` against `psql \copy`).
--
-- A campaign's first load builds every index of crier.recipient when it attaches the
-- partition (014_load.sql), so each index is part of the load's time. The last-name index
-- (011_unreached.sql) ran regexp_replace(name, '^.*\s', '') on every row: the regular
-- expression engine converts each name to wide characters and backtracks from its end.
-- split_part(name, ' ', -1), the part after the last space, builds the same index in
-- about three quarters of the time (1,000,000 names, docs/benchmarks.md, "Load").
--
-- The two agree on every name a load or a correction accepts that separates its words with
-- ASCII spaces: validate.c trims a name and rejects tabs, line breaks and other control
-- characters. They differ on the Unicode space separators (U+3000, U+2002, ...), which \s
-- matched only where the database's locale classes them as spaces; the last word is now
-- what follows the last ASCII space, in every locale. engine/cmd/unreached.c's condition
-- uses the same expression, so that the index serves it.

DROP INDEX crier.recipient_last_name;
CREATE INDEX recipient_last_name
    ON crier.recipient (lower(split_part(name, ' ', -1)) text_pattern_ops);
DROP INDEX crier.recipient_version_last_name;
CREATE INDEX recipient_version_last_name
    ON crier.recipient_version (lower(split_part(name, ' ', -1)) text_pattern_ops);
