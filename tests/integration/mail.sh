#!/bin/bash
# mail.sh - the mail channel (channels/print.c, engine/core/batch.c): a campaign of mail-only
# recipients becomes print batches in the spool, checked with poppler as an independent
# PDF reader: page counts against the manifest, every recipient's name and address lines
# inside the recipient window and the return address inside its window (pdftotext
# -bbox-layout), the sha256sum file and the SHA-256 recorded in the dispatch log, ZIP
# order, no letter in two batches, the batch window for a remainder, mark-mailed, void and
# reprint, and the crash cases (pending files of a recorded and of an unrecorded batch).
# Page 1 of a batch is rendered to PNG (pdftoppm) for a person to look at; set
# MAIL_ARTIFACTS=DIR to keep it (and its PDF) after the test.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

for tool in pdfinfo pdftotext pdftoppm; do
  if ! command -v "$tool" >/dev/null; then
    echo "1..0 # SKIP $tool missing (Debian: apt-get install poppler-utils)"
    exit 0
  fi
done

SPOOL="$WORK/spool"
mkdir -p "$SPOOL"
write_config "channels:
  mail:
    lanes: 1
    spool: $SPOOL
    letters_per_batch: 4
    batch_window: 1s
    fold_marks: true
    return_address: |
      Example Corp Privacy Office
      100 Main Street
      Springfield, IL 62701
    imb: {barcode_id: '00', service_type: '270', mailer_id: '123456'}
  null: {lanes: 1}"
export CRIER_CONFIG="$WORK/crier.yaml"

run_until_idle() {
  timeout 90 "$CRIER" run --until-idle >"$WORK/run.out" 2>>"$WORK/run.log"
}

run_crier db migrate
is "$RC" 0 "db migrate"

LONG=$(printf 'Building %.0s' $(seq 1 30))
cat >"$WORK/list.csv" <<CSV
ref,name,email,fax,address1,address2,city,region,postal_code,country
r01,Jane Q. Public,,,123 Elm Street,,Springfield,IL,62704,US
r02,Nguyễn Văn An,,,9 Ocean Ave,Apt 4B,Brooklyn,NY,11225-1234,US
r03,Zofia Wójcik,,,55 Lake Shore Dr,,Chicago,IL,60611,US
r04,Seán Ó Briain,,,1 Market St,Suite 200,San Francisco,CA,94105,US
r05,Maria Garcia,,,700 Pine Rd,,Austin,TX,78701-4321,US
r06,Marc Tremblay,,,24 Sussex Drive,,Ottawa,ON,K1A 0B1,CA
r07,Erika Mustermann,,,Heidestrasse 17,,Köln,,51147,DE
r08,John Smith,,,10 Downing Way,,Boston,MA,02108,US
r09,Too Long,,,$LONG,,Denver,CO,80202,US
r10,Ana Lima,,,42 Harbor Blvd,,Miami,FL,33101,US
CSV
"$CRIER" campaign create c1 --incident INC-1 --policy mail,null --meta "$META" >/dev/null &&
  "$CRIER" campaign load c1 --csv "$WORK/list.csv" >/dev/null &&
  "$CRIER" campaign start c1 >/dev/null
ok "campaign created, loaded and started" test $? -eq 0

start=$(date +%s)
run_until_idle
is "$?" 0 "crier run --until-idle finishes"
elapsed=$(($(date +%s) - start))
ok "run took bounded time ($elapsed s)" test "$elapsed" -lt 60

is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign c1) AND state = 'batched'")" 9 \
  "nine letters batched"
is "$(sql "SELECT channel || ' ' || state FROM crier.notice n JOIN crier.recipient r
           ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
           WHERE n.$(in_campaign c1) AND r.ref = 'r09'")" "null delivered" \
  "an address that does not fit the window falls back to the next channel"
like "$(sql "SELECT detail FROM crier.dispatch_log WHERE $(in_campaign c1) AND recipient_ref = 'r09'
             AND from_state = 'sending' AND channel = 'mail'")" "does not fit" \
  "with the reason logged"

