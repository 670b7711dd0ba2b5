#!/bin/bash
# smtp.sh - the email channel under transport faults: a matrix of scripted SMTP servers
# (tests/peers/smtp_faults.py, one listener per case) that refuse at each step, hang up in
# the middle of DATA, stall, trickle, or break STARTTLS, and for each case the outcome
# crier must reach:
#   retried   temporary: the notice goes back to 'ready' on email (no fallback), after
#             at least backoff_min, with a dispatch-log row naming the failure; the
#             listener then behaves and the notice is sent, once (or twice when the
#             server kept a message whose reply never came: RFC 1047's duplicate)
#   fallback  permanent: the next channel of the policy (null) at once, reason logged
#   gaveup    temporary every time (a TLS problem is our relay's, never the person's):
#             retried on email until give_up_after, then the next channel; nothing was
#             ever sent in the clear
# and in every case no attempt lasts longer than smtp.timeout plus a margin.
#
# Cases already covered by tests/integration/email.sh (aiosmtpd): 451 at RCPT, 550 at
# RCPT, 554 after DATA, a session dropped after its 3rd message, a closed port and a
# silent server. docs/faults.md has the whole matrix.
#
# Each case has its own database and `crier run --until-idle` (the SMTP port is in the
# configuration), so the cases run side by side, a few at a time.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"

PEER="$TESTS_DIR/peers/smtp_faults.py"
TIMEOUT=2      # smtp.timeout, seconds
MARGIN=1.5     # an attempt may take this much longer than the timeout (claim, render, record)
GIVE_UP=4      # queue.give_up_after for the cases that never recover: 2 attempts at least
PARALLEL=${FAULT_PARALLEL:-6}
ONLY=${FAULT_CASES:-}  # names of cases to run (space-separated), all when empty
if ! command -v openssl >/dev/null; then
  echo "1..0 # SKIP openssl is missing (Debian: openssl)"
  exit 0
fi

# --- the matrix ------------------------------------------------------------------------
# NAME | FAULT[:TIMES] (smtp_faults.py) | expected | detail of a's first attempt (ERE) | stall
# Two recipients per case, a (first in the batch) and b. A command fault with TIMES 1
# hits a only; b goes through the same session. A session fault hits both.
# stall = yes: the first attempt must last at least the timeout (the timeout ended it).
MATRIX=(
  "greet421|greeting-421:1|retried|^not attempted: .*421|no"
  "mail451|mail-451:1|retried|^MAIL FROM: 451 4\.3\.0|no"
  "rcpt452|rcpt-452:1|retried|^RCPT TO: 452 4\.2\.2|no"
  "rcpt550latin1|rcpt-550-8bit:1|fallback|^email: RCPT TO: 550 5\.1\.1 bo\?te inconnue, adresse refus\?e$|no"
  "datacmd554|data-cmd-554:1|fallback|^email: DATA: 554 5\.3\.4|no"
  "data451|data-451:1|retried|^DATA: 451 4\.3\.0|no"
  "data552|data-552:1|fallback|^email: DATA: 552 5\.2\.2|no"
  "dropdata|drop-data:1|retried|^DATA not completed: .*closed the connection|no"
  "stallgreet|stall-greeting:1|retried|^not attempted: .*timed out|yes"
  "stalldata|stall-data:1|retried|^DATA not completed: .*timed out|yes"
  "stalldot|stall-dot:1|retried|^DATA not completed: .*timed out|yes"
  "trickle|trickle:1|retried|^not attempted: .*timed out|yes"
  "tlsgarbage|tls-garbage|gaveup|TLS|no"
  "tlsabort|tls-abort|gaveup|TLS|no"
  "tlsstall|tls-stall|gaveup|timed out.*ready to start TLS|yes"
  "tlsnotoffered|ok|gaveup|STARTTLS is required and the server does not offer it|no"
  "selfsigned|tls-ok|gaveup|certificate|no"
  "wronghost|tls-ok|gaveup|certificate|no"
  "tlsok|tls-ok|sent|-|no"
)
if [ -n "$ONLY" ]; then
  selected=()
  for row in "${MATRIX[@]}"; do
    [[ " $ONLY " == *" ${row%%|*} "* ]] && selected+=("$row")
  done
  MATRIX=("${selected[@]}")
