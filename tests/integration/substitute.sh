#!/bin/bash
# substitute.sh - `crier substitute` (issue 15, docs/unreached.md) against a real PostgreSQL
# and a real SMTP server (tests/peers/smtp_capture.py, aiosmtpd). A rules table with four
# states whose substitute-notice thresholds sit at the boundary of this campaign's counts:
# NV and OR on cost ("more than $3", at $1 a letter: 4 letters left in NV, 3 in OR), UT and
# ID on people ("more than 2": UT has 3 residents, ID "more than 3" with 3). The substitute
# email goes once, through crier run, to the people of NV and UT who were not reached and
# have an address, and to no one else; a run of write again queues nobody. HIPAA: from 10
# people without sufficient contact, and the toll-free number the meta must give. posted and
# media are recorded, shown by audit report, and refused to legal and auditors.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PEER="$TESTS_DIR/peers/smtp_capture.py"
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
  echo "1..0 # SKIP $PY cannot import aiosmtpd (Debian: apt-get install python3-aiosmtpd)"
  exit 0
fi
"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
mkdir -p "$WORK/cap"
start_peer cap "$PY" "$PEER" "$WORK/cap" 0
cap_port=$PORT

# the shipped table, with substitute-notice thresholds for NV, OR, UT and ID
"$PY" - "$TESTS_DIR/../config/jurisdictions.yaml" rules.yaml <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
rules = {
    "NV": "{cost_above: 3, people_above: 100, insufficient_contact: false}",
    "OR": "{cost_above: 3, people_above: 100, insufficient_contact: false}",
    "UT": "{cost_above: 1000, people_above: 2, insufficient_contact: false}",
    "ID": "{cost_above: 1000, people_above: 3, insufficient_contact: false}",
}
out, code = [], None
for line in text.split("\n"):
    m = re.match(r"^  ([A-Z]{2}):\s*$", line)
    if m:
        code = m.group(1)
    if code in rules and line.startswith("    substitute_notice:"):
        line = "    substitute_notice: " + rules[code]
    out.append(line)
open(sys.argv[2], "w").write("\n".join(out))
PYEOF
sub_config() {
  write_config "report:
  deadlines: $WORK/rules.yaml
substitute:
  postage_per_letter: 0.75
  print_per_letter: 0.25
channels:
  test: {lanes: 1, batch_size: 10}
  email:
    lanes: 1
    batch_size: 10
    smtp: {host: 127.0.0.1, port: $cap_port, timeout: 5}
    from: \"Example Corp <privacy@example.com>\"
    bounce_domain: bounces.example.com"
}
sub_config
run_crier config check
is "$RC" 0 "the configuration with the substitute keys is valid"

cat >people.csv <<'CSV'
ref,name,email,address1,city,postal_code,region,country,test_script
nv1,Ann Nevada,nv1@example.com,,,,NV,US,permanent
nv2,Bob Nevada,nv2@example.com,,,,NV,US,permanent
nv3,Cy Nevada,nv3@example.com,,,,NV,US,permanent
nv4,Di Nevada,,4 Main St,Reno,89501,NV,US,permanent
nv5,Ed Nevada,nv5@example.com,,,,NV,US,accepted
or1,Fay Oregon,or1@example.com,,,,OR,US,permanent
or2,Gus Oregon,or2@example.com,,,,OR,US,permanent
or3,Hal Oregon,or3@example.com,,,,OR,US,permanent
ut1,Ida Utah,ut1@example.com,,,,UT,US,accepted
ut2,Jo Utah,ut2@example.com,,,,UT,US,accepted
ut3,Kim Utah,ut3@example.com,,,,UT,US,permanent
id1,Lu Idaho,id1@example.com,,,,ID,US,accepted
id2,Mo Idaho,id2@example.com,,,,ID,US,accepted
id3,Ned Idaho,id3@example.com,,,,ID,US,permanent
CSV
setup sub test people.csv
timeout 60 "$CRIER" run --until-idle >/dev/null 2>run.log
is "$?" 0 "crier run sends the campaign on the test channel"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign sub) AND state = 'undeliverable'")" 9 \
  "8 people are not reached"

