#!/bin/bash
# status_hold.sh N [RUNS] - what `crier status NAME --json` costs under an active region
# hold on a campaign of N people (bench/gen_list.py: ten states, CA ~10 %), every notice
# still ready: status then counts the held ones (hold.c's hold_held_by_channel), the one
# part of status that reads the campaign's notices.
#
# Loads N people (null channel) into a fresh database, starts the campaign (no worker
# runs, so all N notices stay ready) and places a CA hold. Then times the status command
# RUNS times (default 5), this build and BASELINE's crier (a build of another commit, when
# given) alternating, and prints the medians and their ratio. Twice: with the notices'
# region as the load wrote it (migration 021), then with notice.region set back to NULL,
# as for a campaign loaded before 021, where the count must come from the recipients. Each
# build's held count is printed too: they must agree, and agree between the two passes.
# A crier.worker row serving null is stamped before each status, as a live `crier run`
# would: with no worker, status also counts the notices waiting for one, notice by notice
# (service.c's WAITING_HELD_SQL, with holds placed), which is not what is measured here.
# BUILD=DIR picks this build (default build). The load average is printed at the start and
# the end: quote it with the figures. Performance is measured here, never asserted in a test.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,15p' "$0"; exit 64; }
n=$1 runs=${2:-5}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
[ -z "${BASELINE:-}" ] || [ -x "$BASELINE" ] || { echo "BASELINE=$BASELINE is not an executable"; exit 1; }
[ -x /usr/bin/time ] || { echo "status_hold.sh needs /usr/bin/time (Debian package time)"; exit 1; }
export CRIER=$build/crier BASELINE=${BASELINE:-} META=$PWD/tests/data/incident.yaml N=$n RUNS=$runs
work=$(mktemp -d /tmp/crier-bench-status-hold.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
python3 bench/gen_list.py "$n" >"$work/list.csv"
echo "N=$n runs=$runs load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' bash -s "$work" <<'INNER'
set -euo pipefail
cd "$1"
export PGDATABASE=bench_status_hold
createdb "$PGDATABASE"
printf 'log: {level: warning}\nchannels:\n  null: {lanes: 2, batch_size: 500}\n' >crier.yaml
export CRIER_CONFIG=$PWD/crier.yaml
q() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
"$CRIER" db migrate >/dev/null
"$CRIER" campaign create crier --incident BENCH --policy null --meta "$META" >/dev/null
"$CRIER" campaign load crier --csv list.csv >/dev/null
"$CRIER" campaign start crier >/dev/null 2>&1
"$CRIER" hold place crier --region CA --authority "FBI New York Field Office" \
  --official "SA Jane Roe" --case NY-2026-0412 --form written \
  --reason "notice would alert the suspect" >/dev/null
q "VACUUM ANALYZE"
median() { sort -n | awk '{a[NR]=$1} END {print NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# timed BINARY OUTFILE - one status, its seconds appended to OUTFILE; prints the held count
timed() {
  q "INSERT INTO crier.worker (id, channels) VALUES ('bench:0', '{null}')
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()"
  /usr/bin/time -f '%e' -a -o "$2" "$1" status crier --json >status.json
  grep -o '"held": *[0-9]*' status.json | head -1 | grep -o '[0-9]*$'
}
pass() { # LABEL
  : >this.t
  : >base.t
  local held_this="" held_base=""
  for _ in $(seq "$RUNS"); do
    held_this=$(timed "$CRIER" this.t)
    [ -z "$BASELINE" ] || held_base=$(timed "$BASELINE" base.t)
  done
  local m_this m_base
  m_this=$(median <this.t)
  echo "$1: this build median $m_this s (held $held_this; $(tr '\n' ' ' <this.t))"
  if [ -n "$BASELINE" ]; then
    m_base=$(median <base.t)
    echo "$1: baseline   median $m_base s (held $held_base; $(tr '\n' ' ' <base.t))"
    echo "$1: baseline / this build: $(echo "scale=1; $m_base / $m_this" | bc)x"
  fi
}
echo "ready notices: $(q "SELECT count(*) FROM crier.notice WHERE state = 'ready'"), CA: $(q "SELECT count(*) FROM crier.recipient WHERE upper(region) = 'CA'")"
pass "region on the notice row"
q "UPDATE crier.notice SET region = NULL"
q "VACUUM ANALYZE crier.notice"
pass "region NULL (loaded before 021)"
INNER
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
