#!/bin/bash
# load_dups.sh - duplicate refs found by the database (import.c, struct dup_list): a load
# keeps no refs in memory, so a duplicate sends it back to its savepoint for a pass that
# asks PostgreSQL which rows repeat a ref, and loads again. What must hold is what held
# when the loader kept every ref in a hash table: the same rows rejected with the same
# messages in source order, once each; dense seqs; nothing of the first pass left behind.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
count() { sql "SELECT count(*) FROM $1"; }
cid() { sql "SELECT id FROM crier.campaign WHERE name = '$1'"; }

# --- a first load: duplicates past the first COPY chunk, a third occurrence, an invalid row
# 7000 data rows (lines 2-7001). Line 6000 repeats line 2's ref, line 6500 repeats it again;
# line 6800 repeats line 3000's; line 100 has line 50's ref but no contact (rejected as
# invalid, so neither a duplicate nor the first of its ref); line 150 has line 100's ref.
python3 - <<'PY'
with open("big.csv", "w") as f:
    f.write("ref,name,email,dept\n")
    for line in range(2, 7002):
        ref = {6000: "d2", 6500: "d2", 6800: "d3000", 100: "d50", 150: "d100"}.get(line, "d%d" % line)
        email = "" if line == 100 else "p%d@example.com" % line
        f.write("%s,Person %d,%s,HR\n" % (ref, line, email))
PY
"$CRIER" campaign create dups --incident INC-1 --policy email >/dev/null
run_crier campaign load dups --csv big.csv --reject-file rejects.csv
is "$RC" 0 "a list with duplicate refs loads the rest"
like "$OUT" "^campaign dups: 7000 rows read, 6996 loaded, 4 rejected, 0 with a contact dropped" \
  "four rows rejected: one invalid, three duplicates"
is "$(grep -c 'rejected' <<<"$ERR")" 4 "each rejected row is named once on stderr, not once per pass"
is "$(grep 'rejected' <<<"$ERR" | sed 's/^crier: big.csv: //')" \
  "line 100 ref d50: rejected: no usable contact (email, fax or postal address)
line 6000 ref d2: rejected: duplicate ref 'd2' (first at line 2)
line 6500 ref d2: rejected: duplicate ref 'd2' (first at line 2)
line 6800 ref d3000: rejected: duplicate ref 'd3000' (first at line 3000)" \
  "the messages, in source order, name the row where each ref came first"
is "$(python3 -c 'import csv, sys; [print(",".join(r[:3])) for r in list(csv.reader(open(sys.argv[1])))[1:]]' rejects.csv)" \
  "line 100,rejected,no usable contact (email, fax or postal address)
line 6000,rejected,duplicate ref 'd2' (first at line 2)
line 6500,rejected,duplicate ref 'd2' (first at line 2)
line 6800,rejected,duplicate ref 'd3000' (first at line 3000)" "the reject file has the same rows, once each"
c=$(cid dups)
is "$(sql "SELECT count(*) || ' ' || min(seq) || ' ' || max(seq) || ' ' || count(DISTINCT ref)
           FROM crier.recipient WHERE campaign_id = $c")" "6996 1 6996 6996" \
  "6996 recipients with dense seqs 1..6996 and distinct refs"
is "$(sql "SELECT name FROM crier.recipient WHERE campaign_id = $c AND ref IN ('d2', 'd100') ORDER BY ref")" \
  "Person 150
Person 2" "the first occurrence is kept; a ref first seen on an invalid row is free for a later one"
is "$(sql "SELECT count(*) FROM crier.notice WHERE campaign_id = $c")" 6996 "one notice per recipient"
is "$(sql "SELECT sum(n) FROM crier.notice_tally WHERE campaign_id = $c")" 6996 \
  "the notice tallies count the last pass only"
is "$(count "crier.list_load WHERE campaign_id = $c")" 1 "one list_load row"
is "$(sql "SELECT rows_read || ' ' || loaded || ' ' || rejected FROM crier.list_load WHERE campaign_id = $c")" \
  "7000 6996 4" "list_load counts the last pass"

