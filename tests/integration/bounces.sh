#!/bin/bash
# bounces.sh - `crier bounces ingest` against a real PostgreSQL with the real Postfix DSNs
# of tests/data/dsn/ (tests/peers/make_dsn.sh): a permanent failure moves a notice from
# email to the next channel of its policy, a delay is only logged, the same DSN twice
# changes nothing, one file / Maildir / mbox inputs, the token check, the Message-ID
# fallback, unmatched and unparseable messages, a completed campaign reopened (and the
# moved notice then delivered by `crier run`), a cancelled campaign, no channel left, two
# ingests of the same DSN at once, and the exit codes.
#
# Test setup, not crier behaviour: a campaign "email,null" cannot send email here, so its
# notices are put in state 'sent' on channel email directly with SQL, as a worker would
# have left them, and each fixture's notice id and token (4294967297, 0123...cdef) are
# rewritten with sed to those of the notice under test.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

DSN="$TESTS_DIR/data/dsn"
FIXTURE_ID=4294967297
FIXTURE_TOKEN=0123456789abcdef0123456789abcdef

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
write_config "channels:
  null:"

# --- helpers -------------------------------------------------------------------------------

# setup NAME POLICY REF... - create, load (one recipient with email per REF), start, and
# put every notice in 'sent' on email (test setup: what a worker would have left)
setup() {
  local name=$1 policy=$2 ref
  shift 2
  {
    echo "ref,name,email"
    for ref in "$@"; do echo "$ref,Person $ref,$ref@example.com"; done
  } >"$name.csv"
  "$CRIER" campaign create "$name" --incident "INC-$name" --policy "$policy" --meta "$META" >/dev/null &&
    "$CRIER" campaign load "$name" --csv "$name.csv" >/dev/null &&
    "$CRIER" campaign start "$name" >/dev/null &&
    sql "UPDATE crier.notice SET state = 'sent', attempt = 1, channel_attempt = 1,
         channel_started_at = now() WHERE campaign_id = (SELECT id FROM crier.campaign WHERE name = '$name')
         AND channel = 'email'" >/dev/null
  ok "campaign $name created, loaded, started, its notices set to sent on email" test $? -eq 0
}

# notice REF COLUMNS - columns of a recipient's notice ("|"-separated)
notice() {
  sql "SELECT $2 FROM crier.notice n JOIN crier.recipient r
       ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq WHERE r.ref = '$1'"
}

# dsn FIXTURE REF OUT - the fixture, naming REF's notice instead of the fixture's
dsn() {
  local id token
  IFS='|' read -r id token <<<"$(notice "$2" "n.id, n.token")"
  sed -e "s/$FIXTURE_ID/$id/g" -e "s/$FIXTURE_TOKEN/$token/g" "$DSN/$1" >"$3"
}

# bounce_rows REF - dispatch-log 'bounce' rows of REF's notice
bounce_rows() {
  sql "SELECT count(*) FROM crier.dispatch_log WHERE event = 'bounce' AND recipient_ref = '$1'"
}

# counts M P D U X K [I] - the summary line crier prints
counts() {
  local line="$1 messages: $(($2 + $3)) bounces applied ($2 permanent, $3 delays), $4 unmatched, $5 unparseable, $6 already ingested"
  [ -n "${7:-}" ] && line="$line, $7 ignored"
  echo "$line"
}

# --- help and exit codes -------------------------------------------------------------------
run_crier bounces ingest --help
is "$RC" 0 "bounces ingest --help exits 0"
like "$OUT" '^usage: crier \[-c FILE\] bounces ingest PATH' "bounces ingest --help prints its usage"
run_crier bounces --help
like "$OUT" "crier bounces ingest PATH" "crier bounces --help lists ingest"
run_crier bounces ingest
is "$RC" 64 "no PATH: usage error (64)"
run_crier bounces ingest "$WORK/no-such-file"
is "$RC" 66 "an unreadable PATH exits 66"
like "$ERR" "no-such-file" "and names it"
mkdir "$WORK/plain-dir"
run_crier bounces ingest "$WORK/plain-dir"
is "$RC" 66 "a directory that is not a Maildir exits 66"
PGHOST=/nonexistent run_crier bounces ingest "$DSN/permanent-local.eml"
is "$RC" 69 "an unreachable database exits 69"

setup b email,null p1 p2 p3 p4 p5 p6 p7 p8 p9 p10 p11 p12

