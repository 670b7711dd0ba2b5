#!/bin/bash
# audit.sh - the audit tools (engine/core/seal.c, engine/cmd/audit.c, 004_audit.sql) on a campaign
# sent over all three channels to real peers (aiosmtpd capture, the fax gateway, the print
# spool): the database refuses UPDATE/DELETE/TRUNCATE on the log, seal blocks and template
# copies for every role (triggers and privileges); `crier run` seals as it goes; verify,
# head, export and verify --file agree; tampering as a superuser who disables the triggers
# (an edited row, a deleted row, two swapped rows, a row inserted into a sealed range, a
# removed newest block) is caught and the row named; `audit show` re-renders the email,
# the fax and the letter and proves them against the recorded SHA-256 (and fails when the
# configuration differs); `audit log` filters and formats; crier_auditor may read it all
# and change nothing.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

SECRET="s3cret-$RANDOM-$$"
TOKEN="tok-$RANDOM-$$"
export FAX_SECRET=$SECRET
for tool in pdftotext pdffonts; do
  if ! command -v "$tool" >/dev/null; then
    echo "1..0 # SKIP $tool missing (Debian: apt-get install poppler-utils)"
    exit 0
  fi
done

# --- peers --------------------------------------------------------------------------------
mkdir -p "$WORK/mail" "$WORK/fax" "$WORK/spool"
start_peer smtp "$PY" "$TESTS_DIR/peers/smtp_capture.py" "$WORK/mail" 0
SMTP_PORT=$PORT
start_peer fax "$PY" "$TESTS_DIR/peers/fax_gateway.py" --secret "$SECRET" --token "$TOKEN" \
  --log "$WORK/fax.log" --save-dir "$WORK/fax"
FAX_PORT=$PORT

# audit_config FROM - the configuration, with the email From address given
audit_config() {
  write_config "audit:
  seal_interval: 1s
  block_rows: 7
channels:
  email:
    lanes: 1
    batch_size: 5
    smtp: {host: 127.0.0.1, port: $SMTP_PORT, timeout: 5}
    from: \"$1\"
    bounce_domain: bounces.example.com
  fax:
    lanes: 1
    provider: sinch
    base_url: http://127.0.0.1:$FAX_PORT
    project_id: proj-test
    key_id: key-test
    key_secret_env: FAX_SECRET
    from: \"+12125550100\"
    poll_interval: 1s
    timeout: 5s
  mail:
    lanes: 1
    spool: $WORK/spool
    letters_per_batch: 10
    batch_window: 1s"
}
audit_config "Example Corp <privacy@example.com>"
export CRIER_CONFIG="$WORK/crier.yaml"
run_until_idle() { timeout 120 "$CRIER" run --until-idle >"$WORK/run.out" 2>>"$WORK/run.log"; }

run_crier db migrate
is "$RC" 0 "db migrate"

{
  echo "ref,name,email,fax,address1,address2,city,region,postal_code,country"
  for i in $(seq 1 12); do echo "e$i,Person E$i,e$i@example.net,,,,,,,US"; done
  echo "f1,Fax Person,,+12125550111,,,,,,US"
  echo "m1,Mail Person,,,12 Elm Street,,Springfield,IL,62704,US"
  echo "m2,Held Person,,,9 Ocean Ave,,Brooklyn,NY,11225,US"
} >list.csv
setup a1 email,fax,mail list.csv
is "$(sql "SELECT count(*) FROM crier.campaign_template WHERE $(in_campaign a1)")" \
  "$(find "$TESTS_DIR/../config/templates/default" -maxdepth 1 -type f | wc -l)" \
  "campaign start copied every template into the database"

# m2 is held (recipient hold), sent after the lift: its letter says it was delayed
run_crier hold place a1 --recipient m2 --authority "FBI" --official "SA Roe" --case C-1 \
  --form written --reason "would alert the suspects"
is "$RC" 0 "hold placed on m2"
HOLD=$(sql "SELECT max(id) FROM crier.hold")

# an id that is handed out and rolled back: a gap inside what will be sealed
psql -XAtq -c "BEGIN; INSERT INTO crier.dispatch_log (campaign_id, event, actor)
               SELECT id, 'campaign', 'gap' FROM crier.campaign WHERE name = 'a1'; ROLLBACK;"
