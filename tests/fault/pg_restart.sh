#!/bin/bash
# pg_restart.sh - PostgreSQL goes away under a running `crier run`: stopped (fast) and
# started again mid-campaign, then stopped with `immediate` (a crash: no shutdown
# checkpoint, every backend killed) and started again. One `crier run --until-idle` must
# ride out both outages with no help: every lane, the fax poller and the main thread back
# off (capped, one warning per outage each, not a busy loop), reconnect and finish; nothing
# is lost, no fax or letter is sent twice, and a notice in flight at an outage whose lease
# ran out is retried with its "lease ... expired" row in the log.
#
# pg_virtualenv runs the cluster as PGVERSION/regress with its files under
# PG_CLUSTER_CONF_ROOT; pg_ctlcluster stops and starts it from inside. Needs pg_virtualenv
# (tests/run.sh): elsewhere the script skips. It stops the server every test shares, so
# tests/meson.build runs it alone (is_parallel: false). FAULT_ARTIFACTS=DIR keeps the logs.
# shellcheck source-path=SCRIPTDIR
FAULT_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/lib.sh
source "$FAULT_DIR/../integration/lib.sh"
# shellcheck source=peers.sh
source "$FAULT_DIR/peers.sh"
peer_tools_or_skip
if [ -z "${PG_CLUSTER_CONF_ROOT:-}" ] || [ -z "${PGVERSION:-}" ] || ! command -v pg_ctlcluster >/dev/null; then
  echo "1..0 # SKIP needs the cluster of pg_virtualenv (PG_CLUSTER_CONF_ROOT, PGVERSION, pg_ctlcluster)"
  exit 0
fi

PEOPLE=${RESTART_PEOPLE:-3000}
OUTAGE=${RESTART_OUTAGE:-4} # seconds the server stays down; longer than the 3 s lease
"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
start_sink
start_gateway
channels_config 2 2 1
export CRIER_CONFIG="$WORK/crier.yaml"
people_csv "$PEOPLE" people.csv
setup restart email,fax,mail people.csv