ls "$SPOOL" >"$WORK/spool.ls"
is "$(grep -c '\.pending$' "$WORK/spool.ls")" 0 "no file left pending"
is "$(find "$SPOOL" -name '.B*.tmp' | wc -l)" 0 "no temporary file left"
batches=$(cd "$SPOOL" && ls B*.pdf | sed 's/^B//; s/\.pdf$//')
is "$(echo "$batches" | wc -l)" 3 "three batches: 4 + 4 letters, and the remainder after the window"
is "$(for f in "$SPOOL"/B*.csv; do echo $(($(wc -l <"$f") - 1)); done | sort -n | tr '\n' ' ')" "1 4 4 " \
  "the remainder (one letter, the other one unprintable) went out after the batch window"

# --- every batch, checked with poppler -------------------------------------------------------
cat >"$WORK/check.py" <<'PY'
import csv, hashlib, html.parser, re, subprocess, sys
spool, batch = sys.argv[1], sys.argv[2]
pdf, manifest = f"{spool}/B{batch}.pdf", f"{spool}/B{batch}.csv"
rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
problems = []
info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True).stdout
pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
if pages != sum(int(r["pages"]) for r in rows):
    problems.append(f"pdfinfo pages {pages} != manifest {sum(int(r['pages']) for r in rows)}")
