#!/bin/bash
# console.sh [N] [RUNS] [CLIENTS] [INTERVAL] - crier serve under load: `crier run
# --until-idle` sends a campaign of N notices (default 100,000) on the null channel, alone
# and then with CLIENTS (default 50) console sessions polling the campaign page and the API,
# each every INTERVAL seconds (default 2, as `status --watch`; 0: as fast as they can),
# RUNS times (default 3), alternating. Prints each run, then the medians: crier run's time
# alone and under the polling, their ratio (issue 18's target: at most 10 % slower), and
# the console's p50/p99 latency. crier run, crier serve, the clients and PostgreSQL share
# the machine's cores: on a machine with few cores the polling takes CPU from the run.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
runs=${2:-3}
clients=${3:-50}
interval=${4:-2}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
export CRIER=$build/crier BENCH=$PWD/bench N=$n RUNS=$runs CLIENTS=$clients INTERVAL=$interval
work=$(mktemp -d /tmp/crier-bench-console.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_list.py "$n" >"$work/list.csv"

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' bash -s "$work" <<'INNER'
set -euo pipefail
cd "$1"
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
export PGDATABASE=bench_console
createdb "$PGDATABASE"
cat >crier.yaml <<YAML
database: {conninfo: host=localhost dbname=bench_console}
queue: {idle_poll: 20}
log: {level: warning}
channels:
  null: {lanes: 2, batch_size: 500}
YAML
export CRIER_CONFIG=$PWD/crier.yaml
"$CRIER" db migrate >/dev/null
psql -XAtq -c "CREATE ROLE bench_op LOGIN PASSWORD 'pw' IN ROLE crier_operator"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CRIER" serve --listen "127.0.0.1:$port" >serve.out 2>serve.err &
serve=$!
sleep 1
alone=(); loaded=(); p50=(); p99=()
one_run() { # LOAD(0|1) - seconds of crier run --until-idle over a fresh campaign
  local name=bench_$RANDOM$RANDOM
  "$CRIER" campaign create "$name" --incident B --policy null >/dev/null
  "$CRIER" campaign load "$name" --csv list.csv >/dev/null
  psql -XAq -c "VACUUM ANALYZE" >/dev/null
  "$CRIER" campaign start "$name" >/dev/null 2>&1
  rm -f stop
  if [ "$1" = 1 ]; then
    python3 "$BENCH/console_clients.py" "http://127.0.0.1:$port" bench_op "$CLIENTS" stop "$name" \
      "$INTERVAL" >clients.out &
    sleep 2 # every client logged in and polling
  fi
  /usr/bin/time -f '%e' -o time.out "$CRIER" run --until-idle 2>run.err
  touch stop
  wait 2>/dev/null || true
  cat time.out
}
for i in $(seq "$RUNS"); do
  a=$(one_run 0)
  l=$(one_run 1)
  read -r _ reqs _ errs _ q50 _ q99 <clients.out
  alone+=("$a"); loaded+=("$l"); p50+=("$q50"); p99+=("$q99")
  echo "run $i: alone ${a} s, with $CLIENTS clients ${l} s ($reqs requests, $errs errors, p50 ${q50} ms, p99 ${q99} ms)"
done
ma=$(median "${alone[@]}"); ml=$(median "${loaded[@]}")
echo "n=$N medians: crier run alone $ma s ($(echo "scale=0; $N / $ma" | bc) notices/s), with $CLIENTS clients polling every $INTERVAL s $ml s; ratio $(echo "scale=3; $ml / $ma" | bc); console p50 $(median "${p50[@]}") ms, p99 $(median "${p99[@]}") ms"
kill -TERM "$serve"; wait "$serve" || true
INNER
