#!/bin/bash
# email.sh [N] [RUNS] - email throughput end to end: N notices through claim -> render ->
# MIME -> SMTP -> record, by `crier run --until-idle` with the email channel, against
# Postfix's smtp-sink on loopback; and, in the same run against the same sink, the ceiling:
# Postfix's own C load generator smtp-source sending N messages of the same size in 16
# sessions. Prints messages/s for both, the ratio, and crier's peak RSS (medians of RUNS).
# Target (issue 3): crier >= 0.7 x smtp-source.
#
# crier's rate is N over the span from its first claim to its last 'sent' row in the
# dispatch log (claim, render, SMTP and record inside it), as bench/fax.sh and
# bench/letters.sh measure theirs. Its whole-run rate is printed too: `crier run
# --until-idle` also starts up, asks whether anything is left once its lanes have been
# quiet for a quarter second, and seals what it wrote before it exits: about 0.6 s whatever
# N since stop 33 (1.9 s before: stop 32 timed 2.31, 4.39 and 6.48 s for 2,000, 10,000 and
# 20,000 messages), which a daemon never pays and smtp-source has no equivalent of.
#
# The message size is measured, not guessed: a sample of the list is first sent by crier to
# tests/peers/smtp_capture.py (Debian's /usr/bin/python3 with python3-aiosmtpd), which keeps
# the exact DATA bytes; smtp-source's own header overhead is measured the same way, so that
# its -l payload makes messages of crier's average size.
#
# smtp-source runs with -d (several messages per connection), as crier sends a claimed
# batch in one session; SOURCE_FLAGS="" gives one connection per message instead.
# It also prints the CPU each side uses per message: in crier's phase crier's, PostgreSQL's
# (the cluster's postmaster and its backends, bench/lib.sh's tree_ticks) and smtp-sink's;
# in smtp-source's phase smtp-source's and smtp-sink's. On a machine whose cores the three
# share, these say what ratio the cores allow (docs/benchmarks.md, "Who uses the two cores
# during an email run").
# Environment: BUILD (build directory, default build), LANES (4), BATCH (100),
# SESSIONS (16), SAMPLE (500), PEER_PYTHON (/usr/bin/python3), UNRECORDED (channels.email.unrecorded;
# unset: the default, and no key, which a build older than the key would refuse). Each message's outcome is
# recorded as the relay answers it (recorder.c), so "record" is inside the timed run.
# FSYNC (off): the cluster's fsync. pg_virtualenv makes clusters with fsync off, which
# hides the cost of the recorder's commits (each waits for a WAL flush, 2-3 ms on this
# VM's disk); FSYNC=on measures what a real server does. RECORD_COMMIT (unset: the
# default, no key): queue.record_commit, wait or async. PROCS (1): how many `crier run`
# processes share the campaign (each with LANES lanes; so PROCS=2 LANES=8 is 16 lanes, the
# concurrency of SESSIONS=16); the rate is over the wall time until the last one ends, CPU
# (user + system, as ms per message) over all of them, RSS the largest. PERF=FILE: each
# process under `perf record -g -F 997`, its data in FILE.RUN.PROC (timings then include
# perf's cost).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
runs=${2:-3}
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
for tool in /usr/sbin/smtp-sink /usr/sbin/smtp-source /usr/bin/time bc; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (Debian: postfix, time, bc)"; exit 1; }
done
export CRIER=$build/crier LANES=${LANES:-4} BATCH=${BATCH:-100} SESSIONS=${SESSIONS:-16}
export SAMPLE=${SAMPLE:-500} PY=${PEER_PYTHON:-/usr/bin/python3} UNRECORDED=${UNRECORDED:-}
export FSYNC=${FSYNC:-off} RECORD_COMMIT=${RECORD_COMMIT:-} PROCS=${PROCS:-1} PERF=${PERF:-}
export SOURCE_FLAGS=${SOURCE_FLAGS--d}
export META=$PWD/tests/data/incident.yaml PEER=$PWD/tests/peers/smtp_capture.py
"$PY" -c 'import aiosmtpd' 2>/dev/null || { echo "$PY cannot import aiosmtpd (python3-aiosmtpd)"; exit 1; }
work=$(mktemp -d /tmp/crier-bench-email.XXXXXX)
pids=()
stop() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap stop EXIT
python3 bench/gen_list.py "$n" >"$work/list.csv"
head -n $((SAMPLE + 1)) "$work/list.csv" >"$work/sample.csv"

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sink_port=$(free_port)
user=()
[ "$(id -u)" -ne 0 ] || user=(-u nobody)
# -c: running counters (sessions, messages) on stdout, read back to check every message arrived
/usr/sbin/smtp-sink "${user[@]}" -c "127.0.0.1:$sink_port" 1000 >"$work/sink.out" 2>"$work/sink.err" &
pids+=($!)
"$PY" "$PEER" "$work/capture" 0 >"$work/capture.out" 2>"$work/capture.err" &
pids+=($!)
for _ in $(seq 100); do grep -q READY "$work/capture.out" && break; sleep 0.05; done
capture_port=$(awk '$1 == "READY" { print $2 }' "$work/capture.out")
[ -n "$capture_port" ] || { echo "smtp_capture.py did not start"; cat "$work/capture.err"; exit 1; }
export SINK_PORT=$sink_port CAPTURE_PORT=$capture_port SINK_PID=${pids[0]} BENCH_DIR=$PWD/bench

pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' -o "fsync=$FSYNC" \
  bash -s "$work" "$n" "$runs" <<'INNER'
set -euo pipefail
work=$1; n=$2; runs=$3
cd "$work"
. "$BENCH_DIR/lib.sh"
hz=$(getconf CLK_TCK)
# ms_per PROCESS_TICKS - CPU ticks as milliseconds per message
ms_per() { echo "scale=3; 1000 * $1 / $hz / $n" | bc; }
config() { # PORT
  cat <<YAML
queue: {idle_poll: 20${RECORD_COMMIT:+, record_commit: $RECORD_COMMIT}}
log: {level: warning}
channels:
  email:
    lanes: $LANES
    batch_size: $BATCH
    smtp: {host: 127.0.0.1, port: $1, starttls: off, timeout: 30}
    from: "Example Corp <privacy@example.com>"
    bounce_domain: bounces.example.com
YAML
  [ -z "$UNRECORDED" ] || echo "    unrecorded: $UNRECORDED"
}
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
sink_count() { tr '\r' '\n' <"$work/sink.out" | awk -F'mesg=' 'NF > 1 { m = $2 + 0 } END { print m + 0 }'; }
fresh_db() { # NAME
  unset PGDATABASE
  dropdb --if-exists "$1"
  createdb "$1"
  export PGDATABASE=$1
  "$CRIER" db migrate >/dev/null
}