fi

# --- certificates: a throwaway CA, a server certificate for localhost signed by it, one
# for another host name signed by it, and a self-signed one for localhost ---------------
certs() {
  local d=$WORK/tls
  mkdir -p "$d" && cd "$d" || return 1
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj "/CN=crier fault CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null &&
    for host in localhost other.example; do
      openssl req -newkey rsa:2048 -nodes -keyout "$host.key" -out "$host.csr" -subj "/CN=$host" 2>/dev/null &&
        printf 'subjectAltName=DNS:%s\n' "$host" >"$host.ext" &&
        openssl x509 -req -in "$host.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
          -extfile "$host.ext" -out "$host.pem" 2>/dev/null || return 1
    done &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.pem -days 1 -subj "/CN=localhost" \
      -addext subjectAltName=DNS:localhost 2>/dev/null
  local rc=$?
  cd "$WORK" || return 1
  return $rc
}
certs || { echo "Bail out! cannot make the test certificates with openssl"; exit 1; }

# --- the peer: one listener per case -----------------------------------------------------
listeners=()
for row in "${MATRIX[@]}"; do
  IFS='|' read -r name fault _ <<<"$row"
  listeners+=("$name=$fault")
done
"$PY" "$PEER" "$WORK/peer.log" "${listeners[@]}" --cert "$WORK/tls/localhost.pem" --key "$WORK/tls/localhost.key" \
  --cert-for "selfsigned=$WORK/tls/self.pem,$WORK/tls/self.key" \
  --cert-for "wronghost=$WORK/tls/other.example.pem,$WORK/tls/other.example.key" \
  >"$WORK/peer.out" 2>"$WORK/peer.err" &
PEERS+=($!)
for _ in $(seq 600); do # up to 30 s: Python starts slowly on a loaded machine
  grep -qx READY "$WORK/peer.out" 2>/dev/null && break
  kill -0 "${PEERS[-1]}" 2>/dev/null || break
  sleep 0.05
done
grep -qx READY "$WORK/peer.out" || { echo "Bail out! smtp_faults.py did not start: $(cat "$WORK/peer.err")"; exit 1; }
port_of() { awk -v n="$1" '$1 == "READY" && $2 == n { print $3 }' "$WORK/peer.out"; }

# --- one case: its own database, configuration, campaign and run --------------------------
BASE_DB=$PGDATABASE
case_db() { echo "${BASE_DB}_$1"; }
CASE_DBS=()
drop_case_dbs() {
  local db
  for db in "${CASE_DBS[@]}"; do dropdb --if-exists "$db" 2>/dev/null; done
}
trap 'rc=$?; drop_case_dbs; (exit $rc); cleanup' EXIT

# run_case NAME EXPECTED - in the background: writes $WORK/NAME.took and NAME.rc
run_case() {
  local name=$1 expected=$2 dir=$WORK/$1
  mkdir -p "$dir"
  export PGDATABASE
  PGDATABASE=$(case_db "$name")
  local starttls=required host=localhost give_up=30
  [ "$expected" = gaveup ] && give_up=$GIVE_UP
  case $name in tls* | selfsigned | wronghost) ;; *) starttls=off ;; esac
  cat >"$dir/crier.yaml" <<YAML
queue: {lease: 30s, backoff_min: 1s, backoff_max: 1s, backoff_jitter: 0, idle_poll: 50, route_grace: 0, give_up_after: ${give_up}s}
log: {format: json}
channels:
  email:
    lanes: 1
    batch_size: 10
    smtp: {host: $host, port: $(port_of "$name"), timeout: ${TIMEOUT}s, starttls: $starttls, ca_file: "$WORK/tls/ca.pem"}
    from: "Example Corp <privacy@example.com>"
    bounce_domain: bounces.example.com
  null: {}
