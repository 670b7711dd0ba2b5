#!/bin/bash
# roles.sh - the three roles of 002_holds.sql (and 005_roles.sql), each proved by logging in
# as a member of it and running the real crier commands and plain SQL (issue 8, "Access";
# docs/security.md): crier_operator runs a campaign alone from create to the last letter
# (its first load included), reads the holds, and may not place, lift or confirm one, nor
# rewrite a campaign, a recipient or the log; crier_legal handles holds and reads, and
# every command that changes a campaign is refused by the database, leaving nothing behind;
# crier_auditor reads and is refused everything else; a login with none of the roles can
# do nothing at all, every command failing with a permission error and no partial state.
# tests/integration/holds.sh already proves some refusals (operator hold place, legal
# pause, auditor lift and pause, ...): they are not repeated here.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

# --- the logins --------------------------------------------------------------------------------
suffix=$$
users=(operator legal auditor none alice bob)
for who in operator legal auditor; do
  sql "CREATE ROLE r_${who}_$suffix LOGIN PASSWORD 'pw' IN ROLE crier_$who" >/dev/null
done
sql "CREATE ROLE r_none_$suffix LOGIN PASSWORD 'pw'" >/dev/null
roles_cleanup() {
  local who
  for who in "${users[@]}"; do
    psql -XAtq -d postgres -c "DROP ROLE IF EXISTS r_${who}_$suffix" 2>/dev/null
  done
}
# the database first (lib.sh's cleanup), then the logins that had privileges in it
trap 'rc=$?; cleanup; roles_cleanup; exit $rc' EXIT

# as WHO COMMAND... - run COMMAND logged in as r_WHO (a member of crier_WHO), over TCP
as() { local who=$1; shift; PGUSER=r_${who}_$suffix PGPASSWORD=pw PGHOST=localhost "$@"; }
# allowed WHO QUERY - the database runs QUERY for WHO
allowed() {
  local err
  err=$(as "$1" psql -XAtq -v ON_ERROR_STOP=1 -c "$2" 2>&1 >/dev/null) || { echo "#   $err"; return 1; }
}
# denied WHO QUERY - the database refuses QUERY to WHO: permission denied (or must be owner)
denied() {
  local err
  err=$(as "$1" psql -XAtq -v ON_ERROR_STOP=1 -c "$2" 2>&1 >/dev/null) && { echo "#   ran"; return 1; }
  [[ $err == *"permission denied"* || $err == *"must be owner"* ]] || { echo "#   $err"; return 1; }
}
# refused WHO DESCRIPTION ARGS... - `crier ARGS` as WHO exits 77 naming the database's refusal
refused() {
  local who=$1 description=$2; shift 2
  as "$who" run_crier "$@"
  is "$RC" 77 "$who: crier $description is refused (77)"
  [[ $ERR == *"permission denied"* ]] || echo "#   stderr: ${ERR:0:300}"
  like "$ERR" "permission denied" "$who: crier $description says the database refused the role"
}
# works WHO DESCRIPTION ARGS... - `crier ARGS` as WHO exits 0
works() {
  local who=$1 description=$2; shift 2
  as "$who" run_crier "$@"
  is "$RC" 0 "$who: crier $description works"
  [ "$RC" = 0 ] || echo "#   stderr: ${ERR:0:300}"
}
# snapshot - every row crier keeps, and the tables of its schema, as one hash: equal before
# and after a refused command means it left nothing behind
snapshot() {
  sql "SELECT md5(concat_ws('|',
         (SELECT string_agg(concat_ws(',', id, name, state, holds_placed, started_at, finished_at), ';' ORDER BY id) FROM crier.campaign),
         (SELECT string_agg(concat_ws(',', id, rows_read, loaded), ';' ORDER BY id) FROM crier.list_load),
         (SELECT string_agg(concat_ws(',', id, state, channel, attempt, next_attempt_at, lease_owner), ';' ORDER BY id) FROM crier.notice),
         (SELECT count(*) FROM crier.recipient), (SELECT max(id) FROM crier.dispatch_log),
         (SELECT count(*) FROM crier.dispatch_log), (SELECT count(*) FROM crier.hold),
         (SELECT count(*) FROM crier.hold_lift), (SELECT count(*) FROM crier.hold_confirm),
         (SELECT count(*) FROM crier.worker),
         (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
          WHERE relnamespace = 'crier'::regnamespace)))"
}
count_notices() { # NAME [STATE]
  local state_filter=""
  [ -n "${2:-}" ] && state_filter="AND state = '$2'"
  sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign "$1") $state_filter"
}
campaign_state() { sql "SELECT state FROM crier.campaign WHERE name = '$1'"; }