# 1. crier's average message size, from a sample it really sends (the exact DATA bytes)
config "$CAPTURE_PORT" >sample.yaml
fresh_db email_sample
"$CRIER" campaign create sample --incident BENCH --policy email --meta "$META" >/dev/null
"$CRIER" campaign load sample --csv sample.csv >/dev/null
"$CRIER" campaign start sample >/dev/null
"$CRIER" -c sample.yaml run --until-idle 2>sample.err
read -r count bytes < <(cat capture/*.eml | wc -c | awk -v c="$(ls capture/*.eml | wc -l)" '{ print c, $1 }')
size=$((bytes / count))
rm -f capture/*
# smtp-source's own headers, measured: received size minus -l
/usr/sbin/smtp-source -m 1 -l 1000 -M localhost -f bounce+4294967297.00000000000000000000000000000000@bounces.example.com \
  -t user1@example.com "127.0.0.1:$CAPTURE_PORT"
for _ in $(seq 50); do compgen -G 'capture/*.json' >/dev/null && break; sleep 0.05; done
overhead=$(($(cat capture/*.eml | wc -c) - 1000))
payload=$((size - overhead))
echo "message size: crier averages $size bytes over $count sampled messages; smtp-source -l $payload (+ $overhead of its headers)"

config "$SINK_PORT" >crier.yaml
rates=(); whole=(); ceilings=(); rss=(); cpus=(); pg_cpus=(); sink_cpus=(); source_cpus=()
sink_peer_cpus=()
for i in $(seq "$runs"); do
  fresh_db "email_$i"
  "$CRIER" campaign create crier --incident BENCH --policy email --meta "$META" >/dev/null
  "$CRIER" campaign load crier --csv list.csv >/dev/null
  psql -XAq -c "VACUUM ANALYZE"
  "$CRIER" campaign start crier >/dev/null
  before=$(sink_count)
  postmaster=$(postmaster_pid)
  pg0=$(tree_ticks "$postmaster"); sink0=$(tree_ticks "$SINK_PID")
  t0=$(now)
  for p in $(seq "$PROCS"); do
    # shellcheck disable=SC2086
    /usr/bin/time -f '%e %M %U %S' -o "time.$p.out" ${PERF:+perf record -q -F 997 -g -o "$PERF.$i.$p"} \
      "$CRIER" run --until-idle 2>"run.$p.err" &
  done
  wait
  t1=$(now)
  pg_cpus+=("$(ms_per $(($(tree_ticks "$postmaster") - pg0)))")
  sink_cpus+=("$(ms_per $(($(tree_ticks "$SINK_PID") - sink0)))")
  elapsed=$(echo "scale=3; ($t1 - $t0) / 1" | bc)
  read -r kb cpu < <(cat time.*.out | awk '{ if ($2 > kb) kb = $2; cpu += $3 + $4 } END { print kb, cpu }')
  cat run.*.err >run.err
  sent=$(psql -XAt -c "SELECT count(*) FROM crier.notice WHERE state = 'sent'")
  sleep 0.2
  got=$(($(sink_count) - before))
  [ "$sent" -eq "$n" ] && [ "$got" -eq "$n" ] || { echo "crier: $sent of $n sent, sink counted $got"; tail run.err; exit 1; }
  span=$(psql -XAt -c "SELECT extract(epoch FROM max(at) FILTER (WHERE to_state = 'sent')
                                       - min(at) FILTER (WHERE to_state = 'sending'))
                        FROM crier.dispatch_log")
  rates+=("$(echo "scale=1; $n / $span" | bc)")
  whole+=("$(echo "scale=1; $n / $elapsed" | bc)")
  rss+=("$((kb / 1024))")
  cpus+=("$(echo "scale=3; 1000 * $cpu / $n" | bc)")

  # the ceiling: smtp-source, same sink, same number and size of messages
  before=$(sink_count)
  sink0=$(tree_ticks "$SINK_PID")
  t0=$(now)
  # shellcheck disable=SC2086
  /usr/bin/time -f '%e %M %U %S' -o source.out /usr/sbin/smtp-source $SOURCE_FLAGS -s "$SESSIONS" -m "$n" -l "$payload" \
    -M localhost -f bounce+4294967297.00000000000000000000000000000000@bounces.example.com \
    -t user1@example.com "127.0.0.1:$SINK_PORT"
  t1=$(now)
  sleep 0.2
  sink_peer_cpus+=("$(ms_per $(($(tree_ticks "$SINK_PID") - sink0)))")
  source_cpus+=("$(awk -v n="$n" '{ printf "%.3f", 1000 * ($3 + $4) / n }' source.out)")
  got=$(($(sink_count) - before))
  [ "$got" -eq "$n" ] || { echo "smtp-source: sink counted $got of $n"; exit 1; }
  ceilings+=("$(echo "scale=1; $n / ($t1 - $t0)" | bc)")
  echo "n=$n run $i: crier ${rates[-1]} msgs/s ($span s from the first claim to the last 'sent'; whole run ${whole[-1]} msgs/s in ${elapsed} s, CPU $cpu s = ${cpus[-1]} ms/msg, peak RSS ${rss[-1]} MB), smtp-source ${ceilings[-1]} msgs/s ($(echo "scale=2; $t1 - $t0" | bc) s)"
  echo "  CPU per message: crier's phase crier ${cpus[-1]}, PostgreSQL ${pg_cpus[-1]}, smtp-sink ${sink_cpus[-1]} ms; smtp-source's phase smtp-source ${source_cpus[-1]}, smtp-sink ${sink_peer_cpus[-1]} ms"
done
mr=$(median "${rates[@]}"); mc=$(median "${ceilings[@]}"); mm=$(median "${rss[@]}")
echo "n=$n median of $runs: crier $mr msgs/s, smtp-source $mc msgs/s, ratio $(awk -v a="$mr" -v b="$mc" 'BEGIN { printf "%.3f", a / b }') (target >= 0.7), crier CPU $(median "${cpus[@]}") ms/msg, peak RSS $mm MB; whole runs $(median "${whole[@]}") msgs/s"
echo "CPU per message, medians: crier's phase crier $(median "${cpus[@]}"), PostgreSQL $(median "${pg_cpus[@]}"), smtp-sink $(median "${sink_cpus[@]}") ms; smtp-source's phase smtp-source $(median "${source_cpus[@]}"), smtp-sink $(median "${sink_peer_cpus[@]}") ms"
echo "(crier: $PROCS process(es) x lanes $LANES, batch $BATCH, unrecorded ${UNRECORDED:-default}, record_commit ${RECORD_COMMIT:-default}, fsync $FSYNC, starttls off; smtp-source: -s $SESSIONS ${SOURCE_FLAGS:-(one connection per message)} -l $payload; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
INNER
