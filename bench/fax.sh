#!/bin/bash
# fax.sh [N] - faxes submitted per second: N fax recipients through claim -> letter.md ->
# PDF -> multipart upload -> record, by `crier run --until-idle` with the fax channel,
# against tests/peers/fax_gateway.py with LATENCY ms of latency on every reply; and, in the
# same run against the same gateway, the raw ceiling: curl's own --parallel posting the same
# PDF N times at the same concurrency (lanes x max_in_flight). Prints both, and the ratio.
# Target (issue 5): crier >= 0.8 x curl.
#
# crier's rate is N / (last 'submitted' row - first claim), from the dispatch log: it
# includes claiming, rendering each letter, the upload and the record, not the polling that
# follows (the run waits for every fax to be polled to 'delivered' and checks it).
# Also printed: crier run's CPU per fax (user+sys over N, polling included), and where a
# lane's time went per batch, from the dispatch log: claim to last record (inside the
# batch: rendering and uploads) and last record to the lane's next claim (the engine);
# and the gateway's CPU per fax in crier's phase (uploads and polls) and per post in
# curl's: the two share the machine's cores, so the ratio is partly the gateway's.
# Environment: BUILD (build directory, default build), LANES (2), BATCH (500),
# IN_FLIGHT (50, per lane), LATENCY (20), POLL (crier's poll_interval, 1s: one poll a fax
# inside crier's phase, as in a long campaign), PEER_PYTHON (/usr/bin/python3), RUNS (3): the
# crier run and curl's that many times, each run's lines printed, then the medians (the
# ratio is the median of each run's own); BASELINE (a second build directory): its crier
# runs too in every run, before curl, on the same database and gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
for tool in curl bc; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (Debian: curl, bc)"; exit 1; }
done
. bench/lib.sh
baseline=$(baseline_dir crier)
[ -z "$baseline" ] || baseline=$baseline/crier
runs=$(runs_count)
export BASE_CRIER=$baseline RUNS=$runs
# a batch ten times what a lane keeps in flight: the lane waits for a batch's last reply once
# per 500 faxes, not once per 50 (docs/fax.md, "Throughput"); curl's concurrency is the same
export CRIER=$build/crier LANES=${LANES:-2} BATCH=${BATCH:-500} IN_FLIGHT=${IN_FLIGHT:-50}
export POLL=${POLL:-1s} LATENCY=${LATENCY:-20} PY=${PEER_PYTHON:-/usr/bin/python3} N=$n
export META=$PWD/tests/data/incident.yaml PEER=$PWD/tests/peers/fax_gateway.py
export FAX_SECRET=bench-secret
work=$(mktemp -d /tmp/crier-bench-fax.XXXXXX)
export WORK=$work BENCH_DIR=$PWD/bench
pids=()
stop() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap stop EXIT

# start_gateway NAME [ARGS] - sets PORT
start_gateway() {
  local name=$1; shift
  "$PY" "$PEER" --secret "$FAX_SECRET" --latency-ms "$LATENCY" --queued-s 0.2 --progress-s 0.2 \
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  PORT=""
  for _ in $(seq 100); do
    PORT=$(awk '$1 == "READY" { print $2 }' "$work/$name.out" 2>/dev/null)
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  echo "fax_gateway.py did not start: $(cat "$work/$name.err")"
  exit 1
}
mkdir -p "$work/sample"
start_gateway sample --save-dir "$work/sample" --latency-ms 0
export SAMPLE_PORT=$PORT
start_gateway bench
export PORT GATEWAY_PID=${pids[-1]}
awk -v n="$n" 'BEGIN { print "ref,name,fax"; for (i = 1; i <= n; i++) printf "B%07d,Bench Person %d,+1646%06d1\n", i, i, i }' >"$work/list.csv"

