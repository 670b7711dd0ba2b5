#!/bin/bash
# hold.sh [N] - how long `crier hold place` takes to return on a campaign of N notices
# (default 1,000,000) while `crier run` sends it through the null channel with 2 lanes:
# a campaign-wide hold, then (after its lift) a region hold. Also prints the lift time.
# What a region hold costs each claim, phase by phase, is bench/hold_scale.sh's.
# Target (issue 6): the place returns in <= 1 s plus the in-flight drain, whatever N.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
build=${BUILD:-build}
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
case $build in /*) CRIER=$build/crier ;; *) CRIER=$PWD/$build/crier ;; esac
export CRIER N=$n
work=$(mktemp -d /tmp/crier-bench-hold.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_list.py "$n" >"$work/list.csv"

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' bash -s "$work" <<'INNER'
set -euo pipefail
cd "$1"
export PGDATABASE=bench_hold
createdb "$PGDATABASE"
cat >crier.yaml <<YAML
queue: {idle_poll: 20}
log: {level: warning}
channels:
  null: {lanes: 2, batch_size: 500}
YAML
now() { date +%s.%N; }
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
"$CRIER" db migrate >/dev/null
"$CRIER" campaign create bench --incident BENCH --policy null >/dev/null
"$CRIER" campaign load bench --csv list.csv >/dev/null
sql "VACUUM ANALYZE"
"$CRIER" campaign start bench >/dev/null
"$CRIER" run 2>run.err &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
# full load: the lanes have been claiming for a while
sleep 3
before=$(sql "SELECT count(*) FROM crier.notice WHERE state = 'delivered'")
hold() {
  local t0 t1
  t0=$(now)
  "$CRIER" hold place bench "$@" --authority "FBI New York Field Office" --official "SA Jane Roe" \
    --case NY-2026-0412 --form written --reason "notice would alert the suspect" >place.out
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc)"
}
# in_effect HOLD - seconds from the command's transaction start to the placement row,
# written once the campaign lock is held (the claims under way have committed)
in_effect() {
  sql "SELECT round(extract(epoch FROM l.at - h.placed_at)::numeric, 3) FROM crier.hold h
       JOIN crier.dispatch_log l ON l.hold_id = h.id AND l.notice_id IS NULL WHERE h.id = $1"
}
took=$(hold)
held_at=$(sql "SELECT max(id) FROM crier.dispatch_log WHERE event = 'hold'")
in_flight=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE hold_id = 1 AND notice_id IS NOT NULL")
sleep 1
after=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE id > $held_at AND from_state = 'ready' AND to_state = 'sending'")
ready=$(sql "SELECT count(*) FROM crier.notice WHERE state = 'ready'")
echo "n=$N: campaign-wide hold placed under load (2 null lanes, batches of 500) in ${took} s," \
  "in effect $(in_effect 1) s after its statement began, drain included" \
  "($in_flight notices were in flight; $before delivered before it);" \
  "$ready ready notices held; $after claims after it (must be 0)"
t0=$(now)
"$CRIER" hold lift 1 --evidence "bench" >/dev/null
t1=$(now)
echo "n=$N: lift (counts the $ready notices it releases) in $(echo "$t1 - $t0" | bc) s"
sleep 2
took=$(hold --region CA)
in_flight=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE hold_id = 2 AND notice_id IS NOT NULL")
echo "n=$N: region CA hold placed under load in ${took} s, in effect $(in_effect 2) s after its" \
  "statement began, drain included ($in_flight in flight)"
INNER
