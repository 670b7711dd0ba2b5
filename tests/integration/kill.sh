#!/bin/bash
# kill.sh - the crash test: `crier run` is killed with SIGKILL mid-batch three times, then
# run to completion. No notice may be lost, none left behind, none recorded twice, and the
# dispatch log must show each notice that was in flight at a kill going back to ready when
# its lease expired.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

NOTICES=3000
KILLS=3

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

# queue.lease 2s; two lanes claiming 20 notices at a time, each send taking 2 ms
write_config "channels:
  test: {lanes: 2, batch_size: 20, delay_ms: 2, default: accepted}"
sed -i 's/^  lease: 3s$/  lease: 2s/' crier.yaml
ok "the config has a 2 s lease" grep -qx '  lease: 2s' crier.yaml

seq 1 "$NOTICES" | awk 'BEGIN { print "ref,name,email" } { printf "k%d,Person %d,k%d@example.com\n", $1, $1, $1 }' >crash.csv
"$CRIER" campaign create crash --incident INC-9 --policy test >/dev/null &&
  "$CRIER" campaign load crash --csv crash.csv >/dev/null &&
  "$CRIER" campaign start crash >/dev/null
ok "campaign crash with $NOTICES notices created, loaded and started" test $? -eq 0

count_state() { sql "SELECT count(*) FROM crier.notice WHERE state = '$1'"; }
# owned PID - log rows and leases name their worker as host:PID:channel:lane
owned() { echo "LIKE '%:$1:test:%'"; }
claimed_by() { [ "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE actor $(owned "$1")")" -gt 0 ]; }

# --- kill -9 three times while notices are being sent -------------------------------------
in_flight_total=0
pids=()
for kill_number in $(seq 1 "$KILLS"); do
  "$CRIER" run --until-idle 2>"$WORK/run$kill_number.log" &
  pid=$!
  pids+=("$pid")
  ok "run $kill_number: the worker starts claiming" wait_until 15 claimed_by "$pid"
  # kill 0.5 to 1.5 s (at random) after its first claim - or sooner, once this run has
  # taken the list past its next quarter, so that no run can drain the whole list
  kill_at=$((${EPOCHREALTIME/./} / 1000 + 500 + RANDOM % 1001))
  cap=$((NOTICES * kill_number / (KILLS + 1)))
  until [ $((${EPOCHREALTIME/./} / 1000)) -ge "$kill_at" ] || [ "$(count_state sent)" -ge "$cap" ]; do
    sleep 0.02
  done
  ok "run $kill_number: the worker is still running when killed" kill -0 "$pid"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  in_flight=$(sql "SELECT count(*) FROM crier.notice WHERE state = 'sending' AND lease_owner $(owned "$pid")")
  recorded=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE to_state = 'sent' AND actor $(owned "$pid")")
  echo "# run $kill_number (pid $pid) killed with $in_flight notices in flight, $recorded recorded as sent"
  ok "run $kill_number was killed part way: it had recorded some and not all" \
    test "$recorded" -gt 0 -a "$(count_state sent)" -lt "$NOTICES"
  in_flight_total=$((in_flight_total + in_flight))
done
ok "some notices were in flight (leased, unrecorded) at the kills" test "$in_flight_total" -gt 0

# --- run to completion -----------------------------------------------------------------------
timeout 60 "$CRIER" run --until-idle >/dev/null 2>"$WORK/final.log"
is "$?" 0 "the final crier run --until-idle exits 0"

# nothing lost, nothing left behind
is "$(count_state sent)" "$NOTICES" "every notice is sent"
is "$(sql "SELECT count(*) FROM crier.notice WHERE state IN ('ready', 'sending')")" 0 "none is left ready or sending"
is "$(sql "SELECT state FROM crier.campaign WHERE name = 'crash'")" completed "the campaign is completed"

# the notices in flight at each kill went back to ready when the lease expired, logged as such
retried=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE from_state = 'sending' AND to_state = 'ready'
               AND detail LIKE 'lease of % expired%'")
is "$retried" "$in_flight_total" "one 'lease ... expired' retry row per notice in flight at a kill"
for pid in "${pids[@]}"; do
  is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE detail LIKE 'lease of %:$pid:test:% expired%'")" \
    "$(sql "SELECT count(DISTINCT notice_id) FROM crier.dispatch_log l WHERE actor $(owned "$pid")
            AND from_state = 'ready' AND to_state = 'sending' AND NOT EXISTS (
              SELECT 1 FROM crier.dispatch_log o WHERE o.notice_id = l.notice_id AND o.actor = l.actor
              AND o.from_state = 'sending')")" \
    "the retry rows naming pid $pid are exactly its claims it never recorded"
done

# no double recording: one 'sent' row per notice; one claim per notice, plus one per expiry
is "$(sql "SELECT count(*) FROM (SELECT n.id FROM crier.notice n LEFT JOIN crier.dispatch_log l
           ON l.notice_id = n.id AND l.to_state = 'sent' GROUP BY n.id HAVING count(l.id) <> 1) x")" 0 \
  "every notice has exactly one transition row with to_state='sent'"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE to_state = 'sent'")" "$NOTICES" "$NOTICES 'sent' rows in all"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE from_state = 'ready' AND to_state = 'sending'")" \
  "$((NOTICES + retried))" "claims = notices + retries after lease expiry"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE event = 'late_outcome'")" 0 "no outcome arrived after its lease"

echo "# killed $KILLS times, $retried retried after lease expiry"
done_testing
