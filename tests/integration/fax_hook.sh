#!/bin/bash
# fax_hook.sh - the fax status webhook of `crier serve` (issue 18; docs/fax.md, "The status
# webhook") against a real PostgreSQL, a real crier serve and crier run, and
# tests/peers/fax_gateway.py posting its callbacks in the Sinch shape: with polling slowed
# to an hour, faxes become final through the webhook alone (multipart/form-data, Sinch's
# default, and JSON), recorded as the poller records them and marked "(webhook)"; a FAILURE
# falls back as polled; a forged secret, a replayed callback, a callback naming another
# fax's id and an unknown fax change nothing; malformed bodies are 400 naming what is
# wrong; the webhook's login is refused when it has more rights than crier_fax_hook; two
# deliveries of one callback racing on a locked notice record once; and the real poller
# racing the webhook over 30 faxes records each fax's end exactly once, never polling a
# fax after the webhook finished it.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PEER="$TESTS_DIR/peers/fax_gateway.py"
export FAX_SECRET=fax-api-secret-$$
HOOK_SECRET=hook-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
hook_user=t_hook_$$
sql "CREATE ROLE $hook_user LOGIN PASSWORD 'pw' IN ROLE crier_fax_hook" >/dev/null
ROLE_LOGINS+=("$hook_user")
# a login in crier_fax_hook that is also an operator: too many rights for the webhook
sql "CREATE ROLE t_both_$$ LOGIN PASSWORD 'pw' IN ROLE crier_fax_hook, crier_operator" >/dev/null
ROLE_LOGINS+=("t_both_$$")
printf '%s\n' "$HOOK_SECRET" >"$WORK/hook.secret"
chmod 600 "$WORK/hook.secret"
# the webhook's login: its password in a passfile, as libpq reads it (crier serve runs without
# pg_virtualenv's PGPASSWORD, which libpq would prefer to the passfile)
pgpass() { printf '*:*:*:%s:pw\n' "$1" >"$WORK/$1.pgpass"; chmod 600 "$WORK/$1.pgpass"; }
pgpass "$hook_user"
pgpass "t_both_$$"

# what crier_fax_hook may not do (015_fax_hook.sql): the database refuses it
for query in "UPDATE crier.campaign SET state = 'paused'" \
  "SELECT id FROM crier.campaign FOR SHARE" \
  "SELECT count(*) FROM crier.dispatch_log" \
  "SELECT count(*) FROM crier.hold" \
  "SELECT count(*) FROM crier.login_log" \
  "SELECT count(*) FROM crier.recipient" \
  "DELETE FROM crier.notice" \
  "UPDATE crier.notice SET lease_owner = 'x'" \
  "INSERT INTO crier.hold (campaign_id) VALUES (1)"; do
  ok "crier_fax_hook is refused: $query" denied hook "$query"
done
# (no campaign yet: no policy to print, and nothing to lock)
is "$(as hook psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT policy FROM crier.campaign LIMIT 1" \
  -c "BEGIN" -c "SELECT count(*) FROM crier.campaign_share('{1}')" -c "COMMIT" 2>&1)" 0 \
  "crier_fax_hook may read a campaign's policy and lock it through campaign_share"

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
hook_url="$base/hooks/fax/$HOOK_SECRET"

