#!/bin/bash
# secrets.sh - the SMTP password and the fax gateway key never appear in crier's log lines
# (stderr, JSON, at debug level), its error messages, `crier config check`, the dispatch
# log, `crier status`, or the arguments of a running `crier run` (issue 8, "Access";
# docs/security.md). Tested with distinctive secrets, with the right ones (SMTP AUTH
# against tests/peers/smtp_auth.py, HTTP Basic against the fax gateway peer) and with
# failures that tend to echo things: a wrong password at a relay that repeats back the
# credentials it was sent (in clear and in base64) in its refusals, a gateway that answers
# 401 repeating the Authorization header, a wrong database password in database.conninfo.
# And a file holding a secret that its group or others can read is refused (exit 78), naming
# it and its mode, unless secrets.readable_by allows that reader: then a warning, once per
# file however many lanes read it; a private one gets neither.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

SMTP_SECRET="smtpPw-$RANDOM$$-Kq7"
FAX_SECRET="faxKey-$RANDOM$$-Zr4"
WRONG_SMTP="wrongPw-$RANDOM$$-Xv2"
WRONG_FAX="wrongKey-$RANDOM$$-Yw8"
DB_SECRET="dbPw-$RANDOM$$-Jh3"
b64() { printf '%b' "$1" | base64 -w0; }
# every form in which a secret could leak: in clear, and as SMTP AUTH or HTTP Basic send it
FORMS=("$SMTP_SECRET" "$FAX_SECRET" "$WRONG_SMTP" "$WRONG_FAX" "$DB_SECRET"
       "$(b64 "\\0crier\\0$SMTP_SECRET")" "$(b64 "\\0crier\\0$WRONG_SMTP")"
       "$(b64 "$SMTP_SECRET")" "$(b64 "$WRONG_SMTP")"
       "$(b64 "key-test:$FAX_SECRET")" "$(b64 "key-test:$WRONG_FAX")"
       # a part of one, as an excerpt cut short would leave it
       "${SMTP_SECRET:0:10}" "${FAX_SECRET:0:10}" "${WRONG_SMTP:0:10}" "${WRONG_FAX:0:10}"
       "${DB_SECRET:0:8}")
# leaks FILE... - the secret forms found in the files (none: prints nothing, fails)
leaks() {
  local form
  for form in "${FORMS[@]}"; do grep -lF -- "$form" "$@" 2>/dev/null | sed "s|^|${form:0:12}... in |"; done
}
# clean DESCRIPTION FILE... - no secret form in the files
clean() {
  local description=$1; shift
  local found
  found=$(leaks "$@")
  is "$found" "" "$description"
}
# log_clean DESCRIPTION - and none in the dispatch log either
db_text() {
  sql "SELECT coalesce(detail, '') || ' ' || coalesce(reason, '') || ' ' || actor FROM crier.dispatch_log;
       SELECT array_to_string(reasons, ' ') FROM crier.notice" >"$WORK/db.txt"
}

mkdir -p "$WORK/smtp" "$WORK/gw"
start_peer smtp "$PY" "$TESTS_DIR/peers/smtp_auth.py" "$WORK/smtp" 0 --user crier --password "$SMTP_SECRET"
smtp_port=$PORT
start_peer gw "$PY" "$TESTS_DIR/peers/fax_gateway.py" --secret "$FAX_SECRET" --log "$WORK/gw.log" \
  --queued-s 0.1 --progress-s 0.1
