#!/bin/bash
# regulators.sh - `crier regulators` (issue 14, docs/jurisdictions.md): a campaign over eleven
# states and DC, one person in Germany, sent through the test channel, judged by the SHIPPED
# rules table (config/jurisdictions.yaml). The packet holds a PDF for every notice due and
# nothing else; each PDF's text (pdftotext) names the regulator and the jurisdiction, gives
# the residents and the notice dates as SQL counts them, carries the sample notice with
# placeholders and no one's real name; counts.csv matches SQL; hhs-breach-portal.csv under
# HIPAA; every file is in the dispatch log with its SHA-256; mark-filed is logged and checks
# its input; the sealed log still verifies.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

if ! command -v pdftotext >/dev/null; then
  echo "1..0 # SKIP pdftotext is missing (Debian: poppler-utils)"
  exit 0
fi
"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
write_config "channels:
  test: {lanes: 1, batch_size: 10}"

# MD, LA and NY require notice at any number; CO and FL at 500 or more, RI above 500, DC at 50
# or more (not reached); TX at 250 or more; WI none; AR unknown; DE (country) is GDPR
cat >people.csv <<'CSV'
ref,name,email,region,country,test_script,member_id
ca1,Alice Zephyr,ca1@example.com,CA,US,accepted,M-1
ca2,Bruno Yarrow,ca2@example.com,CA,US,accepted,M-2
co1,Carla Xu,co1@example.com,CO,US,accepted,M-3
fl1,Dario Wells,fl1@example.com,FL,US,accepted,M-4
md1,Elena Vance,md1@example.com,MD,US,accepted,M-5
md2,Farid Underhill,md2@example.com,MD,US,permanent,M-6
la1,Greta Torvalds,la1@example.com,LA,US,accepted,M-7
ny1,Hiro Sato,ny1@example.com,NY,US,accepted,M-8
ny2,Ines Ruiz,ny2@example.com,NY,US,accepted,M-9
ny3,Jonas Quist,ny3@example.com,NY,US,accepted,M-10
tx1,Kofi Pratt,tx1@example.com,TX,US,accepted,M-11
ri1,Lena Olsen,ri1@example.com,RI,US,accepted,M-12
wi1,Mateo Novak,wi1@example.com,WI,US,accepted,M-13
ar1,Nadia Moss,ar1@example.com,AR,US,accepted,M-14
dc1,Omar Lund,dc1@example.com,DC,US,accepted,M-15
de1,Petra Kunz,de1@example.com,,DE,accepted,M-16
CSV
setup reg test people.csv
timeout 60 "$CRIER" run --until-idle >/dev/null 2>run.log
is "$?" 0 "crier run sends the campaign"

run_crier regulators reg --out "$WORK/packet" --framework HIPAA
is "$RC" 0 "crier regulators writes the packet"
is "$(find packet -type f -printf '%f\n' | sort | tr '\n' ' ')" \
  "GDPR-the_supervisory_authority.pdf HIPAA-HHS__Secretary_.pdf LA-Attorney_General.pdf MD-Attorney_General.pdf NY-Attorney_General.pdf NY-Department_of_State.pdf NY-Division_of_State_Police.pdf counts.csv hhs-breach-portal.csv " \
  "a PDF for each notice due under the shipped table (MD, LA, NY any number; GDPR; HHS), the CSVs, nothing for CO, FL, RI, DC, TX, WI, AR"