# start_gateway NAME [ARGS...] - a gateway whose callbacks and status GETs are logged
start_gateway() {
  local name=$1; shift
  mkdir -p "$WORK/$name.cb"
  start_peer "$name" "$PY" "$PEER" --secret "$FAX_SECRET" --log "$WORK/$name.log" \
    --callback-log "$WORK/$name.callbacks" --callback-save-dir "$WORK/$name.cb" \
    --status-log "$WORK/$name.gets" "$@"
}
# config NAME GATEWAY_PORT POLL_INTERVAL [WEBHOOK_USER] - NAME.yaml: the fax channel posting
# callbacks to crier serve, and serve.fax_webhook logging in as WEBHOOK_USER
config() {
  write_config "channels:
  fax:
    lanes: 1
    batch_size: 10
    provider: sinch
    base_url: http://127.0.0.1:$2
    project_id: proj-test
    key_id: key-test
    key_secret_env: FAX_SECRET
    from: \"+12125550100\"
    callback_url: $hook_url
    poll_interval: $3
    timeout: 5s
  null: {}
serve:
  fax_webhook:
    secret_file: $WORK/hook.secret
    conninfo: host=${PGHOST:-localhost} dbname=$PGDATABASE user=${4:-$hook_user} passfile=$WORK/${4:-$hook_user}.pgpass"
  mv "$WORK/crier.yaml" "$WORK/$1.yaml"
}
history() { # CAMPAIGN REF
  sql "SELECT string_agg(channel || ':' || coalesce(from_state, '-') || '>' || to_state
                         || coalesce('>' || to_channel, ''), ' ' ORDER BY id)
       FROM crier.dispatch_log WHERE $(in_campaign "$1") AND recipient_ref = '$2' AND event = 'transition'"
}
# snapshot - every notice's row and the log's size: equal before and after = nothing changed
snapshot() {
  sql "SELECT md5(concat_ws('|', (SELECT string_agg(concat_ws(',', id, state, channel, transport_id,
         next_attempt_at, updated_at, reasons), ';' ORDER BY id) FROM crier.notice),
         (SELECT count(*) FROM crier.dispatch_log)))"
}
# post BODY_FILE CONTENT_TYPE [URL] - POST to the webhook; sets CODE and BODY
post() {
  local reply="$WORK/reply.$BASHPID" # its own file: two posts may run at once
  CODE=$(curl -s -o "$reply" -w '%{http_code}' -H "Content-Type: $2" \
    --data-binary "@$1" "${3:-$hook_url}")
  BODY=$(cat "$reply")
}
# fax_json NOTICE_TOKEN FAX_ID STATUS - a FAX_COMPLETED event in the Sinch shape, as JSON
fax_json() {
  "$PY" -c 'import json, sys
token, fax_id, status = sys.argv[1:4]
fax = {"id": fax_id, "direction": "OUTBOUND", "status": status, "to": "+12125550000",
       "labels": {"crier_notice": token, "crier_attempt": "1"}}
if status == "FAILURE":
    fax.update(errorType="CALL_ERROR", errorMessage="line busy")
print(json.dumps({"event": "FAX_COMPLETED", "eventTime": "2026-01-01T00:00:00Z", "fax": fax}))' "$@"
}

