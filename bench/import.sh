#!/bin/bash
# import.sh [ROWS] [RUNS] - `crier campaign load --csv` against its ceiling, psql's \copy of
# the same file into a bare table, in one run on one throwaway PostgreSQL.
#
# Each run loads the same generated list (bench/gen_list.py) with \copy and with crier, each
# into a fresh database, and prints both times, their ratio and crier's peak RSS (from
# /usr/bin/time -v). The last line has the medians and the median ratio (target: <= 2.5).
# Two times are given for each load: until its rows were committed (the list_load row's
# commit timestamp, track_commit_timestamp being on in the throwaway cluster) and until
# `crier campaign load` returned, the campaign's `audit find` indexes built (019_find_local.sql);
# each against the same run's \copy.
# BASELINE=/path/to/another/crier also loads with that binary in every run (before/after
# figures from the same run on a loaded machine). DUPS=1 repeats the list's last row's ref
# at its end, to time the duplicate path (three reads of the file instead of one).
# The throwaway cluster takes its locale from the environment (LC_ALL, LANG), and text
# indexes cost more under a real locale than under C.UTF-8: the collation is printed, and
# LC_ALL=en_US.UTF-8 (Debian's usual server locale; the locales package, locale-gen)
# measures a load as such a server would run it. REFS=unordered writes the list's refs in
# no order (gen_list.py --unordered-refs): the unique ref key's sort then costs what a real
# list's does, where in-order refs are the cheap case.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
runs=${2:-3}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time)"; exit 1; }
export CRIER=$build/crier BASELINE=${BASELINE:-}
work=$(mktemp -d /tmp/crier-bench-import.XXXXXX)
trap 'rm -rf "$work"' EXIT
refs=${REFS:-ordered}
case $refs in
  ordered) python3 bench/gen_list.py "$rows" >"$work/list.csv" ;;
  unordered) python3 bench/gen_list.py "$rows" --unordered-refs >"$work/list.csv" ;;
  *) echo "REFS is ordered or unordered, not $refs"; exit 2 ;;
esac
if [ -n "${DUPS:-}" ]; then
  last=$(tail -1 "$work/list.csv")
  echo "$last" >>"$work/list.csv"
fi
chmod -R a+rX "$work"
echo "rows: $rows ($refs refs)  file: $(du -h "$work/list.csv" | cut -f1)  runs: $runs  load: $(cut -d' ' -f1-3 /proc/loadavg)"

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' -o 'synchronous_commit=on' \
  -o 'track_commit_timestamp=on' \
  bash -s "$work" "$runs" <<'INNER'
set -euo pipefail
work=$1; runs=$2
cd "$work"
printf 'channels:\n  null: {}\n' >crier.yaml
echo "cluster collation: $(psql -XAtq -d postgres -c 'SHOW lc_collate')"
now() { date +%s.%N; }
# load BINARY DB - one crier load into a fresh database; prints "seconds rss_kb committed",
# committed being the seconds from the start until the load's transaction committed
load() {
  createdb "$2"
  PGDATABASE=$2 "$1" db migrate >/dev/null
  PGDATABASE=$2 "$1" campaign create bench --incident BENCH >/dev/null
  local t0 t1
  t0=$(now)
  PGDATABASE=$2 /usr/bin/time -v -o time.out "$1" campaign load bench --csv list.csv >load.out 2>load.err
  t1=$(now)
  local tc
  tc=$(psql -XAtq -d "$2" -c "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))
      FROM crier.list_load ORDER BY id DESC LIMIT 1")
  dropdb "$2"
  echo "$(echo "$t1 - $t0" | bc) $(awk -F': ' '/Maximum resident/ {print $2}' time.out)" \
    "$(echo "$tc - $t0" | bc)"
}
copy_times=(); crier_times=(); base_times=(); ratios=(); base_ratios=()
commit_times=(); commit_ratios=(); base_commit_ratios=()
for i in $(seq "$runs"); do
  createdb "bare_$i"
  psql -XAq -d "bare_$i" -c "CREATE TABLE bare (ref text, name text, email text, fax text,
      address1 text, address2 text, city text, region text, postal_code text, country text,
      plan text, exposed text)"
  t0=$(now); psql -XAq -d "bare_$i" -c "\\copy bare FROM 'list.csv' CSV HEADER"; t1=$(now)
  dropdb "bare_$i"
  copy=$(echo "$t1 - $t0" | bc)
  read -r secs rss committed < <(load "$CRIER" "crier_$i")
  copy_times+=("$copy"); crier_times+=("$secs"); ratios+=("$(echo "scale=2; $secs / $copy" | bc)")
  commit_times+=("$committed"); commit_ratios+=("$(echo "scale=2; $committed / $copy" | bc)")
  line="run $i: copy $copy s, crier committed $committed s (ratio ${commit_ratios[-1]}),"
  line="$line returned $secs s (ratio ${ratios[-1]}, peak RSS $((rss / 1024)) MB)"
  if [ -n "$BASELINE" ]; then
    read -r bsecs brss bcommitted < <(load "$BASELINE" "base_$i")
    base_times+=("$bsecs"); base_ratios+=("$(echo "scale=2; $bsecs / $copy" | bc)")
    base_commit_ratios+=("$(echo "scale=2; $bcommitted / $copy" | bc)")
    line="$line; baseline committed $bcommitted s (ratio ${base_commit_ratios[-1]}),"
    line="$line returned $bsecs s (ratio ${base_ratios[-1]}, peak RSS $((brss / 1024)) MB)"
  fi
  echo "$line  [$(cat load.out | head -1)]"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "median: psql \\copy $(median "${copy_times[@]}") s; crier committed $(median "${commit_times[@]}") s," \
  "ratio $(median "${commit_ratios[@]}"); returned $(median "${crier_times[@]}") s," \
  "ratio $(median "${ratios[@]}") (target <= 2.5)"
if [ -n "$BASELINE" ]; then
  echo "median baseline: committed ratio $(median "${base_commit_ratios[@]}");" \
    "returned $(median "${base_times[@]}") s, ratio $(median "${base_ratios[@]}")"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
INNER
