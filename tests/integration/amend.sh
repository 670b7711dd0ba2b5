#!/bin/bash
# amend.sh - reaching the unreached (issue 15, docs/unreached.md) against a real PostgreSQL
# and a real SMTP server (tests/peers/smtp_capture.py): an email refused for good, the
# person found by each key, listed as unreached (CSV with formula guarding, JSON), their
# contact corrected (`campaign amend`) and the notice sent to the new address by
# `crier run`, the audit showing both contacts; a corrections file with bad rows applying
# nothing; a held person staying held; a reached person left alone; a copy sent again
# (`notice resend`), logged as a resend; a letter in a print batch left to that attempt;
# and the roles (auditors find and list, only operators amend and resend).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
  echo "1..0 # SKIP $PY cannot import aiosmtpd (Debian: apt-get install python3-aiosmtpd)"
  exit 0
fi
"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

mkdir -p "$WORK/cap" "$WORK/spool"
start_peer cap "$PY" "$TESTS_DIR/peers/smtp_capture.py" "$WORK/cap" 0
write_config "channels:
  email:
    lanes: 1
    batch_size: 10
    smtp: {host: 127.0.0.1, port: $PORT, timeout: 5}
    from: \"Example Corp <privacy@example.com>\"
    bounce_domain: bounces.example.com
  mail: {lanes: 1, spool: $WORK/spool, batch_window: 1s, return_address: 'Example Corp, 1 Main St'}"
export CRIER_CONFIG="$WORK/crier.yaml"