serve_pid=""
start_serve() { # CONFIG - crier serve with that configuration; sets serve_pid
  env -u PGPASSWORD "$CRIER" -c "$WORK/$1.yaml" serve --listen "127.0.0.1:$port" >"$WORK/serve.out" 2>>"$WORK/serve.log" &
  serve_pid=$!
  for _ in $(seq 300); do
    grep -q "^listening on" "$WORK/serve.out" && return 0
    kill -0 "$serve_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
stop_serve() { kill -TERM "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; }

# --- a login with more rights than the webhook needs is refused ----------------------------
start_gateway gw
gw_port=$PORT
config too_much "$gw_port" 1h "t_both_$$"
timeout 20 env -u PGPASSWORD "$CRIER" -c "$WORK/too_much.yaml" serve --listen "127.0.0.1:$port" >/dev/null 2>"$WORK/err"
RC=$?
ERR=$(cat "$WORK/err")
is "$RC" 78 "crier serve refuses a webhook login that is also in crier_operator (EX_CONFIG)"
like "$ERR" "has more rights than the webhook needs" "and says why"

write_config "serve:
  fax_webhook: {secret_file: $WORK/hook.secret, conninfo: dbname=$PGDATABASE}"
timeout 20 env -u PGPASSWORD "$CRIER" -c "$WORK/crier.yaml" serve --listen "127.0.0.1:$port" >/dev/null 2>"$WORK/err"
is "$?" 78 "crier serve refuses a webhook when channels.fax describes no gateway (EX_CONFIG)"
like "$(cat "$WORK/err")" "channels.fax does not describe a gateway" "and says so"
printf 'short\n' >"$WORK/short.secret"; chmod 600 "$WORK/short.secret"
sed -i "s|$WORK/hook.secret|$WORK/short.secret|" "$WORK/too_much.yaml"
timeout 20 env -u PGPASSWORD "$CRIER" -c "$WORK/too_much.yaml" serve --listen "127.0.0.1:$port" >/dev/null 2>"$WORK/err"
is "$?" 78 "a secret shorter than 16 characters is refused"
like "$(cat "$WORK/err")" "shorter than 16 characters" "and says so"

# --- polling slowed to an hour: the webhook alone makes faxes final (multipart) ------------
config hook "$gw_port" 1h
ok "crier serve starts with the webhook" start_serve hook
like "$(cat "$WORK/serve.log")" "the fax status webhook is on" "its log says the webhook is on"
cat >a.csv <<'CSV'
ref,name,fax
a1,Ann Lee,+12125551001
a2,Bob Ray,+12125551002
a3,Carmen Ruiz,+12125551003
af,Failing Line,+12125550000
CSV
CRIER_CONFIG="$WORK/hook.yaml" setup a fax,null a.csv
timeout 60 "$CRIER" -c "$WORK/hook.yaml" run --until-idle >/dev/null 2>>"$WORK/run.log"
is "$?" 0 "crier run --until-idle returns (polling every hour: the webhook made them final)"
is "$(sql "SELECT string_agg(r.ref || ':' || n.state || ':' || n.channel, ' ' ORDER BY n.recipient_seq)
           FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id
           AND r.seq = n.recipient_seq WHERE n.$(in_campaign a)")" "a1:delivered:fax a2:delivered:fax a3:delivered:fax af:delivered:null" \
  "three faxes delivered, the FAILURE fell back to the next channel"
is "$(history a a1)" "fax:ready>sending fax:sending>submitted fax:submitted>delivered" \
  "the webhook's row has the poller's shape: submitted -> delivered"
like "$(sql "SELECT detail || ' by ' || actor FROM crier.dispatch_log WHERE $(in_campaign a)
             AND recipient_ref = 'a1' AND to_state = 'delivered'")" \
  '^fax 01FAX[0-9]+ COMPLETED \(webhook\) by .+:[0-9]+:fax:webhook$' \
  "its detail is the poller's words marked (webhook), its actor the webhook"
like "$(sql "SELECT reasons::text FROM crier.notice WHERE $(in_campaign a) AND recipient_seq = 4")" \
  'fax: fax 01FAX[0-9]+ FAILURE: CALL_ERROR: busy or no answer after 3 tries \(webhook\)' \
  "the FAILURE's reason has the gateway's words, as polled"
is "$(awk '/"status": 200/' "$WORK/gw.callbacks" | wc -l)" 4 "the gateway got 200 for each of its 4 callbacks"
is "$(wc -l <"$WORK/gw.gets")" 0 "no fax was polled"
ok "the webhook's secret appears in no log" bash -c '! grep -qF "$1" "$2" "$3"' _ "$HOOK_SECRET" \
  "$WORK/serve.log" "$WORK/run.log"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE detail LIKE '%$HOOK_SECRET%' OR reason LIKE '%$HOOK_SECRET%'")" 0 \
  "nor in the dispatch log"

# --- replayed and forged ----------------------------------------------------------------------
a1_fax=$(sql "SELECT transport_id FROM crier.notice WHERE $(in_campaign a) AND recipient_seq = 1")
before=$(snapshot)
post "$WORK/gw.cb/$a1_fax.body" "$(cat "$WORK/gw.cb/$a1_fax.type")"
is "$CODE" 200 "the same callback again (a replay): 200, so the gateway stops"
like "$BODY" '"recorded":false' "... saying nothing was recorded"
is "$(snapshot)" "$before" "... and nothing changed"
post "$WORK/gw.cb/$a1_fax.body" "$(cat "$WORK/gw.cb/$a1_fax.type")" "$base/hooks/fax/${HOOK_SECRET%?}x"
is "$CODE" 404 "a forged secret (one character off): 404"
post "$WORK/gw.cb/$a1_fax.body" "$(cat "$WORK/gw.cb/$a1_fax.type")" "$base/hooks/email/$HOOK_SECRET"
is "$CODE" 404 "the right secret under another channel: 404"
post "$WORK/gw.cb/$a1_fax.body" "$(cat "$WORK/gw.cb/$a1_fax.type")" "$base/hooks/fax/"
is "$CODE" 404 "no secret: 404"
is "$(snapshot)" "$before" "the forged calls changed nothing"

# --- faxes still submitted (callbacks an hour late): another fax's id, unknown, malformed -----
stop_peers
start_gateway late --callback-delay-s 3600 --callback-format application/json
config late "$PORT" 1h
cat >b.csv <<'CSV'
ref,name,fax
b1,Dana Fox,+12125552001
b2,Eli Stone,+12125552002
b3,Fay Moss,+12125552003
b4,Gus Hale,+12125552004
CSV
CRIER_CONFIG="$WORK/late.yaml" setup b fax,null b.csv
"$CRIER" -c "$WORK/late.yaml" run >/dev/null 2>>"$WORK/run.log" &
runner=$!
for _ in $(seq 400); do
  [ "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign b) AND state = 'submitted' AND transport_id IS NOT NULL")" = 4 ] && break
  sleep 0.05
done
kill -TERM "$runner"; wait "$runner" 2>/dev/null
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign b) AND state = 'submitted'")" 4 \
  "campaign b: four faxes submitted, their callbacks not yet sent"
token() { sql "SELECT id || '.' || token FROM crier.notice WHERE $(in_campaign b) AND recipient_seq = $1"; }
faxid() { sql "SELECT transport_id FROM crier.notice WHERE $(in_campaign b) AND recipient_seq = $1"; }
before=$(snapshot)
fax_json "$(token 1)" "$(faxid 2)" COMPLETED >other.json
post other.json application/json
is "$CODE" 200 "b1's token with b2's fax id: 200..."
like "$BODY" '"recorded":false' "... nothing recorded"
fax_json "$(token 1)" 01FAXUNKNOWN COMPLETED >unknown.json
post unknown.json application/json
is "$CODE" 200 "an unknown fax id: 200..."
fax_json "" "$(faxid 1)" COMPLETED | sed 's/"crier_notice": ""/"x": ""/' >nolabel.json
post nolabel.json application/json
is "$CODE" 200 "b1's fax id without crier's label (not a fax crier sent): 200..."
fax_json "$(token 1)" "$(faxid 1)" IN_PROGRESS >pending.json
post pending.json application/json
is "$CODE" 200 "a status that is not final: 200..."
like "$BODY" "not a final status" "... saying so"
printf '{"event": "INCOMING_FAX", "fax": {"id": "01FAXIN", "direction": "INBOUND"}}' >incoming.json
post incoming.json application/json
is "$CODE" 200 "an incoming-fax event: 200..."
is "$(snapshot)" "$before" "... and none of them changed anything"

bad() { # BODY PATTERN DESCRIPTION
  printf '%s' "$1" >bad.json
  post bad.json application/json
  is "$CODE" 400 "$3: 400"
  like "$BODY" "$2" "... naming what is wrong"
}
bad '{"event": "FAX_COMPLETED", "fax": ' '"error":"not JSON: ' "a body cut short"
bad '[1, 2]' "not a JSON object" "a JSON array"
bad '{"fax": {"id": "x", "status": "COMPLETED"}}' "'event' is missing" "no event"
bad '{"event": "FAX_COMPLETED"}' "'fax' is missing or not an object" "no fax object"
bad '{"event": "FAX_COMPLETED", "fax": {"status": "COMPLETED"}}' "'fax.id' is missing" "no fax id"
bad "{\"event\": \"FAX_COMPLETED\", \"fax\": {\"id\": \"$(faxid 1)\"}}" "'fax.status' is missing" "no status"
bad "{\"event\": \"FAX_COMPLETED\", \"fax\": {\"id\": \"$(faxid 1)\", \"status\": \"COMPLETED\", \"labels\": {\"crier_notice\": \"12.zz\"}}}" \
  "'fax.labels.crier_notice' is not a notice token" "a token label that is not a token"
CODE=$(curl -s -o "$WORK/reply" -w '%{http_code}' -F event=FAX_COMPLETED -F 'fax={"id": ' "$hook_url")
is "$CODE" 400 "a form whose fax field is not JSON: 400"
like "$(cat "$WORK/reply")" "'fax' is missing or not an object" "... naming the field"
printf 'hello' >plain.txt
post plain.txt text/plain
is "$CODE" 415 "a text/plain body: 415"
head -c $((9 * 1024 * 1024)) /dev/zero >big.bin
post big.bin application/json
is "$CODE" 413 "a body over 8 MiB: 413"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "$hook_url")
is "$CODE" 405 "a GET with the right secret: 405"
is "$(snapshot)" "$before" "no malformed body changed anything"

