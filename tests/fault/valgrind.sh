#!/bin/bash
# valgrind.sh - one realistic campaign with every crier invocation under valgrind memcheck
# (issue 8): db migrate, config check, campaign create, load, proof, start, `crier run
# --until-idle` sending email to the SMTP capture peer, faxes to the gateway peer (polled to
# delivered) and letters to the print spool, then status, batch list and bounces ingest.
# Each must exit as it would without valgrind, with no memcheck error and no definite leak
# (--errors-for-leak-kinds=definite --error-exitcode=99). "Possibly lost" and "still
# reachable" memory (GLib type system, fontconfig caches, OpenSSL) is not an error here;
# tests/valgrind.supp names the few library reports that are suppressed, and why.
#
# Runs only against a build without sanitizers: an ASan binary cannot run under valgrind,
# so it skips itself there (ldd shows libasan). Eight crier invocations under memcheck;
# about two minutes on two idle cores. CRIER_VALGRIND_FULL=1 adds config check, campaign
# proof, batch list and a usage error (four more).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../integration/lib.sh
TESTS_DIR=${TESTS_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
if ldd "${CRIER:?CRIER must name the crier binary}" 2>/dev/null | grep -q 'libasan\|libubsan'; then
  echo "1..0 # SKIP $CRIER is built with sanitizers; valgrind runs against the release build"
  exit 0
fi
if ! command -v valgrind >/dev/null; then
  echo "1..0 # SKIP valgrind is missing (Debian: apt-get install valgrind)"
  exit 0
fi
source "$TESTS_DIR/integration/lib.sh"

SECRET="vg-secret-$RANDOM-$$"
export FAX_SECRET=$SECRET
VGLOG="$WORK/vg"
mkdir -p "$VGLOG" "$WORK/cap" "$WORK/spool" "$WORK/gw" "$WORK/proof"

# vg NAME ARGS... - crier under memcheck; sets RC and ERR; NAME names its report
vg() {
  local name=$1; shift
  timeout "${VG_TIMEOUT:-120}" valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
    --show-leak-kinds=definite --track-origins=no --num-callers=30 \
    --suppressions="$TESTS_DIR/valgrind.supp" --log-file="$VGLOG/$name.%p.log" \
    "$CRIER" "$@" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  ERR=$(cat "$WORK/err")
}
# clean NAME - memcheck reported nothing for that invocation (its log is empty)
clean() {
  local f report=""
  for f in "$VGLOG/$1".*.log; do
    [ -s "$f" ] && report+=$(cat "$f")
  done
  if [ -n "$report" ]; then
    printf '%s\n' "$report" | head -60 | sed 's/^/#   /'
    return 1
  fi
}
# checked NAME EXPECTED_RC DESCRIPTION ARGS... - run under valgrind, assert rc and no report
checked() {
  local name=$1 expected=$2 description=$3 t0=$SECONDS; shift 3
  vg "$name" "$@"
  is "$RC" "$expected" "$description: exit $expected under valgrind ($((SECONDS - t0)) s)"
  [ "$RC" = 99 ] || [ "$RC" = "$expected" ] || echo "#   stderr: ${ERR:0:400}"
  ok "$description: no memcheck error, no definite leak" clean "$name"
}

# peers (stopped by lib.sh's EXIT trap)
start_peer smtp "$PY" "$TESTS_DIR/peers/smtp_capture.py" "$WORK/cap" 0
smtp_port=$PORT
start_peer gw "$PY" "$TESTS_DIR/peers/fax_gateway.py" --secret "$SECRET" --log "$WORK/gw.log" \
  --save-dir "$WORK/gw" --queued-s 0.2 --progress-s 0.2
gw_port=$PORT

# write_config's 3 s lease is too short for code running 20 times slower under valgrind: an
# expired lease is (rightly) claimed again, which would send a second fax
cat >"$WORK/crier.yaml" <<YAML
queue: {lease: 2m, backoff_min: 1s, backoff_max: 2s, backoff_jitter: 0, idle_poll: 50, route_grace: 0}
log: {format: json}
channels:
  email:
    lanes: 1
    batch_size: 10
    smtp: {host: 127.0.0.1, port: $smtp_port, timeout: 20}
    from: "Example Corp <privacy@example.com>"
    bounce_domain: bounces.example.com
  fax:
    lanes: 1
    batch_size: 10
    provider: sinch
    base_url: http://127.0.0.1:$gw_port
    project_id: proj-test
    key_id: key-test
    key_secret_env: FAX_SECRET
    from: "+12125550100"
    header_text: Example Corp notice
    poll_interval: 1s
    timeout: 20s
  mail:
    lanes: 1
    spool: $WORK/spool
    letters_per_batch: 10
    batch_window: 1s
    return_address: |
      Example Corp Privacy Office
      100 Main Street
      Springfield, IL 62701
YAML
export CRIER_CONFIG="$WORK/crier.yaml"

# four people per channel: email first, fax for those without an address, letters last
cat >vg.csv <<'CSV'
ref,name,email,fax,address1,city,region,postal_code
e1,Nguyễn Văn An,an@example.com,,1 Main St,Houston,TX,77001
e2,Zofia Wójcik,zofia@example.com,,2 Main St,Chicago,IL,60601
e3,Seán Ó Briain,sean@example.com,,3 Main St,Sacramento,CA,94203
e4,Walter Pierce,walter@example.com,,4 Main St,Boston,MA,02108
f1,Carmen Ruiz,,+12125551001,5 Main St,Houston,TX,77001
f2,Dmitri Ivanov,,+12125551002,6 Main St,Chicago,IL,60601
f3,Hana Tanaka,,+12125551003,7 Main St,Sacramento,CA,94203
f4,Ann Lee,,+12125551004,8 Main St,Boston,MA,02108
m1,Omar Haddad,,,9 Main St,Houston,TX,77001
m2,Li Wei,,,10 Main St,Chicago,IL,60601
m3,Ana Souza,,,11 Main St,Sacramento,CA,94203
m4,Jean Dupont,,,12 Main St,Boston,MA,02108
CSV

started=$SECONDS
checked migrate 0 "db migrate" db migrate
full() { [ -n "${CRIER_VALGRIND_FULL:-}" ]; } # the longer variant: more commands
full && checked config 0 "config check" config check
checked create 0 "campaign create" campaign create vg --incident INC-vg --policy email,fax,mail --meta "$META"
checked load 0 "campaign load" campaign load vg --csv vg.csv
full && checked proof 0 "campaign proof" campaign proof vg --out "$WORK/proof"
checked start 0 "campaign start" campaign start vg
VG_TIMEOUT=240 checked run 0 "run --until-idle (email, fax, letters)" run --until-idle
count() { sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign vg) AND channel = '$1' AND state = '$2'"; }
is "$(count email sent):$(count fax delivered):$(count mail batched)" "4:4:4" \
  "every notice reached its channel: 4 emails sent, 4 faxes delivered, 4 letters batched"
is "$(find "$WORK/cap" -name '*.eml' | wc -l)" 4 "the SMTP peer received 4 messages"
is "$(wc -l <"$WORK/gw.log")" 4 "the gateway accepted 4 faxes, one per number"
[ "$(wc -l <"$WORK/gw.log")" = 4 ] || sql "SELECT recipient_ref, from_state, to_state, detail FROM crier.dispatch_log
  WHERE channel = 'fax' ORDER BY id" | sed 's/^/#   /'
ok "the spool holds a batch PDF" test -n "$(find "$WORK/spool" -name '*.pdf' | head -1)"
checked status 0 "status" status vg --json
full && checked batches 0 "batch list" batch list vg
# a DSN for the first email: one bounce applied (the email moves on to fax)
token=$(sql "SELECT n.id || '.' || n.token FROM crier.notice n JOIN crier.recipient r
             ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq WHERE r.ref = 'e1'")
cat >dsn.eml <<EML
From: MAILER-DAEMON@example.com
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

Final-Recipient: rfc822; an@example.com
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 no such user

--b1--
EML
checked bounces 0 "bounces ingest" bounces ingest dsn.eml
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign vg) AND event = 'bounce'")" 1 \
  "the DSN was applied"
full && checked usage 64 "a usage error" campaign create
PGHOST=/nonexistent checked nodb 69 "an unreachable database" status
echo "# valgrind flow took $((SECONDS - started)) s"
done_testing