# --- the test, per state at the boundary ----------------------------------------------------------
run_crier substitute sub --json
is "$RC" 0 "crier substitute --json exits 0"
echo "$OUT" >model.json
verdict() { "$PY" -c "import json,sys; m=json.load(open('model.json'))
print([j['verdict'] for j in m['jurisdictions'] if j['jurisdiction']=='$1'][0])"; }
field() { "$PY" -c "import json,sys; m=json.load(open('model.json'))
print([j['$2'] for j in m['jurisdictions'] if j['jurisdiction']=='$1'][0])"; }
is "$(verdict NV)" required "NV: 4 letters at \$1.00 = \$4.00 is more than \$3: required"
is "$(verdict OR)" "not required" "OR: 3 letters at \$1.00 = \$3.00 is not more than \$3: not required"
is "$(verdict UT)" required "UT: 3 residents is more than 2: required"
is "$(verdict ID)" "not required" "ID: 3 residents is not more than 3: not required"
is "$(field NV remaining_letters) $(field NV estimated_cost) $(field NV without_sufficient_contact)" \
  "4 4.0 4" "NV: 4 letters to send, \$4.00, 4 without sufficient contact (nv5 was reached)"
is "$(field OR estimated_cost)" "3.0" "OR: the estimate is \$3.00"
is "$(field NV because)" "['estimated cost \$4.00 (4 letters at \$1.00) is more than \$3']" \
  "NV: says which threshold and the numbers"
is "$(field ID because)" "[]" "ID: no threshold met"
is "$("$PY" -c "import json; print(' '.join(json.load(open('model.json'))['required']))")" "NV UT" \
  "required in NV and UT only"
run_crier substitute sub
like "$OUT" "NV +required \(5 residents, 4 letters to send, 4 without sufficient contact\)" \
  "the text says NV is required, with the counts"
like "$OUT" "OR +not required" "the text says OR is not required"
like "$OUT" "yes: estimated cost \\\$4.00 \(4 letters at \\\$1.00\) is more than \\\$3" "the text gives the reason"
run_crier substitute nosuch
is "$RC" 65 "an unknown campaign: exit 65"

# --- write: the set, the email once to the unreached of NV and UT --------------------------------
run_crier substitute write sub --out "$WORK/set" --json
is "$RC" 0 "substitute write exits 0"
echo "$OUT" >write.json
is "$(find set -type f -printf '%f\n' | sort | tr '\n' ' ')" "media-NV.txt media-UT.txt posting.html " \
  "the posting and a media notice for NV and UT, nothing for OR or ID"
is "$("$PY" -c "import json; r=json.load(open('write.json')); print(r['email_campaign'], r['email_queued'])")" \
  "sub.substitute 4" "the substitute email campaign holds 4 people"
like "$(cat set/media-NV.txt)" "affecting residents of Nevada" "the NV media notice names Nevada"
like "$(cat set/posting.html)" "What happened" "the posting says what happened"
ok "the posting loads nothing from anywhere (no src=, href= or url())" \
  bash -c "! grep -Eiq 'src=|href=|url\(|@import' set/posting.html"
expected_log=""
for f in posting.html media-NV.txt media-UT.txt; do
  expected_log+="${expected_log:+,}$(sha256sum "set/$f" | cut -d' ' -f1) wrote $f"
done
is "$(sql "SELECT string_agg(content_sha256 || ' ' || detail, ',' ORDER BY id) FROM crier.dispatch_log
           WHERE $(in_campaign sub) AND event = 'substitute' AND to_state = 'written'")" \
  "$expected_log" "each file is logged with its SHA-256"
timeout 60 "$CRIER" run --until-idle >/dev/null 2>run2.log
is "$?" 0 "crier run sends the substitute email"
rcpts() { cat cap/*.json 2>/dev/null | "$PY" -c "import sys, json
d=json.JSONDecoder(); s=sys.stdin.read(); i=0; out=[]
while i < len(s):
    s2=s[i:].lstrip()
    if not s2: break
    o,n=d.raw_decode(s2); i=len(s)-len(s2)+n; out+=o['rcpt_tos']
print(' '.join(sorted(out)))"; }
is "$(rcpts)" "nv1@example.com nv2@example.com nv3@example.com ut3@example.com" \
  "the substitute email went to the unreached of NV and UT with an address, and to no one else"
like "$("$PY" -c "import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
print(m.get_body(('plain',)).get_content())" cap/000001.eml | tr -s ' \n' ' ')" "could not reach you by the means we tried first" \
  "it is the substitute template's text"
is "$(sql "SELECT count(*) FROM crier.dispatch_log d JOIN crier.campaign c ON c.id = d.campaign_id
           WHERE c.name = 'sub.substitute' AND d.event = 'transition' AND d.to_state = 'sent'")" 4 \
  "each send is recorded by the normal record path, once"
run_crier substitute write sub --out "$WORK/set2" --json
is "$RC" 0 "substitute write again exits 0"
is "$("$PY" -c "import json,sys; print(json.loads(sys.argv[1])['email_queued'])" "$OUT")" 0 \
  "a second write queues nobody"
timeout 60 "$CRIER" run --until-idle >/dev/null 2>run3.log
is "$(ls cap/*.eml | wc -l)" 4 "still 4 messages: nobody got it twice"

# --- posted and media ------------------------------------------------------------------------------
today=$(date -u +%F)
later=$(date -u -d '+90 days' +%F)
run_crier substitute posted sub --url https://example.com/notice --from "$today" --until "$later"
is "$RC" 0 "substitute posted is recorded"
run_crier substitute media sub --outlet "Las Vegas Review-Journal" --date "$today" --state NV --json
is "$RC" 0 "substitute media is recorded"
like "$OUT" '"outlet": "Las Vegas Review-Journal"' "--json says what was recorded"
run_crier substitute posted sub --url https://example.com/notice --from "$later" --until "$later"
is "$RC" 65 "a posting that starts in the future is refused (65)"
run_crier substitute posted sub --url https://example.com/notice --from "$today" --until 2000-01-01
is "$RC" 65 "--until before --from is refused (65)"
run_crier substitute media sub --outlet X --date "$today" --state Nevada
is "$RC" 65 "--state must be a code (65)"
is "$(sql "SELECT string_agg(to_state || ': ' || detail, '; ' ORDER BY id) FROM crier.dispatch_log
           WHERE $(in_campaign sub) AND event = 'substitute' AND to_state IN ('posted', 'media')")" \
  "posted: website posting at https://example.com/notice from $today until $later; media: media notice in Las Vegas Review-Journal on $today for NV" \
  "both are in the dispatch log"
run_crier audit report sub --json
is "$RC" 0 "audit report exits 0"
echo "$OUT" >report.json
is "$("$PY" -c "import json; s=json.load(open('report.json'))['substitute']
nv=[j for j in s['jurisdictions'] if j['jurisdiction']=='NV'][0]
print(nv['verdict'], '|', ' / '.join(d['detail'] for d in nv['done']))")" \
  "required | website posting at https://example.com/notice from $today until $later / media notice in Las Vegas Review-Journal on $today for NV" \
  "audit report --json: NV required, with the posting and its media notice"
is "$("$PY" -c "import json; d=json.load(open('report.json'))
print(d['flags']['substitute_notice'], d['by_jurisdiction']['NV']['substitute_notice']['triggered'],
      d['by_jurisdiction']['NV']['substitute_notice']['because'], d['by_jurisdiction']['OR']['substitute_notice']['triggered'])")" \
  "['NV', 'UT'] yes ['cost_above'] no" "the report's flags and per-jurisdiction verdicts are the same answer, the cost test decided"
run_crier audit report sub --html "$WORK/report.html"
like "$OUT" "SUBSTITUTE NOTICE" "the text report has the section"
like "$OUT" "done .*media notice in Las Vegas Review-Journal" "and what was done"
like "$(cat report.html)" "<h2 id=\"substitute\">Substitute notice</h2>" "the HTML report has the section"

# --- roles -----------------------------------------------------------------------------------------
role_logins
as legal "$CRIER" substitute posted sub --url https://example.com/x --from "$today" --until "$later" >/dev/null 2>err.txt
is "$?" 77 "legal may not record a posting (77)"
as auditor "$CRIER" substitute media sub --outlet X --date "$today" --state NV >/dev/null 2>>err.txt
is "$?" 77 "an auditor may not record a media notice (77)"
as auditor "$CRIER" substitute write sub --out "$WORK/set3" >/dev/null 2>>err.txt
is "$?" 77 "an auditor may not write the set (77)"
ok "and leaves neither the set nor its staging directory" test -z "$(find "$WORK" -maxdepth 1 -name '*set3*')"
ok "the database refuses legal an insert into substitute_record" \
  denied legal "INSERT INTO crier.substitute_record (campaign_id, kind, detail) VALUES (1, 'written', 'x')"
ok "the database refuses an auditor an insert into substitute_email" \
  denied auditor "INSERT INTO crier.substitute_email (campaign_id, email_campaign_id) VALUES (1, 2)"
ok "nobody changes a record, not even the owner" \
  bash -c "! psql -XAtq -v ON_ERROR_STOP=1 -c \"UPDATE crier.substitute_record SET detail = 'x'\" 2>/dev/null"
as auditor "$CRIER" substitute sub >/dev/null 2>>err.txt
is "$?" 0 "an auditor may read the assessment"
as operator "$CRIER" substitute media sub --outlet "KLAS-TV" --date "$today" --state NV >/dev/null 2>>err.txt
is "$?" 0 "an operator records a media notice"

# --- HIPAA: 10 without sufficient contact, and the toll-free number --------------------------------
hipaa_campaign() { # NAME COUNT META
  { echo "ref,name,email,region,country,test_script"
    for i in $(seq "$2"); do echo "$1$i,Person $i,$1$i@example.com,TX,US,permanent"; done; } >"$1.csv"
  "$CRIER" campaign create "$1" --incident "INC-$1" --policy test --meta "$3" >/dev/null &&
    "$CRIER" campaign load "$1" --csv "$1.csv" >/dev/null && "$CRIER" campaign start "$1" >/dev/null
}
{ cat "$META"; echo "frameworks: [HIPAA]"; } >hipaa.yaml
{ cat hipaa.yaml; echo "toll_free_number: \"1-800-555-0199\""; } >hipaa_phone.yaml
hipaa_campaign hn 9 hipaa.yaml
hipaa_campaign hy 10 hipaa.yaml
hipaa_campaign hp 11 hipaa_phone.yaml
# hp11 is held from the start, which keeps hp running; hp1..hp10 fail for good
"$CRIER" hold place hp --recipient hp11 --authority FBI --official "SA Roe" --case K-8 --form written \
  --reason "investigation" >/dev/null
timeout 60 "$CRIER" run --until-idle >/dev/null 2>run4.log
hipaa_verdict() { "$CRIER" substitute "$1" --json | "$PY" -c "import json,sys
print([f['verdict'] for f in json.load(sys.stdin)['frameworks'] if f['jurisdiction']=='HIPAA'][0])"; }
is "$(hipaa_verdict hn)" "not required" "HIPAA, 9 without sufficient contact: not required"
is "$(hipaa_verdict hy)" required "HIPAA, 10 without sufficient contact: required"
run_crier substitute write hn --out "$WORK/hn"
is "$RC" 65 "nothing required: write refuses (65)"
like "$ERR" "required in no jurisdiction" "and says why"
run_crier substitute write hy --out "$WORK/hy"
is "$RC" 65 "HIPAA without toll_free_number in the meta: exit 65"
like "$ERR" "the campaign meta has no toll_free_number" "the error names the meta key"
ok "and nothing is written" test ! -e "$WORK/hy"
is "$(sql "SELECT count(*) FROM crier.campaign WHERE name = 'hy.substitute'")" 0 "and nothing is queued"
run_crier hold place hp --recipient hp1 --authority FBI --official "SA Roe" --case K-9 --form written \
  --reason "investigation"
is "$RC" 0 "a hold is placed on hp1, not reached"
run_crier substitute write hp --out "$WORK/hp"
is "$RC" 0 "HIPAA with the toll-free number: written"
is "$(sql "SELECT string_agg(ref, ' ' ORDER BY seq) FROM crier.recipient WHERE $(in_campaign hp.substitute)")" \
  "hp2 hp3 hp4 hp5 hp6 hp7 hp8 hp9 hp10" "the substitute email is queued for all but hp1, whom a hold covers"
like "$(cat hp/posting.html)" "1-800-555-0199</strong>, open for at least 90 days" "the posting gives the toll-free number"
like "$(cat hp/posting.html)" "stays posted on this website for at least 90 days" "and the 90-day posting period"
like "$(cat hp/media-TX.txt)" "call 1-800-555-0199 toll-free" "the media notice gives it too"
"$CRIER" substitute media hp --outlet "Houston Chronicle" --date "$today" --state TX >/dev/null
is "$("$CRIER" substitute hp --json | "$PY" -c "import json,sys
print([' / '.join(d['detail'] for d in f['done']) for f in json.load(sys.stdin)['frameworks']][0])")" \
  "media notice in Houston Chronicle on $today for TX" "HIPAA's entry shows the media notice given for it"
# HIPAA's posting stays up 90 days: the report flags a shorter one
short_of() { "$CRIER" substitute hp --json | "$PY" -c "import json,sys
print(len([f for f in json.load(sys.stdin)['frameworks'] if f['jurisdiction']=='HIPAA'][0]['posting_short']))"; }
"$CRIER" substitute posted hp --url https://example.com/n90 --from "$today" --until "$(date -u -d '+89 days' +%F)" >/dev/null
is "$(short_of)" 0 "a posting of exactly 90 days (first to last day) is long enough for HIPAA"
"$CRIER" substitute posted hp --url https://example.com/n30 --from "$today" --until "$(date -u -d '+29 days' +%F)" >/dev/null
is "$(short_of)" 1 "a posting of 30 days is flagged"
run_crier audit report hp
like "$OUT" "TOO SHORT: the website posting at https://example.com/n30 from $today until $(date -u -d '+29 days' +%F) stays up 30 days: fewer than the 90 required; keep it up until $(date -u -d '+89 days' +%F) or later" \
  "the report says the 30-day posting is too short, and until when it must stay up"

# --- a hold on the campaign holds its substitute email (016_substitute_holds.sql) ------------------
# The campaign hs has sent all it could (completed); its substitute email goes through a slow
# relay (0.25 s a message). While crier run sends it, legal places a region hold (NV) on hs:
# from the moment hold place returns, the relay gets no email for an NV resident, while UT's
# keep going; the lift sends NV's, once each.
mkdir -p "$WORK/slow"
start_peer slow "$PY" "$PEER" "$WORK/slow" 0 --delay 0.25
cap_port=$PORT
sub_config
{ echo "ref,name,email,region,country,test_script"
  for i in $(seq 12); do
    echo "hsn$i,Nevadan $i,hsn$i@example.com,NV,US,permanent"
    echo "hsu$i,Utahn $i,hsu$i@example.com,UT,US,permanent"
  done; } >hs.csv
setup hs test hs.csv
timeout 60 "$CRIER" run --until-idle >/dev/null 2>run5.log
is "$(sql "SELECT state FROM crier.campaign WHERE name = 'hs'")" completed "hs has tried everyone"
run_crier substitute write hs --out "$WORK/hs" --json
is "$("$PY" -c "import json,sys; print(json.loads(sys.argv[1])['email_queued'])" "$OUT")" 24 \
  "the substitute email of hs is queued for its 24 people"
got() { # PREFIX - the addresses starting with PREFIX the slow relay has received, sorted
  cat slow/*.json 2>/dev/null | "$PY" -c "import sys, json
d=json.JSONDecoder(); s=sys.stdin.read(); i=0; out=[]
while i < len(s):
    s2=s[i:].lstrip()
    if not s2: break
    o,n=d.raw_decode(s2); i=len(s)-len(s2)+n; out+=o['rcpt_tos']
print(' '.join(sorted(a for a in out if a.startswith('$1'))))"; }
count() { wc -w <<<"$1"; }
timeout 120 "$CRIER" run --until-idle >/dev/null 2>run6.log &
runpid=$!
for _ in $(seq 600); do [ "$(count "$(got hs)")" -ge 3 ] && break; sleep 0.05; done
as legal "$CRIER" hold place hs --region nv --authority "FBI Las Vegas" --official "SA Poe" \
  --case LV-7 --form written --reason "notice would alert the suspects" >place.out 2>place.err
is "$?" 0 "legal places a region hold on hs while its substitute email is being sent"
nv_at_place=$(got hsn)
hold=$(sed -n 's/^hold \([0-9]*\) placed on.*/\1/p' place.out)
companion=$(sql "SELECT id FROM crier.hold WHERE parent_hold_id = $hold")
like "$(cat place.out)" "holds the substitute email too: hold $companion on campaign hs.substitute follows it" \
  "hold place says the hold follows the campaign into its substitute email"
wait "$runpid"
is "$?" 0 "crier run stops when only held notices are left"
is "$(got hsn)" "$nv_at_place" "no email reached an NV resident after hold place returned"
ok "and the hold held some: $(count "$nv_at_place") of 12 NV emails had gone before it" \
  test "$(count "$nv_at_place")" -lt 12
is "$(count "$(got hsu)")" 12 "the region hold held NV only: all 12 UT residents got theirs"
held=$((12 - $(count "$nv_at_place")))
is "$("$CRIER" status hs.substitute --json | "$PY" -c "import json,sys; d=json.load(sys.stdin)
print(d['by_state']['held'], d['holds']['active'])")" "$held 1" \
  "status of hs.substitute: the unsent NV emails are held, by one active hold"
run_crier audit report hs --json
is "$("$PY" -c "import json,sys; e=json.loads(sys.argv[1])['substitute']['substitute_email']
print(e['queued'], e['held'])" "$OUT")" "24 $held" "audit report of hs: the substitute email's held emails"
run_crier audit report hs
like "$OUT" "substitute email: campaign hs.substitute \(running\): 24 queued, $((24 - held)) sent, 0 undeliverable, $held held by a law-enforcement hold" \
  "and its text says so"
is "$(sql "SELECT region || ' ' || authority || ' ' || placed_by FROM crier.hold WHERE id = $companion")" \
  "NV FBI Las Vegas t_legal_$$" "the companion has the hold's scope, agency and placer"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE hold_id = $companion AND notice_id IS NULL
           AND $(in_campaign hs.substitute)")" 1 "its placement is in the email campaign's log"
run_crier hold list hs.substitute
like "$OUT" "$companion +hs.substitute +region NV .*follows $hold" "hold list: the companion follows the hold"
run_crier hold show "$hold" --json
is "$("$PY" -c "import json,sys; d=json.loads(sys.argv[1])['substitute_hold']; print(d['hold'], d['campaign'])" "$OUT")" \
  "$companion hs.substitute" "hold show --json names the companion"
# an oral recipient hold: confirmed and lifted with its parent, never on its own
run_crier hold place hs --recipient hsu1 --authority FBI --official "SA Poe" --case LV-8 --form oral \
  --reason "a second suspect"
oral=$(sed -n 's/^hold \([0-9]*\) placed on.*/\1/p' <<<"$OUT"); oral_c=$(sql "SELECT id FROM crier.hold WHERE parent_hold_id = $oral")
ok "an oral recipient hold has a companion too" test -n "$oral_c"
echo "the agency's letter" >letter.txt
run_crier hold confirm "$oral_c" --written --document letter.txt
is "$RC" 65 "the companion cannot be confirmed on its own (65)"
run_crier hold confirm "$oral" --written --document letter.txt
is "$RC" 0 "the hold is confirmed in writing"
is "$(sql "SELECT f.document_sha256 = p.document_sha256 FROM crier.hold_confirm f, crier.hold_confirm p
           WHERE f.hold_id = $oral_c AND p.hold_id = $oral")" t "its companion is confirmed with it, by the same letter"
run_crier hold lift "$oral" --evidence "cleared"
is "$(sql "SELECT count(*) FROM crier.hold_lift WHERE hold_id IN ($oral, $oral_c)")" 2 "and lifted with it"
as legal "$CRIER" hold lift "$companion" --evidence "cleared" >/dev/null 2>lift.err
is "$?" 65 "the companion cannot be lifted on its own (65)"
like "$(cat lift.err)" "follows hold $hold .*lift hold $hold" "and the error says which hold to lift"
as legal "$CRIER" hold lift "$hold" --evidence "the agency cleared it" >lift.out 2>>lift.err
is "$?" 0 "legal lifts the hold"
like "$(cat lift.out)" "hold $companion on campaign hs.substitute \(its substitute email\) lifted with it: $held notices? released" \
  "the lift says the companion was lifted too, with the emails it released"
timeout 60 "$CRIER" run --until-idle >/dev/null 2>run7.log
is "$(count "$(got hsn)") $(count "$(got hsu)")" "12 12" "after the lift every NV resident has the email"
is "$(got hsn | tr ' ' '\n' | sort | uniq -d)" "" "nobody got it twice"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign hs.substitute) AND to_state = 'sending'
           AND reason LIKE 'delayed for law enforcement by hold $companion%'")" "$held" \
  "the emails the hold kept back went out marked delayed by the companion"
ok "nobody changes a companion, not even the owner" \
  bash -c "! psql -XAtq -v ON_ERROR_STOP=1 -c \"UPDATE crier.hold SET region = 'CA' WHERE id = $companion\" 2>/dev/null"
ok "nobody writes a companion that differs from its hold: the database copies the hold" \
  test "$(sql "INSERT INTO crier.hold (campaign_id, parent_hold_id, authority, official, case_ref, form,
               reason, region) SELECT campaign_id, $oral_c, 'x', 'x', 'x', 'written', 'x', 'ZZ'
               FROM crier.hold WHERE id = $oral_c RETURNING id" 2>&1 | grep -c 'can only be followed')" = 1

# --- write leaves no partial state: the set is staged beside DIR, moved in after the record -------
records() { sql "SELECT count(*) FROM crier.substitute_record WHERE $(in_campaign hs)"; }
before=$(records)
mkdir -p "$WORK/hsx/posting.html"
run_crier substitute write hs --out "$WORK/hsx"
is "$RC" 74 "a directory where posting.html goes: write fails (74)"
like "$ERR" "hsx/posting.html: exists and is not a regular file: nothing written" "and names the file"
is "$(find "$WORK/hsx" -mindepth 1 | sed "s|$WORK/||")" "hsx/posting.html" "nothing else is in DIR"
is "$(records)" "$before" "and nothing is recorded"
( ulimit -f 1; trap '' XFSZ; exec "$CRIER" substitute write hs --out "$WORK/hsy" ) >/dev/null 2>full.err
is "$?" 74 "a file that cannot be written whole (a 1 KiB file size limit): write fails (74)"
like "$(cat full.err)" "cannot write" "and says which file"
ok "no DIR and no staging directory are left" \
  test -z "$(find "$WORK" -maxdepth 1 -name '*hsy*')"
is "$(records)" "$before" "and nothing is recorded"
run_crier substitute write hs --out "$WORK/hsz"
is "$RC" 0 "a write that succeeds moves the set into DIR"
is "$(find "$WORK/hsz" -type f -printf '%f\n' | sort | tr '\n' ' ')" "media-NV.txt media-UT.txt posting.html " \
  "the whole set is in DIR"
ok "and no staging directory is left" test -z "$(find "$WORK" -maxdepth 1 -name '.hsz.tmp-*')"
is "$(stat -c %a "$WORK/hsz")" 755 "DIR is readable by all, as a posting's directory must be (not mkdtemp's 0700)"
is "$(sql "SELECT content_sha256 FROM crier.dispatch_log WHERE $(in_campaign hs) AND event = 'substitute'
           AND detail = 'wrote posting.html' ORDER BY id DESC LIMIT 1")" \
  "$(sha256sum "$WORK/hsz/posting.html" | cut -d' ' -f1)" "the file in DIR is the one logged"

# --- the posting in headless Chromium (tests/browser/posting.py) -----------------------------------
if /usr/bin/python3 -c 'import selenium' 2>/dev/null && [ -x /usr/bin/chromedriver ]; then
  TAP_START=$TAP_COUNT TOLL_FREE=1-800-555-0199 SHOTS="${CRIER_ARTIFACTS:-$WORK/shots}" HOME="$WORK" \
    /usr/bin/python3 "$TESTS_DIR/browser/posting.py" "$WORK/hp/posting.html" >posting.tap 2>posting.err
  grep -E '^(not )?ok |^#' posting.tap
  TAP_COUNT=$(sed -n 's/^TAP_COUNT //p' posting.tap)
  TAP_FAILED=$((TAP_FAILED + $(grep -c '^not ok' posting.tap)))
  [ -n "$TAP_COUNT" ] || { echo "Bail out! the browser test did not finish: $(tail -5 posting.err)"; exit 1; }
else
  echo "# SKIP the posting in Chromium: python3-selenium or chromium-driver is not installed"
fi

done_testing