# --- the configuration every login uses: email to a capture peer, letters to a spool ---------
mkdir -p "$WORK/cap" "$WORK/spool"
start_peer cap "$PY" "$TESTS_DIR/peers/smtp_capture.py" "$WORK/cap" 0
smtp_port=$PORT
write_config "channels:
  email:
    lanes: 1
    smtp: {host: 127.0.0.1, port: $smtp_port, timeout: 5}
    from: \"Example Corp <privacy@example.com>\"
    bounce_domain: bounces.example.com
  mail:
    lanes: 1
    spool: $WORK/spool
    letters_per_batch: 10
    batch_window: 1s
    return_address: |
      Example Corp Privacy Office
      100 Main Street
      Springfield, IL 62701
  test: {}"
export CRIER_CONFIG="$WORK/crier.yaml"
chmod -R a+rwX "$WORK"  # the logins are database roles, not Unix users: nothing to gain here
chmod 0750 "$WORK/spool"  # but crier refuses a print spool open to others (print_spool_check)

header() { echo "ref,name,email,address1,city,region,postal_code"; }
{ header
  for i in 1 2 3; do echo "e$i,Person E$i,e$i@example.com,$i Main St,Houston,TX,77001"; done
  for i in 1 2 3; do echo "m$i,Person M$i,,$i Oak St,Chicago,IL,60601"; done; } >first.csv
{ header; echo "e4,Person E4,e4@example.com,4 Main St,Houston,TX,77001"; } >second.csv

# --- crier_operator runs a campaign from create to the last letter, alone ---------------------
works operator "campaign create" campaign create ops --incident INC-ops --policy email,mail --meta "$META"
is "$(sql "SELECT created_by FROM crier.campaign WHERE name = 'ops'")" "r_operator_$suffix" \
  "the campaign records the operator's login"
works operator "campaign load (the campaign's first: it creates the partitions)" campaign load ops --csv first.csv
is "$(sql "SELECT string_agg(c.relname || ':' || pg_get_userbyid(c.relowner), ' ' ORDER BY c.relname)
           FROM pg_class c WHERE c.relnamespace = 'crier'::regnamespace AND c.relname ~ '_c[0-9]+$'
           AND c.relkind = 'r'")" \
  "notice_c1:$(sql "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'crier.notice'::regclass") recipient_c1:$(sql "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'crier.recipient'::regclass")" \
  "the partitions belong to the schema owner, not to the operator's login"
works operator "campaign load (a later load)" campaign load ops --csv second.csv
is "$(count_notices ops)" 7 "both loads are in: 7 notices"
works operator "campaign start" campaign start ops
works operator "campaign pause" campaign pause ops
works operator "campaign resume" campaign resume ops
as operator timeout 60 "$CRIER" run --until-idle >/dev/null 2>"$WORK/run.err"
is "$?" 0 "operator: crier run --until-idle works"
is "$(count_notices ops sent):$(count_notices ops batched)" "4:3" \
  "operator's run: 4 emails sent, 3 letters batched"
is "$(find "$WORK/cap" -name '*.eml' | wc -l)" 4 "the SMTP peer received the 4 emails"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign ops) AND actor LIKE '%:%'")" \
  "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign ops) AND event = 'transition'
                                                  AND from_state IS NOT NULL")" \
  "every transition of the run is logged with the worker that made it"
works operator "status" status ops --json
works operator "status (every campaign)" status
batch=$(find "$WORK/spool" -maxdepth 1 -name 'B*.pdf' -printf '%f\n' | sed 's/^B//; s/\.pdf$//' | sort | head -1)
ok "the operator's run wrote a print batch" test -n "$batch"
works operator "batch list" batch list ops
works operator "batch show" batch show "$batch"

