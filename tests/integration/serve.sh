#!/bin/bash
# serve.sh - `crier serve` (issue 18, docs/console.md) driven with curl against a real
# PostgreSQL and real logins in each of crier's roles: pages need a login, made with the
# person's own PostgreSQL password (a wrong one is refused, and logins and logouts are in
# crier.login_log); a form posted without its CSRF token is refused; a legal login places
# a hold with the agency's letter (kept with its SHA-256) and lifts it; an auditor posting
# the same form by hand is refused by the database itself, and an operator is not shown
# it; a recipient named <script>...</script> is rendered inert; the API answers as the
# CLI's --json does; an export downloaded by an auditor verifies offline; every response
# carries the CSP; uploads above 16 MiB are refused; plain HTTP is refused off loopback;
# TLS works with a certificate; and after 10 wrong passwords logins are slowed. /metrics
# (a session, or HTTP Basic with a PostgreSQL login) has each running campaign's counts as
# `crier status --json` has them; the pages that update live load /static/live.js, nothing
# inline, under the CSP.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
role_logins

# campaign e's email and fax go to the capture peers, so there is a notice as sent to show
start_peer smtp "$PY" "$TESTS_DIR/peers/smtp_capture.py" "$WORK/mail" 0
SMTP_PORT=$PORT
export FAX_SECRET=fax-secret-$$
start_peer fax "$PY" "$TESTS_DIR/peers/fax_gateway.py" --secret "$FAX_SECRET" --token tok \
  --log "$WORK/fax.log" --save-dir "$WORK/fax"
FAX_PORT=$PORT

# the console's sessions connect over TCP, where the cluster asks for passwords
mkdir -p "$WORK/spool"
write_config "database:
  conninfo: host=localhost dbname=$PGDATABASE
channels:
  test: {lanes: 1, default: accepted}
  email:
    lanes: 1
    smtp: {host: 127.0.0.1, port: $SMTP_PORT, timeout: 5}
    from: \"Example Corp <privacy@example.com>\"
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
    letters_per_batch: 1
    batch_window: 1s
    return_address: |
      Example Corp Privacy Office
      100 Main Street
      Springfield, IL 62701"
hostile='<script>alert(1)</script>'
{ echo "ref,name,email"
  echo "x1,\"$hostile\",x1@example.com"
  echo "x2,<img src=x onerror=alert(1)>,x2@example.com"
  echo "x3,Plain Person,x3@example.com"
} >people.csv
"$CRIER" campaign create c --incident INC-c --policy test --meta "$META" >/dev/null &&
  "$CRIER" campaign load c --csv people.csv >/dev/null
ok "campaign c created and loaded (a draft: nothing is sent)" test $? -eq 0
# campaign b: two letters, one per print batch, for the batches page
printf 'ref,name,address1,city,region,postal_code,country\nb1,Jane Public,1 Elm St,Springfield,IL,62704,US\nb2,John Smith,2 Oak St,Boston,MA,02108,US\n' >letters.csv
# campaign e: an email (its person's name is markup), a fax, and one nobody can reach
{ echo "ref,name,email,fax,address1,city,region,postal_code,country"
  echo "e1,<b>Eve</b> Example,Eve.One@Example.NET,,,,,,US"
  echo "f1,Fax Person,,+12125550111,,,,,US"
  echo "u1,Nobody Reachable,,,3 Pine St,Springfield,IL,62704,US"
} >contacts.csv
"$CRIER" -c crier.yaml campaign create b --incident INC-b --policy mail --meta "$META" >/dev/null &&
  "$CRIER" -c crier.yaml campaign load b --csv letters.csv >/dev/null &&
  "$CRIER" -c crier.yaml campaign start b >/dev/null &&
  "$CRIER" -c crier.yaml campaign create e --incident INC-e --policy email,fax --meta "$META" >/dev/null &&
  "$CRIER" -c crier.yaml campaign load e --csv contacts.csv >/dev/null &&
  "$CRIER" -c crier.yaml campaign start e >/dev/null &&
  timeout 90 "$CRIER" -c crier.yaml run --until-idle >/dev/null 2>"$WORK/run.log"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign b) AND state = 'batched'")" 2 \
  "campaign b: two letters in print batches"
is "$(sql "SELECT string_agg(state, ',' ORDER BY recipient_seq) FROM crier.notice WHERE $(in_campaign e)")" \
  "sent,delivered,undeliverable" "campaign e: the email sent, the fax delivered, one unreachable"

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$CRIER" -c crier.yaml serve --listen "127.0.0.1:$port" >"$WORK/serve.out" 2>"$WORK/serve.log" &
server=$!
listening() { grep -q "^listening on" "$WORK/serve.out"; }
for _ in $(seq 200); do listening && break; kill -0 "$server" 2>/dev/null || break; sleep 0.05; done
ok "crier serve listens" listening || { echo "Bail out! $(cat "$WORK/serve.log")"; exit 1; }

