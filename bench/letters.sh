#!/bin/bash
# letters.sh [N] [SMALL] [LARGE] - print-batch throughput and memory of the mail channel.
#
#  1. letters/s: N mail-only recipients (gen_list.py, the default letter.md: a two-page
#     notice) through `crier run --until-idle` with one mail lane and letters_per_batch N,
#     i.e. claim -> letter.md -> cairo/pango into one batch PDF -> manifest -> fsync ->
#     record. The rate is N / (last 'batched' log row - first claim). Also the PDF's bytes
#     per page.
#  2. peak RSS of `crier run` for a SMALL- and a LARGE-letter batch (/usr/bin/time -v):
#     it must not grow with the batch beyond what the PDF format needs.
#  3. in the same run, the same letter (same body, same address blocks, same fonts)
#     rendered by ReportLab (python3-reportlab, /usr/bin/python3) into one PDF: letters/s,
#     and crier's ratio to it. Target (issue 4): >= 10x.
#  4. CPU per letter of both, from the same runs: crier's is all of `crier run`'s user and
#     system time (claim, letter.md, layout, PDF, manifest, record; not PostgreSQL's) over
#     N; ReportLab's is its process's. On a loaded machine this ratio is the steadier one.
#  5. the WAL the server wrote while `crier run` printed each batch (pg_current_wal_lsn
#     before and after), per letter: what the batch's lines, the claim and the record
#     cost the server's log (autovacuum and checkpoints in that time count too).
# Defaults N=20000 SMALL=5000 LARGE=50000; pass smaller numbers on a small machine.
# Environment: BUILD (build directory, default build), PEER_PYTHON (/usr/bin/python3),
# RUNS (3): steps 1, 3 and 4 that many times, each run's line printed, then their medians
# (the ratios are the medians of each run's own ratio); BASELINE (a second build
# directory, e.g. main's before a change): its crier runs too, alternating with BUILD's in
# every run on the same database, so a change is measured against its base in one sitting.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
small=${2:-5000}
large=${3:-50000}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
PY=${PEER_PYTHON:-/usr/bin/python3}
"$PY" -c 'import reportlab' 2>/dev/null || { echo "apt-get install python3-reportlab"; exit 1; }
[ -x /usr/bin/time ] || { echo "apt-get install time"; exit 1; }
. bench/lib.sh
baseline=$(baseline_dir crier)
[ -z "$baseline" ] || baseline=$baseline/crier
runs=$(runs_count)
export CRIER=$build/crier BASE_CRIER=$baseline RUNS=$runs PY N=$n SMALL=$small LARGE=$large
export META=$PWD/tests/data/incident.yaml GEN=$PWD/bench/gen_list.py
export TEMPLATES=$PWD/config/templates/default BENCH_DIR=$PWD/bench
work=$(mktemp -d /tmp/crier-bench-letters.XXXXXX)
export WORK=$work
trap 'rm -rf "$work"' EXIT

