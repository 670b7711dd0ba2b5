#!/bin/bash
# failover.sh - the primary is lost mid-campaign and a streaming standby is promoted.
#
# Two clusters of its own (initdb, pg_basebackup -R; as the postgres user when run as
# root), on Unix sockets in a temp directory, so it needs the server binaries but not the
# cluster of pg_virtualenv. Email to Postfix's smtp-sink, counted per address.
#
# 1. Synchronous (synchronous_standby_names '*', synchronous_commit remote_apply): two
#    `crier run` processes with a multi-host conninfo (PGHOST=a,b, target_session_attrs
#    read-write, as docs/scaling.md advises). The primary is stopped with `immediate` (a
#    crash) a third of the way in and the standby promoted. The same processes must find
#    the new primary and finish: nothing lost (no one received more copies than their
#    lanes recorded attempts; every attempt has its outcome row), every person reached,
#    an extra copy only where the log shows a lease that ran out and a retry, the seal
#    chain intact, and the reconnected sessions set up again (application_name; jit off
#    with it).
# 2. Asynchronous, with the loss made certain: a new standby of the promoted server
#    streams until a third of a second campaign is done, then its WAL receiver is cut
#    (primary_conninfo ''), the primary runs on for a while and is crashed. The processes,
#    pointed at it alone, are stopped and new ones started against the promoted standby,
#    as an operator would. What the old primary had committed and the new one lacks is
#    read from the old one, started again on its own. docs/scaling.md predicts: every
#    person still reached, and every copy sent twice without a logged retry belongs to a
#    notice whose transactions were lost. The test checks exactly that, and that some were.
#
# FAILOVER_PEOPLE sets each campaign's size (default 4000). FAULT_ARTIFACTS=DIR keeps logs.
# shellcheck source-path=SCRIPTDIR
FAULT_DIR=$(cd "$(dirname "$0")" && pwd)
PEOPLE=${FAILOVER_PEOPLE:-4000}

pgbin=/usr/lib/postgresql/${PGVERSION:-}/bin
[ -n "${PGVERSION:-}" ] && [ -x "$pgbin/initdb" ] ||
  pgbin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/pg_basebackup" ]; then
  echo "1..0 # SKIP needs the PostgreSQL server binaries (Debian: postgresql)"
  exit 0
fi
as_pg=()
[ "$(id -u)" -ne 0 ] || as_pg=(runuser -u postgres --)

