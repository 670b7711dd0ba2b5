#!/bin/bash
# gateway.sh - the fax channel under transport faults, against tests/peers/fax_gateway.py:
# a matrix of scripted gateway failures on submit (by the number's last four digits), and
# for each the outcome crier must reach:
#   retried     500, 503, 429: nothing was taken; the notice goes back to 'ready' on fax
#               and is sent again (after Retry-After when the gateway gives one)
#   reconciled  the outcome is unknown (a timeout after the whole request was sent, a
#               reply dropped, a proxy's 504): the notice is 'submitted' without a fax
#               id, the poller asks the gateway, and the fax found is never sent again
#   resent      unknown too, but the gateway has no such fax: confirmed absent, sent again
#   fallback    400: the next channel of the policy at once
# and for all: no duplicate fax at the gateway, no notice lost, no attempt longer than
# fax.timeout plus a margin. Then a gateway that accepts a connection and never reads it,
# and one whose status replies stall, in a second run.
#
# tests/integration/fax.sh covers 500, 503 and 429 in a campaign, 100 dropped replies,
# the confirmed absence after a silent hang-up, kill -9 in mid-poll; this matrix adds the
# timeouts, the 504, the next_attempt_at that Retry-After sets, and the time bounds.
# docs/faults.md has the whole matrix.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"

PEER="$TESTS_DIR/peers/fax_gateway.py"
SECRET="s3cret-$RANDOM-$$"
export FAX_SECRET=$SECRET
TIMEOUT=2      # fax.timeout, seconds
MARGIN=2.5     # an attempt may take this much longer: the batch's 9 letters are laid out one
               # after the other while the first uploads run (~0.1 s each under ASan), then recorded
STALL=4        # how long the gateway stalls: longer than the timeout
RETRY_AFTER=3  # the 429's Retry-After: longer than backoff_max (1 s)

# start_gateway NAME [ARGS...] - a gateway logging to $WORK/NAME.log; sets PORT
start_gateway() {
  local name=$1; shift
  start_peer "$name" "$PY" "$PEER" --secret "$SECRET" --log "$WORK/$name.log" --queued-s 0.2 \
    --progress-s 0.2 --stall-s "$STALL" "$@"
}
fax_config() { # PORT
  write_config "channels:
  fax:
    lanes: 1
    batch_size: 10
    provider: sinch
    base_url: http://127.0.0.1:$1
    project_id: proj-test
    key_id: key-test
    key_secret_env: FAX_SECRET
    from: \"+12125550100\"
    poll_interval: 1s
    timeout: ${TIMEOUT}s
  null: {}"
}
# history NAME REF - "channel:from>to[>to_channel]" words of a notice's transitions
history() {
  sql "SELECT string_agg(channel || ':' || coalesce(from_state, '-') || '>' || to_state
                         || coalesce('>' || to_channel, ''), ' ' ORDER BY id)
       FROM crier.dispatch_log WHERE $(in_campaign "$1") AND recipient_ref = '$2' AND event = 'transition'"
}
detail_of() { # NAME REF FROM TO - the detail of that transition (the first one)
  sql "SELECT detail FROM crier.dispatch_log WHERE $(in_campaign "$1") AND recipient_ref = '$2'
       AND from_state = '$3' AND to_state = '$4' ORDER BY id LIMIT 1"
}
# faxes LOG NUMBER - how many faxes the gateway recorded for the number
faxes() { grep -c "\"to\": \"$2\"" "$1"; }
# slowest NAME - the longest claim-to-outcome time of the campaign's fax sends, seconds
slowest() {
  sql "SELECT coalesce(round(max(extract(epoch FROM o.at - c.at))::numeric, 2), -1)
       FROM crier.dispatch_log c JOIN crier.dispatch_log o ON o.notice_id = c.notice_id
         AND o.attempt = c.attempt AND o.from_state = 'sending' AND o.channel = 'fax'
       WHERE c.$(in_campaign "$1") AND c.from_state = 'ready' AND c.to_state = 'sending' AND c.channel = 'fax'"
}
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
BOUND=$(awk -v t="$TIMEOUT" -v m="$MARGIN" 'BEGIN { print t + m }')
script_started=$EPOCHREALTIME

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