# a DSN for e1: the bounce moves it on to a letter
token=$(sql "SELECT n.id || '.' || n.token FROM crier.notice n JOIN crier.recipient r
             ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq WHERE r.ref = 'e1'")
cat >dsn.eml <<EML
From: MAILER-DAEMON@mx.example.com
To: bounce+$token@bounces.example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

The message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; e1@example.com
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 no such user

--b1--
EML
chmod a+r dsn.eml

# --- crier_legal: holds and reading; refused everything that runs a campaign --------------------
works legal "status" status ops
works legal "batch list" batch list ops
before=$(snapshot)
refused legal "campaign create" campaign create legal1 --incident INC-l --policy test --meta "$META"
refused legal "campaign load" campaign load ops --csv second.csv
refused legal "campaign start" campaign start ops
refused legal "campaign cancel" campaign cancel ops
as legal timeout 60 "$CRIER" run --until-idle >/dev/null 2>"$WORK/err"
RC=$?
is "$RC" 77 "legal: crier run is refused (77)"
like "$(cat "$WORK/err")" "permission denied" "legal: crier run says the database refused the role"
refused legal "bounces ingest" bounces ingest dsn.eml
refused legal "batch mark-mailed" batch mark-mailed "$batch" --date "$(date -u +%F)"
refused legal "batch void" batch void "$batch" --reason "not legal's to void"
is "$(snapshot)" "$before" "legal's refused commands left nothing behind"

# holds: legal places an oral hold on e4's region, confirms it, lifts another
works legal "hold place" hold place ops --region tx --authority FBI --official "SA Roe" --case K-1 --form oral --reason "ongoing"
oral=$(sql "SELECT max(id) FROM crier.hold")
echo "the agency's letter" >confirm.txt
chmod a+r confirm.txt
works legal "hold confirm" hold confirm "$oral" --written --document confirm.txt
is "$(sql "SELECT confirmed_by FROM crier.hold_confirm WHERE hold_id = $oral")" "r_legal_$suffix" \
  "the confirmation records legal's login"
works legal "hold list" hold list ops
works legal "hold show" hold show "$oral"
as legal run_crier hold check
is "$RC" 0 "legal: crier hold check works (0: nothing lapsed)"
works legal "hold place (a second, written)" hold place ops --recipient m1 --authority FBI --official "SA Roe" --case K-2 --form written --reason "r"
written=$(sql "SELECT max(id) FROM crier.hold")

# direct SQL as legal
ok "legal: INSERT INTO crier.campaign refused" denied legal \
  "INSERT INTO crier.campaign (name, incident, policy) VALUES ('sneak', 'x', '{test}')"
ok "legal: DELETE FROM crier.notice refused" denied legal "DELETE FROM crier.notice WHERE false"
ok "legal: INSERT INTO crier.notice refused" denied legal \
  "INSERT INTO crier.notice (id, campaign_id, recipient_seq, token, state, channel, channel_index)
   VALUES (4294967296 * 1 + 99, 1, 99, 't', 'ready', 'test', 0)"
ok "legal: UPDATE crier.dispatch_log refused" denied legal "UPDATE crier.dispatch_log SET detail = 'x' WHERE false"
ok "legal: DELETE FROM crier.dispatch_log refused" denied legal "DELETE FROM crier.dispatch_log WHERE false"
ok "legal: SELECT crier.partitions_create refused" denied legal "SELECT crier.partitions_create(1)"

# --- the operator reads holds, and may not make or end one ---------------------------------
works operator "hold list" hold list ops
works operator "hold show" hold show "$oral"
works operator "hold check" hold check
before=$(snapshot)
refused operator "hold lift" hold lift "$written" --evidence "the operator would like to send"
refused operator "hold confirm" hold confirm "$written" --written --document confirm.txt
is "$(snapshot)" "$before" "the operator's refused hold commands left nothing behind"
works operator "bounces ingest" bounces ingest dsn.eml
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign ops) AND event = 'bounce'")" 1 \
  "the operator's ingest applied the DSN"
works operator "batch mark-mailed" batch mark-mailed "$batch" --date "$(date -u +%F)" --evidence "PS 3602 1"
ok "the letters of batch $batch are mailed" test "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign ops) AND state = 'mailed'")" -gt 0
# a letter the post office brought back: only the operator records it
printf 'ref,reason\nm2,moved, left no address\n' >returns.csv
chmod a+r returns.csv
before=$(snapshot)
refused legal "returns ingest" returns ingest returns.csv --campaign ops
refused auditor "returns ingest" returns ingest returns.csv --campaign ops
refused none "returns ingest" returns ingest returns.csv --campaign ops
is "$(snapshot)" "$before" "the refused returns ingests left nothing behind"
works operator "returns ingest" returns ingest returns.csv --campaign ops
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign ops) AND event = 'returned'")" 1 \
  "the operator's returns ingest recorded the returned letter"

