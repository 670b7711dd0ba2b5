#!/bin/bash
# status.sh N PROCS [INTERVAL] - what `crier status NAME --json` (what monitoring polls)
# costs while PROCS `crier run` processes send a campaign of N people on the null channel.
#
# Loads N people (bench/gen_list.py) into a fresh database, starts PROCS processes (2
# lanes each, until idle) and, while they run, times `crier status crier --json` every
# INTERVAL seconds (default 2): the median, p90 and max latency of the samples, which
# include the process start and the login. A sampler reads pg_stat_activity every 0.1 s
# and counts the wait events of the status sessions by statement. Half-way through, one
# status runs with auto_explain (ANALYZE, BUFFERS, nested statements) in its session
# only: the plans of every statement status runs, in DIR/status-plans-N-PROCS.log
# (PLANS=DIR, default the current directory). When the run
# is over, the same command is timed as often on the same database, idle, for comparison,
# and the ratio of the medians printed. Last, what the progress tally's trigger costs a
# log insert of 500 finished attempts, of 500 claims and of one row (on against off).
#
# Status runs as a monitoring login would, a role in crier_auditor (bench_status), which
# is also how the sampler tells its sessions from the lanes'. BUILD=DIR picks the build
# (default build): a build of another commit gives before/after figures, each run with
# its own idle comparison. Performance is measured here, never asserted in a test.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,20p' "$0"; exit 64; }
n=$1 procs=$2 interval=${3:-2}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
[ -x /usr/bin/time ] || { echo "status.sh needs /usr/bin/time (Debian package time)"; exit 1; }
plans=$(realpath "${PLANS:-.}")
export CRIER=$build/crier META=$PWD/tests/data/incident.yaml
export N=$n PROCS=$procs INTERVAL=$interval PLANS_FILE=$plans/status-plans-$n-$procs.log
work=$(mktemp -d /tmp/crier-bench-status.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -m 777 "$work/pglog"
python3 bench/gen_list.py "$n" >"$work/list.csv"
echo "N=$n processes=$procs interval=${interval}s load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' \
  -o 'shared_preload_libraries=auto_explain' -o 'logging_collector=on' \
  -o "log_directory=$work/pglog" -o 'log_filename=pg.log' \
  bash -s "$work" <<'INNER'
set -euo pipefail
work=$1
cd "$work"
export PGDATABASE=bench_status
createdb "$PGDATABASE"
printf 'queue: {idle_poll: 20}\nlog: {level: warning}\nchannels:\n  null: {lanes: 2, batch_size: 500}\n' >crier.yaml
export CRIER_CONFIG=$work/crier.yaml
q() { psql -XAt -v ON_ERROR_STOP=1 "$@"; }
"$CRIER" db migrate >/dev/null
"$CRIER" campaign create crier --incident BENCH --policy null --meta "$META" >/dev/null
"$CRIER" campaign load crier --csv list.csv >/dev/null
"$CRIER" campaign start crier >/dev/null 2>&1
q -q -c "CREATE ROLE bench_status LOGIN PASSWORD '$PGPASSWORD' IN ROLE crier_auditor"

# one timed status: prints seconds (process start, login, statements, output)
timed() { # BINARY
  PGUSER=bench_status /usr/bin/time -f '%e' -o "$work/t.out" "$1" status crier --json >"$work/status.json"
  cat "$work/t.out"
}
stats() { # FILE - "median p90 max count" of the seconds in FILE
  sort -n "$1" | awk '{a[NR]=$1} END {
    m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
    p = a[int(NR * 0.9 + 0.999)]; printf "%.3f %.3f %.3f %d\n", m, p, a[NR], NR }'
}
# the wait events of the status sessions (bench_status's), and what each was running
cat >sampler.sql <<'SQL'
SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-') || ' | '
       || left(regexp_replace(query, '\s+', ' ', 'g'), 70)
FROM pg_stat_activity
WHERE usename = 'bench_status' AND state = 'active'
\watch 0.1
SQL

t0=$(date +%s.%N)
ps=()
for k in $(seq "$PROCS"); do
  "$CRIER" run --until-idle 2>"run$k.err" &
  ps+=($!)
