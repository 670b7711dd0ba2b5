#!/bin/bash
# audit.sh [N] [RUNS] - the audit tools on a dispatch log of N rows (default 1,000,000),
# each against the floor of reading the same rows out of PostgreSQL (psql \copy of the
# same columns in the same order to /dev/null), RUNS times (default 3), medians printed:
#   seal          crier audit seal of all N rows (hashing, block inserts)
#   verify        crier audit verify (target, issue 7: <= 10 s for 1,000,000 rows)
#   export        crier audit export to a file, and its peak RSS
#   verify --file crier audit verify of that export, no database
#   log (csv)     crier audit log --format csv to /dev/null, and its peak RSS at N and 3N rows
#                 (flat memory: the cursor streams)
# The rows are synthetic but shaped like a campaign's: two per notice (claim and
# outcome), with SMTP-like details and content hashes. BASELINE=<another crier binary>
# also runs its seal and verify, alternating with this build's in the same database.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
runs=${2:-3}
build=${BUILD:-build}
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
case $build in /*) CRIER=$build/crier ;; *) CRIER=$PWD/$build/crier ;; esac
export CRIER N=$n RUNS=$runs BASELINE=${BASELINE:+$(realpath "$BASELINE")}
work=$(mktemp -d /tmp/crier-bench-audit.XXXXXX)
trap 'rm -rf "$work"' EXIT

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' bash -s "$work" <<'INNER'
set -euo pipefail
cd "$1"
export PGDATABASE=bench_audit
createdb "$PGDATABASE"
printf 'log: {level: warning}\naudit: {block_rows: 10000}\n' >crier.yaml
export CRIER_CONFIG=$PWD/crier.yaml
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
"$CRIER" db migrate >/dev/null
"$CRIER" campaign create bench --incident BENCH --policy null >/dev/null
# add ROWS log rows to the campaign
add_rows() {
  sql "INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,
         from_state, to_state, attempt, actor, detail, content_sha256, content_at)
       SELECT 1, 'transition', 4294967296 + g / 2, 'ref-' || (g / 2),
              'email', CASE WHEN g % 2 = 0 THEN 'ready' ELSE 'sending' END,
              CASE WHEN g % 2 = 0 THEN 'sending' ELSE 'sent' END, 1, 'bench:1:email:0',
              CASE WHEN g % 2 = 1 THEN '250 2.0.0 OK: queued as ' || md5(g::text) END,
              CASE WHEN g % 2 = 1 THEN encode(sha256(g::text::bytea), 'hex') END,
              CASE WHEN g % 2 = 1 THEN now() END
       FROM generate_series(1, $1) g"
}
add_rows "$N"
sql "VACUUM ANALYZE crier.dispatch_log" >/dev/null
rows=$(sql "SELECT count(*) FROM crier.dispatch_log")

# timed LABEL COMMAND... - seconds and peak RSS (KiB) of one run, appended to LABEL.times
timed() {
  local label=$1; shift
  /usr/bin/time -f '%e %M %U %S' -o time.out "$@" >/dev/null 2>cmd.err || { cat cmd.err; exit 1; }
  cat time.out >>"$label.times"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# the columns as seal.c's seal_select_list reads them (the timestamps as the server's text)
floor_copy() {
  timed floor psql -XAtq -c "\\copy (SELECT id, at,
    campaign_id, event, notice_id, recipient_ref, channel, from_state, to_state, to_channel, attempt,
    actor, detail, reason, content_sha256, dedupe_key, hold_id, content_at
    FROM crier.dispatch_log WHERE campaign_id = 1 ORDER BY id) TO '/dev/null'"
}

# sealing changes the database: each run seals a fresh copy of the same rows
for _ in $(seq "$RUNS"); do
  for label in seal ${BASELINE:+baseline_seal}; do
    binary=$CRIER
    [ "$label" = seal ] || binary=$BASELINE
    sql "CREATE DATABASE bench_seal TEMPLATE bench_audit" >/dev/null
    PGDATABASE=bench_seal timed "$label" "$binary" audit seal
    sql "DROP DATABASE bench_seal" >/dev/null
  done
done
"$CRIER" audit seal >/dev/null
for _ in $(seq "$RUNS"); do
  floor_copy
  timed verify "$CRIER" audit verify
  [ -z "$BASELINE" ] || timed baseline_verify "$BASELINE" audit verify
  timed export "$CRIER" audit export --campaign bench --out export.jsonl
  timed verify_file "$CRIER" audit verify --file export.jsonl
  timed log "$CRIER" audit log bench --format csv
done
size=$(stat -c %s export.jsonl)
add_rows $((2 * N))
sql "VACUUM ANALYZE crier.dispatch_log" >/dev/null
timed log3 "$CRIER" audit log bench --format csv

t() { cut -d' ' -f1 "$1.times" | median; }
m() { cut -d' ' -f2 "$1.times" | median; }
cpu() { awk '{ print $3 + $4 }' "$1.times" | median; }
floor=$(t floor)
echo "dispatch log: $rows rows; floor (psql \\copy of the same rows, ordered): ${floor} s (median of $RUNS)"
for label in seal ${BASELINE:+baseline_seal} verify ${BASELINE:+baseline_verify} export verify_file log; do
  printf '%-16s %7s s  %6.2fx the floor  crier CPU %6.2f s  peak RSS %6d KiB\n' "$label" \
    "$(t $label)" "$(echo "$(t $label) / $floor" | bc -l)" "$(cpu $label)" "$(m $label)"
done
echo "export file: $((size / 1048576)) MiB"
printf 'log at %d rows: peak RSS %d KiB (at %d rows: %d KiB)\n' "$((3 * rows))" "$(m log3)" "$rows" "$(m log)"
verify=$(t verify)
echo "verify target <= 10 s for 1,000,000 rows: $(echo "$verify <= 10 * $rows / 1000000" | bc -l | sed 's/1/met/; s/0/MISSED/')"
INNER
