#!/bin/bash
# scrape.sh [N] [RUNS] - what crier serve's GET /metrics costs (crier_campaign_notices,
# read with crier status's statement) as the running campaigns grow: a fresh scrape (past
# the 5 s the exposition is kept) with a campaign of 1,000 notices running, then with a
# campaign of N (default 100,000) running beside it, RUNS times each (default 5), in the
# same run. Prints each scrape and the medians with their ratio: the statement reads the
# tallies (006_scale.sql), so N should not show, only the second campaign's few rows.
# For comparison, `crier status --json` (every campaign, the same statement, plus a
# process start and a login) timed the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
runs=${2:-5}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
export CRIER=$build/crier BENCH=$PWD/bench N=$n RUNS=$runs
work=$(mktemp -d /tmp/crier-bench-scrape.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_list.py 1000 >"$work/small.csv"
python3 bench/gen_list.py "$n" >"$work/big.csv"

pg_virtualenv -t bash -s "$work" <<'INNER'
set -euo pipefail
cd "$1"
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
export PGDATABASE=bench_scrape
createdb "$PGDATABASE"
cat >crier.yaml <<YAML
database: {conninfo: host=localhost dbname=bench_scrape}
log: {level: warning}
channels:
  null: {lanes: 1}
YAML
export CRIER_CONFIG=$PWD/crier.yaml
"$CRIER" db migrate >/dev/null
psql -XAtq -c "CREATE ROLE bench_mon LOGIN PASSWORD 'pw' IN ROLE crier_auditor"
"$CRIER" campaign create small --incident B --policy null >/dev/null
"$CRIER" campaign load small --csv small.csv >/dev/null
"$CRIER" campaign start small >/dev/null 2>&1
"$CRIER" campaign create big --incident B --policy null >/dev/null
"$CRIER" campaign load big --csv big.csv >/dev/null
psql -XAq -c "VACUUM ANALYZE" >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CRIER" serve --listen "127.0.0.1:$port" >serve.out 2>serve.err &
serve=$!
sleep 1
curl -sf -u bench_mon:pw -o /dev/null "http://127.0.0.1:$port/metrics" # the login, once
scrape() { sleep 5.2; curl -sf -u bench_mon:pw -o scrape.txt -w '%{time_total}' "http://127.0.0.1:$port/metrics"; }
status() { /usr/bin/time -f '%e' -o time.out "$CRIER" status --json >/dev/null; cat time.out; }
phase() { # NAME - RUNS scrapes and status runs; prints the medians (ms)
  local s=() t=() i
  for i in $(seq "$RUNS"); do
    s+=("$(scrape)"); t+=("$(status)")
    echo "  $1 run $i: scrape ${s[-1]} s, crier status --json ${t[-1]} s ($(grep -c '^crier_campaign_notices{' scrape.txt) samples)" >&2
  done
  echo "$(median "${s[@]}") $(median "${t[@]}")"
}
read -r s1 t1 < <(phase "1,000 running")
"$CRIER" campaign start big >/dev/null 2>&1
read -r s2 t2 < <(phase "1,000 and $N running")
echo "medians: scrape $s1 s with 1,000 running, $s2 s with $N more (ratio $(echo "scale=2; $s2 / $s1" | bc));" \
  "crier status --json $t1 s, $t2 s (ratio $(echo "scale=2; $t2 / $t1" | bc))"
kill -TERM "$serve"; wait "$serve" || true
INNER