# substitute notice: recording the posting and the media notice is the operator's act
today=$(date -u +%F)
before=$(snapshot)
refused legal "substitute posted" substitute posted ops --url https://example.com/n --from "$today" --until "$today"
refused auditor "substitute media" substitute media ops --outlet "The Daily" --date "$today" --state NY
refused none "substitute posted" substitute posted ops --url https://example.com/n --from "$today" --until "$today"
is "$(snapshot)" "$before" "the refused substitute records left nothing behind"
is "$(sql "SELECT count(*) FROM crier.substitute_record")" 0 "and no substitute record"
works auditor "substitute (the assessment reads)" substitute ops
works legal "substitute (the assessment reads)" substitute ops
works operator "substitute media" substitute media ops --outlet "The Daily" --date "$today" --state NY
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign ops) AND event = 'substitute'")" 1 \
  "the operator's media notice is in the dispatch log"
ok "legal: INSERT INTO crier.substitute_record refused" denied legal \
  "INSERT INTO crier.substitute_record (campaign_id, kind, detail) VALUES (1, 'written', 'x')"
ok "auditor: INSERT INTO crier.substitute_email refused" denied auditor \
  "INSERT INTO crier.substitute_email (campaign_id, email_campaign_id) VALUES (1, 2)"
ok "operator: UPDATE crier.substitute_record refused" denied operator \
  "UPDATE crier.substitute_record SET detail = 'x' WHERE false"
ok "operator: DELETE FROM crier.substitute_email refused" denied operator \
  "DELETE FROM crier.substitute_email WHERE false"

# direct SQL as the operator: what running needs, and nothing that rewrites the record
ok "operator: UPDATE crier.notice (the engine's own work) runs" allowed operator \
  "UPDATE crier.notice SET updated_at = updated_at WHERE false"
ok "operator: INSERT INTO crier.dispatch_log (the engine logs) runs" allowed operator \
  "BEGIN; INSERT INTO crier.dispatch_log (campaign_id, event, actor) VALUES (1, 'campaign', 'x'); ROLLBACK"
ok "operator: UPDATE crier.campaign SET state runs" allowed operator \
  "UPDATE crier.campaign SET state = state WHERE false"
ok "operator: DELETE FROM crier.notice refused" denied operator "DELETE FROM crier.notice WHERE false"
ok "operator: TRUNCATE crier.notice refused" denied operator "TRUNCATE crier.notice"
ok "operator: UPDATE crier.dispatch_log refused" denied operator "UPDATE crier.dispatch_log SET detail = 'x' WHERE false"
ok "operator: DELETE FROM crier.dispatch_log refused" denied operator "DELETE FROM crier.dispatch_log WHERE false"
ok "operator: TRUNCATE crier.dispatch_log refused" denied operator "TRUNCATE crier.dispatch_log"
ok "operator: UPDATE crier.hold refused" denied operator "UPDATE crier.hold SET reason = reason WHERE false"
ok "operator: DELETE FROM crier.hold refused" denied operator "DELETE FROM crier.hold WHERE false"
ok "operator: INSERT INTO crier.hold_confirm refused" denied operator \
  "INSERT INTO crier.hold_confirm (hold_id, document_name, document_sha256, document)
   VALUES ($written, 'x', encode(sha256('\\x00'::bytea), 'hex'), '\\x00'::bytea)"
ok "operator: DELETE FROM crier.campaign refused" denied operator "DELETE FROM crier.campaign WHERE false"
ok "operator: UPDATE crier.campaign SET holds_placed refused (only a placement counts)" denied operator \
  "UPDATE crier.campaign SET holds_placed = 0 WHERE false"
ok "operator: UPDATE crier.campaign SET policy refused" denied operator \
  "UPDATE crier.campaign SET policy = '{test}' WHERE false"
ok "operator: UPDATE crier.recipient refused (the snapshot)" denied operator \
  "UPDATE crier.recipient SET email = 'x@example.com' WHERE false"
ok "operator: ALTER TABLE crier.hold DISABLE TRIGGER refused" denied operator \
  "ALTER TABLE crier.hold DISABLE TRIGGER hold_stamp"
ok "operator: DROP TABLE crier.notice refused" denied operator "DROP TABLE crier.notice"
ok "operator: CREATE TABLE in schema crier refused" denied operator "CREATE TABLE crier.mine (x int)"
ok "operator: detaching a partition by hand refused" denied operator \
  "ALTER TABLE crier.notice DETACH PARTITION crier.notice_c1"

