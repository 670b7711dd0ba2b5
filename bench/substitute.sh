#!/bin/bash
# substitute.sh [N] [RUNS] - what the substitute-notice test costs: `crier substitute NAME
# --json` (engine/core/substitute.c's one pass over the campaign, which audit report now
# also makes) against `crier audit report NAME --json` on the same campaign of N people
# (default 200,000; policy fax, so the two thirds without a fax number are undeliverable
# and each is probed for an email address), in the same run. Medians of RUNS (default 3)
# and the ratio. Say the machine's load with the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
runs=${2:-3}
build=${BUILD:-build}
case $build in /*) CRIER=$build/crier ;; *) CRIER=$PWD/$build/crier ;; esac
export CRIER N=$n RUNS=$runs GEN=$PWD/bench/gen_list.py
work=$(mktemp -d /tmp/crier-bench-substitute.XXXXXX)
trap 'rm -rf "$work"' EXIT

pg_virtualenv -t -o 'shared_buffers=512MB' bash -s "$work" <<'INNER'
set -euo pipefail
cd "$1"
export PGDATABASE=bench_substitute
createdb "$PGDATABASE"
printf 'log: {level: warning}\n' >crier.yaml
export CRIER_CONFIG=$PWD/crier.yaml
"$CRIER" db migrate >/dev/null
python3 "$GEN" "$N" >list.csv
"$CRIER" campaign create bench --incident B --policy fax >/dev/null
"$CRIER" campaign load bench --csv list.csv >/dev/null
psql -XAtq -c "VACUUM ANALYZE" >/dev/null
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for i in $(seq "$RUNS"); do
  /usr/bin/time -f '%e' -o t.out "$CRIER" substitute bench --json >/dev/null; cat t.out >>sub.times
  /usr/bin/time -f '%e' -o t.out "$CRIER" audit report bench --json >/dev/null; cat t.out >>report.times
done
sub=$(median <sub.times); report=$(median <report.times)
echo "$N people: crier substitute ${sub} s, audit report (which includes it) ${report} s, share $(awk -v a="$sub" -v b="$report" 'BEGIN { printf "%.0f%%", 100 * a / b }') (load average $(cut -d' ' -f1 /proc/loadavg))"
INNER