GAP=$(sql "SELECT last_value FROM pg_sequences WHERE sequencename = 'dispatch_log_id_seq'")

run_until_idle
is "$?" 0 "crier run --until-idle finishes"
run_crier hold lift "$HOLD" --evidence "agency letter of 2026-11-29"
is "$RC" 0 "hold lifted"
run_until_idle
is "$?" 0 "crier run --until-idle sends the released notice"
is "$(sql "SELECT string_agg(state, ',' ORDER BY state) FROM (SELECT DISTINCT state FROM crier.notice
           WHERE $(in_campaign a1)) s")" "batched,delivered,sent" "emails sent, the fax delivered, letters batched"
ok "m2's claim says it was delayed by the hold" \
  test "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE recipient_ref = 'm2'
              AND reason LIKE 'delayed for law enforcement%'")" -ge 1

# --- sealing ----------------------------------------------------------------------------------
blocks=$(sql "SELECT count(*) FROM crier.audit_block WHERE $(in_campaign a1)")
ok "crier run sealed the log in blocks of at most 7 rows ($blocks blocks)" test "$blocks" -gt 3
is "$(sql "SELECT max(rows) <= 7 FROM crier.audit_block")" t "no block is larger than block_rows"
run_crier audit verify
is "$RC" 0 "audit verify: intact"
like "$OUT" "^campaign a1: intact: [0-9]+ rows in $blocks blocks, head block $blocks sha256 [0-9a-f]{64}$" \
  "verify names the rows, blocks and head (nothing left unsealed by run --until-idle)"
run_crier audit head --campaign a1
HEAD=$(echo "$OUT" | awk '{ print $5 }')
like "$OUT" "^a1 block $blocks sha256 [0-9a-f]{64} \(sealed " "audit head prints the newest block's hash"
is "$HEAD" "$(sql "SELECT sha256 FROM crier.audit_block WHERE $(in_campaign a1) ORDER BY seq DESC LIMIT 1")" \
  "the head is the newest block's hash"
run_crier audit seal
is "$OUT" "sealed 0 log rows in 0 blocks" "audit seal with nothing new seals nothing"
# 026_block_storage.sql: a block's locator (hash bytes) is stored without trying pglz on it
is "$(sql "SELECT attstorage FROM pg_attribute WHERE attrelid = 'crier.audit_block'::regclass
           AND attname = 'locator'")" e "the blocks' locators are stored uncompressed (EXTERNAL)"
for batch in $(sql "SELECT DISTINCT transport_id FROM crier.notice WHERE $(in_campaign a1) AND channel = 'mail'"); do
  run_crier batch mark-mailed "$batch" --date "$(date -u +%F)" --evidence "PS Form 3602 #1"
  is "$RC" 0 "print batch $batch marked mailed (log rows written after the last seal)"
done
run_crier audit seal
like "$OUT" "^sealed [1-9][0-9]* log rows in [1-9][0-9]* blocks$" "audit seal seals rows written since"
run_crier audit verify --campaign a1 --expect-head "$HEAD"
is "$RC" 0 "verify --expect-head: the head handed out earlier is still in the chain"

# --- append-only: triggers for everyone, privileges for the roles -------------------------
for t in dispatch_log audit_block campaign_template; do
  err=$(psql -XAtq -v ON_ERROR_STOP=1 -c "UPDATE crier.$t SET campaign_id = campaign_id" 2>&1)
  like "$err" "$t is append-only" "UPDATE on $t refused for the superuser"
  err=$(psql -XAtq -v ON_ERROR_STOP=1 -c "DELETE FROM crier.$t" 2>&1)
  like "$err" "$t is append-only" "DELETE on $t refused for the superuser"
  err=$(psql -XAtq -v ON_ERROR_STOP=1 -c "TRUNCATE crier.$t CASCADE" 2>&1)
  like "$err" "$t is append-only" "TRUNCATE on $t refused for the superuser"
done
err=$(psql -XAtq -v ON_ERROR_STOP=1 -c "INSERT INTO crier.audit_block (campaign_id, seq, lo_id, hi_id, rows,
  prev_sha256, sha256, locator) SELECT id, 1, 0, 1, 1, repeat('0', 64), repeat('1', 64), '' FROM crier.campaign" 2>&1)