# --- a permanent failure (local(8): 5.1.1) moves the notice to null ------------------------
dsn permanent-local.eml p1 p1.eml
dsn_id=$(sed -n 's/^Message-Id: <\(.*\)>$/\1/p' p1.eml)
run_crier bounces ingest p1.eml
is "$RC" 0 "ingest of one permanent DSN exits 0"
is "$OUT" "$(counts 1 1 0 0 0 0)" "one permanent bounce applied"
is "$(notice p1 "n.state || ' ' || n.channel || ' ' || n.channel_index || ' ' || n.channel_attempt")" \
  "ready null 1 0" "p1: ready on null (the next channel), channel attempts reset"
like "$(notice p1 "array_to_string(n.reasons, ';')")" '^email: bounced: 5\.1\.1 unknown user: "nosuchuser"$' \
  "p1: the reason names the status and the diagnostic"
is "$(sql "SELECT event || ' ' || channel || ' ' || from_state || '>' || to_state || '>' || to_channel || ' ' || attempt
           FROM crier.dispatch_log WHERE recipient_ref = 'p1' AND event = 'bounce'")" \
  "bounce email sent>ready>null 1" "p1: one log row, event bounce, sent -> ready on null"
like "$(sql "SELECT reason FROM crier.dispatch_log WHERE recipient_ref = 'p1' AND event = 'bounce'")" \
  '^email: bounced: 5\.1\.1 unknown user' "the log row has the reason"
like "$(sql "SELECT detail FROM crier.dispatch_log WHERE recipient_ref = 'p1' AND event = 'bounce'")" \
  "^DSN <$dsn_id>: failed 5\.1\.1 for nosuchuser@mta\.crier\.test: .*found by VERP address$" \
  "the log row's detail names the DSN's Message-ID and how the notice was found"

# --- idempotent ------------------------------------------------------------------------------
log_before=$(sql "SELECT count(*) FROM crier.dispatch_log")
run_crier bounces ingest p1.eml
is "$OUT" "$(counts 1 0 0 0 0 1)" "the same DSN again: already ingested"
is "$(sql "SELECT count(*) FROM crier.dispatch_log")" "$log_before" "nothing new in the dispatch log"
is "$(notice p1 "n.state || ' ' || n.channel")" "ready null" "p1 unchanged"

# --- a delay is only logged; the expiry that follows it is permanent ---------------------------
dsn delayed.eml p2 p2-delay.eml
run_crier bounces ingest p2-delay.eml
is "$OUT" "$(counts 1 0 1 0 0 0)" "a delay DSN: one delay applied"
is "$(notice p2 "n.state || ' ' || n.channel || ' ' || cardinality(n.reasons)")" "sent email 0" "p2 still sent on email"
is "$(sql "SELECT from_state || '>' || coalesce(to_state, '-') || ' ' || coalesce(to_channel, '-')
           FROM crier.dispatch_log WHERE recipient_ref = 'p2' AND event = 'bounce'")" \
  "sent>- -" "the delay is logged, with no state change"
like "$(sql "SELECT detail FROM crier.dispatch_log WHERE recipient_ref = 'p2' AND event = 'bounce'")" \
  "delayed 4\.4\.1 .*Connection refused" "the delay's detail has the status and the diagnostic"
run_crier bounces ingest p2-delay.eml
is "$OUT" "$(counts 1 0 0 0 0 1)" "the same delay again: already ingested"
dsn expired.eml p2 p2-expired.eml
run_crier bounces ingest p2-expired.eml
is "$OUT" "$(counts 1 1 0 0 0 0)" "Postfix gave up (Action failed, Status 4.4.1): permanent"
is "$(notice p2 "n.state || ' ' || n.channel")" "ready null" "p2 moved to null"

# --- the remote relay's 550, with only the original's headers returned ------------------------
dsn permanent-remote.eml p3 p3.eml
run_crier bounces ingest p3.eml
is "$OUT" "$(counts 1 1 0 0 0 0)" "a remote 550 5.1.1 (text/rfc822-headers): applied"
like "$(notice p3 "array_to_string(n.reasons, ';')")" \
  '^email: bounced: 5\.1\.1 550 5\.1\.1 <nobody@remote\.crier\.test>: Recipient address rejected' \
  "p3: the reason has the remote server's reply"

