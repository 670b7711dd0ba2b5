#!/bin/bash
# multi.sh [N] [RUNS] - throughput of 1, 2 and 4 `crier run` processes on one database:
# N notices (default 50,000) of one campaign through claim -> null channel -> record, by
# P processes started together with --until-idle, timed from the start to the last exit.
# Each process has the same configuration (LANES lanes, BATCH per claim), so P processes
# run P x LANES lanes. Prints notices/s per run, and per P the median of RUNS (default 3)
# and its ratio to 1 process. PGPORT is honoured (pg_virtualenv's cluster port).
# The null channel measures the engine and PostgreSQL: what more processes can add on
# this machine; a channel bound by its transport (SMTP, fax) gains more from processes.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50000}
runs=${2:-3}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
export CRIER=$build/crier LANES=${LANES:-2} BATCH=${BATCH:-500} PROCESSES=${PROCESSES:-1 2 4}
work=$(mktemp -d /tmp/crier-bench-multi.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_list.py "$n" >"$work/list.csv"

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' \
  bash -s "$work" "$runs" "$n" <<'INNER'
set -euo pipefail
work=$1; runs=$2; n=$3
cd "$work"
cat >crier.yaml <<YAML
queue: {idle_poll: 20, route_grace: 0}
log: {level: warning}
channels:
  null: {lanes: $LANES, batch_size: $BATCH}
YAML
export CRIER_CONFIG=$work/crier.yaml
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A medians
for p in $PROCESSES; do
  rates=()
  for i in $(seq "$runs"); do
    db=multi_${p}_$i
    createdb "$db"
    export PGDATABASE=$db
    "$CRIER" db migrate >/dev/null
    "$CRIER" campaign create bench --incident BENCH --policy null >/dev/null
    "$CRIER" campaign load bench --csv list.csv >/dev/null
    psql -XAq -c "VACUUM ANALYZE"
    "$CRIER" campaign start bench >/dev/null
    started=$(date +%s.%N)
    pids=()
    for k in $(seq "$p"); do
      "$CRIER" run --until-idle 2>"run$k.err" &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    elapsed=$(echo "$(date +%s.%N) - $started" | bc)
    done_count=$(psql -XAt -c "SELECT count(*) FROM crier.notice WHERE state = 'delivered'")
    [ "$done_count" -eq "$n" ] || { echo "only $done_count of $n delivered"; cat run*.err; exit 1; }
    claims=$(psql -XAt -c "SELECT count(*) FROM crier.dispatch_log WHERE from_state = 'ready' AND to_state = 'sending'")
    [ "$claims" -eq "$n" ] || { echo "$claims claims for $n notices"; exit 1; }
    rates+=("$(echo "scale=1; $n / $elapsed" | bc)")
    echo "processes=$p run $i: ${rates[-1]} notices/s ($elapsed s)"
    unset PGDATABASE
    dropdb "$db"
  done
  medians[$p]=$(median "${rates[@]}")
done
one=${medians[1]:-}
for p in $PROCESSES; do
  ratio=""
  [ -z "$one" ] || ratio=", ratio to 1 process $(echo "scale=2; ${medians[$p]} / $one" | bc)"
  echo "processes=$p median of $runs: ${medians[$p]} notices/s$ratio (n=$n, $LANES lanes x $BATCH per process)"
done
INNER
