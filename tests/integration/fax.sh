#!/bin/bash
# fax.sh - the fax channel against tests/peers/fax_gateway.py (the Sinch Fax API v3 shape):
# letters faxed as PDFs and polled to 'delivered'; the PDF received is the one hashed in
# the dispatch log and carries the person's name; FAILURE and 4xx fall back to the next
# channel; 429 waits for Retry-After; 5xx is retried; an unknown outcome (the reply lost
# after the gateway took the fax) is reconciled with the gateway and never resent, a
# confirmed absence is; 100 dropped replies across a campaign give no duplicate fax and no
# lost notice; the generic provider (described in YAML) against the same gateway; HTTPS
# with certificate verification; a crash in the middle of polling loses nothing; the API
# secret appears nowhere.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PEER="$TESTS_DIR/peers/fax_gateway.py"
SECRET="s3cret-$RANDOM-$$"
TOKEN="tok-$RANDOM-$$"
export FAX_SECRET=$SECRET FAX_TOKEN=$TOKEN
if ! command -v pdftotext >/dev/null; then
  echo "1..0 # SKIP pdftotext is missing (Debian: poppler-utils)"
  exit 0
fi

# peers are started here and stopped by lib.sh's EXIT trap (PEERS, stop_peers)

# start_gateway NAME [ARGS...] - a gateway logging to $WORK/NAME.log, PDFs in $WORK/NAME/;
# sets PORT
start_gateway() {
  local name=$1; shift
  mkdir -p "$WORK/$name"
  start_peer "$name" "$PY" "$PEER" --secret "$SECRET" --token "$TOKEN" --log "$WORK/$name.log" \
    --save-dir "$WORK/$name" "$@"
}

count_notices() {
  local state_filter=""
  [ -n "${2:-}" ] && state_filter="AND state = '$2'"
  sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign "$1") $state_filter"
}
# history NAME REF - "channel:from>to[>to_channel]" words of a notice's transitions
history() {
  sql "SELECT string_agg(channel || ':' || coalesce(from_state, '-') || '>' || to_state
                         || coalesce('>' || to_channel, ''), ' ' ORDER BY id)
       FROM crier.dispatch_log WHERE $(in_campaign "$1") AND recipient_ref = '$2' AND event = 'transition'"
}
detail_of() { # NAME REF FROM TO - the detail of that transition (the last one)
  sql "SELECT detail FROM crier.dispatch_log WHERE $(in_campaign "$1") AND recipient_ref = '$2'
       AND from_state = '$3' AND to_state = '$4' ORDER BY id DESC LIMIT 1"
}
run_until_idle() {
  local started=$EPOCHREALTIME
  timeout 120 "$CRIER" "$@" run --until-idle >"$WORK/out" 2>>"$WORK/run.log"
  RC=$?
  TOOK=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
}
# faxes_per_number LOG - "number count" lines of the faxes a gateway accepted
per_number() {
  "$PY" -c 'import json, sys, collections
c = collections.Counter(json.loads(l)["to"] for l in open(sys.argv[1]))
for k in sorted(c): print(k, c[k])' "$1"
}
max_per_number() { per_number "$1" | awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }'; }

fax_config() { # PORT [EXTRA FAX KEYS]
  write_config "channels:
  fax:
    lanes: 2
    batch_size: 10
    provider: sinch
    base_url: http://127.0.0.1:$1
    project_id: proj-test
    key_id: key-test
    key_secret_env: FAX_SECRET
    from: \"+12125550100\"
    header_text: Example Corp notice
    poll_interval: 1s
    timeout: 5s
${2:-}
  null: {}"
}

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

# --- one gateway; a campaign with every scripted outcome ---------------------------------
start_gateway main --retry-after 2
main_port=$PORT
fax_config "$main_port"
run_crier config check
is "$RC" 0 "the fax configuration is valid"

cat >main.csv <<'CSV'
ref,name,fax,email
a01,Nguyễn Văn An,+12125551001,
a02,Zofia Wójcik,+12125551002,
a03,Seán Ó Briain,+12125551003,
a04,Walter Pierce,+12125551004,
a05,Carmen Ruiz,+12125551005,
a06,Dmitri Ivanov,+12125551006,
a07,Hana Tanaka,+12125551007,
a08,Ann Lee,+12125551008,
a09,Bob Ray,+12125551009,
a10,Chloé Lefèvre,+12125551010,
a11,Fatima Okafor,+12125551011,
a12,Iwona Kowalska,+12125551012,
fl1,Failing Line,+12125550000,
rj1,Rejected Number,+12125550400,
rl1,Rate Limited,+12125550429,
se1,Server Error,+12125550500,
su1,Service Unavailable,+12125550503,
un1,Unknown Outcome,+12125550999,
ab1,Absent After All,+12125550997,
ne1,No Fax Number,,ne1@example.com
CSV
setup main fax,mail,null main.csv
run_until_idle
echo "# crier run --until-idle (main) took ${TOOK}s"
is "$RC" 0 "crier run --until-idle exits 0"
is "$(count_notices main)" 20 "20 notices"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign main) AND state = 'delivered' AND channel = 'fax'")" \
  17 "17 delivered by fax (12 plain, 429, 500, 503, unknown outcome, absent)"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign main) AND state IN ('ready', 'sending', 'submitted')")" \
  0 "none left waiting"