like "$err" "does not continue its chain" "a block that does not continue its chain is refused"

role_logins
for r in operator legal auditor; do
  ok "$r: UPDATE on the log refused by privileges" denied "$r" "UPDATE crier.dispatch_log SET detail = 'x'"
  ok "$r: DELETE on the log refused by privileges" denied "$r" "DELETE FROM crier.dispatch_log"
  ok "$r: UPDATE on a seal block refused" denied "$r" "UPDATE crier.audit_block SET rows = 1"
done
ok "auditor: INSERT into the log refused" denied auditor \
  "INSERT INTO crier.dispatch_log (campaign_id, event, actor) VALUES (1, 'campaign', 'x')"
ok "auditor: no seal horizon (it locks the log)" denied auditor "SELECT crier.audit_seal_horizon()"

# the auditor runs every reading command, and is refused every change
as auditor "$CRIER" audit verify >"$WORK/aud.out" 2>&1
is "$?" 0 "auditor: audit verify"
as auditor "$CRIER" audit head >"$WORK/aud.out" 2>&1
is "$?" 0 "auditor: audit head"
as auditor "$CRIER" audit log a1 --format csv >"$WORK/aud.csv" 2>&1
is "$?" 0 "auditor: audit log"
as auditor "$CRIER" audit show a1 e1 >"$WORK/aud.out" 2>&1
is "$?" 0 "auditor: audit show (content verified)"
as auditor "$CRIER" audit export --campaign a1 --out "$WORK/aud.jsonl" >/dev/null 2>&1
is "$?" 0 "auditor: audit export"
as auditor "$CRIER" audit seal >"$WORK/aud.out" 2>&1
is "$?" 77 "auditor: audit seal refused (exit 77)"
like "$(cat "$WORK/aud.out")" "permission denied" "with the database's refusal"
as auditor "$CRIER" campaign resume a1 >"$WORK/aud.out" 2>&1
is "$?" 77 "auditor: campaign resume refused"
as operator "$CRIER" audit seal >"$WORK/op.out" 2>&1
is "$?" 0 "operator: audit seal"

# --- a sealer stopped while it holds the log's lock ---------------------------------------------
# The seal horizon's lock holds every writer of the log back until the sealer's transaction
# ends. A session keeps the log locked by a writer; `audit seal` waits for it (seal_wait 30 s)
# and is stopped; the writer commits, so the sealer's backend is granted the lock and sits idle
# in its transaction. A writer must still get the log, within the transaction's idle bound
# (10 s, seal.c), not when the sealer resumes.
session_open writer
session_say writer "BEGIN; LOCK TABLE crier.dispatch_log IN ROW EXCLUSIVE MODE; SELECT 'locked';" locked
sed 's/^audit:$/audit:\n  seal_wait: 30000/' "$WORK/crier.yaml" >frozen.yaml
"$CRIER" -c frozen.yaml audit seal >frozen.out 2>&1 &
sealer=$!
sealer_is() {
  [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'crier%'
            AND datname = current_database() AND $1")" = 1 ]
}
ok "audit seal waits for the writer" wait_until 10 sealer_is "wait_event_type = 'Lock'"
kill -STOP "$sealer"
session_say writer "COMMIT; SELECT 'committed';" committed
ok "the stopped sealer's session holds the lock, idle in its transaction" \
  wait_until 10 sealer_is "state = 'idle in transaction'"
started=$(date +%s)
probe=$(psql -XAtq -c "SET lock_timeout = '40s'" \
  -c "BEGIN" -c "LOCK TABLE crier.dispatch_log IN ROW EXCLUSIVE MODE" -c "SELECT 'got it'" -c "COMMIT" 2>&1)
waited=$(($(date +%s) - started))
is "$probe" "got it" "a writer gets the log while the sealer is still stopped"
ok "within the sealer's idle bound (waited ${waited} s)" test "$waited" -le 15
kill -CONT "$sealer"
wait "$sealer"
rc=$?
session_close writer
ok "the resumed sealer fails, its transaction ended by the server (exit $rc)" test "$rc" -ne 0
like "$(cat frozen.out)" "server closed the connection|idle-in-transaction" "and says its connection was ended"
run_crier audit seal
is "$RC" 0 "the next audit seal succeeds"