YAML
  printf 'ref,name,email\na,Person A,%s-a@faults.example\nb,Person B,%s-b@faults.example\n' "$name" "$name" >"$dir/list.csv"
  {
    "$CRIER" -c "$dir/crier.yaml" db migrate &&
      "$CRIER" -c "$dir/crier.yaml" campaign create "$name" --incident "INC-$name" --policy email,null --meta "$META" &&
      "$CRIER" -c "$dir/crier.yaml" campaign load "$name" --csv "$dir/list.csv" &&
      "$CRIER" -c "$dir/crier.yaml" campaign start "$name"
  } >"$dir/setup.log" 2>&1 || { echo setup >"$dir.rc"; return; }
  local started=$EPOCHREALTIME
  timeout 60 "$CRIER" -c "$dir/crier.yaml" run --until-idle >"$dir/run.out" 2>"$dir/run.log"
  echo $? >"$dir.rc"
  awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }' >"$dir.took"
}

script_started=$EPOCHREALTIME
CASE_PIDS=()
for row in "${MATRIX[@]}"; do
  IFS='|' read -r name _ expected _ <<<"$row"
  createdb "$(case_db "$name")" || { echo "Bail out! cannot create database $(case_db "$name")"; exit 1; }
  CASE_DBS+=("$(case_db "$name")")
  run_case "$name" "$expected" &
  CASE_PIDS+=($!)
  # at most PARALLEL at once (the peer is a background job too: count the cases only)
  while [ "$(jobs -pr | grep -cxF -f <(printf '%s\n' "${CASE_PIDS[@]}"))" -ge "$PARALLEL" ]; do
    sleep 0.1
  done
done
wait "${CASE_PIDS[@]}"
echo "# the $((${#MATRIX[@]})) cases ran in $(awk -v a="$script_started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s, $PARALLEL at a time"

# --- the assertions, case by case ----------------------------------------------------------
# facts - everything the assertions read from a case's database, in one query (psql is
# slow to start on a loaded machine): fills the associative array F
declare -A F
facts() {
  local key value
  F=()
  while IFS=$'\t' read -r key value; do F[$key]=$value; done < <(psql -XAtq -v ON_ERROR_STOP=1 -F $'\t' -c "
    WITH l AS (SELECT * FROM crier.dispatch_log WHERE notice_id IS NOT NULL),
    attempts AS (SELECT c.recipient_ref AS ref, c.attempt, extract(epoch FROM o.at - c.at) AS seconds
                 FROM l c JOIN l o ON o.notice_id = c.notice_id AND o.attempt = c.attempt
                   AND o.from_state = 'sending' AND o.channel = 'email'
                 WHERE c.from_state = 'ready' AND c.to_state = 'sending' AND c.channel = 'email')
    SELECT 'history_' || recipient_ref, string_agg(channel || ':' || coalesce(from_state, '-') || '>' || to_state
             || coalesce('>' || to_channel, ''), ' ' ORDER BY id)
      FROM l WHERE event = 'transition' GROUP BY recipient_ref
    UNION ALL SELECT 'detail_a', (SELECT detail FROM l WHERE recipient_ref = 'a' AND channel = 'email'
                                  AND from_state = 'sending' ORDER BY id LIMIT 1)
    UNION ALL SELECT 'reason_a', (SELECT reason FROM l WHERE recipient_ref = 'a' AND channel = 'email'
                                  AND from_state = 'sending' ORDER BY id LIMIT 1)
    UNION ALL SELECT 'fallback_reason_a', (SELECT reason FROM l WHERE recipient_ref = 'a' AND to_channel = 'null')
    UNION ALL SELECT 'slowest', coalesce(round(max(seconds)::numeric, 2), -1)::text FROM attempts
    UNION ALL SELECT 'first_a', round(seconds::numeric, 2)::text FROM attempts WHERE ref = 'a' AND attempt = 1
    UNION ALL SELECT 'gap_a', round(extract(epoch FROM
                 (SELECT at FROM l WHERE recipient_ref = 'a' AND from_state = 'ready' AND attempt = 2)
               - (SELECT at FROM l WHERE recipient_ref = 'a' AND from_state = 'sending' AND attempt = 1))::numeric, 2)::text
    UNION ALL SELECT 'states', string_agg(state || '@' || channel, ' ' ORDER BY id) FROM crier.notice
    UNION ALL SELECT 'gave_up_a', (count(*) >= 2 AND count(*) FILTER (WHERE to_state = 'ready' AND to_channel IS NULL) = count(*) - 1
                                   AND count(*) FILTER (WHERE to_channel IS NOT NULL) = 1)::text
      FROM l WHERE recipient_ref = 'a' AND channel = 'email' AND from_state = 'sending'")
}
# received NAME REF REPLY - messages the peer's listener NAME received for REF with REPLY
# ("*": any reply), from "listener recipient reply" lines made once from the peer's log
"$PY" -c 'import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    for r in m["rcpt"]:
        print(m["listener"], r, m["reply"])' "$WORK/peer.log" >"$WORK/received.txt"
received() {
  awk -v l="$1" -v r="$1-$2@faults.example" -v reply="$3" \
    '$1 == l && $2 == r && (reply == "*" || $3 == reply) { n++ } END { print n + 0 }' "$WORK/received.txt"
}
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }

FIGURES=()
for row in "${MATRIX[@]}"; do
  IFS='|' read -r name fault expected pattern stall <<<"$row"
  export PGDATABASE
  PGDATABASE=$(case_db "$name")
  rc=$(cat "$WORK/$name.rc" 2>/dev/null)
  took=$(cat "$WORK/$name.took" 2>/dev/null)
  is "$rc" 0 "$name ($fault): crier run --until-idle exits 0 in ${took:-?} s"
  [ "$rc" = 0 ] || { sed 's/^/#   /' "$WORK/$name/setup.log" "$WORK/$name/run.log" | tail -5; continue; }
  facts
  slowest=${F[slowest]:-}
  bound=$(awk -v t="$TIMEOUT" -v m="$MARGIN" 'BEGIN { print t + m }')
  ok "$name: no attempt lasted longer than smtp.timeout + ${MARGIN} s (slowest ${slowest} s, bound ${bound} s)" \
    within "$slowest" 0 "$bound"
  if [ "$stall" = yes ]; then
    first=${F[first_a]:-}
    ok "$name: the first attempt ended by the timeout (${first} s >= ${TIMEOUT} s)" within "$first" "$((TIMEOUT - 0))" "$bound"
  fi
  FIGURES+=("$name: slowest attempt ${slowest} s, run ${took} s")
  case $expected in
  retried)
    like "${F[history_a]:-}" "^email:ready>sending email:sending>ready (email:ready>sending email:sending>ready )*email:ready>sending email:sending>sent$" \
      "$name: a is temporary, back to ready on email (no fallback), retried, then sent"
    like "${F[detail_a]:-}" "$pattern" "$name: the temporary row says why: ${F[detail_a]:0:90}"
    gap=${F[gap_a]:-}
    # next_attempt_at is now() of the recording transaction + 1 s; the row's "at" is a little
    # later (clock_timestamp()): 0.1 s of slack
    ok "$name: the retry waited for the backoff (backoff_min 1 s; waited ${gap} s)" within "$gap" 0.9 10
    is "${F[states]:-}" "sent@email sent@email" \
      "$name: both notices end 'sent' on email"
    if [ "$name" = stalldot ]; then
      # the server kept a whose reply never came: sent again, so received twice (RFC 1047)
      is "$(received "$name" a none)+$(received "$name" a 250)" "1+1" \
        "$name: a reached the server twice: the one in flight (never answered) and the retry"
    else
      is "$(received "$name" a 250)/$(received "$name" a '*')" "1/$([ "$fault" = data-451:1 ] && echo 2 || echo 1)" \
        "$name: the server accepted a exactly once"
    fi
    is "$(received "$name" b 250)" 1 "$name: the server accepted b exactly once"
    ;;
  fallback)
    is "${F[history_a]:-}" "email:ready>sending email:sending>ready>null null:ready>sending null:sending>delivered" \
      "$name: a is permanent, falls back to the next channel (null) at once"
    like "${F[reason_a]:-}" "$pattern" "$name: the fallback row's reason is the reply: ${F[reason_a]:0:90}"
    is "${F[history_b]:-}" "email:ready>sending email:sending>sent" "$name: b, in the same session, is sent"
    is "$(received "$name" a 250)" 0 "$name: the server accepted nothing for a"
    is "$(received "$name" b 250)" 1 "$name: the server accepted b exactly once"
    ;;
  gaveup)
    like "${F[detail_a]:-}" "$pattern" "$name: the temporary row says why: ${F[detail_a]:0:90}"
    is "${F[gave_up_a]:-}" true \
      "$name: a was retried on email (temporary, never permanent), at least twice, until give_up_after"
    like "${F[fallback_reason_a]:-}" \
      "^email: gave up after $GIVE_UP s of temporary failures" "$name: then fell back, the reason says it gave up"
    is "${F[states]:-}" "delivered@null delivered@null" \
      "$name: both notices end on the next channel"
    is "$(received "$name" a '*')$(received "$name" b '*')" 00 "$name: no message reached the server (nothing in the clear)"
    ;;
  sent)
    # sent at the first attempt every time but twice in about ten runs of the matrix under
    # heavy load, when the first session ended after the timeout ("closed the connection")
    # and the retry went through: a retry is allowed, and reported (docs/faults.md)
    like "${F[history_a]:-}" "^email:ready>sending (email:sending>ready email:ready>sending )?email:sending>sent$" \
      "$name: a is sent (at the first attempt, or once retried)"
    [ "${F[history_a]:-}" = "email:ready>sending email:sending>sent" ] ||
      echo "# $name: NOTE: the first attempt failed: ${F[detail_a]:-} (first attempt ${F[first_a]:-?} s)"
    is "$("$PY" -c 'import json, sys
