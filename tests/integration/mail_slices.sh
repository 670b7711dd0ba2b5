#!/bin/bash
# mail_slices.sh - a print batch claimed by ids and read in slices (engine/core/queue.c's
# queue_claim_ids and queue_fetch, worker.c's lane_batch_sliced): what happens to a notice
# whose rows change between the claim and the read of its slice. The worker is stopped
# (SIGSTOP) right after it claimed a 2,000-letter batch, before it read the last slice;
# meanwhile one person's address is amended and a hold is placed on another, both at the
# end of the ZIP order. The claim's promises must hold as they did when the claim read
# every row at once: the amended person's letter carries the contacts as claimed (the
# attempt in flight is left alone, docs/unreached.md) and `audit show` re-renders it to
# the same SHA-256; the held person's letter is taken back before it goes into the batch
# (docs/holds.md, "Taken back before hand-off") and goes out once after the lift.
# Then a batch whose connection is lost while it is printed: its lines are the server's
# (crier.lane_batch_line, queue.h), so the lane reconnects and records it as it would have,
# once, with no file left pending and no letter retried (also when the session ends right
# after the claim, before the templates are loaded); or, when another worker reaped its
# letters first, records none of them. Last, a worker killed (kill -9)
# with a batch in flight: its letters are printed once after their leases, and its lines
# are kept until a minute past the leases (a lane that reconnects late finds them), then
# swept by the reaper.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

if ! command -v pdfinfo >/dev/null; then
  echo "1..0 # SKIP pdfinfo missing (Debian: apt-get install poppler-utils)"
  exit 0
fi

# Each case stops a whole `crier run` (SIGSTOP). A thread stopped inside a transaction keeps
# its locks: the main thread's seal horizon holds the dispatch log in SHARE ROW EXCLUSIVE
# mode between its answer and its COMMIT, and an amend or a hold placed meanwhile would wait
# for ever. Seen once under ASan on a loaded machine: the amend below hung until the test's
# timeout (the holder was inferred, not seen). The server ends such a session after a few
# seconds; the thread reconnects when resumed.
export PGOPTIONS="${PGOPTIONS:-} -c idle_in_transaction_session_timeout=5s"

SPOOL="$WORK/spool"
mkdir -m 0750 "$SPOOL"
write_config "channels:
  mail:
    lanes: 1
    spool: $SPOOL
    letters_per_batch: 2000
    batch_window: 1s
    imb: {barcode_id: '00', service_type: '270', mailer_id: '123456'}"
# a long lease: nothing may expire while the worker is stopped
sed -i 's/lease: 3s/lease: 10m/' "$WORK/crier.yaml"
export CRIER_CONFIG="$WORK/crier.yaml"

run_crier db migrate
is "$RC" 0 "db migrate"
"$PY" -c '
print("ref,name,email,fax,address1,address2,city,region,postal_code,country")
for i in range(2000):
    print(f"s{i:04d},Person {i},,,{i + 1} Elm Street,,Springfield,IL,{62701 + (i * 37) % 97:05d},US")