# the clusters' home: sockets, data directories and server logs
PGDIRS=$(mktemp -d /tmp/crier-failover-pg.XXXXXX)
chmod 755 "$PGDIRS"
[ "$(id -u)" -ne 0 ] || chown postgres: "$PGDIRS"
# the server reads PGPORT as its default port: none of crier's (multi-host) PG* settings
pg() { env -u PGHOST -u PGPORT -u PGTARGETSESSIONATTRS -u PGDATABASE "${as_pg[@]}" "$pgbin/$1" "${@:2}"; }
port_free() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# start NAME - start the cluster in $PGDIRS/NAME and wait for it
start() { pg pg_ctl -D "$PGDIRS/$1" -l "$PGDIRS/$1.log" -w -t 60 start >/dev/null; }
# crash NAME - stop it as a crash would: no shutdown checkpoint, every backend killed
crash() { pg pg_ctl -D "$PGDIRS/$1" -m immediate -w stop >/dev/null; }
stop_all() {
  local d
  for d in "$PGDIRS"/*/; do
    [ -f "$d/postmaster.pid" ] && pg pg_ctl -D "$d" -m immediate -w stop >/dev/null 2>&1
  done
  [ -z "${FAULT_ARTIFACTS:-}" ] || cp "$PGDIRS"/*.log "$FAULT_ARTIFACTS"/ 2>/dev/null
  rm -rf "$PGDIRS"
}
# at NAME SQL - one value from the postgres database of that cluster, wherever PG* point
at() { PGTARGETSESSIONATTRS=any psql -XAtq -v ON_ERROR_STOP=1 -h "$PGDIRS" -p "${port[$1]}" -U postgres -d "${DB:-postgres}" -c "$2"; }

declare -A port
port[a]=$(port_free) port[b]=$(port_free) port[c]=$(port_free)
# a primary: a standby may connect to it for replication over the socket (initdb's trust)
pg initdb -D "$PGDIRS/a" -U postgres -A trust --no-sync >"$PGDIRS/initdb.log" 2>&1 ||
  { echo "Bail out! initdb failed: $(tail -n 3 "$PGDIRS/initdb.log")"; stop_all; exit 1; }
cat >>"$PGDIRS/a/postgresql.conf" <<CONF
port = ${port[a]}
listen_addresses = ''
unix_socket_directories = '$PGDIRS'
fsync = off
wal_level = replica
wal_keep_size = '256MB'
CONF
# standby NAME FROM - a streaming standby of FROM, started
standby() {
  pg pg_basebackup -h "$PGDIRS" -p "${port[$2]}" -U postgres -D "$PGDIRS/$1" -R -X stream \
    -c fast --no-sync >>"$PGDIRS/basebackup.log" 2>&1 &&
    echo "port = ${port[$1]}" >>"$PGDIRS/$1/postgresql.conf" && start "$1"
}
start a || { echo "Bail out! the primary did not start: $(tail -n 3 "$PGDIRS/a.log")"; stop_all; exit 1; }
standby b a || { echo "Bail out! the standby did not start: $(tail -n 3 "$PGDIRS/b.log")"; stop_all; exit 1; }
at a "ALTER SYSTEM SET synchronous_standby_names = '*'" &&
  at a "ALTER SYSTEM SET synchronous_commit = 'remote_apply'" && at a "SELECT pg_reload_conf()" >/dev/null

# crier and its tests see both servers; libpq takes the one that accepts writes
export PGHOST="$PGDIRS,$PGDIRS" PGPORT="${port[a]},${port[b]}" PGUSER=postgres
export PGTARGETSESSIONATTRS=read-write
unset PGPASSWORD PGSERVICE
# shellcheck source=../integration/lib.sh
source "$FAULT_DIR/../integration/lib.sh"
# shellcheck source=peers.sh
source "$FAULT_DIR/peers.sh"
peer_tools_or_skip
trap 'cleanup; stop_all' EXIT
DB=$PGDATABASE

# wait_for COMMAND... - until it succeeds, at most 60 s
wait_for() {
  local deadline=$((SECONDS + 60))
  until "$@" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
sync_standby() { [ "$(at a "SELECT sync_state FROM pg_stat_replication")" = sync ]; }
ok "the standby streams synchronously (remote_apply)" wait_for sync_standby

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
start_sink
# only email: the sink counts every copy; the lease is short so that a batch in flight when
# the primary went away is reaped and retried quickly
write_config "channels:
  email:
    lanes: 2
    batch_size: 50
    smtp: {host: 127.0.0.1, port: $SINK_PORT, timeout: 10}
    from: \"Example Corp <privacy@example.com>\"
    bounce_domain: bounces.example.com"
export CRIER_CONFIG="$WORK/crier.yaml"
# people_csv N FILE PREFIX - N people by email only, refs and addresses PREFIX<i>
people() { people_csv "$1" "$2" "$((${1} + 10))" && sed -i "s/\\bp\\([0-9]\\)/$3\\1/g" "$2"; }

# done_ CAMPAIGN [NAME] - notices of CAMPAIGN past sending, on the current primary (NAME:
# on that server only)
done_() {
  local q
  q="SELECT count(*) FROM crier.notice WHERE $(in_campaign "$1") AND state = 'sent'"
  if [ -n "${2:-}" ]; then at "$2" "$q"; else sql "$q"; fi
}
# wait_done CAMPAIGN COUNT [NAME] - until that many are sent (or the processes are gone)
wait_done() {
  local deadline=$((SECONDS + 120))
  while [ "$(done_ "$1" "${3:-}" 2>/dev/null || echo 0)" -lt "$2" ] && [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "${runs[0]}" 2>/dev/null || kill -0 "${runs[1]}" 2>/dev/null || return 0
    sleep 0.1
  done
}
# run_two LOG - two `crier run --until-idle` in the background: runs=(PID PID)
run_two() {
  runs=()
  for k in 1 2; do
    timeout -s KILL $((PEOPLE / 20 + 120)) "$CRIER" run --until-idle 2>>"$WORK/$1$k.log" &
    runs+=($!)
  done
}
# copies CAMPAIGN - for CAMPAIGN: people never reached, people reached more than once, the
# ids of the notices with more copies than logged retries, and the notices with more
# copies than attempts their lane recorded (a lane's acknowledged outcome that was lost)
copies() {
  sink_counts >"$WORK/email.counts"
  psql -XAtq -v ON_ERROR_STOP=1 -c "CREATE TEMP TABLE got (address text PRIMARY KEY, copies int)" \
    -c "\\copy got FROM '$WORK/email.counts' WITH (DELIMITER ' ')" -c "ANALYZE got" \
    -c "CREATE TEMP TABLE e AS SELECT n.id, coalesce(g.copies, 0) AS copies,
          (SELECT count(*) FROM crier.dispatch_log l WHERE l.notice_id = n.id
           AND l.from_state = 'sending' AND l.detail LIKE 'lease of % expired%') AS retries,
          (SELECT count(*) FROM crier.dispatch_log c WHERE c.notice_id = n.id
           AND c.from_state = 'ready' AND c.to_state = 'sending' AND EXISTS (SELECT 1
             FROM crier.dispatch_log o WHERE o.notice_id = c.notice_id AND o.actor = c.actor
             AND o.attempt = c.attempt AND o.from_state = 'sending')) AS recorded
        FROM crier.notice n JOIN crier.recipient r
          ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
        LEFT JOIN got g ON g.address = r.email WHERE n.$(in_campaign "$1")" \
    -c "SELECT count(*) FILTER (WHERE copies = 0) || ' ' || count(*) FILTER (WHERE copies > 1)
        || ' ' || count(*) FILTER (WHERE copies > recorded) || ' '
        || coalesce(string_agg(id::text, ',') FILTER (WHERE copies - 1 > retries), '') FROM e"
}
# every claim row has an outcome row for its attempt: from its lane, or from the reaper
# when the lane never learned that its claim had committed (the server went away while
# the commit waited for the standby) and so sent nothing
unended() {
  sql "SELECT count(*) FROM crier.dispatch_log c WHERE c.$(in_campaign "$1")
       AND c.from_state = 'ready' AND c.to_state = 'sending'
       AND NOT EXISTS (SELECT 1 FROM crier.dispatch_log o WHERE o.notice_id = c.notice_id
         AND o.attempt = c.attempt AND o.from_state = 'sending')"
}

# --- 1. synchronous replication: zero loss, the same processes carry on -----------------
people "$PEOPLE" sync.csv s
setup sync email sync.csv
started=$EPOCHREALTIME
run_two sync
wait_done sync $((PEOPLE / 3))
at_crash=$(done_ sync a)
crash a
ok "primary crashed at $at_crash/$PEOPLE sent" test "$at_crash" -lt "$PEOPLE"
pg pg_ctl -D "$PGDIRS/b" -w promote >/dev/null
ok "the standby is promoted" test $? -eq 0
# the reconnected sessions, seen once they work again: application_name is set with jit = off
wait_done sync $((at_crash + PEOPLE / 10))
# (a session caught between its connect and its setup is asked again, for up to 10 s)
sessions_set_up() {
  app_names=$(at b "SELECT count(*) FILTER (WHERE application_name = 'crier run') || '/' || count(*)
                    FROM pg_stat_activity WHERE datname = '$DB' AND backend_type = 'client backend'
                    AND pid <> pg_backend_pid()")
  local set_up=${app_names%/*} all=${app_names#*/}
  [ "${set_up:-0}" -gt 0 ] 2>/dev/null && [ "$set_up" = "$all" ]
}
wait_until 10 sessions_set_up || true
failed=0
for pid in "${runs[@]}"; do wait "$pid" || failed=$((failed + 1)); done
took=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
is "$failed" 0 "both crier run processes rode out the failover and exited 0"
is "$(sql "SELECT pg_is_in_recovery()")" f "libpq's target_session_attrs found the new primary"
like "$app_names" '^([1-9][0-9]*)/\1$' "every reconnected crier session is set up again (application_name, jit off): $app_names"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign sync) AND state <> 'sent'")" 0 \
  "sync: every notice sent"