# the operator cancels a second campaign
works operator "campaign create (2)" campaign create ops2 --incident INC-ops2 --policy test --meta "$META"
works operator "campaign load (2)" campaign load ops2 --csv second.csv
works operator "campaign cancel" campaign cancel ops2
is "$(campaign_state ops2):$(count_notices ops2 cancelled)" "cancelled:1" "the cancel took: campaign and notice cancelled"

# --- crier_auditor reads, and nothing else ----------------------------------------------------
works auditor "status" status ops --json
works auditor "hold list" hold list
works auditor "hold show" hold show "$written"
works auditor "hold check" hold check
works auditor "batch list" batch list ops
works auditor "batch show" batch show "$batch"
ok "auditor: SELECT on the dispatch log runs" allowed auditor "SELECT count(*) FROM crier.dispatch_log"
ok "auditor: SELECT on crier.hold_coverage runs" allowed auditor "SELECT count(*) FROM crier.hold_coverage"
before=$(snapshot)
refused auditor "campaign create" campaign create aud1 --incident INC-a --policy test --meta "$META"
refused auditor "campaign load" campaign load ops --csv second.csv
refused auditor "campaign start" campaign start ops
refused auditor "campaign cancel" campaign cancel ops
as auditor timeout 60 "$CRIER" run --until-idle >/dev/null 2>"$WORK/err"
RC=$?
is "$RC" 77 "auditor: crier run is refused (77)"
like "$(cat "$WORK/err")" "permission denied" "auditor: crier run says the database refused the role"
refused auditor "bounces ingest" bounces ingest dsn.eml
refused auditor "hold place" hold place ops --authority A --official O --case C --form written --reason R
refused auditor "hold confirm" hold confirm "$written" --written --document confirm.txt
refused auditor "batch mark-mailed" batch mark-mailed "$batch" --date "$(date -u +%F)"
refused auditor "batch void" batch void "$batch" --reason "not the auditor's to void"
for stmt in "INSERT INTO crier.campaign (name, incident, policy) VALUES ('sneak', 'x', '{test}')" \
            "DELETE FROM crier.campaign WHERE false" \
            "UPDATE crier.notice SET state = 'ready' WHERE false" \
            "DELETE FROM crier.notice WHERE false" \
            "UPDATE crier.dispatch_log SET detail = 'x' WHERE false" \
            "DELETE FROM crier.dispatch_log WHERE false" \
            "INSERT INTO crier.hold (campaign_id, authority, official, case_ref, form, reason) VALUES (1, 'a', 'o', 'c', 'written', 'r')" \
            "UPDATE crier.hold SET reason = reason WHERE false" \
            "DELETE FROM crier.hold WHERE false"; do
  ok "auditor: ${stmt%% WHERE*} refused" denied auditor "$stmt"
done
is "$(snapshot)" "$before" "the auditor's refused commands left nothing behind"

# --- a login with none of the roles can do nothing -------------------------------------------
before=$(snapshot)
for cmd in "campaign create nobody --incident INC-n --policy test --meta $META" \
           "campaign load ops --csv second.csv" "campaign start ops" "campaign pause ops" \
           "campaign resume ops" "campaign cancel ops" "campaign list" "status" "status ops" \
           "hold place ops --authority A --official O --case C --form written --reason R" \
           "hold lift $written --evidence E" "hold confirm $written --written --document confirm.txt" \
           "hold list" "hold show $written" "hold check" "batch list ops" "batch show $batch" \
           "batch mark-mailed $batch --date $(date -u +%F)" "bounces ingest dsn.eml"; do
  # shellcheck disable=SC2086 # the words of the command
  refused none "${cmd%% --*}" $cmd
done
as none timeout 60 "$CRIER" run --until-idle >/dev/null 2>"$WORK/err"
RC=$?
is "$RC" 77 "none: crier run is refused (77)"
like "$(cat "$WORK/err")" "permission denied" "none: crier run says the database refused the role"
for stmt in "SELECT count(*) FROM crier.notice" "SELECT count(*) FROM crier.dispatch_log" \
            "SELECT count(*) FROM crier.hold" "UPDATE crier.notice SET state = 'ready' WHERE false" \
            "INSERT INTO crier.dispatch_log (campaign_id, event, actor) VALUES (1, 'campaign', 'x')" \
            "UPDATE crier.campaign SET state = 'running' WHERE false" "SELECT crier.partitions_create(1)"; do
  ok "none: ${stmt%% WHERE*} refused" denied none "$stmt"
done
is "$(snapshot)" "$before" "the role-less login's commands left nothing behind"

