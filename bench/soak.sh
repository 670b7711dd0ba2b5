#!/bin/bash
# soak.sh [N] [PROCESSES] - one campaign of N people (default 10,000,000) through every
# step an incident team and an auditor take, on the null channel, each step timed with
# its peak RSS, and the database's size at the end, per table and index:
#   load, start, PROCESSES (default 2) `crier run --until-idle`, status, audit seal,
#   audit verify, audit report --json.
# Not part of CI: at 10,000,000 it needs about 25 GB of disk and most of an hour on two
# cores. The run's rate per fifth is printed as bench/scale.sh does. KEEP=1 keeps the work
# directory (the list and the logs). The figures of a run are in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
procs=${2:-2}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
export CRIER=$build/crier BENCH=$PWD/bench
work=$(mktemp -d /tmp/crier-bench-soak.XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
chmod 755 "$work"
echo "generating $n people"
python3 bench/gen_list.py "$n" >"$work/list.csv"
echo "list: $(du -h "$work/list.csv" | cut -f1)"

pg_virtualenv -t -o 'shared_buffers=1GB' -o 'max_wal_size=8GB' \
  bash -s "$work" "$n" "$procs" <<'INNER'
set -euo pipefail
work=$1 n=$2 procs=$3
cd "$work"
printf 'queue: {idle_poll: 20}\nlog: {level: warning}\nchannels:\n  null: {lanes: 2, batch_size: 500}\n' >crier.yaml
export CRIER_CONFIG=$work/crier.yaml PGDATABASE=soak
createdb soak
q() { psql -XAt -v ON_ERROR_STOP=1 "$@"; }
step() { # NAME COMMAND...: time and peak RSS of one step
  local name=$1
  shift
  /usr/bin/time -f '%e %M' -o step.time "$@" >"$name.out" 2>"$name.err" ||
    { echo "$name failed:"; tail -5 "$name.err"; exit 1; }
  read -r s kb <step.time
  printf '%-14s %9.1f s  peak RSS %4d MB\n' "$name" "$s" "$((kb / 1024))"
}
"$CRIER" db migrate >/dev/null
"$CRIER" campaign create soak --incident SOAK --policy null >/dev/null
step load "$CRIER" campaign load soak --csv list.csv
step start "$CRIER" campaign start soak
id=$(q -c "SELECT id FROM crier.campaign WHERE name = 'soak'")
t0=$(date +%s.%N)
ps=()
for k in $(seq "$procs"); do
  /usr/bin/time -f '%e %M' -o "run$k.time" "$CRIER" run --until-idle 2>"run$k.err" &
  ps+=($!)
done
# status as monitoring polls it, every 30 s while the campaign runs
polled=$SECONDS
while kill -0 "${ps[0]}" 2>/dev/null; do
  sleep 1
  [ $((SECONDS - polled)) -ge 30 ] || continue
  polled=$SECONDS
  s0=$(date +%s.%N)
  "$CRIER" status soak --json >status.json
  echo "  status at $(printf '%.0f' "$(echo "$(date +%s.%N) - $t0" | bc)") s:" \
    "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["by_state"]["delivered"], "delivered")' status.json)," \
    "answered in $(echo "$(date +%s.%N) - $s0" | bc | cut -c1-5) s"
done
for p in "${ps[@]}"; do wait "$p" || { echo "crier run failed"; cat run*.err; exit 1; }; done
run_s=$(echo "$(date +%s.%N) - $t0" | bc)
rss=0
for k in $(seq "$procs"); do read -r _ kb <"run$k.time"; [ "$((kb / 1024))" -le "$rss" ] || rss=$((kb / 1024)); done
printf '%-14s %9.1f s  peak RSS %4d MB (largest of %d processes), %s notices/s\n' run "$run_s" "$rss" \
  "$procs" "$(echo "$n / $run_s" | bc)"
got=$(q -c "SELECT count(*) FROM crier.notice WHERE campaign_id = $id AND state = 'delivered'")
[ "$got" -eq "$n" ] || { echo "only $got of $n delivered"; exit 1; }
echo "fifths and overall (notices/s):" \
  "$(q -F' ' -v id="$id" -v n="$n" -v final=delivered -v t0="$t0" -f "$BENCH/fifths.sql")"
step status "$CRIER" status soak --json
step seal "$CRIER" audit seal
step verify "$CRIER" audit verify --campaign soak
step report "$CRIER" audit report soak --json
echo "database: $(q -c "SELECT pg_size_pretty(pg_database_size('soak'))"), per notice" \
  "$(q -c "SELECT pg_database_size('soak') / $n") bytes"
q -F' ' -c "SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)),
              pg_total_relation_size(c.oid) / $n
            FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
            WHERE s.nspname = 'crier' AND c.relkind IN ('r', 'p') AND pg_total_relation_size(c.oid) > 1000000
            ORDER BY pg_total_relation_size(c.oid) DESC" |
  awk '{ printf "  %-22s %8s %8s %5s bytes per notice\n", $1, $2, $3, $4 }'
q -F' ' -c "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid))
            FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
            WHERE s.nspname = 'crier' AND c.relkind = 'i' AND pg_relation_size(c.oid) > 1000000
            ORDER BY pg_relation_size(c.oid) DESC" | awk '{ printf "  index %-30s %8s %s\n", $1, $2, $3 }'
echo "WAL written: $(q -c "SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'))")"
INNER
