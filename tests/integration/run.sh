#!/bin/bash
# run.sh - `crier run` end to end with the scripted test channel and the null channel:
# outcomes, retries with backoff, fallback, undeliverable, a channel no worker serves (its
# notice waits until `campaign reroute`), completion,
# the dispatch log of every notice, pause, two workers sharing a queue, SIGTERM, one lane
# going round more campaigns than a session keeps prepared claims.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

# --- helpers -------------------------------------------------------------------------------

# campaign_id NAME
campaign_id() { sql "SELECT id FROM crier.campaign WHERE name = '$1'"; }

# in_campaign NAME - a WHERE clause for rows of one campaign

# count_notices NAME [STATE]
count_notices() {
  local state_filter=""
  [ -n "${2:-}" ] && state_filter="AND state = '$2'"
  sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign "$1") $state_filter"
}

# claims NAME [AFTER_LOG_ID] - ready->sending log rows of a campaign (one per notice claimed)
claims() {
  sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign "$1")
       AND from_state = 'ready' AND to_state = 'sending' AND id > ${2:-0}"
}

# history NAME REF - a notice's transitions: "channel:from>to[>to_channel]" words
history() {
  sql "SELECT string_agg(channel || ':' || coalesce(from_state, '-') || '>' || to_state
                         || coalesce('>' || to_channel, ''), ' ' ORDER BY id)
       FROM crier.dispatch_log WHERE $(in_campaign "$1") AND recipient_ref = '$2' AND event = 'transition'"
}


# people PREFIX N - a CSV of N recipients with emails
people() {
  seq 1 "$2" | awk -v p="$1" 'BEGIN { print "ref,name,email" }
    { printf "%s%d,Person %d,%s%d@example.com\n", p, $1, $1, p, $1 }'
}

# conditions for wait_until
sql_true() { [ "$(sql "$1")" = t ]; }                                 # QUERY returns t
at_least() { [ "$(count_notices "$1" "$2")" -ge "$3" ]; }            # NAME STATE N
none_in() { [ "$(count_notices "$1" "$2")" -eq 0 ]; }                # NAME STATE
claimed_since() { [ "$(claims "$1" "$2")" -ge "$3" ]; }              # NAME LOG_ID N
exited() { ! kill -0 "$1" 2>/dev/null; }                             # PID

# wait_exit PID SECONDS - wait for a background crier to exit; sets RC (124 if it did not)
wait_exit() {
  if wait_until "$2" exited "$1"; then
    wait "$1"
    RC=$?
  else
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    RC=124
  fi
}

# run_until_idle - crier run --until-idle, bounded to 60 s; stderr kept in run.log
run_until_idle() {
  timeout 60 "$CRIER" run --until-idle >"$WORK/out" 2>"$WORK/run.log"
  RC=$?
}

# --- end to end: scripted outcomes on "test", falling back to "null" ------------------------
write_config "channels:
  test: {lanes: 2}
  null:"
cat >e2e.csv <<'CSV'
ref,name,email,test_script,test_reachable
ok,Accepted At Once,ok@example.com,accepted,
tmp,Temporary Then Accepted,tmp@example.com,"temporary,accepted",
perm,Permanent On Test,perm@example.com,permanent,
unr,Unreachable On Test,unr@example.com,accepted,no
CSV
setup e2e test,null e2e.csv
printf 'ref,name,email,test_script\nsolo1,Nowhere To Go,solo@example.com,permanent\n' >solo.csv
setup solo test solo.csv
printf 'ref,name,email,test_script\nskip1,Email Disabled,skip@example.com,accepted\n' >skip.csv
setup skip email,test skip.csv

# test_reachable=no: the notice starts on null, the next channel of the policy
is "$(sql "SELECT n.channel || ' ' || n.channel_index || ' ' || array_to_string(n.reasons, ';')
           FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
           WHERE r.ref = 'unr'")" "null 1 test: not reachable" "a recipient unreachable on test starts on null"

