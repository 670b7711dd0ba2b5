#!/bin/bash
# load.sh - `crier campaign load`: CSV parsing (BOM, quoting), row validation and what it
# drops or rejects, the reject file, all-or-nothing loads, table and query sources as
# snapshots, import.columns, refs unique across loads, undeliverable at load.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

# recipient CAMPAIGN REF COLUMNS - one recipient's columns, |-separated
recipient() {
  sql "SELECT $3 FROM crier.recipient r
       WHERE r.campaign_id = (SELECT id FROM crier.campaign WHERE name = '$1') AND r.ref = '$2'"
}
# notice CAMPAIGN REF COLUMNS - the notice of one recipient
notice() {
  sql "SELECT $3 FROM crier.notice n
       JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
       WHERE r.campaign_id = (SELECT id FROM crier.campaign WHERE name = '$1') AND r.ref = '$2'"
}
count() { sql "SELECT count(*) FROM $1"; }

"$CRIER" campaign create list1 --incident INC-1 >/dev/null # policy email,fax,mail

# --- one CSV with every kind of row -------------------------------------------------------
# line 1: header after a UTF-8 BOM; lines 2-3: r1, quoted fields with commas, quotes and a
# newline; 4: r2, bad email but a fax; 5: r3, no usable contact; 6-7: r4, name with CRLF;
# 8-9: r5, name with LF; 10: r1 again; 11: r6, postal address only.
{
  printf '\xef\xbb\xbf'
  printf 'ref,name,email,fax,address1,city,region,postal_code,dept,badge\n'
  printf 'r1,"Smith, John ""Jack""",John@EXAMPLE.com,,,,,,"Sales, East\nFloor 2",B-1\n'
  printf 'r2,Bad Email,not-an-email,+1 (212) 555-0100,,,,,HR,B-2\n'
  printf 'r3,No Contact,,,,,,,HR,B-3\n'
  printf 'r4,"Line\r\nBreak",x@example.com,,,,,,HR,B-4\n'
  printf 'r5,"Line\nFeed",y@example.com,,,,,,HR,B-5\n'
  printf 'r1,Duplicate,d@example.com,,,,,,HR,B-6\n'
  printf 'r6,Mail Only,,,1 Main St,Springfield,il,62701,HR,B-7\n'
} >list.csv

run_crier campaign load list1 --csv list.csv --reject-file rejects.csv
is "$RC" 0 "a CSV with rejected rows still loads the good ones"
load1=$(sql "SELECT max(id) FROM crier.list_load")
is "$OUT" "campaign list1: 7 rows read, 3 loaded, 4 rejected, 1 with a contact dropped (load $load1)
rejected rows and dropped contacts: rejects.csv" "the counts are printed"
like "$ERR" "list\.csv: line 10 ref r1: rejected: duplicate ref 'r1' \(first at line 2\)" \
  "a duplicate ref is rejected naming both lines"
is "$(sql "SELECT rows_read || ' ' || loaded || ' ' || rejected || ' ' || contacts_dropped || ' ' || source
           || ' ' || source_sha256 FROM crier.list_load WHERE id = $load1")" \
  "7 3 4 1 csv:list.csv $(sha256sum list.csv | cut -d' ' -f1)" "list_load records the counts, source and file hash"
is "$(count "crier.dispatch_log WHERE event = 'load'")" 1 "the load is in the dispatch log"

# BOM and quoting: the values arrive intact
is "$(recipient list1 r1 "name")" 'Smith, John "Jack"' "a quoted name with a comma and quotes arrives intact"
is "$(recipient list1 r1 "vars->>'dept' = E'Sales, East\nFloor 2'")" t "a quoted var with a comma and a newline arrives intact"
is "$(recipient list1 r1 "(SELECT string_agg(k, ',' ORDER BY k) FROM json_object_keys(vars) k)")" "badge,dept" \
  "extra columns land in recipient.vars, standard ones do not"
is "$(recipient list1 r1 "vars->>'badge' || ' ' || email || ' ' || source_row")" "B-1 John@example.com line 2" \
  "the email domain is lower-cased, the row is line 2 despite the BOM"

# invalid email: dropped for email only, the notice starts on the next channel (fax)
is "$(recipient list1 r2 "coalesce(email, 'NULL') || ' ' || fax || ' ' || array_to_string(notes, ';')")" \
  "NULL +12125550100 email: not a valid address" "an invalid email is dropped with a note; the fax is normalised"
is "$(notice list1 r2 "state || ' ' || channel || ' ' || channel_index || ' ' || array_to_string(reasons, ';')")" \
  "ready fax 1 email: no valid email address" "its notice starts on the next channel of the policy"

