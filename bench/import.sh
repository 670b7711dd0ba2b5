#!/bin/bash
# import.sh [ROWS] [RUNS] - `crier campaign load --csv` against its ceiling, psql's \copy of
# the same file into a bare table, in one run on one throwaway PostgreSQL.
# Prints each run's times and the median ratio crier/copy (target: <= 2.5).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
runs=${2:-3}
build=${BUILD:-build}
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
export CRIER=$PWD/$build/crier
work=$(mktemp -d /tmp/crier-bench-import.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_list.py "$rows" >"$work/list.csv"
echo "rows: $rows  file: $(du -h "$work/list.csv" | cut -f1)  runs: $runs"

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' -o 'synchronous_commit=on' \
  bash -s "$work" "$runs" <<'INNER'
set -euo pipefail
work=$1; runs=$2
cd "$work"
printf 'channels:\n  null: {}\n' >crier.yaml
now() { date +%s.%N; }
copy_times=(); crier_times=()
for i in $(seq "$runs"); do
  db=bench_$i
  createdb "$db"
  psql -XAq -d "$db" -c "CREATE TABLE bare (ref text, name text, email text, fax text,
      address1 text, address2 text, city text, region text, postal_code text, country text,
      plan text, exposed text)"
  t0=$(now); psql -XAq -d "$db" -c "\\copy bare FROM 'list.csv' CSV HEADER"; t1=$(now)
  copy_times+=("$(echo "$t1 - $t0" | bc)")
  PGDATABASE=$db "$CRIER" db migrate >/dev/null
  PGDATABASE=$db "$CRIER" campaign create bench --incident BENCH >/dev/null
  t0=$(now); PGDATABASE=$db "$CRIER" campaign load bench --csv list.csv >"load.out"; t1=$(now)
  crier_times+=("$(echo "$t1 - $t0" | bc)")
  echo "run $i: copy ${copy_times[-1]} s, crier ${crier_times[-1]} s ($(cat load.out))"
  dropdb "$db"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mc=$(median "${copy_times[@]}"); mr=$(median "${crier_times[@]}")
echo "median: psql \\copy $mc s, crier load $mr s, ratio $(echo "scale=2; $mr / $mc" | bc) (target <= 2.5)"
INNER