is "$(history main a01)" "fax:ready>sending fax:sending>submitted fax:submitted>delivered" \
  "a plain fax: sending -> submitted -> delivered"
like "$(detail_of main a01 sending submitted)" '^fax 01FAX[0-9]+ QUEUED \(HTTP 200\)$' \
  "the submitted row names the fax id and its status"
like "$(detail_of main a01 submitted delivered)" '^fax 01FAX[0-9]+ COMPLETED$' \
  "the delivered row names the fax id and COMPLETED"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign main) AND state = 'delivered' AND channel = 'fax' AND transport_id LIKE '01FAX%'")" \
  17 "the fax id stays on each delivered notice (crier.notice.transport_id)"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign main) AND from_state = 'submitted' AND to_state = 'submitted' AND detail NOT LIKE 'reconciled%'")" \
  0 "polling a pending fax writes no log row"

# the PDFs the gateway received
cat >"$WORK/pdfs.py" <<'PY'
import json, subprocess, sys
log, directory, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def check(description, got, want):
    print(f"{description}\t{got}\t{want}")
def failures(items):
    bad = [i for i in items if i]
    return "" if not bad else f"{len(bad)} bad, e.g. " + " | ".join(bad[:3])
faxes = [json.loads(line) for line in open(log)]
by_token = {}
for f in faxes:
    by_token.setdefault(f["labels"].get("crier_notice"), []).append(f)
pdf, names, hashes, labels = [], [], [], []
for p in expected:
    got = by_token.get(p["token"], [])
    if not got:
        continue
    f = got[-1]
    data = open(f"{directory}/{f['id']}.pdf", "rb").read()
    pdf.append("" if data.startswith(b"%PDF-") else f"{p['ref']}: not a PDF")
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", f"{directory}/{f['id']}.pdf", "-"],
                          capture_output=True, text=True).stdout
    names.append("" if f"Dear {p['name']}," in text and "Notice of Data Breach" in text
                 else f"{p['ref']}: name not in the PDF text")
    import hashlib
    sha = hashlib.sha256(data).hexdigest()
    hashes.append("" if sha == p["sha"] and f["sha256"] == sha
                  else f"{p['ref']}: received {sha[:12]} logged {str(p['sha'])[:12]}")
    labels.append("" if f["labels"].get("crier_attempt") == str(p["attempt"]) and f["from"] == "+12125550100"
                  and f["header_text"] == "Example Corp notice"
                  else f"{p['ref']}: labels {f['labels']} from {f['from']}")
check("every fax received is a PDF", failures(pdf), "")
check("pdftotext of each PDF has 'Dear <name>,' and the title", failures(names), "")
check("SHA-256 of the received PDF == dispatch_log.content_sha256 of its 'submitted' row", failures(hashes), "")
check("labels carry the token and attempt; from and headerText as configured", failures(labels), "")
check("PDFs checked", len(pdf), len([p for p in expected if p["token"] in by_token]))
PY
expected_json=$(sql "SELECT coalesce(json_agg(json_build_object('ref', r.ref, 'name', r.name,
    'token', n.id || '.' || n.token, 'attempt', l.attempt, 'sha', l.content_sha256)), '[]')
  FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
  JOIN LATERAL (SELECT attempt, content_sha256 FROM crier.dispatch_log WHERE notice_id = n.id
                AND to_state = 'submitted' AND from_state = 'sending' ORDER BY id DESC LIMIT 1) l ON true
  WHERE n.$(in_campaign main) AND n.state = 'delivered' AND n.channel = 'fax'")
while IFS=$'\t' read -r d g e; do is "$g" "$e" "$d"; done < <("$PY" - "$WORK/main.log" "$WORK/main" "$expected_json" <"$WORK/pdfs.py" 2>&1 || printf 'the PDF checker ran\tfailed\tok\n')

