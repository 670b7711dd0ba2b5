#!/bin/bash
# hold_scale.sh [N] [OUT] - what a region hold costs the claim on a campaign of N notices
# (default 1,000,000), while `crier run` sends it through the null channel (2 lanes,
# batches of 500, idle_poll 20 ms). One campaign, six phases:
#   none      no hold, to 10 % of the campaign
#   held      a region hold on CA (~10 % of the list) placed, to 35 %
#   lifted    that hold lifted, to 60 % (every claim now runs the `delays` step)
#   held2     a second CA hold placed, until only the held notices are left
#   empty     10 s more with only held notices left: every claim comes back empty
#   vacuumed  the same, 10 s after a VACUUM of crier.notice (as autovacuum would leave it)
#   lifted2   the second hold lifted, to the end
# Every claim's plan is logged with auto_explain (ANALYZE, BUFFERS); the script prints, per
# phase, the claims, the empty ones, and the median and 90th percentile of their durations
# (the server's own, from the log), and the buffers the median claim touched. OUT (a
# directory) receives the log and the median claim's plan of each phase. It also checks
# the holds: no CA notice claimed while a hold was in place, and every notice delivered
# once. The machine's load average is printed: quote it with the figures. Each placement
# is timed (the first builds the claim's region index, 022_region_index_lazy.sql);
# NO_REGION_INDEX=1 drops that index after each placement, to measure the claim without it.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
out=${2:-}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
export CRIER=$build/crier N=$n BENCH=$PWD/bench
work=$(mktemp -d /tmp/crier-bench-hold-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -m 777 "$work/pglog"
[ -z "$out" ] || { mkdir -p "$out"; out=$(realpath "$out"); }
export OUT=$out
python3 bench/gen_list.py "$n" >"$work/list.csv"

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' \
  -o 'shared_preload_libraries=auto_explain' -o 'logging_collector=on' \
  -o "log_directory=$work/pglog" -o 'log_filename=pg.log' \
  bash -s "$work" <<'INNER'
set -euo pipefail
cd "$1"
export PGDATABASE=bench_hold_scale
createdb "$PGDATABASE"
cat >crier.yaml <<YAML
queue: {idle_poll: 20}
log: {level: warning}
channels:
  null: {lanes: 2, batch_size: 500}
YAML
export CRIER_CONFIG=$PWD/crier.yaml
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
"$CRIER" db migrate >/dev/null
"$CRIER" campaign create bench --incident BENCH --policy null >/dev/null
t0=$(date +%s.%N)
"$CRIER" campaign load bench --csv list.csv >/dev/null
echo "load of $N: $(echo "$(date +%s.%N) - $t0" | bc) s"
sql "VACUUM ANALYZE"
"$CRIER" campaign start bench >/dev/null
sql "ALTER SYSTEM SET auto_explain.log_min_duration = 0" >/dev/null
sql "ALTER SYSTEM SET auto_explain.log_analyze = on" >/dev/null
sql "ALTER SYSTEM SET auto_explain.log_buffers = on" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
delivered() { sql "SELECT coalesce(sum(n), 0) FROM crier.notice_tally WHERE campaign_id = 1 AND state = 'delivered'"; }
until_done() { # PERCENT
  local target=$((N * $1 / 100))
  while [ "$(delivered)" -lt "$target" ]; do sleep 0.5; done
}
mark() { echo "$1 $(sql "SELECT extract(epoch FROM clock_timestamp())")" >>phases; }
# hold - place a CA hold, timed: the campaign's first region hold also builds the claim's
# region index (022_region_index_lazy.sql), while the lanes' writes wait for it
hold() {
  local t0
  t0=$(date +%s.%N)
  "$CRIER" hold place bench --region CA --authority "FBI New York Field Office" \
    --official "SA Jane Roe" --case NY-2026-0412 --form written \
    --reason "notice would alert the suspect" >hold.out
  echo "hold place at $(delivered) delivered: $(echo "$(date +%s.%N) - $t0" | bc) s" \
    "($(grep -o "region index.*" hold.out || echo "no index built"))"
  # NO_REGION_INDEX=1: the claims without it, as after a build that failed
  [ -z "${NO_REGION_INDEX:-}" ] || sql "DROP INDEX IF EXISTS crier.notice_c1_claim_region"
}
: >"$1/pglog/pg.log"
mark none
"$CRIER" run 2>run.err &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
# each phase is marked as its command starts: the claims during a lift are the lift's
until_done 10
mark held
hold
until_done 35
mark lifted
"$CRIER" hold lift 1 --evidence bench >/dev/null
until_done 60
mark held2
hold
held=$(sql "SELECT count(*) FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id
            AND r.seq = n.recipient_seq WHERE n.state IN ('ready', 'sending') AND upper(r.region) = 'CA'")
until [ "$(sql "SELECT count(*) FROM crier.notice WHERE state IN ('ready', 'sending')")" -le "$held" ]; do
  sleep 0.5
done
mark empty
sleep 10
# the index entries of the notices sent since the last vacuum are what an empty claim
# still steps over (021_hold_region.sql): what autovacuum leaves once it has run
sql "VACUUM crier.notice"
mark vacuumed
sleep 10
mark lifted2
"$CRIER" hold lift 2 --evidence bench >/dev/null
until_done 100
mark end
kill -TERM $worker
wait $worker || true
trap - EXIT
sql "ALTER SYSTEM RESET auto_explain.log_min_duration" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
# the holds were obeyed: no CA notice claimed between a placement's log row and its lift's
late=$(sql "WITH w AS (SELECT h.id, min(l.id) AS placed, max(l.id) AS lifted FROM crier.hold h
              JOIN crier.dispatch_log l ON l.hold_id = h.id AND l.notice_id IS NULL GROUP BY h.id)
            SELECT count(*) FROM crier.dispatch_log d JOIN w ON d.id > w.placed AND d.id < w.lifted
            JOIN crier.notice n ON n.id = d.notice_id AND n.campaign_id = 1
            JOIN crier.recipient r ON r.campaign_id = 1 AND r.seq = n.recipient_seq
            WHERE d.from_state = 'ready' AND d.to_state = 'sending' AND upper(r.region) = 'CA'")
got=$(delivered)
claims=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE campaign_id = 1 AND from_state = 'ready'
              AND to_state = 'sending'")
delayed=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE campaign_id = 1 AND from_state = 'ready'
               AND to_state = 'sending' AND reason LIKE 'delayed for law enforcement%'")
echo "held CA notices claimed while held: $late (must be 0); delivered $got of $N, $claims claims," \
  "$delayed marked delayed; load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$BENCH/hold_scale.py" phases "$1/pglog/pg.log" "${OUT:-}"
INNER
