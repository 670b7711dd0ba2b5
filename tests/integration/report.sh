#!/bin/bash
# report.sh - `crier audit report` (issue 7, docs/audit-report.md): a known campaign sent
# through the scripted test channel, people in several regions, some undeliverable, two
# overlapping holds placed (backdated) and lifted; every figure of the report's JSON is
# checked against what this script computes itself from the database with psql: counts by
# state, channel and jurisdiction, the undeliverable people and their last reason, each
# person's days from discovery to notice with hold time taken out (overlapping holds once),
# the late and overdue lists; the threshold and substitute-notice flags above and below
# their thresholds; no discovery date; the HTML rendered by headless Chromium (DOM, a PNG
# that shows the chart and the hold shading, no network); a LOGIN member of crier_auditor
# runs it; it writes nothing.
# The PNG is kept in $CRIER_ARTIFACTS (default /tmp) as report-<pid>.png for a person.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

# --- the rules table of this test (schema 2, docs/jurisdictions.md): thresholds low enough to
# cross with a dozen people; MA knows no regulator, a region missing from the table is unknown
cat >deadlines.yaml <<'YAML'
schema: 2
caveat: "TEST TABLE: must be checked by counsel"
jurisdictions:
  CA:
    name: California
    citation: "Cal. Civ. Code § 1798.82"
    source: {kind: source-check, text: test}
    checked: 2026-12-02
    verified: true
    individual: {deadline: "30 days", from: discovery}
    regulators:
      - {name: Attorney General, threshold: "more than 3", deadline: "15 days", from: individual-notice, order: after}
    credit_reporting_agencies: {threshold: "more than 4"}
    substitute_notice: {people_above: 500000, insufficient_contact: true, consists_of: "email, website, media"}
    law_enforcement_delay: {allowed: true, after_clearance: "7 days"}
    content: unknown
  NY:
    name: New York
    citation: "N.Y. Gen. Bus. Law § 899-aa"
    source: {kind: source-check, text: test}
    checked: 2026-12-02
    verified: false
    individual: {deadline: "30 days", from: unknown}
    regulators:
      - {name: Attorney General, threshold: "5 or more", deadline: unknown, order: unknown}
    credit_reporting_agencies: {threshold: "4 or more"}
    substitute_notice: unknown
    law_enforcement_delay: unknown
    content: unknown
  TX:
    name: Texas
    citation: "Tex. Bus. & Com. Code § 521.053"
    source: {kind: source-check, text: test}
    checked: 2026-12-02
    verified: true
    individual: {deadline: "60 days", from: determination}
    regulators:
      - {name: Attorney General, threshold: "250 or more", deadline: "30 days", from: determination, order: unknown}
    credit_reporting_agencies: unknown
    substitute_notice: unknown
    law_enforcement_delay: unknown
    content: unknown
  MA:
    name: Massachusetts
    citation: "Mass. Gen. Laws ch. 93H, § 3"
    source: {kind: secondary, text: test}
    checked: 2026-12-02
    verified: false
    individual: {deadline: "as soon as practicable", from: unknown}
    regulators: unknown
    credit_reporting_agencies: unknown
    substitute_notice: unknown
    law_enforcement_delay: unknown
    content: unknown
frameworks:
  HIPAA:
    name: HIPAA
    citation: "45 C.F.R. § 164.404(b)"
    source: {kind: source-check, text: test}
    checked: 2026-12-02
    verified: false
    individual: {deadline: "60 days", from: discovery}
    regulators:
      - {name: HHS, threshold: "any number", deadline: unknown, order: unknown, counted: campaign}
      - {name: media, threshold: "more than 3", deadline: unknown, order: unknown, counted: residents}
    credit_reporting_agencies: unknown
    substitute_notice: {out_of_date_contact_at_least: 10}
    law_enforcement_delay: {allowed: true, after_clearance: unknown, oral_lapse_days: 30}
    content: unknown
abroad:
  GDPR:
    name: GDPR
    countries: [DE, FR]
    citation: "Regulation (EU) 2016/679, Art. 33 and 34"
    source: {kind: source-check, text: test}
    checked: 2026-12-02
    verified: true
    individual: {deadline: "without undue delay", from: unknown}
    regulators:
      - {name: supervisory authority, threshold: "any number", deadline: "72 hours", from: awareness, order: unknown, counted: campaign}
    credit_reporting_agencies: unknown
    substitute_notice: unknown
    law_enforcement_delay: unknown
    content: unknown
YAML
mkdir -p "$WORK/spool"
write_config "channels:
  test: {lanes: 1, batch_size: 5}
  mail: {lanes: 1, spool: $WORK/spool, batch_window: 1s, return_address: 'Example Corp, 1 Main St'}
report:
  deadlines: $WORK/deadlines.yaml
  list_limit: 50"