# the postal-only row is mailable and starts on mail
is "$(recipient list1 r6 "mailable || ' ' || region || ' ' || postal_code")" "true IL 62701" "a postal address alone is usable"
is "$(notice list1 r6 "channel || ' ' || channel_index")" "mail 2" "a postal-only notice starts on mail"

# rejected rows are not loaded
is "$(sql "SELECT string_agg(ref, ',' ORDER BY seq) FROM crier.recipient")" "r1,r2,r6" "only r1, r2 and r6 were loaded"
is "$(recipient list1 r1 "count(*)")" 1 "the duplicate r1 did not replace the first"

# the reject file: a reason column and the right rows, original values kept
is "$(python3 - rejects.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0][:3] == ["source_row", "disposition", "reason"], rows[0]
assert rows[0].count("ref") == 1, rows[0]  # the list's own columns follow, once each
ref, name = rows[0].index("ref"), rows[0].index("name")
for row in rows[1:]:
    print("|".join([row[0], row[ref], row[1], row[2], repr(row[name])]))
PY
)" "line 4|r2|contact-dropped|email: not a valid address|'Bad Email'
line 5|r3|rejected|no usable contact (email, fax or postal address)|'No Contact'
line 6|r4|rejected|name contains a line break or control character|'Line\r\nBreak'
line 8|r5|rejected|name contains a line break or control character|'Line\nFeed'
line 10|r1|rejected|duplicate ref 'r1' (first at line 2)|'Duplicate'" \
  "the reject file lists each rejected row and dropped contact with its reason and original values"

# --- the same ref in a later load is a duplicate, naming the earlier load -----------------
printf 'ref,name,email,fax\nr2,Again,again@example.com,\nr7,Fax Only,,+44 20 7946 0958\n' >second.csv
run_crier campaign load list1 --csv second.csv
is "$RC" 0 "a second load exits 0"
like "$OUT" "^campaign list1: 2 rows read, 1 loaded, 1 rejected, 0 with a contact dropped" "the second load counts the duplicate"
like "$ERR" "line 2 ref r2: rejected: duplicate ref 'r2' \(first at line 4 of an earlier load\)" \
  "a ref loaded earlier is rejected naming the earlier load"
is "$(recipient list1 r2 "name")" "Bad Email" "the earlier recipient is unchanged"
is "$(recipient list1 r7 "fax || ' ' || seq")" "+442079460958 4" "a later load continues the sequence; fax normalised"

# --- invalid UTF-8 on line N: exit 65, line N named, nothing loaded -----------------------
# 6000 lines (past one COPY batch of 5000 rows and one 128 KiB read chunk), bad byte on 5500
python3 - <<'PY'
with open("big.csv", "wb") as f:
    f.write(b"ref,name,email\n")
    for line in range(2, 6001):
        name = b"Name \xc3\x28" if line == 5500 else b"Person number %d" % line
        f.write(b"b%d,%s,u%d@example.com\n" % (line, name, line))
PY
before="$(count crier.recipient) $(count crier.notice) $(count crier.list_load) $(count crier.dispatch_log)"
run_crier campaign load list1 --csv big.csv
is "$RC" 65 "invalid UTF-8: 65"
is "$ERR" "crier campaign load: big.csv:5500: not valid UTF-8; nothing was loaded" "invalid UTF-8 names line 5500"
is "$(count crier.recipient) $(count crier.notice) $(count crier.list_load) $(count crier.dispatch_log)" "$before" \
  "nothing was loaded: no recipient, notice, list_load or log row"
printf 'ref,name,email,note\nq1,A,a@example.com,"two\nlines"\nq2,B\xff,b@example.com,x\n' >after-multiline.csv
run_crier campaign load list1 --csv after-multiline.csv
is "$RC:$ERR" "65:crier campaign load: after-multiline.csv:4: not valid UTF-8; nothing was loaded" \
  "the line is counted right after a field spanning two lines"

# a campaign whose very first load fails is left as if never loaded, and loads later
"$CRIER" campaign create fresh --incident INC-6 --policy email >/dev/null
run_crier campaign load fresh --csv big.csv
is "$RC" 65 "a failed first load: 65"
printf 'ref,name,email\nf1,Fay,fay@example.com\n' >fresh.csv
run_crier campaign load fresh --csv fresh.csv
is "$RC" 0 "a load after a failed first load succeeds"
is "$(sql "SELECT string_agg(r.ref || ':' || n.state || ':' || r.seq, ' ') FROM crier.recipient r
           JOIN crier.notice n ON n.campaign_id = r.campaign_id AND n.recipient_seq = r.seq
           WHERE r.campaign_id = (SELECT id FROM crier.campaign WHERE name = 'fresh')")" "f1:ready:1" \
  "only the good load's recipient is there, as seq 1"