# failures fall back
is "$(history main fl1)" "fax:ready>sending fax:sending>submitted fax:submitted>ready>null null:ready>sending null:sending>delivered" \
  "FAILURE at the gateway -> next usable channel (past mail: no postal address) -> delivered"
like "$(sql "SELECT reasons::text FROM crier.notice WHERE $(in_campaign main) AND recipient_seq = 13")" \
  "fax: fax 01FAX[0-9]+ FAILURE: CALL_ERROR: busy or no answer after 3 tries" "the notice keeps the gateway's errorType and errorMessage"
like "$(sql "SELECT reasons::text FROM crier.notice WHERE $(in_campaign main) AND recipient_seq = 13")" \
  "mail: no mailable postal address" "mail is skipped with its reason (unreachable, not 'not enabled here')"
is "$(history main rj1)" "fax:ready>sending fax:sending>ready>null null:ready>sending null:sending>delivered" \
  "400 from the gateway -> next channel at once"
like "$(sql "SELECT reason FROM crier.dispatch_log WHERE $(in_campaign main) AND recipient_ref = 'rj1' AND to_channel = 'null'")" \
  '^fax: HTTP 400: .*cannot receive faxes' "the fallback row has the gateway's 400 reply"
is "$(history main ne1)" "null:ready>sending null:sending>delivered" "no fax number: starts past fax"

# 429: Retry-After honoured
is "$(history main rl1)" "fax:ready>sending fax:sending>ready fax:ready>sending fax:sending>submitted fax:submitted>delivered" \
  "429 -> ready on fax -> sent again -> delivered"
like "$(detail_of main rl1 sending ready)" '^HTTP 429' "the temporary row says 429"
gap=$(sql "SELECT extract(epoch FROM max(at) - min(at)) FROM crier.dispatch_log
           WHERE $(in_campaign main) AND recipient_ref = 'rl1' AND from_state = 'ready' AND to_state = 'sending'")
ok "the retry waited for Retry-After (2 s, backoff_min is 1 s): ${gap}s" awk -v g="$gap" 'BEGIN { exit !(g >= 2.0 && g < 10) }'
for ref in se1 su1; do
  is "$(history main $ref)" "fax:ready>sending fax:sending>ready fax:ready>sending fax:sending>submitted fax:submitted>delivered" \
    "$ref: 5xx -> retried -> delivered"
done
like "$(detail_of main su1 sending ready)" '^HTTP 503' "the 503 row says so"

# the unknown outcome: reply dropped after the gateway took the fax
is "$(history main un1)" "fax:ready>sending fax:sending>submitted fax:submitted>submitted fax:submitted>delivered" \
  "dropped reply -> submitted (unknown) -> reconciled -> delivered, never resent"
like "$(detail_of main un1 sending submitted)" '^unknown outcome: ' "the submitted row says 'unknown outcome'"
like "$(detail_of main un1 submitted submitted)" '^reconciled: fax 01FAX[0-9]+ found at the gateway' \
  "the reconciliation row names the fax found"
# the unknown outcome where the gateway has nothing: confirmed absent, sent again
is "$(history main ab1)" "fax:ready>sending fax:sending>submitted fax:submitted>ready fax:ready>sending fax:sending>submitted fax:submitted>delivered" \
  "nothing recorded at the gateway -> confirmed absent -> sent again -> delivered"
like "$(detail_of main ab1 submitted ready)" '^confirmed absent at the gateway' "the resend row says 'confirmed absent at the gateway'"
is "$(max_per_number "$WORK/main.log")" 1 "the gateway accepted at most one fax per number"
is "$(per_number "$WORK/main.log" | wc -l)" 18 "18 numbers faxed (17 delivered + the FAILURE one)"

# --- THE unknown-outcome test: 100 replies dropped across a campaign -------------------------
start_gateway drops --drop-rate 0.35 --drop-max 100 --seed 7 --queued-s 0.2 --progress-s 0.2
fax_config "$PORT"
seq 1 300 | awk 'BEGIN { print "ref,name,fax" } { printf "d%03d,Dropped Person %d,+1312555%04d\n", $1, $1, $1 }' >drops.csv
setup drops fax,null drops.csv
run_until_idle
echo "# crier run --until-idle (100 drops) took ${TOOK}s"
is "$RC" 0 "crier run --until-idle exits 0 (drops)"
is "$(grep -c '"dropped": true' "$WORK/drops.log")" 100 "the gateway dropped 100 replies after accepting the fax"
is "$(max_per_number "$WORK/drops.log")" 1 "zero duplicate faxes: at most one fax per recipient at the gateway"
is "$(per_number "$WORK/drops.log" | wc -l)" 300 "every one of the 300 recipients has a fax at the gateway"
is "$(count_notices drops delivered)/$(count_notices drops)" "300/300" "zero lost notices: all 300 delivered"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign drops) AND channel <> 'fax'")" 0 "none fell back"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign drops) AND from_state = 'sending' AND to_state = 'submitted' AND detail LIKE 'unknown outcome%'")" \
  100 "100 unknown outcomes logged"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign drops) AND detail LIKE 'reconciled: fax%'")" \
  100 "100 reconciled with the gateway (found, not resent)"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign drops) AND from_state = 'ready' AND to_state = 'sending'")" \
  300 "300 claims: nothing was sent twice"