' >"$WORK/list.csv"
setup slices mail "$WORK/list.csv"
# the last two letters in print order: the highest ZIP, and within it the claim's order
read -r amended held < <("$PY" -c '
rows = sorted((62701 + (i * 37) % 97, i) for i in range(2000))
print(f"s{rows[-2][1]:04d} s{rows[-1][1]:04d}")')

"$CRIER" run >/dev/null 2>>"$WORK/run.log" &
worker=$!
claimed() { [ "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign slices) AND state = 'sending'")" = 2000 ]; }
ok "the worker claims the 2,000 letters as one batch" wait_until 60 claimed
kill -STOP "$worker"
drawn=$(cat "$SPOOL"/.B*.csv.tmp 2>/dev/null | wc -l)
# 250 a slice: the last one starts at the 1,751st letter (stdio holds back a few rows)
ok "stopped before the last slice was read ($drawn manifest lines written)" test "$drawn" -lt 1700
# batch list removes a half-written batch only once no lane can be writing it: this one's
# lane is alive, its lowest notice still being sent under that claim
live=$(sql "SELECT campaign_id || '-' || (id - (campaign_id << 32)) || '-' || attempt FROM crier.notice
            WHERE $(in_campaign slices) ORDER BY id LIMIT 1")
touch "$SPOOL/.B$live.pdf.tmp" # as it is once the first slice is drawn; the lane truncates it
run_crier batch list slices
ok "batch list leaves a live lane's half-written batch (.B$live.*.tmp)" test -f "$SPOOL/.B$live.pdf.tmp"

cat >"$WORK/amend.csv" <<CSV
ref,name,address1,city,region,postal_code
$amended,Person Moved,77 New Road,Chicago,IL,60611
CSV
run_crier campaign amend slices --csv "$WORK/amend.csv" --reason "moved"
is "$RC" 0 "the amend of a claimed person runs while the batch waits"
is "$(sql "SELECT count(*) FROM crier.recipient_version v JOIN crier.recipient r
           ON r.campaign_id = v.campaign_id AND r.seq = v.seq WHERE r.ref = '$amended'")" 1 \
  "a version of their contacts is appended"

"$CRIER" hold place slices --recipient "$held" --authority "FBI New York Field Office" \
  --official "SA Jane Roe" --case NY-2026-0412 --reason "notice would alert the suspects" \
  --form written >"$WORK/hold.out" 2>&1 &
placer=$!
hold_placed() { [ "$(sql "SELECT count(*) FROM crier.hold")" = 1 ]; }
ok "the hold is placed while the batch waits" wait_until 60 hold_placed
sleep 2.5 # the batch is more than 2 s old: each letter drawn from now on asks for holds
kill -CONT "$worker"
wait "$placer"
is "$?" 0 "hold place returns once the claimed letter is no longer in flight"
like "$(cat "$WORK/hold.out")" "1 notice in its scope had been handed to a channel" \
  "it names the one letter claimed before it"

recorded() { [ "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign slices) AND state <> 'sending'")" = 2000 ]; }
ok "the batch is recorded" wait_until 300 recorded
kill "$worker"
wait "$worker" 2>/dev/null

is "$(sql "SELECT state FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id
           AND r.seq = n.recipient_seq WHERE r.ref = '$held'")" ready "the held letter is back in the queue"
like "$(sql "SELECT detail FROM crier.dispatch_log WHERE recipient_ref = '$held' AND from_state = 'sending'")" \
  "taken back: a hold covers it now" "taken back before it went into the batch"
is "$(sql "SELECT count(*) || ' ' || count(DISTINCT transport_id) FROM crier.notice
           WHERE $(in_campaign slices) AND state = 'batched'")" "1999 1" "the other 1,999 in one batch"
batch=$(sql "SELECT DISTINCT transport_id FROM crier.notice WHERE $(in_campaign slices) AND state = 'batched'")
manifest="$SPOOL/B$batch.csv"
ok "its files are final" test -e "$manifest" -a -e "$SPOOL/B$batch.pdf"
is "$(pdfinfo "$SPOOL/B$batch.pdf" | awk '/^Pages:/ {print $2}')" \
  "$("$PY" -c 'import csv,sys; print(sum(int(r["pages"]) for r in csv.DictReader(open(sys.argv[1]))))' "$manifest")" \
  "its pages match its manifest"
is "$("$PY" -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
zips = [r["zip"] for r in rows]
print(len(rows), zips == sorted(zips), sys.argv[2] in [r["ref"] for r in rows])' "$manifest" "$held")" \
  "1999 True False" "in ZIP order, without the held letter"
is "$("$PY" -c '
import csv, sys
r = [r for r in csv.DictReader(open(sys.argv[1])) if r["ref"] == sys.argv[2]][0]
print(r["name"], "|", r["address1"], "|", r["city"])' "$manifest" "$amended")" \
  "Person $((10#${amended#s})) | $((10#${amended#s} + 1)) Elm Street | Springfield" \
  "the amended person's letter has the contacts as claimed"
run_crier audit show slices "$amended"
like "$OUT" "content verified \\(re-rendered, same SHA-256\\)" \
  "audit show re-renders it with the version claimed: the same SHA-256"
ok "and nothing differs" test "$(grep -c "CONTENT DIFFERS" <<<"$OUT")" = 0

hold=$(sql "SELECT id FROM crier.hold")
run_crier hold lift "$hold" --evidence "agency letter of release"
is "$RC" 0 "the hold is lifted"
timeout 120 "$CRIER" run --until-idle >/dev/null 2>>"$WORK/run.log"
is "$(sql "SELECT count(*) || ' ' || count(DISTINCT transport_id) FROM crier.notice
           WHERE $(in_campaign slices) AND state = 'batched'")" "2000 2" "after the lift it goes out, in a batch of its own"
is "$(cat "$SPOOL"/B*.csv | "$PY" -c '
import csv, collections, sys
rows = [r for r in csv.reader(sys.stdin) if r[0] != "batch"]
print(len(rows), max(collections.Counter(r[2] for r in rows).values()))')" "2000 1" \
  "each letter in exactly one manifest"
# A connection lost mid-batch: every session of the worker is ended while it is stopped
# after its claim of 600 letters (three slices); the lane reconnects and finds its batch.
SPOOL2="$WORK/spool-lost"
mkdir -m 0750 "$SPOOL2"
sed -e 's/lease: 10m/lease: 4s/' -e "s|spool: $SPOOL|spool: $SPOOL2|" \
  -e 's/letters_per_batch: 2000/letters_per_batch: 600/' "$WORK/crier.yaml" >"$WORK/lost.yaml"
export CRIER_CONFIG="$WORK/lost.yaml"
head -601 "$WORK/list.csv" | sed 's/^s/l/' >"$WORK/lost.csv"
setup lost mail "$WORK/lost.csv"
"$CRIER" run >/dev/null 2>>"$WORK/lost.log" &
worker=$!
lost_claimed() { [ "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign lost) AND state = 'sending'")" = 600 ]; }
ok "the worker claims the 600 letters as one batch" wait_until 60 lost_claimed
kill -STOP "$worker"
first=$(sql "SELECT DISTINCT attempt FROM crier.notice WHERE $(in_campaign lost)")
is "$(sql "SELECT count(*) FROM crier.lane_batch_line l JOIN crier.lane_batch b ON b.id = l.batch_id
           WHERE b.campaign_id = (SELECT id FROM crier.campaign WHERE name = 'lost')")" 600 \
  "the batch's 600 lines are the server's, not the session's"
# this test's database only: other tests may share the cluster
ended=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'crier run' AND datname = current_database()")
ok "the worker's sessions are ended ($ended)" test "$ended" -gt 0
kill -CONT "$worker"
lost_done() { [ "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign lost) AND state = 'batched'")" = 600 ]; }
ok "the 600 letters are batched in the end" wait_until 120 lost_done
kill "$worker"
wait "$worker" 2>/dev/null
lost_attempts=$(sql "SELECT count(DISTINCT transport_id) || ' ' || min(attempt) || ' ' || max(attempt)
                     FROM crier.notice WHERE $(in_campaign lost)")
is "$lost_attempts" "1 $first $first" \
  "in one batch, the one claimed before the connection was lost: no letter claimed again"
if [ "$lost_attempts" != "1 $first $first" ]; then
  # CI under ASan once found every letter claimed again, and nothing kept to say why: what
  # the log says of the letters' first attempt (the worker's own lines: failure_logs)
  sql "SELECT what || ' (' || count(*) || ')' FROM (SELECT to_state || ': '
       || coalesce(detail, reason, '') AS what FROM crier.dispatch_log WHERE $(in_campaign lost)
       AND attempt = $first AND to_state NOT IN ('sending', 'batched')) l GROUP BY what ORDER BY what LIMIT 20" |
    cut -c1-300 | sed 's/^/# /'
fi
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign lost) AND to_state = 'batched'")" 600 \
  "each recorded batched once"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign lost)
           AND (detail LIKE 'lease of % expired%' OR event = 'late_outcome')")" 0 \
  "none went back through the reaper, none recorded late"
is "$(find "$SPOOL2" -name 'B*.pending' -o -name 'B*.orphan' | wc -l)" 0 \
  "no file of the batch is left pending or orphaned, before any crier batch list"
is "$(sql "SELECT count(*) FROM crier.lane_batch") $(sql "SELECT count(*) FROM crier.lane_batch_line")" "0 0" \
  "the record deleted the batch's lines"
run_crier batch list lost
is "$RC" 0 "batch list finds the spool settled"
is "$(cat "$SPOOL2"/B*.csv | "$PY" -c '
import csv, collections, sys
rows = [r for r in csv.reader(sys.stdin) if r[0] != "batch"]
print(len(rows), max(collections.Counter(r[2] for r in rows).values()))')" "600 1" \
  "each letter in exactly one printable manifest"

# The session ended between a claim and the load of the campaign's templates (a lane's first
# batch of a campaign): the lane connects again and loads them, and the batch goes out as
# claimed. CI under ASan once stopped the "lost" worker above just there; the load was not
# run again, so every letter of the batch was taken back and claimed again (worker.c,
# lane_render). gdb stops the worker at the load, where a SIGSTOP lands only by chance.
if command -v gdb >/dev/null; then
  SPOOL4="$WORK/spool-cut"
  mkdir -m 0750 "$SPOOL4"
  sed -e "s|spool: $SPOOL2|spool: $SPOOL4|" "$WORK/lost.yaml" >"$WORK/cut.yaml"
  export CRIER_CONFIG="$WORK/cut.yaml"
  head -51 "$WORK/lost.csv" | sed 's/^l/c/' >"$WORK/cut.csv"
  setup cut mail "$WORK/cut.csv"
  cat >"$WORK/cut.gdb" <<GDB
set pagination off
set confirm off
handle SIGPIPE nostop noprint pass
break render_campaign_load
commands 1
  shell psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'crier run' AND datname = current_database()" >"$WORK/cut.ended"
  delete 1
  continue
end
run
GDB
  # LeakSanitizer cannot stop the threads of a traced process: no leak check under gdb
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
    timeout 300 gdb -q -batch -x "$WORK/cut.gdb" --args "$CRIER" run --until-idle \
    >/dev/null 2>"$WORK/cut.log"
  ok "stopped at the template load right after its claim, its sessions were ended ($(cat "$WORK/cut.ended"))" \
    test "$(cat "$WORK/cut.ended")" -gt 0
  is "$(sql "SELECT count(*) || ' ' || count(DISTINCT transport_id) || ' ' || max(attempt)
             FROM crier.notice WHERE $(in_campaign cut) AND state = 'batched'")" "50 1 1" \
    "the lane loads the templates on a new session: the 50 letters in one batch, none claimed again"
  is "$(grep -c 'cannot load the templates' "$WORK/cut.log")" 0 "and no load of them failed"
  export CRIER_CONFIG="$WORK/lost.yaml"
else
  for _ in 1 2 3; do
    TAP_COUNT=$((TAP_COUNT + 1))
    echo "ok $TAP_COUNT # SKIP gdb missing (Debian: apt-get install gdb)"
  done
fi

# The reaper first: a lane whose connection is lost stays away past its leases, and another
# worker reaps its letters and prints them. When the lane is back it still finds its batch,
# but its letters are no longer its own: it records none of them (each a late_outcome, by
# the record's lease test under the row lock), and its files never become printable.
SPOOL3="$WORK/spool-late"
mkdir -m 0750 "$SPOOL3"
sed -e "s|spool: $SPOOL2|spool: $SPOOL3|" "$WORK/lost.yaml" >"$WORK/late.yaml"
export CRIER_CONFIG="$WORK/late.yaml"
sed -e 's/^l/t/' "$WORK/lost.csv" >"$WORK/late.csv"
setup late mail "$WORK/late.csv"
"$CRIER" run >/dev/null 2>>"$WORK/late.log" &
worker=$!
late_claimed() { [ "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign late) AND state = 'sending'")" = 600 ]; }
ok "the first worker claims the 600 letters" wait_until 60 late_claimed
kill -STOP "$worker"
owner=$(sql "SELECT DISTINCT lease_owner FROM crier.notice WHERE $(in_campaign late) AND state = 'sending'")
sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
     WHERE application_name = 'crier run' AND datname = current_database()" >/dev/null
sleep 5 # past the 4 s leases
timeout 120 "$CRIER" run --until-idle >/dev/null 2>>"$WORK/late2.log"
is "$(sql "SELECT count(*) || ' ' || count(DISTINCT transport_id) FROM crier.notice
           WHERE $(in_campaign late) AND state = 'batched'")" "600 1" \
  "a second worker reaps them after their leases and prints them in one batch"
kill -CONT "$worker"
late_logged() { [ "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign late)
                          AND event = 'late_outcome' AND actor = '$owner'")" = 600 ]; }
ok "the first lane, back, records none of them: 600 late outcomes" wait_until 120 late_logged
kill "$worker"
wait "$worker" 2>/dev/null
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE $(in_campaign late) AND to_state = 'batched'")" 600 \
  "each letter recorded batched once, by the second worker"
is "$(sql "SELECT count(*) FROM crier.lane_batch WHERE owner = '$owner'")" 0 "its batch's lines went with its record"
run_crier batch list late
# the lane, back, prints its batch and leaves its files pending for batch list to orphan;
# or it writes no file: CI under ASan once found none (its log was not kept; the likely path
# is lane_may_hand_off taking letters back unprinted while the lost connection cannot be
# made again, then the record logging them late). Either way nothing of it is printable
# (checked next) and nothing is left pending.
orphans=$(find "$SPOOL3" -name 'B*.pdf.orphan' | wc -l)
is "$(find "$SPOOL3" -name 'B*.pending' | wc -l) $((orphans <= 1))" "0 1" \
  "batch list leaves nothing of the late batch pending ($orphans orphaned)"
is "$(cat "$SPOOL3"/B*.csv | "$PY" -c '
import csv, collections, sys
rows = [r for r in csv.reader(sys.stdin) if r[0] != "batch"]
print(len(rows), max(collections.Counter(r[2] for r in rows).values()))')" "600 1" \
  "each letter in exactly one printable manifest"
export CRIER_CONFIG="$WORK/lost.yaml"

# kill -9 with a batch in flight: nobody will record it. Its letters go back through the
# reaper once their leases expire and are printed once; its lines stay a minute past the
# leases (QUEUE_BATCH_KEEP), then the reaper sweeps them.
sed -e 's/^s/k/' "$WORK/lost.csv" >"$WORK/killed.csv"
setup killed mail "$WORK/killed.csv"
"$CRIER" run >/dev/null 2>>"$WORK/killed.log" &
worker=$!
killed_claimed() { [ "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign killed) AND state = 'sending'")" = 600 ]; }
ok "the worker claims the 600 letters" wait_until 60 killed_claimed
kill -9 "$worker"
wait "$worker" 2>/dev/null
kept=$(sql "SELECT b.id FROM crier.lane_batch b WHERE b.campaign_id = (SELECT id FROM crier.campaign WHERE name = 'killed')")
ok "the killed lane's batch is left ($kept)" test -n "$kept"
# its half-written files: the kill may come before the lane opened them, so they are made
# here under the name the lane gives them (its lowest notice and that notice's attempt)
killed_id=$(sql "SELECT b.campaign_id || '-' || (l.id - (b.campaign_id << 32)) || '-' || l.attempt
                 FROM crier.lane_batch b JOIN crier.lane_batch_line l ON l.batch_id = b.id
                 WHERE b.id = $kept ORDER BY l.id LIMIT 1")
for kind in pdf csv; do [ -f "$SPOOL2/.B$killed_id.$kind.tmp" ] || : >"$SPOOL2/.B$killed_id.$kind.tmp"; done
is "$(sql "SELECT round(extract(epoch FROM b.kept_until - max(n.lease_expires_at))) FROM crier.lane_batch b
           JOIN crier.lane_batch_line l ON l.batch_id = b.id JOIN crier.notice n ON n.id = l.id
           WHERE b.id = $kept GROUP BY b.kept_until")" 60 "kept a minute past its leases"
timeout 120 "$CRIER" run --until-idle >/dev/null 2>>"$WORK/killed.log"
is "$(sql "SELECT count(*) || ' ' || count(DISTINCT transport_id) FROM crier.notice
           WHERE $(in_campaign killed) AND state = 'batched'")" "600 1" \
  "its letters are printed once after their leases, in one batch"
is "$(sql "SELECT count(*) FROM crier.lane_batch_line WHERE batch_id = $kept")" 600 \
  "the reaper leaves the lines while their time has not passed"
ok "its half-written files stay while its letters were leased to it (that run's start)" \
  test -f "$SPOOL2/.B$killed_id.pdf.tmp"
# a minute later, as the reaper's clock sees it
sql "UPDATE crier.lane_batch SET kept_until = now() - interval '1 second' WHERE id = $kept"
timeout 60 "$CRIER" run --until-idle >/dev/null 2>>"$WORK/killed.log"
is "$(sql "SELECT count(*) FROM crier.lane_batch") $(sql "SELECT count(*) FROM crier.lane_batch_line")" "0 0" \
  "then sweeps the batch and its lines"
like "$(cat "$WORK/killed.log")" "1 unrecorded batch swept" "and says so"
run_crier batch list killed
is "$(find "$SPOOL2" -name 'B*.pending' | wc -l)" 0 "no batch left pending"
# what the killed lane had half-written (.B<ID>.*.tmp) went at a reconciliation once its
# letters were no longer sent under that claim (the second run's start; nothing else
# removes another lane's files)
is "$(find "$SPOOL2" -name '.B*.tmp' | wc -l)" 0 "no half-written file of the killed lane is left"
done_testing
