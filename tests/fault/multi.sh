#!/bin/bash
# multi.sh - four `crier run` processes on one database, all started together on one
# campaign across the three channels: each person receives their notice exactly once,
# counted where it arrives (smtp-sink per address, the fax gateway per number, the final
# print manifests per notice); every process did a share of the work; every notice ends in
# its channel's done state with exactly one outcome row. Throughput for 1, 2 and 4
# processes is bench/multi.sh.
# CI: 20,000 people (1 in 20 by fax, 1 in 20 by mail). CRIER_SOAK=1: 200,000.
# MULTI_PEOPLE and MULTI_PROCESSES override. The soak has no time limit with
#   CRIER_SOAK=1 meson test -C build --suite fault multi --timeout-multiplier 0
# shellcheck source-path=SCRIPTDIR
FAULT_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/lib.sh
source "$FAULT_DIR/../integration/lib.sh"
# shellcheck source=peers.sh
source "$FAULT_DIR/peers.sh"
peer_tools_or_skip

if [ -n "${CRIER_SOAK:-}" ]; then PEOPLE=${MULTI_PEOPLE:-200000}; else PEOPLE=${MULTI_PEOPLE:-20000}; fi
PROCESSES=${MULTI_PROCESSES:-4}

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
start_sink
start_gateway
# one lane per channel in each process: four processes are four lanes per channel
channels_config 1 1 1
# No crash here, so no lease may run out: the 200,000 soak with the tests' 3 s lease, on a
# machine at load 20-29, had batches outlive their leases (an SMTP session is one step
# with no keepalive): 200 emails went twice and 4 print batches were orphaned and
# re-batched. That is the at-least-once path (crash.sh tests it); this test counts
# exactly-once under contention, with a lease no batch outlasts.
sed -i 's/^  lease: 3s$/  lease: 120s/' "$WORK/crier.yaml"
export CRIER_CONFIG="$WORK/crier.yaml"
people_csv "$PEOPLE" people.csv 20
setup multi email,fax,mail people.csv
emails=$(sql "SELECT count(*) FROM crier.notice WHERE channel = 'email'")
faxes=$(sql "SELECT count(*) FROM crier.notice WHERE channel = 'fax'")
letters=$(sql "SELECT count(*) FROM crier.notice WHERE channel = 'mail'")
is "$((emails + faxes + letters))" "$PEOPLE" "$PEOPLE notices: $emails email, $faxes fax, $letters mail"

started=$EPOCHREALTIME
pids=()
for p in $(seq "$PROCESSES"); do
  # bounded: a process still running after this long is stopped and fails the test
  timeout -s KILL $((PEOPLE / 50 + 120)) "$CRIER" run --until-idle 2>"$WORK/run$p.log" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=$((failed + 1))
done
took=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
is "$failed" 0 "all $PROCESSES crier run --until-idle processes exit 0"

is "$(sql "SELECT count(*) FROM crier.notice WHERE NOT ((channel = 'email' AND state = 'sent')
           OR (channel = 'fax' AND state = 'delivered') OR (channel = 'mail' AND state = 'batched'))")" 0 \
  "every notice is sent (email), delivered (fax) or batched (mail)"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE from_state = 'ready' AND to_state = 'sending'")" \
  "$PEOPLE" "one claim per notice: no two processes claimed the same notice"
is "$(sql "SELECT count(*) FROM crier.notice n WHERE (SELECT count(*) FROM crier.dispatch_log l
           WHERE l.notice_id = n.id AND l.from_state = 'sending') <> 1")" 0 \
  "one outcome row per notice"

# each process did a share of each channel
for channel in email fax mail; do
  is "$(sql "SELECT count(DISTINCT split_part(actor, ':', 2)) FROM crier.dispatch_log
             WHERE from_state = 'ready' AND to_state = 'sending' AND channel = '$channel'")" "$PROCESSES" \
    "$channel: all $PROCESSES processes claimed some"
done
shares=$(sql "SELECT string_agg(n::text, '/' ORDER BY n DESC) FROM (SELECT count(*) n FROM crier.dispatch_log
              WHERE from_state = 'ready' AND to_state = 'sending' GROUP BY split_part(actor, ':', 2)) x")

# counted where it arrives: once each
sink_counts >"$WORK/email.counts"
is "$(awk '$2 == 1' "$WORK/email.counts" | wc -l)/$(wc -l <"$WORK/email.counts")" "$emails/$emails" \
  "email: smtp-sink received each person's message exactly once"
is "$(psql -XAtq -v ON_ERROR_STOP=1 -c "CREATE TEMP TABLE got (address text PRIMARY KEY, copies int)" \
      -c "\\copy got FROM '$WORK/email.counts' WITH (DELIMITER ' ')" -c "ANALYZE got" \
      -c "SELECT count(*) FROM crier.recipient r JOIN got g ON g.address = r.email")" "$emails" \
  "email: the addresses received are exactly the recipients'"
gateway_counts >"$WORK/fax.counts"
is "$(awk '$2 == 1' "$WORK/fax.counts" | wc -l)/$(wc -l <"$WORK/fax.counts")" "$faxes/$faxes" \
  "fax: the gateway received each person's fax exactly once"
"$CRIER" batch list multi >/dev/null 2>&1 # settles the spool, as a mail room would
manifest_counts >"$WORK/mail.counts"
is "$(awk '$2 == 1' "$WORK/mail.counts" | wc -l)/$(wc -l <"$WORK/mail.counts")" "$letters/$letters" \
  "mail: each letter in exactly one final print batch"
is "$(find "$WORK/spool" -name '*.pending' -o -name '*.orphan' | wc -l)" 0 "mail: nothing pending or orphaned"

echo "# $PROCESSES processes, $PEOPLE notices ($emails email, $faxes fax, $letters mail) in $took s:" \
  "$(awk -v n="$PEOPLE" -v t="$took" 'BEGIN { printf "%.0f", n / t }') notices/s; claims per process $shares"
done_testing