# --- the generic provider: the same gateway described in YAML --------------------------------
generic_config() { # PORT
  write_config "channels:
  fax:
    lanes: 1
    batch_size: 10
    provider: generic
    auth: bearer
    key_secret_env: FAX_TOKEN
    from: \"+12125550100\"
    header_text: Example Corp notice
    poll_interval: 1s
    timeout: 5s
    generic:
      send_url: \"http://127.0.0.1:$1/v3/projects/proj-test/faxes\"
      status_url: \"http://127.0.0.1:$1/v3/projects/proj-test/faxes/{id}\"
      list_url: \"http://127.0.0.1:$1/v3/projects/proj-test/faxes?to={to}&pageSize=2\"
      fields: {file: file, to: to, from: from, header_text: headerText, labels: labels}
      label_style: brackets
      response: {id: /id, status: /status, error: \"/errorType,/errorMessage\"}
      list: {items: /faxes, id: /id, token: /labels/crier_notice, attempt: /labels/crier_attempt, next: /nextPageToken, page_param: pageToken}
      statuses: {delivered: COMPLETED, failed_permanent: FAILURE, pending: \"QUEUED, IN_PROGRESS\"}
  null: {}"
}
start_gateway generic
generic_config "$PORT"
run_crier config check
is "$RC" 0 "the generic configuration is valid"
cat >generic.csv <<'CSV'
ref,name,fax
g1,Generic One,+14155551001
g2,Generic Two,+14155551002
g3,Generic Failure,+14155550000
g4,Generic Drop,+14155550999
g5,Generic Refused,+14155550400
g6,Generic Absent,+14155550997
CSV
# three earlier faxes to a number that g4's starts (the list's `to` matches by prefix): the
# reconciliation must page through them and match the labels, not the number
seed_pdf=$(find "$WORK/main" -name '*.pdf' | head -1)
for i in 1 2 3; do
  curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" -F to=+141555509990 -F "labels={\"crier_notice\":\"other.$i\"}" \
    -F "file=@$seed_pdf;type=application/pdf" \
    "http://127.0.0.1:$PORT/v3/projects/proj-test/faxes" || echo "# seeding fax $i failed"
done
setup generic fax,null generic.csv
run_until_idle
echo "# crier run --until-idle (generic) took ${TOOK}s"
is "$RC" 0 "crier run --until-idle exits 0 (generic)"
is "$(sql "SELECT string_agg(r.ref || '=' || n.state || '@' || n.channel, ' ' ORDER BY r.ref) FROM crier.notice n
           JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq WHERE n.$(in_campaign generic)")" \
  "g1=delivered@fax g2=delivered@fax g3=delivered@null g4=delivered@fax g5=delivered@null g6=delivered@fax" \
  "generic: delivered, FAILURE and 400 fell back, the dropped reply reconciled, the absent one resent"
like "$(detail_of generic g4 submitted submitted)" '^reconciled: fax' "generic: the dropped reply was reconciled through the list (paged)"
like "$(detail_of generic g6 submitted ready)" '^confirmed absent' "generic: the absent one was confirmed absent"
is "$(per_number "$WORK/generic.log" | awk '$1 == "+141555509990" { print $2 }')" 3 "generic: the 3 seeded faxes"
is "$(per_number "$WORK/generic.log" | awk '$1 != "+141555509990" && $2 > 1' | wc -l)" 0 "generic: no number faxed twice"
is "$("$PY" -c 'import json, sys
print(sorted({tuple(sorted(json.loads(l)["labels"])) for l in open(sys.argv[1]) if json.loads(l)["labels"].get("crier_notice", "").count(".") == 1 and not json.loads(l)["labels"]["crier_notice"].startswith("other")}))' "$WORK/generic.log")" \
  "[('crier_attempt', 'crier_notice')]" "generic: labels[key] fields arrived as labels"

# --- HTTPS: the certificate is verified ----------------------------------------------------
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 1 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
  start_gateway tls --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem"
  cat >"$WORK/tls.yaml" <<YAML
queue: {lease: 30s, backoff_min: 1s, backoff_max: 1s, backoff_jitter: 0, idle_poll: 50, route_grace: 0, give_up_after: 3s}
log: {format: json}
channels:
  fax: {lanes: 1, provider: sinch, base_url: "https://127.0.0.1:$PORT", project_id: proj-test, key_id: key-test, key_secret_env: FAX_SECRET, poll_interval: 1s, timeout: 5s}
  null: {}
YAML
  printf 'ref,name,fax\nt1,Tls Untrusted,+16175551001\n' >tls1.csv
  setup tls1 fax,null tls1.csv
  run_until_idle -c "$WORK/tls.yaml"
  is "$RC" 0 "untrusted certificate: crier run --until-idle exits 0"
  is "$(sql "SELECT state || '@' || channel FROM crier.notice WHERE $(in_campaign tls1)")" "delivered@null" \
    "a self-signed certificate is refused (temporary, then fell back after give_up_after)"
  like "$(sql "SELECT string_agg(DISTINCT detail, ' | ') FROM crier.dispatch_log WHERE $(in_campaign tls1) AND from_state = 'sending' AND to_state = 'ready' AND to_channel IS NULL")" \
    "^not sent: .*([Cc]ertificate|SSL)" "the detail names the certificate problem"
  is "$(wc -l <"$WORK/tls.log" | tr -d ' ')" 0 "nothing reached the gateway"
  sed -i "s|poll_interval: 1s|poll_interval: 1s, ca_file: \"$WORK/cert.pem\"|" "$WORK/tls.yaml"
  printf 'ref,name,fax\nt2,Tls Trusted,+16175551002\n' >tls2.csv
  setup tls2 fax,null tls2.csv
  run_until_idle -c "$WORK/tls.yaml"
  is "$(sql "SELECT state || '@' || channel FROM crier.notice WHERE $(in_campaign tls2)")" "delivered@fax" \
    "with ca_file naming the CA, the fax goes out over HTTPS and is delivered"
fi

# --- kill -9 in the middle of sending and polling: nothing lost, nothing sent twice ----------
# Each reply takes 400 ms and the gateway records a fax before it waits, so at the kill some
# faxes are recorded at the gateway while crier has not recorded them: their leases expire
# (3 s), and the reaper must make them unknown outcomes to reconcile, not send them again.
start_gateway crash --latency-ms 400 --queued-s 1 --progress-s 1
fax_config "$PORT"
seq 1 60 | awk 'BEGIN { print "ref,name,fax" } { printf "k%02d,Crash Person %d,+1617666%04d\n", $1, $1, $1 }' >crash.csv
setup crash fax,null crash.csv
"$CRIER" run >>"$WORK/run.log" 2>&1 &
crier_pid=$!
for _ in $(seq 300); do
  [ "$(count_notices crash submitted)" -ge 10 ] && break
  sleep 0.05
done
sleep 0.2
kill -9 "$crier_pid"
wait "$crier_pid" 2>/dev/null
echo "# killed crier: $(count_notices crash sending) sending, $(count_notices crash submitted) submitted, $(count_notices crash delivered) delivered; the gateway has $(wc -l <"$WORK/crash.log") faxes"
run_until_idle
is "$RC" 0 "after kill -9, crier run --until-idle exits 0"
is "$(count_notices crash delivered)/$(count_notices crash)" "60/60" "all 60 delivered in the end"
is "$(max_per_number "$WORK/crash.log")" 1 "no fax sent twice across the crash"
ok "notices in flight at the kill became unknown outcomes (lease expired), not resends" \
  test "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign crash) AND from_state = 'sending' AND to_state = 'submitted' AND detail LIKE 'lease of % expired: unknown outcome%'")" -ge 1
is "$(sql "SELECT count(*) FROM (SELECT notice_id FROM crier.dispatch_log WHERE $(in_campaign crash) AND to_state = 'delivered' GROUP BY notice_id HAVING count(*) <> 1) x")" \
  0 "one 'delivered' row per notice"

# --- the secret ------------------------------------------------------------------------------
is "$(grep -c -- "$SECRET\|$TOKEN" "$WORK/run.log")" 0 "the API secret and token appear nowhere in crier's log"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE detail LIKE '%$SECRET%' OR reason LIKE '%$SECRET%' OR detail LIKE '%$TOKEN%'")" \
  0 "nor in the dispatch log"
ok "no crier crashed (no sanitizer report or signal in the run log)" sh -c "! grep -qiE 'segmentation|abort|sanitizer|runtime error' '$WORK/run.log'"

done_testing
