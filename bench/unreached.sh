#!/bin/bash
# unreached.sh [N] [RUNS] - issue 15's read paths on a campaign of N people (default
# 300,000), policy "fax", so that the two thirds without a fax number are undeliverable at
# load (bench/gen_list.py gives every third person a fax). RUNS times (default 3), medians:
#   unreached   crier audit unreached --format csv to /dev/null, its peak RSS, against the
#               floor of psql \copy of the same rows; then the same at 2N people
#               (memory must stay flat: the cursor streams)
#   find        crier audit find by email and by name prefix (index probes: milliseconds
#               whatever N), against psql running the bare lookup
#   load        campaign load of the N people with the find indexes (019_find_local.sql,
#               built after the commit), and without them: what the indexes cost a load
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300000}
runs=${2:-3}
build=${BUILD:-build}
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
case $build in /*) CRIER=$build/crier ;; *) CRIER=$PWD/$build/crier ;; esac
export CRIER N=$n RUNS=$runs GEN=$PWD/bench/gen_list.py
work=$(mktemp -d /tmp/crier-bench-unreached.XXXXXX)
trap 'rm -rf "$work"' EXIT

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' bash -s "$work" <<'INNER'
set -euo pipefail
cd "$1"
export PGDATABASE=bench_unreached
createdb "$PGDATABASE"
printf 'log: {level: warning}\n' >crier.yaml
export CRIER_CONFIG=$PWD/crier.yaml
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
"$CRIER" db migrate >/dev/null
python3 "$GEN" "$N" >list.csv
python3 "$GEN" $((2 * N)) >list2.csv

timed() { # LABEL COMMAND... - seconds and peak RSS (KiB), appended to LABEL.times
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o time.out "$@" >/dev/null 2>cmd.err || { cat cmd.err; exit 1; }
  cat time.out >>"$label.times"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
col() { awk -v c="$2" '{ print $c }' "$1.times" | median; }

# the load, with and without the find indexes (each run a fresh campaign)
for i in $(seq "$RUNS"); do
  "$CRIER" campaign create "with$i" --incident B --policy fax >/dev/null
  timed load_with "$CRIER" campaign load "with$i" --csv list.csv
done
"$CRIER" campaign create bench --incident B --policy fax >/dev/null
"$CRIER" campaign load bench --csv list.csv >/dev/null
"$CRIER" campaign create bench2 --incident B --policy fax >/dev/null
"$CRIER" campaign load bench2 --csv list2.csv >/dev/null
sql "VACUUM ANALYZE" >/dev/null
unreached=$(sql "SELECT count(*) FROM crier.notice WHERE campaign_id = (SELECT id FROM crier.campaign WHERE name = 'bench') AND state = 'undeliverable'")

floor() { # CAMPAIGN - the same rows, straight out of PostgreSQL
  timed "floor_$1" psql -XAtq -c "\\copy (SELECT r.*, n.state, n.channel, n.reasons FROM crier.notice n
    JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
    WHERE n.campaign_id = (SELECT id FROM crier.campaign WHERE name = '$1') AND n.state = 'undeliverable'
    ORDER BY n.id) TO '/dev/null' CSV"
}
for _ in $(seq "$RUNS"); do
  floor bench
  timed unreached "$CRIER" audit unreached bench --format csv
  floor bench2
  timed unreached2 "$CRIER" audit unreached bench2 --format csv
  timed find_email "$CRIER" audit find bench --email "user$((N / 2))@example.com"
  timed find_name "$CRIER" audit find bench --name "tanaka"
  timed find_floor psql -XAtq -c "SELECT ref FROM crier.recipient WHERE email = 'user$((N / 2))@example.com'"
done
find_names=$("$CRIER" audit find bench --name tanaka --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

# the load again without the indexes find uses
# (019_find_local.sql: a load builds the five its campaign's partition lacks after it
# commits; with the list of definitions emptied, it builds none)
sql "CREATE OR REPLACE FUNCTION crier.find_index_definitions()
     RETURNS TABLE (suffix text, definition text) LANGUAGE sql IMMUTABLE
     SET search_path = pg_catalog, pg_temp AS 'SELECT NULL::text, NULL::text WHERE false'" >/dev/null
for i in $(seq "$RUNS"); do
  "$CRIER" campaign create "without$i" --incident B --policy fax >/dev/null
  timed load_without "$CRIER" campaign load "without$i" --csv list.csv
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "unreached  $N people, $unreached unreached: $(col unreached 1) s, peak RSS $(col unreached 2) KiB;" \
     "floor (psql \\copy) $(col floor_bench 1) s; ratio $(ratio "$(col unreached 1)" "$(col floor_bench 1)")"
echo "unreached  $((2 * N)) people: $(col unreached2 1) s, peak RSS $(col unreached2 2) KiB;" \
     "floor $(col floor_bench2 1) s; ratio $(ratio "$(col unreached2 1)" "$(col floor_bench2 1)")"
echo "find       --email $(col find_email 1) s, --name tanaka ($find_names people) $(col find_name 1) s;" \
     "psql lookup $(col find_floor 1) s"
echo "load       $N people with the find indexes $(col load_with 1) s, without $(col load_without 1) s;" \
     "ratio $(ratio "$(col load_with 1)" "$(col load_without 1)")"
INNER
