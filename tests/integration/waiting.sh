#!/bin/bash
# waiting.sh - no silent rerouting (issue 17): a notice whose channel no live worker serves
# waits; `crier status` says so and since when; `crier run` warns; only `crier campaign
# reroute` moves it, logged. Against a real PostgreSQL, a real SMTP server (smtp_capture.py)
# and the real print spool.
#
# The issue asks for 60 s with a mail-only worker and 2 minutes with the email worker down.
# CI's budget is ~2 minutes for this test in both builds, so each window is
# CRIER_WAIT_SECONDS (default 25 s): two and a half times the old route_grace (10 s, the
# default here, as in production), after which the old router moved everyone at once.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

WAIT=${CRIER_WAIT_SECONDS:-25}
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
  echo "1..0 # SKIP $PY cannot import aiosmtpd (Debian: apt-get install python3-aiosmtpd)"
  exit 0
fi
"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

mkdir -p "$WORK/cap" "$WORK/spool"
start_peer cap "$PY" "$TESTS_DIR/peers/smtp_capture.py" "$WORK/cap" 0
SMTP_PORT=$PORT

# Production timings where they matter: route_grace is left at its default (10 s).
common="queue: {lease: 3s, backoff_min: 1s, backoff_max: 2s, backoff_jitter: 0, idle_poll: 50}
log: {format: json}"
cat >mail.yaml <<YAML
$common
channels:
  mail: {lanes: 1, spool: $WORK/spool, batch_window: 1s, return_address: 'Example Corp, 1 Main St, Springfield, IL 62701'}
YAML
cat >email.yaml <<YAML
$common
channels:
  email:
    lanes: 1
    batch_size: 1
    rate: 1
    smtp: {host: 127.0.0.1, port: $SMTP_PORT, timeout: 5}
    from: "Example Corp <privacy@example.com>"
    bounce_domain: bounces.example.com
YAML

# 30 people with an email and a postal address, and one with an email only
{
  echo "ref,name,email,address1,city,region,postal_code"
  for i in $(seq 1 30); do echo "p$i,Person $i,p$i@example.com,$i Elm St,Springfield,IL,62701"; done
  echo "nopost,No Postal Address,nopost@example.com,,,,"
} >people.csv
CRIER_CONFIG=mail.yaml setup w email,mail people.csv

moves() { sql "SELECT count(*) FROM crier.dispatch_log WHERE to_channel IS NOT NULL"; }
on() { sql "SELECT count(*) FROM crier.notice WHERE channel = '$1' AND state = '$2'"; }
at_least() { [ "$(on "$1" "$2")" -ge "$3" ]; } # CHANNEL STATE N
json_get() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# --- a mail-only worker beside a campaign with email in its policy: nobody moves ---------------
# umask 000: the batch files must still be 0640 (print.c), not 0666
(umask 000 && exec "$CRIER" -c mail.yaml run 2>"$WORK/mail.log") &
mail_worker=$!
sleep "$WAIT"
ok "the mail-only worker is still running after ${WAIT}s" kill -0 "$mail_worker"
is "$(moves)" 0 "in ${WAIT}s (route_grace 10 s) no notice moved to another channel"
is "$(on email ready)" 31 "all 31 notices still wait, ready on email"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE event = 'transition'")" 0 "no transition at all"
like "$(cat "$WORK/mail.log")" "campaign w names email in its policy, which this crier run does not serve: no live worker serves it" \
  "crier run warns at start that it does not serve email and nobody does"
like "$(cat "$WORK/mail.log")" "campaign w: 31 notices wait on email: no worker has served email yet" \
  "and says, later, that the notices wait"
run_crier -c mail.yaml status w
like "$OUT" "waiting: 31 notices of w on email: no worker has served email yet" "status shows them as waiting, and why"
run_crier -c mail.yaml status w --json
is "$(json_get 'd["waiting"][0]["channel"], d["waiting"][0]["notices"], d["waiting"][0]["since"], d["by_state"]["ready"]' <<<"$OUT")" \
  "email 31 None 31" "status --json: waiting, per channel, with no 'since' (never served)"

# a held notice waits for legal, not for a worker: with a hold placed, the waiting are the
# tallies' less the held ones, as status counts them (service.c); without, the tallies
run_crier -c mail.yaml hold place w --recipient p1 --authority FBI --official "SA Roe" --case W-1 \
  --form written --reason "would alert the suspects"
is "$RC" 0 "a hold placed on p1"
run_crier -c mail.yaml status w --json
is "$(json_get 'd["waiting"][0]["notices"]' <<<"$OUT")" 30 "status --json: the held person is not counted as waiting"
run_crier -c mail.yaml hold lift "$(sql "SELECT max(id) FROM crier.hold")" --evidence "agency letter W-1"
is "$RC" 0 "the hold lifted"
run_crier -c mail.yaml status w --json
is "$(json_get 'd["waiting"][0]["notices"]' <<<"$OUT")" 31 "status --json: after the lift p1 waits again"