# --- crier run skips its seal while another process seals ---------------------------------
# One sealer hashes at a time (an advisory lock). A `crier run` whose round finds another
# at work skips the round rather than wait: with several processes, each main thread
# queued there behind the others' hashing, its heartbeat and reaper stopped meanwhile
# (seal.c; docs/benchmarks.md, "The seal with two processes"). Its last seal, at exit,
# waits its turn: what the run wrote is sealed before it stops.
session_open other
session_say other "SELECT pg_advisory_lock(740120, 0); SELECT 'held';" held
"$CRIER" run >skip.out 2>&1 &
runner=$!
seal_waiters() {
  sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = 'crier run'
       AND a.datname = current_database()"
}
waited=0
for _ in $(seq 16); do # 4 s: four rounds at seal_interval 1s
  waited=$((waited + $(seal_waiters)))
  sleep 0.25
done
is "$waited" 0 "while another sealer holds the lock, crier run's rounds never wait in it"
kill -TERM "$runner"
exit_waits() { [ "$(seal_waiters)" = 1 ]; }
ok "at exit it waits its turn to seal what it wrote" wait_until 10 exit_waits
session_say other "SELECT pg_advisory_unlock(740120, 0); SELECT 'released';" released
wait "$runner"
is "$?" 0 "then seals and exits 0 once the other sealer is done"
session_close other
run_crier audit verify
is "$RC" 0 "audit verify: intact"

# --- export, verify --file ---------------------------------------------------------------
run_crier audit export --campaign a1 --out a1.jsonl
is "$RC" 0 "audit export"
is "$(grep -c '^{"row"' a1.jsonl)" "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign a1)")" \
  "the export has every row of the campaign"
is "$(grep -c '^{"block"' a1.jsonl)" "$(sql "SELECT count(*) FROM crier.audit_block WHERE $(in_campaign a1)")" \
  "and every block"
ok "no temporary file left" test ! -e a1.jsonl.tmp
run_crier audit verify --file a1.jsonl --expect-head "$HEAD"
is "$RC" 0 "verify --file: the export verifies with no database"
(unset PGDATABASE PGHOST PGPORT; PGHOST=/nonexistent "$CRIER" audit verify --file a1.jsonl >/dev/null 2>&1)
is "$?" 0 "verify --file needs no database at all"
# the hashes as docs/audit.md defines them, recomputed by an independent implementation
"$PY" - a1.jsonl >rederived.out <<'PY'
import hashlib, json, sys
fields = None
rows, prev, bad, blocks = [], "0" * 64, 0, 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    if "campaign" in d:
        fields, cid = d["campaign"]["fields"], d["campaign"]["id"]
    elif "row" in d:
        enc = b""
        for f in fields:
            v = d["row"][f]
            if v is None:
                enc += b"~"
            else:
                b = str(v).encode()
                enc += str(len(b)).encode() + b":" + b
        rows.append(hashlib.sha256(enc + b"\n").digest())
    elif "block" in d:
        b = d["block"]
        trailer = "crier-seal v1\ncampaign %d\nseq %d\nlo %d\nhi %d\nrows %d\nprev %s\n" % (
            cid, b["seq"], b["lo_id"], b["hi_id"], len(rows), prev)
        h = hashlib.sha256(b"".join(rows) + trailer.encode()).hexdigest()
        bad += h != b["sha256"] or b["prev_sha256"] != prev
        blocks += 1
        prev, rows = h, []
print(blocks, bad)
PY
is "$(cat rederived.out)" "$(grep -c '^{"block"' a1.jsonl) 0" \
  "every block hash re-derived from docs/audit.md's definition by a separate implementation"
