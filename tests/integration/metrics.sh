#!/bin/bash
# metrics.sh - `crier run --metrics HOST:PORT` scraped with curl while a campaign runs, and
# its counters checked against `crier status` and the dispatch log once it is done; the
# waiting gauge for a campaign whose channel nobody serves; the running campaigns' notices
# by state and channel (crier_campaign_notices) equal to what `crier status --json` prints,
# a held notice included, and none for a finished campaign; metrics.listen, the same from
# the configuration.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
write_config "channels:
  test: {lanes: 2, batch_size: 5, delay_ms: 50, default: accepted}"
{ echo "ref,name,email,test_script"
  for i in $(seq 1 180); do echo "a$i,A $i,a$i@example.com,accepted"; done
  for i in $(seq 1 10); do echo "p$i,P $i,p$i@example.com,permanent"; done
  for i in $(seq 1 10); do echo "t$i,T $i,t$i@example.com,\"temporary,accepted\""; done
} >people.csv
setup m test people.csv
printf 'ref,name,email\nw1,W 1,w1@example.com\nw2,W 2,w2@example.com\n' >waiting.csv
setup mw email waiting.csv

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CRIER" run --metrics "127.0.0.1:$port" 2>"$WORK/run.log" &
worker=$!
scrape() { curl -sf "http://127.0.0.1:$port/metrics"; }
metric() { scrape | awk -v m="$1" '$1 == m { print $2 }'; } # NAME{LABELS} - its value
wait_for() { # SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do [ "$SECONDS" -lt "$deadline" ] || return 1; sleep 0.2; done
}
claimed_some() { [ "$(metric 'crier_notices_claimed_total{channel="test"}')" -gt 0 ] 2>/dev/null; }
ok "/metrics answers while the campaign runs, with notices claimed" wait_for 20 claimed_some
like "$(scrape)" $'# TYPE crier_in_flight_notices gauge\ncrier_in_flight_notices [0-9]+' "the in-flight gauge is there"
completed() { [ "$(sql "SELECT state FROM crier.campaign WHERE name = 'm'")" = completed ]; }
ok "the campaign completes" wait_for 60 completed
waiting_seen() { scrape | grep -q '^crier_waiting_notices{campaign="mw",channel="email"} 2$'; }
ok "crier_waiting_notices counts the 2 notices waiting for email, which nobody serves" wait_for 20 waiting_seen

# crier_campaign_notices: mw runs (nobody serves email), m has completed. A hold on w2
# keeps one of mw's notices: status derives "held" (hold.c), and so must the gauge.
run_crier hold place mw --recipient w2 --authority FBI --official "SA Roe" --case C-1 \
  --form written --reason "would impede the investigation"
is "$RC" 0 "a hold on w2 of campaign mw"
gauges_match() {
  scrape >"$WORK/metrics.txt" && "$CRIER" status --json >"$WORK/status.json" &&
    "$PY" "$TESTS_DIR/integration/gauges.py" "$WORK/metrics.txt" "$WORK/status.json" >"$WORK/gauges.out"
}
ok "crier_campaign_notices: each running campaign's count by channel and state is crier status --json's" \
  wait_for 20 gauges_match || sed 's/^/# /' "$WORK/gauges.out"
is "$(awk '$1 == "crier_campaign_notices{campaign=\"mw\",channel=\"email\",state=\"ready\"}" { print $2 }' "$WORK/metrics.txt") $(awk '$1 == "crier_campaign_notices{campaign=\"mw\",channel=\"email\",state=\"held\"}" { print $2 }' "$WORK/metrics.txt")" \
  "1 1" "mw: one ready on email, one held"
ok "a completed campaign (m) has no gauge" bash -c '! grep -q "^crier_campaign_notices{campaign=\"m\"" "$1"' _ "$WORK/metrics.txt"
like "$(cat "$WORK/metrics.txt")" $'# TYPE crier_campaign_notices gauge\n' "the gauge is declared"

out=$(scrape)
value() { awk -v m="$1" '$1 == m { print $2 }' <<<"$out"; }
run_crier status m --json
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" <<<"$OUT"; }
is "$(value 'crier_notices_sent_total{channel="test"}')" "$(json 'd["by_channel"]["test"]["sent"]')" \
  "sent = status' sent on test (190)"
is "$(value 'crier_notices_failed_total{channel="test"}')" "$(json 'd["by_state"]["undeliverable"]')" \
  "failed = status' undeliverable (10)"
is "$(value 'crier_notices_retried_total{channel="test"}')" 10 "retried: the 10 temporary failures"
is "$(value 'crier_notices_claimed_total{channel="test"}')" \
  "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE from_state = 'ready' AND to_state = 'sending'")" \
  "claimed = the dispatch log's claims (210)"
is "$(value 'crier_claim_seconds_bucket{channel="test",le="+Inf"}')" "$(value 'crier_claim_seconds_count{channel="test"}')" \
  "the claim histogram's +Inf bucket is its count"
ok "the record histogram counted batches" test "$(value 'crier_record_seconds_count{channel="test"}')" -gt 0
ok "lane busy time is positive" awk -v v="$(value 'crier_lane_busy_seconds_total{channel="test"}')" 'BEGIN { exit !(v > 0) }'
is "$(value crier_database_reconnects_total)" 0 "no database reconnect"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/other")" 404 "another path: 404"
kill -TERM "$worker"
wait "$worker"
is "$?" 0 "crier run exits 0"

run_crier run --until-idle --metrics nowhere
is "$RC" 78 "a bad --metrics address: exit 78"
like "$ERR" '"msg":"--metrics nowhere: expected HOST:PORT, e.g. 127.0.0.1:9464"' "saying what it expects"
like "$(head -1 <<<"$ERR")" '--metrics nowhere' "before anything else is logged: no lane started"

# metrics.listen: the same endpoint from the configuration, without --metrics
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{ cat crier.yaml; printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$port"; } >metrics.yaml
"$CRIER" -c metrics.yaml run 2>"$WORK/run-listen.log" &
worker=$!
ok "metrics.listen: crier run serves /metrics there, the campaign gauges too" wait_for 20 gauges_match
kill -TERM "$worker"
wait "$worker"
is "$?" 0 "and exits 0"

done_testing