run_until_idle() { timeout 90 "$CRIER" run --until-idle >/dev/null 2>>"$WORK/run.log"; }
state() { # REF - state:channel of the person's notice
  sql "SELECT n.state || ':' || n.channel FROM crier.notice n JOIN crier.recipient r
       ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq WHERE r.ref = '$1'"
}
received() { # ADDRESS - messages the SMTP server accepted for it
  grep -l "\"$1\"" "$WORK"/cap/*.json 2>/dev/null | wc -l
}

# p1's address is refused for good (550 at RCPT) and they have no postal address: undeliverable.
# p4 has only a fax, which the policy does not use: undeliverable at load. p5 is held.
cat >people.csv <<'CSV'
ref,name,email,fax,address1,city,region,postal_code
p1,Ann Lee,reject-p1@Example.COM,,,,,
p2,Bob Stone,p2@example.com,,,,,
p3,Cy Park,p3@example.com,,1 Elm St,Springfield,IL,62701-1234
p4,"=HYPERLINK(""http://x"")",,+1 (555) 010-0199,,,,
p5,Di Held,reject-p5@example.com,,,,,
CSV
"$CRIER" campaign create c1 --incident INC-1 --policy email,mail --meta "$META" >/dev/null &&
  "$CRIER" campaign load c1 --csv people.csv >/dev/null &&
  "$CRIER" hold place c1 --recipient p5 --authority FBI --official "SA Roe" --case K-1 \
    --form written --reason "ongoing" >/dev/null &&
  "$CRIER" campaign start c1 >/dev/null
ok "campaign c1 created, loaded, p5 held, started" test $? -eq 0
run_until_idle
is "$(state p1) $(state p2) $(state p3) $(state p4) $(state p5)" \
  "undeliverable:email sent:email sent:email undeliverable:email ready:email" \
  "after the run: p1 refused for good, p2 and p3 sent, p4 never reachable, p5 held"

# --- audit find: every key, normalised as a load normalises ---------------------------------
find_refs() { "$CRIER" audit find "$@" --json 2>/dev/null | "$PY" -c 'import json, sys
print(" ".join(p["campaign"] + "/" + p["ref"] for p in json.load(sys.stdin)))'; }
is "$(find_refs c1 --ref p3)" "c1/p3" "find by ref"
is "$(find_refs --email reject-p1@EXAMPLE.com)" "c1/p1" "find by email: the domain in any case"
is "$(find_refs c1 --fax '+1.555.010.0199')" "c1/p4" "find by fax: written any way, matched in E.164"
is "$(find_refs c1 --postal 62701)" "c1/p3" "find by postal: a ZIP finds its ZIP+4"
is "$(find_refs c1 --name sto)" "c1/p2" "find by name: the beginning of the last name"
is "$(find_refs c1 --name 'ANN')" "c1/p1" "find by name: the first name, any case"
run_crier audit find c1 --name nobody
is "$RC" 1 "find exits 1 when nobody matches"
run_crier audit find c1 --email not-an-address
is "$RC" 65 "find refuses a value that is no valid contact (65)"
like "$ERR" "--email 'not-an-address'" "and names it"
run_crier audit find c1 --email a@example.com --ref p1
is "$RC" 64 "find takes one key"
run_crier audit find nosuch --ref p1
is "$RC" 66 "find in an unknown campaign exits 66"
# the plan: an index probe, not a scan of the campaign's recipients
plan=$(psql -XAtq -c "SET enable_seqscan = off" -c "EXPLAIN SELECT seq FROM crier.recipient WHERE campaign_id = 1 AND email = 'x@example.com'")
unlike_seq() { ! grep -q "Seq Scan" <<<"$plan"; }
ok "find by email reads an index, not the recipients" unlike_seq
# the campaign's own partition-local index, built after the load committed (019_find_local.sql)
like "$plan" "recipient_c1_email" "the one the load built for the campaign's partition"
# --name's condition as engine/cmd/unreached.c writes it: both halves served by an index
# (018_find_name.sql), in the loaded rows and in the versions
for t in recipient recipient_version; do
  plan=$(psql -XAtq -c "SET enable_seqscan = off" -c "EXPLAIN SELECT seq FROM crier.$t x
    WHERE x.campaign_id = 1 AND (lower(x.name) LIKE 'sto%' OR lower(split_part(x.name, ' ', -1)) LIKE 'sto%')")
  ok "find by name reads indexes of $t, not its rows" unlike_seq
  # which ones: without the campaign's condition, which the planner serves from the key
  # index on tables this small, only the two name indexes avoid reading every row
  plan=$(psql -XAtq -c "SET enable_seqscan = off" -c "EXPLAIN SELECT seq FROM crier.$t x
    WHERE lower(x.name) LIKE 'sto%' OR lower(split_part(x.name, ' ', -1)) LIKE 'sto%'")
  idx=$([ $t = recipient ] && echo recipient_c1 || echo recipient_version)
  like "$(tr "\n" " " <<<"$plan")" "${idx}_name.*${idx}_last_name|${idx}_last_name.*${idx}_name" \
    "both halves of the condition match ${idx}_name and ${idx}_last_name"
done
# the claim reads each person through recipient_now: still a probe by key of both tables
plan=$(psql -XAtq -c "SET enable_seqscan = off" -c "EXPLAIN SELECT * FROM crier.recipient_now r
  WHERE r.campaign_id = 1 AND r.seq = 3 OFFSET 0")
ok "recipient_now by (campaign, seq) reads indexes only" unlike_seq

# --- audit unreached -------------------------------------------------------------------------
run_crier audit unreached c1 --format csv
is "$RC" 0 "audit unreached exits 0"
is "$(sed -n 1p <<<"$OUT" | cut -d, -f1-4)" "ref,name,why,reason" "CSV header"
is "$(tail -n +2 <<<"$OUT" | cut -d, -f1 | tr '\n' ' ')" "p1 p4 " \
  "p1 and p4 are unreached, in list order (p5 is held, not unreached)"
like "$OUT" "^p1,Ann Lee,undeliverable," "p1: undeliverable, with the reason"
like "$OUT" "550" "p1's last attempt shows the server's refusal"
like "$(grep -a HYPERLINK <<<"$OUT")" "\"'=HYPERLINK" "a value starting with = gets a leading apostrophe"
like "$(grep -a HYPERLINK <<<"$OUT")" "no usable contact" "p4: no usable contact"
like "$(grep -a HYPERLINK <<<"$OUT")" ",\"'\\+15550100199\"," "a fax number starting with + is guarded too"
run_crier audit unreached c1 --format json
is "$(wc -l <<<"$OUT")" 2 "JSON: one object per line"
is "$("$PY" -c 'import json, sys
rows = [json.loads(l) for l in sys.stdin]
print(rows[0]["ref"], rows[0]["why"], rows[0]["last_channel"], rows[1]["name"])' <<<"$OUT")" \
  "p1 undeliverable email =HYPERLINK(\"http://x\")" "JSON: the values as stored"
run_crier audit report c1
like "$OUT" "crier audit unreached" "the report points to audit unreached for the whole list"

# --- a corrections file with bad rows applies nothing ---------------------------------------
cat >bad.csv <<'CSV'
ref,email
p1,p1@example.com
nobody,x@example.com
p2,not-an-address
p1,p1b@example.com
CSV
run_crier campaign amend c1 --csv bad.csv --reason "caller gave a new address" --reject-file rejects.csv
is "$RC" 65 "a corrections file with bad rows exits 65"
like "$ERR" "bad.csv:3: ref nobody rejected: no ref 'nobody' in campaign 'c1'" "an unknown ref, with its line"
like "$ERR" "bad.csv:4: ref p2 rejected: .*email: not a valid address" "an invalid contact, with its line"
like "$ERR" "bad.csv:5: ref p1 rejected: ref 'p1' appears twice \\(first at line 2\\)" "a ref twice"
is "$(tail -n +2 rejects.csv | cut -d, -f1 | tr '\n' ' ')" "line 3 line 4 line 5 " "the reject file has every rejected row"
is "$(sql "SELECT count(*) FROM crier.recipient_version")" 0 "nothing was applied: no new version"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE event = 'amend'")" 0 "and nothing logged"
is "$(state p1)" "undeliverable:email" "p1 unchanged"
run_crier campaign amend c1 --csv bad.csv
is "$RC" 64 "--reason is required"
printf 'ref,email,favourite_colour\np1,p1@example.com,blue\n' >cols.csv
run_crier campaign amend c1 --csv cols.csv --reason r
is "$RC" 65 "a column that is not a contact is refused"
like "$ERR" "favourite_colour" "and named"

# --- the corrections: p1 re-queued, p2 (reached) left alone, p4 now reachable, p5 held -------
cat >fix.csv <<'CSV'
ref,email
p1,p1@Example.com
p2,p2-new@example.com
p4,p4@example.com
p5,p5@example.com
p3,p3@example.com
CSV
run_crier campaign amend c1 --csv fix.csv --reason "caller gave a new address"
is "$RC" 0 "campaign amend applies the corrections"
is "$OUT" "campaign c1: 5 rows, 4 amended, 1 unchanged; 3 queued again, 1 already reached (left alone), 0 in flight (left to that attempt), 0 still without a usable channel" \
  "it says what it did with each"
is "$(state p1) $(state p2) $(state p4) $(state p5)" "ready:email sent:email ready:email ready:email" \
  "p1 and p4 queued on email, p2 left alone, p5 still queued"
is "$(sql "SELECT email FROM crier.recipient WHERE ref = 'p1'")" "reject-p1@example.com" \
  "the loaded snapshot is not rewritten"
is "$(sql "SELECT v.email || ' ' || v.version || ' ' || v.source || ' ' || v.reason FROM crier.recipient_version v
           WHERE v.ref = 'p1'")" \
  "p1@example.com 1 amend caller gave a new address" "the correction is a new version, normalised, with why"
is "$(sql "SELECT detail || ' | ' || reason || ' | ' || (actor = current_user)::text FROM crier.dispatch_log
           WHERE event = 'amend' AND recipient_ref = 'p1'")" \
  "version 1 (amend, corrections line 2): email: 'reject-p1@example.com' -> 'p1@example.com' | caller gave a new address | true" \
  "the log keeps the old and new values, who and why"
run_until_idle
is "$(state p1) $(state p4) $(state p5)" "sent:email sent:email ready:email" \
  "the run sends p1 and p4 at their new addresses; p5 stays held"
is "$(received p1@example.com) $(received p4@example.com) $(received p5@example.com) $(received p2@example.com) $(received p2-new@example.com)" \
  "1 1 0 1 0" "the SMTP server got one message each for p1 and p4, none for p5, p2 nothing new"
run_crier audit show c1 p1
is "$RC" 0 "audit show verifies every content p1 was sent, each against the contacts its attempt used"
[ "$RC" = 0 ] || echo "$OUT" | grep -E "DIFFERS|NOT CHECKED" | sed 's/^/#   /'
like "$OUT" "version 1 \\(amend, .* caller gave a new address\\)" "audit show: the corrected version, when, who and why"
like "$OUT" "reject-p1@example.com" "audit show: the contact as loaded"
like "$OUT" "'reject-p1@example.com' -> 'p1@example.com'" "audit show: the correction"
is "$(find_refs c1 --email reject-p1@example.com) $(find_refs c1 --email p1@example.com)" "c1/p1 c1/p1" \
  "find matches both the old and the new address"
run_crier audit unreached c1
is "$(tail -n +2 <<<"$OUT" | wc -l)" 0 "nobody is unreached any more (p5 is held, not unreached)"

# --- notice resend: another copy, logged as a resend ---------------------------------------
run_crier notice resend c1 p2 --channel mail --reason "asked for paper"
is "$RC" 65 "p2 has no postal address: no paper copy (65)"
like "$ERR" "cannot be reached by mail" "and says why"
run_crier notice resend c1 p3 --channel fax --reason "asked for a fax"
is "$RC" 65 "a channel the policy does not list is refused"
run_crier notice resend c1 p5 --channel email --reason r
is "$RC" 75 "a notice still queued is not sent twice (75)"
run_crier notice resend c1 p3 --channel mail --reason "asked for a paper copy"
is "$RC" 0 "p3 gets a paper copy"
is "$(state p3)" "ready:mail" "queued on mail"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE recipient_ref = 'p3' AND event = 'resend'
           AND reason = 'asked for a paper copy'")" 1 "logged as a resend, with why"
run_until_idle
is "$(state p3)" "batched:mail" "the run prints it"
run_crier notice resend c1 p3 --channel mail --reason again
is "$RC" 75 "not while it is in a print batch"
printf 'ref,address1,city,region,postal_code\np3,2 Oak St,Springfield,IL,62702\n' >move.csv
run_crier campaign amend c1 --csv move.csv --reason moved --resend
like "$OUT" "1 amended.*0 queued again.*1 in flight" "an amend leaves a letter in a print batch to that attempt"
is "$(state p3)" "batched:mail" "still batched"

# --- returned mail with a forwarding address: amended and mailed again, once -----------------
cat >letters.csv <<'CSV'
ref,name,address1,city,region,postal_code
m1,Mo Post,1 Old Rd,Springfield,IL,62701
m2,Nu Post,2 Old Rd,Springfield,IL,62701
CSV
"$CRIER" campaign create c2 --incident INC-2 --policy mail --meta "$META" >/dev/null &&
  "$CRIER" campaign load c2 --csv letters.csv >/dev/null && "$CRIER" campaign start c2 >/dev/null
ok "campaign c2 (letters) created, loaded, started" test $? -eq 0
mark_mailed() { # CAMPAIGN - every batch of the campaign's batched letters marked mailed
  local b
  for b in $(sql "SELECT DISTINCT transport_id FROM crier.notice WHERE $(in_campaign "$1") AND state = 'batched'"); do
    "$CRIER" batch mark-mailed "$b" --date "$(date -u +%F)" >/dev/null || return 1
  done
}
run_until_idle
mark_mailed c2
is "$(state m1) $(state m2)" "mailed:mail mailed:mail" "both letters mailed"
cat >returns.csv <<'CSV'
ref,reason,forward_address1,forward_city,forward_region,forward_postal_code
m1,Forwarded,9 New Ave,Chicago,il,60601
m2,Forwarded,9 New Ave,Chicago,IL,ABCDE
CSV
run_crier returns ingest returns.csv --campaign c2 --reject-file fwd-rejects.csv
is "$RC" 0 "returns ingest with forwarding addresses exits 0"
like "$OUT" "2 returns recorded" "both returns are recorded"
like "$OUT" "forwarding addresses: 1 amended and mailed again, 0 already forwarded once, 1 rejected" \
  "one forwarding address applied, one rejected"
like "$ERR" "returns.csv:3: ref 'm2': forwarding address rejected: address: invalid ZIP code 'ABCDE'" \
  "the rejected address is named with its line and why"
is "$(tail -n +2 fwd-rejects.csv | cut -d, -f1-3)" "line 3,rejected,address: invalid ZIP code 'ABCDE'" \
  "and it is in the reject file"
is "$(state m1) $(state m2)" "ready:mail mailed:mail" "m1 is queued on mail again; m2 stays returned"
is "$(sql "SELECT city || ' ' || region || ' ' || source FROM crier.recipient_version WHERE ref = 'm1'")" \
  "Chicago IL forwarding" "the forwarding address is a new version (normalised)"
run_crier audit unreached c2
is "$(tail -n +2 <<<"$OUT" | cut -d, -f1,3 | tr '\n' ' ')" "m2,returned " "m2 is listed as returned"
run_until_idle
mark_mailed c2
is "$(state m1)" "mailed:mail" "m1's letter is mailed again, to the new address"
like "$(sql "SELECT string_agg(detail, ' ') FROM crier.dispatch_log WHERE recipient_ref = 'm1' AND event = 'amend'")" \
  "address1: '1 Old Rd' -> '9 New Ave'" "the amendment is logged with the old and new address"
run_crier returns ingest returns.csv --campaign c2
like "$OUT" "forwarding addresses: 0 amended and mailed again, 1 already forwarded once, 1 rejected" \
  "a forwarding address is applied once per person"
is "$(state m1)" "mailed:mail" "m1 is not mailed a third time"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE recipient_ref = 'm1' AND event = 'returned'")" 1 \
  "the same file again records no second return"
# the letter mailed to the forwarding address comes back too, in the print house's next file
printf 'ref,reason\nm1,Moved again\n' >returns2.csv
run_crier returns ingest returns2.csv --campaign c2
like "$OUT" "1 returns recorded, 0 already recorded" "a second return of the re-mailed letter is recorded"
is "$(sql "SELECT string_agg(attempt || ' ' || reason, ', ' ORDER BY id) FROM crier.dispatch_log
           WHERE recipient_ref = 'm1' AND event = 'returned'")" "1 Forwarded, 2 Moved again" \
  "each return is logged with the mailing it answers"
run_crier audit unreached c2
is "$(tail -n +2 <<<"$OUT" | cut -d, -f1,3 | tr '\n' ' ')" "m1,returned m2,returned " \
  "m1 is unreached again: its second letter came back"
run_crier returns ingest returns2.csv --campaign c2
like "$OUT" "0 returns recorded, 1 already recorded" "that file again: already recorded"
printf 'ref,reason,returned_on\nm1,Moved again,2026-12-01\n' >returns3.csv
run_crier returns ingest returns3.csv --campaign c2
like "$OUT" "0 returns recorded, 1 already recorded" "another file for the same mailing: already recorded"

# --- an amend racing a running lane: nobody gets two messages ----------------------------------
# 300 people; while `crier run` sends, ten amends each give 30 of them a new address. Each
# person is then sent exactly one message: before the amend at the old address (then left
# alone as reached, or left to the attempt in flight), or after it at the new one.
{
  echo "ref,name,email"
  for i in $(seq 300); do echo "r$i,Person $i,r$i@old.example.com"; done
} >race.csv
"$CRIER" campaign create c3 --incident INC-3 --policy email --meta "$META" >/dev/null &&
  "$CRIER" campaign load c3 --csv race.csv >/dev/null && "$CRIER" campaign start c3 >/dev/null
ok "campaign c3 (300 people) created, loaded, started" test $? -eq 0
timeout 90 "$CRIER" run --until-idle >/dev/null 2>>"$WORK/run.log" &
runner=$!
# the amends start once the lane has sent its first batch, so that they meet it mid-way
for _ in $(seq 400); do
  [ "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign c3) AND state = 'sent'")" -gt 0 ] && break
  sleep 0.05
done
amend_rc=""
for k in $(seq 0 9); do
  {
    echo "ref,email"
    for i in $(seq $((k * 30 + 1)) $((k * 30 + 30))); do echo "r$i,r$i@new.example.com"; done
  } >"race$k.csv"
  "$CRIER" campaign amend c3 --csv "race$k.csv" --reason "race $k" >/dev/null 2>>"$WORK/amend.err"
  amend_rc="$amend_rc$?"
done
wait "$runner"
is "$amend_rc" "0000000000" "ten amends while the lane runs all succeed"
run_until_idle
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign c3) AND state = 'sent'")" 300 "all 300 are sent"
race_counts=$("$PY" - "$WORK/cap" <<'PY'
import collections, glob, json, re, sys
seen = collections.Counter()
where = collections.Counter()
for path in glob.glob(sys.argv[1] + "/*.json"):
    for rcpt in json.load(open(path))["rcpt_tos"]:
        m = re.fullmatch(r"r(\d+)@(old|new)\.example\.com", rcpt)
        if m:
            seen[int(m.group(1))] += 1
            where[m.group(2)] += 1
print(len(seen), sorted(set(seen.values())), file=sys.stdout)
print("# old address:", where["old"], "new address:", where["new"], file=sys.stderr)
PY
)
is "$race_counts" "300 [1]" "every one of the 300 got exactly one message"

# --- roles ---------------------------------------------------------------------------------
role_logins
as auditor run_crier audit find c1 --ref p1
is "$RC" 0 "an auditor may find people"
as auditor run_crier audit unreached c1
is "$RC" 0 "an auditor may list the unreached"
as auditor run_crier campaign amend c1 --csv fix.csv --reason r
is "$RC" 77 "an auditor may not amend (77)"
as legal run_crier notice resend c1 p1 --channel email --reason r
is "$RC" 77 "legal may not resend (77)"
ok "an auditor may not write a version" denied auditor \
  "INSERT INTO crier.recipient_version SELECT * FROM crier.recipient_version LIMIT 1"
ok "an operator may not rewrite a version" denied operator "UPDATE crier.recipient_version SET email = NULL"
printf 'ref,email\np2,p2-op@example.com\n' >op.csv
as operator run_crier campaign amend c1 --csv op.csv --reason "operator's correction"
is "$RC" 0 "an operator may amend"
as operator run_crier notice resend c1 p2 --channel email --reason "asked again"
is "$RC" 0 "an operator may resend"
is "$(sql "SELECT by FROM crier.recipient_version WHERE email = 'p2-op@example.com'")" "t_operator_$$" \
  "the version records the operator's login"

# --- --json: one object on stdout, the same counts as the text, checked against the database --
json_of() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$OUT" "$1"; }
printf 'ref,email\np4,p4-json@example.com\n' >json.csv
run_crier campaign amend c1 --csv json.csv --reason "json check" --json
is "$RC:$ERR" "0:" "campaign amend --json exits 0"
is "$(json_of '[d[k] for k in ("campaign", "rows", "amended", "unchanged", "requeued", "reached", "in_flight", "no_channel")]')" \
  "['c1', 1, $(sql "SELECT count(*) FROM crier.recipient_version v WHERE $(in_campaign c1) AND v.reason = 'json check'"), 0, 0, 1, 0, 0]" \
  "campaign amend --json: one row, the version the database has, p4 already reached"
run_crier notice resend c1 p4 --channel email --reason "json resend" --json
is "$RC:$ERR" "0:" "notice resend --json exits 0"
is "$(json_of 'd')" "{'campaign': 'c1', 'ref': 'p4', 'channel': 'email'}" "notice resend --json: who, on what"
is "$(sql "SELECT count(*) FROM crier.dispatch_log l WHERE $(in_campaign c1) AND l.event = 'resend'
           AND l.recipient_ref = 'p4' AND l.channel = 'email' AND l.reason = 'json resend'")" 1 \
  "and the database has the resend"

# --- a progress line on a terminal (script(1) gives the command one), never in a pipe ----------
on_tty() { script -qec "$*" /dev/null 2>&1 | tr '\r' '\n'; }
printf 'ref,email\np4,p4-tty@example.com\np5,p5-tty@example.com\n' >tty.csv
like "$(on_tty "$CRIER" campaign amend c1 --csv tty.csv --reason tty-check)" \
  "campaign amend: 2 rows, done" "campaign amend on a terminal ends its progress line with the count"
printf 'ref,email\np4,p4-pipe@example.com\n' >pipe.csv
run_crier campaign amend c1 --csv pipe.csv --reason "pipe check"
is "$(grep -c $'\r\\|rows, done' <<<"$ERR$OUT")" 0 "campaign amend into a pipe: no progress line"

# --- an amended address adds its jurisdiction to the campaign's set (020_load.sql),
# which `campaign start`'s content check reads; the loaded one stays
juris_c1() { sql "SELECT string_agg(jurisdiction, ' ' ORDER BY jurisdiction) FROM crier.campaign_jurisdiction c
                  WHERE c.campaign_id = (SELECT id FROM crier.campaign WHERE name = 'c1')"; }
is "$(juris_c1)" "IL" "the load kept p3's state"
printf 'ref,address1,city,region,postal_code\np3,9 Pine St,Boston,ma,02108\n' >moved.csv
run_crier campaign amend c1 --csv moved.csv --reason "moved"
is "$RC $(juris_c1)" "0 IL MA" "a person corrected into another state adds it"

done_testing