pg_virtualenv -t -o 'shared_buffers=256MB' -o 'max_wal_size=2GB' bash -s <<'INNER'
set -euo pipefail
cd "$WORK"
. "$BENCH_DIR/lib.sh"
config() { # PORT
  cat >crier.yaml <<YAML
queue: {idle_poll: 20, route_grace: 0}
log: {level: warning}
channels:
  fax:
    lanes: $LANES
    batch_size: $BATCH
    max_in_flight: $IN_FLIGHT
    provider: sinch
    base_url: http://127.0.0.1:$1
    project_id: proj-test
    key_id: key-test
    key_secret_env: FAX_SECRET
    from: "+12125550100"
    header_text: Example Corp notice
    poll_interval: $POLL
  null: {}
YAML
}
"$CRIER" db migrate >/dev/null
postmaster=$(postmaster_pid)
# one letter first, kept by the sample gateway: the PDF curl will post
config "$SAMPLE_PORT"
head -2 list.csv >sample.csv
"$CRIER" campaign create sample --incident BENCH --policy fax,null --meta "$META" >/dev/null
"$CRIER" campaign load sample --csv sample.csv >/dev/null
"$CRIER" campaign start sample >/dev/null
"$CRIER" run --until-idle 2>run.err
pdf=$(ls "$WORK"/sample/*.pdf | head -1)
echo "sample letter: $(stat -c %s "$pdf") bytes"

hz=$(getconf CLK_TCK)
q() { psql -XAt -c "$1"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
config "$PORT"

# crier_run NAME BIN - N faxes through BIN's `crier run`; sets RATE, CPU, GW_CPU, PG_CPU,
# LANES_SAY
crier_run() {
  local name=$1 bin=$2
  "$bin" campaign create "$name" --incident BENCH --policy fax,null --meta "$META" >/dev/null
  "$bin" campaign load "$name" --csv list.csv >/dev/null
  psql -XAq -c "VACUUM ANALYZE"
  "$bin" campaign start "$name" >/dev/null
  local gw0 gw1 pg0 pg1 elapsed kb cpu_user cpu_sys
  gw0=$(tree_ticks "$GATEWAY_PID")
  pg0=$(tree_ticks "$postmaster")
  /usr/bin/time -f '%e %M %U %S' -o time.out "$bin" run --until-idle 2>>run.err
  read -r elapsed kb cpu_user cpu_sys <time.out
  gw1=$(tree_ticks "$GATEWAY_PID")
  pg1=$(tree_ticks "$postmaster")
  local delivered span
  delivered=$(q "SELECT count(*) FROM crier.notice n JOIN crier.campaign c ON c.id = n.campaign_id WHERE c.name = '$name' AND n.state = 'delivered' AND n.channel = 'fax'")
  [ "$delivered" -eq "$N" ] || { echo "only $delivered of $N delivered by fax"; tail -5 run.err; exit 1; }
  span=$(q "SELECT extract(epoch FROM max(l.at) FILTER (WHERE l.to_state = 'submitted' AND l.from_state = 'sending')
                  - min(l.at) FILTER (WHERE l.to_state = 'sending'))
            FROM crier.dispatch_log l JOIN crier.campaign c ON c.id = l.campaign_id WHERE c.name = '$name'")
  RATE=$(echo "scale=1; $N / $span" | bc)
  CPU=$(echo "scale=3; 1000 * ($cpu_user + $cpu_sys) / $N" | bc)
  GW_CPU=$(echo "scale=3; 1000 * ($gw1 - $gw0) / $hz / $N" | bc)
  PG_CPU=$(echo "scale=3; 1000 * ($pg1 - $pg0) / $hz / $N" | bc)
  # per lane (actor) and batch: claims closer than 50 ms together are one batch
  LANES_SAY=$(q "WITH l AS (SELECT l.* FROM crier.dispatch_log l JOIN crier.campaign c ON c.id = l.campaign_id
                      WHERE c.name = '$name'),
    c0 AS (SELECT notice_id, actor, at, CASE WHEN at - lag(at) OVER (PARTITION BY actor ORDER BY at)
                                                 > interval '50 ms' THEN 1 ELSE 0 END AS starts
           FROM l WHERE to_state = 'sending'),
    claims AS (SELECT notice_id, actor, at, sum(starts) OVER (PARTITION BY actor ORDER BY at) AS batch FROM c0),
    b AS (SELECT c.actor, c.batch, min(c.at) AS claimed, max(s.at) AS last_record
          FROM claims c JOIN l s ON s.notice_id = c.notice_id AND s.from_state = 'sending'
                                AND s.to_state = 'submitted' GROUP BY 1, 2),
    g AS (SELECT *, lead(claimed) OVER (PARTITION BY actor ORDER BY batch) AS next_claim FROM b)
    SELECT count(*) || ' batches; median ms claim to last record '
           || round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM last_record - claimed))::numeric)
           || ', last record to next claim '
           || round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM next_claim - last_record))::numeric)
    FROM g")
  echo "  crier ($name): $RATE faxes submitted/s ($span s from the first claim to the last" \
    "'submitted'; whole run with polling ${elapsed} s, peak RSS $((kb / 1024)) MB); CPU $CPU ms" \
    "per fax (user+sys of the whole run, polling included); gateway CPU $GW_CPU ms per fax" \
    "(uploads and polls); PostgreSQL CPU $PG_CPU ms per fax; lanes: $LANES_SAY"
}

# the ceiling: curl --parallel, the same PDF, the same number of requests and concurrency
concurrency=$((LANES * IN_FLIGHT))
awk -v n="$N" -v port="$PORT" -v pdf="$pdf" 'BEGIN {
  for (i = 1; i <= n; i++) {
    printf "url = \"http://127.0.0.1:%s/v3/projects/proj-test/faxes\"\n", port
    printf "user = \"key-test:bench-secret\"\n"
    printf "header = \"Expect:\"\n"
    printf "form = \"to=+1917%06d1\"\n", i
    printf "form = \"from=+12125550100\"\n"
    printf "form = \"headerText=Example Corp notice\"\n"
    printf "form = \"labels={\\\"crier_notice\\\":\\\"c%d\\\",\\\"crier_attempt\\\":\\\"1\\\"}\"\n", i
    printf "form = \"file=@%s;type=application/pdf\"\n", pdf
    printf "output = \"/dev/null\"\n"
    printf "write-out = \"%%{http_code}\\\\n\"\n"
    if (i < n) print "next"
  }
}' >curl.conf
# curl_run - sets CURL_RATE, CURL_GW_CPU
curl_run() {
  local t0 t1 gw0 gw1 ok
  gw0=$(tree_ticks "$GATEWAY_PID")
  t0=$(date +%s.%N)
  # its parallel progress meter goes to curl.err (--silent does not stop it); shown on failure
  curl --silent --parallel --parallel-immediate --parallel-max "$concurrency" -K curl.conf \
    >curl.codes 2>curl.err || { echo "curl failed: $(tail -c 300 curl.err)"; exit 1; }
  t1=$(date +%s.%N)
  gw1=$(tree_ticks "$GATEWAY_PID")
  ok=$(grep -c '^200$' curl.codes || true)
  [ "$ok" -eq "$N" ] || { echo "curl: only $ok of $N posts got 200"; sort curl.codes | uniq -c; exit 1; }
  CURL_RATE=$(echo "scale=1; $N / ($t1 - $t0)" | bc)
  CURL_GW_CPU=$(echo "scale=3; 1000 * ($gw1 - $gw0) / $hz / $N" | bc)
  echo "  curl --parallel: $CURL_RATE posts/s ($(echo "scale=2; $t1 - $t0" | bc) s); gateway CPU" \
    "$CURL_GW_CPU ms per post"
}

echo "n=$N latency=${LATENCY}ms concurrency=$concurrency (lanes $LANES x max_in_flight $IN_FLIGHT, batch $BATCH, poll_interval $POLL)"
builds=(crier)
[ -n "$BASE_CRIER" ] && builds+=(base)
declare -A rates cpus gws pgs ratios this
curl_rates=() curl_gws=()
for run in $(seq "$RUNS"); do
  echo "run $run:"
  for b in "${builds[@]}"; do
    bin=$CRIER
    [ "$b" = base ] && bin=$BASE_CRIER
    crier_run "bench-$b-$run" "$bin"
    rates[$b]+="$RATE " cpus[$b]+="$CPU " gws[$b]+="$GW_CPU " pgs[$b]+="$PG_CPU " this[$b]=$RATE
  done
  curl_run
  curl_rates+=("$CURL_RATE") curl_gws+=("$CURL_GW_CPU")
  for b in "${builds[@]}"; do
    ratios[$b]+="$(echo "scale=3; ${this[$b]} / $CURL_RATE" | bc) "
  done
done
echo "medians of $RUNS run(s), load average $(cut -d' ' -f1-3 /proc/loadavg):"
echo "curl --parallel: $(median "${curl_rates[@]}") posts/s; gateway CPU $(median "${curl_gws[@]}") ms per post"
for b in "${builds[@]}"; do
  # shellcheck disable=SC2086 # the lists are space-separated numbers
  echo "$b: $(median ${rates[$b]}) faxes submitted/s, CPU $(median ${cpus[$b]}) ms per fax," \
    "gateway CPU $(median ${gws[$b]}) ms per fax, PostgreSQL CPU $(median ${pgs[$b]}) ms per fax;" \
    "ratio $(median ${ratios[$b]}) (target >= 0.8)"
done
INNER