pg_virtualenv -t -o 'shared_buffers=256MB' -o 'max_wal_size=2GB' bash -s <<'INNER'
set -euo pipefail
. "$BENCH_DIR/lib.sh"
q() { psql -XAt -c "$1"; }
# one_run NAME COUNT [CRIER] - load COUNT mail-only letters, print them as one batch with
# CRIER (default $CRIER); sets RSS_KB, RATE, CPU_MS, WAL_PER, PAGES, BYTES
one_run() {
  local name=$1 count=$2 spool=$WORK/spool-$1 crier=${3:-$CRIER}
  mkdir -p -m 0750 "$spool"
  {
    printf 'queue: {lease: 10m, idle_poll: 50, route_grace: 0}\n'
    printf 'log: {format: json, level: warning}\nchannels:\n'
    mail_yaml "$spool"
    printf '    lanes: 1\n    letters_per_batch: %s\n    batch_window: 1s\n' "$count"
  } >"$WORK/$name.yaml"
  "$PY" "$GEN" "$count" >"$WORK/$name.csv"
  CRIER_CONFIG=$WORK/$name.yaml "$crier" campaign create "$name" --incident INC --policy mail \
    --meta "$META" >/dev/null
  CRIER_CONFIG=$WORK/$name.yaml "$crier" campaign load "$name" --csv "$WORK/$name.csv" >/dev/null
  CRIER_CONFIG=$WORK/$name.yaml "$crier" campaign start "$name" >/dev/null
  psql -XAq -c "VACUUM ANALYZE"
  local wal0
  wal0=$(q "SELECT pg_current_wal_lsn()")
  CRIER_CONFIG=$WORK/$name.yaml /usr/bin/time -v "$crier" run --until-idle \
    >/dev/null 2>"$WORK/$name.time"
  WAL_PER=$(q "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0') / $count)")
  RSS_KB=$(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/$name.time")
  CPU_MS=$(awk -F': ' -v n="$count" '/User time|System time/ {s += $2}
                       END {printf "%.3f", 1000 * s / n}' "$WORK/$name.time")
  local cid
  cid=$(q "SELECT id FROM crier.campaign WHERE name = '$name'")
  local batched
  batched=$(q "SELECT count(*) FROM crier.notice WHERE campaign_id = $cid AND state = 'batched'")
  [ "$batched" -eq "$count" ] || { echo "only $batched of $count batched"; exit 1; }
  RATE=$(q "SELECT round($count / extract(epoch FROM max(at) FILTER (WHERE to_state = 'batched')
                 - min(at) FILTER (WHERE to_state = 'sending'))::numeric, 1)
            FROM crier.dispatch_log WHERE campaign_id = $cid")
  PAGES=0; BYTES=0
  for f in "$spool"/B*.pdf; do
    PAGES=$((PAGES + $(pdfinfo "$f" | awk '/^Pages:/ {print $2}')))
    BYTES=$((BYTES + $(stat -c %s "$f")))
  done
  cp "$(ls "$spool"/B*.pdf | head -1)" "$WORK/$name-sample.pdf"
}

# median VALUES... - the middle value (the mean of the two middle ones for an even count)
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

"$CRIER" db migrate >/dev/null
rl_n=$(( N / 10 > 200 ? 200 : N / 10 ))
[ "$rl_n" -ge 20 ] || rl_n=20
builds=(crier)
[ -n "$BASE_CRIER" ] && builds+=(base)
declare -A rates cpus pages_bytes ratios cpu_ratios last_rate last_cpu
rl_rates=() rl_cpus=()
for run in $(seq "$RUNS"); do
  for b in "${builds[@]}"; do
    bin=$CRIER
    [ "$b" = base ] && bin=$BASE_CRIER
    one_run "rate-$b-$run" "$N" "$bin"
    rates[$b]+="$RATE " cpus[$b]+="$CPU_MS " pages_bytes[$b]+="$((BYTES / PAGES)) "
    last_rate[$b]=$RATE last_cpu[$b]=$CPU_MS
    echo "run $run, $b: $N letters into one batch PDF: $RATE letters/s; $PAGES pages," \
      "$((BYTES / PAGES)) bytes/page; peak RSS $((RSS_KB / 1024)) MiB; $CPU_MS ms CPU/letter"
    rate_wal=$WAL_PER
  done
  # the same letter body, as crier rendered it, for ReportLab
  if [ "$run" = 1 ]; then
    CRIER_CONFIG=$WORK/rate-crier-1.yaml "$CRIER" campaign proof rate-crier-1 --out "$WORK/proof" \
      --count 1 >/dev/null
  fi
  body=$(ls "$WORK"/proof/*letter.md | head -1)
  read -r rl_rate rl_cpu < <("$PY" "$BENCH_DIR/letters_reportlab.py" "$body" "$rl_n" "$WORK/reportlab.pdf")
  rl_rates+=("$rl_rate") rl_cpus+=("$rl_cpu")
  echo "run $run, reportlab: $rl_n letters into one PDF: $rl_rate letters/s" \
    "($(pdfinfo "$WORK/reportlab.pdf" | awk '/^Pages:/ {print $2}') pages); $rl_cpu ms CPU/letter"
  for b in "${builds[@]}"; do
    ratios[$b]+="$(ratio "${last_rate[$b]}" "$rl_rate") "
    cpu_ratios[$b]+="$(ratio "$rl_cpu" "${last_cpu[$b]}") "
  done
done
one_run small "$SMALL"
small_rss=$RSS_KB small_wal=$WAL_PER
one_run large "$LARGE"
large_rss=$RSS_KB
echo "peak RSS:  $SMALL-letter batch $((small_rss / 1024)) MiB, $LARGE-letter batch" \
  "$((large_rss / 1024)) MiB ($((BYTES / PAGES)) bytes/page in the large one)"
echo "WAL:       $rate_wal / $small_wal / $WAL_PER bytes a letter ($N / $SMALL / $LARGE-letter batches)"
echo "medians of $RUNS run(s), load average $(cut -d' ' -f1-3 /proc/loadavg):"
echo "reportlab: $(median "${rl_rates[@]}") letters/s, $(median "${rl_cpus[@]}") ms CPU/letter"
for b in "${builds[@]}"; do
  # shellcheck disable=SC2086 # the lists are space-separated numbers
  echo "$b: $(median ${rates[$b]}) letters/s, $(median ${cpus[$b]}) ms CPU/letter," \
    "$(median ${pages_bytes[$b]}) bytes/page; ratio to reportlab $(median ${ratios[$b]})x" \
    "(target >= 10x), CPU ratio $(median ${cpu_ratios[$b]})x"
done
INNER