# a row changed in the file
row=$(grep -n '^{"row"' a1.jsonl | grep '"recipient_ref":"e3"' | grep '"to_state":"sent"' | head -1 | cut -d: -f1)
row_id=$(sed -n "${row}p" a1.jsonl | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["row"]["id"])')
sed "${row}s/250 /251 /" a1.jsonl >edited.jsonl
ok "the test edited one row of the copy" test "$(cmp -l a1.jsonl edited.jsonl | wc -l)" -eq 1
run_crier audit verify --file edited.jsonl
is "$RC" 1 "verify --file: an edited row breaks the chain (exit 1)"
like "$OUT" "BROKEN: block [0-9]+ .*row id $row_id differs" "and names the row"
head -n -1 a1.jsonl >cut.jsonl
run_crier audit verify --file cut.jsonl
is "$RC" 65 "a truncated export is refused (exit 65)"
like "$ERR" "incomplete" "as incomplete"

# --- tampering in the database by a superuser ---------------------------------------------
psql -XAtq -c "ALTER TABLE crier.dispatch_log DISABLE TRIGGER append_only" >/dev/null
e5=$(sql "SELECT id FROM crier.dispatch_log WHERE recipient_ref = 'e5' AND to_state = 'sent'")
psql -XAtq -c "UPDATE crier.dispatch_log SET detail = detail || ' ' WHERE id = $e5" >/dev/null
run_crier audit verify
is "$RC" 1 "an edited row: verify exits 1"
like "$OUT" "campaign a1: BROKEN: block [0-9]+ \(rows with ids [0-9]+\.\.[0-9]+\) does not match its hash: row id $e5 differs" \
  "an edited row: the block and the row are named"
psql -XAtq -c "UPDATE crier.dispatch_log SET detail = rtrim(detail, ' ') WHERE id = $e5" >/dev/null
run_crier audit verify
is "$RC" 0 "undone: intact again"

psql -XAtq -c "CREATE TEMP TABLE t AS SELECT * FROM crier.dispatch_log WHERE id = $e5;
               DELETE FROM crier.dispatch_log WHERE id = $e5;
               SELECT 1" >/dev/null
run_crier audit verify
is "$RC" 1 "a deleted row: verify exits 1"
like "$OUT" "row id $e5 is missing \(deleted after sealing\)" "a deleted row is named"
# restore e5 from the export (the exact canonical values)
"$PY" - "$e5" a1.jsonl >restore.sql <<'PY'
import json, sys
want = int(sys.argv[1])
for line in open(sys.argv[2]):
    d = json.loads(line)
    if "row" in d and d["row"]["id"] == want:
        r = d["row"]
        def q(v):
            if v is None: return "NULL"
            if isinstance(v, int): return str(v)
            return "'" + v.replace("'", "''") + "'"
        cols = list(r.keys())
        print("INSERT INTO crier.dispatch_log (%s) OVERRIDING SYSTEM VALUE VALUES (%s);"
              % (", ".join(cols), ", ".join(q(r[c]) for c in cols)))
PY
psql -XAtq -v ON_ERROR_STOP=1 -f restore.sql >/dev/null
is "$?" 0 "the deleted row put back from the export"
run_crier audit verify
is "$RC" 0 "put back: intact again"

e7=$(sql "SELECT id FROM crier.dispatch_log WHERE recipient_ref = 'e7' AND to_state = 'sent'")
e8=$(sql "SELECT id FROM crier.dispatch_log WHERE recipient_ref = 'e8' AND to_state = 'sent'")
swap() {
  psql -XAtq -v ON_ERROR_STOP=1 -c "UPDATE crier.dispatch_log d SET recipient_ref = o.recipient_ref,
      notice_id = o.notice_id, detail = o.detail, content_sha256 = o.content_sha256
    FROM crier.dispatch_log o WHERE (d.id, o.id) IN (($e7, $e8), ($e8, $e7))" >/dev/null
}
swap
is "$(sql "SELECT recipient_ref FROM crier.dispatch_log WHERE id = $e7")" e8 "two rows swapped"
run_crier audit verify
is "$RC" 1 "two swapped rows: verify exits 1"
like "$OUT" "row id $e7 differs" "the first swapped row is named"
swap
run_crier audit verify
is "$RC" 0 "swapped back: intact again"

ok "the rolled-back id $GAP lies inside a sealed block" \
  test "$(sql "SELECT count(*) FROM crier.audit_block WHERE lo_id < $GAP AND hi_id >= $GAP")" -eq 1