cluster() { pg_ctlcluster "$PGVERSION" regress "$@" >>"$WORK/pg_ctl.log" 2>&1; }
progress() { sql "SELECT count(*) FROM crier.notice WHERE state NOT IN ('ready', 'sending')" 2>/dev/null || echo 0; }
# wait_progress COUNT - until that many notices have left ready/sending (or crier is gone)
wait_progress() {
  local deadline=$((SECONDS + 120))
  while kill -0 "$pid" 2>/dev/null && [ "$(progress)" -lt "$1" ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.1
  done
}
# outage MODE - stop the server in MODE, keep it down OUTAGE seconds, start it again
outage() {
  local at
  at=$(progress)
  cluster stop -m "$1"
  ok "stop -m $1 at $at/$PEOPLE notices done" test $? -eq 0
  sleep "$OUTAGE"
  ok "crier run is still running after $OUTAGE s without its database ($1)" kill -0 "$pid"
  cluster start
  ok "the server is back after stop -m $1" wait_for_server
}
wait_for_server() {
  for _ in $(seq 100); do
    psql -XAtqc 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

"$CRIER" run --until-idle 2>"$WORK/run.log" &
pid=$!
wait_progress $((PEOPLE / 5))
outage fast
wait_progress $((PEOPLE * 3 / 5))
outage immediate

# the same process finishes the campaign on its own
deadline=$((SECONDS + PEOPLE / 20 + 120))
while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
ok "crier run --until-idle finished by itself" test "$(kill -0 "$pid" 2>/dev/null; echo $?)" -ne 0
kill -9 "$pid" 2>/dev/null
wait "$pid"
is "$?" 0 "and exited 0"

# nothing lost: every notice in its channel's done state, every person at their peer
is "$(sql "SELECT count(*) FROM crier.notice WHERE NOT ((channel = 'email' AND state = 'sent')
           OR (channel = 'fax' AND state = 'delivered') OR (channel = 'mail' AND state = 'batched'))")" 0 \
  "every notice is sent (email), delivered (fax) or batched (mail)"
sink_counts >"$WORK/email.counts"
email_check=$(psql -XAtq -v ON_ERROR_STOP=1 \
  -c "CREATE TEMP TABLE got (address text PRIMARY KEY, copies int)" \
  -c "\\copy got FROM '$WORK/email.counts' WITH (DELIMITER ' ')" -c "ANALYZE got" \
  -c "WITH e AS (SELECT n.id, coalesce(g.copies, 0) AS copies,
             (SELECT count(*) FROM crier.dispatch_log l WHERE l.notice_id = n.id
              AND l.from_state = 'sending' AND l.detail LIKE 'lease of % expired%') AS retries
           FROM crier.notice n JOIN crier.recipient r
             ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
           LEFT JOIN got g ON g.address = r.email WHERE n.channel = 'email')
      SELECT count(*) FILTER (WHERE copies = 0) || ' ' || count(*) FILTER (WHERE copies > 1)
             || ' ' || count(*) FILTER (WHERE copies - 1 > retries) FROM e")
read -r email_lost email_dups email_unexplained <<<"$email_check"
is "$email_lost" 0 "email: every person reached (smtp-sink)"
is "$email_unexplained" 0 "email: an extra copy only with a 'lease ... expired' retry in the log"
gateway_counts >"$WORK/fax.counts"
is "$(awk '$2 == 1' "$WORK/fax.counts" | wc -l)/$(wc -l <"$WORK/fax.counts")" \
  "$(sql "SELECT count(*) FROM crier.recipient WHERE fax IS NOT NULL")/$(sql "SELECT count(*) FROM crier.recipient WHERE fax IS NOT NULL")" \
  "fax: every person's fax at the gateway exactly once"
"$CRIER" batch list restart >/dev/null 2>&1 # settles the spool (a batch recorded late)
manifest_counts >"$WORK/mail.counts"
is "$(awk '$2 == 1' "$WORK/mail.counts" | wc -l)/$(wc -l <"$WORK/mail.counts")" \
  "$(sql "SELECT count(*) FROM crier.notice WHERE channel = 'mail'")/$(sql "SELECT count(*) FROM crier.notice WHERE channel = 'mail'")" \
  "mail: every letter in exactly one final batch"
is "$(find "$WORK/spool" -name '*.pending' | wc -l)" 0 "mail: no batch left pending"
is "$(sql "SELECT count(*) FROM crier.notice n WHERE NOT EXISTS (SELECT 1 FROM crier.dispatch_log l
           WHERE l.notice_id = n.id AND l.to_state = n.state)")" 0 "every notice's final state is in the log"

# No attempt abandoned but through the reaper: with no crash, each lane records the outcome
# of every batch it claimed itself, after reconnecting if it must (as a late_outcome when its
# lease ran out meanwhile): a claim row has an outcome row from the same lane. A print batch
# too: its letters' lines are the server's (crier.lane_batch_line), kept a minute past the
# leases, so the lane finds them when it is back and records the batch. One case cannot: a
# claim whose commit was durable when the server went away but whose reply never reached
# the lane (an in-doubt commit: the lane saw an error and holds nothing). CI met 10 email or
# fax attempts so, in one of about 14 runs under ASan (10 is a fax batch here); that run's
# log was not kept, so the in-doubt claim is the likely cause, not a seen one: the line
# below names the channel and lane of any such attempt. Its lease runs out and the reaper
# retries it. So every abandoned attempt must have the reaper's "lease ... expired" row,
# and an abandoned email attempt was never sent by its lane: its person has one copy (a
# letter's is checked above: each in exactly one final batch; a fax's: once at the gateway).
abandoned="SELECT c.notice_id, c.attempt, c.channel, c.actor FROM crier.dispatch_log c
           WHERE c.from_state = 'ready' AND c.to_state = 'sending'
           AND NOT EXISTS (SELECT 1 FROM crier.dispatch_log o WHERE o.notice_id = c.notice_id
             AND o.actor = c.actor AND o.attempt = c.attempt AND o.from_state = 'sending')"
is "$(sql "SELECT count(*) FROM ($abandoned) a
           WHERE NOT EXISTS (SELECT 1 FROM crier.dispatch_log l WHERE l.notice_id = a.notice_id
             AND l.attempt = a.attempt AND l.from_state = 'sending' AND l.detail LIKE 'lease of % expired%')")" 0 \
  "an attempt its lane did not record went back through the lease reaper"
abandoned_email=$(sql "SELECT string_agg(r.email, ' ') FROM ($abandoned) a
  JOIN crier.notice n ON n.id = a.notice_id JOIN crier.recipient r
    ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq WHERE a.channel = 'email'")
twice=0
for address in $abandoned_email; do
  [ "$(awk -v a="$address" '$1 == a { print $2 }' "$WORK/email.counts")" = 1 ] || twice=$((twice + 1))
done
is "$twice" 0 "an email attempt its lane did not record was not sent by that lane (one copy)"
echo "# attempts not recorded by their lane (an in-doubt claim): $(sql "SELECT coalesce(string_agg(x, ', '), 'none')
  FROM (SELECT channel || ' ' || count(*) || ' by ' || actor AS x FROM ($abandoned) a
        GROUP BY channel, actor) g")"
is "$(sql "SELECT count(*) FROM crier.lane_batch")" 0 "no print batch's lines are left"

# backed off and reconnected: one warning per outage per connection, then "restored";
# no busy loop of failures
unavailable=$(grep -c 'database unavailable, retrying' "$WORK/run.log")
restored=$(grep -c 'database connection restored' "$WORK/run.log")
connections=$((2 + 2 + 1 + 1 + 1)) # lanes (email 2, fax 2, mail 1), the fax poller, the main thread
ok "connections reported the outages ($unavailable warnings, at most 2 per connection)" \
  test "$unavailable" -ge 2 -a "$unavailable" -le $((2 * connections))
is "$restored" "$unavailable" "each connection that lost the server reported it restored"
failures=$(grep -c '"level":"error"' "$WORK/run.log")
ok "errors logged during two outages stay few: no busy loop ($failures)" test "$failures" -le $((4 * connections))
retried=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE detail LIKE 'lease of % expired%'")
late=$(sql "SELECT count(*) FROM crier.dispatch_log WHERE event = 'late_outcome'")
[ -z "${FAULT_ARTIFACTS:-}" ] || cp "$WORK"/*.log "$FAULT_ARTIFACTS"/
echo "# $PEOPLE people, 2 outages of $OUTAGE s: $unavailable connection warnings, $restored restored, $failures errors logged;"
echo "# $retried notices retried after their lease expired, $late late outcomes, $email_dups emails received twice"

# --- SIGTERM while the database is away: crier run stops now, not when it comes back -------
"$CRIER" run >>"$WORK/term.log" 2>&1 &
pid=$!
sleep 2
cluster stop -m fast
sleep 2
kill -TERM "$pid"
deadline=$((SECONDS + 10))
while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
ok "crier run stops on SIGTERM while its database is down (within 10 s)" \
  test "$(kill -0 "$pid" 2>/dev/null; echo $?)" -ne 0
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
cluster start
ok "the server is back after the stop test" wait_for_server
done_testing
