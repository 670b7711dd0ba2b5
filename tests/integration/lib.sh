# shellcheck shell=bash
# lib.sh - TAP helpers for crier's integration tests (sourced by each tests/integration/*.sh).
#
# Each test script gets its own database (created here, dropped at exit) in the PostgreSQL
# that libpq's PG* environment points at (tests/run.sh starts one with pg_virtualenv), its
# own temp directory, and runs the crier binary named by $CRIER.
set -uo pipefail
# what crier writes (print spools, exports) is for its owner and group only; the mail
# channel refuses a spool open to others (print_spool_check)
umask 027

: "${CRIER:?CRIER must name the crier binary (meson test sets it)}"
: "${TESTS_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"

# the incident metadata the default templates need (campaign start checks them)
META="$TESTS_DIR/data/incident.yaml"
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/crier-$TEST_NAME.XXXXXX")
export PGDATABASE="crier_${TEST_NAME}_$$"
TAP_COUNT=0
TAP_FAILED=0

# Test peers (SMTP capture, fax gateway) a script starts: PEERS+=($!) after starting one;
# cleanup stops them politely first (SIGTERM), then for good.
PEERS=()
stop_peers() {
  local pid
  for pid in "${PEERS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PEERS[@]}"; do
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  PEERS=()
}

# The peers are Python programs (tests/peers/) run by Debian's python3, which has aiosmtpd.
PY=${PEER_PYTHON:-/usr/bin/python3}