"$CRIER" -c mail.yaml campaign pause w >/dev/null
run_crier -c mail.yaml campaign resume w
is "$RC:$ERR" "0:crier campaign resume: warning: no live crier run serves email, in the policy of w: its notices wait until one does (or crier campaign reroute moves them)" \
  "campaign resume (and start) warn about the policy's channels no live worker serves, not about mail"

# --- an email worker that sends a few, then is killed: what is left waits, nobody moves -------
"$CRIER" -c email.yaml run 2>"$WORK/email.log" &
email_worker=$!
ok "the email worker sends" wait_until 60 at_least email sent 3
run_crier -c mail.yaml status w --json
is "$(json_get 'len(d["waiting"])' <<<"$OUT")" 0 "while an email worker lives, nothing is 'waiting'"
kill -9 "$email_worker"
wait "$email_worker" 2>/dev/null
killed_at=$(date -u +%H:%M)
sent=$(on email sent)
echo "# email worker killed at $killed_at after $sent notices were sent"
sleep "$WAIT"
is "$(moves)" 0 "${WAIT}s after the email worker died, no notice moved to another channel"
is "$(on email ready)" $((31 - sent)) "the rest wait, ready on email (the killed batch's lease reaped back to ready)"
is "$(sql "SELECT count(*) FROM crier.notice WHERE channel <> 'email'")" 0 "no notice is on mail"
run_crier -c mail.yaml status w
like "$OUT" "waiting: $((31 - sent)) notices of w on email: no worker serves email since ($killed_at|$(date -u -d '1 min ago' +%H:%M)) UTC" \
  "status: 'no worker serves email since HH:MM' (the dead worker's last heartbeat)"
ok "the mail worker is still running" kill -0 "$mail_worker"