is "$(unended sync)" 0 "sync: every attempt has its outcome row on the new primary"
read -r lost dups over unexplained <<<"$(copies sync)"
is "$lost" 0 "sync: every person reached (smtp-sink)"
is "$over" 0 "sync: no one received more copies than their lanes recorded attempts (no acknowledged outcome lost)"
is "$unexplained" "" "sync: an extra copy only with a 'lease ... expired' retry in the log"
run_crier audit verify --campaign sync
is "$RC" 0 "sync: the seal chain is intact on the new primary"
sync_note="sync: crashed at $at_crash/$PEOPLE, $dups people reached twice (each with a logged retry), run $took s"

# --- 2. asynchronous replication, with a lag: the loss docs/scaling.md predicts ------------
standby c b || { echo "Bail out! the second standby did not start: $(tail -n 3 "$PGDIRS/c.log")"; exit 1; }
at b "ALTER SYSTEM RESET synchronous_standby_names" && at b "SELECT pg_reload_conf()" >/dev/null
streaming() { [ "$(at b "SELECT state FROM pg_stat_replication")" = streaming ]; }
ok "a new standby streams from the promoted server, asynchronously" wait_for streaming
people "$PEOPLE" async.csv q
setup async email async.csv
# the processes know the one server, as a configuration without a multi-host conninfo
export PGHOST=$PGDIRS PGPORT=${port[b]}
run_two async
wait_done async $((PEOPLE / 3)) b
# the standby stops receiving; the primary goes on committing for a while, then is lost
at c "ALTER SYSTEM SET primary_conninfo = ''" && at c "SELECT pg_reload_conf()" >/dev/null
cut=$(done_ async b)
not_receiving() { [ "$(at c "SELECT count(*) FROM pg_stat_wal_receiver")" = 0 ]; }
ok "the standby's WAL receiver stopped" wait_for not_receiving
wait_done async $((cut + PEOPLE / 6)) b
at_crash=$(done_ async b)
crash b
ok "primary crashed at $at_crash/$PEOPLE sent, $((at_crash - cut)) after the standby stopped receiving" \
  test "$at_crash" -gt "$cut"
