#!/bin/bash
# scale.sh N PROCESSES CHANNEL [RUNS] - does a campaign's cost stay linear in its size?
#
# Loads N people into a fresh database (no VACUUM, no ANALYZE: as a new user would), starts
# PROCESSES `crier run --until-idle` side by side on CHANNEL (null, or email to Postfix's
# smtp-sink), and prints from the dispatch log's own timestamps the rate of each fifth of
# the campaign, the overall rate, and the peak RSS of the largest process. In the same run,
# on the same database and a second campaign of the same N, it runs the ceiling: the same
# claim and outcome transitions and log rows done by PostgreSQL in two set-based
# statements (as bench/engine.sh), and prints crier's ratio to it. RUNS (default 3) runs
# each; the last line gives the medians.
#
# Targets (issue 12), 1,000,000 people, null channel: last fifth >= 0.9 x first fifth for
# 1, 2 and 4 processes; 2 processes >= 1; overall >= 0.9 x ceiling; peak RSS <= 64 MB.
#
# LANES and BATCH set each process's lanes and claim size (default 2 and 500); LEASE sets
# queue.lease (default crier's: the reaper runs every quarter lease, at most every 10 s,
# and an email batch's lease is kept alive every third of it). PLANS=DIR writes, for each
# run, the plans of every statement that ran during one second at about 90 % of the
# campaign (auto_explain with ANALYZE), `crier status` included, to
# DIR/plans-N-P-CHANNEL-RUN.log (PLANS_AT=PERCENT moves the second, PLANS_SECONDS widens
# it: the reaper and the keep-alive need a few seconds and a short LEASE to be caught;
# auto_explain slows that fifth). TIMEOUT=SECONDS stops the processes (SIGTERM) after
# that long and reports the fifths reached: to measure a build that would not finish.
# BUILD=DIR picks the build (relative to the repository, or absolute). KEEP=1 keeps the
# work directory. AFTER_LOAD='SQL' runs SQL as the cluster's superuser after crier's load
# and before the start (an A/B of storage or autovacuum settings without a migration).
# SHARED_BUFFERS sets the cluster's (default 512MB). SEAL_INTERVAL sets audit.seal_interval
# (default crier's 5s; 0 turns off the sealing crier run does as it goes).
# PERF=DIR records the whole machine (`perf record -a`, 499 Hz, call graphs by frame pointer)
# from the processes' start to their end, to DIR/perf-N-P-CHANNEL-RUN.data, and prints the
# `perf report --time` ranges of the first and the last fifth: the two profiles to compare.
# STATEMENTS=DIR loads pg_stat_statements and writes, for each run, every statement's calls,
# time and buffers in the first and in the last fifth (snapshots taken as the tally passes
# 20 % and 80 %, polled every 0.2 s), to DIR/statements-N-P-CHANNEL-RUN.txt.
# Every run prints the autovacuum and autoanalyze runs that ended during it, with the
# second of the run they ended at and how long each took (log_autovacuum_min_duration=0).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,30p' "$0"; exit 64; }
n=$1 procs=$2 channel=$3 runs=${4:-3}
case $channel in null | email) ;; *) echo "scale.sh: CHANNEL is null or email" >&2; exit 64 ;; esac
build=${BUILD:-build}
[ -x "$build/crier" ] || [ -x "$PWD/$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
for tool in /usr/bin/time bc; do [ -x "$(command -v $tool)" ] || { echo "scale.sh needs $tool"; exit 1; }; done
case $build in /*) ;; *) build=$PWD/$build ;; esac
export CRIER=$build/crier LANES=${LANES:-2} BATCH=${BATCH:-500} CHANNEL=$channel
export LEASE=${LEASE:-} SEAL_INTERVAL=${SEAL_INTERVAL:-} PLANS_SECONDS=${PLANS_SECONDS:-1} AFTER_LOAD=${AFTER_LOAD:-}
export BENCH=$PWD/bench META=$PWD/tests/data/incident.yaml PLANS=${PLANS:+$(realpath -m "$PLANS")} TIMEOUT=${TIMEOUT:-}
export PERF=${PERF:+$(realpath -m "$PERF")} STATEMENTS=${STATEMENTS:+$(realpath -m "$STATEMENTS")}
[ -z "$STATEMENTS" ] || mkdir -p "$STATEMENTS"
[ -z "$PLANS" ] || mkdir -p "$PLANS"
[ -z "$PERF" ] || { mkdir -p "$PERF"; command -v perf >/dev/null || { echo "PERF needs perf (linux-perf)"; exit 1; }; }
work=$(mktemp -d /tmp/crier-bench-scale.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir -m 777 "$work/pglog"
python3 bench/gen_list.py "$n" >"$work/list.csv"

export SINK_PORT=0
if [ "$channel" = email ]; then
  [ -x /usr/sbin/smtp-sink ] || { echo "scale.sh email needs Postfix's smtp-sink"; exit 1; }
  SINK_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  user=()
  [ "$(id -u)" -ne 0 ] || user=(-u nobody)
  /usr/sbin/smtp-sink "${user[@]}" -c "127.0.0.1:$SINK_PORT" 1000 >"$work/sink.out" 2>"$work/sink.err" &
  pids+=($!)
fi

pg_virtualenv -t -o "shared_buffers=${SHARED_BUFFERS:-512MB}" -o 'max_wal_size=4GB' \
  -o "shared_preload_libraries=auto_explain${STATEMENTS:+,pg_stat_statements}" -o 'logging_collector=on' \
  -o 'log_autovacuum_min_duration=0' \
  -o "log_directory=$work/pglog" -o 'log_filename=pg.log' \
  bash -s "$work" "$n" "$procs" "$runs" <<'INNER'
set -euo pipefail
work=$1 n=$2 procs=$3 runs=$4
cd "$work"
{
  echo "queue: {idle_poll: 20${LEASE:+, lease: $LEASE}}"
  echo "log: {level: warning}"
  [ -z "$SEAL_INTERVAL" ] || echo "audit: {seal_interval: $SEAL_INTERVAL}"
  echo "channels:"
  if [ "$CHANNEL" = email ]; then
    echo "  email:"
    echo "    lanes: $LANES"
    echo "    batch_size: $BATCH"
    echo "    smtp: {host: 127.0.0.1, port: $SINK_PORT, starttls: off, timeout: 30}"
    echo "    from: \"Example Corp <privacy@example.com>\""
    echo "    bounce_domain: bounces.example.com"
  else
    echo "  null: {lanes: $LANES, batch_size: $BATCH}"
  fi
} >crier.yaml
export CRIER_CONFIG=$work/crier.yaml
final=delivered
[ "$CHANNEL" = null ] || final=sent
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
q() { psql -XAt -v ON_ERROR_STOP=1 "$@"; }
sink_count() { tr '\r' '\n' <"$work/sink.out" | awk -F'mesg=' 'NF > 1 { m = $2 + 0 } END { print m + 0 }'; }

# plans - one second of auto_explain (ANALYZE) at ~PLANS_AT %, crier status inside it;
# at 0 % explain_on runs before the processes start, so a short run is caught from its
# first claim
explain_on() {
  : >"$work/pglog/pg.log"
  q -c "ALTER SYSTEM SET auto_explain.log_min_duration = 0" \
    -c "ALTER SYSTEM SET auto_explain.log_analyze = on" \
    -c "ALTER SYSTEM SET auto_explain.log_buffers = on" \
    -c "ALTER SYSTEM SET auto_explain.log_nested_statements = on" -c "SELECT pg_reload_conf()" >/dev/null
}
plans() { # FILE CAMPAIGN_ID
  local target=$((n * ${PLANS_AT:-90} / 100)) done_=-1
  if [ "$target" -gt 0 ]; then
    while [ "$done_" -lt "$target" ]; do
      sleep 0.5
      done_=$(q -c "SELECT coalesce(sum(n), 0) FROM crier.notice_tally WHERE campaign_id = $2
                    AND state = '$final'") || return 0
    done
    explain_on
  fi
  sleep 0.5
  /usr/bin/time -f 'crier status --json: %e s' "$CRIER" status crier --json >/dev/null 2>>"$1"
  sleep "$(echo "$PLANS_SECONDS - 0.5" | bc)"
  q -c "ALTER SYSTEM RESET auto_explain.log_min_duration" -c "SELECT pg_reload_conf()" >/dev/null
  cat "$work/pglog/pg.log" >>"$1"
}

# server_events LOG_OFFSET T0 T1 - what the server did between T0 and T1
# (epoch seconds), from its log: checkpoints started and completed, and every autovacuum
# or autoanalyze of crier's tables, at the second of the run it happened, beside the
# seconds at which each fifth ended
server_events() {
  tail -c +"$(($1 + 1))" "$work/pglog/pg.log" | python3 -c '
import re, sys, datetime
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
stamp = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC \[\d+\] (?:\S+ )?LOG:  (.*)")
def at(s):
    d = datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp() - t0
pending = None
for line in sys.stdin:
    m = stamp.match(line)
    if m:
        pending = None
        when, msg = at(m[1]), m[2]
        if not 0 <= when <= t1 - t0:
            continue
        if msg.startswith("checkpoint"):
            print("  at %6.1f s: %s" % (when, msg[:msg.find(";")] if ";" in msg else msg))
        v = re.match(r"automatic (vacuum|analyze) of table \"[^.]*\.crier\.([^\"]+)\"", msg)
        if v:
            pending = (when, v[1], v[2])
        continue
    e = re.search(r"elapsed: ([0-9.]+) s", line)
    if pending and e:
        print("  at %6.1f s: autovacuum: %s %s ended, %s s" % (pending[0], pending[1], pending[2], e[1]))
        pending = None
' "$2" "$3"
}

# statements FILE CAMPAIGN_ID - pg_stat_statements' counters over the first fifth (from
# the reset before the start to 20 %) and over the last (80 % to 100 %), statement by
# statement, the costliest in the last fifth first
statements() {
  local snap
  for snap in 1 2 3; do
    local target=$((n * (snap == 1 ? 20 : snap == 2 ? 80 : 100) / 100)) done_=-1
    while [ "$done_" -lt "$target" ]; do
      sleep 0.2
      [ ! -e timed-out ] || return 0 # a stopped run reaches no 100 %
      done_=$(q -c "SELECT coalesce(sum(n), 0) FROM crier.notice_tally WHERE campaign_id = $2
                    AND state = '$final'") || return 0
    done
    q -q -c "CREATE TABLE IF NOT EXISTS public.pss_snap AS SELECT 0 AS snap, * FROM pg_stat_statements LIMIT 0" \
      -c "INSERT INTO public.pss_snap SELECT $snap, * FROM pg_stat_statements"
  done
  q -F' | ' -P footer=off -f - >"$1" <<'SQL'
WITH s AS (SELECT snap, queryid, max(query) AS query, sum(calls) AS calls, sum(total_exec_time) AS ms,
                  sum(rows) AS rows, sum(shared_blks_hit) AS hit, sum(shared_blks_read) AS read,
                  sum(shared_blks_dirtied) AS dirtied, sum(shared_blks_written) AS written
           FROM public.pss_snap GROUP BY snap, queryid),
f AS (SELECT a.queryid, a.query, a.calls AS c1, a.ms AS ms1, a.hit AS h1, a.read AS r1, a.written AS w1,
             c.calls - coalesce(b.calls, 0) AS c5, c.ms - coalesce(b.ms, 0) AS ms5,
             c.hit - coalesce(b.hit, 0) AS h5, c.read - coalesce(b.read, 0) AS r5,
             c.written - coalesce(b.written, 0) AS w5
      FROM s c LEFT JOIN s a ON a.queryid = c.queryid AND a.snap = 1
      LEFT JOIN s b ON b.queryid = c.queryid AND b.snap = 2 WHERE c.snap = 3)
SELECT round(coalesce(ms1, 0)) AS ms_first, round(ms5) AS ms_last, coalesce(c1, 0) AS calls_first, c5 AS calls_last,
       coalesce(h1, 0) || '/' || coalesce(r1, 0) || '/' || coalesce(w1, 0) AS "hit/read/written first",
       h5 || '/' || r5 || '/' || w5 AS "hit/read/written last",
       left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS query
FROM f ORDER BY ms5 DESC NULLS LAST LIMIT 30
SQL
}

load_campaign() {
  "$CRIER" campaign create "$1" --incident BENCH --policy "$CHANNEL" --meta "$META" >/dev/null
  "$CRIER" campaign load "$1" --csv list.csv >/dev/null
}

results=()
for i in $(seq "$runs"); do
  db=scale_$i
  createdb "$db"
  export PGDATABASE=$db
  "$CRIER" db migrate >/dev/null
  # only crier's campaign now: the ceiling's is loaded after crier's run, just before it
  # runs, so that autovacuum's first pass over that campaign's fresh partitions (analyze
  # of 1,000,000 recipients ~2 s, vacuum of its notices ~1 s) does not fall inside crier's
  # run, and each side meets its own campaign's first autovacuum as a user would
  load_campaign crier
  id=$(q -c "SELECT id FROM crier.campaign WHERE name = 'crier'")
  [ -z "$AFTER_LOAD" ] || q -q -c "$AFTER_LOAD"
  "$CRIER" campaign start crier >/dev/null
  log_from=$(stat -c %s "$work/pglog/pg.log" 2>/dev/null || echo 0)
  sink_before=0
  [ "$CHANNEL" = null ] || sink_before=$(sink_count)
  [ -z "$PLANS" ] || [ "${PLANS_AT:-90}" -gt 0 ] || explain_on
  wal0=$(q -c "SELECT wal_bytes, wal_fpi FROM pg_stat_wal")
  reads0=$(q -c "SELECT sum(blks_read) FROM pg_stat_database")
  written0=$(q -c "SELECT buffers_backend FROM pg_stat_bgwriter")
  profiler=
  if [ -n "$PERF" ]; then
    perf record -q -a -g -F 499 -o "$PERF/perf-$n-$procs-$CHANNEL-$i.data" 2>"$PERF/perf-$i.err" &
    profiler=$!
    sleep 1 # its buffers mapped before the first claim
  fi
  stats=
  if [ -n "$STATEMENTS" ]; then
    q -q -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "DROP TABLE IF EXISTS public.pss_snap" \
      -c "SELECT pg_stat_statements_reset()" >/dev/null
  fi
  t0=$(date +%s.%N)
  ps=()
  for k in $(seq "$procs"); do
    /usr/bin/time -f '%e %M' -o "time$k.out" "$CRIER" run --until-idle 2>"run$k.err" &
    ps+=($!)
  done
  if [ -n "$STATEMENTS" ]; then
    statements "$STATEMENTS/statements-$n-$procs-$CHANNEL-$i.txt" "$id" &
    stats=$!
  fi
  planner=
  if [ -n "$PLANS" ]; then
    plans "$PLANS/plans-$n-$procs-$CHANNEL-$i.log" "$id" &
    planner=$!
  fi
  stopper=
  if [ -n "$TIMEOUT" ]; then
    # the crier under each /usr/bin/time: it finishes its batches and exits
    (sleep "$TIMEOUT"; touch timed-out; for p in "${ps[@]}"; do pkill -TERM -P "$p"; done) &
    stopper=$!
  fi
  for p in "${ps[@]}"; do
    wait "$p" || [ -e timed-out ] || { echo "crier run failed:"; cat run*.err; exit 1; }
  done
  [ -z "$stopper" ] || kill "$stopper" 2>/dev/null || true
  t1=$(date +%s.%N)
  if [ -n "$profiler" ]; then
    # a perf that could not start (no root, perf_event_paranoid) has exited: say why
    kill -INT "$profiler" 2>/dev/null || { echo "perf record stopped early:"; cat "$PERF/perf-$i.err"; }
    wait "$profiler" || true
  fi
  # the WAL the run wrote, and how much of it full-page images (the first change to each
  # page after a checkpoint)
  wal=$(q -F' ' -c "SELECT pg_size_pretty(wal_bytes - ${wal0%|*}) || ', ' || wal_fpi - ${wal0#*|}
                    || ' full-page images' FROM pg_stat_wal")
  # buffers read from outside shared_buffers, and written by the sessions themselves to
  # make room: the run outgrowing shared_buffers
  buffers=$(q -c "SELECT (SELECT sum(blks_read) FROM pg_stat_database) - $reads0 || ' reads, '
                  || (SELECT buffers_backend FROM pg_stat_bgwriter) - $written0
                  || ' written by sessions'")
  [ -z "$planner" ] || wait "$planner" || true
  [ -z "$stats" ] || wait "$stats" || true
  partial=
  if [ -e timed-out ]; then
    rm -f timed-out
    partial=$(q -c "SELECT count(*) FROM crier.notice WHERE campaign_id = $id AND state = '$final'")
    echo "run $i: stopped after $TIMEOUT s with $partial of $n $final"
  fi
  # exactly once: every notice reached the final state, claimed once, and (email) at the sink
  got=$(q -c "SELECT count(*) FROM crier.notice WHERE campaign_id = $id AND state = '$final'")
  claims=$(q -c "SELECT count(*) FROM crier.dispatch_log WHERE campaign_id = $id
                 AND from_state = 'ready' AND to_state = 'sending'")
  [ -n "$partial" ] || { [ "$got" -eq "$n" ] && [ "$claims" -eq "$n" ]; } ||
    { echo "run $i: $got of $n $final, $claims claims"; cat run*.err; exit 1; }
  if [ "$CHANNEL" = email ] && [ -z "$partial" ]; then
    sleep 1
    at_sink=$(($(sink_count) - sink_before))
    [ "$at_sink" -eq "$n" ] || { echo "run $i: smtp-sink has $at_sink messages of $n"; exit 1; }
  fi
  # each fifth's rate, from when its last notice reached the final state
  read -r f1 f2 f3 f4 f5 all < <(q -F' ' -v id="$id" -v n="$n" -v final="$final" -v t0="$t0" \
    -f "$BENCH/fifths.sql")
  rss=0
  for k in $(seq "$procs"); do
    kb=$(tail -n 1 "time$k.out" | awk '{ print $2 }') # a stopped run's first line says so
    [ "$((kb / 1024))" -le "$rss" ] || rss=$((kb / 1024))
  done
  # the ceiling: the same transitions and log rows, set-based, in one transaction, on a
  # campaign of its own loaded now
  load_campaign ceiling
  c0=$(date +%s.%N)
  q -q -v channel="$CHANNEL" -v final="$final" -f "$BENCH/ceiling.sql"
  ceiling=$(echo "$n / ($(date +%s.%N) - $c0)" | bc)
  [ -z "$partial" ] || all=$((partial / TIMEOUT))
  ratio=$(echo "scale=2; $all / $ceiling" | bc)
  last_first=n/a
  [ "$f5" = n/a ] || [ "$f1" = n/a ] || last_first=$(echo "scale=2; $f5 / $f1" | bc)
  echo "run $i: fifths $f1 $f2 $f3 $f4 $f5 notices/s (last/first $last_first), overall $all," \
    "ceiling $ceiling, ratio $ratio, peak RSS $rss MB"
  results+=("$f1 $f2 $f3 $f4 $f5 $all $ceiling $ratio $last_first $rss")
  ends=$(echo "$f1 $f2 $f3 $f4 $f5" | awk -v n="$n" '{ for (i = 1; i <= NF && $i != "n/a"; i++) {
    t += n / 5 / $i; printf "%s%.1f", (i > 1 ? ", " : ""), t } }')
  echo "  the run: $wal WAL; buffers: $buffers; the fifths ended at $ends s"
  if [ -n "$profiler" ] && [ -s "$PERF/perf-$n-$procs-$CHANNEL-$i.data" ]; then
    # the profile began about 1 s before t0 and ended at t1: the ranges are as near as that
    echo "$ends" | awk -v span="$(echo "$t1 - $t0 + 1" | bc)" -v f="$PERF/perf-$n-$procs-$CHANNEL-$i.data" -F', ' '{
      printf "  profiles: perf report -i %s --time %.1f%%-%.1f%% (first fifth), --time %.1f%%-%.1f%% (last)\n",
        f, 100 / span, 100 * (1 + $1) / span, 100 * (1 + $(NF - 1)) / span, 100 * (1 + $NF) / span }'
  fi
  [ -n "$PLANS" ] || server_events "$log_from" "$t0" "$c0"
  unset PGDATABASE
  dropdb "$db"
done
col() { local c=$1; shift; for r in "$@"; do echo "$r" | awk -v c="$c" '{print $c}'; done; }
m=()
for c in $(seq 10); do mapfile -t v < <(col "$c" "${results[@]}"); m+=("$(median "${v[@]}")"); done
echo "N=$n processes=$procs channel=$CHANNEL lanes=$LANES batch=$BATCH median of $runs:" \
  "fifths ${m[0]} ${m[1]} ${m[2]} ${m[3]} ${m[4]} notices/s, last/first ${m[8]}," \
  "overall ${m[5]}, ceiling ${m[6]}, ratio ${m[7]}, peak RSS ${m[9]} MB"
INNER