# --- the explicit reroute: exactly the waiting notices that mail reaches, logged ----------------
before=$(sql "SELECT coalesce(max(id), 0) FROM crier.dispatch_log")
waiting_ids=$(sql "SELECT string_agg(id::text, ',' ORDER BY id) FROM crier.notice n
                   WHERE channel = 'email' AND state = 'ready' AND EXISTS (SELECT 1 FROM crier.recipient r
                   WHERE r.seq = n.recipient_seq AND r.mailable)")
run_crier -c mail.yaml campaign reroute w --from email --to mail --reason "relay blocklisted, ticket OPS-12"
is "$RC" 0 "campaign reroute exits 0"
is "$OUT" "$((30 - sent)) notices moved from email to mail; 1 left waiting on email: mail cannot reach them" \
  "it says how many moved, and that the one without a postal address stays"
is "$(sql "SELECT string_agg(notice_id::text, ',' ORDER BY notice_id) FROM crier.dispatch_log
           WHERE id > $before AND event = 'transition'")" "$waiting_ids" \
  "exactly the waiting, mailable notices have a log row"
is "$(sql "SELECT DISTINCT channel || ' ' || from_state || '>' || to_state || '>' || to_channel || ' ' || actor || ' | ' || reason
           FROM crier.dispatch_log WHERE id > $before AND event = 'transition'")" \
  "email ready>ready>mail $(sql 'SELECT session_user') | rerouted by operator: relay blocklisted, ticket OPS-12" \
  "each row: email -> mail, by whom, and why"
like "$(sql "SELECT detail || ' | ' || reason FROM crier.dispatch_log WHERE id > $before AND event = 'campaign'")" \
  "^reroute email -> mail: $((30 - sent)) notices moved, 1 left on email .* \| relay blocklisted, ticket OPS-12$" \
  "the campaign's log has one row for the command"
is "$(on email sent)" "$sent" "the notices already sent by email are untouched"
is "$(sql "SELECT channel || ' ' || state FROM crier.notice n JOIN crier.recipient r ON r.seq = n.recipient_seq
           WHERE r.ref = 'nopost'")" "email ready" "the person mail cannot reach still waits on email"
ok "the mail worker prints the rerouted letters" wait_until 60 at_least mail batched $((30 - sent))
is "$(tail -q -n +2 "$WORK"/spool/B*.csv | wc -l)" $((30 - sent)) "one letter per rerouted notice in the print batch manifests"
is "$(stat -c %a "$WORK"/spool/B* | sort -u | tr '\n' ' ')" "640 " "batch files (PDF, manifest, checksums) are 0640, though the worker ran with umask 000"
run_crier -c mail.yaml campaign reroute w --from email --to mail --reason again
is "$OUT" "0 notices moved from email to mail; 1 left waiting on email: mail cannot reach them" "a second reroute moves nobody"

# --- reroute: bad input gets clear errors ----------------------------------------------------------
run_crier -c mail.yaml campaign reroute w --from email --to fax --reason x
is "$RC:$ERR" "65:crier campaign reroute: fax is not in the policy of campaign w" "--to outside the policy: exit 65, says so"
run_crier -c mail.yaml campaign reroute nosuch --from email --to mail --reason x
is "$RC:$ERR" "66:crier campaign reroute: no campaign named 'nosuch'" "an unknown campaign: exit 66"
run_crier -c mail.yaml campaign reroute w --from email --to mail
is "$RC:$ERR" "64:crier campaign reroute: missing --reason TEXT (see crier campaign reroute --help)" "--reason is required"
run_crier -c mail.yaml campaign reroute w --from email --to pigeon --reason x
is "$RC:$ERR" "64:crier campaign reroute: unknown channel 'pigeon' (email, fax, mail, null, test)" "an unknown channel: exit 64"

kill -TERM "$mail_worker"
wait "$mail_worker"
is "$?" 0 "the mail worker exits 0 on SIGTERM"

# --- a channel that cannot open is a start-up error, not a reason to move people on -----------
cat >broken.yaml <<YAML
$common
channels:
  mail: {lanes: 1, spool: $WORK/no-such-spool, return_address: 'Example Corp, 1 Main St'}
YAML
run_crier -c broken.yaml run --until-idle
is "$RC" 78 "crier run with a mail spool that does not exist exits 78"
like "$ERR" "channels.mail in broken.yaml cannot be used: No such file or directory" "and says which channel and why"
run_crier config check broken.yaml
is "$RC" 78 "config check finds it too"
like "$ERR" "^broken.yaml: channels.mail.spool $WORK/no-such-spool: No such file or directory$" "naming the key and the path"
mkdir -m 0755 "$WORK/open-spool"
sed "s|no-such-spool|open-spool|" broken.yaml >open.yaml
run_crier config check open.yaml
like "$RC:$ERR" "^78:open.yaml: channels.mail.spool $WORK/open-spool has mode 0755: .* must be 0700 or 0750" \
  "a spool open to others is refused, with the fix"
run_crier -c open.yaml run --until-idle
is "$RC" 78 "and crier run does not start with it"

# --- SIGHUP: reload between batches; a bad new config keeps the old one ---------------------------
cat >hup.yaml <<YAML
$common
channels:
  test: {lanes: 1, batch_size: 5, delay_ms: 300, default: accepted}
YAML
{ echo "ref,name,email"; for i in $(seq 1 200); do echo "h$i,H $i,h$i@example.com"; done; } >hup.csv
CRIER_CONFIG=hup.yaml setup hup test hup.csv
"$CRIER" -c hup.yaml run 2>"$WORK/hup.log" &
hup_worker=$!
ok "notices are in flight" wait_until 20 at_least test sending 1
sed -i 's/lanes: 1, batch_size: 5/lanes: 2, batch_size: 5/' hup.yaml
kill -HUP "$hup_worker"
ok "after a good SIGHUP the lanes restart with the new configuration (2 lanes)" \
  wait_until 20 grep -q '"msg":"crier [^ ]* starting: 2 lanes"' "$WORK/hup.log"
ok "crier run survives SIGHUP" kill -0 "$hup_worker"
like "$(cat "$WORK/hup.log")" "SIGHUP: configuration reloaded; finishing in-flight batches" "it says it reloads"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE event = 'late_outcome'")" 0 "no outcome was recorded late"
echo "channels: {test: {lanes: oops}}" >hup.yaml
kill -HUP "$hup_worker"
ok "a bad configuration on SIGHUP is reported" wait_until 20 grep -q 'SIGHUP: the configuration was not reloaded' "$WORK/hup.log"
like "$(cat "$WORK/hup.log")" 'hup.yaml is not valid: .*hup.yaml:1:' "naming the file, line and column"
sleep 1
ok "crier run still runs, on the old configuration" kill -0 "$hup_worker"
# a reload that would read a password its group may read is refused as a start would be
cat >hup.yaml <<YAML
$common
database: {conninfo: "password=never-used"}
channels:
  test: {lanes: 1, batch_size: 5, delay_ms: 300, default: accepted}
YAML
chmod 640 hup.yaml
kill -HUP "$hup_worker"
ok "a new configuration holding a password its group may read is refused on SIGHUP" \
  wait_until 20 grep -q 'hup.yaml holds a password (database.conninfo) and can be read by its group (mode 0640): refused' "$WORK/hup.log"
sleep 1
ok "crier run still runs, on the old configuration" kill -0 "$hup_worker"
done_before=$(on test sent)
ok "and still sends" wait_until 20 at_least test sent $((done_before + 1))
kill -TERM "$hup_worker"
wait "$hup_worker"
is "$?" 0 "then exits 0 on SIGTERM"
is "$(on test sending)" 0 "nothing is left in flight"

# --- journald: with stderr the journal, each line starts with its syslog priority ---------------
: >"$WORK/journal.err"
JOURNAL_STREAM=$(stat -c '%d:%i' "$WORK/journal.err") "$CRIER" -c broken.yaml run --until-idle 2>>"$WORK/journal.err"
like "$(grep 'cannot be used' "$WORK/journal.err")" '^<3>\{' "an error line starts with <3> when stderr is the journal"
"$CRIER" -c broken.yaml run --until-idle 2>"$WORK/plain.err"
like "$(grep 'cannot be used' "$WORK/plain.err")" '^\{' "and without JOURNAL_STREAM it does not"
run_crier --log-level loud status
is "$RC:$ERR" "64:crier: --log-level 'loud': expected debug, info, notice, warning or error" "--log-level checks its value"

done_testing