# start_peer NAME COMMAND... - start a test peer that prints "READY <port>" once it listens,
# its output in $WORK/NAME.out and .err; sets PORT. It is stopped at exit (PEERS). A loaded
# machine can take seconds to start Python: wait up to 30 s, unless the peer dies first.
start_peer() {
  local name=$1 pid; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  pid=$!
  PEERS+=("$pid")
  PORT=""
  for _ in $(seq 600); do
    PORT=$(awk '$1 == "READY" { print $2; exit }' "$WORK/$name.out" 2>/dev/null)
    [ -n "$PORT" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "Bail out! test peer $name did not start: $(cat "$WORK/$name.err")"
  exit 1
}

# role_logins - LOGIN users t_operator_PID, t_legal_PID and t_auditor_PID, one in each of
# crier's roles (password 'pw'), dropped at exit. Then `as WHO COMMAND...` runs COMMAND
# logged in as the member of crier_WHO, and `denied WHO QUERY` passes when the database
# refuses QUERY to them with "permission denied".
ROLE_LOGINS=()
role_logins() {
  local r
  for r in operator legal auditor; do
    sql "CREATE ROLE t_${r}_$$ LOGIN PASSWORD 'pw' IN ROLE crier_$r" >/dev/null
    ROLE_LOGINS+=("t_${r}_$$")
  done
}
as() { local who=$1; shift; PGUSER=t_${who}_$$ PGPASSWORD=pw PGHOST=${PGHOST:-localhost} "$@"; }
denied() {
  local err
  err=$(as "$1" psql -XAtq -v ON_ERROR_STOP=1 -c "$2" 2>&1 >/dev/null) && return 1
  [[ $err == *"permission denied"* ]] || { echo "#   $err"; return 1; }
}

# failure_logs - after a failed check, what crier said in the work dir's logs, on stderr
# (meson prints it with the failure): the lines above info of each *.log, or the tail of a
# log that is not crier's JSON. CI keeps no work dir, and a race seen once there is
# otherwise seen only as its symptom.
failure_logs() {
  local log lines
  for log in "$WORK"/*.log; do
    [ -s "$log" ] || continue
    lines=$(grep -v '"level":"\(info\|debug\)"' "$log" | tail -30 | cut -c1-300)
    [ -n "$lines" ] || continue
    echo "--- $(basename "$log") (last lines above info)"
    echo "$lines"
  done >&2
}

cleanup() {
  local rc=$? role
  [ "${TAP_FAILED:-0}" -eq 0 ] || failure_logs
  stop_peers
  # stop any crier this test left running
  jobs -p | xargs -r kill -9 2>/dev/null
  dropdb --if-exists "$PGDATABASE" 2>/dev/null
  for role in "${ROLE_LOGINS[@]}"; do
    psql -XAtq -d postgres -c "DROP ROLE IF EXISTS $role" 2>/dev/null
  done
  # CRIER_KEEP_WORK=1 keeps the temp directory (logs, configs, peers' output) to debug a failure
  if [ -n "${CRIER_KEEP_WORK:-}" ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
  return $rc
}
trap cleanup EXIT

createdb "$PGDATABASE" || { echo "Bail out! cannot create database $PGDATABASE"; exit 1; }
cd "$WORK" || exit 1

# ok COND DESCRIPTION - COND is a command; passes when it exits 0
ok() {
  local description=$1; shift
  TAP_COUNT=$((TAP_COUNT + 1))
  if "$@"; then
    echo "ok $TAP_COUNT - $description"
  else
    echo "not ok $TAP_COUNT - $description"
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
}

# is GOT EXPECTED DESCRIPTION
is() {
  TAP_COUNT=$((TAP_COUNT + 1))
  if [ "$1" == "$2" ]; then
    echo "ok $TAP_COUNT - $3"
  else
    echo "not ok $TAP_COUNT - $3"
    echo "#   got:      '$1'"
    echo "#   expected: '$2'"
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
}

# like GOT PATTERN DESCRIPTION - extended regex match
like() {
  TAP_COUNT=$((TAP_COUNT + 1))
  # a here-string, not a pipe: grep -q stops at the first match, and under pipefail the
  # writer's SIGPIPE would fail a match on a long text
  if grep -Eq -- "$2" <<<"$1"; then
    echo "ok $TAP_COUNT - $3"
  else
    echo "not ok $TAP_COUNT - $3"
    echo "#   got:     '$1'"
    echo "#   pattern: '$2'"
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
}

# unlike GOT PATTERN DESCRIPTION - no line of GOT matches the extended regex
unlike() {
  TAP_COUNT=$((TAP_COUNT + 1))
  if grep -Eq -- "$2" <<<"$1"; then
    echo "not ok $TAP_COUNT - $3"
    echo "#   got:     '$1'"
    echo "#   matches: '$2'"
    TAP_FAILED=$((TAP_FAILED + 1))
  else
    echo "ok $TAP_COUNT - $3"
  fi
}

# run_crier ARGS... - runs crier; sets OUT, ERR and RC (never fails the script)
run_crier() {
  "$CRIER" "$@" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  OUT=$(cat "$WORK/out")
  ERR=$(cat "$WORK/err")
}

# sql QUERY - one value (or rows, |-separated) from the test database
sql() {
  psql -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

# write_config [EXTRA YAML] - crier.yaml in the work dir with fast timings for tests
write_config() {
  cat >"$WORK/crier.yaml" <<YAML
queue:
  lease: 3s
  backoff_min: 1s
  backoff_max: 2s
  backoff_jitter: 0
  idle_poll: 50
  route_grace: 0
log:
  format: json
${1:-}
YAML
}

# wait_until SECONDS CONDITION... - run CONDITION every 50 ms until it succeeds; fails
# after SECONDS
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# session_open NAME - a psql session kept open between the test's steps (to hold a lock or
# a transaction across them): it reads the fifo NAME.in and writes NAME.out
declare -A SESSION_FD
session_open() {
  local fd
  mkfifo "$1.in"
  psql -XAtq <"$1.in" >"$1.out" 2>&1 &
  PEERS+=($!)
  exec {fd}>"$1.in"
  SESSION_FD[$1]=$fd
}
# session_say NAME SQL TAG - send SQL, which ends by selecting 'TAG', and wait for TAG
session_say() {
  echo "$2" >&"${SESSION_FD[$1]}"
  wait_until 10 grep -q "$3" "$1.out"
}
# session_close NAME - end the session's input: psql ends
session_close() {
  local fd=${SESSION_FD[$1]}
  exec {fd}>&-
}

# in_campaign NAME - a SQL condition: rows of that campaign
in_campaign() { echo "campaign_id = (SELECT id FROM crier.campaign WHERE name = '$1')"; }

# setup NAME POLICY CSV [CREATE ARGS...] - create (with $META), load and start a campaign
setup() {
  local name=$1 policy=$2 csv=$3; shift 3
  "$CRIER" campaign create "$name" --incident "INC-$name" --policy "$policy" --meta "$META" "$@" >/dev/null &&
    "$CRIER" campaign load "$name" --csv "$csv" >/dev/null &&
    "$CRIER" campaign start "$name" >/dev/null
  ok "campaign $name created, loaded and started" test $? -eq 0
}

# tallies_agree - the notice tallies that status reads (006_scale.sql) against a count of
# the notices themselves; every test ends with it, so that each path that moves notices
# (claim, record, reap, poll, bounces, holds, batches, cancel, kill) is checked
tallies_agree() {
  sql "WITH t AS (SELECT campaign_id, channel, state, sum(n) AS n FROM crier.notice_tally
                  GROUP BY 1, 2, 3 HAVING sum(n) <> 0),
       c AS (SELECT campaign_id, channel, state, count(*) AS n FROM crier.notice GROUP BY 1, 2, 3)
       SELECT coalesce(string_agg(format('campaign %s %s %s: tally %s, notices %s', campaign_id,
              channel, state, coalesce(t.n, 0), coalesce(c.n, 0)), '; '), 'agree')
       FROM t FULL JOIN c USING (campaign_id, channel, state) WHERE t.n IS DISTINCT FROM c.n"
}

done_testing() {
  if [ "$(sql "SELECT to_regclass('crier.notice_tally') IS NOT NULL" 2>/dev/null)" = t ]; then
    is "$(tallies_agree)" agree "the notice tallies agree with a count of the notices"
  fi
  echo "1..$TAP_COUNT"
  [ "$TAP_FAILED" -eq 0 ]
}