started=$EPOCHREALTIME
run_until_idle
elapsed=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo "# crier run --until-idle took ${elapsed}s"
is "$RC" 0 "crier run --until-idle exits 0"
is "$(sql "SELECT string_agg(name || ':' || state, ' ' ORDER BY id) FROM crier.campaign")" \
  "e2e:completed solo:completed skip:running" "every campaign is completed but skip, which waits for email"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE event = 'campaign' AND from_state = 'running'
           AND to_state = 'completed'")" 2 "each completion is in the dispatch log"

# "accepted": sent, with the SHA-256 of what the test channel sent
is "$(sql "SELECT state FROM crier.notice WHERE $(in_campaign e2e) AND recipient_seq = 1")" sent "accepted -> sent"
is "$(sql "SELECT content_sha256 FROM crier.dispatch_log WHERE recipient_ref = 'ok' AND to_state = 'sent'")" \
  "$(printf 'test notice for ok in e2e' | sha256sum | cut -d' ' -f1)" "the sent row has the content's SHA-256"

# "temporary,accepted": retried after the backoff (backoff_min 1s, no jitter), then sent
is "$(history e2e tmp)" "test:ready>sending test:sending>ready test:ready>sending test:sending>sent" \
  "temporary -> ready, retried on the same channel -> sent"
is "$(sql "SELECT string_agg(attempt || ':' || detail, ' | ' ORDER BY id) FROM crier.dispatch_log
           WHERE recipient_ref = 'tmp' AND from_state = 'sending'")" \
  "1:scripted temporary (attempt 1) | 2:scripted accepted (attempt 2)" "two attempts are logged"
gap=$(sql "SELECT extract(epoch FROM max(at) - min(at)) FROM crier.dispatch_log
           WHERE recipient_ref = 'tmp' AND from_state = 'ready' AND to_state = 'sending'")
echo "# second claim of tmp came ${gap}s after the first"
ok "the retry was claimed no sooner than backoff_min (1 s) after the first claim" \
  awk -v g="$gap" 'BEGIN { exit !(g >= 1.0 && g < 5.0) }'

# "permanent": falls back to null, delivered; the log names the new channel and the reason
is "$(history e2e perm)" "test:ready>sending test:sending>ready>null null:ready>sending null:sending>delivered" \
  "permanent on test -> ready on null -> delivered"
like "$(sql "SELECT reason FROM crier.dispatch_log WHERE recipient_ref = 'perm' AND to_channel = 'null'")" \
  "^test: .*scripted permanent" "the fallback row has to_channel='null' and the reason"

# unreachable on test: never tried there
is "$(history e2e unr)" "null:ready>sending null:sending>delivered" "the unreachable recipient went straight to null"

# policy "test" alone, permanent: undeliverable, with the reasons
is "$(sql "SELECT state || ' | ' || array_to_string(reasons, '; ') FROM crier.notice WHERE $(in_campaign solo)")" \
  "undeliverable | test: scripted permanent (attempt 1); no channel left" "no channel left -> undeliverable with the reasons"
like "$(sql "SELECT reason FROM crier.dispatch_log WHERE recipient_ref = 'solo1' AND to_state = 'undeliverable'")" \
  "permanent.*no channel left" "the undeliverable row has the reason"

# policy "email,test" with email served by no worker: the notice waits on email, untouched,
# until the operator reroutes it (tests/integration/waiting.sh has the rest)
is "$(history skip skip1)" "" "a notice on a channel no worker serves is never claimed nor moved"
like "$(cat "$WORK/run.log")" "campaign skip names email in its policy, which this crier run does not serve" \
  "crier run warns at start that it does not serve skip's email"
run_crier campaign reroute skip --from email --to test --reason "no email relay in this test"
is "$OUT" "1 notice moved from email to test" "campaign reroute moves the waiting notice"
run_until_idle
is "$RC" 0 "crier run --until-idle exits 0 after the reroute"
is "$(history skip skip1)" "email:ready>ready>test test:ready>sending test:sending>sent" \
  "rerouted by the operator, then sent on test"
like "$(sql "SELECT actor || ' ' || reason FROM crier.dispatch_log WHERE recipient_ref = 'skip1' AND to_channel = 'test'")" \
  "^[a-z_0-9]+ rerouted by operator: no email relay in this test$" "the reroute row names the role and the reason"

# every notice: a claim (ready->sending) and a final row (sending->its final state)
is "$(sql "SELECT count(*) FROM crier.notice n WHERE NOT (
             EXISTS (SELECT 1 FROM crier.dispatch_log l WHERE l.notice_id = n.id
                     AND l.from_state = 'ready' AND l.to_state = 'sending')
             AND EXISTS (SELECT 1 FROM crier.dispatch_log l WHERE l.notice_id = n.id
                         AND l.from_state = 'sending' AND l.to_state = n.state))")" 0 \
  "every notice has a ready->sending and a sending->final row"
is "$(sql "SELECT string_agg(state, ',' ORDER BY id) FROM crier.notice")" \
  "sent,sent,delivered,delivered,undeliverable,sent" "every notice is in a final state"
is "$(sql "SELECT string_agg(name || ':' || state, ' ' ORDER BY id) FROM crier.campaign")" \
  "e2e:completed solo:completed skip:completed" "every campaign is completed"
run_crier status e2e --json
is "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], d["by_state"]["sent"], d["by_state"]["delivered"], d["by_channel"]["test"]["sent"], d["by_channel"]["null"]["delivered"])' <<<"$OUT")" \
  "completed 2 2 2 2" "status --json counts by state and by channel"

# progress: the tally status reads (017_status.sql) says what the log says, per UTC day
# and for the rate, before and after the workers' fold
log_days() { # NAME - day:sent:undeliverable of the finished notices, counted in the log
  sql "SELECT string_agg(d, ' ' ORDER BY d) FROM (SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
         || ':' || count(*) FILTER (WHERE to_state <> 'undeliverable')
         || ':' || count(*) FILTER (WHERE to_state = 'undeliverable') AS d
       FROM crier.dispatch_log WHERE $(in_campaign "$1") AND event = 'transition'
         AND (from_state = 'sending' AND to_state <> 'ready' OR to_state = 'undeliverable')
       GROUP BY to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')) t"
}
status_days() { # NAME - the same from status --json, then its rate_sample
  run_crier status "$1" --json
  python3 -c 'import json, sys; p = json.load(sys.stdin)["progress"]
print(" ".join("%s:%d:%d" % (d["day"], d["sent"], d["undeliverable"]) for d in p["per_day"]), p["rate_sample"])' <<<"$OUT"
}
attempts=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign e2e) AND event = 'transition'
                AND from_state = 'sending' AND to_state <> 'ready'")