# --- a later load: its partition is attached, so the index finds the duplicate row by row --
printf 'ref,name,email,dept\nn1,New One,n1@example.com,HR\nd2,Again,a@example.com,HR\nn1,New Again,n2@example.com,HR\nn2,New Two,n3@example.com,HR\n' >later.csv
run_crier campaign load dups --csv later.csv
is "$RC" 0 "a later load with duplicates loads"
like "$OUT" "^campaign dups: 4 rows read, 2 loaded, 2 rejected" "two rejected"
is "$(grep 'rejected' <<<"$ERR" | sed 's/^crier: later.csv: //')" \
  "line 3 ref d2: rejected: duplicate ref 'd2' (first at line 2 of an earlier load)
line 4 ref n1: rejected: duplicate ref 'n1' (first at line 2)" \
  "one duplicate of an earlier load, one of this load"
is "$(sql "SELECT string_agg(ref || ':' || seq, ' ' ORDER BY seq) FROM crier.recipient
           WHERE campaign_id = $c AND seq > 6996")" "n1:6997 n2:6998" "the sequence continues densely"

# --- a duplicate, then a bad row: exit 65 and nothing loaded ------------------------------
printf 'ref,name,email\nx1,A,a@example.com\nx1,B,b@example.com\nx2,C\xff,c@example.com\n' >bad.csv
before="$(count crier.recipient) $(count crier.notice) $(count crier.list_load) $(count crier.dispatch_log)"
run_crier campaign load dups --csv bad.csv
is "$RC:$ERR" "65:crier campaign load: bad.csv:4: not valid UTF-8; nothing was loaded" \
  "invalid UTF-8 after a duplicate: 65, the line named"
is "$(count crier.recipient) $(count crier.notice) $(count crier.list_load) $(count crier.dispatch_log)" "$before" \
  "nothing was loaded"

# --- a --query source: the cursor is read again, rows are numbered as before ---------------
sql "CREATE TABLE public.people (id int, ref text, name text, email text);
     INSERT INTO public.people SELECT g, CASE WHEN g IN (4000, 5500) THEN 'q7' ELSE 'q' || g END,
       'P ' || g, 'p' || g || '@example.com' FROM generate_series(1, 6000) g" >/dev/null
"$CRIER" campaign create query --incident INC-3 --policy email >/dev/null
run_crier campaign load query --query "SELECT ref, name, email FROM public.people ORDER BY id"
is "$RC" 0 "a query with duplicate refs loads"
like "$OUT" "^campaign query: 6000 rows read, 5998 loaded, 2 rejected" "two rejected"
is "$(grep 'rejected' <<<"$ERR" | sed 's/^crier: source: //')" \
  "row 4000 ref q7: rejected: duplicate ref 'q7' (first at row 7)
row 5500 ref q7: rejected: duplicate ref 'q7' (first at row 7)" "named by row, as before"
is "$(sql "SELECT count(*) || ' ' || max(seq) FROM crier.recipient WHERE campaign_id = $(cid query)")" \
  "5998 5998" "dense seqs"

# --- a member of crier_operator: the duplicate pass needs only what a load needs ----------
role_logins
"$CRIER" campaign create ops --incident INC-4 --policy email >/dev/null
printf 'ref,name,email\no1,A,a@example.com\no1,B,b@example.com\no2,C,c@example.com\n' >ops.csv
as operator run_crier campaign load ops --csv ops.csv
is "$RC" 0 "an operator's load with a duplicate succeeds"
like "$ERR" "line 3 ref o1: rejected: duplicate ref 'o1' \(first at line 2\)" "and names both lines"
as operator run_crier campaign load ops --csv ops.csv
like "$ERR" "line 2 ref o1: rejected: duplicate ref 'o1' \(first at line 2 of an earlier load\)" \
  "a later operator load with duplicates, too"

done_testing
