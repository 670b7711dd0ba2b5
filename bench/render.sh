#!/bin/bash
# render.sh [N] - the renderer's instructions per letter and per fax, counted by valgrind
# (cachegrind without cache simulation). A count does not depend on what else the machine
# is doing, so a change to channels/letter.c can be measured to the percent on a shared
# VM where CPU time swings by tens of percent between runs (docs/benchmarks.md, "The IMb as
# one stencil").
#
#  1. The body: one person (gen_list.py's first) loaded and `crier campaign proof`: the
#     shipped letter.md with tests/data/incident.yaml's meta, rendered as the lane does.
#  2. render-bench (bench/render.c: channels/letter.c alone, no database) renders N/5 and
#     then N documents; the difference over the 4N/5 documents between is the
#     instructions per document, start-up cancelled out. Letters go into one batch PDF
#     through one cache with forms, each with its own name, reference, street and IMb;
#     faxes are one PDF each through a cache without forms, as the fax lane makes them.
#  3. The peer: ReportLab rendering the same letter (bench/letters_reportlab.py, the
#     comparison of bench/letters.sh) at N/10 and N/2 letters, the same way; crier's ratio to
#     it is the steady form of issue 16's letters target (>= 10x).
#  4. BASELINE=DIR: a second build's render-bench, the same counts, and the ratio.
# Default N=200. Environment: BUILD (build directory, default build), BASELINE,
# PEER_PYTHON (/usr/bin/python3). Needs valgrind, python3-reportlab, PostgreSQL.
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the script too
cd "$(dirname "$0")/.."
n=${1:-200}
[[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -ge 10 ] || { echo "N: a number >= 10, not '$n'"; exit 1; }
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/render-bench" ] || { echo "build first: meson setup $build && ninja -C $build"; exit 1; }
. bench/lib.sh
baseline=$(baseline_dir render-bench)
command -v valgrind >/dev/null || { echo "apt-get install valgrind"; exit 1; }
PY=${PEER_PYTHON:-/usr/bin/python3}
"$PY" -c 'import reportlab' 2>/dev/null || { echo "apt-get install python3-reportlab"; exit 1; }
work=$(mktemp -d /tmp/crier-bench-render.XXXXXX)
trap 'rm -rf "$work"' EXIT

# the body, as `crier campaign proof` renders it for the list's first person
python3 bench/gen_list.py 1 >"$work/one.csv"
name=$(python3 -c 'import csv, sys; r = next(csv.DictReader(open(sys.argv[1]))); print(r["name"])' "$work/one.csv")
ref=$(python3 -c 'import csv, sys; r = next(csv.DictReader(open(sys.argv[1]))); print(r["ref"])' "$work/one.csv")
export CRIER=$build/crier WORK=$work META=$PWD/tests/data/incident.yaml BENCH_DIR=$PWD/bench
pg_virtualenv -t bash -s <<'INNER' >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the script too
. "$BENCH_DIR/lib.sh"
{ printf 'log: {level: warning}\nchannels:\n'; mail_yaml "$WORK/spool"; } >"$WORK/crier.yaml"
export CRIER_CONFIG=$WORK/crier.yaml
"$CRIER" db migrate
"$CRIER" campaign create one --incident INC --policy mail --meta "$META"
"$CRIER" campaign load one --csv "$WORK/one.csv"
"$CRIER" campaign start one 2>/dev/null
"$CRIER" campaign proof one --out "$WORK/proof" --count 1
INNER
body=$(ls "$work"/proof/*letter.md | head -1)
grep -qF "$name" "$body" && grep -qF "$ref" "$body" || { echo "the proof holds no '$name' or '$ref'"; exit 1; }

# instructions COMMAND... - the instructions valgrind counted for COMMAND
instructions() {
  valgrind --tool=cachegrind --cache-sim=no --branch-sim=no --cachegrind-out-file=/dev/null \
    "$@" 2>"$work/vg.err" >"$work/vg.out" || { echo "failed: $*" >&2; tail -5 "$work/vg.err" >&2; exit 1; }
  awk '/I +refs:/ { gsub(",", "", $NF); print $NF }' "$work/vg.err"
}
# per_document LOW HIGH COMMAND-WITH-%N - instructions per document between LOW and HIGH
per_document() {
  local low=$1 high=$2 a b
  shift 2
  a=$(instructions "${@//%N/$low}")
  b=$(instructions "${@//%N/$high}")
  echo $(((b - a) / (high - low)))
}
fmt() { printf "%'d" "$1"; }

small=$((n / 5))
echo "n=$n; instructions per document, counted by valgrind between $small and $n documents"
declare -A letter fax
for b in build ${baseline:+baseline}; do
  dir=$build
  [ "$b" = baseline ] && dir=$baseline
  letter[$b]=$(per_document "$small" "$n" "$dir/render-bench" letter "$body" "$name" "$ref" %N)
  fax[$b]=$(per_document "$small" "$n" "$dir/render-bench" fax "$body" "$name" "$ref" %N)
  echo "$b: $(fmt "${letter[$b]}") per batch letter, $(fmt "${fax[$b]}") per fax" \
    "($("$dir/render-bench" letter "$body" "$name" "$ref" "$small"))"
done
rl=$(per_document $((n / 10)) $((n / 2)) "$PY" bench/letters_reportlab.py "$body" %N "$work/rl.pdf")
echo "reportlab: $(fmt "$rl") per letter"
for b in build ${baseline:+baseline}; do
  echo "$b: reportlab / crier per letter = $(awk -v a="$rl" -v b="${letter[$b]}" 'BEGIN { printf "%.2f", a / b }')x (target >= 10x)"
done
if [ -n "$baseline" ]; then
  echo "build / baseline: letters $(awk -v a="${letter[build]}" -v b="${letter[baseline]}" 'BEGIN { printf "%.3f", a / b }')," \
    "faxes $(awk -v a="${fax[build]}" -v b="${fax[baseline]}" 'BEGIN { printf "%.3f", a / b }')"
fi