is "$(status_days e2e)" "$(log_days e2e) $attempts" "status --json's per_day and rate_sample are the log's"
is "$(status_days solo)" "$(log_days solo) 1" "and for a campaign whose notice was undeliverable"
sql "SELECT crier.notice_tally_fold(id) FROM crier.campaign" >/dev/null
is "$(sql "SELECT count(*) FROM crier.progress_tally WHERE $(in_campaign e2e)")" \
  "$(sql "SELECT count(DISTINCT date_trunc('minute', at)) FROM crier.dispatch_log WHERE $(in_campaign e2e)
          AND event = 'transition' AND from_state = 'sending' AND to_state <> 'ready'")" \
  "a fold leaves one progress row per minute of the last hour"
is "$(status_days e2e)" "$(log_days e2e) $attempts" "and the same counts after the fold"

# --- pause: no claims while paused, the in-flight batch finishes, resume drains ------------
# One lane, batches of 5 taking 100 ms; a second campaign keeps the lane busy so that "no
# claim for the paused one" is observed while the worker is demonstrably claiming.
cat >pause.yaml <<'YAML'
queue: {lease: 3s, backoff_min: 1s, backoff_max: 2s, backoff_jitter: 0, idle_poll: 50}
log: {format: json}
channels:
  test: {lanes: 1, batch_size: 5, delay_ms: 20, default: accepted}