# --- the letters: pdftotext against SQL ------------------------------------------------------------
residents() { sql "SELECT count(*) FROM crier.recipient WHERE $(in_campaign reg) AND region = '$1'"; }
sent_on() {
  sql "SELECT coalesce(to_char(min(d.at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ' to ' ||
              to_char(max(d.at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'none')
       FROM crier.dispatch_log d JOIN crier.notice n ON n.id = d.notice_id
       JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
       WHERE d.$(in_campaign reg) AND r.region = '$1' AND d.event = 'transition'
       AND d.to_state IN ('sent', 'delivered', 'mailed')"
}
for f in MD-Attorney_General LA-Attorney_General NY-Attorney_General NY-Department_of_State NY-Division_of_State_Police; do
  code=${f%%-*}
  pdftotext -layout "packet/$f.pdf" "$f.txt"
  text=$(tr -s ' \n' ' ' <"$f.txt")
  like "$text" "Residents affected: $(residents "$code") " "$f: the residents affected, as SQL counts them"
  like "$text" "Individual notices sent: from $(sent_on "$code") " "$f: the dates the notices went out, from the log"
  like "$text" "Sample of the notice to residents Notice of Data Breach" "$f: carries the sample notice"
  like "$text" "Dear \[Name of the resident\]" "$f: the sample has a placeholder for the person"
  ok "$f: no one's real name or member id is in it" \
    bash -c "! grep -Eq 'Zephyr|Vance|Underhill|Torvalds|Sato|Ruiz|Quist|M-[0-9]' '$f.txt'"
done
text=$(tr -s ' \n' ' ' <MD-Attorney_General.txt)
like "$text" "To the Attorney General, Maryland, from Example Corp\." "the MD letter is addressed to Maryland's AG"
like "$text" "Citation: Md\. Code, Com\. Law § 14-3504" "the MD letter cites the statute the table gives"
like "$text" "Dates of the breach: between 2026-11-02 and 2026-11-18" "the incident dates from the campaign meta"
like "$text" "Deadline: unknown to the rules table: check counsel" "a deadline the table does not know says so"
pdftotext -layout packet/LA-Attorney_General.pdf - | tr -s ' \n' ' ' >la.txt
la_last=$(sql "SELECT to_char(max(d.at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM crier.dispatch_log d
               JOIN crier.notice n ON n.id = d.notice_id JOIN crier.recipient r
               ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
               WHERE d.$(in_campaign reg) AND r.region = 'LA' AND d.to_state = 'sent'")
like "$(cat la.txt)" "Deadline: 10 days from individual-notice, due by $(date -u -d "$la_last + 10 days" +%F)" \
  "LA: within 10 days of notifying residents, dated from the last LA notice"
pdftotext -layout packet/HIPAA-HHS__Secretary_.pdf - | tr -s ' \n' ' ' >hhs.txt
like "$(cat hhs.txt)" "Individuals affected \(all jurisdictions\): 16 " "HHS: counted over the whole campaign"
like "$(cat hhs.txt)" "NOT VERIFIED: counsel must confirm before filing" "an unverified rule is flagged in the letter itself"

# --- counts.csv against SQL ---------------------------------------------------------------------
csv_col() { "$PY" -c "import csv,sys; rows=list(csv.DictReader(open('packet/counts.csv'))); print(' '.join(r[sys.argv[1]] for r in rows if r['jurisdiction'] == sys.argv[2]))" "$1" "$2"; }
for code in MD LA NY; do
  n=$(residents "$code")
  notified=$(sql "SELECT count(*) FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id
                  AND r.seq = n.recipient_seq WHERE n.$(in_campaign reg) AND r.region = '$code'
                  AND n.state IN ('sent', 'delivered', 'mailed')")
  nocontact=$(sql "SELECT count(*) FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id
                   AND r.seq = n.recipient_seq WHERE n.$(in_campaign reg) AND r.region = '$code'
                   AND n.state = 'undeliverable'")
  rows=$(csv_col regulator "$code" | wc -w)
  is "$(csv_col residents "$code" | cut -d' ' -f1):$(csv_col notified "$code" | cut -d' ' -f1):$(csv_col no_usable_contact "$code" | cut -d' ' -f1)" \
    "$n:$notified:$nocontact" "counts.csv $code: residents, notified, without usable contact as SQL counts them"
  [ "$rows" -ge 1 ] || echo "# no row for $code"
done
is "$(csv_col threshold NY)" "any number any number any number" "counts.csv: NY's three notices at any number"
is "$(csv_col count GDPR):$(csv_col counted GDPR)" "16:campaign" "counts.csv: GDPR's supervisory authority counted over the campaign"
is "$("$PY" -c "import csv; print(len(list(csv.DictReader(open('packet/counts.csv')))))")" 7 \
  "counts.csv: one row per notice due"
is "$("$PY" -c "import csv; d=dict(csv.reader(open('packet/hhs-breach-portal.csv'))); print(d['approximate_number_of_individuals_affected'], '|', d['name_of_covered_entity'], '|', d['safeguards_in_place_prior_to_breach'])")" \
  "16 | Example Corp | (not known to crier: fill in)" "the HHS portal's fields: the count, the organisation, and what crier cannot know said so"

# --- the dispatch log: every file with its SHA-256 -------------------------------------------------
logged=$(sql "SELECT substring(detail FROM '^packet ([^:]+):') || ' ' || content_sha256 FROM crier.dispatch_log
              WHERE $(in_campaign reg) AND event = 'regulator' AND to_state = 'packet' ORDER BY 1")
is "$logged" "$(cd packet && sha256sum -- * | awk '{print $2 " " $1}' | sort)" \
  "each file of the packet is in the dispatch log with its SHA-256"

run_crier regulators mark-filed reg --jurisdiction MD --regulator "Attorney General" --date "$(date -u +%F)" \
  --how portal --reference "MD-AG-2026-0042"
is "$RC:$OUT" "0:reg: filed MD Attorney General on $(date -u +%F) via portal, reference MD-AG-2026-0042 (logged)" \
  "mark-filed records the filing"
is "$(sql "SELECT actor <> '' AND detail = 'filed MD Attorney General on $(date -u +%F) via portal, reference MD-AG-2026-0042'
           FROM crier.dispatch_log WHERE $(in_campaign reg) AND event = 'regulator' AND to_state = 'filed'")" \
  "t" "the filing is a dispatch-log row, with who did it"
"$CRIER" audit report reg --json --framework HIPAA >report.json
is "$("$PY" -c "import json; d=json.load(open('report.json')); print(sorted((x['jurisdiction'], x['name'], x['filed']) for x in d['flags']['due'] if x['jurisdiction'] in ('MD', 'LA', 'HIPAA')))")" \
  "[('HIPAA', 'HIPAA: HHS (Secretary)', None), ('LA', 'Attorney General', None), ('MD', 'Attorney General', 'MD Attorney General on $(date -u +%F) via portal, reference MD-AG-2026-0042')]" \
  "the report shows the MD filing beside its notice, and the others as not filed"
run_crier regulators mark-filed reg --jurisdiction MD --regulator "Attorney General" --date "$(date -u -d '+5 days' +%F)" \
  --how portal --reference X
is "$RC:$ERR" "65:crier regulators mark-filed: --date must be the day it was filed, YYYY-MM-DD, not in the future" \
  "a filing in the future is refused"
run_crier regulators mark-filed reg --jurisdiction MD --regulator "Attorney General" --date "$(date -u +%F)" \
  --how pigeon --reference X
is "$RC" 65 "an unknown way of filing is refused"
run_crier regulators mark-filed nope --jurisdiction MD --regulator AG --date "$(date -u +%F)" --how mail --reference X
is "$RC:$ERR" "65:crier regulators mark-filed: no campaign named 'nope'" "an unknown campaign is refused"
run_crier regulators reg
is "$RC" 64 "--out is required"

"$CRIER" audit seal >/dev/null
run_crier audit verify --campaign reg
is "$RC" 0 "the sealed log verifies with the regulator rows in it"

# --- campaign start checks the content rules against the templates (engine/core/content.c) ---------
# an MA email that says what happened: refused, FILE:LINE:COL, the campaign stays a draft
cp -r "$TESTS_DIR/../config/templates/default" tpl
printf 'It happened like this: {{meta.what_happened}}\n' >>tpl/email.MA.txt
ma_line=$(grep -c '' tpl/email.MA.txt)
printf 'ref,name,email,region\nm1,Mo,m1@example.com,MA\n' >ma.csv
"$CRIER" campaign create ma --incident INC-ma --policy email --templates "$WORK/tpl" --meta "$META" >/dev/null &&
  "$CRIER" campaign load ma --csv ma.csv >/dev/null
run_crier campaign start ma
is "$RC" 65 "campaign start refuses a template that breaks a content rule"
like "$ERR" "^$WORK/tpl/email.MA.txt:$ma_line:24: MA: the notice must not state the nature of the breach, and \{\{meta.what_happened\}\} does" \
  "the MA rule is named at FILE:LINE:COL"
is "$(sql "SELECT state FROM crier.campaign WHERE name = 'ma'")" "draft" "the campaign stays a draft"
# HIPAA declared: the MA templates lack what happened (45 CFR 164.404(c))
cp "$META" hipaa.yaml
printf 'frameworks: "HIPAA"\n' >>hipaa.yaml
"$CRIER" campaign create hma --incident INC-hma --policy email --meta hipaa.yaml >/dev/null &&
  "$CRIER" campaign load hma --csv ma.csv >/dev/null
run_crier campaign start hma
is "$RC" 65 "a HIPAA campaign whose MA template lacks a 164.404(c) element is refused"
like "$ERR" "email\.MA\.txt:1:1: HIPAA: the notice lacks what happened" "the missing element is named"

# --- hold show: the deadlines that run from a clearance (MD 7 days, ME 7 business days) -----------
"$CRIER" campaign create clr --incident INC-clr --policy test >/dev/null &&
  "$CRIER" campaign load clr --csv people.csv >/dev/null
declare -A held
for region in MD ME TX; do
  run_crier hold place clr --region "$region" --authority "FBI" --official "SA Roe" --case "K-$region" \
    --form written --reason "impede"
  hold=$(sql "SELECT max(id) FROM crier.hold")
  run_crier hold lift "$hold" --evidence "AUSA: go ahead"
  held[$region]=$hold
done
today=$(date -u +%F)
me_due=$("$PY" -c "
import datetime as t
d, n = t.date.fromisoformat('$today'), 0
while n < 7:
    d += t.timedelta(days=1)
    n += d.weekday() < 5
print(d)")
run_crier hold show "${held[MD]}"
like "$OUT" "clearance:  MD: notice within 7 days of the clearance \($today\): due by $(date -u -d "$today + 7 days" +%F)" \
  "hold show: MD's 7 days from the lift"
run_crier hold show "${held[ME]}" --json
is "$("$PY" -c "import json,sys; print(json.loads(sys.argv[1])['clearance_deadlines'])" "$OUT")" \
  "[{'jurisdiction': 'ME', 'rule': '7 business days', 'lifted': '$today', 'due_by': '$me_due'}]" \
  "hold show --json: ME's 7 business days from the lift (the campaign has no ME resident, the hold's region counts)"
run_crier hold show "${held[TX]}"
ok "hold show: TX has no clearance rule in the table, none shown" bash -c "! grep -q clearance: <<<'$OUT'"

done_testing