print(sorted((m["rcpt"][0], m["tls"], m["reply"]) for line in open(sys.argv[1]) for m in [json.loads(line)] if m["listener"] == sys.argv[2]))' \
      "$WORK/peer.log" "$name")" "[('$name-a@faults.example', True, '250'), ('$name-b@faults.example', True, '250')]" \
      "$name: the control case: both messages went over TLS with the trusted certificate"
    ;;
  esac
  ok "$name: no crier crashed (no sanitizer report or signal in the run log)" \
    sh -c "! grep -qiE 'segmentation|abort|sanitizer|runtime error' '$WORK/$name/run.log'"
  if [ "$TAP_FAILED" -gt "${failed_before:-0}" ]; then
    echo "# $name: the dispatch log, for the failures above:"
    sql "SELECT to_char(at, 'SS.MS') || ' ' || coalesce(recipient_ref, '-') || ' ' || coalesce(from_state, '-') || '>' ||
                coalesce(to_state, '-') || coalesce('>' || to_channel, '') || ' ' || coalesce(detail, '')
         FROM crier.dispatch_log WHERE notice_id IS NOT NULL ORDER BY id" | sed 's/^/#   /'
  fi
  failed_before=$TAP_FAILED
done
PGDATABASE=$BASE_DB
if [ "$TAP_FAILED" -gt 0 ] && [ -s "$WORK/peer.err" ]; then
  echo "# what the peer saw go wrong (smtp_faults.py's stderr):"
  sed 's/^/#   /' "$WORK/peer.err"
fi
for f in "${FIGURES[@]}"; do echo "# $f"; done
echo "# the whole script took $(awk -v a="$script_started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"

done_testing
