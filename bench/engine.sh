#!/bin/bash
# engine.sh [N...] [-- RUNS] - the engine alone: N notices through claim -> null channel ->
# record, by `crier run --until-idle`, against its ceiling: PostgreSQL doing the same state
# changes and dispatch-log rows for all N notices in two set-based statements, with no
# round trips and no batching. Prints notices/s, peak RSS of crier run, and the ratio.
# Targets (issue 2): >= 20,000 notices/s on 2 cores; peak RSS flat, <= 64 MB.
# SEAL_INTERVAL=0 turns off the sealing of the dispatch log that crier run does as it goes
# (audit.seal_interval, default 5s), to measure what sealing costs.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=()
runs=3
while [ $# -gt 0 ]; do
  case $1 in
    --) runs=$2; shift 2 ;;
    *) sizes+=("$1"); shift ;;
  esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 1000000)
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
export CRIER=$build/crier BENCH=$PWD/bench LANES=${LANES:-2} BATCH=${BATCH:-500} SEAL_INTERVAL=${SEAL_INTERVAL:-5s}
work=$(mktemp -d /tmp/crier-bench-engine.XXXXXX)
trap 'rm -rf "$work"' EXIT
for n in "${sizes[@]}"; do python3 bench/gen_list.py "$n" >"$work/list-$n.csv"; done

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' \
  bash -s "$work" "$runs" "${sizes[@]}" <<'INNER'
set -euo pipefail
work=$1; runs=$2; shift 2
cd "$work"
cat >crier.yaml <<YAML
queue: {idle_poll: 20}
log: {level: warning}
audit: {seal_interval: $SEAL_INTERVAL}
channels:
  null: {lanes: $LANES, batch_size: $BATCH}
YAML
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for n in "$@"; do
  rates=(); ceilings=(); rss=()
  for i in $(seq "$runs"); do
    db=engine_${n}_$i
    createdb "$db"
    export PGDATABASE=$db
    "$CRIER" db migrate >/dev/null
    for c in crier ceiling; do
      "$CRIER" campaign create "$c" --incident BENCH --policy null >/dev/null
      "$CRIER" campaign load "$c" --csv "list-$n.csv" >/dev/null
    done
    psql -XAq -c "VACUUM ANALYZE"
    "$CRIER" campaign start crier >/dev/null
    /usr/bin/time -f '%e %M' -o time.out "$CRIER" run --until-idle 2>run.err
    read -r elapsed kb <time.out
    done_count=$(psql -XAt -c "SELECT count(*) FROM crier.notice n JOIN crier.campaign c ON c.id = n.campaign_id WHERE c.name = 'crier' AND n.state = 'delivered'")
    [ "$done_count" -eq "$n" ] || { echo "only $done_count of $n delivered"; cat run.err; exit 1; }
    rates+=("$(echo "scale=1; $n / $elapsed" | bc)")
    rss+=("$((kb / 1024))")
    # the ceiling: the same two transitions and log rows, set-based, in one transaction
    t0=$(now)
    psql -XAq -v ON_ERROR_STOP=1 -v channel=null -v final=delivered -f "$BENCH/ceiling.sql"
    t1=$(now)
    ceilings+=("$(echo "scale=1; $n / ($t1 - $t0)" | bc)")
    echo "n=$n run $i: crier ${rates[-1]} notices/s (${elapsed} s, peak RSS ${rss[-1]} MB), ceiling ${ceilings[-1]} notices/s"
    unset PGDATABASE
    dropdb "$db"
  done
  mr=$(median "${rates[@]}"); mc=$(median "${ceilings[@]}"); mm=$(median "${rss[@]}")
  echo "n=$n median: crier $mr notices/s, ceiling $mc notices/s, ratio $(echo "scale=2; $mr / $mc" | bc), peak RSS $mm MB (lanes $LANES, batch $BATCH)"
done
INNER