# --- the matrix: one campaign, one gateway, one fault per number --------------------------
# REF | NUMBER | expected | pattern of the first outcome's detail
MATRIX=(
  "ok1|+12025551001|delivered|^fax 01FAX"
  "e500|+12025550500|retried|^HTTP 500"
  "e503|+12025550503|retried|^HTTP 503"
  "r429|+12025550429|retried|^HTTP 429"
  "t998|+12025550998|resent|^unknown outcome: .*timed out"
  "t996|+12025550996|reconciled|^unknown outcome: .*timed out"
  "p504|+12025550504|reconciled|^unknown outcome: HTTP 504"
  "d999|+12025550999|reconciled|^unknown outcome: "
  "r400|+12025550400|fallback|^fax: HTTP 400"
)
start_gateway main --retry-after "$RETRY_AFTER"
fax_config "$PORT"
{
  echo "ref,name,fax"
  for row in "${MATRIX[@]}"; do
    IFS='|' read -r ref number _ <<<"$row"
    echo "$ref,Person $ref,$number"
  done
} >main.csv
setup main fax,null main.csv

started=$EPOCHREALTIME
timeout 90 "$CRIER" run --until-idle >"$WORK/out" 2>>"$WORK/run.log" &
crier_pid=$!
# while it runs: the 429's next_attempt_at, read as soon as the 429 is recorded
wait_after=""
for _ in $(seq 200); do
  wait_after=$(sql "SELECT round(extract(epoch FROM n.next_attempt_at - l.at)::numeric, 2)
                    FROM crier.notice n JOIN crier.dispatch_log l ON l.notice_id = n.id
                    WHERE n.$(in_campaign main) AND l.recipient_ref = 'r429' AND l.from_state = 'sending'
                      AND l.to_state = 'ready' AND n.state = 'ready'")
  [ -n "$wait_after" ] && break
  sleep 0.05
done
wait "$crier_pid"
rc=$?
took=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
is "$rc" 0 "crier run --until-idle exits 0 (the matrix, ${took} s)"
ok "429: next_attempt_at is Retry-After ($RETRY_AFTER s) after the 429 was recorded, not backoff_max (1 s): ${wait_after:-never seen} s" \
  within "${wait_after:-0}" "$(awk -v r="$RETRY_AFTER" 'BEGIN { print r - 0.05 }')" "$((RETRY_AFTER + 1))"
slow=$(slowest main)
ok "no send attempt lasted longer than fax.timeout + $MARGIN s (slowest $slow s, bound $BOUND s)" within "$slow" 0 "$BOUND"

for row in "${MATRIX[@]}"; do
  IFS='|' read -r ref number expected pattern <<<"$row"
  h=$(history main "$ref")
  case $expected in
  delivered)
    is "$h" "fax:ready>sending fax:sending>submitted fax:submitted>delivered" "$ref: submitted, then delivered"
    like "$(detail_of main "$ref" sending submitted)" "$pattern" "$ref: the submitted row has the fax id"
    ;;
  retried)
    is "$h" "fax:ready>sending fax:sending>ready fax:ready>sending fax:sending>submitted fax:submitted>delivered" \
      "$ref: temporary, back to ready on fax (no fallback), sent again, delivered"
    like "$(detail_of main "$ref" sending ready)" "$pattern" "$ref: the temporary row says why: $(detail_of main "$ref" sending ready | cut -c1-70)"
    gap=$(sql "SELECT round(extract(epoch FROM
                 (SELECT at FROM crier.dispatch_log WHERE $(in_campaign main) AND recipient_ref = '$ref' AND from_state = 'ready' AND attempt = 2)
               - (SELECT at FROM crier.dispatch_log WHERE $(in_campaign main) AND recipient_ref = '$ref' AND from_state = 'sending' AND attempt = 1))::numeric, 2)")
    least=1
    [ "$ref" = r429 ] && least=$RETRY_AFTER
    ok "$ref: sent again no sooner than $least s later (${gap} s)" within "${gap:-0}" "$(awk -v l="$least" 'BEGIN { print l - 0.1 }')" 10  # 0.1 s: now() vs the row's clock_timestamp()
    ;;
  reconciled)
    is "$h" "fax:ready>sending fax:sending>submitted fax:submitted>submitted fax:submitted>delivered" \
      "$ref: unknown outcome -> submitted -> found at the gateway -> delivered, never sent again"
    like "$(detail_of main "$ref" sending submitted)" "$pattern" "$ref: the submitted row says why: $(detail_of main "$ref" sending submitted | cut -c1-70)"
    like "$(detail_of main "$ref" submitted submitted)" "^reconciled: fax 01FAX" "$ref: the reconciliation row names the fax found"
    ;;
  resent)
    is "$h" "fax:ready>sending fax:sending>submitted fax:submitted>ready fax:ready>sending fax:sending>submitted fax:submitted>delivered" \
      "$ref: unknown outcome -> confirmed absent at the gateway -> sent again -> delivered"
    like "$(detail_of main "$ref" sending submitted)" "$pattern" "$ref: the submitted row says why: $(detail_of main "$ref" sending submitted | cut -c1-70)"
    like "$(detail_of main "$ref" submitted ready)" "^confirmed absent at the gateway" "$ref: the resend row says it was confirmed absent"
    ;;
  fallback)
    is "$h" "fax:ready>sending fax:sending>ready>null null:ready>sending null:sending>delivered" "$ref: permanent, falls back at once"
    like "$(sql "SELECT reason FROM crier.dispatch_log WHERE $(in_campaign main) AND recipient_ref = '$ref' AND to_channel = 'null'")" \
      "$pattern" "$ref: the fallback row's reason is the gateway's reply"
    ;;
  esac
  want=1
  [ "$expected" = fallback ] && want=0
  is "$(faxes "$WORK/main.log" "$number")" "$want" "$ref: $want fax at the gateway for $number (no duplicate, nothing lost)"
