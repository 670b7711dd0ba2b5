#!/bin/bash
# diskfull.sh - the print spool fills up: the spool is a small tmpfs (SPOOL_SIZE, 1 MB),
# too small for the campaign's letters. The mail lane must fail cleanly: the batch that
# does not fit is retried (a temporary outcome whose detail names the batch and "No space
# left on device" in the dispatch log), none of its letters is marked batched, none of its
# files is left final or pending, every final batch in the spool is whole (sha256sum -c);
# and once the filesystem is enlarged (mount -o remount,size=...) the same `crier run`
# finishes: every letter in exactly one final batch, nothing left over.
# DISKFULL_LETTERS (800) and DISKFULL_LANES (the mail lanes, 1) change the campaign.
# tests/fault/write_error.sh fails one write of a manifest on purpose: what this test hit
# once, by the timing of its remount, as a manifest short of 21 letters.
# Needs root (mount); otherwise the script skips.
# shellcheck source-path=SCRIPTDIR
FAULT_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/lib.sh
source "$FAULT_DIR/../integration/lib.sh"
# shellcheck source=peers.sh
source "$FAULT_DIR/peers.sh"

LETTERS=${DISKFULL_LETTERS:-800} LANES=${DISKFULL_LANES:-1}
SPOOL_SIZE=${SPOOL_SIZE:-1m}
SPOOL="$WORK/spool"
mkdir -p "$SPOOL"
if [ "$(id -u)" -ne 0 ]; then
  echo "1..0 # SKIP mounting a small tmpfs for the spool needs root"
  exit 0
fi
if ! mount -t tmpfs -o "size=$SPOOL_SIZE,mode=0750" crier-spool "$SPOOL" 2>"$WORK/mount.err"; then
  echo "1..0 # SKIP cannot mount a tmpfs here: $(head -1 "$WORK/mount.err")"
  exit 0
fi
# unmount before lib.sh removes the work directory
unmount_and_cleanup() {
  local rc=$?
  umount "$SPOOL" 2>/dev/null
  (exit "$rc")
  cleanup
}
trap unmount_and_cleanup EXIT

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }
write_config "channels:
  mail:
    lanes: $LANES
    spool: $SPOOL
    letters_per_batch: 100
    batch_window: 1s"
sed -i 's/^  lease: 3s$/  lease: 20s/' "$WORK/crier.yaml" # checks below pause crier a moment
export CRIER_CONFIG="$WORK/crier.yaml"
people_csv "$LETTERS" people.csv 1 # every=1: i % 1 == 0 == every - 1: all by mail
setup full mail people.csv
is "$(sql "SELECT count(*) FROM crier.notice WHERE channel = 'mail'")" "$LETTERS" "$LETTERS letters to print"

failures() { sql "SELECT count(*) FROM crier.dispatch_log WHERE channel = 'mail' AND from_state = 'sending'
                  AND to_state = 'ready' AND detail LIKE 'print batch % failed: No space left on device%'"; }
failed_once() { [ "$(failures)" -gt 0 ]; }
# every final batch in the spool checks out against its sha256sum file
batches_whole() {
  local sum
  for sum in "$SPOOL"/B*.sha256; do
    [ -e "$sum" ] || continue
    (cd "$SPOOL" && sha256sum --quiet -c "$(basename "$sum")") || return 1
  done
}

"$CRIER" run --until-idle 2>"$WORK/run.log" &
pid=$!
ok "the spool fills up: a print batch fails with 'No space left on device'" wait_until 120 failed_once

# a moment's still picture of the full spool (crier paused; its leases outlast the pause)
kill -STOP "$pid"
df_full=$(df --output=used,size -k "$SPOOL" | tail -1)
batched=$(sql "SELECT count(*) FROM crier.notice WHERE state = 'batched'")
"$CRIER" batch list full >/dev/null 2>&1 # settles a batch recorded but not yet renamed
manifest_counts >"$WORK/full.counts"
is "$(wc -l <"$WORK/full.counts")" "$batched" "while full: the letters marked batched are exactly those in final batches ($batched)"
ok "while full: every final batch is whole (sha256sum -c)" batches_whole
failed_ids=$(sql "SELECT DISTINCT split_part(detail, ' ', 3) FROM crier.dispatch_log WHERE channel = 'mail'
                  AND to_state = 'ready' AND detail LIKE 'print batch % failed: No space left%'")
leftovers=0
for id in $failed_ids; do
  leftovers=$((leftovers + $(find "$SPOOL" -name "B$id.*" | wc -l)))
  leftovers=$((leftovers + $(sql "SELECT count(*) FROM crier.dispatch_log WHERE to_state = 'batched'
                                 AND detail LIKE 'batch $id %'")))
done
is "$leftovers" 0 "while full: a failed batch left no final or pending file and marked no letter batched"
ok "while full: crier run keeps running (retrying)" kill -0 "$pid"
kill -CONT "$pid"

# space returns: the same process finishes
mount -o remount,size=64m "$SPOOL"
ok "the spool is enlarged to 64 MB" test $? -eq 0
deadline=$((SECONDS + 180))
while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
kill -9 "$pid" 2>/dev/null
wait "$pid"
is "$?" 0 "crier run --until-idle finishes once there is space"

is "$(sql "SELECT count(*) FROM crier.notice WHERE state = 'batched'")" "$LETTERS" "every letter is batched"
"$CRIER" batch list full >/dev/null 2>&1
manifest_counts >"$WORK/mail.counts"
is "$(awk '$2 == 1' "$WORK/mail.counts" | wc -l)/$(wc -l <"$WORK/mail.counts")" "$LETTERS/$LETTERS" \
  "every letter is in exactly one final batch"
ok "every final batch is whole (sha256sum -c)" batches_whole
is "$(find "$SPOOL" -name '*.pending' -o -name '*.orphan' -o -name '*.tmp' | wc -l)" 0 \
  "nothing pending, orphaned or half-written is left in the spool"
is "$(sql "SELECT count(*) FROM crier.notice WHERE state = 'undeliverable' OR channel <> 'mail'")" 0 \
  "no letter gave up or fell back because of the full disk"
[ -z "${FAULT_ARTIFACTS:-}" ] || { cp "$WORK"/*.log "$FAULT_ARTIFACTS"/; sql "SELECT detail FROM crier.dispatch_log WHERE channel = 'mail' AND to_state = 'ready'" >"$FAULT_ARTIFACTS/ready.txt"; }
echo "# spool $SPOOL_SIZE (used/size KiB when full: $df_full), $LETTERS letters: $(failures) batch attempts failed for space," \
  "$(find "$SPOOL" -name 'B*.csv' | wc -l) batches in the end, $(du -sk "$SPOOL" | cut -f1) KiB"
done_testing
