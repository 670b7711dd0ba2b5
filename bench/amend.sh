#!/bin/bash
# amend.sh [N] [RUNS] - `crier campaign amend` of N corrections (default 20,000: every
# person of an N-person campaign, policy fax, given a new email and fax), against BASE, a
# crier built from the commit before amend became set-based (three statements per row),
# on the same database in the same run. Each run amends a fresh campaign with each binary;
# prints the medians of RUNS (default 3) and the ratio. Say the machine's load with the
# figures: the other engineers' builds share it.
#   BUILD=build BASE=/path/to/old/crier bench/amend.sh 20000 3
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
runs=${2:-3}
build=${BUILD:-build}
: "${BASE:?BASE must name the crier binary to compare with}"
case $build in /*) CRIER=$build/crier ;; *) CRIER=$PWD/$build/crier ;; esac
export CRIER BASE N=$n RUNS=$runs GEN=$PWD/bench/gen_list.py
work=$(mktemp -d /tmp/crier-bench-amend.XXXXXX)
trap 'rm -rf "$work"' EXIT

pg_virtualenv -t -o 'shared_buffers=256MB' bash -s "$work" <<'INNER'
set -euo pipefail
cd "$1"
export PGDATABASE=bench_amend
createdb "$PGDATABASE"
printf 'log: {level: warning}\n' >crier.yaml
export CRIER_CONFIG=$PWD/crier.yaml
"$CRIER" db migrate >/dev/null
python3 "$GEN" "$N" >list.csv
# every person: a new email and a fax number
python3 - "$N" >fix.csv <<'PY'
import sys
print("ref,email,fax")
for i in range(1, int(sys.argv[1]) + 1):
    print(f"R{i:08d},new{i}@example.net,+1555{i % 10000000:07d}")
PY
head -2 list.csv | tail -1 | cut -d, -f1 | grep -q '^R0' || { echo "gen_list.py refs changed: fix fix.csv"; exit 1; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for i in $(seq "$RUNS"); do
  for who in new base; do
    bin=$CRIER; [ "$who" = base ] && bin=$BASE
    "$CRIER" campaign create "$who$i" --incident B --policy fax >/dev/null
    "$CRIER" campaign load "$who$i" --csv list.csv >/dev/null
    psql -XAtq -c "VACUUM ANALYZE" >/dev/null
    /usr/bin/time -f '%e' -o t.out "$bin" campaign amend "$who$i" --csv fix.csv --reason bench >/dev/null
    cat t.out >>"$who.times"
  done
done
new=$(median <new.times); base=$(median <base.times)
echo "campaign amend of $N corrections, median of $RUNS: set-based ${new} s, per row ${base} s, ratio $(awk -v a="$base" -v b="$new" 'BEGIN { printf "%.1f", a / b }')x (load average $(cut -d' ' -f1 /proc/loadavg))"
INNER