YAML
people pz 60 >pz.csv
people bg 150 >bg.csv
setup pz test pz.csv
setup bg test bg.csv
"$CRIER" -c pause.yaml run 2>"$WORK/pause.log" &
worker=$!
ok "the campaign to pause gets some notices sent first" wait_until 15 at_least pz sent 5
run_crier campaign pause pz
is "$RC:$OUT" "0:campaign pz paused" "pause while the worker runs"
pause_id=$(sql "SELECT max(id) FROM crier.dispatch_log WHERE $(in_campaign pz) AND to_state = 'paused'")
ok "the worker keeps claiming the other campaign (15 notices) after the pause" \
  wait_until 15 claimed_since bg "$pause_id" 15
first_bg=$(sql "SELECT min(id) FROM crier.dispatch_log WHERE $(in_campaign bg) AND from_state = 'ready'
                AND to_state = 'sending' AND id > $pause_id")
is "$(claims pz "$first_bg")" 0 "no claim of the paused campaign after its in-flight batch"
is "$(count_notices pz sending)" 0 "the paused campaign's in-flight batch was recorded"
ok "the paused campaign still has ready notices" test "$(count_notices pz ready)" -gt 0
run_crier campaign resume pz
is "$RC:$OUT" "0:campaign pz resumed" "resume"
ok "after resume both campaigns complete" \
  wait_until 30 sql_true "SELECT bool_and(state = 'completed') FROM crier.campaign WHERE name IN ('pz', 'bg')"
is "$(count_notices pz sent)" 60 "every notice of the paused campaign was sent in the end"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign pz) AND to_state = 'sent'")" 60 \
  "one sent row per notice"
kill -TERM "$worker"
wait_exit "$worker" 10
is "$RC" 0 "the worker exits 0 on SIGTERM"

# --- SIGTERM: the in-flight batch is recorded, then crier exits 0 --------------------------
cat >term.yaml <<'YAML'
queue: {lease: 3s, backoff_min: 1s, backoff_max: 2s, backoff_jitter: 0, idle_poll: 50}
log: {format: json}
channels:
  test: {lanes: 2, batch_size: 5, delay_ms: 200, default: accepted}