# policy test alone: a permanent failure on test has no channel left
cat >people.csv <<'CSV'
ref,name,email,region,test_script
ca1,Ann Lee,ca1@example.com,CA,accepted
ca2,Bob Ray,ca2@example.com,ca,delivered
ca3,Chloé García,ca3@example.com,CA,accepted
ca4,"<b>O'Brien & ""Co""</b>",ca4@example.com,CA,permanent
ny1,Dmitri Smith,ny1@example.com,NY,accepted
ny2,Eoin Tanaka,ny2@example.com,NY,delivered
ny3,Fatima Okafor,ny3@example.com,NY,accepted
ny4,Giang Nguyễn,ny4@example.com,NY,permanent
tx1,Hana Kowalska,tx1@example.com,TX,delivered
tx2,Iwona Lee,tx2@example.com,TX,accepted
ma1,José Ray,ma1@example.com,MA,accepted
un1,Nobody Knows,un1@example.com,,accepted
un2,Nowhere Known,un2@example.com, ,permanent
CSV
setup rep test people.csv
CAMPAIGN_ID=$(sql "SELECT id FROM crier.campaign WHERE name = 'rep'")
DISCOVERED=$(date -u -d '50 days ago' +%F)

# two holds, backdated as the superuser with the stamping trigger disabled for the moment (as
# holds.sh does): region CA from 40 days ago, recipient ca1 from 45 days ago (they overlap)
sql "BEGIN; ALTER TABLE crier.hold DISABLE TRIGGER hold_stamp;
     INSERT INTO crier.hold (campaign_id, region, authority, official, case_ref, form, reason,
                             placed_at, placed_by, placed_role)
     VALUES ($CAMPAIGN_ID, 'CA', 'FBI <Field> Office', 'SA Roe', 'K-1', 'written', 'impede',
             now() - interval '40 days', 'postgres', 'postgres');
     INSERT INTO crier.hold (campaign_id, recipient_ref, authority, official, case_ref, form,
                             reason, placed_at, placed_by, placed_role)
     VALUES ($CAMPAIGN_ID, 'ca1', 'FBI', 'SA Roe', 'K-2', 'written', 'impede',
             now() - interval '45 days', 'postgres', 'postgres');
     ALTER TABLE crier.hold ENABLE TRIGGER hold_stamp; COMMIT;" >/dev/null
is "$(sql "SELECT count(*) FROM crier.hold WHERE campaign_id = $CAMPAIGN_ID")" 2 "two backdated holds placed"

timeout 60 "$CRIER" run --until-idle >/dev/null 2>run.log
is "$?" 0 "crier run goes idle with the CA notices held"

# report_json [ARGS...] - crier audit report rep --json ARGS; the object in $WORK/report.json
report_json() {
  "$CRIER" audit report rep --json "$@" >"$WORK/report.json" 2>"$WORK/report.err"
  RC=$?
}
# jq_py EXPR - a Python expression over d, the last report's JSON
jq_py() { "$PY" -c "import json,sys; d=json.load(open('$WORK/report.json')); print($1)"; }

report_json --discovered "$DISCOVERED"
is "$RC" 0 "audit report --json while the holds hold"
is "$(jq_py 'd["by_state"]["held"], d["by_jurisdiction"]["CA"]["by_state"]["held"]')" \
  "$(sql "SELECT count(*) || ' ' || count(*) FROM crier.notice n JOIN crier.recipient r
          ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
          WHERE n.campaign_id = $CAMPAIGN_ID AND n.state = 'ready' AND upper(r.region) = 'CA'" | tr '|' ' ')" \
  "held is derived, as status does: the ready CA notices under the holds (4)"
is "$(jq_py 'd["by_jurisdiction"]["CA"]["pending_within_deadline"], d["by_jurisdiction"]["CA"]["overdue_not_notified"]')" \
  "4 0" "held CA people, 50 days after discovery but 40 of them held: within the deadline"
"$CRIER" status rep --json >status.json
is "$("$PY" -c "import json; print(json.load(open('status.json'))['by_state'])")" \
  "$(jq_py 'd["by_state"]')" "the report's counts by state equal crier status's"

# lift both (as crier hold lift does it), and send the rest
run_crier hold lift "$(sql "SELECT id FROM crier.hold WHERE region = 'CA' AND campaign_id = $CAMPAIGN_ID")" --evidence "AUSA: go ahead"
is "$RC" 0 "the CA hold is lifted"
run_crier hold lift "$(sql "SELECT id FROM crier.hold WHERE recipient_ref = 'ca1' AND campaign_id = $CAMPAIGN_ID")" --evidence "AUSA: go ahead"
is "$RC" 0 "the ca1 hold is lifted"
timeout 60 "$CRIER" run --until-idle >/dev/null 2>>run.log
is "$(sql "SELECT state FROM crier.campaign WHERE id = $CAMPAIGN_ID")" completed "the campaign completes"

# a campaign without a discovery date (its meta has none), for later
printf 'ref,name,email,region\nz1,Zed,z1@example.com,CA\n' >nometa.csv
"$CRIER" campaign create nometa --incident INC-x --policy test >/dev/null &&
  "$CRIER" campaign load nometa --csv nometa.csv >/dev/null
log_rows_before=$(sql "SELECT count(*) || ':' || max(id) FROM crier.dispatch_log")
report_json --discovered "$DISCOVERED"
is "$RC" 0 "audit report --json exits 0"