# --- no VERP: X-Crier-Notice of the original, else its Message-ID ----------------------------
dsn msgid-only.eml p4 p4.eml
run_crier bounces ingest p4.eml
is "$OUT" "$(counts 1 1 0 0 0 0)" "no VERP address: found by the original's X-Crier-Notice"
like "$(sql "SELECT detail FROM crier.dispatch_log WHERE recipient_ref = 'p4' AND event = 'bounce'")" \
  "found by X-Crier-Notice$" "the log says how"
dsn msgid-only.eml p5 p5.eml
sed -i '/^X-Crier-Notice:/d' p5.eml
run_crier bounces ingest p5.eml
is "$OUT" "$(counts 1 1 0 0 0 0)" "no token anywhere: found by the original's Message-ID"
like "$(sql "SELECT detail FROM crier.dispatch_log WHERE recipient_ref = 'p5' AND event = 'bounce'")" \
  "found by Message-ID \(unverified\)$" "the log says it was not verified"

# --- unmatched: a wrong token, an unknown notice, not a DSN; unparseable: garbage -------------
dsn permanent-local.eml p6 p6-forged.eml
sed -i "s/bounce+\([0-9]*\)\.[0-9a-f]*@/bounce+\1.ffffffffffffffffffffffffffffffff@/g;
        s/^X-Crier-Notice: \([0-9]*\)\..*/X-Crier-Notice: \1.ffffffffffffffffffffffffffffffff/" p6-forged.eml
run_crier bounces ingest p6-forged.eml
is "$OUT" "$(counts 1 0 0 1 0 0)" "a wrong token is unmatched, even though the Message-ID names the notice"
is "$(notice p6 "n.state || ' ' || n.channel")" "sent email" "p6 unchanged"
sed -e "s/$FIXTURE_ID/$((FIXTURE_ID + 999))/g" "$DSN/permanent-local.eml" >unknown.eml
run_crier bounces ingest unknown.eml
is "$OUT" "$(counts 1 0 0 1 0 0)" "a DSN for a notice that does not exist is unmatched"
dsn notice.eml p6 p6-notice.eml
run_crier bounces ingest p6-notice.eml
is "$OUT" "$(counts 1 0 0 1 0 0)" "a message that is not a DSN (crier's own notice) is unmatched"
# fixed bytes, not /dev/urandom: about 2 % of random 3000-byte inputs begin with what GMime
# takes for a header, and such a message is "not a DSN" (unmatched), not unparseable
python3 -c 'import random, sys; g = random.Random(13); sys.stdout.buffer.write(bytes(g.randrange(256) for _ in range(3000)))' >garbage.bin
run_crier bounces ingest garbage.bin
is "$RC" 0 "garbage exits 0"
is "$OUT" "$(counts 1 0 0 0 1 0)" "garbage is counted unparseable"
run_crier bounces ingest /dev/null
is "$OUT" "$(counts 1 0 0 0 1 0)" "an empty file is unparseable"
is "$(notice p6 "n.state || ' ' || n.channel")" "sent email" "p6 still unchanged"

# --- a Maildir: new/ and cur/ ----------------------------------------------------------------
mkdir -p maildir/new maildir/cur maildir/tmp
dsn permanent-remote.eml p7 maildir/new/1700000001.p7.mta
dsn delayed.eml p8 maildir/cur/1700000002.p8.mta:2,S
cp "$DSN/notice.eml" maildir/new/1700000003.notice.mta
dsn permanent-local.eml p9 maildir/tmp/1700000004.p9.mta # tmp/ is never read
run_crier bounces ingest maildir
is "$RC" 0 "ingest of a Maildir exits 0"
is "$OUT" "$(counts 3 1 1 1 0 0)" "Maildir: new/ and cur/ read, tmp/ not"
is "$(notice p7 "n.state || ' ' || n.channel")" "ready null" "p7 (new/) moved"
is "$(notice p8 "n.state || ' ' || n.channel")" "sent email" "p8 (cur/, a delay) stays"
is "$(notice p9 "n.state")" "sent" "p9 (tmp/) untouched"
run_crier bounces ingest maildir
is "$OUT" "$(counts 3 0 0 1 0 2)" "the Maildir again: already ingested"

# --- an mbox: Postfix's own, every notification for one notice ----------------------------------
dsn bounces.mbox p10 p10.mbox
run_crier bounces ingest p10.mbox
is "$RC" 0 "ingest of an mbox exits 0"
is "$OUT" "$(counts 5 1 0 0 0 0 4)" \
  "mbox: the first failure applied; the rest name a notice no longer sent by email, or a success"