# --- the right callback, then its replay; a failure falls back --------------------------------
fax_json "$(token 1)" "$(faxid 1)" COMPLETED >b1.json
post b1.json application/json
is "$CODE" 200 "b1's own callback (JSON): 200..."
like "$BODY" '"recorded":true' "... recorded"
is "$(history b b1)" "fax:ready>sending fax:sending>submitted fax:submitted>delivered" "b1 delivered"
before=$(snapshot)
post b1.json application/json
like "$BODY" '"recorded":false' "b1's callback replayed: nothing recorded"
is "$(snapshot)" "$before" "... nothing changed"
fax_json "$(token 2)" "$(faxid 2)" FAILURE >b2.json
post b2.json application/json
is "$(history b b2)" "fax:ready>sending fax:sending>submitted fax:submitted>ready>null" \
  "b2's FAILURE: ready on the policy's next channel, as the poller would"

# --- two deliveries of one callback race on a notice a transaction holds ---------------------
fax_json "$(token 3)" "$(faxid 3)" COMPLETED >b3.json
b3_id=$(sql "SELECT id FROM crier.notice WHERE $(in_campaign b) AND recipient_seq = 3")
coproc LOCKER { psql -XAtq -v ON_ERROR_STOP=1 2>&1; }
printf 'BEGIN; SELECT id FROM crier.notice WHERE id = %s FOR UPDATE;\n\\echo locked\n' "$b3_id" >&"${LOCKER[1]}"
read -r _ <&"${LOCKER[0]}"; read -r locked <&"${LOCKER[0]}"
is "$locked" locked "a transaction holds b3's row (as a poll round does)"
(post b3.json application/json; echo "$CODE $BODY" >race1) &
first=$!
(post b3.json application/json; echo "$CODE $BODY" >race2) &
second=$!
sleep 1
ok "both deliveries wait for the lock" bash -c '[ ! -s race1 ] && [ ! -s race2 ]'
# shellcheck disable=SC2153 # LOCKER_PID is set by coproc
locker_pid=$LOCKER_PID
printf 'COMMIT;\n\\q\n' >&"${LOCKER[1]}"
wait "$locker_pid"
wait "$first" "$second"
is "$(cat race1 race2 | grep -c '^200 ')" 2 "both answered 200"
is "$(cat race1 race2 | grep -c '"recorded":true')" 1 "exactly one recorded"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE notice_id = $b3_id AND from_state = 'submitted'")" 1 \
  "b3 has one final row"