gw_port=$PORT
# a gateway that refuses every request with 401, repeating the Authorization header it got
# and what it decodes to
start_peer hostile "$PY" -c '
import base64, http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        auth = self.headers.get("Authorization", "")
        try:
            decoded = base64.b64decode(auth.split(" ", 1)[1]).decode(errors="replace")
        except Exception:
            decoded = ""
        body = json.dumps({"error": {"code": 401, "status": "UNAUTHENTICATED",
                           "message": "wrong credentials: you sent %s = %s" % (auth, decoded)}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_any
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print("READY", s.server_address[1], flush=True)
s.serve_forever()'
hostile_port=$PORT

printf '%s\n' "$SMTP_SECRET" >smtp.secret
printf '%s\n' "$FAX_SECRET" >fax.secret
printf '%s\n' "$WRONG_SMTP" >smtp.wrong
printf '%s\n' "$WRONG_FAX" >fax.wrong
chmod 600 smtp.secret fax.secret smtp.wrong fax.wrong

# config NAME SMTP_SECRET_FILE FAX_SECRET_FILE GATEWAY_PORT [LANES] - NAME.yaml, log at debug
config() {
  cat >"$WORK/$1.yaml" <<YAML
queue: {lease: 30s, backoff_min: 1s, backoff_max: 2s, backoff_jitter: 0, idle_poll: 50, route_grace: 0, give_up_after: 2s}
log: {format: json, level: debug}
channels:
  email:
    lanes: ${5:-1}
    smtp:
      host: 127.0.0.1
      port: $smtp_port
      starttls: "off"
      timeout: 5
      auth: {user: crier, secret_file: $WORK/$2}
    from: "Example Corp <privacy@example.com>"
    bounce_domain: bounces.example.com
  fax:
    lanes: ${5:-1}
    provider: sinch
    base_url: http://127.0.0.1:$4
    project_id: proj-test
    key_id: key-test
    key_secret_file: $WORK/$3
    from: "+12125550100"
    header_text: Example Corp notice
    poll_interval: 1s
    timeout: 5s
  null: {}
YAML
  chmod 600 "$WORK/$1.yaml"
}
header() { echo "ref,name,email,fax"; }
people() { # PREFIX - two by email, two by fax
  echo "${1}e1,Person One,${1}e1@example.com,"
  echo "${1}e2,Person Two,${1}e2@example.com,"
  echo "${1}f1,Person Three,,+1212555100${#1}"
  echo "${1}f2,Person Four,,+1212555200${#1}"
}
count() { # NAME STATE
  sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign "$1") AND state = '$2'"
}

# --- the right secrets: SMTP AUTH and HTTP Basic work, and say nothing --------------------------
config good smtp.secret fax.secret "$gw_port"
export CRIER_CONFIG="$WORK/good.yaml"
run_crier config check
is "$RC" 0 "config check: the configuration is valid"
printf '%s\n%s\n' "$OUT" "$ERR" >check.txt
is "$(grep -c 'can be read by' check.txt)" 0 "config check: private secret files get no warning"
{ header; people g; } >good.csv
setup good email,fax,null good.csv
"$CRIER" run >"$WORK/run-good.out" 2>"$WORK/run-good.err" &
run_pid=$!
sleep 0.3
tr '\0' ' ' <"/proc/$run_pid/cmdline" >cmdline.txt
ok "the running crier run's arguments are readable" test -s cmdline.txt
for _ in $(seq 200); do
  [ "$(count good sent):$(count good delivered)" = "2:2" ] && break
  sleep 0.1
done
tr '\0' ' ' <"/proc/$run_pid/cmdline" >>cmdline.txt
kill -TERM "$run_pid"
wait "$run_pid"
is "$?" 0 "crier run stops cleanly on SIGTERM"
is "$(count good sent):$(count good delivered)" "2:2" "with the right secrets: 2 emails sent (AUTH), 2 faxes delivered"
is "$(grep -c '^ok crier' "$WORK/smtp/auth.log")" 1 "the relay saw one good AUTH (one session)"
is "$(find "$WORK/smtp" -name '*.eml' | wc -l)" 2 "the relay accepted the 2 messages after AUTH"
clean "no secret in the arguments of the running crier run (/proc/PID/cmdline)" cmdline.txt
ok "the run logged JSON lines (something to leak into)" grep -q '^{"ts":.*"level":"info"' "$WORK/run-good.err"
clean "no secret in crier run's stderr (JSON log lines at debug level)" "$WORK/run-good.err" "$WORK/run-good.out"
clean "no secret in config check's output" check.txt

# --- wrong secrets, and peers that repeat what they were sent ------------------------------------
config wrong smtp.wrong fax.wrong "$hostile_port"
export CRIER_CONFIG="$WORK/wrong.yaml"
{ header; people w; } >wrong.csv
setup wrong email,fax,null wrong.csv
timeout 60 "$CRIER" run --until-idle >"$WORK/run-wrong.out" 2>"$WORK/run-wrong.err"
is "$?" 0 "crier run with wrong secrets finishes (the notices fall back to null)"
is "$(count wrong delivered)" 4 "every notice ended on the null channel after email and fax refused"
ok "the relay refused the wrong password (auth.log)" grep -q '^bad crier' "$WORK/smtp/auth.log"
db_text
like "$(cat "$WORK/db.txt")" "530 5\.7\.0 authentication required: you sent user crier password \[redacted\]" \
  "the relay's refusal is kept, with the password it repeated redacted"
like "$(cat "$WORK/db.txt")" "HTTP 401" "the gateway's 401 is kept"
like "$(cat "$WORK/db.txt")" "you sent Basic \[redacted\] = key-test:\[red" \
  "the gateway's 401 repeated the Authorization header: both forms redacted"
clean "no secret in the dispatch log or the notices' reasons" "$WORK/db.txt"
clean "no secret in crier run's stderr with wrong secrets" "$WORK/run-wrong.err" "$WORK/run-wrong.out"
run_crier status wrong --json
printf '%s\n%s\n' "$OUT" "$ERR" >status.txt
is "$RC" 0 "status"
clean "no secret in crier status" status.txt

# --- database.conninfo with a password: a wrong one is not repeated -----------------------------
cat >db.yaml <<YAML
database:
  conninfo: "host=localhost dbname=$PGDATABASE user=$(sql "SELECT current_user") password=$DB_SECRET connect_timeout=5"
YAML
chmod 600 db.yaml
run_crier -c db.yaml status
printf '%s\n%s\n' "$OUT" "$ERR" >dbfail.txt
is "$RC" 69 "a wrong database password: exit 69 (unavailable)"
like "$ERR" "password authentication failed" "the error says the password was refused"
clean "the error does not repeat the database password" dbfail.txt
run_crier -c db.yaml config check
printf '%s\n%s\n' "$OUT" "$ERR" >dbcheck.txt
clean "config check does not print database.conninfo's password" dbcheck.txt
is "$(grep -c 'can be read by' dbcheck.txt)" 0 "a private config file with a password gets no warning"

# --- secrets others can read: refused, naming the file and its mode, unless allowed ------------
chmod 644 db.yaml
run_crier -c db.yaml config check
is "$RC" 78 "config check refuses a config holding a password that others can read (78)"
like "$ERR" "db\.yaml holds a password \(database\.conninfo\) and can be read by its group and others \(mode 0644\): refused" \
  "and names the file, what it holds and its mode"
clean "the refusal does not print the password" <(printf '%s\n' "$ERR")
run_crier -c db.yaml status
is "$RC" 78 "every command refuses it (status: 78), before it connects"
chmod 640 smtp.secret
chmod 604 fax.secret
config loose smtp.secret fax.secret "$gw_port" 2
run_crier -c loose.yaml config check
is "$RC" 78 "config check refuses secret files its group or others can read (78)"
like "$ERR" "smtp\.secret holds a secret \(channels\.email\.smtp\.auth\.secret_file\) and can be read by its group \(mode 0640\): refused" \
  "config check names the SMTP secret file readable by its group, and its mode"
like "$ERR" "fax\.secret holds a secret \(channels\.fax\.key_secret_file\) and can be read by others \(mode 0604\): refused" \
  "config check names the fax secret file readable by others, and its mode"
timeout 60 "$CRIER" -c loose.yaml run --until-idle >/dev/null 2>"$WORK/run-refused.err"
is "$?" 78 "crier run refuses to start with them (78)"
# secrets.readable_by: group lets the group read, not others
config group smtp.secret fax.secret "$gw_port" 2
echo "secrets: {readable_by: group}" >>group.yaml
run_crier -c group.yaml config check
is "$RC" 78 "with secrets.readable_by: group, a secret others can read is still refused"
is "$(grep -c 'smtp\.secret.*refused' <<<"$ERR"):$(grep -c 'fax\.secret.*refused' <<<"$ERR")" "0:1" \
  "the group-readable SMTP secret passes, the fax secret readable by others does not"
# secrets.readable_by: others: the old behaviour, a warning once per file
echo "secrets: {readable_by: others}" >>loose.yaml
run_crier -c loose.yaml config check
is "$RC" 0 "with secrets.readable_by: others, config check passes"
like "$ERR" "smtp\.secret holds a secret .*can be read by its group \(mode 0640\): make it readable" \
  "and warns about each file, naming it and its mode"
{ header; people l; } >loose.csv
CRIER_CONFIG="$WORK/loose.yaml" setup loose email,fax,null loose.csv 2>"$WORK/setup-loose.err"
timeout 60 "$CRIER" -c loose.yaml run --until-idle >/dev/null 2>"$WORK/run-loose.err"
is "$?" 0 "crier run with readable secret files it was told to allow runs"
is "$(count loose sent):$(count loose delivered)" "2:2" "and sends (the warning does not stop it)"
is "$(grep -c 'smtp\.secret holds a secret' "$WORK/run-loose.err")" 1 \
  "crier run with 2 email lanes warns about the SMTP secret file once"
is "$(grep -c 'fax\.secret holds a secret' "$WORK/run-loose.err")" 1 \
  "crier run with 2 fax lanes warns about the fax secret file once"
ok "the warning is a JSON log line at level warning" \
  grep -q '"level":"warning".*smtp\.secret holds a secret' "$WORK/run-loose.err"
clean "the warnings name files, never what is in them" "$WORK/run-loose.err"
# the same through the environment: no file, nothing to warn about
chmod 600 smtp.secret fax.secret

done_testing