# letter_layout_default(): recipient box {36, 147.02, 252, 63}, return box {36, 36, 252, 57.02}
RECIPIENT = (36, 147.02, 36 + 252, 147.02 + 63)
RETURN = (36, 36, 36 + 252, 36 + 57.02)
class Words(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.pages = []; self.cur = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "page": self.pages.append([])
        if tag == "word":
            self.cur = [float(a["xmin"]), float(a["ymin"]), float(a["xmax"]), float(a["ymax"]), ""]
    def handle_data(self, data):
        if self.cur is not None: self.cur[4] += data
    def handle_endtag(self, tag):
        if tag == "word" and self.cur is not None:
            self.pages[-1].append(self.cur); self.cur = None
out = subprocess.run(["pdftotext", "-bbox-layout", pdf, "-"], capture_output=True, text=True).stdout
w = Words(); w.feed(out)
def inside(page, box):
    return " ".join(t for (x0, y0, x1, y1, t) in w.pages[page]
                    if x0 >= box[0] - 0.5 and y0 >= box[1] - 0.5 and x1 <= box[2] + 0.5 and y1 <= box[3] + 0.5)
page = 0
zips = []
for r in rows:
    rec, ret = inside(page, RECIPIENT), inside(page, RETURN)
    expected = [r["name"], r["address1"], r["address2"], r["city"]]
    if r["country"] == "DE": expected.append("GERMANY")
    if r["country"] == "CA": expected += [r["region"], r["postal_code"]]
    if r["country"] == "US": expected += [r["region"], r["postal_code"]]
    for e in expected:
        for word in e.split():
            if word not in [t.rstrip(",") for t in rec.split()]:
                problems.append(f"{r['ref']}: '{word}' not inside the recipient window: {rec!r}")
    for word in "Example Corp Privacy Office 100 Main Street".split():
        if word not in ret.split():
            problems.append(f"{r['ref']}: return address word '{word}' not in its window: {ret!r}")
    body = " ".join(t for *_, t in w.pages[page])
    if "Notice of Data Breach" not in body:
        problems.append(f"{r['ref']}: no heading on its first page")
    if r["country"] == "US": zips.append(r["zip"])
    page += int(r["pages"])
if zips != sorted(zips): problems.append(f"US letters not in ZIP order: {zips}")
digest = hashlib.sha256(open(pdf, "rb").read()).hexdigest()
print(digest)
for p in problems: print("PROBLEM", p)
PY

for b in $batches; do
  out=$("$PY" "$WORK/check.py" "$SPOOL" "$b")
  is "$(echo "$out" | grep -c PROBLEM)" 0 "batch $b: pages, windows, heading and ZIP order"
  echo "$out" | grep PROBLEM | head -5 | sed 's/^/# /'
  digest=$(echo "$out" | head -1)
  recorded=$(sql "SELECT DISTINCT split_part(detail, ' ', 10) FROM crier.dispatch_log
                  WHERE to_state = 'batched' AND detail LIKE 'batch $b %'")
  is "$recorded" "$digest" "batch $b: the PDF's SHA-256 is the one recorded"
  ok "batch $b: sha256sum -c passes" bash -c "cd '$SPOOL' && sha256sum --quiet -c 'B$b.sha256'"
  is "$(($(wc -l <"$SPOOL/B$b.csv") - 1))" \
    "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE to_state = 'batched' AND detail LIKE 'batch $b %'")" \
    "batch $b: manifest rows = letters recorded"
done
is "$(tail -q -n +2 "$SPOOL"/B*.csv | cut -d, -f3 | sort | uniq -d | wc -l)" 0 "no letter in two batches"
is "$(tail -q -n +2 "$SPOOL"/B*.csv | wc -l)" 9 "every letter in a manifest"
like "$(grep -h '"r05"' "$SPOOL"/B*.csv)" '"787014321"' "ZIP+4 routed as 9 digits"
like "$(grep -h '"r05"' "$SPOOL"/B*.csv)" '"[0-9]{9}","[0-9a-f]{64}"$' "IMb serial and letter SHA-256 in the manifest"

first=$(echo "$batches" | head -1)
pdftoppm -png -r 60 -f 1 -l 1 "$SPOOL/B$first.pdf" "$WORK/page"
ok "page 1 rendered to PNG" test -s "$WORK/page-1.png"
if [ -n "${MAIL_ARTIFACTS:-}" ]; then
  mkdir -p "$MAIL_ARTIFACTS" && cp "$WORK/page-1.png" "$SPOOL/B$first.pdf" "$SPOOL/B$first.csv" "$MAIL_ARTIFACTS/"
fi

# --- crier batch list / show -----------------------------------------------------------------
run_crier batch list c1 --json
is "$RC" 0 "batch list --json"
is "$(echo "$OUT" | "$PY" -c 'import json,sys; print(sum(b["letters"] for b in json.load(sys.stdin)))')" 9 \
  "batch list counts every letter"
run_crier batch show "$first"
is "$RC" 0 "batch show"
like "$OUT" "state: +batched" "a new batch is batched"
run_crier batch show "$first" --json
is "$RC:$(echo "$OUT" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
seqs = [int(l["sequence"].split("/")[0]) for l in d["letters_in_order"]]
print(d["batch"], d["state"], d["letters"] == len(seqs), seqs == sorted(seqs), d["pdf"].endswith(".pdf"))' 2>&1)" \
  "0:$first batched True True True" "batch show --json: the batch and its letters in print order"

# --- mark-mailed -----------------------------------------------------------------------------
letters_first=$(($(wc -l <"$SPOOL/B$first.csv") - 1))
run_crier batch mark-mailed "$first" --date "$(date -u +%F)" --evidence "PS Form 3602-R 42"
is "$RC" 0 "mark-mailed"
is "$(sql "SELECT count(*) FROM crier.notice WHERE state = 'mailed' AND transport_id = '$first'")" \
  "$letters_first" "its letters are mailed"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE from_state = 'batched' AND to_state = 'mailed'
           AND detail LIKE 'batch $first mailed %PS Form 3602-R 42'")" "$letters_first" "each logged with the evidence"
run_crier batch mark-mailed "$first" --date "$(date -u +%F)"
is "$RC" 65 "marking it again is refused"
run_crier batch mark-mailed "$first" --date 2999-01-01
is "$RC" 65 "a date in the future is refused"

# --- returned mail: logged once per mailed letter, for the substitute-notice report ------------
returned_ref=$(sql "SELECT r.ref FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id
                    AND r.seq = n.recipient_seq WHERE n.state = 'mailed' AND n.transport_id = '$first' LIMIT 1")
unmailed_ref=$(sql "SELECT r.ref FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id
                    AND r.seq = n.recipient_seq WHERE n.state <> 'mailed' LIMIT 1")
printf 'ref,reason,returned_on\n%s,Attempted - Not Known,2026-12-01\nnobody,,\n%s,,\n' \
  "$returned_ref" "$unmailed_ref" >"$WORK/returns.csv"
run_crier returns ingest "$WORK/returns.csv" --campaign c1
is "$RC:$OUT" "0:3 rows: 1 returns recorded, 0 already recorded, 1 unknown, 1 not mailed" \
  "returns ingest counts what it recorded, what it did not know and what was not mailed"
like "$ERR" "returns.csv:3: no ref 'nobody' in campaign 'c1'" "an unknown ref is named with its line"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE event = 'returned' AND recipient_ref = '$returned_ref'
           AND reason = 'Attempted - Not Known' AND detail LIKE 'returned mail on 2026-12-01%'")" 1 \
  "the return is one log row with its reason and date"
run_crier returns ingest "$WORK/returns.csv" --campaign c1
is "$OUT" "3 rows: 0 returns recorded, 1 already recorded, 1 unknown, 1 not mailed" \
  "ingesting the same file again records nothing new"
run_crier returns ingest "$WORK/returns.csv"
is "$RC" 65 "without a campaign column or --campaign: 65"

# --- void and reprint --------------------------------------------------------------------------
second=$(echo "$batches" | sed -n 2p)
refs_second=$(tail -n +2 "$SPOOL/B$second.csv" | cut -d, -f5 | sort | tr '\n' ' ')
run_crier batch void "$second" --reason "printer jam spoiled the run"
is "$RC" 0 "void"
ok "the voided batch's files are renamed .void" test -e "$SPOOL/B$second.pdf.void" -a ! -e "$SPOOL/B$second.pdf"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign c1) AND state = 'ready'")" \
  "$(echo "$refs_second" | wc -w)" "its letters are ready again"
run_until_idle
is "$?" 0 "run again"
new=$(cd "$SPOOL" && ls B*.pdf | sed 's/^B//; s/\.pdf$//' | grep -vxF "$batches" | head -1)
ok "a new batch was printed" test -n "$new"
is "$(tail -n +2 "$SPOOL/B$new.csv" | cut -d, -f5 | sort | tr '\n' ' ')" "$refs_second" \
  "the voided letters are in the new batch"
out=$("$PY" "$WORK/check.py" "$SPOOL" "$new")
is "$(echo "$out" | grep -c PROBLEM)" 0 "the new batch passes the poppler checks"
run_crier batch show "$second"
like "$OUT" "state: +voided" "the voided batch shows as voided"

# --- crash cases -----------------------------------------------------------------------------------
# recorded, but the worker died before its files were made final
for k in pdf sha256 csv; do mv "$SPOOL/B$new.$k" "$SPOOL/B$new.$k.pending"; done
# never recorded: a batch whose letters the database never marked batched
cid=$(sql "SELECT id FROM crier.campaign WHERE name = 'c1'")
ghost="$cid-999-1"
nid=$(sql "SELECT id FROM crier.notice WHERE $(in_campaign c1) LIMIT 1")
cp "$SPOOL/B$first.pdf" "$SPOOL/B$ghost.pdf.pending"
printf 'batch,sequence,notice_id,attempt\n"%s","1","%s","7"\n' "$ghost" "$nid" >"$SPOOL/B$ghost.csv.pending"
run_crier batch list c1
is "$RC" 0 "batch list settles the spool"
ok "the recorded batch's files are final" test -e "$SPOOL/B$new.pdf" -a -e "$SPOOL/B$new.csv"
ok "the unrecorded batch's files are orphaned" test -e "$SPOOL/B$ghost.pdf.orphan" -a ! -e "$SPOOL/B$ghost.pdf.pending"
like "$OUT" "batch $ghost: not recorded" "and reported"
is "$(ls "$SPOOL" | grep -c '\.pending$')" 0 "nothing left pending"

run_crier status c1 --json
is "$(echo "$OUT" | "$PY" -c 'import json,sys; s=json.load(sys.stdin)["by_state"]; print(s["batched"]+s["mailed"])')" 9 \
  "status: every letter batched or mailed"

# --- --json: one object on stdout, the same facts as the text, checked against the database --
json_of() { "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$OUT" "$1"; }
third=$(echo "$batches" | sed -n 3p)
run_crier batch void "$third" --reason "json check" --json
is "$RC:$ERR" "0:" "batch void --json exits 0"
is "$(json_of '[d[k] for k in ("batch", "voided", "reason", "files_renamed")]')" \
  "['$third', $(sql "SELECT count(*) FROM crier.dispatch_log WHERE detail LIKE 'batch $third voided%'"), 'json check', True]" \
  "batch void --json: the letters the database logged back to ready"
run_crier batch mark-mailed "$new" --date "$(date -u +%F)" --json
is "$RC:$ERR" "0:" "batch mark-mailed --json exits 0"
is "$(json_of '[d[k] for k in ("batch", "mailed", "date", "evidence")]')" \
  "['$new', $(sql "SELECT count(*) FROM crier.notice WHERE state = 'mailed' AND transport_id = '$new'"), '$(date -u +%F)', None]" \
  "batch mark-mailed --json: the letters the database has mailed"

# --- a batch bigger than a record slice: recorded in slices, in one transaction ---------------
# worker.c records a lane's batch 250 outcomes per statement so that its memory stays bounded
# (docs/benchmarks.md); a print batch must still be recorded all or none (spool.c finalises
# it only when every letter is recorded): every 'batched' row of the batch has one xmin.
BIG_SPOOL="$WORK/spool-big"
mkdir -m 0750 "$BIG_SPOOL"
sed -e "s|spool: $SPOOL|spool: $BIG_SPOOL|" -e 's/letters_per_batch: 4/letters_per_batch: 600/' \
  "$WORK/crier.yaml" >"$WORK/big.yaml"
"$PY" -c '
import sys
print("ref,name,email,fax,address1,address2,city,region,postal_code,country")
for i in range(600):
    print(f"b{i:03d},Person {i},,,{i + 1} Elm Street,,Springfield,IL,{62701 + (i * 37) % 97:05d},US")
' >"$WORK/big.csv"
CRIER_CONFIG="$WORK/big.yaml" setup big mail "$WORK/big.csv"
CRIER_CONFIG="$WORK/big.yaml" timeout 300 "$CRIER" run --until-idle >/dev/null 2>>"$WORK/run.log"
is "$?" 0 "crier run prints a 600-letter batch"
is "$(sql "SELECT count(*) || ' ' || count(DISTINCT transport_id) FROM crier.notice
           WHERE $(in_campaign big) AND state = 'batched'")" "600 1" "all 600 letters batched, in one batch"
is "$(sql "SELECT count(*) || ' ' || count(DISTINCT xmin::text) FROM crier.dispatch_log
           WHERE $(in_campaign big) AND to_state = 'batched'")" "600 1" \
  "their 600 records committed in one transaction"
big=$(sql "SELECT DISTINCT transport_id FROM crier.notice WHERE $(in_campaign big)")
ok "its files are final" test -e "$BIG_SPOOL/B$big.pdf" -a -e "$BIG_SPOOL/B$big.csv" \
  -a ! -e "$BIG_SPOOL/B$big.csv.pending"
is "$(pdfinfo "$BIG_SPOOL/B$big.pdf" | awk '/^Pages:/ {print $2}')" \
  "$("$PY" -c 'import csv,sys; print(sum(int(r["pages"]) for r in csv.DictReader(open(sys.argv[1]))))' "$BIG_SPOOL/B$big.csv")" \
  "its pages match its manifest"
is "$("$PY" -c '
import csv, sys
zips = [r["zip"] for r in csv.DictReader(open(sys.argv[1]))]
print(len(zips), zips == sorted(zips))' "$BIG_SPOOL/B$big.csv")" "600 True" "in ZIP order across the whole batch"

# --- kill -9 between two slices of that record -------------------------------------------
# The third slice's UPDATE is made to wait on a row lock this test holds, after the first
# two were stored in the lane's transaction; then the worker is killed. Nothing of the
# batch may be recorded (its files are orphaned, never printed), and the letters go out
# once, in one new batch. The lease is long so that no keepalive touches the locked row
# while the letters are drawn; the test expires it instead of waiting.
KILL_SPOOL="$WORK/spool-kill"
mkdir -m 0750 "$KILL_SPOOL"
sed -e "s|spool: $BIG_SPOOL|spool: $KILL_SPOOL|" -e 's/lease: 3s/lease: 10m/' "$WORK/big.yaml" >"$WORK/kill.yaml"
sed 's/^b/k/' "$WORK/big.csv" >"$WORK/kill.csv"
CRIER_CONFIG="$WORK/kill.yaml" setup killed mail "$WORK/kill.csv"
# the last notice in the claim's order (next_attempt_at, id): the record's last slice
last_id=$(sql "SELECT id FROM crier.notice WHERE $(in_campaign killed)
               ORDER BY next_attempt_at DESC, id DESC LIMIT 1")
killed_cid=$(sql "SELECT id FROM crier.campaign WHERE name = 'killed'")
CRIER_CONFIG="$WORK/kill.yaml" "$CRIER" run >/dev/null 2>>"$WORK/run.log" &
worker=$!
sending() { [ "$(sql "SELECT state FROM crier.notice WHERE id = $last_id")" = sending ]; }
ok "the worker claims the 600 letters" wait_until 60 sending
psql -XAtq -c "BEGIN" -c "SELECT 1 FROM crier.notice WHERE id = $last_id FOR UPDATE" \
  -c "SELECT pg_sleep(300)" -c "COMMIT" >/dev/null 2>&1 &
locker=$!
# the record's statement (it opens with the advisory lock, as the claim does, which never
# waits on a row: SKIP LOCKED) waits on the row lock: the last slice of the three. In this
# test's database only: CI runs two tests at once on one cluster, and a record waiting in
# holds.sh's database made this test kill its worker before the batch was written (twice)
record_waits() {
  [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
            AND query LIKE 'WITH gate AS (SELECT pg_advisory_xact_lock_shared(%'")" = 1 ]
}
ok "the record's last slice waits on the locked notice" wait_until 120 record_waits
kill -9 "$worker"
wait "$worker" 2>/dev/null
# the server finishes the waiting statement once the lock goes, but no COMMIT follows: the
# backend rolls the whole transaction back (slices committed one by one would leave the
# first two recorded, and the third too once the lock went: the test fails so)
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE datname = current_database() AND query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$locker" 2>/dev/null
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign killed) AND state = 'batched'")" 0 \
  "killed between slices: none of the batch is recorded"
killed_batch=$(cd "$KILL_SPOOL" && ls "B$killed_cid-"*.csv.pending | sed 's/^B//; s/\.csv\.pending$//')
ok "its files were left pending" test -n "$killed_batch"
# the lease the kill left: expired now rather than in ten minutes; the next run reaps it
# (until then its letters count as still being recorded, and the files stay pending)
sql "UPDATE crier.notice SET lease_expires_at = now() - interval '1 s'
     WHERE $(in_campaign killed) AND state = 'sending'" >/dev/null
CRIER_CONFIG="$WORK/kill.yaml" timeout 300 "$CRIER" run --until-idle >/dev/null 2>>"$WORK/run.log"
CRIER_CONFIG="$WORK/kill.yaml" run_crier batch list killed
ok "the killed batch's files are orphaned, never to be printed" \
  test -e "$KILL_SPOOL/B$killed_batch.pdf.orphan" -a ! -e "$KILL_SPOOL/B$killed_batch.pdf.pending" \
  -a ! -e "$KILL_SPOOL/B$killed_batch.pdf"
is "$(sql "SELECT count(*) || ' ' || count(DISTINCT transport_id) FROM crier.notice
           WHERE $(in_campaign killed) AND state = 'batched'")" "600 1" \
  "the 600 letters are batched again, in one new batch"
is "$(cat "$KILL_SPOOL"/B*.csv | "$PY" -c '
import csv, collections, sys
rows = [r for r in csv.reader(sys.stdin) if r[0] != "batch" and r[4].startswith("k")]
print(len(rows), max(collections.Counter(r[2] for r in rows).values()))')" "600 1" \
  "each letter in exactly one final manifest"

done_testing
