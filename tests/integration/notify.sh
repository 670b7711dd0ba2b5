#!/bin/bash
# notify.sh - crier run under systemd's notify protocol (crier.service is Type=notify): a
# datagram socket stands in for systemd's NOTIFY_SOCKET and records what crier says:
# READY=1 once the lanes are up, STATUS= with the rate and the notices in flight,
# WATCHDOG=1 when WatchdogSec= is set, RELOADING=1 on SIGHUP, STOPPING=1 on SIGTERM.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
start_peer notify "$PY" "$TESTS_DIR/peers/notify_socket.py" "$WORK/notify.sock" "$WORK/notify.log"

write_config "channels:
  test: {lanes: 2, batch_size: 5, delay_ms: 200, default: accepted}"
{ echo "ref,name,email"; for i in $(seq 1 300); do echo "n$i,N $i,n$i@example.com"; done; } >people.csv
setup notify test people.csv

wait_for() { # SECONDS PATTERN - the notify log has a line matching PATTERN
  local deadline=$((SECONDS + $1))
  until grep -Eq -- "$2" "$WORK/notify.log" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

NOTIFY_SOCKET="$WORK/notify.sock" WATCHDOG_USEC=2000000 "$CRIER" run 2>"$WORK/run.log" &
worker=$!
ok "READY=1 once the lanes are up" wait_for 20 '^READY=1 \| STATUS=2 lanes up'
ok "WATCHDOG=1 when the watchdog is on" wait_for 10 '^WATCHDOG=1$'
ok "STATUS= with the rate and the notices in flight" wait_for 15 '^STATUS=[0-9]+ notices/s, [0-9]+ in flight, [0-9]+ recorded since start$'
like "$(grep -E '^STATUS=[0-9]+ notices/s' "$WORK/notify.log" | tail -1)" '^STATUS=[1-9][0-9]* notices/s, ([1-9]|10) in flight' \
  "while sending: a positive rate, and 1-10 notices in flight (2 lanes of batches of 5)"
kill -HUP "$worker"
ok "RELOADING=1 on SIGHUP" wait_for 10 '^RELOADING=1'
ready_twice() { [ "$(grep -c '^READY=1' "$WORK/notify.log")" -ge 2 ]; }
ok "READY=1 again after the lanes restart" wait_until 20 ready_twice
kill -TERM "$worker"
wait "$worker"
is "$?" 0 "crier run exits 0 on SIGTERM"
ok "STOPPING=1 on SIGTERM" wait_for 5 '^STOPPING=1'

done_testing