done
q -f sampler.sql >waits.txt 2>/dev/null &
sampler=$!
running() { for p in "${ps[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
done_() { q -c "SELECT coalesce(sum(n), 0) FROM crier.notice_tally WHERE state = 'delivered'"; }
: >during.txt
explained=
while running; do
  sleep "$INTERVAL"
  running || break
  if [ -z "$explained" ] && [ "$(done_)" -ge $((N / 2)) ]; then
    # the plans, in this status session only (auto_explain's settings are superuser's)
    explained=$(done_)
    PGOPTIONS='-c auto_explain.log_min_duration=0 -c auto_explain.log_analyze=on
      -c auto_explain.log_buffers=on -c auto_explain.log_nested_statements=on' \
      /usr/bin/time -f '%e' -o t.out "$CRIER" status crier --json >/dev/null
    echo "status with auto_explain at $explained of $N delivered: $(cat t.out) s" >plans.head
    continue
  fi
  timed "$CRIER" >>during.txt
done
for p in "${ps[@]}"; do wait "$p" || { echo "crier run failed:"; cat run*.err; exit 1; }; done
elapsed=$(echo "$(date +%s.%N) - $t0" | bc)
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
got=$(q -c "SELECT count(*) FROM crier.notice WHERE state = 'delivered'")
[ "$got" -eq "$N" ] || { echo "only $got of $N delivered"; exit 1; }
echo "run: $N delivered by $PROCS processes in $elapsed s ($(echo "$N / $elapsed" | bc) notices/s)"

# the comparison: the same command on the same database, idle (every notice delivered)
samples=$(wc -l <during.txt)
: >idle.txt
for i in $(seq "$samples"); do timed "$CRIER" >>idle.txt; done
read -r dm dp dx dn < <(stats during.txt)
read -r im ip ix in_ < <(stats idle.txt)
echo "crier status crier --json, running: median $dm s, p90 $dp s, max $dx s ($dn samples)"
echo "crier status crier --json, idle:    median $im s, p90 $ip s, max $ix s ($in_ samples)"
echo "running/idle median ratio: $(echo "scale=2; $dm / $im" | bc)"
echo "wait events of the status sessions (0.1 s samples during the run), by statement:"
sort waits.txt | uniq -c | sort -rn | head -15
# the plans: every statement of the one status run under auto_explain
{ cat plans.head 2>/dev/null || echo "no plans: the run ended before half-way"; cat pglog/pg.log; } >"$PLANS_FILE"
echo "statements of one status run at half-way (plans in $PLANS_FILE):"
cat plans.head 2>/dev/null || true
grep -o 'duration: [0-9.]* ms  plan:' "$PLANS_FILE" | awk '{print "  " $2 " ms"}' | tr '\n' ' '
echo

# what the progress tally's trigger (017_status.sql) costs the writers: the same inserts
# into the log (campaign -1, after the run), trigger enabled and disabled in turn in one
# session, 3 x 10 each; prints the medians of EXPLAIN ANALYZE's execution times (ms)
insert() { # LABEL ROWS FROM TO
  echo "EXPLAIN (ANALYZE) INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, channel,
        from_state, to_state, actor) SELECT -1, 'transition', g, 'null', '$3', '$4', 'bench'
        FROM generate_series(1, $2) g;"
  echo "\\echo $mode $1"
}
if [ "$(q -c "SELECT count(*) FROM pg_trigger WHERE tgname = 'progress_tally_insert'")" = 1 ]; then
  {
    for mode in ENABLE DISABLE ENABLE DISABLE ENABLE DISABLE; do
      echo "ALTER TABLE crier.dispatch_log $mode TRIGGER progress_tally_insert;"
      for i in $(seq 10); do
        insert finished500 500 sending delivered
        insert claims500 500 ready sending
        insert finished1 1 sending sent
      done
    done
  } | q -q | awk '/Execution Time/ { t = $3 } /^(ENABLE|DISABLE) / { print $1, $2, t }' >trigger.txt
  echo "the progress trigger's cost per log insert (medians of 30, ms: on / off):"
  for kind in finished500 claims500 finished1; do
    awk -v k="$kind" '$1 == "ENABLE" && $2 == k { print $3 }' trigger.txt >on.txt
    awk -v k="$kind" '$1 == "DISABLE" && $2 == k { print $3 }' trigger.txt >off.txt
    on=$(stats on.txt | cut -d' ' -f1) off=$(stats off.txt | cut -d' ' -f1)
    echo "  $kind: $on / $off (+$(echo "$on - $off" | bc) ms)"
  done
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
INNER
