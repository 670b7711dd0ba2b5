#!/bin/bash
# browser.sh - the console in Chromium, driven by Selenium with JavaScript off
# (tests/browser/console.py): with JavaScript on, campaign c's page counts down while it is
# sent, without a reload (live.js), and the script stops while the tab is hidden and for a
# finished campaign; a legal login places a hold through the form, with a PDF
# upload, while `crier run` sends the campaign, and nothing in its scope is claimed after
# the page says it is placed; an operator sees no hold form; an auditor finds a person
# whose name is an <img onerror> and sees it as text, and downloads the export, which
# verifies offline; the auditor finds a person by email and the proof says "content
# verified"; axe-core finds no serious or critical accessibility violation on any page; no
# page requests another host or logs a browser error. Screenshots of each page go to
# $CRIER_ARTIFACTS. Skips when Selenium or chromedriver is missing; the axe checks are
# skipped (said as SKIP) when npm is missing.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

if ! /usr/bin/python3 -c 'import selenium' 2>/dev/null || [ ! -x /usr/bin/chromedriver ]; then
  echo "1..0 # SKIP python3-selenium or chromium-driver is not installed"
  exit 0
fi
"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
role_logins

# campaign m's emails go to a capture peer: the auditor finds a person by email and sees
# their content verified
start_peer smtp "$PY" "$TESTS_DIR/peers/smtp_capture.py" "$WORK/mail" 0
write_config "database:
  conninfo: host=localhost dbname=$PGDATABASE
channels:
  test: {lanes: 1, batch_size: 2, delay_ms: 100, default: accepted}
  email:
    lanes: 1
    smtp: {host: 127.0.0.1, port: $PORT, timeout: 5}
    from: \"Example Corp <privacy@example.com>\"
    bounce_domain: bounces.example.com"
printf 'ref,name,email\nm1,Mary Mailed,mary@example.org\nm2,Mark Mailed,mark@example.org\n' >mailed.csv
"$CRIER" -c crier.yaml campaign create m --incident INC-m --policy email --meta "$META" >/dev/null &&
  "$CRIER" -c crier.yaml campaign load m --csv mailed.csv >/dev/null &&
  "$CRIER" -c crier.yaml campaign start m >/dev/null &&
  timeout 90 "$CRIER" -c crier.yaml run --until-idle >/dev/null 2>"$WORK/run-m.log"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign m) AND state = 'sent'")" 2 \
  "campaign m: two emails sent"

# axe-core (accessibility), from npm into a cache kept between runs: never from a CDN
AXE=$("$TESTS_DIR/browser/axe.sh" 2>"$WORK/axe.err")
[ -n "$AXE" ] || echo "# axe-core unavailable: $(tail -3 "$WORK/axe.err")"
{ echo "ref,name,email"
  echo "x1,<script>alert(1)</script>,x1@example.com"
  echo "x2,<img src=x onerror=alert(1)>,x2@example.com"
  for i in $(seq 3 1000); do echo "p$i,Person $i,p$i@example.com"; done
} >people.csv
"$CRIER" -c crier.yaml campaign create c --incident INC-c --policy test --meta "$META" >/dev/null &&
  "$CRIER" -c crier.yaml campaign load c --csv people.csv >/dev/null &&
  "$CRIER" -c crier.yaml campaign start c >/dev/null
ok "campaign c (1,000 people) created, loaded and started" test $? -eq 0

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CRIER" -c crier.yaml serve --listen "127.0.0.1:$port" >"$WORK/serve.out" 2>"$WORK/serve.log" &
server=$!
listening() { grep -q "^listening on" "$WORK/serve.out"; }
for _ in $(seq 200); do listening && break; sleep 0.05; done
ok "crier serve listens" listening || { echo "Bail out! $(cat "$WORK/serve.log")"; exit 1; }
"$CRIER" -c crier.yaml run 2>"$WORK/run.log" &
worker=$!
sending() { [ "$(sql "SELECT count(*) FROM crier.notice WHERE state = 'sent'")" -gt 0 ]; }
for _ in $(seq 200); do sending && break; sleep 0.05; done
ok "crier run is sending the campaign" sending

printf '%%PDF-1.4\n%% the agency letter\n' >letter.pdf
mkdir -p downloads
BASE="http://127.0.0.1:$port" LEGAL="t_legal_$$" AUDITOR="t_auditor_$$" OPERATOR="t_operator_$$" \
  DOCUMENT="$WORK/letter.pdf" DOWNLOADS="$WORK/downloads" SHOTS="${CRIER_ARTIFACTS:-$WORK/shots}" AXE="$AXE" \
  TAP_START=$TAP_COUNT HOME="$WORK" /usr/bin/python3 "$TESTS_DIR/browser/console.py" >"$WORK/browser.tap" 2>"$WORK/browser.err"
grep -E '^(not )?ok |^#' "$WORK/browser.tap"
TAP_COUNT=$(sed -n 's/^TAP_COUNT //p' "$WORK/browser.tap")
TAP_FAILED=$((TAP_FAILED + $(grep -c '^not ok' "$WORK/browser.tap")))
[ -n "$TAP_COUNT" ] || { echo "Bail out! the browser test did not finish: $(tail -5 "$WORK/browser.err")"; exit 1; }

is "$(sql "SELECT document_name || ' ' || document_sha256 FROM crier.hold WHERE official = 'Agent Browser'")" \
  "letter.pdf $(sha256sum letter.pdf | cut -d' ' -f1)" "the uploaded letter is kept with its SHA-256"
# the page said "placed" once the hold had committed and what was in flight had drained:
# from the hold's placement on, nothing of the campaign (its scope) is claimed. The mark is
# the hold's own log row, written once its trigger holds the claims' lock (as holds.sh),
# not placed_at: that is its transaction's start, and a claim under way then may still
# log after it (it is one of those the hold lists as handed over before it took effect).
is "$(sql "SELECT count(*) FROM crier.dispatch_log d WHERE d.from_state = 'ready' AND d.to_state = 'sending'
           AND d.id > (SELECT min(l.id) FROM crier.dispatch_log l JOIN crier.hold h ON h.id = l.hold_id
                       WHERE h.official = 'Agent Browser')")" 0 \
  "no notice in the hold's scope was claimed after it was placed"
ok "the campaign had notices left to hold" test "$(sql "SELECT count(*) FROM crier.notice WHERE state = 'ready'")" -gt 0
run_crier audit verify --file "$WORK/downloads/crier-audit-c.jsonl"
is "$RC" 0 "the export the auditor downloaded verifies offline"

kill -TERM "$worker"; wait "$worker"
kill -TERM "$server"
wait "$server"
is "$?" 0 "crier serve stops on SIGTERM"
done_testing