YAML
people term 40 >term.csv
setup term test term.csv
"$CRIER" -c term.yaml run 2>"$WORK/term.log" &
worker=$!
ok "notices are in flight" wait_until 15 at_least term sending 1
inflight=$(sql "SELECT string_agg(id::text, ',') FROM crier.notice WHERE $(in_campaign term) AND state = 'sending'")
signalled=$EPOCHREALTIME
kill -TERM "$worker"
wait_exit "$worker" 10
took=$(awk -v a="$signalled" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo "# crier run exited ${took}s after SIGTERM"
is "$RC" 0 "crier run exits 0 on SIGTERM"
ok "it exits within 5 s (a batch takes 1 s)" awk -v t="$took" 'BEGIN { exit !(t < 5) }'
like "$(cat "$WORK/term.log")" "SIGTERM received: finishing in-flight batches" "it says it is finishing the batches in flight"
is "$(count_notices term sending)" 0 "no notice is left in 'sending'"
is "$(sql "SELECT count(*) FILTER (WHERE state = 'sent') || '/' || count(*) FROM crier.notice WHERE id IN ($inflight)")" \
  "$(tr ',' '\n' <<<"$inflight" | wc -l)/$(tr ',' '\n' <<<"$inflight" | wc -l)" "the batches in flight at SIGTERM were recorded as sent"
ok "it stopped early: some notices are still ready" test "$(count_notices term ready)" -gt 0
"$CRIER" campaign cancel term >/dev/null

# --- two workers at once on one queue: every notice delivered exactly once ----------------
cat >twin.yaml <<'YAML'
queue: {lease: 3s, idle_poll: 50}
log: {format: json}
channels:
  null: {lanes: 2, batch_size: 10}
YAML
people twin 2000 >twin.csv
setup twin null twin.csv
"$CRIER" -c twin.yaml run --until-idle 2>"$WORK/twin1.log" &
twin1=$!
"$CRIER" -c twin.yaml run --until-idle 2>"$WORK/twin2.log" &
twin2=$!
wait_exit "$twin1" 60
is "$RC" 0 "first worker exits 0"
wait_exit "$twin2" 60
is "$RC" 0 "second worker exits 0"
is "$(count_notices twin delivered)" 2000 "all 2000 notices delivered"
is "$(sql "SELECT count(*) FROM (SELECT n.id FROM crier.notice n LEFT JOIN crier.dispatch_log l
           ON l.notice_id = n.id AND l.to_state = 'delivered' WHERE n.$(in_campaign twin)
           GROUP BY n.id HAVING count(l.id) <> 1) x")" 0 "every notice has exactly one 'delivered' row"
is "$(claims twin)" 2000 "every notice was claimed exactly once"
split=$(sql "SELECT string_agg(n::text, '+' ORDER BY pid) FROM (SELECT split_part(actor, ':', 2) AS pid, count(*) AS n
             FROM crier.dispatch_log WHERE $(in_campaign twin) AND to_state = 'delivered' GROUP BY 1) x")
echo "# delivered per worker process: $split"
ok "both workers delivered some of them" test "$(tr '+' '\n' <<<"$split" | wc -l)" -eq 2
is "$(sql "SELECT state FROM crier.campaign WHERE name = 'twin'")" completed "the campaign is completed"

# --- one lane, more running campaigns than a session keeps prepared claims ----------------
# The claim is prepared per campaign in each session, and a session keeps 16 (db.c): a
# lane going round 18 campaigns, two notices a claim, deallocates and prepares again on
# every visit. Every notice must still be claimed once and delivered.
cat >many.yaml <<'YAML'
queue: {idle_poll: 20}
channels:
  null: {lanes: 1, batch_size: 2}
YAML
for i in $(seq 18); do
  people "many$i-" 5 >"many$i.csv"
  setup "many$i" null "many$i.csv"
done
timeout 60 "$CRIER" -c many.yaml run --until-idle >"$WORK/out" 2>"$WORK/many.log"
is "$?" 0 "crier run --until-idle over 18 campaigns exits 0"
is "$(sql "SELECT count(*) FROM crier.notice n JOIN crier.campaign c ON c.id = n.campaign_id
           WHERE c.name LIKE 'many%' AND n.state = 'delivered' AND n.attempt = 1")" 90 \
  "all 90 notices of the 18 campaigns delivered, each at its first attempt"
is "$(sql "SELECT count(*) FROM crier.dispatch_log l JOIN crier.campaign c ON c.id = l.campaign_id
           WHERE c.name LIKE 'many%' AND l.from_state = 'ready' AND l.to_state = 'sending'")" 90 \
  "one claim per notice"
is "$(sql "SELECT count(*) FROM crier.campaign WHERE name LIKE 'many%' AND state = 'completed'")" 18 \
  "the 18 campaigns are completed"

# --- cancel while a batch is in flight ------------------------------------------------------
# The batch in flight comes back "temporary"; its notices must not stay 'ready' forever in a
# campaign that will never run again.
cat >halt.yaml <<'YAML'
queue: {lease: 3s, backoff_min: 1s, backoff_max: 2s, backoff_jitter: 0, idle_poll: 50}
log: {format: json}
channels:
  test: {lanes: 1, batch_size: 5, delay_ms: 200, default: temporary}
YAML
people halt 20 >halt.csv
setup halt test halt.csv
"$CRIER" -c halt.yaml run 2>"$WORK/halt.log" &
worker=$!
ok "a batch is in flight" wait_until 15 at_least halt sending 1
run_crier campaign cancel halt
like "$RC:$OUT" "^0:campaign halt cancelled: [0-9]+ notices not yet sent were cancelled$" "cancel while a batch is in flight"
ok "the in-flight batch is recorded" wait_until 10 none_in halt sending
kill -TERM "$worker"
wait_exit "$worker" 10
is "$RC" 0 "the worker exits 0"
is "$(count_notices halt ready)" 0 "no notice is left 'ready' in a cancelled campaign"
is "$(count_notices halt cancelled)" 20 "the batch in flight at the cancel ends cancelled too"
is "$(sql "SELECT count(*) FROM crier.dispatch_log l JOIN crier.campaign c ON c.id = l.campaign_id
           WHERE c.name = 'halt' AND l.from_state = 'sending' AND l.to_state = 'cancelled'
           AND l.reason LIKE '%campaign cancelled%'")" 5 "each is logged sending -> cancelled, with the reason"

done_testing