# --- a missing file: EX_NOINPUT (66) -------------------------------------------------------
run_crier campaign load list1 --csv missing.csv
is "$RC:$ERR" "66:crier campaign load: missing.csv: No such file or directory; nothing was loaded" \
  "a missing file: 66"

# --- a cancelled campaign takes no load ----------------------------------------------------
"$CRIER" campaign create gone --incident INC-2 >/dev/null
"$CRIER" campaign cancel gone >/dev/null
run_crier campaign load gone --csv second.csv
is "$RC:$ERR" "65:crier campaign load: cannot load into campaign 'gone': it is cancelled; nothing was loaded" \
  "load into a cancelled campaign is refused"
is "$(count "crier.recipient WHERE campaign_id = (SELECT id FROM crier.campaign WHERE name = 'gone')")" 0 \
  "the cancelled campaign has no recipient"

# --- --table: a snapshot, with import.columns mapping employee_id to ref ------------------
sql "CREATE SCHEMA hr;
     CREATE TABLE hr.affected (employee_id text PRIMARY KEY, name text, email text, dept text);
     INSERT INTO hr.affected VALUES ('E100', 'Ann Lee', 'ann@example.com', 'Finance'),
       ('E200', 'Bo Chen', 'bo@example.com', 'HR'), ('E300', 'Cy Diaz', 'cy@example.com', 'Finance')"
printf 'import:\n  columns:\n    ref: employee_id\n' >columns.yaml
"$CRIER" campaign create snap --incident INC-3 --policy email >/dev/null
run_crier campaign load snap --table hr.affected
is "$RC:$ERR" "65:crier campaign load: the list has no 'ref' column (required); nothing was loaded" \
  "without import.columns the table has no ref column"
run_crier -c columns.yaml campaign load snap --table hr.affected
is "$RC" 0 "--table with import.columns loads"
like "$OUT" "^campaign snap: 3 rows read, 3 loaded, 0 rejected" "all three rows loaded"
snapshot="SELECT string_agg(ref || ':' || name || ':' || email || ':' || (vars->>'dept') || ':' || source_row, ' ' ORDER BY seq)
          FROM crier.recipient WHERE campaign_id = (SELECT id FROM crier.campaign WHERE name = 'snap')"
is "$(sql "$snapshot")" "E100:Ann Lee:ann@example.com:Finance:row 1 E200:Bo Chen:bo@example.com:HR:row 2 E300:Cy Diaz:cy@example.com:Finance:row 3" \
  "employee_id became ref; dept is a var"
is "$(recipient snap E100 "vars::jsonb ? 'employee_id'")" f "the mapped column is not also kept as a var"
sql "UPDATE hr.affected SET name = 'Changed', email = 'changed@example.com'; DELETE FROM hr.affected WHERE employee_id = 'E300'"
is "$(sql "$snapshot")" "E100:Ann Lee:ann@example.com:Finance:row 1 E200:Bo Chen:bo@example.com:HR:row 2 E300:Cy Diaz:cy@example.com:Finance:row 3" \
  "recipients are a snapshot: later edits of the source table change nothing"
is "$(sql "SELECT source FROM crier.list_load ORDER BY id DESC LIMIT 1")" "table:hr.affected" "list_load names the table"

# --- --query with a WHERE ------------------------------------------------------------------
"$CRIER" campaign create query --incident INC-4 --policy email >/dev/null
query="SELECT employee_id AS ref, name, email, dept FROM hr.affected WHERE dept = 'HR'"
run_crier campaign load query --query "$query"
is "$RC" 0 "--query loads"
like "$OUT" "^campaign query: 1 rows read, 1 loaded, 0 rejected" "only the rows the WHERE selects are read"
is "$(sql "SELECT string_agg(ref || ':' || name, ' ') FROM crier.recipient
           WHERE campaign_id = (SELECT id FROM crier.campaign WHERE name = 'query')")" "E200:Changed" "the query's rows, as they are now"
is "$(sql "SELECT source FROM crier.list_load ORDER BY id DESC LIMIT 1")" "query:$query" "list_load keeps the query"
run_crier campaign load query --query "SELECT nonsense"
is "$RC" 65 "a failing query: 65"
like "$ERR" "^crier campaign load: --query: ERROR: +column \"nonsense\" does not exist; nothing was loaded$" \
  "a failing query is explained"