psql -XAtq -c "INSERT INTO crier.dispatch_log (id, campaign_id, event, actor, detail) OVERRIDING SYSTEM VALUE
               SELECT $GAP, id, 'campaign', 'someone', 'backdated' FROM crier.campaign WHERE name = 'a1'" >/dev/null
run_crier audit verify
is "$RC" 1 "a row inserted into a sealed range: verify exits 1"
like "$OUT" "row id $GAP was not there when the block was sealed \(inserted\)" "the inserted row is named"
psql -XAtq -c "DELETE FROM crier.dispatch_log WHERE id = $GAP" >/dev/null
run_crier audit verify
is "$RC" 0 "removed: intact again"

# the newest block removed with its rows' seal: the rows look unsealed, but the head
# handed out before no longer is in the chain
HEAD=$(sql "SELECT sha256 FROM crier.audit_block WHERE $(in_campaign a1) ORDER BY seq DESC LIMIT 1")
psql -XAtq -c "ALTER TABLE crier.audit_block DISABLE TRIGGER append_only;
  DELETE FROM crier.audit_block WHERE ($(in_campaign a1)) AND seq = (SELECT max(seq) FROM crier.audit_block
  WHERE $(in_campaign a1))" >/dev/null
run_crier audit verify --expect-head "$HEAD"
is "$RC" 1 "the newest block removed: verify --expect-head exits 1"
like "$OUT" "no block has the expected head hash $HEAD" "because the head handed out is gone"
psql -XAtq -c "ALTER TABLE crier.audit_block ENABLE TRIGGER append_only;
               ALTER TABLE crier.dispatch_log ENABLE TRIGGER append_only" >/dev/null

# --- audit show: the content proven, per channel ------------------------------------------
audit_config "Example Corp <privacy@example.com>"
for ref in e1 f1 m1 m2; do
  run_crier audit show a1 "$ref"
  is "$RC" 0 "audit show $ref: exit 0"
  like "$OUT" "content verified \(re-rendered, same SHA-256\)" "audit show $ref: content verified"
  like "$(sed -n 1p "$WORK/out")" "^$ref in campaign a1" "audit show $ref names the person"
done
run_crier audit show a1 m2
like "$OUT" "hold $HOLD \(m2, written\): placed .*, lifted " "show m2: the hold that delayed them, and when it was lifted"
like "$OUT" "mail   sending->batched" "show m2: the letter batched"
run_crier audit show a1 f1 --json --out rendered
is "$(echo "$OUT" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["contents_verified"], d["contents_not_verified"])')" \
  "1 0" "show --json: one content verified, none not"