stop_serve
"$CRIER" -c "$WORK/late.yaml" campaign cancel b >/dev/null # b4's callback never comes

# --- the real poller races the webhook ---------------------------------------------------------
stop_peers
start_gateway race --queued-s 0.2 --progress-s 0.2 --callback-jitter-s 1.2 --seed 7
config race "$PORT" 1s
ok "crier serve starts again" start_serve race
{ echo "ref,name,fax"; for i in $(seq -w 1 30); do echo "r$i,Person R$i,+121255530$i"; done; } >r.csv
CRIER_CONFIG="$WORK/race.yaml" setup r fax,null r.csv
timeout 120 "$CRIER" -c "$WORK/race.yaml" run --until-idle >/dev/null 2>>"$WORK/run.log"
is "$?" 0 "crier run --until-idle (polling every second, callbacks 0.4 to 1.6 s after submission)"
sleep 2.5 # the last callbacks arrive
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign r) AND state = 'delivered'")" 30 "30 delivered"
is "$(sql "SELECT count(*) FROM (SELECT notice_id FROM crier.dispatch_log WHERE $(in_campaign r)
           AND from_state = 'submitted' GROUP BY notice_id HAVING count(*) = 1) x")" 30 \
  "each fax's end recorded exactly once"
webhook=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign r) AND from_state = 'submitted' AND actor LIKE '%:webhook'")
echo "# the webhook recorded $webhook, the poller $((30 - webhook))"
is "$(awk '/"status": 200/' "$WORK/race.callbacks" | wc -l)" 30 "every callback was answered 200, recorded or not"
late_gets=$("$PY" - "$WORK/race.gets" "$(sql "SELECT coalesce(json_object_agg(n.transport_id, extract(epoch FROM l.at)), '{}')
  FROM crier.dispatch_log l JOIN crier.notice n ON n.id = l.notice_id AND n.campaign_id = l.campaign_id
  WHERE l.$(in_campaign r) AND l.from_state = 'submitted' AND l.actor LIKE '%:webhook'")" <<'PY'
import json, sys
done = json.loads(sys.argv[2])
late = [g for g in map(json.loads, open(sys.argv[1])) if g["id"] in done and g["time"] > done[g["id"]] + 1.0]
print(len(late))
PY
)
is "$late_gets" 0 "no fax was polled after the webhook finished it"
stop_serve

done_testing