done
is "$(sql "SELECT string_agg(DISTINCT state, ',') FROM crier.notice WHERE $(in_campaign main)")" "delivered" \
  "every notice of the matrix is delivered (none lost)"

# --- a gateway that accepts the connection and never reads; a status reply that stalls ------
# The first connection is never read: the POST times out (with the request sent whole, or
# not, depending on how much the kernel buffered: either way nothing was recorded). The
# first GET of a fax's status stalls past the timeout: the poll gives up on it and asks again.
start_gateway stall --stall-connections 1 --stall-status 1
fax_config "$PORT"
printf 'ref,name,fax\ns1,Stalled Person,+13125551001\n' >stall.csv
setup stall fax,null stall.csv
started=$EPOCHREALTIME
timeout 90 "$CRIER" run --until-idle >"$WORK/out" 2>>"$WORK/run.log"
rc=$?
took=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
is "$rc" 0 "stalled gateway: crier run --until-idle exits 0 (${took} s)"
first=$(sql "SELECT detail FROM crier.dispatch_log WHERE $(in_campaign stall) AND from_state = 'sending' ORDER BY id LIMIT 1")
like "$first" "timed out" "stalled gateway: the first attempt ended by the timeout, and says so: $(echo "$first" | cut -c1-60)"
like "$(history stall s1)" "^fax:ready>sending fax:sending>(ready|submitted fax:submitted>ready) fax:ready>sending fax:sending>submitted fax:submitted>delivered$" \
  "stalled gateway: temporary or unknown-then-absent, sent again, delivered (through a stalled status reply)"
slow=$(slowest stall)
ok "stalled gateway: no send attempt lasted longer than fax.timeout + $MARGIN s (slowest $slow s)" within "$slow" 0 "$BOUND"
is "$(faxes "$WORK/stall.log" +13125551001)" 1 "stalled gateway: exactly one fax at the gateway"
is "$(grep -c '^STALLED' "$WORK/stall.out")" 2 "stalled gateway: both stalls happened (a connection never read, a status reply held back)"
ok "stalled gateway: the run ended in bounded time (${took} s < 30 s)" within "$took" 0 30

ok "no crier crashed (no sanitizer report or signal in the run log)" sh -c "! grep -qiE 'segmentation|abort|sanitizer|runtime error' '$WORK/run.log'"
is "$(grep -c -- "$SECRET" "$WORK/run.log")" 0 "the API secret is nowhere in crier's log"
echo "# the whole script took $(awk -v a="$script_started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"

done_testing