fax_pdf=$(ls rendered/*-fax.pdf)
is "$(sha256sum "$fax_pdf" | cut -d' ' -f1)" \
  "$(sha256sum "$(ls "$WORK"/fax/*.pdf | head -1)" 2>/dev/null | cut -d' ' -f1)" \
  "the re-rendered fax is byte for byte the PDF the gateway received"
run_crier audit show a1 nobody
is "$RC" 66 "show of an unknown ref: exit 66"
like "$ERR" "no recipient 'nobody' in campaign 'a1'" "with the ref named"
# the check can fail: another From address renders another message
audit_config "Other Corp <other@example.com>"
run_crier audit show a1 e2
is "$RC" 1 "a different configuration: show exits 1"
like "$OUT" "CONTENT DIFFERS" "and says the content differs"
audit_config "Example Corp <privacy@example.com>"

# --- audit log -------------------------------------------------------------------------------
total=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign a1)")
run_crier audit log a1 --format csv
is "$(echo "$OUT" | "$PY" -c 'import csv,sys; print(sum(1 for _ in csv.DictReader(sys.stdin)))')" "$total" \
  "audit log --format csv: every row of the campaign, read back by a CSV reader"
like "$(echo "$OUT" | head -1)" '^"id","at","campaign","event","notice_id","recipient_ref","channel"' "with a header line"
run_crier audit log a1 --format json --recipient e1
is "$(echo "$OUT" | "$PY" -c 'import json,sys; print(len({json.loads(l)["recipient_ref"] for l in sys.stdin}))')" 1 \
  "--recipient: one person's rows only"
is "$(echo "$OUT" | wc -l)" "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE recipient_ref = 'e1'")" "all of them"
run_crier audit log a1 --channel fax --format json
is "$(echo "$OUT" | "$PY" -c 'import json,sys; print(sorted({json.loads(l)["recipient_ref"] for l in sys.stdin}))')" \
  "['f1']" "--channel fax: the fax rows"
run_crier audit log a1 --since 2999-01-01
is "$OUT" "" "--since in the future: nothing"
run_crier audit log a1 --since yesterday-ish
is "$RC" 65 "a bad --since: exit 65"
run_crier audit log nosuch
is "$RC" 66 "an unknown campaign: exit 66"
run_crier audit log --recipient e1
is "$RC" 65 "--recipient without a campaign: exit 65"
run_crier audit
is "$RC" 64 "crier audit alone: 64, with the list"
like "$ERR" "crier audit verify" "the audit commands are listed"

# --- many rows: the seal's and verify's cursors fetch 1,000 rows at a time ---------------------
# 1,300 people on the null channel write some 2,600 rows: blocks of 1,500 span a FETCH, and
# an edit in the second FETCH of a block is caught there
write_config "audit:
  seal_interval: 0
  block_rows: 1500
channels:
  null: {lanes: 2, batch_size: 500}"
{
  echo "ref,name,email"
  for i in $(seq 1 1300); do echo "n$i,Person N$i,n$i@example.net"; done
} >many.csv
setup a2 null many.csv
run_until_idle
is "$?" 0 "1,300 null notices run"
run_crier audit seal
is "$RC" 0 "audit seal of the rest"
rows=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign a2)")
ok "the campaign wrote more rows than two FETCHes ($rows)" test "$rows" -gt 2000
is "$(sql "SELECT sum(rows) FROM crier.audit_block WHERE $(in_campaign a2)")" "$rows" "every row sealed"
is "$(sql "SELECT count(*) FILTER (WHERE rows = 1500) FROM crier.audit_block WHERE $(in_campaign a2)")" 1 \
  "one full block of 1,500 rows, across a FETCH"
run_crier audit verify --campaign a2
is "$RC" 0 "verify: intact across FETCHes"
like "$OUT" "^campaign a2: intact: $rows rows in 2 blocks" "with every row counted"
run_crier audit export --campaign a2 --out a2.jsonl
run_crier audit verify --file a2.jsonl
is "$RC" 0 "the export verifies with no database"
nth=$(sql "SELECT id FROM crier.dispatch_log WHERE $(in_campaign a2) ORDER BY id OFFSET 1200 LIMIT 1")
psql -XAtq -c "ALTER TABLE crier.dispatch_log DISABLE TRIGGER append_only;
  UPDATE crier.dispatch_log SET actor = actor || 'x' WHERE id = $nth;
  ALTER TABLE crier.dispatch_log ENABLE TRIGGER append_only" >/dev/null
run_crier audit verify --campaign a2
is "$RC" 1 "a row edited in a block's second FETCH: verify exits 1"
like "$OUT" "BROKEN: block 1 .*row id $nth differs" "and names the row"


# --- the sealed timestamps: read as the server's text, written as DB_TIME_US (db.h) ----------
# rows whose times take every shape the rewrite knows (no fraction, trailing zeros, years
# below 1000) and those it leaves to the server (BC, past 9999, infinity); the export
# carries the hashed texts, which must be to_char()'s to the byte
psql -XAtq -v ON_ERROR_STOP=1 -c "INSERT INTO crier.dispatch_log (campaign_id, event, actor, at, content_at)
  SELECT c.id, 'campaign', 'times', t.at, t.content_at FROM crier.campaign c,
  (VALUES ('2026-12-04 17:40:00+00'::timestamptz, NULL::timestamptz),
          ('2026-12-04 17:40:00.1+00', '2026-12-04 17:40:00.000001+00'),
          ('2026-12-04 17:40:00.12+00', '2026-12-04 17:40:00.123456+00'),
          ('0999-01-01 01:02:03.4+00', '0001-01-01 00:00:00+00'),
          ('9999-12-31 23:59:59.999999+00', '0044-03-15 12:00:00+00 BC'),
          ('10000-01-01 00:00:00+00', 'infinity'),
          ('-infinity', '2000-02-29 12:00:00.05+00')) t(at, content_at)
  WHERE c.name = 'a2'" >/dev/null
is "$?" 0 "log rows with edge timestamps written"
psql -XAtq -c "ALTER TABLE crier.dispatch_log DISABLE TRIGGER append_only;
  UPDATE crier.dispatch_log SET actor = left(actor, -1) WHERE id = $nth;
  ALTER TABLE crier.dispatch_log ENABLE TRIGGER append_only" >/dev/null
run_crier audit seal
is "$RC" 0 "audit seal of rows with edge timestamps"
run_crier audit verify --campaign a2
is "$RC" 0 "verify: intact with them (the edit above undone)"
run_crier audit export --campaign a2 --out times.jsonl
is "$RC" 0 "audit export of the rows with edge timestamps"
"$PY" - times.jsonl >times.got <<'PY'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if "row" in d and d["row"]["actor"] == "times":
        r = d["row"]
        print(r["id"], r["at"], r["content_at"])
PY
psql -XAtq -F ' ' -c "SELECT id, coalesce(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'None'),
  coalesce(to_char(content_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'None')
  FROM crier.dispatch_log WHERE actor = 'times' ORDER BY id" >times.want
is "$(wc -l <times.got)" 7 "the export has the seven rows"
is "$(cat times.got)" "$(cat times.want)" "each hashed timestamp is to_char()'s text, to the byte"
# audit log reads them the same way
run_crier audit log a2 --format json
is "$RC" 0 "audit log of the rows with edge timestamps"
printf '%s\n' "$OUT" | "$PY" -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["actor"] == "times":
        print(r["id"], r["at"], r["content_at"])' >times.log
is "$(cat times.log)" "$(cat times.want)" "audit log prints each as to_char() does"
# a server whose DateStyle is not ISO: crier's sessions set their own, and the texts are the same
PGOPTIONS="-c DateStyle=SQL,DMY" run_crier audit export --campaign a2 --out times2.jsonl
is "$RC" 0 "audit export under DateStyle SQL, DMY"
ok "the same export, byte for byte" cmp -s times.jsonl times2.jsonl
PGOPTIONS="-c DateStyle=SQL,DMY" run_crier audit verify --campaign a2
is "$RC" 0 "and verify under it: intact"

# --- a fax sent in an earlier crier's fonts -------------------------------------------------
# crier draws in Crier Sans (channels/sans_font.py); without its fonts it draws in the
# system's DejaVu Sans, as crier did before them: audit show proves such a fax by drawing
# it again in each earlier rendering (compose_earlier), and says which
a1_fax=$(ls -t "$WORK"/fax/*.pdf | head -1)
like "$(pdffonts "$a1_fax")" "\+CrierSans " "a1's fax is drawn in Crier Sans"
unlike "$(pdffonts "$a1_fax")" "DejaVuSans" "and in nothing else"
audit_config "Example Corp <privacy@example.com>"
printf 'ref,name,email,fax,address1,address2,city,region,postal_code,country\ng1,Older Fax,,+12125550177,,,,,,US\n' >older.csv
setup a3 fax older.csv
CRIER_FONTS_DIR=$WORK/no-fonts run_until_idle
is "$?" 0 "crier run without crier's fonts sends a3's fax"
a3_fax=$(ls -t "$WORK"/fax/*.pdf | head -1)
like "$(pdffonts "$a3_fax")" "\+DejaVuSans " "that fax is drawn in DejaVu Sans"
unlike "$(pdffonts "$a3_fax")" "CrierSans" "and not in Crier Sans"
run_crier audit show a3 g1 --out older
is "$RC" 0 "audit show of the fax in the earlier fonts: exit 0"
like "$OUT" "content verified \(re-rendered, same SHA-256\)" "its content verified"
like "$OUT" "rendered as an earlier crier did \(DejaVu Sans\)" "by the earlier rendering, named"
is "$(sha256sum older/*-fax.pdf | cut -d' ' -f1)" "$(sha256sum "$a3_fax" | cut -d' ' -f1)" \
  "the re-rendered fax is byte for byte the PDF the gateway received"
run_crier audit show a1 f1
unlike "$OUT" "earlier crier" "a fax in today's fonts is proven by today's rendering"

done_testing