is "$(notice p10 "n.state || ' ' || n.channel")" "ready null" "p10 moved once"
is "$(bounce_rows p10)" 1 "one bounce row for p10"
run_crier bounces ingest p10.mbox
is "$OUT" "$(counts 5 0 0 0 0 1 4)" "the mbox again: the applied one already ingested"

# --- the same DSN by two ingests at once: applied once -----------------------------------------
dsn permanent-local.eml p11 p11.eml
"$CRIER" bounces ingest p11.eml >race1.out 2>/dev/null &
race1=$!
"$CRIER" bounces ingest p11.eml >race2.out 2>/dev/null &
race2=$!
wait "$race1" "$race2"
is "$(cat race1.out race2.out | sort | tr '\n' '|')" "$(printf '%s\n' "$(counts 1 0 0 0 0 1)" "$(counts 1 1 0 0 0 0)" | sort | tr '\n' '|')" \
  "two concurrent ingests: one applies, the other finds it already ingested"
is "$(bounce_rows p11)" 1 "one bounce row for p11"

# --- a completed campaign is reopened, and the moved notice is then delivered -----------------
setup reopen email,null d1
sql "UPDATE crier.campaign SET state = 'completed', finished_at = now() WHERE name = 'reopen'" >/dev/null
dsn permanent-local.eml d1 d1.eml
run_crier bounces ingest d1.eml
is "$OUT" "$(counts 1 1 0 0 0 0)" "a bounce for a completed campaign is applied"
is "$(sql "SELECT state FROM crier.campaign WHERE name = 'reopen'")" running "the campaign runs again"
like "$(sql "SELECT from_state || '>' || to_state || ' ' || detail FROM crier.dispatch_log l
             JOIN crier.campaign c ON c.id = l.campaign_id WHERE c.name = 'reopen' AND l.event = 'campaign'
             ORDER BY l.id DESC LIMIT 1")" "^completed>running reopened: a bounce moved notice [0-9]+ to null$" \
  "the reopening is logged"
timeout 60 "$CRIER" run --until-idle >/dev/null 2>"$WORK/run.log"
is "$?" 0 "crier run --until-idle exits 0"
is "$(notice d1 "n.state || ' ' || n.channel")" "delivered null" "the bounced notice was delivered by its next channel"
is "$(sql "SELECT state FROM crier.campaign WHERE name = 'reopen'")" completed "and the campaign completed again"

# --- a cancelled campaign: the notice is cancelled, not tried again -----------------------------
setup gone email,null g1
sql "UPDATE crier.campaign SET state = 'cancelled' WHERE name = 'gone'" >/dev/null
dsn permanent-local.eml g1 g1.eml
run_crier bounces ingest g1.eml
is "$OUT" "$(counts 1 1 0 0 0 0)" "a bounce for a cancelled campaign is applied"
is "$(notice g1 "n.state || ' ' || n.channel")" "cancelled null" "its notice is cancelled"
like "$(notice g1 "array_to_string(n.reasons, ';')")" "; campaign cancelled$" "with the reason"

# --- no channel left: undeliverable ------------------------------------------------------------
setup solo email s1
dsn permanent-remote.eml s1 s1.eml
run_crier bounces ingest s1.eml
is "$OUT" "$(counts 1 1 0 0 0 0)" "a bounce with no channel left is applied"
is "$(notice s1 "n.state || ' | ' || array_to_string(n.reasons, '; ')")" \
  "undeliverable | email: bounced: 5.1.1 550 5.1.1 <nobody@remote.crier.test>: Recipient address rejected: User unknown in virtual mailbox table; no channel left" \
  "policy 'email' alone: undeliverable, with the reasons"
is "$(sql "SELECT to_state || ' ' || coalesce(to_channel, '-') FROM crier.dispatch_log WHERE recipient_ref = 's1' AND event = 'bounce'")" \
  "undeliverable -" "the log row says undeliverable"

# --- the next channel is not enabled here: the notice goes to it all the same and waits there
# for a worker that serves it (no silent rerouting: a config says nothing of other workers)
setup skip email,test,null k1
dsn permanent-local.eml k1 k1.eml
run_crier bounces ingest k1.eml
is "$(notice k1 "n.state || ' ' || n.channel || ' ' || array_to_string(n.reasons, ';')")" \
  'ready test email: bounced: 5.1.1 unknown user: "nosuchuser"' \
  "the next channel of the policy, though not enabled here, is where the notice goes (and waits)"

done_testing
