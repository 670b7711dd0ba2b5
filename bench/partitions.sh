#!/bin/bash
# partitions.sh OLD NEW [SMALL] [BIG] [ROUNDS] - the claim with many campaigns in the database.
#
# Every campaign keeps its own partitions of crier.notice and crier.recipient for good,
# and a statement planned without knowing its campaign names all of them: PostgreSQL 15
# locks every partition such a plan names at each run, before run-time pruning. This
# measures that case, which a one-campaign benchmark cannot see. On one database it loads
# SMALL (default 200) one-person campaigns and runs them to the end, then loads and runs
# 2 x ROUNDS (default 2 rounds) BIG-person campaigns (default 20,000), one at a time, each
# by one `crier run --until-idle` on the null channel (LANES x BATCH, default 2 x 500),
# alternating the two builds OLD and NEW (crier binaries) on the same database: OLD then NEW
# in odd rounds, NEW then OLD in even ones, so that neither always runs on the larger
# database. Each campaign's rate is its notices over the span of its dispatch log (first
# claim to last outcome). Prints each run and, per build, the median and NEW/OLD.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,15p' "$0"; exit 64; }
old=$(realpath "$1") new=$(realpath "$2")
small=${3:-200} big=${4:-20000} rounds=${5:-2}
for b in "$old" "$new"; do [ -x "$b" ] || { echo "partitions.sh: $b is not a crier binary"; exit 1; }; done
export OLD=$old NEW=$new LANES=${LANES:-2} BATCH=${BATCH:-500}
work=$(mktemp -d /tmp/crier-bench-partitions.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
python3 bench/gen_list.py "$big" >"$work/big.csv"
head -2 "$work/big.csv" >"$work/small.csv"

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' \
  bash -s "$work" "$small" "$big" "$rounds" <<'INNER'
set -euo pipefail
work=$1 small=$2 big=$3 rounds=$4
cd "$work"
cat >crier.yaml <<YAML
queue: {idle_poll: 20, route_grace: 0}
log: {level: warning}
channels:
  null: {lanes: $LANES, batch_size: $BATCH}
YAML
export CRIER_CONFIG=$work/crier.yaml
q() { psql -XAt -v ON_ERROR_STOP=1 "$@"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
"$NEW" db migrate >/dev/null
for i in $(seq "$small"); do
  "$NEW" campaign create "s$i" --incident BENCH --policy null >/dev/null
  "$NEW" campaign load "s$i" --csv small.csv >/dev/null
  "$NEW" campaign start "s$i" >/dev/null 2>&1
done
"$NEW" run --until-idle 2>small.err
left=$(q -c "SELECT count(*) FROM crier.notice WHERE state <> 'delivered'")
[ "$left" -eq 0 ] || { echo "$left small-campaign notices not delivered"; cat small.err; exit 1; }
echo "$small one-person campaigns delivered; notice partitions:" \
  "$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'crier.notice'::regclass")"
declare -A rates
k=0
for r in $(seq "$rounds"); do
  order="OLD NEW"
  [ $((r % 2)) -eq 1 ] || order="NEW OLD"
  for which in $order; do
    k=$((k + 1))
    crier=${!which}
    "$crier" campaign create "b$k" --incident BENCH --policy null >/dev/null
    "$crier" campaign load "b$k" --csv big.csv >/dev/null
    "$crier" campaign start "b$k" >/dev/null 2>&1
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$crier" run --until-idle 2>"b$k.err"
    id=$(q -c "SELECT id FROM crier.campaign WHERE name = 'b$k'")
    done_=$(q -c "SELECT count(*) FROM crier.notice WHERE campaign_id = $id AND state = 'delivered'")
    [ "$done_" -eq "$big" ] || { echo "b$k: only $done_ of $big delivered"; cat "b$k.err"; exit 1; }
    rate=$(q -c "SELECT round($big / extract(epoch FROM max(at) - min(at)))
                 FROM crier.dispatch_log WHERE campaign_id = $id AND event = 'transition'")
    rates[$which]="${rates[$which]:-} $rate"
    echo "round $r: campaign b$k ($big people) with $which: $rate notices/s (load $load)"
  done
done
# shellcheck disable=SC2086
o=$(median ${rates[OLD]}) n=$(median ${rates[NEW]})
echo "partitions: $((small + 2 * rounds)) campaigns; median OLD $o, NEW $n notices/s; NEW/OLD $(echo "scale=2; $n / $o" | bc)"
INNER