# --- crier db roles: what migrate needs, and who has it ----------------------------------------
run_crier db roles
is "$RC" 0 "db roles as the schema owner exits 0"
like "$OUT" "so db migrate can run" "db roles: the owner can run db migrate"
like "$OUT" "crier_legal +yes .*holds" "db roles: crier_legal exists and what it may do"
like "$OUT" "members: .*r_legal_$suffix" "db roles: its members"
run_crier db roles --json
is "$(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
roles = {r["role"]: r for r in d["roles"]}
print(d["migrate_can_run"], sorted(roles), sys.argv[2] in roles["crier_auditor"]["members"])' "$OUT" "r_auditor_$suffix" 2>&1)" \
  "True ['crier_auditor', 'crier_legal', 'crier_operator'] True" "db roles --json: the verdict, the three roles, their members"
as operator run_crier db roles
is "$RC" 1 "db roles as the operator exits 1: db migrate could not run as it"
like "$OUT" "cannot run: schema crier belongs to another role" "and says why"
like "$OUT" "user add needs CREATEROLE: NO" "and that it may not add users"

# --- crier user add: a login in one role, its password from a closed file -------------------------
alice=r_alice_$suffix
printf 'alice-s3cret\n' >"$WORK/alice.pw"
chmod 644 "$WORK/alice.pw"
run_crier user add "$alice" --role legal --password-file "$WORK/alice.pw"
is "$RC" 77 "user add refuses a password file others may read (77)"
is "$ERR" "crier user add: $WORK/alice.pw is mode 0644: a password file must be closed to group and others (chmod 600 $WORK/alice.pw)" \
  "and names the file and its mode"
is "$(sql "SELECT count(*) FROM pg_roles WHERE rolname = '$alice'")" 0 "and creates nothing"
chmod 600 "$WORK/alice.pw"
run_crier user add "$alice" --role legal --password-file "$WORK/alice.pw"
is "$RC:$OUT" "0:login $alice created in crier_legal" "user add creates a login in crier_legal"
is "$(sql "SELECT r.rolcanlogin, g.rolname FROM pg_roles r JOIN pg_auth_members a ON a.member = r.oid
           JOIN pg_roles g ON g.oid = a.roleid WHERE r.rolname = '$alice'")" "t|crier_legal" \
  "it can log in and is a member of crier_legal, of nothing else"
is "$(sql "SELECT rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = '$alice'")" t \
  "the server holds a SCRAM hash (hashed by crier, not sent in clear)"
PGUSER=$alice PGPASSWORD=alice-s3cret PGHOST=localhost run_crier hold list
is "$RC" 0 "the new login logs in with the password from the file, and lists the holds"
PGUSER=$alice PGPASSWORD=alice-s3cret PGHOST=localhost run_crier campaign pause ops
is "$RC" 77 "and, as legal, may not pause a campaign (77)"
run_crier user add "$alice" --role auditor --password-file "$WORK/alice.pw"
is "$RC" 65 "user add of an existing role: 65"
like "$ERR" "role $alice exists already \(to add it to crier_auditor: GRANT crier_auditor TO $alice\)" "and says how to add it"
run_crier user add "r_bob_$suffix" --role admin --password-file "$WORK/alice.pw"
is "$RC" 64 "user add --role admin: 64"
like "$ERR" "--role must be operator, legal or auditor, not 'admin'" "and names the roles"
run_crier user add "Bob; DROP ROLE x" --role legal --password-file "$WORK/alice.pw"
is "$RC" 64 "user add of a name that is no plain identifier: 64"
setsid -w "$CRIER" user add "r_bob_$suffix" --role legal </dev/null >"$WORK/out" 2>"$WORK/err"
is "$?:$(cat "$WORK/err")" "64:crier user add: no terminal to ask for the password on: give --password-file FILE" \
  "user add without --password-file and without a terminal: 64, and no password taken from elsewhere"
as operator run_crier user add "r_bob_$suffix" --role operator --password-file "$WORK/alice.pw"
is "$RC" 77 "user add as the operator (no CREATEROLE): 77"
like "$ERR" "permission denied to create role.*needs CREATEROLE: crier db roles" "and says what it needs"
is "$(sql "SELECT count(*) FROM pg_roles WHERE rolname = 'r_bob_$suffix'")" 0 "no bob was created by any refused call"
# shellcheck disable=SC2016 # expanded by the inner bash
ok "user add takes no --password option (never in argv)" bash -c '! "$1" user add --help | grep -q -- "--password "' _ "$CRIER"

done_testing