# fetch NAME CURL-ARGS... - a request with NAME's cookie jar; sets CODE, BODY and HEADERS
fetch() {
  local jar="$WORK/$1.jar"; shift
  CODE=$(curl -s -b "$jar" -c "$jar" -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' "$@")
  BODY=$(cat "$WORK/body")
  HEADERS=$(tr -d '\r' <"$WORK/headers")
}
# login NAME USER [PASSWORD] - the login form, as a browser posts it
login() { fetch "$1" --data-urlencode "user=$2" --data-urlencode "password=${3:-pw}" "$base/login"; }
# csrf NAME - TOKEN: the CSRF token of NAME's session, from a page's hidden field (BODY: the page)
csrf() { fetch "$1" "$base/holds"; TOKEN=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' <<<"$BODY" | head -1); }
holds() { sql "SELECT count(*) FROM crier.hold"; }

# --- logging in -----------------------------------------------------------------------------
fetch anon "$base/campaigns"
is "$CODE" 303 "a page without a session redirects..."
like "$HEADERS" $'\n[Ll]ocation: /login' "... to the login form"
fetch anon "$base/api/v1/campaigns"
is "$CODE" 401 "the API without a session: 401"
fetch anon "$base/login"
like "$HEADERS" "Content-Security-Policy: default-src 'none'; style-src 'self'" \
  "the login page carries a strict Content-Security-Policy"
like "$HEADERS" "X-Frame-Options: DENY" "and refuses framing"
ok "no page has a script or inline style" bash -c '! grep -Eiq "<script|style=" "$1"' _ "$WORK/body"
login legal "t_legal_$$" wrong
is "$CODE" 401 "a wrong password is refused (401)"
like "$BODY" "wrong user name or password" "the form says so, without telling which"
ok "the password appears in no log line" bash -c '! grep -q "wrong" "$1"' _ "$WORK/serve.log"

fetch crosssite -H "Origin: https://evil.example" --data-urlencode "user=t_legal_$$" \
  --data-urlencode "password=pw" "$base/login"
is "$CODE" 403 "a login form posted from another site (Origin) is refused"
login legal "t_legal_$$"
is "$CODE" 303 "the legal login succeeds"
like "$HEADERS" "Set-Cookie: crier_session=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict" \
  "its cookie is HttpOnly and SameSite=Strict"
ok "and not Secure over plain HTTP (no browser would send it back)" bash -c '! grep -q "Secure" <<<"$1"' _ "$HEADERS"
is "$(sql "SELECT count(*) FROM crier.login_log WHERE login = 't_legal_$$' AND event = 'login'")" 1 \
  "the login is in crier.login_log, under the role's own name"
fetch proxied --data-urlencode "user=t_auditor_$$" --data-urlencode "password=pw" \
  -H "X-Forwarded-Proto: https" "$base/login"
like "$HEADERS" "Set-Cookie: crier_session=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict; Secure" \
  "behind a TLS proxy (X-Forwarded-Proto: https) the cookie is Secure"
ok "the password is never logged" bash -c '! grep -q "password=pw\|\"pw\"" "$1"' _ "$WORK/serve.log"

# --- CSRF -----------------------------------------------------------------------------------
before=$(holds)
fetch legal -F campaign=c -F authority=FBI -F official="Agent K" -F case=CASE-1 -F form=written \
  -F reason="would impede the investigation" "$base/hold/place"
is "$CODE" 403 "a hold form posted without its CSRF token is refused (403)"
like "$BODY" "CSRF" "and says why"
fetch legal -F csrf=0000000000000000000000000000000000000000000000000000000000000000 -F campaign=c \
  -F authority=FBI -F official="Agent K" -F case=CASE-1 -F form=written -F reason=r "$base/hold/place"
is "$CODE" 403 "with a wrong token too"
is "$(holds)" "$before" "and no hold was placed"

# --- legal places and lifts a hold, with the agency's letter ---------------------------------
csrf legal
token=$TOKEN
ok "the legal login's page carries a CSRF token" test -n "$token"
like "$BODY" 'action="/hold/place"' "the legal login sees the hold form"
printf '%%PDF-1.4\n%% the agency letter\n' >letter.pdf
fetch legal -F csrf="$token" -F campaign=c -F authority="FBI New York" -F official="Agent K" \
  -F case=CASE-1 -F form=written -F reason="notice would impede the investigation" \
  -F document=@letter.pdf "$base/hold/place"
is "$CODE" 200 "the legal login places a hold"
like "$BODY" "hold [0-9]+" "the page says which hold"
is "$(holds)" "$((before + 1))" "one hold row"
is "$(sql "SELECT document_name || ' ' || document_sha256 || ' ' || placed_by FROM crier.hold ORDER BY id DESC LIMIT 1")" \
  "letter.pdf $(sha256sum letter.pdf | cut -d' ' -f1) t_legal_$$" \
  "the letter is kept with its SHA-256, placed by the legal login itself"
hold=$(sql "SELECT max(id) FROM crier.hold")
fetch legal "$base/holds?campaign=c"
like "$BODY" "FBI New York" "the holds page lists it"
fetch legal "$base/hold?id=$hold"
is "$CODE" 200 "the hold's page"
like "$BODY" 'action="/hold/lift"' "offers the lift form to legal"

# --- the API is the CLI's --json ----------------------------------------------------------
fetch api --data-urlencode "user=t_legal_$$" --data-urlencode "password=pw" "$base/api/v1/login"
is "$CODE" 200 "the API login"
api_token=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf"])' <"$WORK/body")
fetch api "$base/api/v1/holds?campaign=c"
as legal "$CRIER" -c crier.yaml hold list c --json >"$WORK/cli.json" 2>/dev/null
ok "GET /api/v1/holds is what crier hold list --json prints for the same login" \
  python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
  "$WORK/body" "$WORK/cli.json"
fetch api -X POST -d name=c "$base/api/v1/campaign/pause"
is "$CODE" 403 "an API POST without the X-CSRF-Token header is refused"
fetch api -X POST -H "X-CSRF-Token: $api_token" "$base/api/v1/hold/lift"
is "$CODE" 400 "with it, the API answers the request itself (here: what is missing)"
like "$BODY" '"error": "the hold \(id\) and the evidence are required"' "as JSON"
fetch api "$base/api/v1/campaign?name=c"
"$CRIER" -c crier.yaml status c --json >"$WORK/status.json"
ok "GET /api/v1/campaign has status --json's counts" \
  python3 -c 'import json,sys; a, b = (json.load(open(p)) for p in sys.argv[1:]); sys.exit(a["by_state"] != b["by_state"])' \
  "$WORK/body" "$WORK/status.json"

# --- the auditor is refused by the database; the operator is not shown the form -------------
login auditor "t_auditor_$$"
is "$CODE" 303 "the auditor logs in"
csrf auditor
atoken=$TOKEN
ok "the auditor is not shown the hold form" bash -c '! grep -q "action=\"/hold/place\"" <<<"$1"' _ "$BODY"
before=$(holds)
fetch auditor -F csrf="$token" -F campaign=c -F authority=FBI -F official="Agent K" -F case=CASE-2 \
  -F form=written -F reason="crossover" "$base/hold/place"
is "$CODE" 403 "the legal session's CSRF token does not work with the auditor's cookie"
fetch auditor "$base/holds"
like "$BODY" "class=\"who\">t_auditor_$$ auditor<" "each cookie opens its own login's session only"
fetch auditor -F csrf="$atoken" -F campaign=c -F authority=FBI -F official="Agent K" -F case=CASE-2 \
  -F form=written -F reason="by hand" "$base/hold/place"
is "$CODE" 403 "the auditor posting the hold form by hand is refused (403)"
like "$BODY" "permission denied" "by the database: permission denied"
is "$(holds)" "$before" "and no hold was placed"
fetch auditor -X POST -H "X-CSRF-Token: $atoken" -d name=c "$base/api/v1/campaign/pause"
is "$CODE" 403 "the auditor cannot pause a campaign through the API either"
login operator "t_operator_$$"
csrf operator
otoken=$TOKEN
ok "the operator is not shown the hold form" bash -c '! grep -q "action=\"/hold/place\"" <<<"$1"' _ "$BODY"
fetch operator "$base/campaign?name=c"
like "$BODY" 'action="/campaign/pause"' "the operator sees pause, resume and cancel"
"$CRIER" -c crier.yaml campaign start c >/dev/null 2>&1
fetch operator -d "csrf=$otoken" -d name=c "$base/campaign/pause"
is "$CODE" 200 "the operator pauses the campaign"
is "$(sql "SELECT state FROM crier.campaign WHERE name = 'c'")" paused "it is paused"
is "$(sql "SELECT actor FROM crier.dispatch_log WHERE event = 'campaign' AND to_state = 'paused'")" \
  "t_operator_$$" "the log names the operator's login"

# --- print batches: the operator marks one mailed and voids the other -----------------------
fetch operator "$base/api/v1/batches?campaign=b"
"$CRIER" -c crier.yaml batch list b --json >"$WORK/batches.json" 2>/dev/null
ok "GET /api/v1/batches is what crier batch list --json prints" \
  python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
  "$WORK/body" "$WORK/batches.json"
mapfile -t batches < <(python3 -c 'import json,sys; [print(b["batch"]) for b in json.load(open(sys.argv[1]))]' "$WORK/batches.json")
is "${#batches[@]}" 2 "two batches listed"
fetch operator "$base/batches?campaign=b"
like "$BODY" 'action="/batch/mark-mailed"' "the batches page offers mark-mailed to the operator"
fetch operator -d "csrf=$otoken" -d "batch=${batches[0]}" -d date="$(date -u +%F)" -d evidence="PS 3602 #42" \
  "$base/batch/mark-mailed"
is "$CODE" 200 "the operator marks the first batch mailed"
fetch operator -d "csrf=$otoken" -d "batch=${batches[1]}" -d reason="jammed printer" "$base/batch/void"
is "$CODE" 200 "and voids the second"
is "$(sql "SELECT string_agg(state, ',' ORDER BY state) FROM crier.notice WHERE $(in_campaign b)")" "mailed,ready" \
  "one letter mailed, the voided one ready to print again"
fetch auditor -d "csrf=$atoken" -d "batch=${batches[0]}" -d date="$(date -u +%F)" "$base/batch/mark-mailed"
is "$CODE" 403 "an auditor marking a batch mailed is refused by the database"

# --- the legal login lifts the hold ---------------------------------------------------------
fetch legal -F csrf="$token" -F id="$hold" -F evidence="the agency's letter of today" \
  -F document=@letter.pdf "$base/hold/lift"
is "$CODE" 200 "the legal login lifts the hold"
is "$(sql "SELECT count(*) FROM crier.hold_lift WHERE hold_id = $hold")" 1 "one lift row"

# --- escaping -------------------------------------------------------------------------------
fetch auditor "$base/person?campaign=c&ref=x1"
is "$CODE" 200 "the person page for x1"
like "$BODY" '&lt;script&gt;alert\(1\)&lt;/script&gt;' "the hostile name is shown escaped"
ok "and never as markup" bash -c '! grep -q "<script>" "$1"' _ "$WORK/body"
fetch auditor "$base/person?campaign=c&ref=x2"
like "$BODY" '&lt;img src=x onerror=alert\(1\)&gt;' "an <img onerror> name renders inert"
ok "no <img> element" bash -c '! grep -q "<img" "$1"' _ "$WORK/body"

# --- person search, the notice as sent -------------------------------------------------------
same_json() { python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$@"; }
fetch auditor "$base/api/v1/find?by=email&value=Eve.One@EXAMPLE.net"
cp "$WORK/body" "$WORK/find.json"
as auditor "$CRIER" -c crier.yaml audit find --email Eve.One@EXAMPLE.net --json >"$WORK/find-cli.json" 2>/dev/null
ok "GET /api/v1/find?by=email is what crier audit find --email --json prints" same_json "$WORK/find.json" "$WORK/find-cli.json"
like "$(cat "$WORK/find.json")" '"ref": "e1"' "and finds e1 (the address normalised as a load stores it)"
fetch auditor "$base/find?campaign=e&by=fax&value=%2B12125550111"
like "$BODY" 'href="/person\?campaign=e&amp;ref=f1"' "the search page finds by fax and links the person"
fetch auditor "$base/find?by=name&value=example"
like "$BODY" '&lt;b&gt;Eve&lt;/b&gt; Example' "by the beginning of a last name, the name escaped"
ok "and never as markup" bash -c '! grep -q "<b>Eve" "$1"' _ "$WORK/body"
fetch auditor "$base/find?campaign=b&by=postal&value=62704"
like "$BODY" 'ref=b1"' "by ZIP"
fetch auditor "$base/find?by=fax&value=not-a-number"
is "$CODE" 400 "a value that cannot be a contact: 400"
like "$BODY" "E.164" "saying why"

fetch auditor "$base/api/v1/person?campaign=e&ref=e1"
cp "$WORK/body" "$WORK/show.json"
as auditor "$CRIER" -c crier.yaml audit show e e1 --json >"$WORK/show-cli.json" 2>/dev/null
ok "GET /api/v1/person is what crier audit show --json prints" same_json "$WORK/show.json" "$WORK/show-cli.json"
# content_of CAMPAIGN REF - the log id of REF's checked content
content_of() {
  fetch auditor "$base/api/v1/person?campaign=$1&ref=$2"
  python3 -c 'import json,sys; print(next(e["id"] for e in json.load(sys.stdin)["history"] if "content" in e))' <"$WORK/body"
}
fetch auditor "$base/person?campaign=e&ref=e1"
like "$BODY" "content verified|verified" "the person page shows the content proof"
log=$(content_of e e1)
fetch auditor "$base/person?campaign=e&ref=e1"
like "$BODY" "person/content\?campaign=e&amp;ref=e1&amp;log=$log\"" "and links the email as sent"
fetch auditor "$base/person/content?campaign=e&ref=e1&log=$log"
is "$CODE" 200 "the email as sent"
like "$HEADERS" "Content-Type: text/html" "is a page"
like "$BODY" "Subject: " "with its headers"
like "$BODY" "To: .*Eve.One@example.net" "to the person"
like "$BODY" '&lt;b&gt;Eve&lt;/b&gt;' "and its text, the name escaped"
ok "never the message as HTML (no <b> from the list)" bash -c '! grep -q "<b>Eve" "$1"' _ "$WORK/body"
fetch auditor "$base/api/v1/person/content?campaign=e&ref=e1&log=$log"
like "$BODY" '"text": ' "the API gives the same text as JSON"
flog=$(content_of e f1)
fetch auditor "$base/person/content?campaign=e&ref=f1&log=$flog&format=pdf"
is "$CODE" 200 "the fax as transmitted"
like "$HEADERS" "Content-Type: application/pdf" "as application/pdf"
like "$HEADERS" 'Content-Disposition: attachment; filename="crier-f1-[0-9]+.pdf"' "as an attachment"
like "$HEADERS" "X-Content-Type-Options: nosniff" "with nosniff"
cp "$WORK/body" "$WORK/fax.pdf"
like "$(pdftotext "$WORK/fax.pdf" - 2>/dev/null)" "Fax Person" "the fax PDF is the person's"
blog=$(content_of b b1)
fetch auditor "$base/person/content?campaign=b&ref=b1&log=$blog&format=pdf"
is "$CODE" 200 "the letter as printed"
like "$HEADERS" "Content-Type: application/pdf" "as application/pdf"
cp "$WORK/body" "$WORK/letter.pdf"
like "$(pdftotext "$WORK/letter.pdf" - 2>/dev/null)" "Jane Public" "the letter PDF is the person's"
fetch auditor "$base/person/content?campaign=e&ref=e1&log=999999999"
is "$CODE" 404 "a log row that is not the person's: 404"

# --- the campaign's rate, ETA and chart -----------------------------------------------------
fetch auditor "$base/api/v1/campaign?name=e"
cp "$WORK/body" "$WORK/status-api.json"
"$CRIER" -c crier.yaml status e --json >"$WORK/status-e.json"
ok "status --json has the progress: rate, remaining, per day" python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["progress"]
sys.exit(not (p["per_day"] and p["per_day"][-1]["sent"] == 2 and p["per_day"][-1]["undeliverable"] == 1
              and p["remaining"] == 0 and "rate_per_minute" in p and p["eta"] is None))' "$WORK/status-e.json"
ok "the API's progress is status --json's" python3 -c '
import json, sys
a, b = (json.load(open(p))["progress"]["per_day"] for p in sys.argv[1:]); sys.exit(a != b)' \
  "$WORK/status-api.json" "$WORK/status-e.json"
fetch auditor "$base/campaign?name=e"
like "$BODY" '<progress max="3" value="3"' "the campaign page draws the day's bar"
like "$BODY" "notices a minute" "and says the rate"

# --- everyone not reached, streamed ---------------------------------------------------------
fetch auditor "$base/audit/unreached?campaign=e&format=csv"
cp "$WORK/body" "$WORK/unreached.csv"
as auditor "$CRIER" -c crier.yaml audit unreached e >"$WORK/unreached-cli.csv" 2>/dev/null
ok "the unreached CSV is what crier audit unreached prints" cmp "$WORK/unreached.csv" "$WORK/unreached-cli.csv"
like "$HEADERS" "Transfer-Encoding: chunked" "streamed as the core writes it"
like "$HEADERS" 'Content-Disposition: attachment; filename="crier-unreached-e.csv"' "a download"
fetch auditor "$base/api/v1/audit/unreached?campaign=e"
cp "$WORK/body" "$WORK/unreached.jsonl"
as auditor "$CRIER" -c crier.yaml audit unreached e --format json >"$WORK/unreached-cli.jsonl" 2>/dev/null
ok "the API's is --format json's" cmp "$WORK/unreached.jsonl" "$WORK/unreached-cli.jsonl"
fetch auditor "$base/audit/unreached?campaign=e"
like "$BODY" 'ref=u1">u1</a>' "the unreached page lists u1, linked to the person"
like "$BODY" "1 person not reached" "and counts"
fetch auditor "$base/audit/unreached?campaign=nosuch"
is "$CODE" 404 "no such campaign: 404, not an empty download"

# a list larger than the first block the server reads before it answers (64 KiB): the rest
# comes through libmicrohttpd's callback; a client that leaves half-way frees the server
{ echo "ref,name,address1,city,region,postal_code,country"
  for i in $(seq 3000); do echo "n$i,Unreachable Person $i,$i Long Street Name,Springfield,IL,62704,US"; done
} >many.csv
"$CRIER" -c crier.yaml campaign create many --incident INC-n --policy email --meta "$META" >/dev/null &&
  "$CRIER" -c crier.yaml campaign load many --csv many.csv >/dev/null &&
  "$CRIER" -c crier.yaml campaign start many >/dev/null 2>&1
fetch auditor "$base/audit/unreached?campaign=many&format=csv"
as auditor "$CRIER" -c crier.yaml audit unreached many >"$WORK/many-cli.csv" 2>/dev/null
ok "3,000 people not reached ($(wc -c <"$WORK/body") bytes): the download is the CLI's, byte for byte" \
  cmp "$WORK/body" "$WORK/many-cli.csv"
ok "(more than the first block)" test "$(wc -c <"$WORK/body")" -gt 65536
curl -s -b "$WORK/auditor.jar" --limit-rate 20k --max-time 2 -o /dev/null "$base/audit/unreached?campaign=many&format=csv"
fetch auditor "$base/campaigns"
is "$CODE" 200 "after a client left a download half-way, the same session is served again"
fetch auditor "$base/audit/unreached?campaign=many"
like "$BODY" "3000 people not reached" "the streamed page counts them all"

# --- /metrics: the running campaigns' notices by state and channel --------------------------
fetch anon "$base/metrics"
is "$CODE" 401 "/metrics without a session or credentials: 401"
fetch auditor "$base/metrics"
is "$CODE" 200 "/metrics on the auditor's session"
like "$HEADERS" "Content-Type: text/plain; version=0.0.4" "in Prometheus text format"
cp "$WORK/body" "$WORK/metrics.txt"
"$CRIER" -c crier.yaml status --json >"$WORK/status-all.json"
ok "crier_campaign_notices is crier status --json's for every running campaign" \
  "$PY" "$TESTS_DIR/integration/gauges.py" "$WORK/metrics.txt" "$WORK/status-all.json"
logins() { sql "SELECT count(*) FROM crier.login_log WHERE login = 't_operator_$$' AND event = 'login'"; }
before=$(logins)
scrape_basic() { curl -s -u "t_operator_$$:$1" -o "$WORK/$2" -w '%{http_code}' "$base/metrics"; }
is "$(scrape_basic wrong basic0.txt)" 401 "HTTP Basic with a wrong password: 401"
ok "which got no gauge" bash -c '! grep -q crier_campaign_notices "$1"' _ "$WORK/basic0.txt"
# (the good login next clears that failure from the rate limit, which the end of this test counts)
is "$(scrape_basic pw basic1.txt)" 200 "Prometheus' way in: HTTP Basic with a PostgreSQL login"
is "$(scrape_basic pw basic2.txt)" 200 "and again"
is "$(logins)" "$((before + 1))" "two scrapes, one login (login_log): the session is kept for the next"
ok "the gauges are the same" "$PY" "$TESTS_DIR/integration/gauges.py" "$WORK/basic2.txt" "$WORK/status-all.json"

# --- live updates: the script, and the pages that load it -----------------------------------
fetch anon "$base/static/live.js"
is "$CODE" 200 "the live script is served without a session (it holds nothing)"
like "$HEADERS" "Content-Type: text/javascript" "as a script"
ok "it is engine/web/live.js as it is in the source" cmp "$WORK/body" "$TESTS_DIR/../engine/web/live.js"
fetch auditor "$base/campaign?name=e"
like "$BODY" '<div id="live" data-kind="campaign" data-api="/api/v1/campaign\?name=e">' \
  "a campaign's page marks the region its script redraws, with the API route it polls"
like "$BODY" '<script src="/static/live.js"></script>' "and loads the script from crier itself"
ok "no inline script: every <script> has a src and nothing inside" python3 -c '
import re, sys
page = open(sys.argv[1]).read()
tags = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S | re.I)
sys.exit(not tags or any("src=\"/static/" not in attrs or body.strip() for attrs, body in tags))' "$WORK/body"
is "$(sed -n 's/^Content-Security-Policy: //p' <<<"$HEADERS")" \
  "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'" \
  "the CSP allows this origin's script file and fetches, nothing inline (no unsafe-inline, no eval), nothing elsewhere"
fetch auditor "$base/campaigns"
like "$BODY" '<div id="live" data-kind="campaigns" data-api="/api/v1/campaigns">' "the campaigns page too"
like "$BODY" 'href="/campaign\?name=many">campaign many</a>' "its links to each campaign are in that region"
ok "and each running campaign's notices by state and channel, as status --json counts them" python3 -c '
import json, re, sys
page, status = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
running = [c for c in status if c["state"] in ("running", "paused")]
sections = re.findall(r"<section class=\"running\"><h3>(.*?) \((\w+)\)</h3>(.*?)</section>", page, re.S)
if [s[0] for s in sections] != [c["campaign"] for c in running] or not running:
    sys.exit("sections %s, running %s" % ([s[0] for s in sections], [c["campaign"] for c in running]))
for (name, state, html), c in zip(sections, running):
    channels = list(c["by_channel"])
    for st, total in c["by_state"].items():
        row = re.search(r"<tr><th scope=\"row\">%s</th>((?:<td>\d+</td>)+)</tr>" % st, html)
        cells = [int(x) for x in re.findall(r"\d+", row.group(1))] if row else None
        if cells != [total] + [c["by_channel"][ch][st] for ch in channels]:
            sys.exit("%s %s: %s" % (name, st, cells))' "$WORK/body" "$WORK/status-all.json"

# --- the regulator packet -------------------------------------------------------------------
fetch operator -d "csrf=$otoken" -d campaign=e -d discovered=2026-11-01 "$base/audit/regulators/build"
is "$CODE" 200 "the operator builds the regulator packet"
like "$BODY" "counts.csv" "the page lists its files"
fetch operator "$base/audit/regulators/file?name=counts.csv"
is "$CODE" 200 "and its counts download"
like "$HEADERS" 'Content-Disposition: attachment; filename="counts.csv"' "as an attachment"
is "$(sha256sum <"$WORK/body" | cut -d' ' -f1)" \
  "$(sql "SELECT content_sha256 FROM crier.dispatch_log WHERE event = 'regulator' AND detail LIKE 'packet counts.csv%' ORDER BY id DESC LIMIT 1")" \
  "the download is the file logged with its SHA-256"
fetch auditor "$base/audit/regulators/file?name=counts.csv"
is "$CODE" 404 "another session does not see that packet"
fetch operator "$base/audit/regulators/file?name=..%2Fetc%2Fpasswd"
is "$CODE" 404 "nor any file outside it"

# --- audit: verify and an export that verifies offline --------------------------------------
"$CRIER" -c crier.yaml audit seal >/dev/null
fetch auditor "$base/audit?campaign=c"
is "$CODE" 200 "the audit page"
like "$BODY" "intact" "says the chain is intact"
fetch auditor "$base/audit/export?campaign=c"
cp "$WORK/body" "$WORK/export.jsonl"
like "$HEADERS" 'Content-Disposition: attachment; filename="crier-audit-c.jsonl"' "the export is a download"
like "$HEADERS" "Transfer-Encoding: chunked" "streamed, not built in memory first"
run_crier audit verify --file "$WORK/export.jsonl"
is "$RC" 0 "the downloaded export verifies offline (crier audit verify --file)"

# --- uploads --------------------------------------------------------------------------------
head -c $((17 * 1024 * 1024)) /dev/zero >big.pdf
before=$(holds)
fetch legal -F csrf="$token" -F campaign=c -F authority=FBI -F official=K -F case=CASE-3 \
  -F form=written -F reason=r -F document=@big.pdf "$base/hold/place"
is "$CODE" 413 "a 17 MiB document is refused (413)"
is "$(holds)" "$before" "and nothing was placed"

# --- logout ---------------------------------------------------------------------------------
fetch legal -d "csrf=$token" "$base/logout"
is "$CODE" 303 "logout"
is "$(sql "SELECT count(*) FROM crier.login_log WHERE login = 't_legal_$$' AND event = 'logout'")" 1 \
  "the logout is in crier.login_log"
fetch legal "$base/holds"
is "$CODE" 303 "the old cookie no longer opens a page"
denied auditor "DELETE FROM crier.login_log"
ok "the login log is append-only (an auditor cannot delete from it)" test $? -eq 0
ok "nor can the owner" bash -c '! psql -XAtq -v ON_ERROR_STOP=1 -c "DELETE FROM crier.login_log" 2>/dev/null'

# --- behind a proxy: the client is the address the trusted proxy appended --------------------
cp crier.yaml proxy.yaml
printf 'serve:\n  trusted_proxy: 127.0.0.1\n' >>proxy.yaml
pport=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CRIER" -c proxy.yaml serve --listen "127.0.0.1:$pport" >"$WORK/proxy.out" 2>"$WORK/proxy.log" &
proxy_server=$!
proxy_up() { grep -q "^listening on" "$WORK/proxy.out"; }
for _ in $(seq 200); do proxy_up && break; kill -0 "$proxy_server" 2>/dev/null || break; sleep 0.05; done
ok "a console behind a trusted proxy listens" proxy_up
# via XFF USER [PASSWORD] - a login through the proxy for client XFF (curl plays nginx)
via() {
  fetch proxied -H "X-Forwarded-For: $1" --data-urlencode "user=$2" \
    --data-urlencode "password=${3:-wrong}" "http://127.0.0.1:$pport/login"
}
for i in $(seq 10); do via 203.0.113.5 "nobody_${i}_$$"; done
is "$CODE" 401 "10 wrong logins from one client behind the proxy: each refused"
via 203.0.113.5 "nobody_11_$$"
is "$CODE" 429 "the 11th from that client is slowed (each user name was new: the client counts)"
via 203.0.113.6 "nobody_12_$$"
is "$CODE" 401 "another client behind the same proxy is not"
via "203.0.113.6, 203.0.113.5" "nobody_13_$$"
is "$CODE" 429 "an address the client put in front of the header is not believed"
like "$(cat "$WORK/proxy.log")" "from 203.0.113.5" "the journal names the real client"
via 203.0.113.7 "t_auditor_$$" pw
is "$CODE" 303 "a right password through the proxy logs in"
is "$(sql "SELECT client FROM crier.login_log WHERE login = 't_auditor_$$' ORDER BY id DESC LIMIT 1")" \
  "203.0.113.7" "and crier.login_log has the client's address, not the proxy's"
fetch direct -H "X-Forwarded-For: 198.51.100.9" --data-urlencode "user=t_auditor_$$" \
  --data-urlencode "password=pw" "$base/login"
is "$(sql "SELECT client FROM crier.login_log WHERE login = 't_auditor_$$' ORDER BY id DESC LIMIT 1")" \
  "127.0.0.1" "without serve.trusted_proxy the header is ignored"
kill -TERM "$proxy_server"
wait "$proxy_server"
printf 'serve:\n  trusted_proxy: proxy.example\n' >>badproxy.yaml
cat crier.yaml badproxy.yaml >bad.yaml
run_crier -c bad.yaml serve --listen "127.0.0.1:$pport"
is "$RC" 78 "serve.trusted_proxy that is not an IP address: a start-up error"
like "$ERR" "trusted_proxy proxy.example: not an IP address" "naming it"

# --- the listen address and TLS -------------------------------------------------------------
run_crier -c crier.yaml serve --listen "0.0.0.0:$port"
is "$RC" 78 "plain HTTP on every address is refused (78)"
like "$ERR" "loopback only" "and says why"
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 -subj /CN=localhost \
  >/dev/null 2>&1
chmod 600 key.pem
tport=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >>crier.yaml <<YAML
serve:
  tls: {cert: $WORK/cert.pem, key: $WORK/key.pem}
YAML
"$CRIER" -c crier.yaml serve --listen "127.0.0.1:$tport" >"$WORK/tls.out" 2>"$WORK/tls.log" &
tls_server=$!
tls_up() { grep -q "^listening on" "$WORK/tls.out"; }
for _ in $(seq 200); do tls_up && break; kill -0 "$tls_server" 2>/dev/null || break; sleep 0.05; done
fetch tls -k --data-urlencode "user=t_auditor_$$" --data-urlencode "password=pw" "https://127.0.0.1:$tport/login"
is "$CODE" 303 "over TLS (serve.tls.cert, serve.tls.key) the login works"
like "$HEADERS" "HttpOnly; SameSite=Strict; Secure" "and the cookie is Secure"
like "$HEADERS" "Strict-Transport-Security" "with HSTS"
kill -TERM "$tls_server"
wait "$tls_server"
is "$?" 0 "the TLS server stops on SIGTERM"

# --- rate limiting (last: it slows every login from this client) ----------------------------
for _ in $(seq 10); do login slow "t_operator_$$" wrong; done
is "$CODE" 401 "10 wrong passwords: each refused as wrong"
login slow "t_operator_$$" wrong
is "$CODE" 429 "the 11th attempt at once is slowed (429)"
login slow "t_operator_$$"
is "$CODE" 429 "even with the right password, until the wait is over"
like "$(cat "$WORK/serve.log")" "too many failures" "the journal says so"
sleep 1.2
login slow "t_operator_$$"
is "$CODE" 303 "after the wait, the right password logs in"

kill -TERM "$server"
wait "$server"
is "$?" 0 "crier serve stops on SIGTERM"
is "$(sql "SELECT count(*) FROM crier.login_log WHERE event = 'logout'")" \
  "$(sql "SELECT count(*) FROM crier.login_log WHERE event = 'login'")" \
  "every session still open was logged out at shutdown"
done_testing
