#!/bin/bash
# find_index.sh - the `audit find` indexes of each campaign's recipient partition, built
# after the load commits (019_find_local.sql, engine/core/find_index.c): a load builds
# them before it returns; a load killed between its commit and those builds leaves its
# rows loaded and an index missing, which `crier status` says, `audit find` works without,
# and `crier db migrate` and the next load build; a database upgraded from 018 gets every
# partition's indexes from the migration.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

# list N - a list of N people, person i with user<i>@example.com and the last name Doe<i>
list() {
  echo "ref,name,email,fax,postal_code"
  for i in $(seq "$1"); do echo "p$i,Jane Doe$i,user$i@example.com,+1 212 555 $((1000 + i)),$((10000 + i))"; done
}
# find_indexes CAMPAIGN_ID - the find indexes its partition has, by name
find_indexes() {
  sql "SELECT string_agg(indexrelid::regclass::text, ' ' ORDER BY indexrelid::regclass::text) FROM pg_index
       WHERE indrelid = 'crier.recipient_c$1'::regclass
         AND indexrelid::regclass::text ~ '_(email|fax|postal|name|last_name)$'"
}
all_five() {
  echo "crier.recipient_c$1_email crier.recipient_c$1_fax crier.recipient_c$1_last_name crier.recipient_c$1_name crier.recipient_c$1_postal"
}
# fields JSON KEY... - the values of those keys of one JSON object, space-separated
fields() { "$PY" -c 'import json, sys
d = json.loads(sys.argv[1])
print(" ".join(json.dumps(d[k], separators=(",", ":")) for k in sys.argv[2:]))' "$@"; }
found() { "$CRIER" audit find "$1" "$2" "$3" --json 2>/dev/null | "$PY" -c 'import json, sys
print(" ".join(p["ref"] for p in json.load(sys.stdin)))'; }
list 300 >list.csv

# --- a load builds them before it returns ----------------------------------------------------
"$CRIER" campaign create c1 --incident INC-1 >/dev/null
run_crier campaign load c1 --csv list.csv --json
is "$RC" 0 "the load succeeds"
is "$(fields "$OUT" loaded find_indexes_built find_indexes_missing)" "300 5 0" \
  "its JSON: 300 loaded, 5 find indexes built, none missing"
is "$(find_indexes 1)" "$(all_five 1)" "the partition has its five find indexes when the load returns"
is "$(sql "SELECT count(*) FROM pg_indexes WHERE schemaname = 'crier' AND tablename = 'recipient'
           AND indexname ~ '^recipient_(email|fax|postal|name|last_name)$'")" 0 \
  "the parent has none: attaching a partition builds only the load's own indexes"
is "$(sql "SELECT count(*) FROM crier.find_index_missing(NULL)")" 0 "nothing is missing"
run_crier status c1 --json
is "$(fields "$OUT" find_indexes)" '{"missing":0,"building":0}' "status: none missing"
run_crier status c1
ok "status prints no find-index line when none is missing" test "$(grep -c 'find indexes' <<<"$OUT")" = 0
# ref_key CAMPAIGN_ID - its partition's unique ref index, if the parent's recipient_ref owns it
ref_key() {
  sql "SELECT c.relname || ' ' || x.indisunique || ' ' || (pg_get_indexdef(c.oid) LIKE '%(campaign_id, ref text_pattern_ops)')
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_index x ON x.indexrelid = c.oid
       WHERE i.inhparent = 'crier.recipient_ref'::regclass AND x.indrelid = 'crier.recipient_c$1'::regclass"
}
# 025_ref_bytes.sql: the refs' unique key compares bytes, and the staged load's index is the one
is "$(ref_key 1)" "recipient_c1_campaign_id_ref_idx true true" \
  "a CSV load's ref key: unique, by bytes, attached to the parent's"

# --- killed between the commit and the index builds --------------------------------------------
# A load from a table: the path without staging tables (a CSV load has its own in load.sh).
# A session holds the advisory lock that crier.find_index_build takes for one index, so the
# load commits, builds the other four and waits on that one; then it is killed.
sql "CREATE TABLE public.people (ref text, name text, email text, fax text, postal_code text)" >/dev/null
psql -XAq -c "\\copy public.people FROM 'list.csv' CSV HEADER"
"$CRIER" campaign create c2 --incident INC-2 >/dev/null
key=$(sql "SELECT crier.find_index_lock('recipient_c2_email')")
session_open hold
session_say hold "SELECT pg_advisory_lock($key); SELECT 'locked';" locked
"$CRIER" campaign load c2 --table public.people >load2.out 2>load2.err &
loader=$!
waiting() {
  [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'crier%'
            AND datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'")" = 1 ] &&
    [ "$(find_indexes 2 | wc -w)" = 4 ]
}
ok "the load commits, builds four indexes and waits on the fifth" wait_until 60 waiting
is "$(sql "SELECT count(*) FROM crier.recipient WHERE $(in_campaign c2)")" 300 \
  "its rows are committed before the find indexes are built"
run_crier status c2 --json
is "$(fields "$OUT" find_indexes)" '{"missing":1,"building":1}' \
  "status: one missing, being built (its lock is held)"
kill -9 "$loader"
wait "$loader" 2>/dev/null
sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
     WHERE application_name LIKE 'crier%' AND datname = current_database() AND wait_event = 'advisory'" >/dev/null
session_say hold "SELECT pg_advisory_unlock($key); SELECT 'unlocked';" unlocked
session_close hold
gone() { [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'crier%' AND datname = current_database()")" = 0 ]; }
ok "the killed load's sessions are gone" wait_until 30 gone
is "$(find_indexes 2)" "crier.recipient_c2_fax crier.recipient_c2_last_name crier.recipient_c2_name crier.recipient_c2_postal" \
  "the email index is missing"
is "$(sql "SELECT count(*) FROM crier.recipient WHERE $(in_campaign c2)")" 300 "the rows stay loaded"
is "$(ref_key 2)" "recipient_c2_campaign_id_ref_idx true true" "a table load's ref key, built by ATTACH, the same"
run_crier status c2
like "$OUT" "find indexes: 1 missing, 0 of them being built \(crier db migrate builds the rest\)" \
  "status says one is missing and what builds it"
is "$(found c2 --email user17@example.com)" "p17" "audit find still finds the person by email"
plan=$(psql -XAtq -c "EXPLAIN SELECT seq FROM crier.recipient WHERE campaign_id = 2 AND email = 'x@example.com'")
no_email_index() { ! grep -q recipient_c2_email <<<"$plan"; }
ok "(reading the partition without the index, which is gone)" no_email_index
run_crier db migrate
is "$RC" 0 "db migrate succeeds"
like "$OUT" "find indexes built: 1" "db migrate builds the missing index and says so"
is "$(find_indexes 2)" "$(all_five 2)" "the partition has its five find indexes again"
plan=$(psql -XAtq -c "SET enable_seqscan = off" -c "EXPLAIN SELECT seq FROM crier.recipient WHERE campaign_id = 2 AND email = 'x@example.com'")
like "$plan" "recipient_c2_email" "find by email reads the rebuilt index"
# 024_find_bytes.sql: email and fax are indexed by their bytes (text_pattern_ops), which
# still serves `=`, whatever the database's collation
is "$(sql "SELECT count(*) FROM pg_indexes WHERE indexname IN ('recipient_c2_email', 'recipient_c2_fax')
           AND indexdef LIKE '%text_pattern_ops%'")" 2 "the email and fax indexes compare bytes"
plan=$(psql -XAtq -c "SET enable_seqscan = off" -c "EXPLAIN SELECT seq FROM crier.recipient WHERE campaign_id = 2 AND fax = '+12025550100'")
like "$plan" "recipient_c2_fax" "find by fax reads its index"
is "$(found c2 --email user17@example.com)" "p17" "and finds the person"

# --- the next load builds what another campaign's interrupted load left missing -----------------
sql "DROP INDEX crier.recipient_c2_last_name" >/dev/null
"$CRIER" campaign create c3 --incident INC-3 >/dev/null
run_crier campaign load c3 --csv list.csv --json
is "$(fields "$OUT" find_indexes_built find_indexes_missing)" "6 0" \
  "the next load builds its own five and the one missing in c2"
is "$(find_indexes 2)" "$(all_five 2)" "c2 has all five again"
is "$(found c2 --name doe4)" "p4 p40 p41 p42 p43 p44 p45 p46 p47 p48 p49" "find by last name in c2"

# --- a later load into a campaign adds to the indexed partition -------------------------------
printf 'ref,name,email\nq1,Ann Later,later@example.com\n' >more.csv
run_crier campaign load c1 --csv more.csv
is "$RC" 0 "a second load into c1"
is "$(found c1 --email later@example.com)" "q1" "its person is found (the index kept up row by row)"

# --- a database upgraded from 018: the migration gives every partition its indexes -------------
# back to 018's shape: the parent's partitioned indexes, no 019 functions, version 18 (and
# none of 021's region on the notice row, nor 022's functions, 023's tables or 025's ref key)
sql "DROP FUNCTION crier.claim_region_build(bigint), crier.claim_region_missing(bigint),
       crier.claim_region_index(bigint), crier.lane_batch_analyze();
     DROP TABLE crier.lane_batch, crier.lane_batch_line;
     ALTER TABLE crier.notice DROP COLUMN region;
     DROP INDEX $(all_five 1 | tr ' ' ','), $(all_five 2 | tr ' ' ','), $(all_five 3 | tr ' ' ',');
     DROP FUNCTION crier.find_index_build(bigint, text), crier.find_index_missing(bigint),
       crier.find_index_lock(text), crier.find_index_definitions(),
       crier.notice_stage_create(bigint, integer), crier.notice_stage_sweep(bigint),
       crier.notice_stage_adopt(bigint, text);
     DROP TABLE crier.campaign_jurisdiction;
     DROP FUNCTION crier.jurisdiction_of(text, text),
       crier.campaign_jurisdiction_add(bigint, text[], text[]),
       crier.campaign_jurisdiction_scan(bigint, bigint),
       crier.recipient_version_jurisdiction(),
       crier.recipient_stage_create(bigint, bigint, integer),
       crier.notice_stage_create(bigint, bigint, integer), crier.load_stage_indexes(text, text),
       crier.load_stage_index(text, text, boolean, text), crier.load_stage_adopt(bigint, text, text)
       CASCADE;
     DROP INDEX crier.recipient_ref;
     ALTER TABLE crier.recipient ADD CONSTRAINT recipient_campaign_id_ref_key UNIQUE (campaign_id, ref);
     CREATE INDEX recipient_email ON crier.recipient (email) WHERE email IS NOT NULL;
     CREATE INDEX recipient_fax ON crier.recipient (fax) WHERE fax IS NOT NULL;
     CREATE INDEX recipient_postal ON crier.recipient (postal_code text_pattern_ops) WHERE postal_code IS NOT NULL;
     CREATE INDEX recipient_name ON crier.recipient (lower(name) text_pattern_ops);
     CREATE INDEX recipient_last_name ON crier.recipient (lower(split_part(name, ' ', -1)) text_pattern_ops);
     DELETE FROM crier.schema_migration WHERE version >= 19" >/dev/null
run_crier db migrate
is "$RC" 0 "db migrate from 018"
like "$OUT" "schema migrated from version 18 to" "applies 019"
is "$(find_indexes 1) $(find_indexes 2) $(find_indexes 3)" "$(all_five 1) $(all_five 2) $(all_five 3)" \
  "every partition has its five find indexes after the upgrade"
is "$(sql "SELECT count(*) FROM pg_indexes WHERE schemaname = 'crier' AND tablename = 'recipient'
           AND indexname ~ '^recipient_(email|fax|postal|name|last_name)$'")" 0 \
  "and the parent's are gone"
is "$(found c3 --email user5@example.com)" "p5" "find works after the upgrade"
is "$(ref_key 1 | cut -d' ' -f2-) $(ref_key 2 | cut -d' ' -f2-) $(ref_key 3 | cut -d' ' -f2-)" \
  "true true true true true true" "025 rebuilt every campaign's ref key by its bytes"
is "$(sql "SELECT count(*) FROM pg_constraint WHERE conrelid = 'crier.recipient'::regclass AND contype = 'u'")" 0 \
  "and dropped the old constraint"
dup=$(psql -XAtq -c "INSERT INTO crier.recipient (campaign_id, seq, load_id, source_row, ref, name, mailable)
       SELECT campaign_id, 100000, load_id, 'line 0', ref, name, mailable FROM crier.recipient
       WHERE campaign_id = 3 AND ref = 'p7'" 2>&1 || true)
like "$dup" "duplicate key value violates unique constraint \"recipient_c3_campaign_id_ref_idx\"" \
  "a repeated ref is still refused"
is "$(sql "SELECT count(*) FILTER (WHERE region IS NULL) || ' ' || count(*) FILTER (WHERE region = 'CA')
           FROM crier.notice WHERE state = 'ready'")" \
  "0 $(sql "SELECT count(*) FROM crier.recipient r JOIN crier.notice n ON n.campaign_id = r.campaign_id
              AND n.recipient_seq = r.seq WHERE n.state = 'ready' AND r.region = 'CA'")" \
  "021 wrote every ready notice's region from its recipient"
is "$(sql "SELECT count(*) FROM pg_class WHERE relnamespace = 'crier'::regnamespace
           AND relname ~ 'claim_region'")" 0 \
  "and 022 dropped 021's region index: no campaign here has a region hold"

done_testing