# --- reachable only by mail on policy "email": undeliverable at load, logged ----------------
"$CRIER" campaign create email-only --incident INC-5 --policy email >/dev/null
printf 'ref,name,email,address1,city,region,postal_code\nm1,Mail Only,,1 Main St,Springfield,IL,62701\ne1,Has Email,e1@example.com,,,,\n' >email-only.csv
run_crier campaign load email-only --csv email-only.csv
is "$RC" 0 "a list with an unreachable person loads"
like "$OUT" ", 1 with no channel of the policy \(undeliverable\) \(load [0-9]+\)$" "the load counts the undeliverable"
is "$(notice email-only m1 "state || ' ' || array_to_string(reasons, ';')")" \
  "undeliverable email: no valid email address" "the mail-only notice is undeliverable at load, with the reason"
is "$(notice email-only e1 "state")" ready "the emailable notice is ready"
is "$(sql "SELECT event || ' ' || coalesce(from_state, '-') || '>' || to_state || ' ' || channel || ' ' || reason
           FROM crier.dispatch_log WHERE recipient_ref = 'm1'")" \
  "transition ->undeliverable email email: no valid email address" "the undeliverable notice has a dispatch_log row"

# --- a reject file is opened in spreadsheets: a cell that would run as a formula is guarded ---
"$CRIER" campaign create formulas --incident INC-6 >/dev/null
printf 'ref,name,email,dept\nf1,=cmd|calc!A0,,"=HYPERLINK(""http://evil.example"")"\nf2,Fine,f2@example.com,+1\n' >formulas.csv
run_crier campaign load formulas --csv formulas.csv --reject-file formula-rejects.csv
is "$RC" 0 "a list whose rejected row holds formulas loads"
is "$(python3 - formula-rejects.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
name, dept = rows[0].index("name"), rows[0].index("dept")
print(rows[1][name], rows[1][dept])
# no cell of the file starts as a spreadsheet formula would
print(all(not c or c[0] not in "=+-@\t\r" for row in rows for c in row))
PY
)" "'=cmd|calc!A0 '=HYPERLINK(\"http://evil.example\")
True" "a reject file cell beginning with = comes out with an apostrophe before it"

# --- a first load's notices and recipients go through staging tables ---------------------------
# (019_find_local.sql, 020_load.sql): filled, committed and indexed on two more connections,
# made the campaign's partitions by the load's transaction. A load that fails leaves nothing in the campaign;
# one killed after the staging table's commit leaves it in no campaign, and the next load
# of the campaign drops it.
"$CRIER" campaign create staged --incident INC-7 >/dev/null
sid=$(sql "SELECT id FROM crier.campaign WHERE name = 'staged'")
stages() { sql "SELECT count(*) FROM pg_class WHERE relname ~ '^(notice|recipient)_stage_c${sid}_' AND relkind = 'r'"; }
run_crier campaign load staged --csv big.csv
is "$RC" 65 "a first load failing at line 5500 fails"
is "$(sql "SELECT count(*) FROM crier.notice WHERE campaign_id = $sid") $(stages) $(sql "SELECT to_regclass('crier.notice_c$sid') IS NULL")" \
  "0 0 t" "and leaves no notice, no staging table and no partition"
# a load killed between the staging table's commit and its own: a committed staging table
sql "SELECT crier.notice_stage_create($sid, 1)" >/dev/null
sql "INSERT INTO crier.notice_stage_c${sid}_$(sql "SELECT split_part(relname, '_', 4) FROM pg_class WHERE relname ~ '^notice_stage_c${sid}_' AND relkind = 'r'")_1
     (id, campaign_id, recipient_seq, state, channel, channel_index, reasons, token)
     VALUES ($sid * 4294967296 + 1, $sid, 1, 'ready', 'email', 0, '{}', 'x')" >/dev/null
rstage=$(sql "SELECT crier.recipient_stage_create($sid, 999, 1)")
sql "INSERT INTO crier.$rstage (campaign_id, seq, load_id, source_row, ref, name, mailable)
     VALUES ($sid, 1, 999, 'line 2', 'left', 'Left Over', false)" >/dev/null
is "$(stages) $(sql "SELECT count(*) FROM crier.notice WHERE campaign_id = $sid")" "2 0" \
  "leftover staging tables hold a notice and a recipient that are in no campaign"
printf 'ref,name,email\ns1,One,s1@example.com\ns2,Two,s2@example.com\n' >staged.csv
run_crier campaign load staged --csv staged.csv
is "$RC" 0 "the next load of the campaign succeeds"
is "$(stages) $(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE token = 'x')
                        FROM crier.notice WHERE campaign_id = $sid")" "0 2 0" \
  "it dropped the leftovers: its own two notices, none of the leftover's"
is "$(sql "SELECT string_agg(ref, ' ' ORDER BY seq) FROM crier.recipient WHERE campaign_id = $sid")" "s1 s2" \
  "and its own two recipients"
is "$(sql "SELECT count(*) FROM pg_index WHERE indrelid = 'crier.recipient_c$sid'::regclass") $(sql "SELECT count(*)
           FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
           WHERE x.indrelid IN ('crier.recipient_c$sid'::regclass, 'crier.notice_c$sid'::regclass)")" "7 9" \
  "the indexes built on the staging tables are the ones attached: no second set (7 on recipients, 9 attached to parents' indexes; no region index without a region hold, 022)"
like "$(sql "SELECT string_agg(indexrelid::regclass::text, ' ') FROM pg_index
             WHERE indrelid = 'crier.notice_c$sid'::regclass")" "notice_stage_c${sid}_" \
  "its notice partition is the staging table it filled (its indexes keep the staging names)"
is "$(notice staged s2 "state || ' ' || channel")" "ready email" "and the notices are the load's"

# --- the campaign's jurisdictions, kept by the load (020_load.sql) ----------------
# `campaign start` reads them instead of every recipient: they must be exactly what the
# scan found. Rows: a US state in lower case (upper-cased by validation), a territory with
# and without a region, a foreign region, a US address missing its ZIP (region kept), a
# rejected row's state, and the same state twice.
# scanned CAMPAIGN - the jurisdictions as content.c used to compute them, from every row
scanned() {
  sql "SELECT string_agg(j, ' ' ORDER BY j) FROM (SELECT DISTINCT CASE WHEN upper(btrim(country))
       IN ('PR', 'GU', 'VI') THEN upper(btrim(country)) ELSE upper(btrim(region)) END AS j
       FROM crier.recipient WHERE campaign_id = (SELECT id FROM crier.campaign WHERE name = '$1')
       AND upper(btrim(country)) IN ('US', 'PR', 'GU', 'VI') AND region IS NOT NULL) s"
}
kept() {
  sql "SELECT string_agg(jurisdiction, ' ' ORDER BY jurisdiction) FROM crier.campaign_jurisdiction
       WHERE campaign_id = (SELECT id FROM crier.campaign WHERE name = '$1')"
}
"$CRIER" campaign create juris --incident INC-8 >/dev/null
{
  printf 'ref,name,email,address1,city,region,postal_code,country\n'
  printf 'j1,One,j1@example.com,1 Main St,Sacramento,ca,95814,US\n'
  printf 'j2,Two,j2@example.com,1 Calle Sol,San Juan,San Juan,00901,pr\n'
  printf 'j3,Three,j3@example.com,1 Marine Dr,Hagatna,,96910,GU\n'
  printf 'j4,Four,j4@example.com,1 Rue,Paris,IDF,75001,FR\n'
  printf 'j5,Five,j5@example.com,1 Elm St,Albany,ny,,US\n'
  printf 'j6,Six,,,,TX,,US\n'
  printf 'j7,Seven,j7@example.com,2 Main St,Fresno,CA,93650,\n'
} >juris.csv
run_crier campaign load juris --csv juris.csv
is "$RC" 0 "a list with addresses in several jurisdictions loads"
is "$(kept juris)" "$(scanned juris)" "the kept jurisdictions are the ones a scan of the rows finds"
is "$(kept juris)" "CA NY PR" "a state, a territory as the country, an incomplete US address; no rejected row"
printf 'ref,name,email,address1,city,region,postal_code\nj8,Eight,j8@example.com,1 Oak St,Austin,tx,73301\n' >juris2.csv
run_crier campaign load juris --csv juris2.csv
is "$(kept juris)" "CA NY PR TX" "a later load adds its own"
# more distinct regions than the loader keeps in memory: read from the stored rows instead
"$CRIER" campaign create juris_many --incident INC-9 >/dev/null
python3 - <<'PY'
with open("juris_many.csv", "w") as f:
    f.write("ref,name,email,region\n")
    for i in range(1100):
        f.write("m%d,Many %d,m%d@example.com,Region %d\n" % (i, i, i, i))
PY
run_crier campaign load juris_many --csv juris_many.csv
is "$RC" 0 "a list with 1,100 distinct free-text regions loads"
is "$(sql "SELECT count(*) FROM crier.campaign_jurisdiction
           WHERE campaign_id = (SELECT id FROM crier.campaign WHERE name = 'juris_many')")" 1100 \
  "all 1,100 are kept"
is "$(kept juris_many)" "$(scanned juris_many)" "and they are the ones a scan finds"

done_testing