# --- counts ---------------------------------------------------------------------------------
IN="n.campaign_id = $CAMPAIGN_ID"
JOIN="crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq"
is "$(jq_py 'd["total"]')" "$(sql "SELECT count(*) FROM crier.notice n WHERE $IN")" "total"
is "$(jq_py '" ".join(k + "=" + str(v) for k, v in sorted(d["by_state"].items()) if v)')" \
  "$(sql "SELECT string_agg(state || '=' || c, ' ' ORDER BY state) FROM
          (SELECT state, count(*) c FROM crier.notice n WHERE $IN GROUP BY state) s")" "counts by state"
is "$(jq_py '" ".join(ch + "." + k + "=" + str(v) for ch in sorted(d["by_channel"]) for k, v in sorted(d["by_channel"][ch].items()) if v)')" \
  "$(sql "SELECT string_agg(channel || '.' || state || '=' || c, ' ' ORDER BY channel, state) FROM
          (SELECT channel, state, count(*) c FROM crier.notice n WHERE $IN GROUP BY 1, 2) s")" \
  "counts by channel and state"
is "$(jq_py '" ".join(g + "." + k + "=" + str(v) for g in sorted(d["by_jurisdiction"]) for k, v in sorted(d["by_jurisdiction"][g]["by_state"].items()) if v)')" \
  "$(sql "SELECT string_agg(g || '.' || state || '=' || c, ' ' ORDER BY g, state) FROM
          (SELECT coalesce(nullif(upper(btrim(r.region)), ''), 'unknown') g, n.state, count(*) c
           FROM $JOIN WHERE $IN GROUP BY 1, 2) s")" \
  "counts by jurisdiction and state (region upper-cased, blank = unknown)"

# --- undeliverable: who, and the last reason the log gives ------------------------------------
is "$(jq_py '" | ".join(p["ref"] + ": " + p["last_reason"] for p in d["undeliverable"]["people"])')" \
  "$(sql "SELECT string_agg(r.ref || ': ' || (SELECT reason FROM crier.dispatch_log d WHERE d.notice_id = n.id
          AND d.reason IS NOT NULL ORDER BY d.id DESC LIMIT 1), ' | ' ORDER BY n.id)
          FROM $JOIN WHERE $IN AND n.state = 'undeliverable'")" "the undeliverable people and their last reason"
like "$(jq_py '"; ".join(d["undeliverable"]["people"][0]["reasons"])')" "test: .*permanent.*no channel left" \
  "the notice's reasons are listed, one per channel left"
is "$(jq_py 'd["undeliverable"]["count"], d["no_usable_contact"], d["returned_letters"]')" "3 3 0" \
  "3 undeliverable, 3 without usable contact, no letter returned"

# --- timeliness, computed here in SQL: notice = first success on the channel it ended on;
# hold time = the union of the lawful periods of the holds covering the person (islands), within
# [discovery 00:00 UTC, notice or now]; day = floor((notice - discovery - held) / 1 day)
TIMELINESS_SQL="
WITH p AS (
  SELECT n.id, r.ref, n.state, coalesce(nullif(upper(btrim(r.region)), ''), 'unknown') AS g,
         upper(r.region) AS region_upper,
         CASE WHEN n.state IN ('sent', 'delivered', 'mailed') THEN
           (SELECT min(d.at) FROM crier.dispatch_log d WHERE d.notice_id = n.id AND d.event = 'transition'
             AND d.to_state IN ('sent', 'delivered', 'mailed') AND d.channel = n.channel) END AS notified_at
  FROM $JOIN WHERE $IN),
q AS (SELECT p.*, coalesce(notified_at, now()) AS end_at FROM p),
iv AS (
  SELECT q.ref, greatest(h.placed_at, '$DISCOVERED'::timestamptz) AS s,
         least(coalesce(l.lifted_at, now()), q.end_at) AS e
  FROM q JOIN crier.hold h ON h.campaign_id = $CAMPAIGN_ID
       AND ((h.region IS NULL AND h.recipient_ref IS NULL) OR h.region = q.region_upper OR h.recipient_ref = q.ref)
  LEFT JOIN crier.hold_lift l ON l.hold_id = h.id),