for pid in "${runs[@]}"; do kill -TERM "$pid" 2>/dev/null; done
for pid in "${runs[@]}"; do wait "$pid"; done
pg pg_ctl -D "$PGDIRS/c" -w promote >/dev/null
ok "the second standby is promoted" test $? -eq 0
export PGPORT=${port[c]}
# what the lost primary had: started again on its own (nothing connects to it but this)
start b
at b "SELECT id || ' ' || state FROM crier.notice WHERE $(in_campaign async)" | sort >"$WORK/old.states"
sql "SELECT id || ' ' || state FROM crier.notice WHERE $(in_campaign async)" | sort >"$WORK/new.states"
crash b
comm -23 "$WORK/old.states" "$WORK/new.states" | cut -d' ' -f1 | sort -u >"$WORK/lost.ids"
lost_notices=$(wc -l <"$WORK/lost.ids")
ok "the promoted standby lacks what the old primary committed after the cut ($lost_notices notices)" \
  test "$lost_notices" -gt 0
run_two async-after
failed=0
for pid in "${runs[@]}"; do wait "$pid" || failed=$((failed + 1)); done
is "$failed" 0 "async: new processes against the promoted standby finish"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign async) AND state <> 'sent'")" 0 \
  "async: every notice sent"
read -r lost dups over unexplained <<<"$(copies async)"
is "$lost" 0 "async: every person reached"
tr ',' '\n' <<<"$unexplained" | sed '/^$/d' | sort -u >"$WORK/unexplained.ids"
is "$(comm -23 "$WORK/unexplained.ids" "$WORK/lost.ids" | wc -l)" 0 \
  "async: every copy sent twice without a logged retry is a notice whose transactions were lost"
run_crier audit verify --campaign async
is "$RC" 0 "async: the seal chain is intact on the promoted standby (shorter, not broken)"

[ -z "${FAULT_ARTIFACTS:-}" ] || cp "$WORK"/*.log "$FAULT_ARTIFACTS"/
echo "# $sync_note"
echo "# async: $((at_crash - cut)) sent after the cut, $lost_notices notices lost, $dups people" \
  "reached twice ($(wc -l <"$WORK/unexplained.ids") with no retry in the log, $over with more copies" \
  "than recorded attempts)"
done_testing