ordered AS (
  SELECT ref, s, e, max(e) OVER (PARTITION BY ref ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
  FROM iv WHERE e > s),
islands AS (
  SELECT ref, s, e, sum(CASE WHEN before IS NULL OR s > before THEN 1 ELSE 0 END)
         OVER (PARTITION BY ref ORDER BY s, e) AS island FROM ordered),
held AS (
  SELECT ref, sum(extract(epoch FROM e - s)) AS seconds FROM
    (SELECT ref, island, min(s) AS s, max(e) AS e FROM islands GROUP BY ref, island) x GROUP BY ref),
deadline(g, days) AS (VALUES ('CA', 30), ('NY', 30), ('TX', 60)),
t AS (
  SELECT q.*, coalesce(held.seconds, 0) AS held_seconds, dl.days,
         floor((extract(epoch FROM q.end_at - '$DISCOVERED'::timestamptz) - coalesce(held.seconds, 0)) / 86400)::int AS day
  FROM q LEFT JOIN held USING (ref) LEFT JOIN deadline dl USING (g))"
tsql() { sql "$TIMELINESS_SQL $1"; }

is "$(jq_py '" ".join(p["ref"] + ":" + str(p["days"]) for p in d["timeliness"]["late_people"]["people"])')" \
  "$(tsql "SELECT string_agg(ref || ':' || day, ' ' ORDER BY id) FROM t WHERE notified_at IS NOT NULL AND day > days")" \
  "the late people and their days (notified after the deadline, hold time excluded)"
is "$(jq_py '" ".join(p["ref"] + ":" + str(p["days"]) for p in d["timeliness"]["overdue_people"]["people"])')" \
  "$(tsql "SELECT string_agg(ref || ':' || day, ' ' ORDER BY id) FROM t WHERE notified_at IS NULL AND day > days")" \
  "the people not notified past the deadline"
is "$(jq_py '" ".join(p["ref"] for p in d["timeliness"]["late_people"]["people"])'):$(jq_py '" ".join(p["ref"] for p in d["timeliness"]["overdue_people"]["people"])')" \
  "ny1 ny2 ny3:ny4" "the known answer: NY notified 50 days on (late), ny4 never (overdue); CA on time, its holds excluded"
t=timeliness
is "$(jq_py "d['$t']['notified'], d['$t']['on_time'], d['$t']['late'], d['$t']['overdue_not_notified'], d['$t']['pending_within_deadline'], d['$t']['no_deadline'], d['$t']['delayed_by_holds']")" \
  "$(tsql "SELECT count(notified_at) || ' ' || count(*) FILTER (WHERE notified_at IS NOT NULL AND day <= days)
           || ' ' || count(*) FILTER (WHERE notified_at IS NOT NULL AND day > days)
           || ' ' || count(*) FILTER (WHERE notified_at IS NULL AND day > days)
           || ' ' || count(*) FILTER (WHERE notified_at IS NULL AND day <= days)
           || ' ' || count(*) FILTER (WHERE days IS NULL) || ' ' || count(*) FILTER (WHERE held_seconds > 0) FROM t")" \
  "timeliness totals: notified, on time, late, overdue, pending, no deadline, delayed by holds"
is "$(jq_py '" ".join(g + ":" + str(v["max_days"]) for g, v in sorted(d["by_jurisdiction"].items()))')" \
  "$(tsql "SELECT string_agg(g || ':' || coalesce(m::text, 'None'), ' ' ORDER BY g) FROM
           (SELECT g, max(day) FILTER (WHERE notified_at IS NOT NULL) m FROM t GROUP BY g) x")" \
  "the most days any notified person of each jurisdiction waited"
ca1_days=$(tsql "SELECT day || ' ' || round(held_seconds / 86400) FROM t WHERE ref = 'ca1'")
ca2_days=$(tsql "SELECT day || ' ' || round(held_seconds / 86400) FROM t WHERE ref = 'ca2'")
is "$ca1_days:$ca2_days" "5 45:10 40" \
  "ca1 under two overlapping holds (45 and 40 days) has 45 held days, counted once; ca2 has 40"
is "$(jq_py '[(h["scope"], h["lifted_at"] is not None, h["active"]) for h in d["holds"]]')" \
  "[('region CA', True, False), ('recipient ca1', True, False)]" "the holds, lifted, with their scope"
is "$(jq_py 'd["by_jurisdiction"]["MA"]["deadline_days"], d["by_jurisdiction"]["MA"]["deadline_from"], d["by_jurisdiction"]["unknown"]["deadline_from"]')" \
  "None no fixed day count not in the table" "a jurisdiction without a day count is reported as such, never late"

# --- per jurisdiction: the deadline as a date, the lawful hold time its region's holds take
# out, the clearance deadline; each regulator notice with its verdict and its date -----------------
ca_held=$(sql "SELECT extract(epoch FROM least(coalesce(l.lifted_at, now()), now())
                 - greatest(h.placed_at, '$DISCOVERED'::timestamp AT TIME ZONE 'UTC'))
               FROM crier.hold h LEFT JOIN crier.hold_lift l ON l.hold_id = h.id
               WHERE h.campaign_id = $CAMPAIGN_ID AND h.region = 'CA'")
ca_lift=$(sql "SELECT to_char(l.lifted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM crier.hold h
               JOIN crier.hold_lift l ON l.hold_id = h.id WHERE h.campaign_id = $CAMPAIGN_ID AND h.region = 'CA'")
is "$(jq_py '"%.2f" % d["by_jurisdiction"]["CA"]["deadline"]["held_days_deducted"]')" \
  "$("$PY" -c "print('%.2f' % ($ca_held / 86400))")" \
  "CA: the lawful hold time its region hold took out (the ca1 hold is a person's, not the region's)"
is "$(jq_py 'd["by_jurisdiction"]["CA"]["deadline"]["date"]')" \
  "$("$PY" -c "import datetime as t; print((t.datetime.fromisoformat('$DISCOVERED') + t.timedelta(days=31, seconds=$ca_held - 1)).date())")" \
  "CA: the deadline date is discovery + 30 days + the hold time deducted"
is "$(jq_py '[(c["lifted"], c["rule"], c["due_by"]) for c in d["by_jurisdiction"]["CA"]["deadline"]["after_clearance"]]')" \
  "[('$ca_lift', '7 days', '$(date -u -d "$ca_lift + 7 days" +%F)')]" \
  "CA: notice within 7 days of the clearance (the lift of the CA hold)"
is "$(jq_py 'd["by_jurisdiction"]["TX"]["deadline"]["rule"], d["by_jurisdiction"]["TX"]["deadline"]["date"], d["by_jurisdiction"]["TX"]["deadline"]["counted_from"]')" \
  "60 days from determination $(date -u -d "$DISCOVERED + 60 days" +%F) the discovery date, standing for the table's event" \
  "TX: 60 days from determination, counted from the discovery date given, and said so"
is "$(jq_py '[(r["name"], r["due"], r["threshold"], r["count"], r["due_by"]) for r in d["by_jurisdiction"]["TX"]["regulators"]]')" \
  "[('Attorney General', 'not required', '250 or more', 2, '$(date -u -d "$DISCOVERED + 30 days" +%F)')]" \
  "TX: the AG at 250 or more, 2 residents: not required; its date 30 days from the determination"
ca_last=$(sql "SELECT to_char(max(d.at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM crier.dispatch_log d
               JOIN crier.notice n ON n.id = d.notice_id JOIN crier.recipient r
               ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
               WHERE d.campaign_id = $CAMPAIGN_ID AND upper(r.region) = 'CA'
               AND d.event = 'transition' AND d.to_state IN ('sent', 'delivered', 'mailed')")
is "$(jq_py '[(r["name"], r["due"], r["count"], r["due_by"], r["order"]) for r in d["by_jurisdiction"]["CA"]["regulators"]]')" \
  "[('Attorney General', 'required', 4, '$(date -u -d "$ca_last + 15 days" +%F)', 'after')]" \
  "CA: the AG above 3 (4 residents), within 15 days of the last CA notice, after them"
is "$(jq_py 'd["by_jurisdiction"]["MA"]["regulators_state"], d["by_jurisdiction"]["MA"]["consumer_reporting_agencies"]["shown"], d["by_jurisdiction"]["unknown"]["consumer_reporting_agencies"]["due"]')" \
  "unknown unknown — check counsel unknown" "MA knows no regulator, a person without region no rule: unknown, never not required"
is "$(jq_py 'sorted(set((u["jurisdiction"], u["what"]) for u in d["flags"]["unknown"]))')" \
  "[('MA', 'substitute notice'), ('MA', 'the consumer reporting agencies'), ('MA', 'the regulators to notify'), ('NY', 'substitute notice'), ('TX', 'substitute notice'), ('TX', 'the consumer reporting agencies'), ('unknown', 'substitute notice'), ('unknown', 'the consumer reporting agencies'), ('unknown', 'the individual deadline'), ('unknown', 'the regulators to notify')]" \
  "every unknown is listed for counsel"

# a framework applies to everyone: the shortest deadline wins
report_json --discovered "$DISCOVERED" --framework HIPAA
is "$(jq_py 'd["timeliness"]["no_deadline"], d["by_jurisdiction"]["MA"]["deadline_days"], d["by_jurisdiction"]["MA"]["deadline_from"], d["by_jurisdiction"]["CA"]["deadline_from"]')" \
  "0 60 HIPAA CA" "--framework HIPAA: 60 days for MA and unknown, CA keeps its 30"
report_json --framework NOPE
is "$RC:$(cat report.err)" "65:crier audit report: framework 'NOPE' is not in the rules table $WORK/deadlines.yaml" \
  "an unknown framework is refused, named"

# the campaign meta's discovered_date (9 days ago in the sample) when --discovered is absent
report_json
is "$(jq_py 'd["discovered_date"], d["discovered_from"]')" "2026-11-20 campaign meta discovered_date" \
  "the discovery date comes from the campaign meta"

# --- flags, above and below their thresholds ---------------------------------------------------
report_json --discovered "$DISCOVERED"
is "$(jq_py 'd["flags"]["attorney_general"], d["flags"]["consumer_reporting_agencies"], [(f["jurisdiction"], f["name"]) for f in d["flags"]["due"]]')" \
  "['CA'] ['NY'] [('CA', 'Attorney General')]" \
  "AG more than 3: CA (4 people); NY's 5 or more (4 people): no; CRA more than 4: not CA (4); 4 or more: NY"
is "$(jq_py 'd["by_jurisdiction"]["NY"]["regulators"][0]["due"], d["by_jurisdiction"]["NY"]["regulators"][0]["shown"], d["by_jurisdiction"]["CA"]["consumer_reporting_agencies"]["shown"]')" \
  "not required not required per unverified data — check counsel not required" \
  "below the threshold: not required, and an unverified entry says so and sends to counsel"
is "$(jq_py 'd["flags"]["substitute_notice"], d["by_jurisdiction"]["CA"]["substitute_notice"]["because"]')" \
  "['CA'] ['insufficient_contact']" "substitute notice: CA on insufficient contact for its one undeliverable person; per state"
sed -i 's/threshold: "more than 4"/threshold: "more than 3"/; s/threshold: "5 or more"/threshold: "4 or more"/' deadlines.yaml
report_json --discovered "$DISCOVERED"
is "$(jq_py 'd["flags"]["consumer_reporting_agencies"], d["flags"]["attorney_general"]')" \
  "['CA', 'NY'] ['CA', 'NY']" "CRA more than 3: CA and NY; NY's AG at 4 or more: required"
# HIPAA declared: its media notice per jurisdiction, HHS on the whole campaign
report_json --discovered "$DISCOVERED" --framework HIPAA
is "$(jq_py '[(f["jurisdiction"], f["name"], f["count"]) for f in d["flags"]["due"] if f["name"].startswith("HIPAA")]')" \
  "[('CA', 'HIPAA: media', 4), ('NY', 'HIPAA: media', 4), ('HIPAA', 'HIPAA: HHS', 13)]" \
  "HIPAA: media where a state has more than 3, HHS for the campaign's 13"
is "$(jq_py 'd["oral_hold_lapse_applied"]')" "True" "HIPAA declared: the oral-hold lapse applies"
sed 's/citation: "Cal. Civ. Code § 1798.82"/citation: unknown/' deadlines.yaml >bad.yaml
"$CRIER" -c <(sed "s|$WORK/deadlines.yaml|$WORK/bad.yaml|" crier.yaml) audit report rep >/dev/null 2>report.err
is "$?:$(cat report.err)" "65:crier audit report: $WORK/bad.yaml:9:15: entry CA: an entry without a citation cannot be verified" \
  "a rules table entry that claims verification without a citation is refused, FILE:LINE:COL"

# --- no discovery date: said clearly ---------------------------------------------------------------
run_crier audit report nometa
is "$RC" 0 "a campaign without a discovery date reports"
like "$OUT" "TIMELINESS NOT MEASURED: no discovery date" "the text says timeliness is not measured, and why"
run_crier audit report nometa --json
is "$("$PY" -c "import json,sys; d=json.loads(sys.argv[1]); print(d['timeliness']['measured'], d['discovered_date'])" "$OUT")" \
  "False None" "the JSON says so too"
run_crier audit report nope
is "$RC:$ERR" "65:crier audit report: no campaign named 'nope'" "an unknown campaign: 65, named"

# --- text --------------------------------------------------------------------------------------------
run_crier audit report rep --discovered "$DISCOVERED"
is "$RC" 0 "the text report exits 0"
like "$OUT" "CAVEAT: TEST TABLE: must be checked by counsel" "the text carries the table's caveat"
like "$OUT" "ny4 +Giang Nguyễn +NY" "the text lists the overdue person"
like "$OUT" "MA    +the regulators to notify" "the text lists what the table does not know"
like "$OUT" "CA California: residents 4; Cal. Civ. Code" "the text gives each jurisdiction its rules"

# --- HTML, rendered by headless Chromium ----------------------------------------------------------
run_crier audit report rep --discovered "$DISCOVERED" --html "$WORK/report.html"
is "$RC" 0 "--html writes the file"
ok "the HTML references no http(s) URL" bash -c "! grep -Eqi 'https?:' '$WORK/report.html'"
ok "the HTML loads nothing (no src=, no link, no script)" bash -c "! grep -Eqi '<script|<link|src=|@import|url\\(' '$WORK/report.html'"
ok "names from the list are escaped" grep -qF '&lt;b&gt;O&#39;Brien &amp; &quot;Co&quot;&lt;/b&gt;' "$WORK/report.html"
ok "the raw markup of a name is not there" bash -c "! grep -qF \"<b>O'Brien\" '$WORK/report.html'"
ok "the authority of a hold is escaped" grep -qF 'FBI &lt;Field&gt; Office' "$WORK/report.html"
if command -v chromium >/dev/null; then
  chrome() { timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run \
               --user-data-dir="$WORK/chrome" --enable-logging=stderr --v=0 "$@"; }
  chrome --dump-dom "file://$WORK/report.html" >dom.html 2>chrome-dom.log
  is "$?" 0 "chromium loads the report"
  for id in chart due unknown by_state by_jurisdiction late overdue undeliverable holds; do
    ok "the DOM has #$id" grep -q "id=\"$id\"" dom.html
  done
  is "$(grep -o 'class="bar"' dom.html | wc -l)" 1 "one bar: every notice went out today, on test"
  is "$(grep -o 'class="hold"' dom.html | wc -l)" 2 "two shaded hold periods"
  ok "the discovery day is marked on the chart" grep -q 'id="discovered"' dom.html
  ok "the unknowns are in red: unknown — check counsel" \
    grep -q '<td class="unknown">unknown — check counsel</td>' dom.html
  ok "the unknown style is red" grep -q '\.unknown{color:#d00000' dom.html
  ok "no load was refused or failed (console)" bash -c "! grep -Ei 'Refused to|net::ERR|Uncaught' chrome-dom.log"
  chrome --screenshot="$WORK/report.png" --window-size=1200,2400 "file://$WORK/report.html" >/dev/null 2>chrome-shot.log
  ok "chromium wrote a screenshot" test -s "$WORK/report.png"
  # the PNG is not blank: decode its top (zlib, the five PNG filters) and look for the bar's colour
  # (#1f77b4) and the hold shading (#f4a261 at 35% over white)
  read -r pixels distinct bar shade < <("$PY" - "$WORK/report.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
bpp = {2: 3, 6: 4}[ctype]
raw, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
for y in range(min(h, 700)):  # the top of the page: heading, caveat, chart (pure Python is slow)
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
near = lambda px, rgb: all(abs(px[k] - rgb[k]) <= 6 for k in range(3))
colours, nonwhite, bar, shade = set(), 0, 0, 0
for line in rows:
    for x in range(0, w * bpp, bpp):
        px = tuple(line[x:x + 3]); colours.add(px)
        nonwhite += px != (255, 255, 255)
        bar += near(px, (0x1f, 0x77, 0xb4)); shade += near(px, (251, 222, 200))
print(nonwhite, len(colours), bar, shade)
PY
)
  echo "# screenshot: $pixels non-white pixels, $distinct colours, $bar bar pixels, $shade shaded pixels"
  ok "the screenshot is not blank" test "${pixels:-0}" -gt 10000
  ok "the chart's bar is drawn (its colour, #1f77b4)" test "${bar:-0}" -gt 100
  ok "the hold period is shaded on the chart" test "${shade:-0}" -gt 1000
  artifacts=${CRIER_ARTIFACTS:-/tmp}
  mkdir -p "$artifacts" && cp "$WORK/report.png" "$artifacts/report-$$.png" && cp "$WORK/report.html" "$artifacts/report-$$.html"
  echo "# report screenshot kept: $artifacts/report-$$.png (and report-$$.html)"
else
  echo "not ok $((TAP_COUNT += 1)) - chromium is not installed (.ci/install-deps.sh installs it)"
  TAP_FAILED=$((TAP_FAILED + 1))
fi

# --- read-only, and an auditor may run it ------------------------------------------------------
is "$(sql "SELECT count(*) || ':' || max(id) FROM crier.dispatch_log")" "$log_rows_before" \
  "the reports wrote nothing to the dispatch log"
suffix=$$
sql "CREATE ROLE t_auditor_$suffix LOGIN PASSWORD 'pw' IN ROLE crier_auditor" >/dev/null
trap 'rc=$?; psql -XAtq -d postgres -c "DROP ROLE IF EXISTS t_auditor_$suffix" 2>/dev/null; (exit $rc); cleanup' EXIT
as_auditor() { PGUSER=t_auditor_$suffix PGPASSWORD=pw PGHOST=${PGHOST:-localhost} "$@"; }
"$CRIER" audit report rep --json --discovered "$DISCOVERED" >superuser.json
as_auditor "$CRIER" audit report rep --json --discovered "$DISCOVERED" >auditor.json 2>auditor.err
is "$?" 0 "a LOGIN member of crier_auditor runs the report"
is "$("$PY" -c "import json; a, b = (json.load(open(f)) for f in ('superuser.json', 'auditor.json'));
[x.pop('as_of') for x in (a, b)]; [h.pop('lawful_until') for x in (a, b) for h in x['holds']]; print(a == b)")" True \
  "the auditor sees the same report as the superuser"
as_auditor "$CRIER" audit report rep --html "$WORK/auditor.html" >/dev/null
is "$?" 0 "the auditor writes the HTML report"

# --- letters: notified on the day the post office accepted the batch; a returned letter --------
cat >post.csv <<'CSV'
ref,name,address1,city,region,postal_code
p1,Letter One,1 Elm St,Austin,TX,78701
p2,Letter Two,2 Elm St,Austin,TX,78701
CSV
setup post mail post.csv
timeout 90 "$CRIER" run --until-idle >/dev/null 2>>run.log
batch=$(sql "SELECT DISTINCT transport_id FROM crier.notice WHERE $(in_campaign post) AND state = 'batched'")
mailed_on=$(date -u -d '3 days ago' +%F)
run_crier batch mark-mailed "$batch" --date "$mailed_on"
is "$RC" 0 "the letters' batch is marked mailed, 3 days ago"
printf 'ref,reason\np2,Attempted - Not Known\n' >returns.csv
run_crier returns ingest returns.csv --campaign post
is "$RC" 0 "one letter came back"
"$CRIER" audit report post --json --discovered "$(date -u -d '10 days ago' +%F)" >"$WORK/report.json"
is "$(jq_py '(d["timeliness"]["on_time"], d["by_jurisdiction"]["TX"]["max_days"], d["returned_letters"], d["no_usable_contact"], d["by_state"]["mailed"])')" \
  "(2, 7, 1, 1, 2)" "mailed counts from the mailing date (day 7 of 10), and the returned letter has no usable contact"
is "$(jq_py '[(x["day"], x["notified"]["mail"]) for x in d["notices_per_day"]["days"]]')" \
  "[('$mailed_on', 2)]" "the chart puts both letters on their mailing day"

# --- HIPAA's oral-hold lapse only where HIPAA applies (45 CFR 164.412(b); no state has it) ------
# an oral hold placed 40 days ago, never confirmed: without HIPAA all 40 days are lawful delay;
# declared HIPAA, only the first 30 are, and the report says the hold lapsed
printf 'ref,name,email,region\no1,Otto,o1@example.com,TX\n' >oral.csv
"$CRIER" campaign create oral --incident INC-oral --policy test >/dev/null &&
  "$CRIER" campaign load oral --csv oral.csv >/dev/null
ORAL_ID=$(sql "SELECT id FROM crier.campaign WHERE name = 'oral'")
sql "BEGIN; ALTER TABLE crier.hold DISABLE TRIGGER hold_stamp;
     INSERT INTO crier.hold (campaign_id, authority, official, case_ref, form, reason,
                             placed_at, placed_by, placed_role)
     VALUES ($ORAL_ID, 'FBI', 'SA Roe', 'K-3', 'oral', 'impede',
             now() - interval '40 days', 'postgres', 'postgres');
     ALTER TABLE crier.hold ENABLE TRIGGER hold_stamp; COMMIT;" >/dev/null
oral_json() { "$CRIER" audit report oral --json --discovered "$(date -u -d '45 days ago' +%F)" "$@" >"$WORK/report.json"; }
oral_json
is "$(jq_py 'd["oral_hold_lapse_applied"], d["holds"][0]["lapsed"], round(d["holds"][0]["lawful_days"]), round(d["by_jurisdiction"]["TX"]["deadline"]["held_days_deducted"])')" \
  "False False 40 40" "no HIPAA: the unconfirmed oral hold is lawful delay for all its 40 days"
oral_json --framework HIPAA
is "$(jq_py 'd["oral_hold_lapse_applied"], d["holds"][0]["lapsed"], round(d["holds"][0]["lawful_days"]), round(d["by_jurisdiction"]["TX"]["deadline"]["held_days_deducted"])')" \
  "True True 30 30" "HIPAA declared: the oral hold lapses after 30 days; 10 days count against the deadline"
"$CRIER" -c <(printf '%s\n  oral_lapse: everywhere\n' "$(cat crier.yaml)") audit report oral --json \
  --discovered "$(date -u -d '45 days ago' +%F)" >"$WORK/report.json"
is "$(jq_py 'd["oral_hold_lapse_applied"], round(d["holds"][0]["lawful_days"])')" "True 30" \
  "report.oral_lapse: everywhere applies the lapse without HIPAA"
# frameworks as a YAML list in the meta, any case: the report and the engine's hold_state
# (engine/core/sql/009_oral_lapse.sql) both see HIPAA, and agree that the hold lapsed
printf 'frameworks: [Hipaa]\n' >oral_list.yaml
"$CRIER" campaign create oral_list --incident INC-oral --policy test --meta oral_list.yaml >/dev/null &&
  "$CRIER" campaign load oral_list --csv oral.csv >/dev/null
sql "BEGIN; ALTER TABLE crier.hold DISABLE TRIGGER hold_stamp;
     INSERT INTO crier.hold (campaign_id, authority, official, case_ref, form, reason,
                             placed_at, placed_by, placed_role)
     SELECT id, 'FBI', 'SA Roe', 'K-4', 'oral', 'impede', now() - interval '40 days', 'postgres', 'postgres'
     FROM crier.campaign WHERE name = 'oral_list';
     ALTER TABLE crier.hold ENABLE TRIGGER hold_stamp; COMMIT;" >/dev/null
"$CRIER" audit report oral_list --json --discovered "$(date -u -d '45 days ago' +%F)" >"$WORK/report.json"
is "$(jq_py 'd["oral_hold_lapse_applied"], d["holds"][0]["lapsed"], round(d["holds"][0]["lawful_days"])')" \
  "True True 30" "frameworks as a list in the meta: the report applies HIPAA's lapse"
is "$("$CRIER" hold list oral_list --json | python3 -c 'import json,sys; print([h["lapsed"] for h in json.load(sys.stdin)])')" \
  "[True]" "and the engine agrees: the hold lapsed"
is "$("$CRIER" hold list oral --json | python3 -c 'import json,sys; print([h["lapsed"] for h in json.load(sys.stdin)])')" \
  "[False]" "without HIPAA in the meta the engine does not lapse it (whatever --framework the report is given)"

# --- the jurisdiction of a person abroad is chosen by country: Germany is GDPR, not Delaware ------
printf 'ref,name,email,region,country\ng1,Greta,g1@example.com,,DE\ng2,Guy,g2@example.com,Paris,FR\nd1,Dee,d1@example.com,DE,US\nj1,Jun,j1@example.com,,JP\n' >abroad.csv
"$CRIER" campaign create abroad --incident INC-abroad --policy test >/dev/null &&
  "$CRIER" campaign load abroad --csv abroad.csv >/dev/null
"$CRIER" audit report abroad --json --discovered "$(date -u -d '1 day ago' +%F)" >"$WORK/report.json"
is "$(jq_py 'sorted((k, v["residents"], v["in_table"]) for k, v in d["by_jurisdiction"].items())')" \
  "[('DE', 1, False), ('GDPR', 2, True), ('country JP', 1, False)]" \
  "GDPR by country (DE, FR), a US region DE is a region (not in this table), JP is not in the table"
is "$(jq_py '[(r["name"], r["due"], r["count"], r["due_by"]) for r in d["by_jurisdiction"]["GDPR"]["regulators"]]')" \
  "[('supervisory authority', 'required', 4, '$(date -u -d "$(date -u -d '1 day ago' +%F) + 3 days" +%F)T00:00:00Z')]" \
  "GDPR: the supervisory authority, counted over the campaign, 72 hours from the date given"
is "$(jq_py 'd["by_jurisdiction"]["country JP"]["regulators_state"], d["by_jurisdiction"]["country JP"]["deadline"]["rule"]')" \
  "unknown unknown — check counsel" "a country in no entry: unknown, check counsel"

done_testing
